//! `cascade status` and `cascade dlq` against the application deployed from template.yaml
//! on the local stack (IAM enforced), while a batch runs through the real state machine:
//! the binary finds everything from the stack's outputs, shows the running batch (stack i
//! of n, its phase and time in it), then the finished batch with its totals and report,
//! the tickets waiting and the dead letters; `dlq list` says why a dead letter cannot be
//! read (without printing it) and `dlq redrive` moves it back.

use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::Tag;
use cascade_lambda::Function;
use cascade_tests::LocalStack;
use cascade_tests::deploy::DeployOptions;
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
use serde_json::{Value, json};

#[allow(dead_code)] // `printed` and `Ran::both` serve the other test files.
mod common;
use common::Ran;

/// The body of a message no gatekeeper can read.
const GARBAGE: &str = "this is not a ticket at all";

/// `cascade ARGS` with the local stack's environment.
async fn cascade(local: &LocalStack, args: &[&str]) -> Ran {
    common::cascade(local, args, &[]).await
}

async fn status_json(local: &LocalStack) -> Value {
    let ran = cascade(local, &["status", "--format", "json"]).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran:?}"))
}

fn pinned_template(stack: &str) -> String {
    format!(
        "Resources:\n  Token:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /{stack}/token\n      Type: String\n      Value: '{{{{resolve:secretsmanager:prod/db:SecretString:token}}}}'\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_a_running_batch_and_the_dead_letter_queue() {
    let pipeline = LocalPipeline::start(PipelineOptions {
        deploy: DeployOptions {
            // Each look at an update waits this long: the batch runs long enough to watch.
            poll_seconds: 3,
            ..DeployOptions::default()
        },
        ..PipelineOptions::default()
    })
    .await
    .unwrap();
    let (clients, deployment, local) = (&pipeline.clients, &pipeline.deployment, &pipeline.local);

    // Nothing has run yet.
    let idle = status_json(local).await;
    assert_eq!(idle["deployed"]["queue_url"], deployment.queue_url.as_str());
    assert_eq!(idle["deployed"]["bucket"], deployment.bucket.as_str());
    assert!(idle["running"].is_null(), "{idle:#}");
    assert_eq!(idle["recent"], json!([]));
    assert_eq!(idle["dead_letters"]["count"], 0);

    clients
        .secrets
        .create_secret()
        .name("prod/db")
        .secret_string(r#"{"token":"first"}"#)
        .send()
        .await
        .unwrap();
    for stack in ["orders", "billing"] {
        clients
            .cloudformation
            .create_stack()
            .stack_name(stack)
            .template_body(pinned_template(stack))
            .tags(Tag::builder().key("cascade:strategy").value("pin").build())
            .send()
            .await
            .unwrap();
    }
    // A message that failed its receives, as the queue's redrive policy leaves it.
    clients
        .sqs
        .send_message()
        .queue_url(&deployment.dead_letter_url)
        .message_group_id("cascade")
        .message_deduplication_id("garbage-1")
        .message_body(GARBAGE)
        .send()
        .await
        .unwrap();
    pipeline
        .change_secret("prod/db", r#"{"token":"second"}"#)
        .await
        .unwrap();
    let tick = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
    let started = pipeline.invoke(Function::Gatekeeper, &tick).await.unwrap();
    assert!(
        started["outcome"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Started"),
        "{started}"
    );

    // While it runs: the batch, the stack it is on, its phase and for how long.
    let deadline = Instant::now() + Duration::from_secs(120);
    let running = loop {
        let status = status_json(local).await;
        if status["running"]["progress"]["current"].is_object() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "never saw the batch on a stack: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let progress = &running["running"]["progress"];
    assert_eq!(progress["secrets"], json!(["prod/db"]), "{running:#}");
    assert_eq!(progress["planned"], 2, "{running:#}");
    let current = &progress["current"];
    assert!(
        ["orders", "billing"].contains(&current["stack_name"].as_str().unwrap()),
        "{running:#}"
    );
    assert!(
        (1..=2).contains(&current["index"].as_u64().unwrap()),
        "{running:#}"
    );
    assert!(
        ["begin", "pin"].contains(&current["phase"].as_str().unwrap()),
        "{running:#}"
    );
    assert_eq!(running["recent"][0]["status"], "RUNNING");
    assert_eq!(running["dead_letters"]["count"], 1, "{running:#}");
    assert!(
        running["dead_letters"]["oldest_age_seconds"]
            .as_i64()
            .unwrap()
            >= 0
    );
    let table = cascade(local, &["status"]).await;
    assert_eq!(table.code, Some(0), "{table:?}");
    assert!(
        table.stdout.contains("of 2: ") && table.stdout.contains("dead letters: 1"),
        "{table:?}"
    );

    // Once it ended: its totals and where its report is.
    let deadline = Instant::now() + Duration::from_secs(180);
    let done = loop {
        let status = status_json(local).await;
        if status["running"].is_null() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the batch never ended: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let last = &done["recent"][0];
    assert_eq!(last["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(last["totals"]["refreshed"], 2, "{done:#}");
    let batch = last["batch_id"].as_str().unwrap();
    assert_eq!(
        last["report"],
        format!("s3://{}/reports/{batch}/report.json", deployment.bucket)
    );

    // The dead letter: why it cannot be read, never its body.
    let listed = cascade(local, &["dlq", "list", "--format", "json"]).await;
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let letters: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters:#}");
    assert_eq!(letters[0]["bytes"], GARBAGE.len());
    let reading = letters[0]["reading"].as_str().unwrap();
    assert!(
        reading.starts_with("the message is not valid JSON"),
        "{reading}"
    );
    assert!(!listed.stdout.contains(GARBAGE) && !listed.stderr.contains(GARBAGE));
    let table = cascade(local, &["dlq", "list"]).await;
    let id = letters[0]["message_id"].as_str().unwrap();
    assert!(
        table.stdout.contains(id) && table.stdout.contains("not valid JSON"),
        "{table:?}"
    );

    // Redriven: back on the ticket queue, none lost.
    let moved = cascade(local, &["dlq", "redrive"]).await;
    assert_eq!(moved.code, Some(0), "{moved:?}");
    assert!(moved.stdout.contains("moved 1 message"), "{moved:?}");
    let after = status_json(local).await;
    assert_eq!(after["dead_letters"]["count"], 0, "{after:#}");
    assert_eq!(after["tickets"]["waiting"], 1, "{after:#}");

    // A manual ticket, the queue found from the same outputs.
    let queued = cascade(local, &["enqueue", "--secret", "prod/db"]).await;
    assert_eq!(queued.code, Some(0), "{queued:?}");
    assert!(
        queued.stdout.contains("queued a ticket for prod/db"),
        "{queued:?}"
    );
    let after = status_json(local).await;
    assert_eq!(after["tickets"]["waiting"], 2, "{after:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_that_is_not_the_application_is_named() {
    let local = tokio::task::spawn_blocking(LocalStack::start)
        .await
        .unwrap()
        .unwrap();
    let ran = cascade(&local, &["status", "--stack-name", "nope"]).await;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stderr.contains("nope"), "{ran:?}");
    let clients = local.clients().await;
    clients
        .cloudformation
        .create_stack()
        .stack_name("other")
        .template_body("Resources:\n  H:\n    Type: AWS::CloudFormation::WaitConditionHandle\n")
        .send()
        .await
        .unwrap();
    let ran = cascade(&local, &["status", "--stack-name", "other"]).await;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr
            .contains("stack other has no output TicketQueueUrl"),
        "{ran:?}"
    );
}
