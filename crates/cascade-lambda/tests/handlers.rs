//! The handlers against the local stack, called directly (the pipeline test calls them
//! through the state machine).

use cascade_aws::Clients;
use cascade_lambda::{Function, FunctionConfig, FunctionContext, HandlerError};
use cascade_tests::LocalStack;
use serde_json::{Value, json};

fn context(function: Function, bucket: &str, clients: &cascade_aws::Clients) -> FunctionContext {
    let config = FunctionConfig::from_lookup(function, |k| {
        (k == "CASCADE_BUCKET").then(|| bucket.to_string())
    })
    .unwrap();
    FunctionContext::new(config, clients.clone()).unwrap()
}

/// Handles a raw event as the runtime does, and returns the result's JSON.
async fn handle(context: &FunctionContext, event: Value) -> Result<Value, HandlerError> {
    let response = cascade_lambda::handle(context, event).await?;
    Ok(serde_json::to_value(response).unwrap())
}

/// An account with the bucket `reports`, the secret `prod/db` and `stacks` that use it.
async fn account(local: &LocalStack, stacks: &[&str]) -> cascade_aws::Clients {
    let clients = local.clients().await;
    clients
        .s3
        .create_bucket()
        .bucket("reports")
        .send()
        .await
        .unwrap();
    clients
        .secrets
        .create_secret()
        .name("prod/db")
        .secret_string("x")
        .send()
        .await
        .unwrap();
    for name in stacks {
        clients
            .cloudformation
            .create_stack()
            .stack_name(*name)
            .template_body("Resources:\n  S:\n    Type: AWS::AppRunner::Service\n    Properties:\n      P: '{{resolve:secretsmanager:prod/db}}'\n")
            .send()
            .await
            .unwrap();
    }
    clients
}

/// The stack names the map of batch `batch` reads (its ItemReader's object).
async fn map_items(clients: &Clients, batch: &str) -> Vec<String> {
    let object = clients
        .s3
        .get_object()
        .bucket("reports")
        .key(format!("batches/{batch}/map-items.json"))
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap()
}

#[tokio::test]
async fn a_ticket_for_a_secret_that_no_longer_exists_is_skipped_in_the_report() {
    let local = LocalStack::start().unwrap();
    let clients = account(&local, &["app"]).await;

    let input = json!({
        "batch_id": "b-gone", "tickets": [], "secrets": ["prod/db", "prod/gone"], "stacks": null,
        "options": {"strategy": "auto", "poll_seconds": 7}
    });
    let discovered = handle(
        &context(Function::Discover, "reports", &clients),
        json!({"execution": "arn:aws:states:us-east-1:123456789012:execution:sm:b-gone", "input": input.clone()}),
    )
    .await
    .unwrap();
    assert_eq!(
        discovered,
        json!({"batch_id": "b-gone", "items_key": "batches/b-gone/map-items.json", "stack_count": 1, "wait_seconds": 7})
    );
    assert_eq!(map_items(&clients, "b-gone").await, ["app"]);

    // Discover again (a Step Functions retry): the same batch, not a second one.
    let again = handle(
        &context(Function::Discover, "reports", &clients),
        json!({"execution": "arn:aws:states:us-east-1:123456789012:execution:sm:b-gone", "input": input.clone()}),
    )
    .await
    .unwrap();
    assert_eq!(again, discovered);

    let reported = handle(
        &context(Function::Report, "reports", &clients),
        json!({"execution": "arn:aws:states:us-east-1:123456789012:execution:sm:b-gone", "input": {"batch_id": "b-gone", "discovery": discovered}}),
    )
    .await
    .unwrap();
    let key = reported["report_key"].as_str().unwrap();
    let body = clients
        .s3
        .get_object()
        .bucket("reports")
        .key(key)
        .send()
        .await
        .unwrap();
    let report: Value =
        serde_json::from_slice(&body.body.collect().await.unwrap().into_bytes()).unwrap();
    let notes = report["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .starts_with("skipped secret prod/gone:"),
        "{notes:?}"
    );
    assert_eq!(report["secrets"][0]["name"], "prod/db");
}

#[tokio::test]
async fn a_bad_event_is_named_invalid_input() {
    let local = LocalStack::start().unwrap();
    let clients = local.clients().await;
    let e = handle(
        &context(Function::Refresh, "reports", &clients),
        json!({"action": "explode"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind.name(), "InvalidInput");
    let e = handle(
        &context(Function::Refresh, "reports", &clients),
        json!({"action": "begin", "batch_id": "nope", "stack": "app"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.kind.name(),
        "StoreUnavailable",
        "{e}: no bucket named reports exists"
    );
}

#[tokio::test]
async fn a_ticket_stack_not_in_the_plan_is_a_note_of_the_batch() {
    let local = LocalStack::start().unwrap();
    let clients = account(&local, &["app", "api"]).await;

    let execution = "arn:aws:states:us-east-1:123456789012:execution:sm:b-subset";
    let input = json!({
        "batch_id": "b-subset", "tickets": [], "secrets": ["prod/db"], "stacks": ["api", "ghost"],
        "options": {"strategy": "auto", "poll_seconds": 7}
    });
    let discovered = handle(
        &context(Function::Discover, "reports", &clients),
        json!({"execution": execution, "input": input}),
    )
    .await
    .unwrap();
    assert_eq!(
        discovered,
        json!({"batch_id": "b-subset", "items_key": "batches/b-subset/map-items.json", "stack_count": 1, "wait_seconds": 7}),
    );
    assert_eq!(
        map_items(&clients, "b-subset").await,
        ["api"],
        "only the named stack that depends on the secret"
    );

    let reported = handle(
        &context(Function::Report, "reports", &clients),
        json!({"execution": execution, "input": {"batch_id": "b-subset", "discovery": discovered}}),
    )
    .await
    .unwrap();
    let body = clients
        .s3
        .get_object()
        .bucket("reports")
        .key(reported["report_key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let report: Value =
        serde_json::from_slice(&body.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(
        report["notes"],
        json!(["stack ghost does not depend on these secrets (or does not exist): not refreshed"])
    );
}
