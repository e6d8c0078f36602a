//! `spoor-cassandra-schema`: creates Jaeger's v004 keyspace and tables, or
//! prints the CQL for review or for cqlsh.
use clap::Parser;
use spoor_storage_cassandra::{CassandraOptions, connect, create_schema, schema};

use crate::CommonOptions;

#[derive(Parser, Debug)]
#[command(
    name = "spoor-cassandra-schema",
    version,
    about = "Creates the Jaeger v004 keyspace (keyspace, replication and TTLs from --cassandra.*)"
)]
pub struct CassandraSchemaCli {
    #[command(flatten)]
    pub common: CommonOptions,
    #[command(flatten)]
    pub cassandra: CassandraOptions,
    /// Print the CQL statements instead of running them.
    #[arg(long = "print")]
    pub print: bool,
}

impl crate::Tool for CassandraSchemaCli {
    async fn run(self) -> anyhow::Result<()> {
        if self.print {
            let params = self.cassandra.schema()?;
            for statement in schema::statements(&params)? {
                println!("{statement};\n");
            }
            return Ok(());
        }
        let session = connect(&self.cassandra).await?;
        create_schema(&session, &self.cassandra).await?;
        println!("keyspace {} is ready", self.cassandra.keyspace);
        Ok(())
    }

    fn logging(&self) -> (&str, Option<&std::path::Path>) {
        (&self.common.log_level, None)
    }
}
