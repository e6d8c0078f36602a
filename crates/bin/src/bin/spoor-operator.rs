use clap::Parser;
use spoor_bin::operator::OperatorCli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spoor_server::telemetry::init_logging("info", None)?;
    OperatorCli::parse().run().await
}
