//! What the deployed application is doing: found from its CloudFormation stack's outputs,
//! the running batch (where it is), the last batches (how they ended, where their report
//! is), the tickets waiting and the dead-letter queue.

use aws_sdk_sfn::types::ExecutionStatus;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use cascade_core::batch::keys;
use cascade_core::progress::{BatchProgress, progress};
use cascade_core::report::{Report, Totals};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::Clients;
use crate::batch_store::BatchStore;
use crate::error::{AwsError, ErrorKind};
use crate::store::{Store, StoreError};

/// The resources of a deployed Secret Cascade, from its stack's outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployed {
    /// The stack.
    pub stack_name: String,
    /// The ticket queue (`TicketQueueUrl`).
    pub queue_url: String,
    /// The dead-letter queue (`TicketDeadLetterQueueUrl`).
    pub dead_letter_url: String,
    /// The state machine (`StateMachineArn`).
    pub state_machine_arn: String,
    /// The state and report bucket (`ReportBucketName`).
    pub bucket: String,
}

/// An error reading the application's status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// A call failed.
    #[error("{0}")]
    Aws(#[from] AwsError),
    /// The state bucket could not be read.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The stack is not a Secret Cascade deployment (or not finished deploying).
    #[error(
        "stack {stack} has no output {output}: is it Secret Cascade's stack (`sam deploy` names it in samconfig.toml), and is its deployment complete?"
    )]
    MissingOutput {
        /// The stack.
        stack: String,
        /// The output.
        output: &'static str,
    },
}

impl Deployed {
    /// Reads the resources from the outputs of the stack `stack_name`.
    pub async fn find(clients: &Clients, stack_name: &str) -> Result<Self, StatusError> {
        let described = clients
            .cloudformation
            .describe_stacks()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(|e| AwsError::call("cloudformation:DescribeStacks", e))?;
        let outputs = described
            .stacks()
            .first()
            .map(|s| s.outputs())
            .unwrap_or_default();
        let output = |key: &'static str| {
            outputs
                .iter()
                .find(|o| o.output_key() == Some(key))
                .and_then(|o| o.output_value())
                .map(str::to_string)
                .ok_or(StatusError::MissingOutput {
                    stack: stack_name.to_string(),
                    output: key,
                })
        };
        Ok(Deployed {
            stack_name: stack_name.to_string(),
            queue_url: output("TicketQueueUrl")?,
            dead_letter_url: output("TicketDeadLetterQueueUrl")?,
            state_machine_arn: output("StateMachineArn")?,
            bucket: output("ReportBucketName")?,
        })
    }
}

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// What was looked at.
    pub deployed: Deployed,
    /// The batch running now, if one is.
    pub running: Option<RunningBatch>,
    /// The last executions, newest first (the running one included).
    pub recent: Vec<RecentBatch>,
    /// The ticket queue.
    pub tickets: QueueDepth,
    /// The dead-letter queue.
    pub dead_letters: DeadLetterSummary,
}

/// The running batch.
#[derive(Debug, Clone, Serialize)]
pub struct RunningBatch {
    /// Its execution.
    pub execution_arn: String,
    /// When it started.
    pub started_at: String,
    /// Where it is; `None` while Discover has not saved the batch yet.
    pub progress: Option<BatchProgress>,
}

/// One recent execution.
#[derive(Debug, Clone, Serialize)]
pub struct RecentBatch {
    /// The execution's name.
    pub execution_name: String,
    /// The batch it ran, when its input says.
    pub batch_id: Option<String>,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED.
    pub status: String,
    /// When it started.
    pub started_at: String,
    /// When it stopped.
    pub stopped_at: Option<String>,
    /// Its report's totals, once written.
    pub totals: Option<Totals>,
    /// Where its JSON report is, once written.
    pub report: Option<String>,
    /// When it ended without succeeding (FAILED, TIMED_OUT, ABORTED): why, where its
    /// batch's state is, and each stack's state.
    pub unfinished: Option<UnfinishedBatch>,
}

/// A batch whose execution ended without succeeding: what a person needs to finish it.
#[derive(Debug, Clone, Serialize)]
pub struct UnfinishedBatch {
    /// The execution.
    pub execution_arn: String,
    /// The execution's error name, when Step Functions gives one.
    pub error: Option<String>,
    /// Where the batch's state is (`s3://BUCKET/batches/BATCH/`), when the batch is known.
    pub state: Option<String>,
    /// Each stack of the batch, in plan order (empty when Discover saved no batch).
    pub stacks: Vec<StackLine>,
}

/// One stack of an unfinished batch.
#[derive(Debug, Clone, Serialize)]
pub struct StackLine {
    /// Its name.
    pub stack_name: String,
    /// Its outcome, when it has one (refreshed, failed, skipped, degraded).
    pub outcome: Option<String>,
    /// The step it was in.
    pub phase: String,
    /// Why, when its state says.
    pub reason: Option<String>,
}

/// A queue's depth.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct QueueDepth {
    /// Messages waiting.
    pub waiting: u64,
    /// Messages received and not yet deleted (a gatekeeper has them).
    pub in_flight: u64,
}

