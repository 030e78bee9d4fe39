//! The gatekeeper (DESIGN.md §1, points 2-3): starts one execution of the state machine
//! for the pending tickets, and only when none is running.
//!
//! 1. ListExecutions(RUNNING): if any, do nothing; the tickets wait in the queue.
//! 2. Receive up to 10 messages of the FIFO queue. While this invocation holds them in
//!    flight, no other receive gets any message of the group: that is the mutex for
//!    the receive → start → delete window.
//! 3. Parse each. An invalid message is logged (its reason, never its body) and made
//!    visible again at once, so that it does not hold the group for a whole visibility
//!    timeout; the queue's redrive policy moves it to the dead-letter queue after
//!    `maxReceiveCount` receives. A round that brought one is followed by another.
//! 4. Coalesce the valid tickets and start the execution under a name derived from the
//!    message ids, with a deterministic input: after a crash before the delete, the
//!    same messages come back, the same name is derived, and StartExecution's
//!    idempotency (or `ExecutionAlreadyExists`) means no second run.
//! 5. Only then delete the valid and the ignored messages.

use std::collections::BTreeSet;

use aws_sdk_sfn::types::ExecutionStatus;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use cascade_core::intake::{
    Batch, ExecutionInput, RunOptions, Ticket, TicketParse, coalesce, execution_name, parse_ticket,
};
use tracing::{info, warn};

use crate::clients::Clients;
use crate::error::AwsError;

/// Most messages one ReceiveMessage (and one batch call) handles.
const SQS_BATCH: usize = 10;
/// Long polling for one second: short polling may miss messages on a real queue.
const RECEIVE_WAIT_SECONDS: i32 = 1;

/// What the gatekeeper works on.
#[derive(Debug, Clone)]
pub struct GatekeeperConfig {
    /// The FIFO ticket queue.
    pub queue_url: String,
    /// The Secret Cascade state machine.
    pub state_machine_arn: String,
    /// How the executions it starts run.
    pub options: RunOptions,
    /// How long received messages stay hidden from other consumers (seconds); longer
    /// than one invocation takes.
    pub visibility_timeout_seconds: i32,
    /// Most receive rounds in one invocation (a round that brought an invalid message
    /// is followed by another); at least one is always made.
    pub max_receive_rounds: u32,
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    /// An execution is running: nothing was received, the tickets wait.
    Busy {
        /// The running executions' ARNs.
        running: Vec<String>,
    },
    /// The queue had nothing.
    Idle,
    /// An execution was started for the tickets.
    Started {
        /// The execution.
        execution_arn: String,
        /// Its batch id.
        batch_id: String,
        /// Valid tickets in the batch.
        tickets: usize,
        /// Messages deleted (valid and ignored ones).
        deleted: usize,
        /// Invalid messages left for the dead-letter queue.
        invalid: usize,
    },
    /// The execution for these tickets already existed (started by an earlier attempt
    /// that stopped before deleting them); the messages were deleted.
    AlreadyStarted {
        /// The existing execution.
        execution_arn: String,
        /// Its batch id.
        batch_id: String,
        /// Valid tickets in the batch.
        tickets: usize,
        /// Messages deleted (valid and ignored ones).
        deleted: usize,
        /// Invalid messages left for the dead-letter queue.
        invalid: usize,
    },
    /// Only invalid messages came: nothing to start.
    OnlyInvalid {
        /// Invalid messages left for the dead-letter queue.
        invalid: usize,
    },
    /// Only ignored (and maybe invalid) messages came: the ignored ones were deleted,
    /// nothing was started.
    NothingToStart {
        /// Ignored messages deleted.
        deleted: usize,
        /// Invalid messages left for the dead-letter queue.
        invalid: usize,
    },
}

