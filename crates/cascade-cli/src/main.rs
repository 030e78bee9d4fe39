//! `cascade`: the Secret Cascade command line. Parses arguments, runs a command, maps the
//! outcome to an exit code. The work is done in cascade-core and cascade-aws.
//!
//! - `cli`: the arguments of every subcommand (clap); timing defaults come from
//!   `cascade_core::defaults`.
//! - `commands`: one module per subcommand (`plan`, `run`, `restore`, `report`, `enqueue`,
//!   `status`, `dlq`, `template to-json`) and what they share: AWS options and the state store.
//! - `render`: tables and summaries for people; `failure`: a failed command in a line or
//!   two, with what to do next.
//!
//! Logs go to stderr at the level `CASCADE_LOG` gives (default `warn`, the AWS credential
//! chain's own warnings left out: a failure says what is missing). `CASCADE_LOG=debug`
//! shows every call and the SDK's whole error.

mod cli;
mod commands;
mod failure;
mod render;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, TemplateCommand};

/// Warnings, but not the credential chain's (one per provider it tried).
const DEFAULT_LOG: &str = "warn,aws_config=error";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CASCADE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
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
        Command::Dlq(command) => commands::dlq::run(command).await,
        Command::Template(TemplateCommand::ToJson { file }) => {
            commands::template::to_json(&file).await
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            tracing::debug!(error = ?err, "the command failed");
            let mut lines = failure::explain(&err).into_iter();
            eprintln!("error: {}", lines.next().unwrap_or_default());
            for line in lines {
                eprintln!("  {line}");
            }
            ExitCode::FAILURE
        }
    }
}
