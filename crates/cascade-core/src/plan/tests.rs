use serde_json::{Value, json};

use super::*;
use crate::finder::Form;
use crate::stack::{TAG_IGNORE, TAG_STRATEGY};

const DB_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
const API_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-QwErTy";

fn secrets() -> Vec<Secret> {
    vec![
        Secret::from_arn(DB_ARN).unwrap(),
        Secret::from_arn(API_ARN).unwrap(),
    ]
}

fn stack(name: &str, template: Value) -> StackInfo {
    StackInfo::from_template(
        name,
        &format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/id"),
        template,
    )
}

fn plan_one(s: StackInfo, options: &PlanOptions) -> Option<StackOutcome> {
    let plan = plan_account(&[s], &secrets()[..1], options);
    assert!(plan.stacks.len() + plan.skipped.len() <= 1);
    plan.stacks
        .into_iter()
        .map(StackOutcome::Refresh)
        .chain(plan.skipped.into_iter().map(StackOutcome::Skip))
        .next()
}

fn refreshed(s: StackInfo, options: &PlanOptions) -> StackPlan {
    match plan_one(s, options) {
        Some(StackOutcome::Refresh(p)) => p,
        other => panic!("expected a refresh, got {other:#?}"),
    }
}

fn skipped(s: StackInfo, options: &PlanOptions) -> SkippedStack {
    match plan_one(s, options) {
        Some(StackOutcome::Skip(p)) => p,
        other => panic!("expected a skip, got {other:#?}"),
    }
}

fn auto() -> PlanOptions {
    PlanOptions::default()
}

fn with_strategy(strategy: StrategyChoice) -> PlanOptions {
    PlanOptions {
        strategy,
        ..PlanOptions::default()
    }
}

/// A function holding the secret, an alias and permission depending on it, an unrelated
/// topic, and outputs naming each.
fn app() -> Value {
    json!({
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
                "Environment": {"Variables": {"PASSWORD": "{{resolve:secretsmanager:db:SecretString:password}}"}}}},
            "Alias": {"Type": "AWS::Lambda::Alias", "Properties": {"FunctionName": {"Ref": "Fn"}}},
            "Perm": {"Type": "AWS::Lambda::Permission", "Properties": {"FunctionName": {"Fn::GetAtt": ["Alias", "AliasArn"]}}},
            "Topic": {"Type": "AWS::SNS::Topic"}
        },
        "Outputs": {
            "FnArn": {"Value": {"Fn::GetAtt": ["Fn", "Arn"]}, "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-FnArn"}}},
            "TopicArn": {"Value": {"Ref": "Topic"}}
        }
    })
}

/// An RDS instance whose password resolves the secret, and a function reading it.
fn database(password: Value) -> Value {
    json!({
        "Resources": {
            "Db": {"Type": "AWS::RDS::DBInstance", "Properties": {"MasterUserPassword": password}},
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
                "Environment": {"Variables": {"HOST": {"Fn::GetAtt": ["Db", "Endpoint.Address"]}}}}}
        }
    })
}

#[test]
fn recreate_takes_the_closure_and_the_outputs_naming_it() {
    let p = refreshed(stack("app", app()), &auto());
    assert_eq!(p.strategy, Strategy::Recreate);
    assert_eq!(p.resources, ["Fn"]);
    assert_eq!(p.closure, ["Alias", "Fn", "Perm"]);
    assert_eq!(p.outputs, ["FnArn"]);
    assert_eq!(p.secrets, ["db"]);
    assert!(!p.needs_placeholder);
    assert_eq!(p.references.len(), 1);
    assert!(p.notes.is_empty());
}

