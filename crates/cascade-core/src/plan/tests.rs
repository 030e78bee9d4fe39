use serde_json::{Value, json};

use super::*;
use crate::finder::{Disposition, Form};
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

/// [`app`] with the function reading the secret's name from a parameter: only recreate
/// refreshes it.
fn app_with_parameter() -> Value {
    let mut t = app();
    t["Parameters"] = json!({"SecretName": {"Type": "String", "Default": "db"}});
    t["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]["PASSWORD"] =
        json!({"Ref": "SecretName"});
    t
}

fn action_of<'p>(actions: &'p [ResourceAction], id: &str) -> &'p ResourceAction {
    actions
        .iter()
        .find(|a| a.logical_id == id)
        .unwrap_or_else(|| panic!("no action for {id}: {actions:#?}"))
}

fn summary(actions: &[ResourceAction]) -> Vec<(&str, Action)> {
    actions
        .iter()
        .map(|a| (a.logical_id.as_str(), a.action))
        .collect()
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
fn auto_pins_a_dynamic_reference_in_an_updatable_property() {
    let p = refreshed(stack("app", app()), &auto());
    assert_eq!(p.strategy, Strategy::Pin);
    assert_eq!(p.resources, ["Fn"]);
    assert!(p.closure.is_empty() && p.outputs.is_empty());
    assert_eq!(summary(&p.actions), [("Fn", Action::Pin)]);
    let fn_ = &p.actions[0];
    assert_eq!(fn_.resource_type, "AWS::Lambda::Function");
    assert_eq!(
        fn_.reason,
        "Environment.Variables.PASSWORD rewritten to name the new version, updated in place"
    );
}

#[test]
fn recreate_takes_the_closure_and_the_outputs_naming_it() {
    for p in [
        refreshed(stack("app", app_with_parameter()), &auto()),
        refreshed(
            stack("app", app()),
            &with_strategy(StrategyChoice::Recreate),
        ),
    ] {
        assert_eq!(p.strategy, Strategy::Recreate);
        assert_eq!(p.resources, ["Fn"]);
        assert_eq!(p.closure, ["Alias", "Fn", "Perm"]);
        assert_eq!(p.outputs, ["FnArn"]);
        assert_eq!(p.secrets, ["db"]);
        assert!(!p.needs_placeholder);
        assert_eq!(p.references.len(), 1);
        assert!(p.notes.is_empty());
        assert_eq!(
            summary(&p.actions),
            [
                ("Alias", Action::Recreate),
                ("Fn", Action::Recreate),
                ("Perm", Action::Recreate)
            ]
        );
        assert_eq!(
            action_of(&p.actions, "Perm").reason,
            "depends on Alias: removed and added back with it"
        );
    }
    let p = refreshed(stack("app", app_with_parameter()), &auto());
    assert_eq!(
        action_of(&p.actions, "Fn").reason,
        "only removing and adding it back refreshes it: Resources.Fn.Properties.Environment.Variables.PASSWORD is a parameter reference, not a dynamic reference"
    );
}

#[test]
fn a_placeholder_is_needed_when_nothing_would_be_left() {
    let t = json!({"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"P": "{{resolve:secretsmanager:db}}"}}}});
    let p = refreshed(stack("one", t), &with_strategy(StrategyChoice::Recreate));
    assert!(p.needs_placeholder);
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
    assert_eq!(summary(&p.actions), [("Db", Action::Pin)]);
}

/// The issue's database: both master credentials from the secret.
fn database_with_both_credentials(kind: &str) -> Value {
    json!({"Resources": {"Db": {"Type": kind, "Properties": {
        "MasterUsername": "{{resolve:secretsmanager:db:SecretString:username}}",
        "MasterUserPassword": "{{resolve:secretsmanager:db:SecretString:password}}"
    }}}})
}

#[test]
fn a_create_only_username_is_reported_and_only_the_password_is_pinned() {
    for kind in ["AWS::RDS::DBInstance", "AWS::RDS::DBCluster"] {
        for options in [auto(), with_strategy(StrategyChoice::Pin)] {
            let p = refreshed(stack("db", database_with_both_credentials(kind)), &options);
            assert_eq!(p.strategy, Strategy::Pin, "{kind}");
            assert_eq!(p.resources, ["Db"]);
            let d: Vec<(&str, Disposition)> = p
                .references
                .iter()
                .map(|r| (r.path.as_str(), r.disposition))
                .collect();
            assert_eq!(
                d,
                [
                    (
                        "Resources.Db.Properties.MasterUsername",
                        Disposition::CreateOnly
                    ),
                    (
                        "Resources.Db.Properties.MasterUserPassword",
                        Disposition::Refresh
                    )
                ]
            );
            assert!(
                p.references
                    .iter()
                    .all(|r| r.resource.as_deref() == Some("Db"))
            );
            let db = action_of(&p.actions, "Db");
            assert_eq!(db.action, Action::Pin);
            assert!(
                db.reason
                    .starts_with("MasterUserPassword rewritten to name the new version")
                    && db
                        .reason
                        .contains("not rewritten: MasterUsername (create-only)")
                    && db.reason.contains("changing it would replace the resource"),
                "{}",
                db.reason
            );
        }
    }
    // The username alone: nothing to refresh, the reason says why.
    let mut t = database_with_both_credentials("AWS::RDS::DBInstance");
    t["Resources"]["Db"]["Properties"]
        .as_object_mut()
        .unwrap()
        .remove("MasterUserPassword");
    let s = skipped(stack("db", t.clone()), &auto());
    assert_eq!(s.code, SkipCode::ReportedOnly);
    assert!(
        s.reason.starts_with("no reference can be refreshed"),
        "{}",
        s.reason
    );
    assert!(
        s.reason
            .contains("MasterUsername is a create-only property")
    );
    // Never the cause of a removal either.
    assert_eq!(
        skipped(stack("db", t), &with_strategy(StrategyChoice::Recreate)).code,
        SkipCode::ReportedOnly
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

    // The tag overrides auto's per-resource choice too.
    let mut tagged = stack("app", app());
    tagged.tags.insert(TAG_STRATEGY.into(), "recreate".into());
    assert_eq!(refreshed(tagged, &auto()).strategy, Strategy::Recreate);
}

#[test]
fn pin_never_rewrites_a_create_only_property_even_when_asked() {
    let t = json!({"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
        "FunctionName": {"Fn::Sub": "fn-{{resolve:secretsmanager:db:SecretString:suffix}}"},
        "Environment": {"Variables": {"P": "{{resolve:secretsmanager:db}}"}}}}}});
    let p = refreshed(stack("app", t), &with_strategy(StrategyChoice::Pin));
    let refreshed: Vec<&str> = p
        .references
        .iter()
        .filter(|r| r.disposition == Disposition::Refresh)
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        refreshed,
        ["Resources.Fn.Properties.Environment.Variables.P"]
    );
    assert!(
        action_of(&p.actions, "Fn")
            .reason
            .contains("FunctionName (create-only)")
    );
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
    let deny_delete = r#"{"Statement":[{"Effect":"Allow","Action":"Update:*","Principal":"*","Resource":"*"},
        {"Effect":"Deny","Action":"Update:Delete","Principal":"*","Resource":"LogicalResourceId/Alias"}]}"#;
    let mut s = stack("app", app_with_parameter());
    s.stack_policy = Some(deny_delete.into());
    let out = skipped(s, &auto());
    assert_eq!(out.code, SkipCode::Unsafe);
    assert!(
        out.reason.contains("denies Update:Delete on Alias"),
        "{}",
        out.reason
    );
    let mut s = stack("app", app());
    s.stack_policy = Some(deny_delete.into());
    assert_eq!(refreshed(s.clone(), &auto()).strategy, Strategy::Pin);

    // Update:Modify denied on the function: pin cannot, recreate can.
    s.stack_policy = Some(r#"{"Statement":[{"Effect":"Allow","Action":"Update:*","Principal":"*","Resource":"*"},
        {"Effect":"Deny","Action":"Update:Modify","Principal":"*","Resource":"LogicalResourceId/Fn"}]}"#.into());
    let p = refreshed(s.clone(), &auto());
    assert_eq!(p.strategy, Strategy::Recreate);
    assert!(
        action_of(&p.actions, "Fn")
            .reason
            .contains("denies Update:Modify on Fn")
    );

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
    let mut t = app_with_parameter();
    t["Resources"]["Perm"]["DeletionPolicy"] = json!("Retain");
    let s = skipped(stack("app", t), &auto());
    assert_eq!(s.code, SkipCode::Unsafe);
    assert!(
        s.reason.contains("Perm has DeletionPolicy Retain"),
        "{}",
        s.reason
    );
    assert!(s.reason.contains("pin is not possible: Resources.Fn.Properties.Environment.Variables.PASSWORD is a parameter reference"), "{}", s.reason);
    // A dynamic reference is pinned: nothing is removed.
    let mut t = app();
    t["Resources"]["Perm"]["DeletionPolicy"] = json!("Retain");
    assert_eq!(refreshed(stack("app", t), &auto()).strategy, Strategy::Pin);
}

