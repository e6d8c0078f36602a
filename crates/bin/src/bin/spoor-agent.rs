use spoor_bin::AgentCli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli: AgentCli = spoor_server::config::parse()?;
    spoor_server::telemetry::init_logging(
        &cli.server.common.log_level,
        cli.server.audit_log_file.as_deref(),
    )?;
    cli.run().await
}