#[test]
fn a_placeholder_is_needed_when_nothing_would_be_left() {
    let t = json!({"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"P": "{{resolve:secretsmanager:db}}"}}}});
    assert!(refreshed(stack("one", t), &auto()).needs_placeholder);
}

#[test]
fn auto_pins_a_database_whose_password_resolves_the_secret() {
    let p = refreshed(
        stack(
            "db",
            database(json!("{{resolve:secretsmanager:db:SecretString:password}}")),
        ),
        &auto(),
    );
    assert_eq!(p.strategy, Strategy::Pin);
    assert_eq!(p.resources, ["Db"]);
    assert!(p.closure.is_empty() && p.outputs.is_empty());
    assert!(
        p.notes[0].contains("Db (AWS::RDS::DBInstance) holds state"),
        "{:?}",
        p.notes
    );
}

#[test]
fn a_database_named_through_a_parameter_cannot_be_refreshed() {
    let mut t = database(json!({"Ref": "SecretArn"}));
    t["Parameters"] = json!({"SecretArn": {"Type": "String", "Default": DB_ARN}});
    let s = skipped(stack("db", t), &auto());
    assert_eq!(s.code, SkipCode::Unsafe);
    assert!(s.reason.contains("holds state"), "{}", s.reason);
    assert!(
        s.reason
            .contains("Resources.Db.Properties.MasterUserPassword is a parameter reference"),
        "{}",
        s.reason
    );
}

#[test]
fn explicit_strategies_are_obeyed_or_the_stack_is_skipped() {
    let db = database(json!("{{resolve:secretsmanager:db}}"));
    let s = skipped(
        stack("db", db.clone()),
        &with_strategy(StrategyChoice::Recreate),
    );
    assert_eq!(s.code, SkipCode::Unsafe);
    assert!(s.reason.starts_with("recreate is not safe"));
    assert_eq!(
        refreshed(stack("app", app()), &with_strategy(StrategyChoice::Pin)).strategy,
        Strategy::Pin
    );

    let mut tagged = stack("db", db);
    tagged.tags.insert(TAG_STRATEGY.into(), "pin".into());
    assert_eq!(
        refreshed(tagged.clone(), &with_strategy(StrategyChoice::Recreate)).strategy,
        Strategy::Pin
    );
    tagged.tags.insert(TAG_STRATEGY.into(), "sideways".into());
    assert_eq!(skipped(tagged, &auto()).code, SkipCode::InvalidStrategyTag);
}

#[test]
fn pin_refuses_references_that_are_not_dynamic_references() {
    let mut t = app();
    t["Parameters"] = json!({"SecretName": {"Type": "String", "Default": "db"}});
    t["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]["PASSWORD"] =
        json!({"Ref": "SecretName"});
    let s = skipped(stack("app", t.clone()), &with_strategy(StrategyChoice::Pin));
    assert!(
        s.reason.contains("is a parameter reference"),
        "{}",
        s.reason
    );
    let p = refreshed(stack("app", t), &auto());
    assert_eq!(
        (p.strategy, p.references[0].form),
        (Strategy::Recreate, Form::Parameter)
    );
}

#[test]
fn opt_out_nesting_and_status_skip_the_stack() {
    let mut s = stack("app", app());
    s.tags.insert(TAG_IGNORE.into(), "true".into());
    let out = skipped(s, &auto());
    assert_eq!(out.code, SkipCode::OptedOut);
    assert_eq!(out.references.len(), 1, "the references are still listed");

    let root = stack(
        "root",
        json!({"Resources": {"Child": {"Type": "AWS::CloudFormation::Stack"}}}),
    );
    let mut child = stack("root-Child-1", app());
    child.parent_id = Some(root.id.clone());
    child.root_id = Some(root.id.clone());
    let plan = plan_account(&[root, child], &secrets(), &auto());
    assert!(plan.stacks.is_empty());
    assert_eq!(plan.skipped[0].code, SkipCode::NestedStack);
    assert!(
        plan.skipped[0].reason.contains("root stack root"),
        "{}",
        plan.skipped[0].reason
    );

    for status in [
        "UPDATE_IN_PROGRESS",
        "ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_FAILED",
        "CREATE_FAILED",
    ] {
        let mut s = stack("app", app());
        s.status = status.into();
        let out = skipped(s, &auto());
        assert_eq!(out.code, SkipCode::NotUpdatable);
        assert!(out.reason.contains(status));
    }
    for status in [
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    ] {
        let mut s = stack("app", app());
        s.status = status.into();
        refreshed(s, &auto());
    }
}

#[test]
fn stack_policies_block_what_they_deny() {
    let mut s = stack("app", app());
    s.stack_policy = Some(r#"{"Statement":[{"Effect":"Allow","Action":"Update:*","Principal":"*","Resource":"*"},
        {"Effect":"Deny","Action":"Update:Delete","Principal":"*","Resource":"LogicalResourceId/Alias"}]}"#.into());
    let p = refreshed(s.clone(), &auto());
    assert_eq!(p.strategy, Strategy::Pin);
    assert!(p.notes[0].contains("denies Update:Delete on Alias"));

    s.stack_policy = Some(
        r#"{"Statement":[{"Effect":"Deny","Action":"Update:*","Principal":"*","Resource":"*"}]}"#
            .into(),
    );
    let out = skipped(s.clone(), &auto());
    assert_eq!(out.code, SkipCode::Unsafe);
    assert!(
        out.reason.contains("denies Update:Modify on Fn"),
        "{}",
        out.reason
    );

    s.stack_policy = Some("{oops".into());
    assert_eq!(skipped(s, &auto()).code, SkipCode::StackPolicyUnreadable);
}

#[test]
fn retained_resources_in_the_closure_block_recreate() {
    let mut t = app();
    t["Resources"]["Perm"]["DeletionPolicy"] = json!("Retain");
    let p = refreshed(stack("app", t), &auto());
    assert_eq!(p.strategy, Strategy::Pin);
    assert!(p.notes[0].contains("Perm has DeletionPolicy Retain"));
}

#[test]
fn an_imported_export_in_the_closure_blocks_recreate() {
    let consumer = stack(
        "consumer",
        json!({"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {
        "N": {"Fn::ImportValue": "app-FnArn"}}}}}),
    );
    let plan = plan_account(&[stack("app", app()), consumer], &secrets(), &auto());
    assert_eq!(plan.stacks.len(), 1);
    assert_eq!(plan.stacks[0].strategy, Strategy::Pin);
    assert!(
        plan.stacks[0].notes[0].contains("output FnArn exports app-FnArn, imported by consumer")
    );

    // Known only through ListImports.
    let mut options = auto();
    options
        .importers
        .insert("app-FnArn".into(), ["elsewhere".to_string()].into());
    assert_eq!(
        refreshed(stack("app", app()), &options).strategy,
        Strategy::Pin
    );

    // Exports nobody imports are removed and added back.
    assert_eq!(
        refreshed(stack("app", app()), &auto()).strategy,
        Strategy::Recreate
    );
}

