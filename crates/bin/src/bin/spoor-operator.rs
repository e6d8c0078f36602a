use clap::Parser;
use spoor_bin::operator::OperatorCli;

fn main() -> anyhow::Result<()> {
    OperatorCli::parse().run()
}
