//! The handlers against the local stack, called directly (the pipeline test calls them
//! through the state machine).

use cascade_aws::Clients;
use cascade_lambda::{Function, FunctionConfig, FunctionContext, HandlerError};
use cascade_tests::LocalStack;
use serde_json::{Value, json};

const PINS_EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:sm:b-pins";

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

/// The object `key` of the bucket `reports`.
async fn read_object(clients: &Clients, key: &str) -> Vec<u8> {
    let object = clients
        .s3
        .get_object()
        .bucket("reports")
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"));
    object.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Runs `report` for the batch `discovered` of `execution`, and reads the JSON report it
/// saved.
async fn report_of(clients: &Clients, execution: &str, batch: &str, discovered: &Value) -> Value {
    let reported = handle(
        &context(Function::Report, "reports", clients),
        json!({"execution": execution, "input": {"batch_id": batch, "discovery": discovered}}),
    )
    .await
    .unwrap();
    let key = reported["report_key"].as_str().unwrap();
    serde_json::from_slice(&read_object(clients, key).await).unwrap()
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

    let report = report_of(
        &clients,
        "arn:aws:states:us-east-1:123456789012:execution:sm:b-gone",
        "b-gone",
        &discovered,
    )
    .await;
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

/// A ticket naming a secret by the ARN of another partition, account or region than the
/// execution's is skipped with that reason, before any call; the batch goes on with the
/// others (issue 12, part 4).
#[tokio::test]
async fn a_ticket_for_a_secret_of_another_account_partition_or_region_is_skipped_by_name() {
    let local = LocalStack::start().unwrap();
    let clients = account(&local, &["app"]).await;
    let execution = "arn:aws:states:us-east-1:123456789012:execution:sm:b-foreign";
    let foreign = [
        "arn:aws:secretsmanager:us-east-1:999999999999:secret:prod/db-AbCdEf",
        "arn:aws-cn:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db",
    ];
    let mut secrets = vec!["prod/db"];
    secrets.extend(foreign);
    let input = json!({
        "batch_id": "b-foreign", "tickets": [], "secrets": secrets, "stacks": null,
        "options": {"strategy": "auto", "poll_seconds": 7}
    });
    let discovered = handle(
        &context(Function::Discover, "reports", &clients),
        json!({"execution": execution, "input": input}),
    )
    .await
    .unwrap();
    assert_eq!(discovered["stack_count"], 1, "{discovered}");
    assert_eq!(map_items(&clients, "b-foreign").await, ["app"]);

    let report = report_of(&clients, execution, "b-foreign", &discovered).await;
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    for ((arn, note), (what, theirs, ours)) in foreign.iter().zip(&notes).zip([
        ("account", "999999999999", "123456789012"),
        ("partition", "aws-cn", "aws"),
        ("region", "eu-west-1", "us-east-1"),
    ]) {
        assert!(
            note.starts_with(&format!(
                "skipped secret {arn}: secret `{arn}` is in {what} {theirs}, not {ours}:"
            )),
            "{note}"
        );
    }
    assert_eq!(report["secrets"].as_array().unwrap().len(), 1, "{report}");
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

    let report = report_of(&clients, execution, "b-subset", &discovered).await;
    assert_eq!(
        report["notes"],
        json!(["stack ghost does not depend on these secrets (or does not exist): not refreshed"])
    );
}

/// A version id that never existed.
const GONE: &str = "00000000-dead-4bad-8bad-000000000000";

/// Pinned versions that age out: `discover` keeps what needs attention in the batch's
/// manifest, `report` carries it into the report in S3.
#[tokio::test(flavor = "multi_thread")]
async fn the_report_of_a_batch_lists_the_pins_that_aged_out() {
    let local = LocalStack::start().unwrap();
    let clients = account(&local, &[]).await;
    let first = clients
        .secrets
        .describe_secret()
        .secret_id("prod/db")
        .send()
        .await
        .unwrap()
        .version_ids_to_stages()
        .and_then(|versions| versions.keys().next().cloned())
        .unwrap();
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
        &context(Function::Discover, "reports", &clients),
        json!({"execution": PINS_EXECUTION, "input": input}),
    )
    .await
    .unwrap();
    let report = report_of(&clients, PINS_EXECUTION, "b-pins", &discovered).await;
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
    let markdown =
        String::from_utf8(read_object(&clients, "reports/b-pins/report.md").await).unwrap();
    assert!(
        markdown.contains("## ⏳ Pinned versions that need attention"),
        "{markdown}"
    );
}

/// A recreate's `begin` that timed out after its removal executed (the saved state still
/// says `begin`, no update issued): `record-failure` looks at the removal's change set and
/// records the stack degraded with its restore command, not failed and intact.
#[tokio::test(flavor = "multi_thread")]
async fn a_begin_that_timed_out_after_its_removal_executed_is_recorded_degraded() {
    use cascade_aws::batch_store::BatchStore;
    use cascade_aws::store::Store;
    use cascade_core::report::Outcome;

    let local = LocalStack::start().unwrap();
    let clients = account(&local, &["app"]).await;
    let execution = "arn:aws:states:us-east-1:123456789012:execution:sm:b-timeout";
    let input = json!({
        "batch_id": "b-timeout", "tickets": [], "secrets": ["prod/db"], "stacks": null,
        "options": {"strategy": "recreate", "poll_seconds": 0}
    });
    let refresh = context(Function::Refresh, "reports", &clients);
    let discovered = handle(
        &context(Function::Discover, "reports", &clients),
        json!({"execution": execution, "input": input}),
    )
    .await
    .unwrap();
    assert_eq!(discovered["stack_count"], 1, "{discovered}");

    let store = Store::s3(clients.s3.clone(), "reports");
    let batches = BatchStore::new(&store);
    let mut before = batches.state("b-timeout", "app").await.unwrap().unwrap();
    // Begin runs up to executing the removal, then "times out" before saving: the saved
    // state is put back to what begin saved first (phase begin, no update issued).
    handle(
        &refresh,
        json!({"action": "begin", "batch_id": "b-timeout", "stack": "app", "wait_seconds": 0}),
    )
    .await
    .unwrap();
    let after_begin = batches.state("b-timeout", "app").await.unwrap().unwrap();
    assert!(after_begin.update_issued_at.is_some(), "{after_begin:?}");
    before.begin(jiff::Timestamp::now());
    batches.save_state("b-timeout", &before).await.unwrap();

    let recorded = handle(
        &refresh,
        json!({"action": "record-failure", "batch_id": "b-timeout", "stack": "app",
               "error": {"Error": "Sandbox.Timedout", "Cause": "Task timed out after 900.00 seconds"}}),
    )
    .await
    .unwrap();
    assert_eq!(recorded["next"], "done", "{recorded}");
    let state = batches.state("b-timeout", "app").await.unwrap().unwrap();
    assert_eq!(state.outcome, Some(Outcome::Degraded), "{state:?}");
    assert!(
        state
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("Sandbox.Timedout"),
        "{state:?}"
    );

    let report = report_of(&clients, execution, "b-timeout", &discovered).await;
    let first = &report["stacks"][0];
    assert_eq!(first["stack_name"], "app", "{report:#}");
    assert_eq!(first["outcome"], "degraded", "{report:#}");
    assert!(
        first["restore_command"]
            .as_str()
            .is_some_and(|c| c.starts_with("cascade restore ")),
        "{report:#}"
    );
}
