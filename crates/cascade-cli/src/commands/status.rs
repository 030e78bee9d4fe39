//! `cascade status`: what the deployed application is doing: the running execution, the
//! recent ones, and the tickets waiting.

use std::process::ExitCode;

use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;
use cascade_aws::AwsError;

use crate::cli::StatusArgs;

/// Prints the executions and the queue depth.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let clients = crate::commands::clients(&args.aws).await?;
    let executions = clients
        .sfn
        .list_executions()
        .state_machine_arn(&args.state_machine_arn)
        .max_results(args.last.clamp(1, 100))
        .send()
        .await
        .map_err(|e| AwsError::call("states:ListExecutions", e))
        .with_context(|| format!("cannot list the executions of {}", args.state_machine_arn))?;
    let running: Vec<_> = executions
        .executions()
        .iter()
        .filter(|e| e.status() == &aws_sdk_sfn::types::ExecutionStatus::Running)
        .collect();
    match running.first() {
        Some(e) => println!("running: {} (since {})", e.name(), e.start_date()),
        None => println!("running: none"),
    }
    println!("recent executions:");
    for e in executions.executions() {
        println!(
            "  {:<40} {:<10} {}{}",
            e.name(),
            e.status().as_str(),
            e.start_date(),
            e.stop_date().map(|d| format!(" → {d}")).unwrap_or_default()
        );
    }
    if executions.executions().is_empty() {
        println!("  none");
    }
    if let Some(queue) = &args.queue_url {
        let attributes = clients
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| AwsError::call("sqs:GetQueueAttributes", e))
            .with_context(|| format!("cannot read {queue}"))?;
        let get = |name: QueueAttributeName| {
            attributes
                .attributes()
                .and_then(|a| a.get(&name))
                .cloned()
                .unwrap_or_else(|| "?".into())
        };
        println!(
            "tickets: {} waiting, {} being taken by a gatekeeper",
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        );
    }
    Ok(ExitCode::SUCCESS)
}
