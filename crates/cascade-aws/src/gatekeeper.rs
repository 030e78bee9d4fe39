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
//!    Before the start, each ticket's event id is claimed in the application's bucket
//!    ([`HANDED_OVER_PREFIX`], a marker object written only if absent): EventBridge
//!    delivers an event at least once, and a redelivery later than the queue's 5-minute
//!    deduplication window is a new message with the same event id. A ticket whose event
//!    was claimed by another message is dropped (deleted with the batch's messages, its
//!    ids logged). Each claim names the execution its batch is to start under: the same
//!    message coming back after a crash finds its own claim, and is dropped when that
//!    execution exists (it was handed over, even if new tickets now make a different
//!    batch), kept when it does not (the crash came before the start). Two tickets of
//!    one event in one receive count once.
//! 5. Only then delete the valid, the ignored and the redelivered messages.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sfn::types::ExecutionStatus;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use cascade_core::intake::{
    Batch, ExecutionInput, RunOptions, Ticket, TicketParse, coalesce, execution_name, parse_ticket,
};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::clients::Clients;
use crate::error::AwsError;

/// Most messages one ReceiveMessage (and one batch call) handles.
const SQS_BATCH: usize = 10;
/// Long polling for one second: short polling may miss messages on a real queue.
const RECEIVE_WAIT_SECONDS: i32 = 1;
/// Where the gatekeeper remembers, in the application's bucket, the events it handed to an
/// execution: one object per event id. template.yaml expires them after 2 days, longer
/// than EventBridge's 24-hour retries.
pub const HANDED_OVER_PREFIX: &str = "handed-over/";

