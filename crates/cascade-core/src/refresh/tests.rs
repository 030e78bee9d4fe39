use serde_json::{Value, json};

use std::collections::HashMap;

use super::template::{mask_variables, unmask};
use super::*;
use crate::finder::{Disposition, PIN_METADATA_KEY};
use crate::plan::StackPlan;
use crate::plan::{PlanOptions, StrategyChoice, plan_account};
use crate::secret::Secret;
use crate::stack::StackInfo;

const DB_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
const API_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-QwErTy";

fn secrets(db_version: &str) -> Vec<Secret> {
    let mut db = Secret::from_arn(DB_ARN).unwrap();
    db.version_id = Some(db_version.into());
    let mut api = Secret::from_arn(API_ARN).unwrap();
    api.version_id = Some("api-v2".into());
    vec![db, api]
}

fn stack(template: Value) -> StackInfo {
    let mut s = StackInfo::from_template(
        "app",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/app/1",
        template,
    );
    s.parameters.insert("SecretName".into(), "prod/db".into());
    s
}

fn plan_of(s: &StackInfo, secrets: &[Secret], strategy: StrategyChoice) -> StackPlan {
    let options = PlanOptions {
        strategy,
        ..PlanOptions::default()
    };
    let plan = plan_account(std::slice::from_ref(s), secrets, &options);
    match plan.stacks.into_iter().next() {
        Some(p) => p,
        None => panic!("not planned: {:#?}", plan.skipped),
    }
}

fn pin(template: Value, db_version: &str) -> (Value, Vec<Pin>) {
    let s = stack(template);
    let secrets = secrets(db_version);
    let plan = plan_of(&s, &secrets, StrategyChoice::Pin);
    pinned_template(&s, &plan, &secrets, &HashMap::new()).unwrap()
}

fn database(password: Value) -> Value {
    json!({
        "Parameters": {"SecretName": {"Type": "String"}},
        "Resources": {"Db": {"Type": "AWS::RDS::DBInstance", "Properties": {"MasterUserPassword": password}}}
    })
}

#[test]
fn removal_drops_the_closure_and_its_outputs() {
    let t = json!({
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"P": "{{resolve:secretsmanager:prod/db}}"}},
            "Alias": {"Type": "AWS::Lambda::Alias", "Properties": {"FunctionName": {"Ref": "Fn"}}},
            "Topic": {"Type": "AWS::SNS::Topic"}
        },
        "Outputs": {"A": {"Value": {"Ref": "Alias"}}, "T": {"Value": {"Ref": "Topic"}}}
    });
    let s = stack(t.clone());
    let plan = plan_of(&s, &secrets("v2"), StrategyChoice::Recreate);
    let removed = removal_template(&t, &plan);
    assert_eq!(
        removed["Resources"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["Topic"]
    );
    assert_eq!(
        removed["Outputs"],
        json!({"T": {"Value": {"Ref": "Topic"}}})
    );
}

#[test]
fn removal_leaves_a_placeholder_when_nothing_would_be_left() {
    let t = json!({
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"P": "{{resolve:secretsmanager:prod/db}}"}}},
        "Outputs": {"A": {"Value": {"Ref": "Fn"}}}
    });
    let plan = plan_of(&stack(t.clone()), &secrets("v2"), StrategyChoice::Recreate);
    assert!(plan.needs_placeholder);
    let removed = removal_template(&t, &plan);
    assert_eq!(
        removed["Resources"],
        json!({PLACEHOLDER_ID: {"Type": "AWS::CloudFormation::WaitConditionHandle"}})
    );
    assert!(removed.get("Outputs").is_none());
}

#[test]
fn pins_a_plain_reference_and_records_it() {
    let (t, pins) = pin(
        database(json!(
            "{{resolve:secretsmanager:prod/db:SecretString:password}}"
        )),
        "v2",
    );
    assert_eq!(
        t["Resources"]["Db"]["Properties"]["MasterUserPassword"],
        "{{resolve:secretsmanager:prod/db:SecretString:password::v2}}"
    );
    assert_eq!(
        pins,
        [Pin {
            path: "Resources.Db.Properties.MasterUserPassword".into(),
            secret_arn: DB_ARN.into(),
            version_id: "v2".into()
        }]
    );
    assert_eq!(
        t["Metadata"][PIN_METADATA_KEY]["Pins"],
        json!([{"Path": "Resources.Db.Properties.MasterUserPassword", "SecretArn": DB_ARN, "VersionId": "v2"}])
    );
}

