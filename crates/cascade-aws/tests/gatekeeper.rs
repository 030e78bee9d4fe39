//! The gatekeeper against the local stack: one execution at a time, no second run after
//! a crash between start and delete, coalescing, poison messages, concurrent
//! invocations, and a native Secrets Manager event through EventBridge; the same event
//! delivered twice (in one batch, and again after its batch started), many rounds of 8
//! concurrent gatekeepers, and an execution that fails outright.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_sfn::types::ExecutionStatus;
use aws_sdk_sqs::types::QueueAttributeName;
use cascade_aws::Clients;
use cascade_aws::gatekeeper::{
    GateError, GateOutcome, GatekeeperConfig, StartOutcome, run_gatekeeper, start_batch_execution,
};
use cascade_core::intake::{
    ExecutionInput, RunOptions, TicketParse, coalesce, execution_name, parse_ticket,
};
use cascade_core::plan::StrategyChoice;
use cascade_core::secret::AWSCURRENT;
use cascade_tests::{ACCOUNT, LocalStack, LocalStackOptions, REGION};
use serde_json::json;

const GROUP: &str = "cascade";
const BUCKET: &str = "cascade-state";
const ROLE: &str = "arn:aws:iam::123456789012:role/cascade-states";

/// A local stack with the ticket queue, its dead-letter queue and a state machine whose
/// executions stay RUNNING for `hold_seconds`.
struct Fixture {
    local: LocalStack,
    clients: Clients,
    queue_url: String,
    queue_arn: String,
    dlq_url: String,
    config: GatekeeperConfig,
}

impl Fixture {
    async fn new(hold_seconds: u32) -> Fixture {
        Fixture::with_definition(json!({
            "StartAt": "Hold",
            "States": {
                "Hold": {"Type": "Wait", "Seconds": hold_seconds, "Next": "Done"},
                "Done": {"Type": "Succeed"}
            }
        }))
        .await
    }

    /// The same, with a state machine of this definition.
    async fn with_definition(definition: serde_json::Value) -> Fixture {
        Fixture::with_options(definition, LocalStackOptions::default()).await
    }

    /// A fixture whose executions hold 1 second, on a local stack started with these
    /// options (faults injected).
    async fn with_faults(options: LocalStackOptions) -> Fixture {
        Fixture::with_options(
            json!({
                "StartAt": "Hold",
                "States": {
                    "Hold": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
                    "Done": {"Type": "Succeed"}
                }
            }),
            options,
        )
        .await
    }