/// What the gatekeeper works on.
#[derive(Debug, Clone)]
pub struct GatekeeperConfig {
    /// The FIFO ticket queue.
    pub queue_url: String,
    /// The Secret Cascade state machine.
    pub state_machine_arn: String,
    /// The application's bucket, where the event ids handed to an execution are kept
    /// (under [`HANDED_OVER_PREFIX`]).
    pub bucket: String,
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
        /// Messages deleted (valid, ignored and redelivered ones).
        deleted: usize,
        /// Invalid messages left for the dead-letter queue.
        invalid: usize,
        /// Tickets dropped as handed over already: a redelivered event, or a message whose
        /// execution started before a crash.
        redelivered: usize,
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
        /// Messages deleted (valid, ignored and redelivered ones).
        deleted: usize,
        /// Invalid messages left for the dead-letter queue.
        invalid: usize,
        /// Tickets dropped as handed over already: a redelivered event, or a message whose
        /// execution started before a crash.
        redelivered: usize,
    },
    /// Only invalid messages came: nothing to start.
    OnlyInvalid {
        /// Invalid messages left for the dead-letter queue.
        invalid: usize,
    },
    /// Only ignored or redelivered (and maybe invalid) messages came: those were deleted,
    /// nothing was started.
    NothingToStart {
        /// Ignored and redelivered messages deleted.
        deleted: usize,
        /// Invalid messages left for the dead-letter queue.
        invalid: usize,
        /// Tickets dropped as handed over already: a redelivered event, or a message whose
        /// execution started before a crash.
        redelivered: usize,
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
                redelivered,
            } => write!(
                f,
                "Started {execution_arn}: batch {batch_id}, {tickets} tickets, {deleted} messages deleted, {invalid} invalid, {redelivered} redelivered dropped"
            ),
            GateOutcome::AlreadyStarted {
                execution_arn,
                batch_id,
                tickets,
                deleted,
                invalid,
                redelivered,
            } => write!(
                f,
                "AlreadyStarted {execution_arn}: batch {batch_id}, {tickets} tickets, {deleted} messages deleted, {invalid} invalid, {redelivered} redelivered dropped"
            ),
            GateOutcome::OnlyInvalid { invalid } => write!(
                f,
                "OnlyInvalid: {invalid} invalid messages left for the dead-letter queue"
            ),
            GateOutcome::NothingToStart {
                deleted,
                invalid,
                redelivered,
            } => write!(
                f,
                "NothingToStart: {deleted} ignored or redelivered messages deleted, {invalid} invalid, {redelivered} redelivered dropped"
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
    /// Could not claim an event id in the bucket (nothing was started); the messages
    /// come back after their visibility timeout and the next invocation tries again.
    #[error("cannot record the hand-over of event ids in s3://{bucket}/{key}: {cause}")]
    HandOver {
        /// The bucket.
        bucket: String,
        /// The marker's key.
        key: String,
        /// What AWS said.
        cause: AwsError,
    },
    /// Could not tell whether the execution a returning ticket's claim names was started
    /// (nothing was started now); the messages come back and the next invocation asks
    /// again.
    #[error(
        "cannot tell whether execution {execution_arn} was started for returning tickets: {cause}"
    )]
    DescribeExecution {
        /// The execution the claims name.
        execution_arn: String,
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
            | GateError::HandOver { cause, .. }
            | GateError::DescribeExecution { cause, .. }
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
    if intake.tickets.is_empty() && intake.handled.is_empty() {
        return Ok(if invalid == 0 {
            info!("no tickets");
            GateOutcome::Idle
        } else {
            warn!(invalid, "only invalid messages: nothing to start");
            GateOutcome::OnlyInvalid { invalid }
        });
    }

    let mut fresh = Vec::new();
    let mut redelivered = 0;
    if !intake.tickets.is_empty() {
        // Another gatekeeper may have started an execution and deleted its messages
        // between our first look and our receive: look again before starting a second one.
        let running = running_executions(clients, &config.state_machine_arn).await?;
        if !running.is_empty() {
            info!(running = ?running, "an execution started meanwhile: tickets released");
            release_messages(clients, &config.queue_url, &intake.handled).await;
            return Ok(GateOutcome::Busy { running });
        }
        let handed = hand_over(clients, config, intake.tickets).await?;
        (fresh, redelivered) = (handed.fresh, handed.dropped);
    }

    if fresh.is_empty() {
        let deleted = delete_messages(clients, &config.queue_url, &intake.handled)
            .await
            .map_err(|cause| GateError::DeleteIgnored {
                queue_url: config.queue_url.clone(),
                cause,
            })?;
        info!(
            deleted,
            invalid, redelivered, "only ignored or redelivered messages: nothing to start"
        );
        return Ok(GateOutcome::NothingToStart {
            deleted,
            invalid,
            redelivered,
        });
    }

    let tickets = fresh.len();
    let batch = coalesce(fresh);
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
        redelivered,
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
            redelivered,
        },
        StartOutcome::AlreadyExists(_) => GateOutcome::AlreadyStarted {
            execution_arn,
            batch_id,
            tickets,
            deleted,
            invalid,
            redelivered,
        },
    })
}

/// What the marker of an event handed over says: which message brought it and the
/// execution its batch was to start under (written before the start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HandedOver {
    event_id: String,
    message_id: String,
    /// Absent in markers written before the gatekeeper recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    execution: Option<String>,
}

/// Whose an event's claim is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Claim {
    /// This message's, written now with the execution named.
    Ours,
    /// This message's, written by an earlier attempt that stopped before deleting it;
    /// names the execution that attempt was to start, if it recorded one.
    OursBefore(Option<String>),
    /// Another message's: this one is a redelivery of an event already handed over.
    Theirs(String),
}

/// The key of an event's marker: the event id itself when it is made of the characters
/// of EventBridge's and SQS's ids, else its SHA-256.
pub fn handed_over_key(event_id: &str) -> String {
    let plain = !event_id.is_empty()
        && event_id.len() <= 128
        && event_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !event_id.starts_with('.');
    if plain {
        format!("{HANDED_OVER_PREFIX}{event_id}.json")
    } else {
        format!(
            "{HANDED_OVER_PREFIX}sha256-{}.json",
            cascade_core::digest::sha256_hex(event_id)
        )
    }
}

