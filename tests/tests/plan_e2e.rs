//! End-to-end planning against the local stack: seeds the fixture account of
//! `tests/fixtures/plan` (secrets and 50+ stacks, see its `stacks.json`), plans the batch
//! `prod/db` + `prod/api` through discovery exactly as `cascade plan` does, and compares the
//! plan with `tests/fixtures/plan/expected-plan.json`.
//!
//! What changes from run to run is replaced by placeholders before the comparison: stack ids
//! (`<NAME stack id>`), secret ARNs (`<NAME arn>`, their random suffix changes), version
//! ids (`<NAME version>`) and template digests (`<digest of FILE>`, only when it is the
//! digest of the template the stack was created with: templates naming a full ARN change
//! with it).
//!
//! `UPDATE_EXPECTED=1 cargo test -p cascade-tests --test plan_e2e` rewrites the expected
//! file; review every change against DESIGN.md §2-§3 before keeping it.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use cascade_aws::AwsError;
use cascade_aws::discovery::plan_secrets;
use cascade_aws::secrets::resolve_secrets;
use cascade_core::plan::{StrategyChoice, template_digest};
use cascade_core::secret::Secret;
use cascade_core::template::read_template;
use cascade_tests::LocalStack;
use cascade_tests::fixtures::{self, Seeded};
use serde_json::Value;

const EXPECTED: &str = "expected-plan.json";

