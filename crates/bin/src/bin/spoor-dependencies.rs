use spoor_bin::dependencies_job::DependenciesCli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: DependenciesCli = spoor_server::config::parse()?;
    spoor_server::telemetry::init_logging(&cli.common.log_level, None)?;
    cli.run().await
}
