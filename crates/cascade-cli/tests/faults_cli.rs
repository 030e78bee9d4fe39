//! Faults inside a stack's refresh through `cascade run` (issue 12, part 2), against the
//! local stack: CloudFormation throttling injected by the launcher (`CASCADE_THROTTLE`,
//! answered as AWS does: HTTP 400 `Throttling`), met by the SDK's adaptive retry. Within
//! the retries it is absorbed; beyond them the stack whose call it was is failed with the
//! reason and left as it was, and the run goes on with the others.

use std::path::{Path, PathBuf};

use aws_sdk_cloudformation::Client as CloudFormation;
use aws_sdk_cloudformation::types::{Capability, Parameter, Tag};
use cascade_tests::fixtures::{stack_resource_ids, stack_template};
use cascade_tests::{LocalStack, LocalStackOptions, workspace_root};
use serde_json::Value;

#[allow(dead_code)] // `printed` serves the other test files.
mod common;
use common::cascade;

/// The secret the fixture template references.
const SECRET: &str = "e2e/db";

async fn start(throttle: &str) -> LocalStack {
    let options = LocalStackOptions {
        throttle: Some(throttle.to_string()),
        ..LocalStackOptions::default()
    };
    tokio::task::spawn_blocking(move || LocalStack::start_with(&options))
        .await
        .unwrap()
        .expect("the local stack starts")
}

/// A state directory, removed on drop.
struct StateDir(PathBuf);

impl StateDir {
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cascade-faults-cli-{}-{what}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        StateDir(dir)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A secret, and a recreate stack from `function.yaml` for each name (the secret, the
/// stacks: created before any throttled call, which the launcher throttles alike).
async fn set_up(local: &LocalStack, stacks: &[&str]) -> CloudFormation {
    let clients = local.clients().await;
    clients
        .secrets
        .create_secret()
        .name(SECRET)
        .secret_string(r#"{"username":"app","password":"dummy"}"#)
        .send()
        .await
        .expect("CreateSecret");
    let body =
        std::fs::read_to_string(workspace_root().join("tests/fixtures/refresh/function.yaml"))
            .unwrap();
    for name in stacks {
        clients
            .cloudformation
            .create_stack()
            .stack_name(*name)
            .template_body(&body)
            .capabilities(Capability::CapabilityIam)
            .tags(
                Tag::builder()
                    .key("cascade:strategy")
                    .value("recreate")
                    .build(),
            )
            .parameters(
                Parameter::builder()
                    .parameter_key("Stage")
                    .parameter_value("prod")
                    .build(),
            )
            .parameters(
                Parameter::builder()
                    .parameter_key("Team")
                    .parameter_value("platform")
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateStack {name}: {e:?}"));
    }
    clients.cloudformation
}

async fn run(local: &LocalStack, state: &StateDir, env: &[(&str, &str)]) -> (common::Ran, Value) {
    let ran = cascade(
        local,
        &[
            "run",
            "--secret",
            SECRET,
            "--yes",
            "--report-dir",
            state.arg(),
            "--state-dir",
            state.arg(),
            "--poll-seconds",
            "0.01",
        ],
        env,
    )
    .await;
    let report = std::fs::read(state.path().join("report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (ran, report)
}

fn line<'a>(report: &'a Value, stack: &str) -> &'a Value {
    report["stacks"]
        .as_array()
        .unwrap_or_else(|| panic!("no stacks in the report: {report:#}"))
        .iter()
        .find(|s| s["stack_name"] == stack)
        .unwrap_or_else(|| panic!("{stack} not in the report: {report:#}"))
}

/// Two throttled ExecuteChangeSet calls (of 8 attempts) are absorbed by the retries:
/// the stack is refreshed, nothing is said about throttling.
#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_execute_change_set_is_absorbed_by_the_retries() {
    let local = start("cloudformation:ExecuteChangeSet=2").await;
    let cfn = set_up(&local, &["absorbed"]).await;
    let resources = stack_resource_ids(&cfn, "absorbed").await.unwrap();
    let state = StateDir::new("absorbed");
    let (ran, report) = run(&local, &state, &[]).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(
        line(&report, "absorbed")["outcome"],
        "refreshed",
        "{report:#}"
    );
    assert!(!ran.both().contains("throttled"), "{ran:?}");
    assert_eq!(
        stack_resource_ids(&cfn, "absorbed").await.unwrap(),
        resources
    );
}

/// Two attempts a call (`AWS_MAX_ATTEMPTS=2`) and the first two ExecuteChangeSet calls
/// throttled: the first stack's removal is throttled beyond the retries. That stack is
/// failed with the reason, "throttled ... try again later", left as it was (its removal
/// never executed); the run does not stop (before the fix: RunError::Step, exit 1): the
/// other stack is refreshed.
#[tokio::test(flavor = "multi_thread")]
async fn throttled_beyond_the_retries_fails_that_stack_only_and_the_run_goes_on() {
    let local = start("cloudformation:ExecuteChangeSet=2").await;
    let names = ["throttled-a", "throttled-b"];
    let cfn = set_up(&local, &names).await;
    let before = [
        stack_template(&cfn, names[0]).await.unwrap(),
        stack_template(&cfn, names[1]).await.unwrap(),
    ];
    let resources = stack_resource_ids(&cfn, names[0]).await.unwrap();
    let state = StateDir::new("beyond");
    let (ran, report) = run(&local, &state, &[("AWS_MAX_ATTEMPTS", "2")]).await;
    assert_ne!(ran.code, Some(1), "the run stopped: {ran:?}");
    assert!(!ran.both().contains("dummy"), "{ran:?}");

    let outcomes: Vec<&str> = names
        .iter()
        .map(|n| line(&report, n)["outcome"].as_str().unwrap())
        .collect();
    let failed = outcomes.iter().position(|o| *o == "failed");
    let Some(failed) = failed else {
        panic!("no stack failed: {report:#}");
    };
    let other = 1 - failed;
    assert_eq!(outcomes[other], "refreshed", "{report:#}");
    let reason = line(&report, names[failed])["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("ExecuteChangeSet")
            && reason.contains("throttled")
            && reason.contains("try again later"),
        "{reason}"
    );
    // Left as it was: the removal never executed.
    assert_eq!(
        stack_template(&cfn, names[failed]).await.unwrap(),
        before[failed]
    );
    assert_eq!(
        stack_resource_ids(&cfn, names[failed]).await.unwrap(),
        resources
    );
    assert!(
        line(&report, names[failed])["restore_command"].is_null(),
        "{report:#}"
    );

    // Once the throttling is over, --retry-failed refreshes it.
    let batch = report["batch_id"].as_str().unwrap().to_string();
    let again = cascade(
        &local,
        &[
            "run",
            "--retry-failed",
            &batch,
            "--yes",
            "--report-dir",
            state.arg(),
            "--state-dir",
            state.arg(),
            "--poll-seconds",
            "0.01",
        ],
        &[("AWS_MAX_ATTEMPTS", "2")],
    )
    .await;
    assert_eq!(again.code, Some(0), "{again:?}");
}
