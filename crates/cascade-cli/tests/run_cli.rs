//! `cascade run`, `cascade restore` and `cascade report` as people run them: the binary
//! against a local AWS stack started by the test harness, a local state directory, and a
//! local HTTP sink standing in for Slack's incoming webhook (its URL stored in Secrets
//! Manager, as in production).
//!
//! The stacks come from `tests/fixtures/refresh` (templates referencing `e2e/db`). moto's
//! launcher rolls back any update whose template contains `MotoSimulateUpdateFailure`:
//! `removal-fails.yaml` fails its removal update (failed), `restore-fails.yaml` its restore
//! (degraded). Because the marker is part of that stack's ORIGINAL template, `cascade
//! restore` cannot succeed in moto until the marker is gone; the restore test first shows
//! that (exit 1, stack unchanged), then removes the marker from the saved original, the way
//! an operator would remove the cause of a failed restore, and restores again.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::Client as CloudFormation;
use aws_sdk_cloudformation::types::{Capability, Parameter, Tag};
use cascade_tests::fixtures::{stack_resource_ids, stack_template};
use cascade_tests::slack_sink::{Reply, SlackSink as Sink};
use cascade_tests::{LocalStack, workspace_root};
use serde_json::Value;
use tokio::net::TcpListener;

mod common;
use common::{cascade, printed};

/// The secret every fixture template references.
const SECRET: &str = "e2e/db";
/// The secret holding the webhook URL.
const WEBHOOK_SECRET: &str = "ops/slack-webhook";
const MARKER: &str = "MotoSimulateUpdateFailure";

// ------------------------------------------------------------------ helpers

fn random_hex() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

