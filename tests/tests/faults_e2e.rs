//! Faults inside a batch, through the deployed pipeline (template.yaml on the local stack
//! with IAM enforced, the real state machine, the real handlers): CloudFormation
//! throttling absorbed by the SDK's retry, and a stack or its secret deleted or changed
//! by someone else between Discover's plan and the stack's refresh.
//!
//! The faults "during the batch" are made while the first of two stacks waits for its
//! update (`PollSeconds` 5): the second stack has not begun yet, and is the one hit.

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use cascade_lambda::Function;
use cascade_tests::deploy::DeployOptions;
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
use serde_json::{Value, json};

type Execution = aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;

/// A stack whose SSM parameter resolves `secret` (pinned in place when it changes).
fn pinned_template(stack: &str, secret: &str) -> String {
    format!(
        "Resources:\n  Token:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /{stack}/token\n      Type: String\n      Value: '{{{{resolve:secretsmanager:{secret}:SecretString:token}}}}'\n"
    )
}

async fn pipeline(poll_seconds: u32, throttle: Option<&str>) -> LocalPipeline {
    LocalPipeline::start(PipelineOptions {
        deploy: DeployOptions {
            poll_seconds,
            ..DeployOptions::default()
        },
        throttle: throttle.map(str::to_string),
        ..PipelineOptions::default()
    })
    .await
    .unwrap()
}

/// The secret and its consumers created; returns the secret's ARN.
async fn consumers(pipeline: &LocalPipeline, secret: &str, stacks: &[&str]) -> String {
    let arn = pipeline
        .clients
        .secrets
        .create_secret()
        .name(secret)
        .secret_string(r#"{"token":"first"}"#)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    for stack in stacks {
        pipeline
            .clients
            .cloudformation
            .create_stack()
            .stack_name(*stack)
            .template_body(pinned_template(stack, secret))
            .send()
            .await
            .unwrap();
    }
    arn
}

/// One gatekeeper tick; the ARN of the execution it started.
async fn start_batch(pipeline: &LocalPipeline) -> String {
    let tick = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
    let outcome = pipeline.invoke(Function::Gatekeeper, &tick).await.unwrap();
    let outcome = outcome["outcome"].as_str().unwrap_or_default().to_string();
    assert!(outcome.starts_with("Started "), "{outcome}");
    outcome["Started ".len()..]
        .split(':')
        .take(8)
        .collect::<Vec<_>>()
        .join(":")
}

