//! `cascade enqueue`: a manual ticket on the deployed application's queue, as if the
//! secret had just changed. The gatekeeper takes it at its next tick.

use std::process::ExitCode;

use anyhow::Context;
use cascade_aws::AwsError;
use cascade_aws::secrets::resolve_secrets;
use cascade_aws::status::Deployed;
use cascade_core::intake::{MESSAGE_GROUP, ManualTicket};
use jiff::Timestamp;

use crate::cli::EnqueueArgs;

/// Sends one manual ticket per secret (each checked to exist first).
pub async fn run(args: EnqueueArgs) -> anyhow::Result<ExitCode> {
    let clients = crate::commands::clients(&args.aws).await?;
    let queue_url = match &args.queue_url {
        Some(url) => url.clone(),
        None => {
            Deployed::find(&clients, &args.deployed.stack_name)
                .await?
                .queue_url
        }
    };
    let secrets = resolve_secrets(&clients, &args.secrets).await?;
    let requested_by = args
        .requested_by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cascade-cli".into());
    for secret in &secrets {
        let ticket = ManualTicket {
            secret: secret.arn.clone(),
            requested_by: Some(requested_by.clone()),
            stacks: (!args.stacks.is_empty()).then(|| args.stacks.clone()),
            at: Some(Timestamp::now()),
        };
        let body = serde_json::to_string(&ticket).context("cannot write the ticket as JSON")?;
        let sent = clients
            .sqs
            .send_message()
            .queue_url(&queue_url)
            .message_group_id(MESSAGE_GROUP)
            .message_body(body)
            .send()
            .await
            .map_err(|e| AwsError::call("sqs:SendMessage", e))
            .with_context(|| format!("cannot send a ticket to {queue_url}"))?;
        println!(
            "queued a ticket for {} (message {})",
            secret.name,
            sent.message_id().unwrap_or("?")
        );
    }
    eprintln!("the gatekeeper starts a run at its next tick (within a minute) if none is running");
    Ok(ExitCode::SUCCESS)
}
