//! Fault: the execution fails outright (beyond every Catch of the real state machine,
//! deployed from template.yaml). What happens: the gatekeeper starts the next batch at its
//! next tick (it waits only for RUNNING executions). What the user sees: `cascade status`
//! (read here through `cascade_aws::status`, the code the CLI prints) names the failed
//! execution, its error, its batch's state in `batches/BATCH/` and each of its stacks.
//!
//! The failure is the report that S3 will not take (every PutObject under `reports/`
//! answers 503, beyond the Report step's retries): the state machine then ends FAILED
//! with `ReportNotSaved`, a real failure of the execution, not a mock.

use aws_sdk_sfn::types::ExecutionStatus;
use cascade_aws::status::{self, Deployed};
use cascade_lambda::Function;
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
use cascade_tests::slack_sink::SlackSink;
use serde_json::json;

#[tokio::test]
async fn after_a_failed_execution_the_next_tick_starts_the_next_batch_and_status_lists_its_stacks()
{
    let sink = SlackSink::start().await.unwrap();
    let pipeline = LocalPipeline::start(PipelineOptions {
        unavailable: Some("s3:PutObject@/reports/".into()),
        ..PipelineOptions::notifying(&sink.url)
    })
    .await
    .unwrap();
    let error = pipeline
        .one_pinned_stack_batch("prod/failing", "failed-batch-app")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no report"), "{error}");

    let deployed = Deployed {
        stack_name: "secret-cascade".into(),
        queue_url: pipeline.deployment.queue_url.clone(),
        dead_letter_url: pipeline.deployment.dead_letter_url.clone(),
        state_machine_arn: pipeline.deployment.state_machine_arn.clone(),
        bucket: pipeline.deployment.bucket.clone(),
    };
    let now = jiff::Timestamp::now();
    let seen = status::read(&pipeline.clients, &deployed, 10, now)
        .await
        .unwrap();
    assert!(seen.running.is_none());
    assert_eq!(seen.recent.len(), 1);
    let failed = &seen.recent[0];
    assert_eq!(failed.status, "FAILED");
    let batch = failed
        .batch_id
        .clone()
        .expect("the failed execution's batch");
    let unfinished = failed.unfinished.as_ref().expect("the failed batch listed");
    assert_eq!(unfinished.error.as_deref(), Some("ReportNotSaved"));
    assert_eq!(
        unfinished.state.as_deref(),
        Some(format!("s3://{}/batches/{batch}/", deployed.bucket).as_str())
    );
    let stacks: Vec<(&str, Option<&str>)> = unfinished
        .stacks
        .iter()
        .map(|s| (s.stack_name.as_str(), s.outcome.as_deref()))
        .collect();
    assert_eq!(stacks, vec![("failed-batch-app", Some("refreshed"))]);
    let printed = serde_json::to_string(&seen).unwrap();
    // The secret's values are {"token":"first"} and {"token":"second"}.
    assert!(
        !printed.contains("\"second\"") && !printed.contains("token"),
        "no secret value: {printed}"
    );

    // The next change: the next tick starts its batch, though the last one failed.
    pipeline
        .change_secret("prod/failing", r#"{"token":"third"}"#)
        .await
        .unwrap();
    let tick = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
    let outcome = pipeline.invoke(Function::Gatekeeper, &tick).await.unwrap();
    let outcome = outcome["outcome"].as_str().unwrap_or_default().to_string();
    assert!(outcome.starts_with("Started "), "{outcome}");
    let next_arn = outcome["Started ".len()..]
        .split(':')
        .take(8)
        .collect::<Vec<_>>()
        .join(":");
    assert_ne!(next_arn, unfinished.execution_arn);
    assert!(!outcome.contains(&batch), "a new batch: {outcome}");
    let sfn = aws_sdk_sfn::Client::new(&pipeline.config);
    let statuses: Vec<ExecutionStatus> = sfn
        .list_executions()
        .state_machine_arn(&deployed.state_machine_arn)
        .send()
        .await
        .unwrap()
        .executions()
        .iter()
        .map(|e| e.status().clone())
        .collect();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(statuses.contains(&ExecutionStatus::Failed), "{statuses:?}");
}
