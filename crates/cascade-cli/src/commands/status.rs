//! `cascade status`: what the deployed application is doing, found from its stack's
//! outputs: the running batch, the last ones, the tickets waiting and the dead letters.

use std::process::ExitCode;

use cascade_aws::status::{self, Deployed};
use jiff::Timestamp;

use crate::cli::{Format, StatusArgs};
use crate::render;

/// Prints the status, as a table or as JSON.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let clients = crate::commands::clients(&args.aws).await?;
    let deployed = Deployed::find(&clients, &args.deployed.stack_name).await?;
    let status = status::read(&clients, &deployed, args.last, Timestamp::now()).await?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        Format::Table => print!("{}", render::status_text(&status)),
    }
    Ok(ExitCode::SUCCESS)
}
