use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::finder::PIN_METADATA_KEY;
use crate::plan::{PlanOptions, SkipCode, plan_account};
use crate::stack::{StackInfo, TAG_IGNORE};

const DB_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
const API_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-QwErTy";

fn secrets() -> Vec<Secret> {
    let mut db = Secret::from_arn(DB_ARN).unwrap();
    db.version_id = Some("db-v4".into());
    let mut api = Secret::from_arn(API_ARN).unwrap();
    api.version_id = Some("api-v2".into());
    vec![db, api]
}

/// prod/db: v4 current, v3 previous, v2 and v1 deprecated, v0 deleted (absent).
/// prod/api: v2 current, v1 previous.
fn versions() -> BTreeMap<String, SecretVersions> {
    let db: SecretVersions = [
        ("db-v1", vec![]),
        ("db-v2", vec![]),
        ("db-v3", vec!["AWSPREVIOUS"]),
        ("db-v4", vec!["AWSCURRENT"]),
    ]
    .into_iter()
    .map(|(v, l)| (v.to_string(), l.into_iter().map(str::to_string).collect()))
    .collect();
    let api: SecretVersions = [
        ("api-v1".to_string(), vec!["AWSPREVIOUS".to_string()]),
        ("api-v2".to_string(), vec!["AWSCURRENT".to_string()]),
    ]
    .into();
    [("prod/db".to_string(), db), ("prod/api".to_string(), api)].into()
}

fn stack(name: &str, template: Value) -> StackInfo {
    StackInfo::from_template(
        name,
        &format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/1"),
        template,
    )
}

/// A function whose environment variables are `vars`.
fn function(vars: Value) -> Value {
    json!({"Resources": {"Fn": {"Type": "AWS::Lambda::Function",
        "Properties": {"Environment": {"Variables": vars}}}}})
}

/// `template` with `pins` recorded as Secret Cascade's own.
fn with_own_pins(mut template: Value, pins: &[(&str, &str, &str)]) -> Value {
    let pins: Vec<Value> = pins
        .iter()
        .map(|(path, arn, version)| json!({"Path": path, "SecretArn": arn, "VersionId": version}))
        .collect();
    template["Metadata"] = json!({PIN_METADATA_KEY: {"Pins": pins}});
    template
}

fn plan_of(stacks: &[StackInfo]) -> Plan {
    plan_account(stacks, &secrets(), &PlanOptions::default())
}

fn summary(found: &[Attention]) -> Vec<(&str, &str, &str, PinnedBy, PinStatus)> {
    found
        .iter()
        .map(|a| {
            (
                a.stack_name.as_str(),
                a.path.as_str(),
                a.version_id.as_str(),
                a.pinned_by,
                a.status,
            )
        })
        .collect()
}

#[test]
fn author_pins_to_unlabelled_or_missing_versions_need_attention() {
    let legacy = stack(
        "legacy",
        function(json!({
            "OLD": "{{resolve:secretsmanager:prod/db:SecretString:password::db-v1}}",
            "GONE": "{{resolve:secretsmanager:prod/db:SecretString:password::db-v0}}",
            "PREVIOUS": "{{resolve:secretsmanager:prod/db:SecretString:password::db-v3}}",
            "STAGE": "{{resolve:secretsmanager:prod/db:SecretString:password:AWSPREVIOUS}}",
        })),
    );
    let plan = plan_of(&[legacy]);
    assert_eq!(plan.skipped[0].code, SkipCode::PinnedOnly);
    let found = attention(&plan, &versions());
    assert_eq!(
        summary(&found),
        [
            (
                "legacy",
                "Resources.Fn.Properties.Environment.Variables.GONE",
                "db-v0",
                PinnedBy::Author,
                PinStatus::Deleted
            ),
            (
                "legacy",
                "Resources.Fn.Properties.Environment.Variables.OLD",
                "db-v1",
                PinnedBy::Author,
                PinStatus::Deprecated
            ),
        ],
        "a labelled version (AWSPREVIOUS) and a stage pin are fine: {found:#?}"
    );
    let gone = &found[0];
    assert_eq!(gone.resource.as_deref(), Some("Fn"));
    assert_eq!(gone.secret, "prod/db");
    assert_eq!(gone.form, Form::DynamicReference);
    assert_eq!(
        gone.reason,
        "pinned by the stack's author: version db-v0 of prod/db no longer exists: CloudFormation cannot resolve this reference, so the stack cannot be updated at all until it changes; pin a version that exists (db-v4 is AWSCURRENT) or drop the version id to follow AWSCURRENT"
    );
    assert!(
        found[1]
            .reason
            .contains("has no staging label any more: Secrets Manager will delete it"),
        "{}",
        found[1].reason
    );
    assert_eq!(secrets_to_check(&plan).len(), 1);
    assert_eq!(secrets_to_check(&plan)[0].name, "prod/db");
}