/// The tickets to start a batch with, once every event is claimed.
struct HandOver {
    /// One ticket per event, none handed over before, ordered by message id.
    fresh: Vec<(String, Ticket)>,
    /// Tickets dropped: their event was handed over already (by another message, or by
    /// this one to an execution that started before a crash).
    dropped: usize,
}

/// Keeps one ticket per event (the lowest message id) and, of those, the ones not handed
/// over yet: claims each event for its message, naming the execution the batch will
/// start under, before the start.
///
/// A message that finds its own claim came back after a crash. If the execution its
/// claim names exists, the message was handed over: it is dropped, even when new
/// tickets make this batch a different one (whose name StartExecution's idempotency
/// would not recognise). If it does not exist, the crash came before the start and the
/// ticket stays. Claims of the kept tickets that name another execution than this
/// batch's are written again before the start.
async fn hand_over(
    clients: &Clients,
    config: &GatekeeperConfig,
    mut tickets: Vec<(String, Ticket)>,
) -> Result<HandOver, GateError> {
    tickets.sort_by(|a, b| a.0.cmp(&b.0));
    let mut by_event: BTreeMap<String, (String, Ticket)> = BTreeMap::new();
    let mut dropped = 0;
    for (message_id, ticket) in tickets {
        if let Some((first, _)) = by_event.get(&ticket.event_id) {
            info!(
                event_id = %ticket.event_id,
                message_id = %message_id,
                first_message_id = %first,
                "the same event twice in one receive: counted once"
            );
            dropped += 1;
            continue;
        }
        by_event.insert(ticket.event_id.clone(), (message_id, ticket));
    }
    // The name the batch gets when every ticket is kept, as almost always.
    let intended = execution_name(&coalesce(by_event.values().cloned()));
    let claims = by_event.into_values().map(|(message_id, ticket)| {
        let intended = &intended;
        async move {
            let claim = claim_event(
                clients,
                &config.bucket,
                &ticket.event_id,
                &message_id,
                intended,
            )
            .await;
            (message_id, ticket, claim)
        }
    });
    let mut kept = Vec::new();
    let mut started: BTreeMap<String, bool> = BTreeMap::new();
    for (message_id, ticket, claim) in futures::future::join_all(claims).await {
        let recorded = match claim? {
            Claim::Ours => Some(intended.clone()),
            Claim::OursBefore(None) => None,
            Claim::OursBefore(Some(execution)) => {
                let exists = match started.get(&execution) {
                    Some(exists) => *exists,
                    None => {
                        let exists =
                            execution_exists(clients, &config.state_machine_arn, &execution)
                                .await?;
                        started.insert(execution.clone(), exists);
                        exists
                    }
                };
                if exists {
                    info!(
                        event_id = %ticket.event_id,
                        message_id = %message_id,
                        execution = %execution,
                        "ticket handed to an execution before a crash: dropped"
                    );
                    dropped += 1;
                    continue;
                }
                Some(execution)
            }
            Claim::Theirs(earlier) => {
                info!(
                    event_id = %ticket.event_id,
                    message_id = %message_id,
                    handed_over_by = %earlier,
                    "event already handed over to an execution: redelivery dropped"
                );
                dropped += 1;
                continue;
            }
        };
        kept.push((message_id, ticket, recorded));
    }
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    if !kept.is_empty() {
        let name = execution_name(&coalesce(
            kept.iter()
                .map(|(id, ticket, _)| (id.clone(), ticket.clone())),
        ));
        let rewrites = kept
            .iter()
            .filter(|(_, _, recorded)| recorded.as_deref() != Some(name.as_str()))
            .map(|(message_id, ticket, _)| {
                write_marker(
                    clients,
                    &config.bucket,
                    &ticket.event_id,
                    message_id,
                    &name,
                    false,
                )
            });
        for written in futures::future::join_all(rewrites).await {
            written?;
        }
    }
    Ok(HandOver {
        fresh: kept
            .into_iter()
            .map(|(message_id, ticket, _)| (message_id, ticket))
            .collect(),
        dropped,
    })
}

