//! `spoor-es-index`: Elasticsearch / OpenSearch index management, in place
//! of Jaeger's es-rollover and es-index-cleaner jobs.
use std::time::Duration;

use clap::{Parser, Subcommand};
use spoor_storage_elasticsearch::{EsClient, EsOptions, admin};

use crate::CommonOptions;

#[derive(Parser, Debug)]
#[command(
    name = "spoor-es-index",
    version,
    about = "Creates templates and rollover aliases, rolls indices over and deletes old ones"
)]
pub struct EsIndexCli {
    #[command(flatten)]
    pub common: CommonOptions,
    #[command(flatten)]
    pub es: EsOptions,
    #[command(subcommand)]
    pub command: EsIndexCommand,
}

#[derive(Subcommand, Debug)]
pub enum EsIndexCommand {
    /// Put the index templates; with --es.use-aliases or --es.use-ilm also the
    /// first rollover indices and their aliases, with --es.use-ilm the policy.
    Init {
        /// Lifecycle policy: roll the write index over at this age.
        #[arg(long, default_value = "24h", value_parser = spoor_model::parse_go_duration)]
        rollover_age: Duration,
        /// Lifecycle policy: delete indices this long after their rollover.
        #[arg(long, default_value = "168h", value_parser = spoor_model::parse_go_duration)]
        delete_after: Duration,
    },
    /// Start new write indices (rollover mode); with --max-age only for those older than it.
    Rollover {
        #[arg(long, default_value = "0s", value_parser = spoor_model::parse_go_duration)]
        max_age: Duration,
    },
    /// Delete dated indices more than --days days old (Jaeger's es-index-cleaner).
    Clean {
        #[arg(long)]
        days: u64,
    },
}

impl EsIndexCli {
    pub async fn run(self) -> anyhow::Result<()> {
        let client =
            EsClient::connect(&self.es.connect_options().map_err(|e| anyhow::anyhow!(e))?)?;
        let layout = self.es.layout();
        match self.command {
            EsIndexCommand::Init {
                rollover_age,
                delete_after,
            } => {
                let flavor = client.flavor().await?;
                if self.es.use_ilm {
                    let policy =
                        admin::lifecycle_policy(flavor, &layout, rollover_age, delete_after);
                    admin::put_lifecycle_policy(&client, flavor, &self.es.ilm_policy_name, policy)
                        .await?;
                    println!("lifecycle policy {} put", self.es.ilm_policy_name);
                }
                admin::put_templates(&client, flavor, &self.es.template_params()).await?;
                println!("index templates put ({flavor:?})");
                if layout.use_aliases {
                    admin::init_rollover(&client, &layout).await?;
                    println!("rollover indices and aliases ready");
                }
            }
            EsIndexCommand::Rollover { max_age } => {
                for index in admin::rollover(&client, &layout, max_age).await? {
                    println!("rolled over to {index}");
                }
            }
            EsIndexCommand::Clean { days } => {
                let keep = Duration::from_secs(days * 86_400);
                for index in admin::delete_old_indices(&client, &layout, keep).await? {
                    println!("deleted {index}");
                }
            }
        }
        Ok(())
    }
}
