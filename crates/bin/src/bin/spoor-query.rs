use spoor_bin::QueryCli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spoor_bin::tune_allocator();
    let cli: QueryCli = spoor_server::config::parse()?;
    spoor_server::telemetry::init_logging(
        &cli.server.common.log_level,
        cli.server.audit_log_file.as_deref(),
    )?;
    cli.run().await
}
