//! Pinned versions that age out (issue 12), with the `cascade` binary against the local
//! stack (moto, started by the harness), a state directory and a Slack sink:
//!
//! - `cascade plan` and every report of a batch (JSON, Markdown, Slack) list the stacks
//!   their authors pinned to a version that lost its staging label (Secrets Manager will
//!   delete it) or no longer exists, while a pin Secret Cascade wrote is simply moved on;
//! - a pin Secret Cascade wrote follows every change: pin, pin again, then recreate;
//! - a ListSecretVersionIds that fails is a note in the plan and the report: the batch
//!   goes on.
//!
//! moto lists every version whatever `IncludeDeprecated` says (AWS needs the flag to list
//! the unlabelled ones); each PutSecretValue leaves the version before the previous one
//! without a label, as AWS does. moto never deletes a version: a deleted one is a version
//! id that never existed.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use cascade_core::report::slack::message_as_text;
use cascade_tests::fixtures::create_parameter_stack;
use cascade_tests::slack_sink::SlackSink;
use cascade_tests::{LocalStack, LocalStackOptions};
use serde_json::Value;

#[allow(dead_code)] // `printed` and `Ran::both` serve the other test files.
mod common;
use common::{Ran, cascade};

const SECRET: &str = "e2e/rotated";
const WEBHOOK_SECRET: &str = "ops/slack-webhook";
/// A version id that never existed (moto's are UUIDs too).
const GONE: &str = "00000000-dead-4bad-8bad-000000000000";