#[test]
fn pins_sub_references_without_breaking_variables() {
    let (t, _) = pin(
        database(
            json!({"Fn::Sub": "{{resolve:secretsmanager:arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretName}:SecretString:password}}"}),
        ),
        "v2",
    );
    assert_eq!(
        t["Resources"]["Db"]["Properties"]["MasterUserPassword"]["Fn::Sub"],
        "{{resolve:secretsmanager:arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretName}:SecretString:password::v2}}"
    );
    let (t, _) = pin(
        database(
            json!({"Fn::Sub": ["{{resolve:secretsmanager:${N}::password:AWSCURRENT}}", {"N": {"Ref": "SecretName"}}]}),
        ),
        "v2",
    );
    assert_eq!(
        t["Resources"]["Db"]["Properties"]["MasterUserPassword"]["Fn::Sub"],
        json!(["{{resolve:secretsmanager:${N}:SecretString:password::v2}}", {"N": {"Ref": "SecretName"}}])
    );
}

#[test]
fn pins_join_references_by_turning_them_into_sub() {
    let (t, pins) = pin(
        database(
            json!({"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": "SecretName"}, ":SecretString:password}}"]]}),
        ),
        "v2",
    );
    assert_eq!(
        t["Resources"]["Db"]["Properties"]["MasterUserPassword"],
        json!({"Fn::Sub": ["{{resolve:secretsmanager:${CascadeJoin1}:SecretString:password::v2}}", {"CascadeJoin1": {"Ref": "SecretName"}}]})
    );
    assert_eq!(pins.len(), 1);
}

#[test]
fn only_the_changed_secrets_are_pinned_in_a_shared_string() {
    let (t, pins) = pin(
        database(json!(
            "{{resolve:secretsmanager:prod/db:SecretString:u}}-{{resolve:secretsmanager:prod/db-replica:SecretString:p}}-{{resolve:secretsmanager:prod/api}}"
        )),
        "v2",
    );
    assert_eq!(
        t["Resources"]["Db"]["Properties"]["MasterUserPassword"],
        "{{resolve:secretsmanager:prod/db:SecretString:u::v2}}-{{resolve:secretsmanager:prod/db-replica:SecretString:p}}-{{resolve:secretsmanager:prod/api:SecretString:::api-v2}}"
    );
    assert_eq!(pins.len(), 2);
}