#[test]
fn an_imported_export_in_the_closure_blocks_recreate() {
    let consumer = stack(
        "consumer",
        json!({"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {
        "N": {"Fn::ImportValue": "app-FnArn"}}}}}),
    );
    let plan = plan_account(
        &[stack("app", app_with_parameter()), consumer],
        &secrets(),
        &auto(),
    );
    assert!(plan.stacks.is_empty());
    assert_eq!(plan.skipped[0].code, SkipCode::Unsafe);
    assert!(
        plan.skipped[0]
            .reason
            .contains("output FnArn exports app-FnArn, imported by consumer"),
        "{}",
        plan.skipped[0].reason
    );

    // Known only through ListImports.
    let mut options = auto();
    options
        .importers
        .insert("app-FnArn".into(), ["elsewhere".to_string()].into());
    assert_eq!(
        skipped(stack("app", app_with_parameter()), &options).code,
        SkipCode::Unsafe
    );

    // Exports nobody imports are removed and added back.
    assert_eq!(
        refreshed(stack("app", app_with_parameter()), &auto()).strategy,
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
    assert_eq!(s["strategy"], "pin");
    assert_eq!(s["resources"], json!(["Fn"]));
    assert_eq!(
        s["actions"],
        json!([{"logical_id": "Fn", "resource_type": "AWS::Lambda::Function", "action": "pin",
            "reason": "Environment.Variables.PASSWORD rewritten to name the new version, updated in place"}])
    );
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

const DB_VALUE_FROM: &str =
    "Resources.Task.Properties.ContainerDefinitions[0].Secrets[0].ValueFrom";

/// A task definition taking the secret by ARN (with a JSON key), a service running it, a
/// scaling target depending on the service.
fn ecs_service() -> Value {
    json!({"Resources": {
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{
            "Name": "app", "Image": "app:1",
            "Secrets": [{"Name": "DB_PASSWORD", "ValueFrom": format!("{DB_ARN}:password::")}]}]}},
        "Service": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Ref": "Task"}}},
        "Scaling": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {
            "ResourceId": {"Fn::GetAtt": ["Service", "Name"]}}}
    }})
}