/// Waits until one of `stacks` was updated by its refresh (the first, now waiting to
/// poll); returns the other, whose refresh has not begun.
async fn while_the_first_waits<'a>(pipeline: &LocalPipeline, stacks: [&'a str; 2]) -> &'a str {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for (i, stack) in stacks.iter().enumerate() {
            let out = pipeline
                .clients
                .cloudformation
                .describe_stacks()
                .stack_name(*stack)
                .send()
                .await
                .unwrap();
            if out.stacks()[0].last_updated_time().is_some() {
                return stacks[1 - i];
            }
        }
        assert!(Instant::now() < deadline, "no stack began within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The execution `arn` followed to its end, and the report it saved (the one not among
/// `seen`).
async fn finish(pipeline: &LocalPipeline, arn: &str, seen: &mut Vec<String>) -> (Execution, Value) {
    let sfn = aws_sdk_sfn::Client::new(&pipeline.config);
    let deadline = Instant::now() + Duration::from_secs(300);
    let execution = loop {
        let out = sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .unwrap();
        if *out.status() != ExecutionStatus::Running {
            break out;
        }
        assert!(Instant::now() < deadline, "{arn} still runs after 300 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let listed = aws_sdk_s3::Client::new(&pipeline.config)
        .list_objects_v2()
        .bucket(&pipeline.deployment.bucket)
        .prefix("reports/")
        .send()
        .await
        .unwrap();
    let key = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .find(|k| k.ends_with("report.json") && !seen.iter().any(|s| s == k))
        .unwrap_or_else(|| panic!("no new report: {execution:?}"))
        .to_string();
    seen.push(key.clone());
    let report = pipeline.read_report(&key).await.unwrap();
    (execution, report)
}

fn line<'a>(report: &'a Value, stack: &str) -> &'a Value {
    report["stacks"]
        .as_array()
        .and_then(|s| s.iter().find(|l| l["stack_name"] == stack))
        .unwrap_or_else(|| panic!("{stack} not in the report: {report}"))
}

async fn template(pipeline: &LocalPipeline, stack: &str) -> String {
    pipeline
        .clients
        .cloudformation
        .get_template()
        .stack_name(stack)
        .send()
        .await
        .unwrap()
        .template_body()
        .unwrap_or_default()
        .to_string()
}

fn assert_no_secret_value(report: &Value) {
    let printed = report.to_string();
    // The secret's values are {"token":"first"}, {"token":"second"}, {"token":"third"}.
    for value in ["\"first\"", "\"second\"", "\"third\""] {
        assert!(!printed.contains(value), "no secret value: {printed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_throttled_cloudformation_inside_a_refresh_is_absorbed_by_the_retry() {
    // DescribeChangeSet: only the refresh calls it (the deployment and Discover do not),
    // so both throttled answers go to the refresh's change set.
    let pipeline = pipeline(1, Some("cloudformation:DescribeChangeSet=2")).await;
    consumers(&pipeline, "prod/throttled", &["throttled-app"]).await;
    let before = template(&pipeline, "throttled-app").await;
    let version = pipeline
        .change_secret("prod/throttled", r#"{"token":"second"}"#)
        .await
        .unwrap();
    let arn = start_batch(&pipeline).await;
    let (execution, report) = finish(&pipeline, &arn, &mut Vec::new()).await;
    assert_eq!(*execution.status(), ExecutionStatus::Succeeded);
    assert_eq!(
        line(&report, "throttled-app")["outcome"],
        "refreshed",
        "{report}"
    );
    let after = template(&pipeline, "throttled-app").await;
    assert_ne!(after, before);
    assert!(after.contains(&format!("::{version}}}}}")), "{after}");
    assert_no_secret_value(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_stack_deleted_after_the_plan_is_skipped_naming_the_deletion() {
    let pipeline = pipeline(5, None).await;
    let stacks = ["deleted-a", "deleted-b"];
    consumers(&pipeline, "prod/deleted-stack", &stacks).await;
    pipeline
        .change_secret("prod/deleted-stack", r#"{"token":"second"}"#)
        .await
        .unwrap();
    let arn = start_batch(&pipeline).await;
    let victim = while_the_first_waits(&pipeline, stacks).await;
    let other = stacks.into_iter().find(|s| *s != victim).unwrap();
    pipeline
        .clients
        .cloudformation
        .delete_stack()
        .stack_name(victim)
        .send()
        .await
        .unwrap();
    let (execution, report) = finish(&pipeline, &arn, &mut Vec::new()).await;
    assert_eq!(*execution.status(), ExecutionStatus::Succeeded);
    assert_eq!(line(&report, other)["outcome"], "refreshed", "{report}");
    let gone = line(&report, victim);
    assert_eq!(gone["outcome"], "skipped", "{report}");
    let reason = gone["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("deleted"), "{reason}");
    assert!(reason.contains(victim), "{reason}");
    assert_no_secret_value(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_stack_updated_after_the_plan_is_skipped_and_nothing_sent_to_it() {
    let pipeline = pipeline(5, None).await;
    let stacks = ["changed-a", "changed-b"];
    consumers(&pipeline, "prod/changed-stack", &stacks).await;
    pipeline
        .change_secret("prod/changed-stack", r#"{"token":"second"}"#)
        .await
        .unwrap();
    let arn = start_batch(&pipeline).await;
    let victim = while_the_first_waits(&pipeline, stacks).await;
    let other = stacks.into_iter().find(|s| *s != victim).unwrap();
    // Someone else's update: one more resource.
    let theirs = format!(
        "{}  Extra:\n    Type: AWS::CloudFormation::WaitConditionHandle\n",
        pinned_template(victim, "prod/changed-stack")
    );
    let cfn = &pipeline.clients.cloudformation;
    cfn.update_stack()
        .stack_name(victim)
        .template_body(&theirs)
        .send()
        .await
        .unwrap();
    let (execution, report) = finish(&pipeline, &arn, &mut Vec::new()).await;
    assert_eq!(*execution.status(), ExecutionStatus::Succeeded);
    assert_eq!(line(&report, other)["outcome"], "refreshed", "{report}");
    let changed = line(&report, victim);
    assert_eq!(changed["outcome"], "skipped", "{report}");
    let reason = changed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("changed since the plan"), "{reason}");
    // Nothing sent: their template stands, and no change set of ours was made.
    assert_eq!(template(&pipeline, victim).await, theirs);
    // (moto's ListChangeSets lists every stack's: keep the victim's.)
    let sets = cfn
        .list_change_sets()
        .stack_name(victim)
        .send()
        .await
        .unwrap();
    let ours: Vec<_> = sets
        .summaries()
        .iter()
        .filter(|c| c.stack_name() == Some(victim))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_secret_deleted_during_its_batch_names_the_secret_and_the_report_is_saved() {
    let pipeline = pipeline(5, None).await;
    let stacks = ["gone-secret-a", "gone-secret-b"];
    consumers(&pipeline, "prod/gone", &stacks).await;
    let before = [
        template(&pipeline, stacks[0]).await,
        template(&pipeline, stacks[1]).await,
    ];
    pipeline
        .change_secret("prod/gone", r#"{"token":"second"}"#)
        .await
        .unwrap();
    let arn = start_batch(&pipeline).await;
    let victim = while_the_first_waits(&pipeline, stacks).await;
    pipeline
        .clients
        .secrets
        .delete_secret()
        .secret_id("prod/gone")
        .send()
        .await
        .unwrap();
    let (execution, report) = finish(&pipeline, &arn, &mut Vec::new()).await;
    assert_eq!(*execution.status(), ExecutionStatus::Succeeded, "{report}");
    // The stack that began before the deletion is refreshed; the other looks the secret
    // up before its first change and is skipped, nothing sent to it.
    let first = if victim == stacks[0] {
        stacks[1]
    } else {
        stacks[0]
    };
    assert_eq!(line(&report, first)["outcome"], "refreshed", "{report}");
    let skipped = line(&report, victim);
    assert_eq!(skipped["outcome"], "skipped", "{report}");
    let reason = skipped["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(&format!(
            "secret prod/gone was scheduled for deletion since the plan: nothing was sent to stack {victim}"
        )) && reason.contains("restore-secret --secret-id prod/gone"),
        "{reason}"
    );
    assert_eq!(
        template(&pipeline, victim).await,
        before[usize::from(victim == stacks[1])],
        "the skipped stack is as it was"
    );
    assert_eq!(report["secrets"][0]["name"], "prod/gone", "{report}");
    assert_no_secret_value(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_secret_changed_again_during_its_batch_is_refreshed_by_the_next_batch() {
    let pipeline = pipeline(5, None).await;
    let stacks = ["again-a", "again-b"];
    consumers(&pipeline, "prod/again", &stacks).await;
    let second = pipeline
        .change_secret("prod/again", r#"{"token":"second"}"#)
        .await
        .unwrap();
    let arn = start_batch(&pipeline).await;
    while_the_first_waits(&pipeline, stacks).await;
    // The newer version and its event (the rule enqueues its ticket).
    let third = pipeline
        .change_secret("prod/again", r#"{"token":"third"}"#)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let (execution, report) = finish(&pipeline, &arn, &mut seen).await;
    assert_eq!(*execution.status(), ExecutionStatus::Succeeded);
    assert_eq!(
        report["secrets"][0]["version_id"],
        second.as_str(),
        "{report}"
    );
    for stack in stacks {
        assert_eq!(line(&report, stack)["outcome"], "refreshed", "{report}");
    }
    let next = start_batch(&pipeline).await;
    assert_ne!(next, arn);
    let (execution, report) = finish(&pipeline, &next, &mut seen).await;
    assert_eq!(*execution.status(), ExecutionStatus::Succeeded);
    assert_eq!(
        report["secrets"][0]["version_id"],
        third.as_str(),
        "{report}"
    );
    for stack in stacks {
        assert_eq!(line(&report, stack)["outcome"], "refreshed", "{report}");
        let now = template(&pipeline, stack).await;
        assert!(now.contains(&format!("::{third}}}}}")), "{now}");
    }
    assert_no_secret_value(&report);
}