#[test]
fn a_pin_stays_refreshable_at_the_next_change() {
    let (pinned, _) = pin(
        database(json!(
            "{{resolve:secretsmanager:prod/db:SecretString:password}}"
        )),
        "v2",
    );
    // The next change: the finder treats its own pin as refreshable, and pin moves it on.
    let s = stack(pinned.clone());
    let plan = plan_of(&s, &secrets("v3"), StrategyChoice::Auto);
    assert_eq!(plan.references[0].disposition, Disposition::Refresh);
    let (again, pins) = pinned_template(&s, &plan, &secrets("v3"), &HashMap::new()).unwrap();
    assert_eq!(
        again["Resources"]["Db"]["Properties"]["MasterUserPassword"],
        "{{resolve:secretsmanager:prod/db:SecretString:password::v3}}"
    );
    assert_eq!(pins[0].version_id, "v3");
    assert_eq!(
        again["Metadata"][PIN_METADATA_KEY]["Pins"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the old pin is replaced"
    );
    // Without a change, the stack is up to date.
    let plan = plan_account(&[stack(pinned)], &secrets("v2"), &PlanOptions::default());
    assert!(plan.stacks.is_empty());
    assert_eq!(plan.skipped[0].code, crate::plan::SkipCode::UpToDate);
}

#[test]
fn a_secret_without_a_known_version_cannot_be_pinned() {
    let s = stack(database(json!("{{resolve:secretsmanager:prod/db}}")));
    let mut secrets = secrets("v2");
    secrets[0].version_id = None;
    let plan = plan_of(&s, &secrets, StrategyChoice::Pin);
    assert_eq!(
        pinned_template(&s, &plan, &secrets, &HashMap::new()),
        Err(RefreshError::NoVersion("prod/db".into()))
    );
}

#[test]
fn statuses_read_as_progress() {
    use UpdateProgress::*;
    for (status, progress) in [
        ("UPDATE_IN_PROGRESS", InProgress),
        ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", InProgress),
        ("UPDATE_ROLLBACK_IN_PROGRESS", InProgress),
        ("UPDATE_COMPLETE", Complete),
        ("CREATE_COMPLETE", Complete),
        ("UPDATE_ROLLBACK_COMPLETE", RolledBack),
        ("UPDATE_ROLLBACK_FAILED", Broken),
        ("UPDATE_FAILED", Broken),
        ("DELETE_COMPLETE", Gone),
        ("DELETE_IN_PROGRESS", Gone),
    ] {
        assert_eq!(UpdateProgress::of_status(status), progress, "{status}");
    }
}

#[test]
fn tokens_are_valid_and_stable() {
    let t = client_request_token("2026-11-26T00:00:00Z_ab", UpdateStep::Remove, 1);
    assert_eq!(t, "cascade-2026-11-26T00-00-00Z-ab-remove-1");
    assert_eq!(
        t,
        client_request_token("2026-11-26T00:00:00Z_ab", UpdateStep::Remove, 1)
    );
    assert!(client_request_token(&"x".repeat(300), UpdateStep::Restore, 2).len() <= 128);
}

#[test]
fn masking_round_trips() {
    let (masked, tokens) = mask_variables("a${B}c${!D}${E");
    assert_eq!(tokens, ["${B}", "${!D}"]);
    assert_eq!(unmask(&masked, &tokens), "a${B}c${!D}${E");
}

#[test]
fn an_authors_pin_in_a_string_that_is_pinned_is_left_as_written() {
    let (t, pins) = pin(
        database(json!(
            "{{resolve:secretsmanager:prod/db:SecretString:u::author-v1}}/{{resolve:secretsmanager:prod/db:SecretString:p:AWSPREVIOUS}}/{{resolve:secretsmanager:prod/db:SecretString:p}}"
        )),
        "v2",
    );
    assert_eq!(
        t["Resources"]["Db"]["Properties"]["MasterUserPassword"],
        "{{resolve:secretsmanager:prod/db:SecretString:u::author-v1}}/{{resolve:secretsmanager:prod/db:SecretString:p:AWSPREVIOUS}}/{{resolve:secretsmanager:prod/db:SecretString:p::v2}}"
    );
    assert_eq!(pins.len(), 1);
}

/// A function whose two variables Secret Cascade pinned, one to each secret.
fn pinned_to_both(db_version: &str, api_version: &str) -> Value {
    json!({
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {
            "DB": format!("{{{{resolve:secretsmanager:prod/db:SecretString:password::{db_version}}}}}"),
            "API": format!("{{{{resolve:secretsmanager:{API_ARN}:SecretString:key::{api_version}}}}}")}}}}},
        "Metadata": {PIN_METADATA_KEY: {"Pins": [
            {"Path": "Resources.Fn.Properties.Environment.Variables.DB", "SecretArn": DB_ARN, "VersionId": db_version},
            {"Path": "Resources.Fn.Properties.Environment.Variables.API", "SecretArn": API_ARN, "VersionId": api_version}]}}
    })
}

#[test]
fn with_pins_to_several_secrets_each_change_moves_only_its_own_pin() {
    // prod/db changes (v1 -> v2); prod/api (pinned to api-v1) does not.
    let mut only_db = secrets("v2");
    only_db.truncate(1);
    let s = stack(pinned_to_both("v1", "api-v1"));
    let plan = plan_of(&s, &only_db, StrategyChoice::Pin);
    let (t, pins) = pinned_template(&s, &plan, &only_db, &HashMap::new()).unwrap();
    let vars = &t["Resources"]["Fn"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        vars["DB"],
        "{{resolve:secretsmanager:prod/db:SecretString:password::v2}}"
    );
    assert_eq!(
        vars["API"],
        format!("{{{{resolve:secretsmanager:{API_ARN}:SecretString:key::api-v1}}}}")
    );
    assert_eq!(pins.len(), 1);
    assert_eq!(
        t["Metadata"][PIN_METADATA_KEY]["Pins"],
        json!([
            {"Path": "Resources.Fn.Properties.Environment.Variables.API", "SecretArn": API_ARN, "VersionId": "api-v1"},
            {"Path": "Resources.Fn.Properties.Environment.Variables.DB", "SecretArn": DB_ARN, "VersionId": "v2"}
        ]),
        "the other secret's pin is still recorded, so its next change finds it"
    );

    // Then prod/api changes (api-v1 -> api-v2): its pin is still Secret Cascade's.
    let api_only = vec![secrets("v2").remove(1)];
    let s = stack(t);
    let plan = plan_of(&s, &api_only, StrategyChoice::Auto);
    assert_eq!(plan.references.len(), 1);
    assert_eq!(plan.references[0].disposition, Disposition::Refresh);
    let (t, _) = pinned_template(&s, &plan, &api_only, &HashMap::new()).unwrap();
    let vars = &t["Resources"]["Fn"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        vars["API"],
        format!("{{{{resolve:secretsmanager:{API_ARN}:SecretString:key::api-v2}}}}")
    );
    assert_eq!(
        vars["DB"],
        "{{resolve:secretsmanager:prod/db:SecretString:password::v2}}"
    );
}