async fn start() -> anyhow::Result<LocalStack> {
    tokio::task::spawn_blocking(LocalStack::start).await?
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fixture_account_is_planned_as_the_design_demands() -> anyhow::Result<()> {
    let started = Instant::now();
    let local = start().await?;
    let dir = fixtures::plan_dir();
    let seeded = fixtures::seed(&local.sdk_config().await, &dir)
        .await
        .with_context(|| format!("seeding failed; server log:\n{}", local.log_tail()))?;
    assert_eq!(seeded.changed_secrets, ["prod/db", "prod/api"]);
    let seeded_at = Instant::now();

    let clients = local.clients().await;
    let secrets = resolve_secrets(&clients, &seeded.changed_secrets).await?;
    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Auto, 8).await?;
    eprintln!(
        "{} stacks: start + seed {:.1} s, plan {:.1} s, API calls {:?}",
        seeded.stacks.len(),
        (seeded_at - started).as_secs_f64(),
        seeded_at.elapsed().as_secs_f64(),
        clients.calls.snapshot()
    );

    let actual = normalise(serde_json::to_value(&plan)?, &seeded, &secrets);
    compare_with_expected(&dir.join(EXPECTED), &actual)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_that_does_not_exist_is_named_in_the_error() -> anyhow::Result<()> {
    let local = start().await?;
    let clients = local.clients().await;
    clients
        .secrets
        .create_secret()
        .name("prod/db")
        .secret_string("{\"password\":\"dummy\"}")
        .send()
        .await?;

    let ids = ["prod/db".to_string(), "prod/nope".to_string()];
    let err = resolve_secrets(&clients, &ids)
        .await
        .expect_err("prod/nope does not exist");
    assert!(
        matches!(&err, AwsError::SecretNotFound(id) if id == "prod/nope"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("`prod/nope`"), "{message}");
    assert!(
        !message.contains("dummy"),
        "no secret value in errors: {message}"
    );

    // The one that exists resolves on its own.
    let found = resolve_secrets(&clients, &ids[..1]).await?;
    assert_eq!(found[0].name, "prod/db");
    assert!(found[0].version_id.is_some());
    Ok(())
}

/// A secret scheduled for deletion is named as such (restore it), one deleted for good as
/// not found; neither error carries the value (issue 12, part 4).
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_secret_is_named_in_the_error() -> anyhow::Result<()> {
    let local = start().await?;
    let clients = local.clients().await;
    for name in ["prod/retired", "prod/purged"] {
        clients
            .secrets
            .create_secret()
            .name(name)
            .secret_string("{\"password\":\"dummy-deleted\"}")
            .send()
            .await?;
    }
    clients
        .secrets
        .delete_secret()
        .secret_id("prod/retired")
        .recovery_window_in_days(7)
        .send()
        .await?;
    clients
        .secrets
        .delete_secret()
        .secret_id("prod/purged")
        .force_delete_without_recovery(true)
        .send()
        .await?;

    let err = resolve_secrets(&clients, &["prod/retired".to_string()])
        .await
        .expect_err("prod/retired is scheduled for deletion");
    assert!(
        matches!(&err, AwsError::SecretDeleted(id) if id == "prod/retired"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("`prod/retired` is scheduled for deletion: restore it"),
        "{message}"
    );
    let err = resolve_secrets(&clients, &["prod/purged".to_string()])
        .await
        .expect_err("prod/purged is deleted");
    assert!(
        matches!(&err, AwsError::SecretNotFound(id) if id == "prod/purged"),
        "{err:?}"
    );
    for message in [message, err.to_string()] {
        assert!(
            !message.contains("dummy-deleted"),
            "no secret value in errors: {message}"
        );
    }
    Ok(())
}

/// Replaces what changes per run with stable placeholders, in every string of the plan.
fn normalise(mut plan: Value, seeded: &Seeded, secrets: &[Secret]) -> Value {
    let mut replacements: Vec<(String, String)> = Vec::new();
    for (name, arn) in &seeded.secrets {
        replacements.push((arn.clone(), format!("<{name} arn>")));
    }
    for secret in secrets {
        if let Some(version) = &secret.version_id {
            replacements.push((version.clone(), format!("<{} version>", secret.name)));
        }
    }
    for stack in &seeded.stacks {
        replacements.push((stack.id.clone(), format!("<{} stack id>", stack.name)));
        // Only the digest of the template the stack was created with becomes a placeholder:
        // a digest of anything else stays as it is and fails the comparison.
        if let Ok(template) = read_template(&stack.template_body) {
            replacements.push((
                template_digest(&template),
                format!("<digest of {}>", stack.template),
            ));
        }
    }
    // Longest first, so that no replacement eats part of a longer one.
    replacements.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    replace_strings(&mut plan, &replacements);
    plan
}

fn replace_strings(value: &mut Value, replacements: &[(String, String)]) {
    match value {
        Value::String(s) => {
            for (from, to) in replacements {
                if s.contains(from.as_str()) {
                    *s = s.replace(from.as_str(), to);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| replace_strings(v, replacements)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_strings(v, replacements)),
        _ => {}
    }
}

fn compare_with_expected(path: &Path, actual: &Value) -> anyhow::Result<()> {
    let pretty = format!("{}\n", serde_json::to_string_pretty(actual)?);
    if std::env::var_os("UPDATE_EXPECTED").is_some_and(|v| v == "1") {
        std::fs::write(path, &pretty)?;
        eprintln!(
            "rewrote {}: review every change before keeping it",
            path.display()
        );
        return Ok(());
    }
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}: create it with UPDATE_EXPECTED=1 and review it",
            path.display()
        )
    })?;
    let expected: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    if expected != *actual {
        let saved =
            std::env::temp_dir().join(format!("cascade-actual-plan-{}.json", std::process::id()));
        std::fs::write(&saved, &pretty)?;
        let mut lines = Vec::new();
        diff(&expected, actual, "", &mut lines);
        panic!(
            "the plan differs from {} in {} place(s):\n{}\n\nthe whole actual plan is in {}\n(UPDATE_EXPECTED=1 rewrites the expected file: only after checking each change against the design)",
            path.display(),
            lines.len(),
            lines.join("\n"),
            saved.display()
        );
    }
    Ok(())
}

/// One line per difference, by path. Arrays of stacks are matched by `stack_name`, so a
/// stack added or missing shows as such rather than shifting every later index.
fn diff(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let here = format!("{path}/{key}");
                match a.get(key) {
                    Some(av) => diff(ev, av, &here, out),
                    None => out.push(format!("{here}: missing (expected {})", short(ev))),
                }
            }
            for (key, av) in a {
                if !e.contains_key(key) {
                    out.push(format!("{path}/{key}: unexpected {}", short(av)));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if keyed_by_stack_name(e) && keyed_by_stack_name(a) => {
            let name = |v: &Value| v["stack_name"].as_str().unwrap_or_default().to_string();
            for ev in e {
                let here = format!("{path}[{}]", name(ev));
                match a.iter().find(|av| name(av) == name(ev)) {
                    Some(av) => diff(ev, av, &here, out),
                    None => out.push(format!("{here}: missing from the plan")),
                }
            }
            for av in a {
                if !e.iter().any(|ev| name(ev) == name(av)) {
                    out.push(format!("{path}[{}]: unexpected {}", name(av), short(av)));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff(ev, av, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            // Items added or removed: show which, rather than every later index shifted.
            let mut unmatched: Vec<&Value> = a.iter().collect();
            for (i, ev) in e.iter().enumerate() {
                match unmatched.iter().position(|av| *av == ev) {
                    Some(at) => {
                        unmatched.remove(at);
                    }
                    None => out.push(format!("{path}[{i}]: missing {}", short(ev))),
                }
            }
            for av in unmatched {
                out.push(format!("{path}: unexpected {}", short(av)));
            }
        }
        _ if expected != actual => {
            out.push(format!(
                "{path}: expected {}, got {}",
                short(expected),
                short(actual)
            ));
        }
        _ => {}
    }
}

fn keyed_by_stack_name(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|v| v.get("stack_name").is_some_and(Value::is_string))
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 600 {
        format!("{}…", text.chars().take(600).collect::<String>())
    } else {
        text
    }
}
