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
    /// Manage the archive's rollover index and aliases
    /// (`<prefix>jaeger-span-archive-000001`, `-read`, `-write`) instead of
    /// the span store's, as Jaeger's es-rollover `--archive`; for
    /// `--es-archive.use-aliases`.
    #[arg(long, env = "ARCHIVE", default_value_t = false)]
    pub archive: bool,
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
    /// Start new write indices (rollover mode); with --max-age or
    /// --conditions only for those that meet them.
    Rollover {
        /// Roll over write indices older than this (0s: always).
        #[arg(long, default_value = "0s", value_parser = spoor_model::parse_go_duration, conflicts_with = "conditions")]
        max_age: Duration,
        /// Elasticsearch rollover conditions as JSON, as Jaeger's es-rollover
        /// takes them: '{"max_age": "2d"}', '{"max_docs": 10000000}'.
        #[arg(long, env = "CONDITIONS", value_parser = parse_conditions)]
        conditions: Option<serde_json::Value>,
    },
    /// Take rollover indices older than --read-ttl out of the read aliases
    /// (Jaeger's es-rollover lookback).
    Lookback {
        #[arg(long, default_value = "24h", value_parser = spoor_model::parse_go_duration)]
        read_ttl: Duration,
    },
    /// Delete indices more than --days days old: dated indices, and with
    /// --es.use-aliases rollover indices but the write ones (Jaeger's
    /// es-index-cleaner).
    Clean {
        #[arg(long)]
        days: u64,
    },
}

impl crate::Tool for EsIndexCli {
    async fn run(self) -> anyhow::Result<()> {
        let client = EsClient::connect(&self.es.connect_options()?)?;
        let mut layout = self.es.layout();
        layout.archive = self.archive;
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
            EsIndexCommand::Rollover {
                max_age,
                conditions,
            } => {
                let conditions = conditions.or_else(|| {
                    (!max_age.is_zero())
                        .then(|| serde_json::json!({"max_age": format!("{}s", max_age.as_secs())}))
                });
                for index in admin::rollover(&client, &layout, conditions.as_ref()).await? {
                    println!("rolled over to {index}");
                }
            }
            EsIndexCommand::Lookback { read_ttl } => {
                for index in admin::lookback(&client, &layout, read_ttl).await? {
                    println!("{index} taken out of the read alias");
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

    fn logging(&self) -> (&str, Option<&std::path::Path>) {
        (&self.common.log_level, None)
    }
}

/// Rollover conditions: a JSON object.
fn parse_conditions(text: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err("rollover conditions must be a JSON object".into()),
        Err(e) => Err(format!("rollover conditions are not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<EsIndexCli, clap::Error> {
        EsIndexCli::try_parse_from(["spoor-es-index"].iter().chain(args))
    }

    #[test]
    fn rollover_takes_jaegers_conditions_or_an_age() {
        let cli = parse(&["rollover", "--conditions", r#"{"max_age": "2d"}"#]).unwrap();
        let EsIndexCommand::Rollover { conditions, .. } = cli.command else {
            panic!("not a rollover")
        };
        assert_eq!(conditions, Some(serde_json::json!({"max_age": "2d"})));
        assert!(parse(&["rollover", "--conditions", "2d"]).is_err());
        assert!(parse(&["rollover", "--conditions", "[1]"]).is_err());
        assert!(parse(&["rollover", "--max-age", "1h", "--conditions", "{}"]).is_err());
        let cli = parse(&["lookback", "--read-ttl", "48h"]).unwrap();
        let EsIndexCommand::Lookback { read_ttl } = cli.command else {
            panic!("not a lookback")
        };
        assert_eq!(read_ttl, Duration::from_secs(48 * 3600));
    }
}