#[test]
fn recreate_restores_secret_cascades_own_pins_at_the_new_version() {
    // A stack Secret Cascade pinned before, now recreated (--strategy recreate, or its
    // cascade:strategy tag): the restore adds the function back pinned to the NEW version,
    // not to the one its saved original names; the rest is left as written.
    let mut template = pinned_to_both("v1", "api-v1");
    template["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]["PLAIN"] =
        json!({"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": "SecretName"}, "}}"]]});
    template["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]["AUTHOR"] =
        json!("{{resolve:secretsmanager:prod/db:SecretString:password::author-v0}}");
    template["Parameters"] = json!({"SecretName": {"Type": "String"}});
    let mut only_db = secrets("v2");
    only_db.truncate(1);
    let s = stack(template.clone());
    let plan = plan_of(&s, &only_db, StrategyChoice::Recreate);
    assert_eq!(plan.closure, ["Fn"]);
    assert!(plan.pinned_resources().is_empty());
    let (restored, pins) = repinned_template(&s, &plan, &only_db, &HashMap::new()).unwrap();
    let vars = &restored["Resources"]["Fn"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        vars["DB"],
        "{{resolve:secretsmanager:prod/db:SecretString:password::v2}}"
    );
    assert_eq!(
        vars["PLAIN"],
        template["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]["PLAIN"],
        "not pinned, not made a Fn::Sub"
    );
    assert_eq!(
        vars["AUTHOR"],
        "{{resolve:secretsmanager:prod/db:SecretString:password::author-v0}}"
    );
    assert_eq!(
        vars["API"],
        format!("{{{{resolve:secretsmanager:{API_ARN}:SecretString:key::api-v1}}}}")
    );
    assert_eq!(
        pins,
        [Pin {
            path: "Resources.Fn.Properties.Environment.Variables.DB".into(),
            secret_arn: DB_ARN.into(),
            version_id: "v2".into()
        }]
    );
    // The next change finds the pin again.
    let next = stack(restored);
    let plan = plan_of(&next, &secrets("v3")[..1], StrategyChoice::Auto);
    let db = plan
        .references
        .iter()
        .find(|r| r.path.ends_with(".DB"))
        .unwrap();
    assert_eq!(db.disposition, Disposition::Refresh);

    // Without a pin of its own the restore is the original itself.
    let plain = stack(json!({"Resources": {"Fn": {"Type": "AWS::Lambda::Function",
        "Properties": {"Environment": {"Variables": {"DB": "{{resolve:secretsmanager:prod/db}}"}}}}}}));
    let plan = plan_of(&plain, &only_db, StrategyChoice::Recreate);
    let (same, pins) = repinned_template(&plain, &plan, &only_db, &HashMap::new()).unwrap();
    assert_eq!(&same, plain.template.as_ref().unwrap());
    assert!(pins.is_empty());
}

/// A template at CloudFormation's 1 MB limit that a pin makes longer is refused before
/// anything is sent, with an error that says what to do (issue 12, part 4).
#[test]
fn a_template_over_the_1_mb_limit_is_a_named_error() {
    let at_limit = "x".repeat(MAX_TEMPLATE_BYTES);
    assert_eq!(check_template_size(&at_limit), Ok(()));
    assert_eq!(check_template_size("{}"), Ok(()));
    let mut template = database(json!(
        "{{resolve:secretsmanager:prod/db:SecretString:password}}"
    ));
    let filler =
        MAX_TEMPLATE_BYTES - template.to_string().len() - r#","Metadata":{"Filler":""}"#.len();
    template["Metadata"] = json!({"Filler": "f".repeat(filler)});
    let original = template.to_string();
    assert_eq!(original.len(), MAX_TEMPLATE_BYTES);
    assert_eq!(check_template_size(&original), Ok(()));
    let (pinned, pins) = pin(template, "v2-new");
    assert_eq!(pins.len(), 1);
    let body = pinned.to_string();
    let e = check_template_size(&body).unwrap_err();
    assert_eq!(e, RefreshError::TooLarge { bytes: body.len() });
    let message = e.to_string();
    assert!(
        message.contains(&format!("{} bytes", body.len())),
        "{message}"
    );
    assert!(message.contains("1000000 bytes (1 MB"), "{message}");
    assert!(
        message.contains("make the stack's template smaller"),
        "{message}"
    );
}