async fn start(options: LocalStackOptions) -> LocalStack {
    tokio::task::spawn_blocking(move || LocalStack::start_with(&options))
        .await
        .unwrap()
        .expect("the local stack starts")
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let dir = std::env::temp_dir().join(format!(
            "cascade-pins-cli-{}-{what}-{:016x}",
            std::process::id(),
            h.finish()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates the secret (or gives it a new value): its new version id.
async fn change_secret(local: &LocalStack, name: &str, value: &str) -> String {
    let sm = local.clients().await.secrets;
    match sm.describe_secret().secret_id(name).send().await {
        Ok(_) => sm
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .unwrap()
            .version_id()
            .unwrap()
            .to_string(),
        Err(_) => sm
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap()
            .version_id()
            .unwrap()
            .to_string(),
    }
}

/// A stack whose SSM parameter holds `reference`, with `extra` template text after it.
async fn create_stack(
    local: &LocalStack,
    name: &str,
    reference: &str,
    extra: &str,
    tags: &[(&str, &str)],
) {
    let cfn = local.clients().await.cloudformation;
    create_parameter_stack(&cfn, name, reference, extra, tags)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
}

/// The stack's template now, as long-form JSON.
async fn template(local: &LocalStack, name: &str) -> Value {
    let body = local
        .clients()
        .await
        .cloudformation
        .get_template()
        .stack_name(name)
        .send()
        .await
        .unwrap()
        .template_body()
        .unwrap()
        .to_string();
    cascade_core::template::read_template(&body).unwrap()
}

fn pinned_to(version: &str) -> String {
    format!("{{{{resolve:secretsmanager:{SECRET}:SecretString:password::{version}}}}}")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `cascade run --secret SECRET --yes` with this state directory and `extra` arguments.
async fn run(local: &LocalStack, state: &TempDir, extra: &[&str]) -> Ran {
    let mut args = vec![
        "run",
        "--secret",
        SECRET,
        "--yes",
        "--state-dir",
        state.arg(),
        "--poll-seconds",
        "0.01",
    ];
    args.extend_from_slice(extra);
    cascade(local, &args, &[]).await
}

/// (stack, version id, status, pinned by) of each entry of an `attention` list.
fn attention_of(json: &Value) -> Vec<(String, String, String, String)> {
    json["attention"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (
                s("stack_name"),
                s("version_id"),
                s("status"),
                s("pinned_by"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_and_every_report_list_the_author_pins_that_aged_out() {
    let local = start(LocalStackOptions::default()).await;
    // Four values: v0 and v1 lose their labels, v2 is AWSPREVIOUS, v3 AWSCURRENT.
    let mut v = Vec::new();
    for value in ["one", "two", "three", "four"] {
        v.push(change_secret(&local, SECRET, &format!(r#"{{"password":"{value}"}}"#)).await);
    }
    let arn = local
        .clients()
        .await
        .secrets
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    create_stack(&local, "author-old", &pinned_to(&v[0]), "", &[]).await;
    create_stack(&local, "author-gone", &pinned_to(GONE), "", &[]).await;
    create_stack(&local, "author-previous", &pinned_to(&v[2]), "", &[]).await;
    let own_pin = format!(
        "Metadata:\n  SecretCascade:\n    Pins:\n      - Path: Resources.Param.Properties.Value\n        SecretArn: {arn}\n        VersionId: {}\n",
        v[1]
    );
    create_stack(&local, "cascade-pinned", &pinned_to(&v[1]), &own_pin, &[]).await;
    let expected = vec![
        (
            "author-gone".to_string(),
            GONE.to_string(),
            "deleted".to_string(),
            "author".to_string(),
        ),
        (
            "author-old".to_string(),
            v[0].clone(),
            "deprecated".to_string(),
            "author".to_string(),
        ),
    ];

    // `cascade plan --format json`: the two author pins, with their reasons.
    let plan = cascade(
        &local,
        &["plan", "--secret", SECRET, "--format", "json"],
        &[],
    )
    .await;
    assert_eq!(plan.code, Some(0), "{plan:?}");
    let json: Value = serde_json::from_str(&plan.stdout).expect("JSON on stdout");
    assert_eq!(attention_of(&json), expected, "{:#}", json["attention"]);
    let gone = &json["attention"][0];
    assert_eq!(gone["resource"], "Param");
    assert_eq!(gone["path"], "Resources.Param.Properties.Value");
    assert_eq!(gone["secret"], SECRET);
    let gone_reason = gone["reason"].as_str().unwrap();
    assert!(
        gone_reason.starts_with(&format!(
            "pinned by the stack's author: version {GONE} of {SECRET} no longer exists: CloudFormation cannot resolve this reference"
        )) && gone_reason.contains(&format!("{} is AWSCURRENT", v[3])),
        "{gone_reason}"
    );
    let old_reason = json["attention"][1]["reason"].as_str().unwrap();
    assert!(
        old_reason.contains("has no staging label any more: Secrets Manager will delete it"),
        "{old_reason}"
    );
    assert!(json.get("notes").is_none(), "{json:#}");
    let to_refresh: Vec<&str> = json["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["stack_name"].as_str())
        .collect();
    assert_eq!(to_refresh, ["cascade-pinned"], "its own pin is moved on");

    // The table says it first.
    let table = cascade(&local, &["plan", "--secret", SECRET], &[]).await;
    assert_eq!(table.code, Some(0), "{table:?}");
    let needs = table
        .stdout
        .find("Needs attention: 2 reference(s)")
        .unwrap_or_else(|| panic!("{table:?}"));
    assert!(
        needs < table.stdout.find("To refresh").unwrap(),
        "{table:?}"
    );
    for name in ["author-gone", "author-old", GONE, "deleted", "deprecated"] {
        assert!(table.stdout.contains(name), "{name}: {table:?}");
    }

    // A batch: the report (JSON and Markdown) and the Slack message have them.
    let sink = SlackSink::start().await.unwrap();
    change_secret(&local, WEBHOOK_SECRET, &sink.url).await;
    let state = TempDir::new("state");
    let reports = TempDir::new("reports");
    let ran = run(
        &local,
        &state,
        &[
            "--report-dir",
            reports.arg(),
            "--slack-webhook-secret",
            WEBHOOK_SECRET,
        ],
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stderr
            .contains("needs attention author-gone Resources.Param.Properties.Value"),
        "{ran:?}"
    );
    let report = read_json(&reports.path().join("report.json"));
    assert_eq!(attention_of(&report), expected, "{report:#}");
    assert_eq!(report["attention"][0]["reason"], gone_reason);
    assert_eq!(
        report["totals"],
        serde_json::json!({"refreshed": 1, "failed": 0, "skipped": 3, "degraded": 0})
    );
    let markdown = std::fs::read_to_string(reports.path().join("report.md")).unwrap();
    assert!(
        markdown.contains("· **2 pinned versions need attention** —"),
        "{markdown}"
    );
    let section = markdown
        .find("## ⏳ Pinned versions that need attention")
        .unwrap_or_else(|| panic!("{markdown}"));
    assert!(markdown.find("## Stacks").unwrap() < section, "{markdown}");
    assert!(
        markdown.contains(&format!(
            "| `author-gone` | `Resources.Param.Properties.Value` | `{SECRET}` | `{GONE}` | deleted | author | pinned by the stack's author:"
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!("| `author-old` | `Resources.Param.Properties.Value` | `{SECRET}` | `{}` | deprecated | author |", v[0])),
        "{markdown}"
    );
    let bodies = sink.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let message: Value = serde_json::from_str(&bodies[0]).unwrap();
    let text = message_as_text(&message);
    assert!(
        text.starts_with(
            ":warning: Secret Cascade: 1 refreshed, 3 skipped · 2 pinned versions need attention"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "• `author-gone` `Resources.Param.Properties.Value`: `{SECRET}` version `{GONE}` *deleted* (pinned by the author): pinned by the stack's author: version {GONE}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "`author-old` `Resources.Param.Properties.Value`: `{SECRET}` version `{}` *deprecated*",
            v[0]
        )),
        "{text}"
    );
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .contains("Pinned versions that need attention: author-gone, author-old."),
        "{message:#}"
    );
    // The pin Secret Cascade wrote is now at the current version, and recorded so.
    let pinned = template(&local, "cascade-pinned").await;
    assert_eq!(
        pinned["Resources"]["Param"]["Properties"]["Value"],
        pinned_to(&v[3])
    );
    assert_eq!(
        pinned["Metadata"]["SecretCascade"]["Pins"][0]["VersionId"],
        v[3].as_str()
    );
    // The authors' pins are left as they wrote them.
    assert_eq!(
        template(&local, "author-old").await["Resources"]["Param"]["Properties"]["Value"],
        pinned_to(&v[0])
    );
    // No value reached any of it.
    for everything in [
        &plan.stdout,
        &table.stdout,
        &ran.stderr,
        &markdown,
        &bodies[0],
    ] {
        for value in ["\"one\"", "\"two\"", "\"three\"", "\"four\""] {
            assert!(!everything.contains(value), "{value} leaked");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pin_secret_cascade_wrote_moves_to_the_newest_version_at_every_change() {
    let local = start(LocalStackOptions::default()).await;
    change_secret(&local, SECRET, r#"{"password":"one"}"#).await;
    let plain = format!("{{{{resolve:secretsmanager:{SECRET}:SecretString:password}}}}");
    create_stack(&local, "follows", &plain, "", &[]).await;
    let state = TempDir::new("state");
    let value_of = |t: &Value| t["Resources"]["Param"]["Properties"]["Value"].clone();
    let pins_of = |t: &Value| t["Metadata"]["SecretCascade"]["Pins"].clone();

    // First change, pin strategy: the reference names the new version.
    let second = change_secret(&local, SECRET, r#"{"password":"two"}"#).await;
    let ran = run(&local, &state, &["--strategy", "pin"]).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let t = template(&local, "follows").await;
    assert_eq!(value_of(&t), pinned_to(&second));
    assert_eq!(pins_of(&t).as_array().unwrap().len(), 1);

    // Second change: the finder knows its own pin, and pin moves it on.
    let third = change_secret(&local, SECRET, r#"{"password":"three"}"#).await;
    let ran = run(&local, &state, &["--strategy", "pin"]).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let t = template(&local, "follows").await;
    assert_eq!(value_of(&t), pinned_to(&third), "re-pinned to the newest");
    let pins = pins_of(&t);
    assert_eq!(pins.as_array().unwrap().len(), 1, "{pins:#}");
    assert_eq!(pins[0]["VersionId"], third.as_str());

    // Third change, recreate this time: the restore puts the parameter back pinned to
    // the newest version, not to the one the saved original names.
    let fourth = change_secret(&local, SECRET, r#"{"password":"four"}"#).await;
    let ran = run(&local, &state, &["--strategy", "recreate"]).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("recreate"), "{ran:?}");
    let t = template(&local, "follows").await;
    assert_eq!(
        value_of(&t),
        pinned_to(&fourth),
        "recreated with the newest"
    );
    assert_eq!(pins_of(&t)[0]["VersionId"], fourth.as_str());

    // And the next plan finds it up to date.
    let plan = cascade(
        &local,
        &["plan", "--secret", SECRET, "--format", "json"],
        &[],
    )
    .await;
    let json: Value = serde_json::from_str(&plan.stdout).expect("JSON on stdout");
    assert_eq!(json["skipped"][0]["code"], "up-to-date", "{json:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_list_that_fails_is_a_note_and_the_batch_goes_on() {
    let local = start(LocalStackOptions {
        throttle: Some("secretsmanager:ListSecretVersionIds".into()),
        ..LocalStackOptions::default()
    })
    .await;
    change_secret(&local, SECRET, r#"{"password":"one"}"#).await;
    change_secret(&local, SECRET, r#"{"password":"two"}"#).await;
    create_stack(&local, "author-gone", &pinned_to(GONE), "", &[]).await;
    let plain = format!("{{{{resolve:secretsmanager:{SECRET}}}}}");
    create_stack(&local, "plain", &plain, "", &[]).await;
    let attempts = [("AWS_MAX_ATTEMPTS", "2")];

    let plan = cascade(
        &local,
        &["plan", "--secret", SECRET, "--format", "json"],
        &attempts,
    )
    .await;
    assert_eq!(plan.code, Some(0), "{plan:?}");
    let json: Value = serde_json::from_str(&plan.stdout).expect("JSON on stdout");
    let note = json["notes"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{json:#}"));
    assert!(
        note.starts_with(&format!(
            "the versions of secret {SECRET} could not be listed (secretsmanager:ListSecretVersionIds failed: "
        )),
        "{note}"
    );
    assert!(json.get("attention").is_none(), "{json:#}");

    let state = TempDir::new("state");
    let reports = TempDir::new("reports");
    let args = vec![
        "run",
        "--secret",
        SECRET,
        "--yes",
        "--state-dir",
        state.arg(),
        "--report-dir",
        reports.arg(),
        "--poll-seconds",
        "0.01",
    ];
    let ran = cascade(&local, &args, &attempts).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let report = read_json(&reports.path().join("report.json"));
    assert_eq!(report["notes"], serde_json::json!([note]), "{report:#}");
    assert_eq!(report["totals"]["refreshed"], 1, "{report:#}");
    let markdown = std::fs::read_to_string(reports.path().join("report.md")).unwrap();
    assert!(
        markdown.contains("> the versions of secret e2e/rotated could not be listed"),
        "{markdown}"
    );
}
