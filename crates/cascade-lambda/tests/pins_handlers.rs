//! The deployed application's path for pinned versions that age out: `discover` plans (and
//! keeps what needs attention in the batch's manifest), `report` carries it into the report
//! in S3. Handlers called directly against the local stack, as the state machine calls them.

use cascade_lambda::{Function, FunctionConfig, FunctionContext};
use cascade_tests::LocalStack;
use serde_json::{Value, json};

const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:sm:b-pins";
/// A version id that never existed.
const GONE: &str = "00000000-dead-4bad-8bad-000000000000";

fn context(function: Function, clients: &cascade_aws::Clients) -> FunctionContext {
    let config = FunctionConfig::from_lookup(function, |k| {
        (k == "CASCADE_BUCKET").then(|| "reports".into())
    })
    .unwrap();
    FunctionContext::new(config, clients.clone()).unwrap()
}

async fn handle(context: &FunctionContext, event: Value) -> Value {
    let response = cascade_lambda::handle(context, event)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::to_value(response).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_of_a_batch_lists_the_pins_that_aged_out() {
    let local = tokio::task::spawn_blocking(LocalStack::start)
        .await
        .unwrap()
        .unwrap();
    let clients = local.clients().await;
    clients
        .s3
        .create_bucket()
        .bucket("reports")
        .send()
        .await
        .unwrap();
    let first = clients
        .secrets
        .create_secret()
        .name("prod/db")
        .secret_string("x")
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    for value in ["y", "z"] {
        clients
            .secrets
            .put_secret_value()
            .secret_id("prod/db")
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
    for (name, version) in [("old", first.as_str()), ("gone", GONE)] {
        let body = format!(
            "Resources:\n  S:\n    Type: AWS::AppRunner::Service\n    Properties:\n      P: '{{{{resolve:secretsmanager:prod/db:SecretString:k::{version}}}}}'\n"
        );
        clients
            .cloudformation
            .create_stack()
            .stack_name(name)
            .template_body(body)
            .send()
            .await
            .unwrap();
    }

    let input = json!({
        "batch_id": "b-pins", "tickets": [], "secrets": ["prod/db"],
        "options": {"strategy": "auto", "poll_seconds": 7}
    });
    let discovered = handle(
        &context(Function::Discover, &clients),
        json!({"execution": EXECUTION, "input": input}),
    )
    .await;
    let reported = handle(
        &context(Function::Report, &clients),
        json!({"execution": EXECUTION, "input": {"batch_id": "b-pins", "discovery": discovered}}),
    )
    .await;
    let read = |key: String| {
        let s3 = clients.s3.clone();
        async move {
            let body = s3
                .get_object()
                .bucket("reports")
                .key(key)
                .send()
                .await
                .unwrap();
            body.body.collect().await.unwrap().into_bytes().to_vec()
        }
    };
    let report: Value =
        serde_json::from_slice(&read(reported["report_key"].as_str().unwrap().into()).await)
            .unwrap();
    let found: Vec<(&str, &str, &str)> = report["attention"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"))
        .iter()
        .map(|a| {
            (
                a["stack_name"].as_str().unwrap(),
                a["version_id"].as_str().unwrap(),
                a["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("gone", GONE, "deleted"),
            ("old", first.as_str(), "deprecated")
        ],
        "{report:#}"
    );
    let markdown = String::from_utf8(read("reports/b-pins/report.md".into()).await).unwrap();
    assert!(
        markdown.contains("## ⏳ Pinned versions that need attention"),
        "{markdown}"
    );
}