#[test]
fn stacks_with_only_reported_references_are_skipped_with_the_reason() {
    let pinned = json!({"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
        "P": "{{resolve:secretsmanager:db:SecretString:password::v-1}}"}}}});
    let s = skipped(stack("pinned", pinned), &auto());
    assert_eq!(s.code, SkipCode::PinnedOnly);
    assert!(s.reason.contains("v-1"));

    let possible = json!({"Parameters": {"H": {"Type": "String", "NoEcho": true}},
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"P": {"Fn::Sub": "{{resolve:secretsmanager:${H}}}"}}}}});
    let mut s = stack("possible", possible);
    s.parameters.insert("H".into(), "****".into());
    let s = skipped(s, &auto());
    assert_eq!(s.code, SkipCode::PossibleReference);
    assert!(s.reason.contains("NoEcho"));

    let outputs = json!({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"O": {"Value": "{{resolve:secretsmanager:db}}"}}});
    assert_eq!(
        skipped(stack("outputs", outputs), &auto()).code,
        SkipCode::ReportedOnly
    );
}

#[test]
fn unrelated_stacks_are_left_out_and_unreadable_ones_are_skipped() {
    let unrelated = stack(
        "unrelated",
        json!({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}),
    );
    assert_eq!(plan_one(unrelated, &auto()), None);
    let mut broken = stack("broken", json!({}));
    broken.template = Err("AccessDenied".into());
    let s = skipped(broken, &auto());
    assert_eq!(s.code, SkipCode::TemplateUnreadable);
    assert!(s.reason.contains("AccessDenied"));
}

#[test]
fn a_stack_using_two_changed_secrets_is_planned_once() {
    let mut t = app();
    t["Resources"]["Topic"]["Properties"] = json!({"Name": "{{resolve:secretsmanager:api}}"});
    let plan = plan_account(
        &[stack("app", t), stack("another", app())],
        &secrets(),
        &auto(),
    );
    let names: Vec<&str> = plan.stacks.iter().map(|p| p.stack_name.as_str()).collect();
    assert_eq!(names, ["another", "app"], "sorted by name, each once");
    assert_eq!(plan.stacks[1].secrets, ["api", "db"]);
    assert_eq!(plan.stacks[1].resources, ["Fn", "Topic"]);
}

#[test]
fn plan_json_has_the_documented_fields() {
    let plan = plan_account(&[stack("app", app())], &secrets(), &auto());
    let v = serde_json::to_value(&plan).unwrap();
    assert_eq!(v["schema_version"], 1);
    let s = &v["stacks"][0];
    assert_eq!(s["stack_name"], "app");
    assert_eq!(s["strategy"], "recreate");
    assert_eq!(s["resources"], json!(["Fn"]));
    let r = &s["references"][0];
    assert_eq!(
        r["path"],
        "Resources.Fn.Properties.Environment.Variables.PASSWORD"
    );
    assert_eq!(r["resource"], "Fn");
    assert_eq!(r["form"], "dynamic-reference");
    assert_eq!(r["disposition"], "refresh");
    assert!(r.get("targets").is_none());
    assert_eq!(v["skipped"], json!([]));
}

#[test]
fn keeping_named_stacks_reports_the_names_not_in_the_plan() {
    let mut broken = stack("broken", json!({}));
    broken.template = Err("AccessDenied".into());
    let plan = plan_account(
        &[stack("app", app()), stack("another", app()), broken],
        &secrets(),
        &auto(),
    );
    let mut all = plan.clone();
    assert!(all.keep_stacks(&[]).is_empty(), "no names: every stack");
    assert_eq!(all, plan);

    let mut some = plan.clone();
    let names = ["nope", "app", "broken", "gone"].map(String::from);
    assert_eq!(some.keep_stacks(&names), ["nope", "gone"]);
    let kept: Vec<&str> = some.stacks.iter().map(|p| p.stack_name.as_str()).collect();
    assert_eq!(kept, ["app"]);
    assert_eq!(some.skipped.len(), 1);
    assert_eq!(some.skipped[0].stack_name, "broken");
}
