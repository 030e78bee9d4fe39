use serde_json::json;

use super::*;
use crate::finder::{Disposition, Form};
use crate::plan::Action;

const DB_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf";

fn offline(name: &str) -> OfflineStack {
    OfflineStack {
        stack_name: name.into(),
        ..OfflineStack::default()
    }
}

/// A stack creating its own secret and resolving it through `Ref` in an `Fn::Sub`, a
/// function importing another secret's ARN, a task definition taking a parameter's secret
/// by ARN, and a dynamic reference named after the stack.
fn real_shaped() -> Value {
    json!({
        "Parameters": {"ApiSecretArn": {"Type": "String"}},
        "Resources": {
            "DbSecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {
                "GenerateSecretString": {"SecretStringTemplate": "{\"username\":\"app\"}", "GenerateStringKey": "password"}}},
            "Db": {"Type": "AWS::RDS::DBInstance", "Properties": {
                "MasterUsername": {"Fn::Sub": "{{resolve:secretsmanager:${DbSecret}:SecretString:username}}"},
                "MasterUserPassword": {"Fn::Sub": "{{resolve:secretsmanager:${DbSecret}:SecretString:password}}"}}},
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {
                "KEY": {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Fn::ImportValue": "shared-KeyArn"}, ":SecretString:key}}"]]},
                "TOKEN": {"Fn::Sub": "{{resolve:secretsmanager:${AWS::StackName}/token}}"}}}}},
            "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{
                "Name": "app", "Secrets": [{"Name": "API", "ValueFrom": {"Ref": "ApiSecretArn"}}]}]}}
        }
    })
}

#[test]
fn the_inventory_lists_every_secret_with_its_resources_and_what_a_change_does() {
    let mut stack = offline("orders");
    stack
        .parameters
        .insert("ApiSecretArn".into(), DB_ARN.replace("prod/db", "prod/api"));
    stack.exports.insert(
        "shared-KeyArn".into(),
        DB_ARN.replace("prod/db-AbCdEf", "shared/key-GhIjKl"),
    );
    let inventory = stack
        .inventory(&real_shaped(), StrategyChoice::Auto)
        .unwrap();
    let names: Vec<&str> = inventory
        .secrets
        .iter()
        .map(|s| s.secret.as_str())
        .collect();
    assert_eq!(
        names,
        ["DbSecret", "orders/token", "prod/api", "shared/key"]
    );
    assert!(
        inventory.unresolved.is_empty(),
        "{:?}",
        inventory.unresolved
    );

    let own = &inventory.secrets[0];
    assert_eq!(own.created_by.as_deref(), Some("DbSecret"));
    let mut dispositions: Vec<(&str, Disposition)> = own
        .references
        .iter()
        .map(|r| (r.path.as_str(), r.disposition))
        .collect();
    dispositions.sort();
    assert_eq!(
        dispositions,
        [
            (
                "Resources.Db.Properties.MasterUserPassword",
                Disposition::Refresh
            ),
            (
                "Resources.Db.Properties.MasterUsername",
                Disposition::CreateOnly
            ),
        ]
    );
    match &own.when_it_changes {
        WhenItChanges::Refreshed { strategy, actions } => {
            assert_eq!(*strategy, Strategy::Pin);
            assert_eq!(actions[0].logical_id, "Db");
            assert_eq!(actions[0].action, Action::Pin);
        }
        other => panic!("{other:?}"),
    }

    let api = &inventory.secrets[2];
    assert_eq!(
        api.arn.as_deref(),
        Some(DB_ARN.replace("prod/db", "prod/api").as_str())
    );
    assert_eq!(api.references[0].form, Form::EcsValueFrom);
    assert_eq!(api.references[0].resource.as_deref(), Some("Task"));

    let key = &inventory.secrets[3];
    assert_eq!(key.references[0].resource.as_deref(), Some("Fn"));
    assert_eq!(key.references[0].disposition, Disposition::Refresh);
}

#[test]
fn without_the_export_the_import_is_unresolved_on_its_resource() {
    let inventory = offline("orders")
        .inventory(&real_shaped(), StrategyChoice::Auto)
        .unwrap();
    assert_eq!(inventory.unresolved.len(), 1, "{:?}", inventory.unresolved);
    let import = &inventory.unresolved[0];
    assert_eq!(
        import.path,
        "Resources.Fn.Properties.Environment.Variables.KEY"
    );
    assert_eq!(import.resource.as_deref(), Some("Fn"));
    assert!(import.why.contains("shared-KeyArn"), "{}", import.why);
}

#[test]
fn a_given_physical_id_names_the_stacks_own_secret_in_a_plan() {
    let mut stack = offline("orders");
    stack.resources.insert("DbSecret".into(), DB_ARN.into());
    let secret = Secret::from_arn(DB_ARN).unwrap();
    let plan = stack
        .plan(
            &real_shaped(),
            std::slice::from_ref(&secret),
            StrategyChoice::Auto,
        )
        .unwrap();
    assert_eq!(plan.stacks.len(), 1, "{plan:#?}");
    assert_eq!(plan.stacks[0].resources, ["Db"]);
    // Without it, the stack's own secret is not recognised.
    let plan = offline("orders")
        .plan(&real_shaped(), &[secret], StrategyChoice::Auto)
        .unwrap();
    assert!(plan.stacks.is_empty(), "{plan:#?}");
}

#[test]
fn bad_flags_are_named() {
    let mut stack = offline("orders");
    stack.resources.insert("Nope".into(), DB_ARN.into());
    assert_eq!(
        stack
            .plan(&real_shaped(), &[], StrategyChoice::Auto)
            .unwrap_err(),
        OfflineError::UnknownResource("Nope".into())
    );
    let mut stack = offline("orders");
    stack.account = Some("12345".into());
    assert!(matches!(
        stack.inventory(&real_shaped(), StrategyChoice::Auto),
        Err(OfflineError::BadAccount(_))
    ));
    stack.account = None;
    stack.region = Some("Mars 1".into());
    assert!(matches!(
        stack.inventory(&real_shaped(), StrategyChoice::Auto),
        Err(OfflineError::BadRegion(_))
    ));
}

#[test]
fn pseudo_parameters_take_the_given_region_and_account() {
    let mut stack = offline("api");
    stack.region = Some("eu-west-1".into());
    stack.account = Some("123456789012".into());
    let template = json!({"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
        "Environment": {"Variables": {"DB": {"Fn::Sub":
            "{{resolve:secretsmanager:arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:prod/db-AbCdEf}}"}}}}}}});
    let plan = stack
        .plan(
            &template,
            &[Secret::from_arn(DB_ARN).unwrap()],
            StrategyChoice::Auto,
        )
        .unwrap();
    assert_eq!(plan.stacks.len(), 1, "{plan:#?}");
    let inventory = stack.inventory(&template, StrategyChoice::Auto).unwrap();
    assert_eq!(inventory.secrets[0].arn.as_deref(), Some(DB_ARN));
}
