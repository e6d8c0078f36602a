use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spoor_tracegen::Cli::parse().run().await
}