#[test]
fn an_ecs_service_is_restarted_not_removed() {
    let s = refreshed(stack("web", ecs_service()), &auto());
    assert_eq!(s.strategy, Strategy::Restart);
    assert!(s.closure.is_empty() && s.outputs.is_empty());
    assert_eq!(summary(&s.actions), [("Service", Action::Restart)]);
    assert_eq!(
        s.actions[0].reason,
        "runs Task, which reads db when a task starts (ValueFrom): a new deployment starts tasks that read the new value; nothing is removed, the template does not change"
    );
    let r = &s.references[0];
    assert_eq!(
        (r.path.as_str(), r.form, r.disposition),
        (DB_VALUE_FROM, Form::EcsValueFrom, Disposition::Restart)
    );
    assert_eq!(r.resource.as_deref(), Some("Task"));

    // Forced: recreate removes the task definition and what runs it; pin cannot.
    let p = refreshed(
        stack("web", ecs_service()),
        &with_strategy(StrategyChoice::Recreate),
    );
    assert_eq!(p.strategy, Strategy::Recreate);
    assert_eq!(p.closure, ["Scaling", "Service", "Task"]);
    assert_eq!(p.resources, ["Task"]);
    let s = skipped(
        stack("web", ecs_service()),
        &with_strategy(StrategyChoice::Pin),
    );
    assert_eq!(s.code, SkipCode::Unsafe);
    assert!(
        s.reason
            .contains("is an ecs-value-from reference, not a dynamic reference"),
        "{}",
        s.reason
    );
}