impl std::fmt::Display for GateOutcome {
    /// The outcome in a line: its name, then what it did.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateOutcome::Busy { running } => write!(
                f,
                "Busy: an execution is running ({}); the tickets wait",
                running.join(", ")
            ),
            GateOutcome::Idle => f.write_str("Idle: no tickets"),
            GateOutcome::Started {
                execution_arn,
                batch_id,
                tickets,
                deleted,
                invalid,
            } => write!(
                f,
                "Started {execution_arn}: batch {batch_id}, {tickets} tickets, {deleted} messages deleted, {invalid} invalid"
            ),
            GateOutcome::AlreadyStarted {
                execution_arn,
                batch_id,
                tickets,
                deleted,
                invalid,
            } => write!(
                f,
                "AlreadyStarted {execution_arn}: batch {batch_id}, {tickets} tickets, {deleted} messages deleted, {invalid} invalid"
            ),
            GateOutcome::OnlyInvalid { invalid } => write!(
                f,
                "OnlyInvalid: {invalid} invalid messages left for the dead-letter queue"
            ),
            GateOutcome::NothingToStart { deleted, invalid } => write!(
                f,
                "NothingToStart: {deleted} ignored messages deleted, {invalid} invalid"
            ),
        }
    }
}

/// What failed in the gatekeeper. Every variant says which step and what AWS said.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Could not tell whether an execution is running.
    #[error("cannot check for a running execution of {state_machine_arn}: {cause}")]
    ListExecutions {
        /// The state machine.
        state_machine_arn: String,
        /// What AWS said.
        cause: AwsError,
    },
    /// Could not receive from the queue.
    #[error("cannot receive tickets from {queue_url}: {cause}")]
    Receive {
        /// The queue.
        queue_url: String,
        /// What AWS said.
        cause: AwsError,
    },
    /// Could not start the execution; the messages come back after their visibility
    /// timeout and the next invocation tries again.
    #[error("cannot start execution {name}: {cause}")]
    Start {
        /// The execution name.
        name: String,
        /// What AWS said.
        cause: AwsError,
    },
    /// Could not delete ignored messages (nothing was started); they come back.
    #[error("cannot delete ignored messages from {queue_url}: {cause}")]
    DeleteIgnored {
        /// The queue.
        queue_url: String,
        /// What AWS said.
        cause: AwsError,
    },
    /// The execution is started but the messages could not be deleted: they come back,
    /// and the next invocation recognises the execution as already started.
    #[error("execution {execution_arn} is started but its tickets could not be deleted: {cause}")]
    Delete {
        /// The started execution.
        execution_arn: String,
        /// What AWS said.
        cause: AwsError,
    },
}

impl GateError {
    /// The AWS error behind the failure.
    pub fn cause(&self) -> &AwsError {
        match self {
            GateError::ListExecutions { cause, .. }
            | GateError::Receive { cause, .. }
            | GateError::Start { cause, .. }
            | GateError::DeleteIgnored { cause, .. }
            | GateError::Delete { cause, .. } => cause,
        }
    }
}

/// How [`start_batch_execution`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// Started now (or StartExecution recognised the same name and input).
    Started(String),
    /// An execution with that name exists already, with another input or finished.
    AlreadyExists(String),
}

/// A received message the gatekeeper may delete or release.
#[derive(Debug, Clone)]
struct Held {
    message_id: String,
    receipt_handle: String,
}

/// What the receive rounds brought.
#[derive(Debug, Default)]
struct Intake {
    /// Valid tickets with their message ids.
    tickets: Vec<(String, Ticket)>,
    /// Messages to delete once the execution is started (valid and ignored).
    handled: Vec<Held>,
    /// Ids of the invalid messages (each counted once across rounds).
    invalid: BTreeSet<String>,
}