/// The dead-letter queue.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DeadLetterSummary {
    /// Messages in it.
    pub count: u64,
    /// Age of the oldest, in seconds, when there is one.
    pub oldest_age_seconds: Option<i64>,
}

/// Reads the status of `deployed`: the last `last` executions.
pub async fn read(
    clients: &Clients,
    deployed: &Deployed,
    last: i32,
    now: Timestamp,
) -> Result<Status, StatusError> {
    let store = Store::s3(clients.s3.clone(), deployed.bucket.clone());
    let batches = BatchStore::new(&store);
    let listed = clients
        .sfn
        .list_executions()
        .state_machine_arn(&deployed.state_machine_arn)
        .max_results(last.clamp(1, 100))
        .send()
        .await
        .map_err(|e| AwsError::call("states:ListExecutions", e))?;
    let mut recent = Vec::new();
    let mut running = None;
    for execution in listed.executions() {
        let described = clients
            .sfn
            .describe_execution()
            .execution_arn(execution.execution_arn())
            .send()
            .await
            .map_err(|e| AwsError::call("states:DescribeExecution", e))?;
        let batch_id = described
            .input()
            .and_then(|input| serde_json::from_str::<Value>(input).ok())
            .and_then(|input| input.get("batch_id")?.as_str().map(str::to_string));
        let report = match &batch_id {
            Some(batch) => store.get_json::<Report>(&keys::report_json(batch)).await?,
            None => None,
        };
        let is_running = *execution.status() == ExecutionStatus::Running;
        let unfinished = match execution.status() {
            ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted => {
                let stacks = match &batch_id {
                    Some(batch) => match batches.find_manifest(batch).await? {
                        Some(manifest) => batches
                            .states(&manifest)
                            .await?
                            .into_iter()
                            .map(|state| StackLine {
                                stack_name: state.stack_name,
                                outcome: state.outcome.map(|o| o.to_string()),
                                phase: state.phase.to_string(),
                                reason: state.reason,
                            })
                            .collect(),
                        None => Vec::new(),
                    },
                    None => Vec::new(),
                };
                Some(UnfinishedBatch {
                    execution_arn: execution.execution_arn().to_string(),
                    error: described.error().map(str::to_string),
                    state: batch_id
                        .as_ref()
                        .map(|batch| store.location(&format!("batches/{batch}/"))),
                    stacks,
                })
            }
            _ => None,
        };
        if is_running && running.is_none() {
            let progress = match &batch_id {
                Some(batch) => match batches.find_manifest(batch).await? {
                    Some(manifest) => {
                        let states = batches.states(&manifest).await?;
                        Some(progress(&manifest, &states, now))
                    }
                    None => None,
                },
                None => None,
            };
            running = Some(RunningBatch {
                execution_arn: execution.execution_arn().to_string(),
                started_at: execution.start_date().to_string(),
                progress,
            });
        }
        recent.push(RecentBatch {
            execution_name: execution.name().to_string(),
            report: report
                .as_ref()
                .map(|r| store.location(&keys::report_json(&r.batch_id))),
            totals: report.map(|r| r.totals),
            unfinished,
            batch_id,
            status: execution.status().as_str().to_string(),
            started_at: execution.start_date().to_string(),
            stopped_at: execution.stop_date().map(|d| d.to_string()),
        });
    }
    let tickets = depth(clients, &deployed.queue_url).await?;
    let dead = depth(clients, &deployed.dead_letter_url).await?;
    let oldest = crate::dead_letters::peek(clients, &deployed.dead_letter_url)
        .await?
        .iter()
        .filter_map(|m| m.sent_at)
        .min();
    Ok(Status {
        deployed: deployed.clone(),
        running,
        recent,
        tickets,
        dead_letters: DeadLetterSummary {
            count: dead.waiting + dead.in_flight,
            oldest_age_seconds: oldest.map(|t| now.as_second() - t.as_second()),
        },
    })
}

/// The depth of the queue at `url`.
async fn depth(clients: &Clients, url: &str) -> Result<QueueDepth, AwsError> {
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| AwsError::call("sqs:GetQueueAttributes", e))?;
    let get = |name: QueueAttributeName| -> Result<u64, AwsError> {
        let value = attributes
            .attributes()
            .and_then(|a| a.get(&name))
            .map(String::as_str)
            .unwrap_or("0");
        value.parse().map_err(|_| {
            AwsError::other(
                "sqs:GetQueueAttributes",
                ErrorKind::Other,
                format!("{} is not a number: {value}", name.as_str()),
            )
        })
    };
    Ok(QueueDepth {
        waiting: get(QueueAttributeName::ApproximateNumberOfMessages)?,
        in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?,
    })
}

/// SQS's `SentTimestamp` (milliseconds since the epoch) as a timestamp.
pub(crate) fn sent_at(message: &aws_sdk_sqs::types::Message) -> Option<Timestamp> {
    let millis: i64 = message
        .attributes()?
        .get(&MessageSystemAttributeName::SentTimestamp)?
        .parse()
        .ok()?;
    Timestamp::from_millisecond(millis).ok()
}
