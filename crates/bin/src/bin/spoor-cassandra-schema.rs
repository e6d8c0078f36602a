use spoor_bin::cassandra_schema::CassandraSchemaCli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: CassandraSchemaCli = spoor_server::config::parse()?;
    spoor_server::telemetry::init_logging(&cli.common.log_level, None)?;
    cli.run().await
}
