//! Draft.
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use cascade_tests::deploy::{DeployOptions, deploy, function_contexts};
use cascade_tests::lambda_server::LambdaServer;
use cascade_tests::{LocalStack, LocalStackOptions, workspace_root};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe() {
    let lambda = LambdaServer::start().await.unwrap();
    let local = LocalStack::start_with(&LocalStackOptions {
        lambda_forward_url: Some(lambda.url.clone()),
        sfn_mock_config: Some(workspace_root().join("tests/fixtures/sfn/mock-config.json")),
    })
    .unwrap();
    let config = local.sdk_config().await;
    let deployment = deploy(&config).await.unwrap();
    let clients = local.clients().await;
    for context in function_contexts(&deployment, &clients, &DeployOptions::default()).unwrap() {
        lambda.set_context(context);
    }
    let sfn = aws_sdk_sfn::Client::new(&config);
    for case in std::env::var("CASES").unwrap().split(',') {
        let t = Instant::now();
        let arn = sfn
            .start_execution()
            .state_machine_arn(format!("{}#{case}", deployment.state_machine_arn))
            .name(format!("x-{case}"))
            .input(json!({"batch_id":"3f9c1a7b2d4e6f80","tickets":[],"secrets":["prod/db"],"stacks":null,"options":{"strategy":"auto","poll_seconds":1}}).to_string())
            .send()
            .await
            .unwrap()
            .execution_arn()
            .to_string();
        let out = loop {
            let out = sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .unwrap();
            if *out.status() != ExecutionStatus::Running {
                break out;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        eprintln!(
            "== {case}: {:?} in {:?}\noutput {:?}",
            out.status(),
            t.elapsed(),
            out.output()
        );
        let h = sfn
            .get_execution_history()
            .execution_arn(&arn)
            .send()
            .await
            .unwrap();
        let events: &[HistoryEvent] = h.events();
        for e in events {
            eprintln!(
                "{} {:?} prev={} {:?} {:?} {:?}",
                e.id(),
                e.r#type(),
                e.previous_event_id(),
                e.state_entered_event_details().map(|d| d.name()),
                e.task_failed_event_details(),
                e.map_run_started_event_details()
            );
        }
        let runs = sfn
            .list_map_runs()
            .execution_arn(&arn)
            .send()
            .await
            .unwrap();
        for r in runs.map_runs() {
            let d = sfn
                .describe_map_run()
                .map_run_arn(r.map_run_arn())
                .send()
                .await
                .unwrap();
            eprintln!("maprun {d:?}");
        }
        eprintln!(
            "lambda invocations: {:?}",
            lambda.invocations.read().unwrap()
        );
    }
}