/// One invocation of the gatekeeper.
pub async fn run_gatekeeper(
    clients: &Clients,
    config: &GatekeeperConfig,
) -> Result<GateOutcome, GateError> {
    let running = running_executions(clients, &config.state_machine_arn).await?;
    if !running.is_empty() {
        info!(running = ?running, "an execution is running: tickets wait");
        return Ok(GateOutcome::Busy { running });
    }

    let intake = receive_tickets(clients, config).await?;
    let invalid = intake.invalid.len();
    if intake.tickets.is_empty() {
        if intake.handled.is_empty() {
            return Ok(if invalid == 0 {
                info!("no tickets");
                GateOutcome::Idle
            } else {
                warn!(invalid, "only invalid messages: nothing to start");
                GateOutcome::OnlyInvalid { invalid }
            });
        }
        let deleted = delete_messages(clients, &config.queue_url, &intake.handled)
            .await
            .map_err(|cause| GateError::DeleteIgnored {
                queue_url: config.queue_url.clone(),
                cause,
            })?;
        info!(deleted, invalid, "only ignored messages: nothing to start");
        return Ok(GateOutcome::NothingToStart { deleted, invalid });
    }

    // Another gatekeeper may have started an execution and deleted its messages between
    // our first look and our receive: look again before starting a second one.
    let running = running_executions(clients, &config.state_machine_arn).await?;
    if !running.is_empty() {
        info!(running = ?running, "an execution started meanwhile: tickets released");
        release_messages(clients, &config.queue_url, &intake.handled).await;
        return Ok(GateOutcome::Busy { running });
    }

    let tickets = intake.tickets.len();
    let batch = coalesce(intake.tickets);
    let started =
        start_batch_execution(clients, &config.state_machine_arn, &batch, &config.options).await?;
    let execution_arn = match &started {
        StartOutcome::Started(arn) | StartOutcome::AlreadyExists(arn) => arn.clone(),
    };
    let deleted = delete_messages(clients, &config.queue_url, &intake.handled)
        .await
        .map_err(|cause| GateError::Delete {
            execution_arn: execution_arn.clone(),
            cause,
        })?;
    info!(
        batch_id = %batch.batch_id,
        execution_arn = %execution_arn,
        tickets,
        secrets = batch.secrets.len(),
        deleted,
        invalid,
        "tickets handed to the execution"
    );
    let batch_id = batch.batch_id;
    Ok(match started {
        StartOutcome::Started(_) => GateOutcome::Started {
            execution_arn,
            batch_id,
            tickets,
            deleted,
            invalid,
        },
        StartOutcome::AlreadyExists(_) => GateOutcome::AlreadyStarted {
            execution_arn,
            batch_id,
            tickets,
            deleted,
            invalid,
        },
    })
}

/// The ARNs of the state machine's RUNNING executions (at most a page: one is enough).
pub async fn running_executions(
    clients: &Clients,
    state_machine_arn: &str,
) -> Result<Vec<String>, GateError> {
    let page = clients
        .sfn
        .list_executions()
        .state_machine_arn(state_machine_arn)
        .status_filter(ExecutionStatus::Running)
        .max_results(10)
        .send()
        .await
        .map_err(|e| GateError::ListExecutions {
            state_machine_arn: state_machine_arn.to_string(),
            cause: AwsError::call("states:ListExecutions", e),
        })?;
    Ok(page
        .executions()
        .iter()
        .map(|e| e.execution_arn().to_string())
        .collect())
}

/// Starts the execution of a batch under its derived name with its deterministic input.
/// `ExecutionAlreadyExists` means an earlier attempt started it: not an error.
pub async fn start_batch_execution(
    clients: &Clients,
    state_machine_arn: &str,
    batch: &Batch,
    options: &RunOptions,
) -> Result<StartOutcome, GateError> {
    let name = execution_name(batch);
    let input = ExecutionInput::new(batch, options).to_json();
    let result = clients
        .sfn
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(&name)
        .input(input)
        .send()
        .await;
    match result {
        Ok(output) => {
            info!(execution = %name, batch_id = %batch.batch_id, "execution started");
            Ok(StartOutcome::Started(output.execution_arn().to_string()))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_already_exists()) =>
        {
            info!(
                execution = %name,
                batch_id = %batch.batch_id,
                "execution already exists: an earlier attempt started it"
            );
            Ok(StartOutcome::AlreadyExists(execution_arn(
                state_machine_arn,
                &name,
            )))
        }
        Err(e) => Err(GateError::Start {
            name,
            cause: AwsError::call("states:StartExecution", e),
        }),
    }
}

