//! `spoor-operator`: the Kubernetes operator's command line. `crd` prints
//! the CustomResourceDefinition; `render` prints the objects a `Spoor`
//! resource stands for, for review or for `kubectl apply -f -`.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "spoor-operator",
    version,
    about = "Turns Spoor custom resources into the Kubernetes objects of an instance"
)]
pub struct OperatorCli {
    #[command(subcommand)]
    pub command: OperatorCommand,
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Print the Spoor CustomResourceDefinition (YAML).
    Crd,
    /// Print the objects a Spoor resource renders to (YAML stream).
    Render {
        /// The resource, YAML or JSON ("-" for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

impl OperatorCli {
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            OperatorCommand::Crd => print!("{}", spoor_operator::crd_yaml()),
            OperatorCommand::Render { file } => {
                let text = if file.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(&file)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
                };
                let spoor = spoor_operator::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                print!(
                    "{}",
                    spoor_operator::render::to_yaml(&spoor_operator::render::render(&spoor))
                );
            }
        }
        Ok(())
    }
}