#[test]
fn author_pins_in_a_stack_that_is_refreshed_still_need_attention() {
    let mixed = stack(
        "mixed",
        function(json!({
            "NOW": "{{resolve:secretsmanager:prod/db:SecretString:password}}",
            "OLD": {"Fn::Sub": "{{resolve:secretsmanager:${Name}:SecretString:k::db-v2}}"},
        })),
    );
    let mut mixed = mixed;
    mixed.parameters.insert("Name".into(), "prod/db".into());
    if let Ok(t) = &mut mixed.template {
        t["Parameters"] = json!({"Name": {"Type": "String"}});
    }
    let plan = plan_of(&[mixed]);
    assert_eq!(plan.stacks.len(), 1, "{plan:#?}");
    let found = attention(&plan, &versions());
    assert_eq!(
        summary(&found),
        [(
            "mixed",
            "Resources.Fn.Properties.Environment.Variables.OLD",
            "db-v2",
            PinnedBy::Author,
            PinStatus::Deprecated
        )]
    );
    assert_eq!(found[0].form, Form::DynamicReferenceSub);
}

#[test]
fn secret_cascades_own_pins_are_left_to_the_batch_unless_it_does_not_re_pin_them() {
    let path = "Resources.Fn.Properties.Environment.Variables.KEY";
    let template = with_own_pins(
        function(json!({"KEY": "{{resolve:secretsmanager:prod/db:SecretString:password::db-v1}}"})),
        &[(path, DB_ARN, "db-v1")],
    );
    // Refreshed: the pin moves to the new version, nothing to ask of anyone (and no call).
    let refreshed = stack("pinned", template.clone());
    let plan = plan_of(&[refreshed]);
    assert_eq!(plan.stacks.len(), 1, "{plan:#?}");
    assert!(attention(&plan, &versions()).is_empty());
    assert!(secrets_to_check(&plan).is_empty());

    // Opted out: the batch leaves the pin as it is, to a version about to be deleted.
    let mut ignored = stack("ignored", template);
    ignored.tags.insert(TAG_IGNORE.into(), "true".into());
    let plan = plan_of(&[ignored]);
    assert_eq!(plan.skipped[0].code, SkipCode::OptedOut);
    let found = attention(&plan, &versions());
    assert_eq!(
        summary(&found),
        [(
            "ignored",
            path,
            "db-v1",
            PinnedBy::SecretCascade,
            PinStatus::Deprecated
        )]
    );
    assert!(
        found[0].reason.starts_with(
            "pinned by Secret Cascade, and this batch does not re-pin it because the stack is skipped (opted-out): version db-v1 of prod/db has no staging label any more"
        ),
        "{}",
        found[0].reason
    );
    assert!(
        found[0]
            .reason
            .contains("`cascade run --secret prod/db --stack ignored`"),
        "{}",
        found[0].reason
    );
}

#[test]
fn a_pin_to_the_current_version_needs_no_check() {
    let path = "Resources.Fn.Properties.Environment.Variables.KEY";
    let current = stack(
        "current",
        with_own_pins(
            function(
                json!({"KEY": "{{resolve:secretsmanager:prod/db:SecretString:password::db-v4}}"}),
            ),
            &[(path, DB_ARN, "db-v4")],
        ),
    );
    let plan = plan_of(&[current]);
    assert_eq!(plan.skipped[0].code, SkipCode::UpToDate);
    assert!(secrets_to_check(&plan).is_empty());
    assert!(attention(&plan, &versions()).is_empty());
}