fn fixture(name: &str) -> String {
    let path = workspace_root().join("tests/fixtures/refresh").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cascade-run-cli-{}-{what}-{}",
            std::process::id(),
            random_hex()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir`, path → contents.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(body) = std::fs::read(&path) {
            out.push((path, body));
        }
    }
    out
}

/// The end of a long output, for failure messages.
fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    &text[start..]
}

async fn start() -> LocalStack {
    tokio::task::spawn_blocking(LocalStack::start)
        .await
        .unwrap()
        .expect("the local stack starts")
}

async fn create_secret(local: &LocalStack, name: &str, value: &str) {
    let clients = local.clients().await;
    clients
        .secrets
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateSecret {name}: {e:?}"));
}

async fn put_secret(local: &LocalStack, name: &str, value: &str) {
    let clients = local.clients().await;
    clients
        .secrets
        .put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutSecretValue {name}: {e:?}"));
}

/// The fixture stacks a test can ask for.
#[derive(Clone, Copy)]
enum Kind {
    /// function.yaml: recreate succeeds (tagged `cascade:strategy=recreate`).
    Ok,
    /// removal-fails.yaml: failed.
    RemovalFails,
    /// restore-fails.yaml: degraded.
    RestoreFails,
}

async fn create_stack(cfn: &CloudFormation, name: &str, kind: Kind) {
    let (file, params): (&str, &[(&str, &str)]) = match kind {
        Kind::Ok => ("function.yaml", &[("Stage", "prod"), ("Team", "platform")]),
        Kind::RemovalFails => ("removal-fails.yaml", &[]),
        Kind::RestoreFails => ("restore-fails.yaml", &[]),
    };
    // These stacks exercise removal and restore: auto would pin their dynamic references.
    let mut request = cfn
        .create_stack()
        .stack_name(name)
        .template_body(fixture(file))
        .capabilities(Capability::CapabilityIam)
        .tags(
            Tag::builder()
                .key("cascade:strategy")
                .value("recreate")
                .build(),
        );
    for (k, v) in params {
        request = request.parameters(
            Parameter::builder()
                .parameter_key(*k)
                .parameter_value(*v)
                .build(),
        );
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStack {name}: {e:?}"));
}

/// Stack-level events other than the creation's.
async fn update_events(cfn: &CloudFormation, name: &str) -> Vec<String> {
    let out = cfn
        .describe_stack_events()
        .stack_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStackEvents {name}: {e:?}"));
    out.stack_events()
        .iter()
        .filter_map(|e| e.resource_status().map(|s| s.as_str().to_string()))
        .filter(|s| !s.starts_with("CREATE_"))
        .collect()
}

fn batch_of(report: &Value) -> String {
    report["batch_id"].as_str().expect("batch_id").to_string()
}

fn outcome_of<'a>(report: &'a Value, stack: &str) -> &'a str {
    report["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .find(|s| s["stack_name"] == stack)
        .unwrap_or_else(|| panic!("{stack} not in the report: {report:#}"))["outcome"]
        .as_str()
        .unwrap()
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ------------------------------------------------------------------ Slack stand-in

/// A URL on this machine where nothing listens.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!(
        "http://127.0.0.1:{port}/services/T0DEAD/B0DEAD/{}",
        random_hex()
    )
}

// ------------------------------------------------------------------ (a) + (c)

/// (a) A run over three stacks, one failing its removal and one its restore: exit 3
/// (degraded wins over failed), report.json/.md in --report-dir, `cascade report latest`
/// prints the same report, Slack gets the totals. (c) `cascade restore` of the degraded
/// stack: refused while its original still carries the failure (moto), then, once the
/// cause is removed from the saved original, exit 0, the stack is back and the batch's
/// report says so.
#[tokio::test(flavor = "multi_thread")]
async fn run_reports_and_notifies_then_restore_brings_the_degraded_stack_back() {
    let local = start().await;
    let cfn = local.clients().await.cloudformation;
    let sink = Sink::scripted(vec![]).await;
    create_secret(&local, SECRET, r#"{"username":"app","password":"dummy"}"#).await;
    create_secret(&local, WEBHOOK_SECRET, &sink.url).await;
    create_stack(&cfn, "cli-ok", Kind::Ok).await;
    create_stack(&cfn, "cli-removal-fails", Kind::RemovalFails).await;
    create_stack(&cfn, "cli-restore-fails", Kind::RestoreFails).await;
    let original_degraded = stack_template(&cfn, "cli-restore-fails").await.unwrap();
    let state = TempDir::new("state");
    let reports = TempDir::new("reports");

    let started = Instant::now();
    let run = cascade(
        &local,
        &[
            "run",
            "--secret",
            SECRET,
            "--yes",
            "--report-dir",
            reports.arg(),
            "--slack-webhook-secret",
            WEBHOOK_SECRET,
            "--state-dir",
            state.arg(),
            "--poll-seconds",
            "0.01",
        ],
        &[],
    )
    .await;
    eprintln!(
        "cascade run over 3 stacks: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        run.stderr
            .contains("cascade restore --stack cli-restore-fails --batch"),
        "{run:?}"
    );
    assert!(run.stderr.contains("Slack: message sent"), "{run:?}");

    // The report files.
    let report = read_json(&reports.path().join("report.json"));
    let markdown = std::fs::read_to_string(reports.path().join("report.md")).unwrap();
    let batch = batch_of(&report);
    assert_eq!(outcome_of(&report, "cli-ok"), "refreshed");
    assert_eq!(outcome_of(&report, "cli-removal-fails"), "failed");
    assert_eq!(outcome_of(&report, "cli-restore-fails"), "degraded");
    assert_eq!(
        report["totals"],
        serde_json::json!({"refreshed": 1, "failed": 1, "skipped": 0, "degraded": 1})
    );
    assert_eq!(report["stacks"][0]["stack_name"], "cli-restore-fails");
    assert_eq!(
        report["stacks"][0]["restore_command"],
        format!(
            "cascade restore --stack cli-restore-fails --batch {batch} --state-dir {}",
            state.arg()
        )
    );
    let restore_command = report["stacks"][0]["restore_command"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(markdown.contains("cli-restore-fails") && markdown.contains(&batch));

    // `cascade report latest` prints the same report.
    let shown = cascade(
        &local,
        &[
            "report",
            "latest",
            "--format",
            "json",
            "--state-dir",
            state.arg(),
        ],
        &[],
    )
    .await;
    assert_eq!(shown.code, Some(0), "{shown:?}");
    let shown_json: Value = serde_json::from_str(&shown.stdout).expect("JSON on stdout");
    assert_eq!(shown_json, report);
    let shown_md = cascade(
        &local,
        &["report", "latest", "--state-dir", state.arg()],
        &[],
    )
    .await;
    assert_eq!(shown_md.code, Some(0), "{shown_md:?}");
    assert_eq!(shown_md.stdout, markdown);

    // Slack got one message with the totals.
    let received = sink.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].path, sink.path);
    let message: Value = serde_json::from_slice(&received[0].body).unwrap();
    let text = message["text"].as_str().unwrap();
    assert!(
        text.contains("1 degraded, 1 failed, 1 refreshed"),
        "{message:#}"
    );
    assert!(text.contains("Restore needed: cli-restore-fails"), "{text}");
    assert!(
        message["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("1 degraded, 1 failed, 1 refreshed"),
        "{message:#}"
    );

    // (c) The degraded stack lacks Function.
    assert_eq!(
        stack_resource_ids(&cfn, "cli-restore-fails").await.unwrap(),
        ["Role"]
    );
    // The report's command, run as printed. In moto the original itself carries the
    // failure marker: the restore is rolled back.
    let refused = printed(&local, &restore_command).await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("UPDATE_ROLLBACK_COMPLETE"),
        "{refused:?}"
    );
    assert_eq!(
        stack_resource_ids(&cfn, "cli-restore-fails").await.unwrap(),
        ["Role"]
    );

    // The cause removed from the saved original, the restore works.
    let saved = state
        .path()
        .join(format!("batches/{batch}/originals/cli-restore-fails.json"));
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.contains(MARKER));
    std::fs::write(&saved, text.replace(MARKER, "FailureSimulationRemoved")).unwrap();
    let restored = printed(&local, &restore_command).await;
    assert_eq!(restored.code, Some(0), "{restored:?}");
    assert!(
        restored.stdout.contains("cli-restore-fails restored"),
        "{restored:?}"
    );
    assert_eq!(
        stack_resource_ids(&cfn, "cli-restore-fails").await.unwrap(),
        ["Function", "Role"]
    );
    assert_eq!(
        stack_template(&cfn, "cli-restore-fails").await.unwrap(),
        original_degraded.replace(MARKER, "FailureSimulationRemoved")
    );
    let after = cascade(
        &local,
        &[
            "report",
            batch.as_str(),
            "--format",
            "json",
            "--state-dir",
            state.arg(),
        ],
        &[],
    )
    .await;
    let after: Value = serde_json::from_str(&after.stdout).expect("JSON report");
    assert_eq!(outcome_of(&after, "cli-restore-fails"), "refreshed");
    assert_eq!(after["totals"]["degraded"], 0);
    assert_eq!(after["totals"]["failed"], 1);
}

// ------------------------------------------------------------------ (b)

/// (b) Without --yes, on a stdin that is not a terminal: exit 1, nothing changed, no batch.
#[tokio::test(flavor = "multi_thread")]
async fn run_without_yes_on_a_pipe_changes_nothing() {
    let local = start().await;
    let cfn = local.clients().await.cloudformation;
    create_secret(&local, SECRET, r#"{"password":"dummy"}"#).await;
    create_stack(&cfn, "cli-ok", Kind::Ok).await;
    let before = stack_template(&cfn, "cli-ok").await.unwrap();
    let resources_before = stack_resource_ids(&cfn, "cli-ok").await.unwrap();
    let state = TempDir::new("state");

    let run = cascade(
        &local,
        &[
            "run",
            "--secret",
            SECRET,
            "--state-dir",
            state.arg(),
            "--poll-seconds",
            "0.01",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("--yes"), "{run:?}");
    assert!(run.stdout.contains("cli-ok"), "the plan is shown: {run:?}");
    assert_eq!(stack_template(&cfn, "cli-ok").await.unwrap(), before);
    assert_eq!(
        stack_resource_ids(&cfn, "cli-ok").await.unwrap(),
        resources_before
    );
    assert!(
        update_events(&cfn, "cli-ok").await.is_empty(),
        "no update was issued"
    );
    assert!(
        files_under(state.path()).is_empty(),
        "no batch was started: {:?}",
        files_under(state.path())
            .iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>()
    );
}

// ------------------------------------------------------------------ (d)

/// (d) The canary: the changed secret holds a unique value; a whole run with a failed and
/// a degraded stack, at CASCADE_LOG=trace, then `cascade report` and `cascade restore`.
/// Neither the value nor the webhook URL's path may appear in anything the commands
/// printed, wrote (state directory, report directory) or sent to Slack.
#[tokio::test(flavor = "multi_thread")]
async fn the_secret_value_and_the_webhook_url_never_leak() {
    let canary = format!("canary-{}", random_hex());
    let local = start().await;
    let cfn = local.clients().await.cloudformation;
    let sink = Sink::scripted(vec![]).await;
    create_secret(
        &local,
        SECRET,
        &format!(r#"{{"username":"app","password":"{canary}"}}"#),
    )
    .await;
    // A changed secret: a new version with the canary too.
    put_secret(
        &local,
        SECRET,
        &format!(r#"{{"username":"app","password":"{canary}-v2"}}"#),
    )
    .await;
    create_secret(&local, WEBHOOK_SECRET, &sink.url).await;
    create_stack(&cfn, "canary-ok", Kind::Ok).await;
    create_stack(&cfn, "canary-removal-fails", Kind::RemovalFails).await;
    create_stack(&cfn, "canary-restore-fails", Kind::RestoreFails).await;
    let state = TempDir::new("state");
    let reports = TempDir::new("reports");
    let trace = [("CASCADE_LOG", "trace")];

    let run = cascade(
        &local,
        &[
            "run",
            "--secret",
            SECRET,
            "--yes",
            "--report-dir",
            reports.arg(),
            "--slack-webhook-secret",
            WEBHOOK_SECRET,
            "--state-dir",
            state.arg(),
            "--poll-seconds",
            "0.01",
        ],
        &trace,
    )
    .await;
    assert_eq!(run.code, Some(3), "{}", tail(&run.stderr));
    // The logs are really there: SDK internals at trace, the webhook read, the delivery.
    assert!(
        run.stderr.contains("TRACE") && run.stderr.contains("GetSecretValue"),
        "CASCADE_LOG=trace is in effect"
    );
    assert!(
        run.stderr.contains("Slack message delivered"),
        "the delivery is logged"
    );
    let report = read_json(&reports.path().join("report.json"));
    let batch = batch_of(&report);
    let shown = cascade(
        &local,
        &[
            "report",
            "latest",
            "--format",
            "json",
            "--state-dir",
            state.arg(),
        ],
        &trace,
    )
    .await;
    assert_eq!(shown.code, Some(0), "{shown:?}");
    let restore = cascade(
        &local,
        &[
            "restore",
            "--stack",
            "canary-restore-fails",
            "--batch",
            batch.as_str(),
            "--state-dir",
            state.arg(),
        ],
        &trace,
    )
    .await;
    assert_eq!(restore.code, Some(1), "rolled back in moto: {restore:?}");

    let received = sink.received();
    assert_eq!(received.len(), 1);
    let mut leaks = Vec::new();
    let webhook_secret_part = sink.path.rsplit('/').next().unwrap().to_string();
    for (what, text) in [
        ("cascade run output", run.both()),
        ("cascade report output", shown.both()),
        ("cascade restore output", restore.both()),
    ] {
        if text.contains(&canary) {
            leaks.push(format!("{what} contains the secret value"));
        }
        if text.contains(&sink.path) || text.contains(&webhook_secret_part) {
            leaks.push(format!("{what} contains the webhook URL's path"));
        }
    }
    let files: Vec<(PathBuf, Vec<u8>)> = files_under(state.path())
        .into_iter()
        .chain(files_under(reports.path()))
        .collect();
    assert!(files.len() >= 8, "{} files", files.len());
    for (path, body) in &files {
        let text = String::from_utf8_lossy(body);
        if text.contains(&canary) {
            leaks.push(format!("{} contains the secret value", path.display()));
        }
        if text.contains(&webhook_secret_part) {
            leaks.push(format!(
                "{} contains the webhook URL's path",
                path.display()
            ));
        }
    }
    for r in &received {
        let text = String::from_utf8_lossy(&r.body);
        if text.contains(&canary) {
            leaks.push("the Slack message contains the secret value".into());
        }
        if text.contains(&webhook_secret_part) {
            leaks.push("the Slack message contains the webhook URL's path".into());
        }
    }
    eprintln!(
        "canary search: {} bytes of output, {} files, {} Slack message(s)",
        run.both().len() + shown.both().len() + restore.both().len(),
        files.len(),
        received.len()
    );
    assert!(leaks.is_empty(), "leaks:\n{}", leaks.join("\n"));
}

// ------------------------------------------------------------------ (e)

/// (e) Slack answers 429 (Retry-After: 1) then 200: the message still arrives, once more
/// after the wait, with the totals. Then the sink is down: the run still ends with its
/// normal exit code (2, a stack failed) and the report is saved.
#[tokio::test(flavor = "multi_thread")]
async fn slack_is_retried_after_429_and_a_dead_sink_changes_nothing() {
    let local = start().await;
    let cfn = local.clients().await.cloudformation;
    let sink = Sink::scripted(vec![Reply::Status(429, vec![("Retry-After", "1")], "")]).await;
    create_secret(&local, SECRET, r#"{"password":"dummy"}"#).await;
    create_secret(&local, WEBHOOK_SECRET, &sink.url).await;
    create_stack(&cfn, "slack-ok", Kind::Ok).await;
    create_stack(&cfn, "slack-removal-fails", Kind::RemovalFails).await;
    let state = TempDir::new("state");
    let args = |reports: &TempDir| -> Vec<String> {
        [
            "run",
            "--secret",
            SECRET,
            "--yes",
            "--report-dir",
            reports.arg(),
            "--slack-webhook-secret",
            WEBHOOK_SECRET,
            "--state-dir",
            state.arg(),
            "--poll-seconds",
            "0.01",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };

    let reports = TempDir::new("reports-429");
    let argv = args(&reports);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let run = cascade(&local, &argv, &[]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("Slack: message sent"), "{run:?}");
    let received = sink.received();
    assert_eq!(received.len(), 2, "429 then 200");
    let waited = received[1].at - received[0].at;
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
    assert_eq!(received[0].body, received[1].body);
    let message: Value = serde_json::from_slice(&received[1].body).unwrap();
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .contains("1 failed, 1 refreshed"),
        "{message:#}"
    );

    // The sink is down.
    put_secret(&local, WEBHOOK_SECRET, &dead_url().await).await;
    let reports = TempDir::new("reports-down");
    let argv = args(&reports);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let started = Instant::now();
    let run = cascade(&local, &argv, &[]).await;
    eprintln!(
        "run with the Slack sink down: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("Slack message not delivered"),
        "{run:?}"
    );
    let report = read_json(&reports.path().join("report.json"));
    assert_eq!(outcome_of(&report, "slack-ok"), "refreshed");
    assert_eq!(outcome_of(&report, "slack-removal-fails"), "failed");
    let batch = batch_of(&report);
    assert!(
        state
            .path()
            .join(format!("reports/{batch}/report.json"))
            .exists(),
        "the report is saved in the state directory"
    );
}

// ------------------------------------------------------------------ (f)

/// Removing `Service` works, putting it back fails (the marker is only in it): degraded.
const SERVERLESS_BROKEN_RESTORE: &str = "Resources:
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
  Service:
    Type: AWS::AppRunner::Service
    Metadata:
      Note: MotoSimulateUpdateFailure
    Properties:
      Secret: '{{resolve:secretsmanager:prod/api:SecretString:token}}'
";

/// (f) The restore command of a report the deployed application wrote (the serverless
/// path: template.yaml deployed, IAM enforced, the real state machine) names the state
/// bucket and its region; copied from the report and from Slack and run as printed, it
/// brings the degraded stack back, and the report in S3 says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restore_command_of_a_serverless_report_works_as_printed() {
    use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
    use cascade_tests::slack_sink::SlackSink;

    let sink = SlackSink::start().await.unwrap();
    let pipeline = LocalPipeline::start(PipelineOptions::notifying(&sink.url))
        .await
        .unwrap();
    let clients = &pipeline.clients;
    let bucket = pipeline.deployment.bucket.clone();
    clients
        .secrets
        .create_secret()
        .name("prod/api")
        .secret_string(r#"{"token":"first"}"#)
        .send()
        .await
        .unwrap();
    let cfn = &clients.cloudformation;
    cfn.create_stack()
        .stack_name("api")
        .template_body(SERVERLESS_BROKEN_RESTORE)
        .tags(
            Tag::builder()
                .key("cascade:strategy")
                .value("recreate")
                .build(),
        )
        .send()
        .await
        .unwrap();
    pipeline
        .change_secret("prod/api", r#"{"token":"second"}"#)
        .await
        .unwrap();
    let (execution, report) = pipeline.run_batch().await.unwrap();
    let report = report.unwrap_or_else(|| panic!("no report: {execution:?}"));
    assert_eq!(report["stacks"][0]["outcome"], "degraded", "{report:#}");
    assert!(
        !stack_template(cfn, "api")
            .await
            .unwrap()
            .contains("AWS::AppRunner::Service")
    );
    let batch = batch_of(&report);
    let command = report["stacks"][0]["restore_command"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        command,
        format!("cascade restore --stack api --batch {batch} --bucket {bucket} --region us-east-1")
    );
    let slack = sink.bodies();
    assert_eq!(slack.len(), 1);
    assert!(
        slack[0].contains(&command),
        "Slack carries the same command: {}",
        slack[0]
    );

    // The operator removes the cause (here: the failure marker in the saved original)...
    let s3 = &clients.s3;
    let key = format!("batches/{batch}/originals/api.json");
    let saved = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let text = String::from_utf8(saved.body.collect().await.unwrap().to_vec()).unwrap();
    assert!(text.contains(MARKER));
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(
            text.replace(MARKER, "FailureSimulationRemoved")
                .into_bytes()
                .into(),
        )
        .send()
        .await
        .unwrap();
    // ...and pastes the command.
    let restored = printed(&pipeline.local, &command).await;
    assert_eq!(restored.code, Some(0), "{restored:?}");
    assert!(restored.stdout.contains("api restored"), "{restored:?}");
    assert_eq!(
        stack_template(cfn, "api").await.unwrap(),
        SERVERLESS_BROKEN_RESTORE.replace(MARKER, "FailureSimulationRemoved")
    );
    let after = pipeline
        .read_report(&format!("reports/{batch}/report.json"))
        .await
        .unwrap();
    assert_eq!(after["stacks"][0]["outcome"], "refreshed", "{after:#}");
    assert_eq!(after["totals"]["degraded"], 0);
}