#[test]
fn a_dynamic_reference_in_a_task_definition_recreates_it_with_its_service() {
    let mut t = ecs_service();
    t["Resources"]["Task"]["Properties"]["ContainerDefinitions"][0]["Secrets"] = json!([]);
    t["Resources"]["Task"]["Properties"]["ContainerDefinitions"][0]["Environment"] =
        json!([{"Name": "P", "Value": "{{resolve:secretsmanager:db:SecretString:password}}"}]);
    let p = refreshed(stack("web", t.clone()), &auto());
    assert_eq!(p.strategy, Strategy::Recreate);
    assert_eq!(p.closure, ["Scaling", "Service", "Task"]);
    assert!(
        action_of(&p.actions, "Task").reason.contains("is in a create-only property of AWS::ECS::TaskDefinition: pinning it would replace the resource"),
        "{:?}",
        p.actions
    );
    let s = skipped(stack("web", t), &with_strategy(StrategyChoice::Pin));
    assert_eq!(s.code, SkipCode::Unsafe);
    assert!(s.reason.contains("create-only"), "{}", s.reason);
}

/// The issue's mixed stack: the database, an SSM parameter and a function resolving the
/// secret, and an ECS service whose task definition takes it by ARN.
fn mixed() -> Value {
    let mut t = ecs_service();
    let r = t["Resources"].as_object_mut().unwrap();
    r.insert(
        "Db".into(),
        database_with_both_credentials("AWS::RDS::DBInstance")["Resources"]["Db"].clone(),
    );
    r.insert(
        "Param".into(),
        json!({"Type": "AWS::SSM::Parameter", "Properties": {
        "Type": "String", "Value": "{{resolve:secretsmanager:db:SecretString:password}}"}}),
    );
    r.insert(
        "Fn".into(),
        json!({"Type": "AWS::Lambda::Function", "Properties": {
        "Environment": {"Variables": {"HOST": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
            "PASSWORD": "{{resolve:secretsmanager:db:SecretString:password}}"}}}}),
    );
    t
}