/// The ARN of a standard workflow's execution: `...:stateMachine:SM` → `...:execution:SM:NAME`.
fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// Receives in rounds until a round brings no invalid message (or nothing, or the
/// rounds run out), releasing each invalid message at once.
async fn receive_tickets(
    clients: &Clients,
    config: &GatekeeperConfig,
) -> Result<Intake, GateError> {
    let mut intake = Intake::default();
    for round in 1..=config.max_receive_rounds.max(1) {
        let messages = receive_round(clients, config).await?;
        if messages.is_empty() {
            break;
        }
        let mut poison = Vec::new();
        for message in messages {
            let (Some(message_id), Some(receipt_handle)) =
                (message.message_id.clone(), message.receipt_handle.clone())
            else {
                continue;
            };
            let held = Held {
                message_id,
                receipt_handle,
            };
            match parse_ticket(message.body().unwrap_or_default(), &held.message_id) {
                Ok(TicketParse::Ticket(ticket)) => {
                    intake.tickets.push((held.message_id.clone(), ticket));
                    intake.handled.push(held);
                }
                Ok(TicketParse::Ignored(reason)) => {
                    info!(message_id = %held.message_id, reason = %reason, "message ignored");
                    intake.handled.push(held);
                }
                Err(error) => {
                    warn!(
                        message_id = %held.message_id,
                        receive_count = receive_count(&message),
                        round,
                        error = %error,
                        "invalid ticket: left for the dead-letter queue"
                    );
                    intake.invalid.insert(held.message_id.clone());
                    poison.push(held);
                }
            }
        }
        if poison.is_empty() {
            break;
        }
        release_messages(clients, &config.queue_url, &poison).await;
    }
    Ok(intake)
}

async fn receive_round(
    clients: &Clients,
    config: &GatekeeperConfig,
) -> Result<Vec<Message>, GateError> {
    let output = clients
        .sqs
        .receive_message()
        .queue_url(&config.queue_url)
        .max_number_of_messages(SQS_BATCH as i32)
        .wait_time_seconds(RECEIVE_WAIT_SECONDS)
        .visibility_timeout(config.visibility_timeout_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| GateError::Receive {
            queue_url: config.queue_url.clone(),
            cause: AwsError::call("sqs:ReceiveMessage", e),
        })?;
    Ok(output.messages.unwrap_or_default())
}

fn receive_count(message: &Message) -> Option<u32> {
    message
        .attributes()?
        .get(&MessageSystemAttributeName::ApproximateReceiveCount)?
        .parse()
        .ok()
}

/// Deletes messages in batches of ten; returns how many were deleted. Entries the queue
/// refuses are logged (they come back and are handled again).
async fn delete_messages(
    clients: &Clients,
    queue_url: &str,
    messages: &[Held],
) -> Result<usize, AwsError> {
    let mut deleted = 0;
    for chunk in messages.chunks(SQS_BATCH) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, held)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&held.receipt_handle)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let output = clients
            .sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| AwsError::call("sqs:DeleteMessageBatch", e))?;
        deleted += output.successful().len();
        for failed in output.failed() {
            let message_id = failed_message_id(chunk, failed.id());
            warn!(
                message_id,
                code = failed.code(),
                "message not deleted: it will come back"
            );
        }
    }
    Ok(deleted)
}

/// Makes messages visible again at once. Best effort: a message not released becomes
/// visible anyway when its visibility timeout ends.
async fn release_messages(clients: &Clients, queue_url: &str, messages: &[Held]) {
    for chunk in messages.chunks(SQS_BATCH) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, held)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&held.receipt_handle)
                    .visibility_timeout(0)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let result = clients
            .sqs
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        match result {
            Ok(output) => {
                for failed in output.failed() {
                    let message_id = failed_message_id(chunk, failed.id());
                    warn!(message_id, code = failed.code(), "message not released");
                }
            }
            Err(e) => {
                let error = AwsError::call("sqs:ChangeMessageVisibilityBatch", e);
                warn!(error = %error, "messages not released: visible again after their timeout");
            }
        }
    }
}

/// The message id behind a batch entry id (its index in the chunk).
fn failed_message_id<'a>(chunk: &'a [Held], entry_id: &str) -> &'a str {
    entry_id
        .parse::<usize>()
        .ok()
        .and_then(|i| chunk.get(i))
        .map_or("?", |held| held.message_id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arn_of_a_standard_workflow() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:123456789012:stateMachine:cascade",
                "cascade-0123456789abcdef"
            ),
            "arn:aws:states:us-east-1:123456789012:execution:cascade:cascade-0123456789abcdef"
        );
    }
}
