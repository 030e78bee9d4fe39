//! `cascade`: the Secret Cascade command line. Parses arguments, runs a command, maps the
//! outcome to an exit code. The work is done in cascade-core and cascade-aws.
//!
//! - `cli`: the arguments of every subcommand (clap); timing defaults come from
//!   `cascade_core::defaults`.
//! - `commands`: one module per subcommand (`plan`, `run`, `restore`, `report`, `enqueue`,
//!   `status`, `template to-json`) and what they share: AWS options and the state store.
//! - `render`: tables and summaries for people.
//!
//! Logs go to stderr at the level `CASCADE_LOG` gives (default `warn`).

mod cli;
mod commands;
mod render;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, TemplateCommand};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CASCADE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => commands::plan::run(args).await,
        Command::Run(args) => commands::run::run(args).await,
        Command::Restore(args) => commands::restore::run(args).await,
        Command::Report(args) => commands::report::run(args).await,
        Command::Enqueue(args) => commands::enqueue::run(args).await,
        Command::Status(args) => commands::status::run(args).await,
        Command::Template(TemplateCommand::ToJson { file }) => {
            commands::template::to_json(&file).await
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