/// Whether an execution of this name exists (in any status).
async fn execution_exists(
    clients: &Clients,
    state_machine_arn: &str,
    name: &str,
) -> Result<bool, GateError> {
    let arn = execution_arn(state_machine_arn, name);
    match clients
        .sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_does_not_exist()) =>
        {
            Ok(false)
        }
        Err(e) => Err(GateError::DescribeExecution {
            execution_arn: arn,
            cause: AwsError::call("states:DescribeExecution", e),
        }),
    }
}

/// Writes an event's marker: only if there is none (`If-None-Match: *`, the claim), or
/// over this message's own (naming another execution). `Ok(false)`: another marker was
/// there.
async fn write_marker(
    clients: &Clients,
    bucket: &str,
    event_id: &str,
    message_id: &str,
    execution: &str,
    only_if_absent: bool,
) -> Result<bool, GateError> {
    let key = handed_over_key(event_id);
    let marker = HandedOver {
        event_id: event_id.to_string(),
        message_id: message_id.to_string(),
        execution: Some(execution.to_string()),
    };
    let body = serde_json::to_vec(&marker).expect("strings serialise");
    let mut put = clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/json")
        .body(ByteStream::from(body));
    if only_if_absent {
        put = put.if_none_match("*");
    }
    match put.send().await {
        Ok(_) => Ok(true),
        Err(e)
            if only_if_absent
                && (e.raw_response().map(|r| r.status().as_u16()) == Some(412)
                    || aws_sdk_s3::error::ProvideErrorMetadata::code(&e)
                        == Some("PreconditionFailed")) =>
        {
            Ok(false)
        }
        Err(e) => Err(GateError::HandOver {
            bucket: bucket.to_string(),
            key,
            cause: AwsError::call("s3:PutObject", e),
        }),
    }
}

/// Claims an event for a message, naming the execution it is to start under: writes its
/// marker only if there is none, else reads whose it is.
async fn claim_event(
    clients: &Clients,
    bucket: &str,
    event_id: &str,
    message_id: &str,
    execution: &str,
) -> Result<Claim, GateError> {
    if write_marker(clients, bucket, event_id, message_id, execution, true).await? {
        return Ok(Claim::Ours);
    }
    let key = handed_over_key(event_id);
    let error = |cause| GateError::HandOver {
        bucket: bucket.to_string(),
        key: key.clone(),
        cause,
    };
    let got = clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| error(AwsError::call("s3:GetObject", e)))?;
    let bytes = got
        .body
        .collect()
        .await
        .map_err(|e| {
            error(AwsError::other(
                "s3:GetObject",
                crate::error::ErrorKind::Unavailable,
                e.to_string(),
            ))
        })?
        .into_bytes();
    Ok(match serde_json::from_slice::<HandedOver>(&bytes) {
        Ok(earlier) if earlier.message_id != message_id => Claim::Theirs(earlier.message_id),
        Ok(earlier) => Claim::OursBefore(earlier.execution),
        Err(parse) => {
            // Better a second run than a lost change.
            warn!(key = %key, error = %parse, "unreadable hand-over marker: the ticket is kept");
            Claim::OursBefore(None)
        }
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
    fn a_marker_key_is_the_event_id_or_its_digest() {
        assert_eq!(
            handed_over_key("4bd5e5c4-0d3b-7f35-a2d5-29e2cbd2a8b5"),
            "handed-over/4bd5e5c4-0d3b-7f35-a2d5-29e2cbd2a8b5.json"
        );
        for odd in ["", "../x", "a/b", ".hidden", &"e".repeat(129)] {
            let key = handed_over_key(odd);
            assert!(key.starts_with("handed-over/sha256-"), "{odd:?}: {key}");
            assert_eq!(key.len(), "handed-over/sha256-".len() + 64 + ".json".len());
        }
        assert_ne!(handed_over_key("a/b"), handed_over_key("a_b"));
    }

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