#[test]
fn a_mixed_stack_gets_the_least_disruptive_action_per_resource() {
    let s = refreshed(stack("mixed", mixed()), &auto());
    // One pin update, then the service restarted; nothing removed.
    assert_eq!(s.strategy, Strategy::Pin);
    assert!(s.closure.is_empty());
    assert_eq!(s.resources, ["Db", "Fn", "Param", "Service"]);
    assert_eq!(
        summary(&s.actions),
        [
            ("Db", Action::Pin),
            ("Fn", Action::Pin),
            ("Param", Action::Pin),
            ("Service", Action::Restart)
        ]
    );
    // Every reference names its resource.
    let mut by_resource: Vec<(&str, Disposition)> = s
        .references
        .iter()
        .map(|r| (r.resource.as_deref().unwrap(), r.disposition))
        .collect();
    by_resource.sort();
    assert_eq!(
        by_resource,
        [
            ("Db", Disposition::Refresh),
            ("Db", Disposition::CreateOnly),
            ("Fn", Disposition::Refresh),
            ("Param", Disposition::Refresh),
            ("Task", Disposition::Restart),
        ]
    );

    // Without the service: pinned in one update; the username is reported.
    let mut t = mixed();
    for id in ["Task", "Service", "Scaling"] {
        t["Resources"].as_object_mut().unwrap().remove(id);
    }
    let p = refreshed(stack("mixed", t.clone()), &auto());
    assert_eq!(p.strategy, Strategy::Pin);
    assert_eq!(p.resources, ["Db", "Fn", "Param"]);

    // A function that only recreate refreshes beside pinned resources: one update pins
    // the database and the parameter and removes the function, the restore adds it back.
    t["Parameters"] = json!({"SecretName": {"Type": "String", "Default": "db"}});
    t["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]["PASSWORD"] =
        json!({"Ref": "SecretName"});
    let p = refreshed(stack("mixed", t.clone()), &auto());
    assert_eq!(p.strategy, Strategy::Recreate);
    assert_eq!(
        summary(&p.actions),
        [
            ("Db", Action::Pin),
            ("Fn", Action::Recreate),
            ("Param", Action::Pin)
        ]
    );
    assert_eq!(p.closure, ["Fn"]);
    assert_eq!(
        p.pinned_resources().into_iter().collect::<Vec<_>>(),
        ["Db", "Param"]
    );

    // With the service back: pins and the removal, the restore, then the restart.
    let mut t = mixed();
    t["Parameters"] = json!({"SecretName": {"Type": "String", "Default": "db"}});
    t["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]["PASSWORD"] =
        json!({"Ref": "SecretName"});
    let p = refreshed(stack("mixed", t), &auto());
    assert_eq!(p.strategy, Strategy::Recreate);
    assert_eq!(p.closure, ["Fn"]);
    assert_eq!(
        summary(&p.actions),
        [
            ("Db", Action::Pin),
            ("Fn", Action::Recreate),
            ("Param", Action::Pin),
            ("Service", Action::Restart)
        ]
    );

    // Forced recreate: the database is in the way, whatever else could be done.
    let s = skipped(
        stack("mixed", mixed()),
        &with_strategy(StrategyChoice::Recreate),
    );
    assert_eq!(s.code, SkipCode::Unsafe);
    assert!(
        s.reason.contains("Db (AWS::RDS::DBInstance) holds state"),
        "{}",
        s.reason
    );
}

#[test]
fn a_function_depending_on_a_recreated_resource_is_recreated_not_pinned() {
    let mut t = app_with_parameter();
    t["Resources"]["Alias"]["Properties"]["Description"] = json!("{{resolve:secretsmanager:db}}");
    let p = refreshed(stack("app", t), &auto());
    assert_eq!(p.strategy, Strategy::Recreate);
    assert_eq!(
        summary(&p.actions),
        [
            ("Alias", Action::Recreate),
            ("Fn", Action::Recreate),
            ("Perm", Action::Recreate)
        ]
    );
    assert_eq!(p.resources, ["Alias", "Fn"]);
}

#[test]
fn plan_json_carries_each_resources_action() {
    let plan = plan_account(&[stack("web", ecs_service())], &secrets(), &auto());
    let v = serde_json::to_value(&plan).unwrap();
    let s = &v["stacks"][0];
    assert_eq!(s["strategy"], "restart");
    assert_eq!(s["actions"][0]["action"], "restart");
    assert_eq!(s["references"][0]["form"], "ecs-value-from");
    assert_eq!(s["references"][0]["disposition"], "restart");
    // A pin and a recreate in one stack: planned as both, carried out by recreate.
    let both = json!({
        "Parameters": {"SecretArn": {"Type": "String", "Default": DB_ARN}},
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
                "Environment": {"Variables": {"P": "{{resolve:secretsmanager:db:SecretString:password}}"}}}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Ref": "SecretArn"}}}
        }
    });
    let plan = plan_account(&[stack("both", both)], &secrets(), &auto());
    let v = serde_json::to_value(&plan).unwrap();
    let s = &v["stacks"][0];
    assert_eq!(s["strategy"], "recreate", "{v:#}");
    let actions: Vec<&str> = s["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["pin", "recreate"]);
    assert_eq!(s["closure"], json!(["Topic"]));
    // Other skips have no actions.
    let plan = plan_account(
        &[stack("db", database(json!({"Ref": "SecretArn"})))],
        &secrets(),
        &auto(),
    );
    let v = serde_json::to_value(&plan).unwrap();
    assert!(v["skipped"][0].get("actions").is_none());
}

#[test]
fn references_naming_no_resource_refresh_nothing() {
    let t = json!({
        "Transform": "AWS::Serverless-2016-10-31",
        "Globals": {"Function": {"Environment": {"Variables": {"P": "{{resolve:secretsmanager:db}}"}}}},
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}}
    });
    let s = skipped(stack("sam", t), &auto());
    assert_eq!(s.code, SkipCode::ReportedOnly);
    assert!(
        s.reason.starts_with("no resource to refresh"),
        "{}",
        s.reason
    );
}
