//! Pins that age out, against the local stack (moto): the versions of a secret as
//! ListSecretVersionIds with IncludeDeprecated gives them, and the plan's attention.
//!
//! moto 5.2.5 ignores `IncludeDeprecated` and always lists every version, unlabelled ones
//! too, in one page: what AWS answers with the flag set (without it, AWS leaves the
//! unlabelled versions out). Each PutSecretValue moves AWSCURRENT to the new version and
//! AWSPREVIOUS to the old current one, so the version before that is left without a label,
//! in moto as in AWS.

use cascade_aws::discovery::plan_secrets;
use cascade_aws::secrets::{resolve_secrets, secret_versions};
use cascade_core::pins::{PinStatus, PinnedBy};
use cascade_core::plan::StrategyChoice;
use cascade_tests::fixtures::create_parameter_stack;
use cascade_tests::{LocalStack, LocalStackOptions};

const SECRET: &str = "e2e/rotated";
/// A version id that never existed (moto's are UUIDs too).
const GONE: &str = "00000000-dead-4bad-8bad-000000000000";

async fn start(options: LocalStackOptions) -> LocalStack {
    tokio::task::spawn_blocking(move || LocalStack::start_with(&options))
        .await
        .unwrap()
        .expect("the local stack starts")
}

/// Creates the secret and changes it three times: the version ids, oldest first.
async fn rotated_secret(local: &LocalStack) -> Vec<String> {
    let sm = local.clients().await.secrets;
    let created = sm
        .create_secret()
        .name(SECRET)
        .secret_string(r#"{"password":"one"}"#)
        .send()
        .await
        .unwrap();
    let mut versions = vec![created.version_id().unwrap().to_string()];
    for value in ["two", "three", "four"] {
        let put = sm
            .put_secret_value()
            .secret_id(SECRET)
            .secret_string(format!(r#"{{"password":"{value}"}}"#))
            .send()
            .await
            .unwrap();
        versions.push(put.version_id().unwrap().to_string());
    }
    versions
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

fn pinned_to(version: &str) -> String {
    format!("{{{{resolve:secretsmanager:{SECRET}:SecretString:password::{version}}}}}")
}

/// `Metadata` recording Secret Cascade's pin of the parameter to `version`.
fn own_pin(arn: &str, version: &str) -> String {
    format!(
        "Metadata:\n  SecretCascade:\n    Pins:\n      - Path: Resources.Param.Properties.Value\n        SecretArn: {arn}\n        VersionId: {version}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_versions_of_a_secret_include_those_without_a_label() {
    let local = start(LocalStackOptions::default()).await;
    let v = rotated_secret(&local).await;
    let clients = local.clients().await;
    let arn = resolve_secrets(&clients, &[SECRET.to_string()])
        .await
        .unwrap()[0]
        .arn
        .clone();
    for id in [SECRET, arn.as_str()] {
        let versions = secret_versions(&clients, id).await.unwrap();
        let labels = |i: usize| versions.get(&v[i]).cloned();
        assert_eq!(versions.len(), 4, "{id}: {versions:?}");
        assert_eq!(labels(0), Some(vec![]), "the oldest: deprecated");
        assert_eq!(labels(1), Some(vec![]), "deprecated");
        assert_eq!(labels(2), Some(vec!["AWSPREVIOUS".to_string()]));
        assert_eq!(labels(3), Some(vec!["AWSCURRENT".to_string()]));
    }
    assert!(
        secret_versions(&clients, "e2e/does-not-exist")
            .await
            .is_err(),
        "a secret that does not exist is an error, not an empty list"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plan_lists_the_pins_to_versions_that_aged_out() {
    let local = start(LocalStackOptions::default()).await;
    let v = rotated_secret(&local).await;
    let clients = local.clients().await;
    let secrets = resolve_secrets(&clients, &[SECRET.to_string()])
        .await
        .unwrap();
    let arn = secrets[0].arn.clone();
    create_stack(&local, "author-deprecated", &pinned_to(&v[0]), "", &[]).await;
    create_stack(&local, "author-deleted", &pinned_to(GONE), "", &[]).await;
    create_stack(&local, "author-previous", &pinned_to(&v[2]), "", &[]).await;
    // Secret Cascade's own pin to an unlabelled version: this batch moves it on.
    create_stack(
        &local,
        "cascade-pinned",
        &pinned_to(&v[1]),
        &own_pin(&arn, &v[1]),
        &[],
    )
    .await;
    // The same, opted out: nothing moves it, so it needs a person.
    create_stack(
        &local,
        "cascade-ignored",
        &pinned_to(&v[1]),
        &own_pin(&arn, &v[1]),
        &[("cascade:ignore", "true")],
    )
    .await;

    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Auto, 4)
        .await
        .unwrap();
    let found: Vec<(&str, &str, PinnedBy, PinStatus)> = plan
        .attention
        .iter()
        .map(|a| {
            (
                a.stack_name.as_str(),
                a.version_id.as_str(),
                a.pinned_by,
                a.status,
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("author-deleted", GONE, PinnedBy::Author, PinStatus::Deleted),
            (
                "author-deprecated",
                v[0].as_str(),
                PinnedBy::Author,
                PinStatus::Deprecated
            ),
            (
                "cascade-ignored",
                v[1].as_str(),
                PinnedBy::SecretCascade,
                PinStatus::Deprecated
            ),
        ],
        "{:#?}",
        plan.attention
    );
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    assert_eq!(
        plan.stacks
            .iter()
            .map(|s| s.stack_name.as_str())
            .collect::<Vec<_>>(),
        ["cascade-pinned"]
    );
    let calls = clients.calls.snapshot();
    assert_eq!(
        calls.get("secrets manager:ListSecretVersionIds").copied(),
        Some(1),
        "one call for the one secret: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_list_that_fails_is_a_note_and_the_plan_goes_on() {
    let local = start(LocalStackOptions {
        throttle: Some("secretsmanager:ListSecretVersionIds".into()),
        ..LocalStackOptions::default()
    })
    .await;
    rotated_secret(&local).await;
    let clients = local.clients().await;
    let secrets = resolve_secrets(&clients, &[SECRET.to_string()])
        .await
        .unwrap();
    create_stack(&local, "author-deleted", &pinned_to(GONE), "", &[]).await;
    create_stack(
        &local,
        "plain",
        &format!("{{{{resolve:secretsmanager:{SECRET}}}}}"),
        "",
        &[],
    )
    .await;

    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Auto, 4)
        .await
        .unwrap();
    assert!(plan.attention.is_empty(), "{:#?}", plan.attention);
    assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    assert!(
        plan.notes[0].starts_with(&format!(
            "the versions of secret {SECRET} could not be listed (secretsmanager:ListSecretVersionIds failed: "
        )) && plan.notes[0].contains("Throttl"),
        "{:?}",
        plan.notes
    );
    assert_eq!(
        plan.stacks.len(),
        1,
        "the rest of the plan is there: {plan:#?}"
    );
    assert_eq!(plan.skipped.len(), 1);
}
