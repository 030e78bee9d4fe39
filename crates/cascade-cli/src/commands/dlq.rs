//! `cascade dlq list|redrive`: the deployed application's dead-letter queue.

use std::process::ExitCode;

use cascade_aws::dead_letters;
use cascade_aws::status::Deployed;

use crate::cli::{DlqCommand, Format};
use crate::render;

/// Lists the dead letters or moves them back to the ticket queue.
pub async fn run(command: DlqCommand) -> anyhow::Result<ExitCode> {
    match command {
        DlqCommand::List {
            deployed,
            format,
            aws,
        } => {
            let clients = crate::commands::clients(&aws).await?;
            let deployed = Deployed::find(&clients, &deployed.stack_name).await?;
            let letters = dead_letters::peek(&clients, &deployed.dead_letter_url).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&letters)?),
                Format::Table => print!("{}", render::dead_letters_table(&letters)),
            }
        }
        DlqCommand::Redrive { deployed, aws } => {
            let clients = crate::commands::clients(&aws).await?;
            let deployed = Deployed::find(&clients, &deployed.stack_name).await?;
            let moved =
                dead_letters::redrive(&clients, &deployed.dead_letter_url, &deployed.queue_url)
                    .await?;
            println!("moved {moved} message(s) back to the ticket queue");
            if moved > 0 {
                eprintln!("the gatekeeper takes them at its next tick (within a minute)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