    async fn with_options(definition: serde_json::Value, options: LocalStackOptions) -> Fixture {
        let local = tokio::task::spawn_blocking(move || LocalStack::start_with(&options))
            .await
            .unwrap()
            .expect("local AWS stack");
        let clients = local.clients().await;
        let sqs = &clients.sqs;

        let dlq_url = create_queue(sqs, "tickets-dlq.fifo", BTreeMap::new()).await;
        let dlq_arn = queue_arn(sqs, &dlq_url).await;
        let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"});
        let queue_url = create_queue(
            sqs,
            "tickets.fifo",
            BTreeMap::from([
                (QueueAttributeName::ContentBasedDeduplication, "true".into()),
                (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            ]),
        )
        .await;
        let queue_arn = queue_arn(sqs, &queue_url).await;
        clients
            .s3
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();

        let state_machine_arn = clients
            .sfn
            .create_state_machine()
            .name("cascade")
            .definition(definition.to_string())
            .role_arn(ROLE)
            .send()
            .await
            .unwrap()
            .state_machine_arn()
            .to_string();

        let config = GatekeeperConfig {
            queue_url: queue_url.clone(),
            state_machine_arn,
            bucket: BUCKET.to_string(),
            options: RunOptions {
                strategy: StrategyChoice::Auto,
                poll_seconds: 5,
            },
            visibility_timeout_seconds: 60,
            max_receive_rounds: 5,
        };
        Fixture {
            local,
            clients,
            queue_url,
            queue_arn,
            dlq_url,
            config,
        }
    }

    /// Sends a ticket to the queue's one message group; returns its message id.
    async fn send(&self, body: &str) -> String {
        self.clients
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_group_id(GROUP)
            .message_body(body)
            .send()
            .await
            .unwrap()
            .message_id()
            .unwrap()
            .to_string()
    }

    async fn gate(&self) -> GateOutcome {
        run_gatekeeper(&self.clients, &self.config).await.unwrap()
    }

    /// A gatekeeper that stops at the first failed call (no SDK retries) and whose
    /// received messages come back after a second: it crashes where the fault is
    /// injected.
    async fn gate_and_crash(&self) -> GateError {
        let config = self
            .local
            .sdk_config()
            .await
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        let gatekeeper = GatekeeperConfig {
            visibility_timeout_seconds: 1,
            ..self.config.clone()
        };
        run_gatekeeper(&Clients::new(&config), &gatekeeper)
            .await
            .expect_err("the injected fault stops the gatekeeper")
    }

    /// The hand-over marker of an event.
    async fn marker(&self, event_id: &str) -> serde_json::Value {
        let bytes = self
            .clients
            .s3
            .get_object()
            .bucket(BUCKET)
            .key(cascade_aws::gatekeeper::handed_over_key(event_id))
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Gates until the queue is empty, waiting out each execution it starts (bounded),
    /// and totals what the gatekeepers did. A FIFO receive may hand over only part of a
    /// group's messages once their visibility ends (moto skips some, and real SQS
    /// promises no count), so a test of what comes back counts over every gate.
    async fn drain(&self) -> Drained {
        let mut drained = Drained::default();
        for _ in 0..8 {
            if self.counts(&self.queue_url).await == (0, 0) {
                break;
            }
            for arn in self.executions().await {
                self.wait_until_ended(&arn).await;
            }
            match self.gate().await {
                GateOutcome::Started {
                    execution_arn,
                    deleted,
                    redelivered,
                    ..
                } => {
                    drained
                        .events
                        .extend(event_ids_of(self, &execution_arn).await);
                    drained.started.push(execution_arn);
                    drained.deleted += deleted;
                    drained.redelivered += redelivered;
                }
                GateOutcome::NothingToStart {
                    deleted,
                    redelivered,
                    ..
                } => {
                    drained.deleted += deleted;
                    drained.redelivered += redelivered;
                }
                GateOutcome::Idle => tokio::time::sleep(Duration::from_millis(200)).await,
                other => panic!("unexpected while draining: {other:?}"),
            }
        }
        assert_eq!(self.counts(&self.queue_url).await, (0, 0), "{drained:?}");
        drained.events.sort();
        drained
    }

    /// (visible, in flight) messages of a queue.
    async fn counts(&self, queue_url: &str) -> (u32, u32) {
        let attributes = self
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let count = |name: &QueueAttributeName| -> u32 {
            attributes
                .attributes()
                .and_then(|a| a.get(name))
                .map_or(0, |n| n.parse().unwrap())
        };
        (
            count(&QueueAttributeName::ApproximateNumberOfMessages),
            count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Every execution of the state machine, any status.
    async fn executions(&self) -> Vec<String> {
        let mut arns = Vec::new();
        let mut pages = self
            .clients
            .sfn
            .list_executions()
            .state_machine_arn(&self.config.state_machine_arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            arns.extend(
                page.unwrap()
                    .executions()
                    .iter()
                    .map(|e| e.execution_arn().to_string()),
            );
        }
        arns
    }

    /// Sends a body with its own deduplication id: a redelivery later than the queue's
    /// 5-minute deduplication window is a new message; returns its message id.
    async fn send_again(&self, body: &str, dedup: &str) -> String {
        self.clients
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_group_id(GROUP)
            .message_deduplication_id(dedup)
            .message_body(body)
            .send()
            .await
            .unwrap()
            .message_id()
            .unwrap()
            .to_string()
    }

    async fn status_of(&self, execution_arn: &str) -> ExecutionStatus {
        self.clients
            .sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .unwrap()
            .status()
            .clone()
    }

    async fn input_of(&self, execution_arn: &str) -> String {
        self.clients
            .sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .unwrap()
            .input()
            .unwrap()
            .to_string()
    }

    /// Polls until the execution is no longer RUNNING (bounded); it must have succeeded.
    async fn wait_until_finished(&self, execution_arn: &str) {
        assert_eq!(
            self.wait_until_ended(execution_arn).await,
            ExecutionStatus::Succeeded
        );
    }

    /// Polls until the execution is no longer RUNNING (bounded); its status.
    async fn wait_until_ended(&self, execution_arn: &str) -> ExecutionStatus {
        for _ in 0..600 {
            let status = self.status_of(execution_arn).await;
            if status != ExecutionStatus::Running {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("execution {execution_arn} still RUNNING after the polling bound");
    }

    /// Polls until the queue shows `visible` messages (bounded).
    async fn wait_for_visible(&self, queue_url: &str, visible: u32) {
        for _ in 0..200 {
            if self.counts(queue_url).await.0 == visible {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{queue_url} never showed {visible} visible messages");
    }
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    mut attributes: BTreeMap<QueueAttributeName, String>,
) -> String {
    attributes.insert(QueueAttributeName::FifoQueue, "true".into());
    sqs.create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.into_iter().collect()))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string()
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone()
}

fn secret_arn(name: &str) -> String {
    format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf")
}

/// The detail of Secrets Manager's native event for a new current value.
fn label_updated_detail(name: &str, version: &str) -> serde_json::Value {
    json!({"name": name, "labelUpdated": AWSCURRENT, "versionId": version})
}

/// A native `Secret Label Updated` event as EventBridge delivers it.
fn native_event(name: &str, event_id: &str) -> String {
    json!({
        "version": "0",
        "id": event_id,
        "detail-type": "Secret Label Updated",
        "source": "aws.secretsmanager",
        "account": ACCOUNT,
        "time": "2024-02-06T16:43:48Z",
        "region": REGION,
        "resources": [secret_arn(name)],
        "detail": label_updated_detail(name, &format!("v-{event_id}")),
    })
    .to_string()
}

fn manual_ticket(secret: &str, by: &str) -> String {
    json!({"kind": "manual", "secret": secret, "requested_by": by}).to_string()
}

/// (execution ARN, tickets, deleted, invalid) of a `Started` outcome.
/// What the gates of [`Fixture::drain`] did, in total.
#[derive(Debug, Default)]
struct Drained {
    /// Executions started, in order.
    started: Vec<String>,
    /// Events of the started executions, sorted.
    events: Vec<String>,
    /// Messages deleted.
    deleted: usize,
    /// Tickets dropped as handed over already.
    redelivered: usize,
}

fn started(outcome: &GateOutcome) -> (String, usize, usize, usize) {
    match outcome {
        GateOutcome::Started {
            execution_arn,
            tickets,
            deleted,
            invalid,
            ..
        } => (execution_arn.clone(), *tickets, *deleted, *invalid),
        other => panic!("expected Started, got {other:?}"),
    }
}

#[tokio::test]
async fn an_idle_queue_starts_nothing() {
    let f = Fixture::new(1).await;
    assert_eq!(f.gate().await, GateOutcome::Idle);
    assert!(f.executions().await.is_empty());
}

#[tokio::test]
async fn nothing_is_received_while_an_execution_runs() {
    let f = Fixture::new(5).await;
    f.send(&native_event("app/db", "e1")).await;
    let (execution_arn, tickets, deleted, _) = started(&f.gate().await);
    assert_eq!((tickets, deleted), (1, 1));

    f.send(&native_event("app/api", "e2")).await;
    f.send(&manual_ticket("app/cache", "alice")).await;
    match f.gate().await {
        GateOutcome::Busy { running } => assert_eq!(running, vec![execution_arn.to_string()]),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert_eq!(
        f.counts(&f.queue_url).await,
        (2, 0),
        "every message left as it was"
    );
    assert_eq!(f.executions().await.len(), 1);

    // Once it has finished, the waiting tickets form the next batch.
    f.wait_until_finished(&execution_arn).await;
    let (second, tickets, _, _) = started(&f.gate().await);
    assert_ne!(second, execution_arn);
    assert_eq!(tickets, 2);
    assert_eq!(f.executions().await.len(), 2);
}

#[tokio::test]
async fn a_crash_between_start_and_delete_does_not_run_the_batch_twice() {
    let f = Fixture::new(1).await;
    for i in 0..3 {
        f.send(&native_event(&format!("app/s{i}"), &format!("e{i}")))
            .await;
    }

    // An earlier gatekeeper: receive, start ... and die before deleting.
    let received = f
        .clients
        .sqs
        .receive_message()
        .queue_url(&f.queue_url)
        .max_number_of_messages(10)
        .visibility_timeout(f.config.visibility_timeout_seconds)
        .send()
        .await
        .unwrap();
    let messages = received.messages();
    assert_eq!(messages.len(), 3);
    let tickets = messages.iter().map(|m| {
        let id = m.message_id().unwrap().to_string();
        match parse_ticket(m.body().unwrap(), &id).unwrap() {
            TicketParse::Ticket(t) => (id, t),
            TicketParse::Ignored(reason) => panic!("ignored: {reason}"),
        }
    });
    let batch = coalesce(tickets);
    let first = start_batch_execution(
        &f.clients,
        &f.config.state_machine_arn,
        &batch,
        &f.config.options,
    )
    .await
    .unwrap();
    let StartOutcome::Started(first_arn) = first else {
        panic!("expected a fresh start, got {first:?}");
    };
    // Its visibility timeout ends: the same messages are visible again.
    for m in messages {
        f.clients
            .sqs
            .change_message_visibility()
            .queue_url(&f.queue_url)
            .receipt_handle(m.receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    f.wait_until_finished(&first_arn).await;

    let outcome = f.gate().await;
    let GateOutcome::AlreadyStarted {
        execution_arn,
        batch_id,
        tickets,
        deleted,
        invalid,
        redelivered,
    } = outcome
    else {
        panic!("expected AlreadyStarted, got {outcome:?}");
    };
    assert_eq!(execution_arn, first_arn);
    assert_eq!(batch_id, batch.batch_id);
    assert_eq!((tickets, deleted, invalid, redelivered), (3, 3, 0, 0));
    assert_eq!(f.executions().await, vec![first_arn]);
    assert_eq!(f.counts(&f.queue_url).await, (0, 0));
}

#[tokio::test]
async fn a_crash_after_the_start_with_new_tickets_arriving_does_not_run_the_batch_again() {
    let f = Fixture::with_faults(LocalStackOptions {
        unavailable: Some("sqs:DeleteMessageBatch=1".into()),
        ..LocalStackOptions::default()
    })
    .await;
    let m1 = f.send(&native_event("app/db", "e1")).await;
    f.send(&native_event("app/api", "e2")).await;

    // The gatekeeper starts the batch and dies before deleting its two messages.
    let GateError::Delete {
        execution_arn: first,
        ..
    } = f.gate_and_crash().await
    else {
        panic!("expected the delete to fail");
    };
    let mut events = event_ids_of(&f, &first).await;
    events.sort();
    assert_eq!(events, vec!["e1", "e2"]);
    let name = first.rsplit(':').next().unwrap();
    assert_eq!(
        f.marker("e1").await,
        json!({"event_id": "e1", "message_id": m1, "execution": name}),
        "the claim names the execution before it starts"
    );
    f.wait_until_finished(&first).await;

    // A new change arrives before the two come back: the three together would be a new
    // batch id, which StartExecution's idempotency does not recognise.
    f.send(&native_event("app/cache", "e3")).await;
    f.wait_for_visible(&f.queue_url, 3).await;
    let drained = f.drain().await;
    assert_eq!(drained.deleted, 3, "{drained:?}");
    assert_eq!(
        drained.redelivered, 2,
        "both crashed tickets dropped: {drained:?}"
    );
    assert_eq!(
        drained.events,
        vec!["e3"],
        "only the new ticket runs: {drained:?}"
    );
    assert_eq!(drained.started.len(), 1, "{drained:?}");
    assert_eq!(f.executions().await.len(), 2);
}

#[tokio::test]
async fn a_crash_before_the_start_keeps_every_ticket_for_the_next_batch() {
    let f = Fixture::with_faults(LocalStackOptions {
        unavailable: Some("stepfunctions:StartExecution=1".into()),
        ..LocalStackOptions::default()
    })
    .await;
    f.send(&native_event("app/db", "e1")).await;
    f.send(&native_event("app/api", "e2")).await;

    // The claims are written, naming an execution that never starts.
    let GateError::Start { name: never, .. } = f.gate_and_crash().await else {
        panic!("expected the start to fail");
    };
    assert_eq!(f.marker("e1").await["execution"], json!(never));
    assert!(f.executions().await.is_empty());

    f.send(&native_event("app/cache", "e3")).await;
    f.wait_for_visible(&f.queue_url, 3).await;
    let drained = f.drain().await;
    assert_eq!(
        (drained.deleted, drained.redelivered),
        (3, 0),
        "{drained:?}"
    );
    assert_eq!(
        drained.events,
        vec!["e1", "e2", "e3"],
        "no ticket lost: {drained:?}"
    );
    assert!(!drained.started.is_empty());
    // The claims name the execution that started, should that one crash too.
    let e1_execution = f.marker("e1").await["execution"].clone();
    assert_ne!(e1_execution, json!(never));
    assert!(
        drained
            .started
            .iter()
            .any(|arn| json!(arn.rsplit(':').next().unwrap()) == e1_execution)
    );
    assert_eq!(f.executions().await.len(), drained.started.len());
}

#[tokio::test]
async fn ten_tickets_for_three_secrets_start_one_execution_naming_each_once() {
    let f = Fixture::new(1).await;
    let mut bodies = Vec::new();
    for i in 0..4 {
        bodies.push(native_event("app/db", &format!("db-{i}")));
    }
    for i in 0..3 {
        bodies.push(native_event("app/api", &format!("api-{i}")));
    }
    bodies.push(manual_ticket("app/api", "alice"));
    bodies.push(manual_ticket("app/cache", "bob"));
    bodies.push(manual_ticket(&secret_arn("app/cache"), "carol"));
    let mut sent = Vec::new();
    for body in &bodies {
        sent.push((f.send(body).await, body));
    }

    let (execution_arn, tickets, deleted, invalid) = started(&f.gate().await);
    assert_eq!((tickets, deleted, invalid), (10, 10, 0));
    assert_eq!(f.executions().await, vec![execution_arn.clone()]);
    assert_eq!(f.counts(&f.queue_url).await, (0, 0));

    let input: ExecutionInput = serde_json::from_str(&f.input_of(&execution_arn).await).unwrap();
    assert_eq!(
        input.secrets,
        vec![
            secret_arn("app/api"),
            secret_arn("app/cache"),
            secret_arn("app/db")
        ]
    );
    assert_eq!(input.tickets.len(), 10);
    assert_eq!(input.stacks, None);
    assert_eq!(input.options, f.config.options);

    // Exactly the input and the name derived from the messages.
    let expected = coalesce(
        sent.iter()
            .map(|(id, body)| match parse_ticket(body, id).unwrap() {
                TicketParse::Ticket(t) => (id.clone(), t),
                TicketParse::Ignored(reason) => panic!("ignored: {reason}"),
            }),
    );
    assert_eq!(
        f.input_of(&execution_arn).await,
        ExecutionInput::new(&expected, &f.config.options).to_json()
    );
    assert!(execution_arn.ends_with(&format!(":{}", execution_name(&expected))));
}

#[tokio::test]
async fn a_malformed_message_reaches_the_dead_letter_queue_without_blocking_the_others() {
    let f = Fixture::new(1).await;
    const POISON: &str = "{\"kind\": \"manual\", \"secret\": \"CANARY-value\"";
    f.send(&native_event("app/a", "a")).await;
    f.send(&native_event("app/b", "b")).await;
    f.send(POISON).await;
    f.send(&manual_ticket("app/c", "alice")).await;
    f.send(&json!({"detail-type": "Secret Label Updated", "source": "aws.secretsmanager", "detail": {"name": "x", "labelUpdated": "AWSPENDING"}}).to_string())
        .await;

    let (execution_arn, tickets, deleted, invalid) = started(&f.gate().await);
    assert_eq!((tickets, deleted), (3, 4), "3 tickets + 1 ignored deleted");
    assert_eq!(invalid, 1);
    let input: ExecutionInput = serde_json::from_str(&f.input_of(&execution_arn).await).unwrap();
    assert_eq!(input.secrets.len(), 3);
    // The poison message was released at once, not held for the visibility timeout.
    assert_eq!(f.counts(&f.queue_url).await, (1, 0));

    f.wait_until_finished(&execution_arn).await;
    // Receives 2 and 3 in rounds, the next round moves it to the dead-letter queue.
    assert_eq!(f.gate().await, GateOutcome::OnlyInvalid { invalid: 1 });
    assert_eq!(f.counts(&f.queue_url).await, (0, 0));
    let dead = f
        .clients
        .sqs
        .receive_message()
        .queue_url(&f.dlq_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let bodies: Vec<&str> = dead.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, vec![POISON]);
    assert_eq!(f.executions().await.len(), 1);
}

#[tokio::test]
async fn concurrent_gatekeepers_start_at_most_one_execution() {
    let f = Fixture::new(10).await;
    for i in 0..15 {
        f.send(&native_event(&format!("app/s{}", i % 4), &format!("e{i}")))
            .await;
    }
    // Spread over a few tens of milliseconds: some overlap the first one's receive →
    // start → delete window, some come after its start.
    let runs = (0..8u64).map(|i| {
        let (clients, config) = (f.clients.clone(), f.config.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 10)).await;
            run_gatekeeper(&clients, &config).await
        })
    });
    let outcomes: Vec<GateOutcome> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();

    let starts: Vec<&GateOutcome> = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                GateOutcome::Started { .. } | GateOutcome::AlreadyStarted { .. }
            )
        })
        .collect();
    assert_eq!(starts.len(), 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            GateOutcome::Started { .. } | GateOutcome::Idle | GateOutcome::Busy { .. }
        )),
        "{outcomes:?}"
    );
    let (_, tickets, deleted, _) = started(starts[0]);
    assert_eq!(tickets, deleted);
    assert_eq!(f.executions().await.len(), 1);
    // Every other ticket is still there, visible (released, not held).
    assert_eq!(f.counts(&f.queue_url).await, (15 - deleted as u32, 0));
}

#[tokio::test]
async fn a_native_event_through_eventbridge_starts_an_execution() {
    let f = Fixture::new(1).await;
    let config = f.local.sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let pattern = json!({
        "source": ["aws.secretsmanager"],
        "detail-type": ["Secret Label Updated"],
        "detail": {"labelUpdated": [AWSCURRENT]}
    });
    events
        .put_rule()
        .name("cascade-secret-updated")
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("cascade-secret-updated")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("tickets")
                .arn(&f.queue_arn)
                .sqs_parameters(
                    aws_sdk_eventbridge::types::SqsParameters::builder()
                        .message_group_id(GROUP)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let arn = secret_arn("prod/db");
    let entry = |label: &str, version: &str| {
        let mut detail = label_updated_detail("prod/db", version);
        detail["labelUpdated"] = json!(label);
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.secretsmanager")
            .detail_type("Secret Label Updated")
            .detail(detail.to_string())
            .resources(&arn)
            .build()
    };
    let put = events
        .put_events()
        .entries(entry("AWSPENDING", "v-pending")) // filtered out by the rule
        .entries(entry(AWSCURRENT, "v-current"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_entry_count(), 0);
    f.wait_for_visible(&f.queue_url, 1).await;

    let (execution_arn, tickets, _, invalid) = started(&f.gate().await);
    assert_eq!((tickets, invalid), (1, 0));
    let input: ExecutionInput = serde_json::from_str(&f.input_of(&execution_arn).await).unwrap();
    assert_eq!(input.secrets, vec![arn.clone()]);
    let ticket = &input.tickets[0];
    assert_eq!(ticket.secret_id, "prod/db");
    assert_eq!(ticket.secret_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(ticket.version_id.as_deref(), Some("v-current"));
    // moto sends `time` as epoch seconds: normalised to RFC 3339.
    let at = ticket.at.map(|at| at.to_string()).unwrap_or_default();
    assert!(at.ends_with('Z') && at.contains('T'), "{at}");
}

#[tokio::test]
async fn a_run_of_poison_messages_at_the_head_is_drained_in_one_invocation() {
    let f = Fixture::new(1).await;
    // Ten of them: the first receive brings nothing else.
    for i in 0..10 {
        f.send(&format!("not a ticket {i}")).await;
    }
    f.send(&native_event("app/a", "a")).await;
    f.send(&manual_ticket("app/b", "alice")).await;

    // Receives 1-3 release them, the 4th moves them to the dead-letter queue and brings
    // the tickets behind them.
    let (_, tickets, deleted, invalid) = started(&f.gate().await);
    assert_eq!((tickets, deleted, invalid), (2, 2, 10));
    assert_eq!(f.counts(&f.queue_url).await, (0, 0));
    assert_eq!(f.counts(&f.dlq_url).await, (10, 0));
}

/// JSON that is no ticket (an unknown shape, an unknown `kind`, an event missing what its
/// shape needs) is not dropped: it reaches the dead-letter queue like malformed text, and
/// the ticket behind it starts its batch (issue 12, part 4).
#[tokio::test]
async fn messages_of_unknown_shape_reach_the_dead_letter_queue() {
    let f = Fixture::new(1).await;
    let unknown = [
        json!({"hello": "world"}).to_string(),
        json!({"kind": "robot", "secret": "app/a"}).to_string(),
        json!({"detail-type": "Secret Label Updated", "source": "aws.secretsmanager"}).to_string(),
        json!(["app/a"]).to_string(),
    ];
    for body in &unknown {
        f.send(body).await;
    }
    f.send(&native_event("app/a", "a")).await;

    let (execution_arn, tickets, deleted, invalid) = started(&f.gate().await);
    assert_eq!((tickets, deleted, invalid), (1, 1, 4));
    // Released at once for their next receives, not deleted.
    assert_eq!(f.counts(&f.queue_url).await, (4, 0));

    f.wait_until_finished(&execution_arn).await;
    assert_eq!(f.gate().await, GateOutcome::OnlyInvalid { invalid: 4 });
    assert_eq!(f.counts(&f.queue_url).await, (0, 0));
    assert_eq!(f.counts(&f.dlq_url).await, (4, 0));
    assert_eq!(f.executions().await.len(), 1);
}

/// The message ids of a batch's tickets are not in its input; the event ids are.
async fn event_ids_of(f: &Fixture, execution_arn: &str) -> Vec<String> {
    let input: ExecutionInput = serde_json::from_str(&f.input_of(execution_arn).await).unwrap();
    input.tickets.into_iter().map(|t| t.event_id).collect()
}

#[tokio::test]
async fn the_same_event_twice_in_one_batch_names_the_secret_once() {
    let f = Fixture::new(1).await;
    let event = native_event("app/db", "e-twice");
    f.send(&event).await;
    // EventBridge's second delivery, past the queue's deduplication: a second message.
    f.send_again(&event, "second-delivery").await;
    f.send(&native_event("app/api", "e-other")).await;

    let outcome = f.gate().await;
    let GateOutcome::Started {
        execution_arn,
        tickets,
        deleted,
        invalid,
        redelivered,
        ..
    } = outcome
    else {
        panic!("expected Started, got {outcome:?}");
    };
    assert_eq!((tickets, deleted, invalid, redelivered), (2, 3, 0, 1));
    assert_eq!(f.executions().await, vec![execution_arn.clone()]);
    assert_eq!(
        f.counts(&f.queue_url).await,
        (0, 0),
        "the duplicate is deleted"
    );
    let input: ExecutionInput = serde_json::from_str(&f.input_of(&execution_arn).await).unwrap();
    assert_eq!(
        input.secrets,
        vec![secret_arn("app/api"), secret_arn("app/db")]
    );
    let mut events = event_ids_of(&f, &execution_arn).await;
    events.sort();
    assert_eq!(events, vec!["e-other", "e-twice"], "each event once");
    assert_eq!(
        input.stacks, None,
        "every dependent stack, each once (discovery's set)"
    );
}

#[tokio::test]
async fn an_event_delivered_again_after_its_batch_started_is_dropped() {
    let f = Fixture::new(1).await;
    let event = native_event("app/db", "e-late");
    let first_message = f.send(&event).await;
    let (first, tickets, _, _) = started(&f.gate().await);
    assert_eq!(tickets, 1);
    f.wait_until_finished(&first).await;

    // Hours later, within EventBridge's 24 h of retries: the same event, a new message,
    // beside a change that is new.
    f.send_again(&event, "redelivery").await;
    f.send(&native_event("app/api", "e-new")).await;
    let outcome = f.gate().await;
    let GateOutcome::Started {
        execution_arn: second,
        tickets,
        deleted,
        redelivered,
        ..
    } = outcome
    else {
        panic!("expected Started, got {outcome:?}");
    };
    assert_eq!((tickets, deleted, redelivered), (1, 2, 1));
    assert_eq!(event_ids_of(&f, &second).await, vec!["e-new"]);
    f.wait_until_finished(&second).await;

    // Alone, it starts nothing at all.
    f.send_again(&event, "third-delivery").await;
    assert_eq!(
        f.gate().await,
        GateOutcome::NothingToStart {
            deleted: 1,
            invalid: 0,
            redelivered: 1
        }
    );
    assert_eq!(f.counts(&f.queue_url).await, (0, 0));
    assert_eq!(f.executions().await.len(), 2);

    // The marker names the message that handed the event over and its execution.
    let name = first.rsplit(':').next().unwrap();
    assert_eq!(
        f.marker("e-late").await,
        json!({"event_id": "e-late", "message_id": first_message, "execution": name})
    );
}

#[tokio::test]
async fn eight_gatekeepers_over_twenty_rounds_hand_every_ticket_to_exactly_one_execution() {
    const ROUNDS: usize = 20;
    const GATEKEEPERS: u64 = 8;
    let f = Fixture::new(0).await;
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    let mut starts = 0;
    for round in 0..ROUNDS {
        // 1 to 13 tickets: some rounds need two batches (ten messages a receive).
        let count = 1 + (round * 7) % 13;
        for i in 0..count {
            let event_id = format!("r{round}-e{i}");
            f.send(&native_event(&format!("app/s{}", i % 5), &event_id))
                .await;
            sent.insert(event_id, round);
        }
        // Waves of 8 concurrent gatekeepers until the round's tickets are all taken.
        let mut waves = 0;
        while f.counts(&f.queue_url).await != (0, 0) {
            waves += 1;
            assert!(waves <= 40, "round {round}: tickets left after 40 waves");
            let runs = (0..GATEKEEPERS).map(|i| {
                let (clients, config) = (f.clients.clone(), f.config.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(i * 5)).await;
                    run_gatekeeper(&clients, &config).await
                })
            });
            for outcome in futures::future::join_all(runs).await {
                match outcome.unwrap().unwrap() {
                    GateOutcome::Started {
                        tickets,
                        deleted,
                        invalid,
                        redelivered,
                        ..
                    } => {
                        assert_eq!((deleted, invalid, redelivered), (tickets, 0, 0));
                        starts += 1;
                    }
                    GateOutcome::Idle | GateOutcome::Busy { .. } => {}
                    other => panic!("round {round}: {other:?}"),
                }
            }
        }
        // Let the last execution end before the next round's tickets.
        for arn in f.executions().await {
            f.wait_until_finished(&arn).await;
        }
    }

    let executions = f.executions().await;
    assert_eq!(executions.len(), starts, "one execution per batch started");
    let mut handed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for arn in &executions {
        let events = event_ids_of(&f, arn).await;
        assert!(
            !events.is_empty() && events.len() <= 10,
            "{arn}: {events:?}"
        );
        for event in events {
            handed.entry(event).or_default().push(arn.clone());
        }
    }
    let twice: Vec<_> = handed.iter().filter(|(_, arns)| arns.len() > 1).collect();
    assert!(twice.is_empty(), "tickets in two executions: {twice:?}");
    let lost: Vec<_> = sent.keys().filter(|e| !handed.contains_key(*e)).collect();
    assert!(lost.is_empty(), "tickets lost: {lost:?}");
    assert_eq!(handed.len(), sent.len(), "no ticket that was not sent");
    assert_eq!(f.counts(&f.queue_url).await, (0, 0));
    assert_eq!(f.counts(&f.dlq_url).await, (0, 0));
}

#[tokio::test]
async fn after_an_execution_fails_outright_the_next_tick_starts_the_next_batch() {
    // A step that fails beyond any Catch: the execution ends FAILED.
    let f = Fixture::with_definition(json!({
        "StartAt": "Hold",
        "States": {
            "Hold": {"Type": "Wait", "Seconds": 1, "Next": "Broken"},
            "Broken": {"Type": "Fail", "Error": "States.TaskFailed", "Cause": "forced"}
        }
    }))
    .await;
    f.send(&native_event("app/db", "e-failed")).await;
    let (failed, _, _, _) = started(&f.gate().await);
    // While it runs, the next tickets wait.
    f.send(&native_event("app/api", "e-next")).await;
    assert!(matches!(f.gate().await, GateOutcome::Busy { .. }));
    assert_eq!(f.wait_until_ended(&failed).await, ExecutionStatus::Failed);

    let (next, tickets, _, _) = started(&f.gate().await);
    assert_ne!(next, failed);
    assert_eq!(tickets, 1);
    assert_eq!(event_ids_of(&f, &next).await, vec!["e-next"]);
    // The failed batch's tickets are not handed over again.
    assert_eq!(f.counts(&f.queue_url).await, (0, 0));
    assert_eq!(f.executions().await.len(), 2);
}