#[test]
fn ecs_value_from_pinned_to_a_version_id_needs_attention() {
    let task = stack(
        "tasks",
        json!({"Resources": {
            "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [
                {"Name": "app", "Secrets": [
                    {"Name": "OLD", "ValueFrom": format!("{API_ARN}:key::api-v0")},
                    {"Name": "PREV", "ValueFrom": format!("{API_ARN}:key::api-v1")},
                    {"Name": "NOW", "ValueFrom": API_ARN}]}]}},
            "Service": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Ref": "Task"}}}}}),
    );
    let plan = plan_of(&[task]);
    let found = attention(&plan, &versions());
    assert_eq!(
        summary(&found),
        [(
            "tasks",
            "Resources.Task.Properties.ContainerDefinitions[0].Secrets[0].ValueFrom",
            "api-v0",
            PinnedBy::Author,
            PinStatus::Deleted
        )]
    );
    assert_eq!(found[0].form, Form::EcsValueFrom);
    assert_eq!(found[0].secret, "prod/api");
    assert_eq!(
        found[0].reason,
        "version api-v0 of prod/api no longer exists: new tasks of Task cannot read it and fail to start; point ValueFrom at a version that exists (api-v2 is AWSCURRENT) or drop the version id to follow AWSCURRENT"
    );
}

#[test]
fn a_secret_whose_versions_are_unknown_is_not_checked() {
    let legacy = stack(
        "legacy",
        function(json!({
            "DB": "{{resolve:secretsmanager:prod/db:SecretString:password::db-v0}}",
            "API": "{{resolve:secretsmanager:prod/api:SecretString:key::api-v0}}",
        })),
    );
    let plan = plan_of(&[legacy]);
    let names: Vec<&str> = secrets_to_check(&plan)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["prod/db", "prod/api"], "in the plan's order");
    let mut known = versions();
    known.remove("prod/api");
    let found = attention(&plan, &known);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].secret, "prod/db");
    assert!(attention(&plan, &BTreeMap::new()).is_empty());
    assert_eq!(
        unchecked_note(
            "prod/api",
            "secretsmanager:ListSecretVersionIds failed: AccessDenied"
        ),
        "the versions of secret prod/api could not be listed (secretsmanager:ListSecretVersionIds failed: AccessDenied): references pinned to one of its version ids were not checked for versions Secrets Manager deprecated or deleted"
    );
}

#[test]
fn a_version_that_cannot_be_evaluated_or_is_not_shown_is_not_a_pin_to_check() {
    let mut noecho = stack(
        "noecho",
        json!({
            "Parameters": {"Version": {"Type": "String", "NoEcho": true}, "Unknown": {"Type": "String"}},
            "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {
                "HIDDEN": {"Fn::Sub": "{{resolve:secretsmanager:prod/db:SecretString:k::${Version}}}"},
                "UNKNOWN": {"Fn::Sub": "{{resolve:secretsmanager:prod/db:SecretString:k::${Unknown}}}"}}}}}}
        }),
    );
    noecho.parameters.insert("Version".into(), "db-v0".into());
    let plan = plan_of(&[noecho]);
    let all: Vec<&Reference> = plan
        .skipped
        .iter()
        .flat_map(|s| &s.references)
        .chain(plan.stacks.iter().flat_map(|s| &s.references))
        .collect();
    assert_eq!(all.len(), 2, "{plan:#?}");
    assert!(all.iter().all(|r| pinned_version(r).is_none()), "{all:#?}");
    let unknown = all.iter().find(|r| r.path.ends_with("UNKNOWN")).unwrap();
    assert_eq!(
        unknown.detail.as_deref(),
        Some("pinned to version id ${?}: reported, not refreshed"),
        "what could not be evaluated is shown as in the reference's text"
    );
    assert!(attention(&plan, &versions()).is_empty());
}

#[test]
fn keep_stacks_keeps_only_their_attention_and_old_plans_still_read() {
    let a = stack(
        "a",
        function(json!({"K": "{{resolve:secretsmanager:prod/db:SecretString:k::db-v0}}"})),
    );
    let b = stack(
        "b",
        function(json!({"K": "{{resolve:secretsmanager:prod/db:SecretString:k::db-v1}}"})),
    );
    let mut plan = plan_of(&[a, b]);
    plan.attention = attention(&plan, &versions());
    assert_eq!(plan.attention.len(), 2);
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["attention"][0]["pinned_by"], "author");
    assert_eq!(json["attention"][0]["status"], "deleted");
    assert_eq!(json["attention"][0]["form"], "dynamic-reference");
    assert!(json.get("notes").is_none(), "left out when empty");
    plan.keep_stacks(&["b".to_string()]);
    assert_eq!(summary(&plan.attention)[0].0, "b");
    assert_eq!(plan.attention.len(), 1);

    // A plan written before attention existed (a batch manifest of an earlier version).
    let mut old = serde_json::to_value(&plan).unwrap();
    old.as_object_mut().unwrap().remove("attention");
    let read: Plan = serde_json::from_value(old).unwrap();
    assert!(read.attention.is_empty() && read.notes.is_empty());
}
