use spoor_bin::es_index::EsIndexCli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: EsIndexCli = spoor_server::config::parse()?;
    spoor_server::telemetry::init_logging(&cli.common.log_level, None)?;
    cli.run().await
}
