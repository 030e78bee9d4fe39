//! Offline planning finds exactly what account mode finds (issue 9 item 2): real stack
//! shapes in the local stack, planned once against the account (`plan_secrets`, as
//! `cascade plan --secret`) and once offline from each stack's template with what the
//! account would show given by hand (`OfflineStack`, as `cascade plan --template` with
//! `--stack-name`, `--region`, `--account`, `--parameter`, `--export` and `--resource`);
//! the two plans of each stack must be equal but for the stack id.
//!
//! The shapes: a stack creating its own secret (the launcher's patch (i) tags it as
//! CloudFormation does) and resolving it through `${DbSecret}` in an RDS instance's
//! credentials; an SSM parameter resolving another stack's exported ARN through
//! `Fn::Join` + `Fn::ImportValue`; a dynamic reference named after `${AWS::StackName}`;
//! a partial ARN built from `${AWS::Region}` and `${AWS::AccountId}`; and an ECS task
//! definition taking a parameter's secret by ARN, run by a service.

use std::collections::BTreeMap;

use anyhow::Context;
use aws_sdk_cloudformation::types::{Capability, Parameter};
use cascade_aws::discovery::plan_secrets;
use cascade_aws::secrets::resolve_secrets;
use cascade_core::offline::OfflineStack;
use cascade_core::plan::{Plan, StrategyChoice};
use cascade_core::secret::{Arn, Secret};
use cascade_core::template::read_template;
use cascade_tests::LocalStack;
use cascade_tests::fixtures::ecs_service_resources;
use serde_json::{Value, json};

fn orders(api_arn: &str) -> Value {
    let mut resources = ecs_service_resources("orders", api_arn, "normal");
    let map = resources.as_object_mut().unwrap();
    // The task definition takes the secret by ARN through the parameter.
    map["Task"]["Properties"]["ContainerDefinitions"][0]["Secrets"][0]["ValueFrom"] =
        json!({"Fn::Sub": "${ApiSecretArn}:password::"});
    map.insert(
        "DbSecret".into(),
        json!({"Type": "AWS::SecretsManager::Secret", "Properties": {
            "Name": "orders/db",
            "GenerateSecretString": {"SecretStringTemplate": "{\"username\":\"app\"}", "GenerateStringKey": "password"}}}),
    );
    map.insert(
        "Db".into(),
        json!({"Type": "AWS::RDS::DBInstance", "Properties": {
            "Engine": "postgres", "DBInstanceClass": "db.t3.micro", "AllocatedStorage": "20",
            "MasterUsername": {"Fn::Sub": "{{resolve:secretsmanager:${DbSecret}:SecretString:username}}"},
            "MasterUserPassword": {"Fn::Sub": "{{resolve:secretsmanager:${DbSecret}:SecretString:password}}"}}}),
    );
    map.insert(
        "KeyParameter".into(),
        json!({"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": "/orders/key", "Type": "String",
            "Value": {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Fn::ImportValue": "shared-KeyArn"}, ":SecretString:key}}"]]}}}),
    );
    map.insert(
        "TokenParameter".into(),
        json!({"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": "/orders/token", "Type": "String",
            "Value": {"Fn::Sub": "{{resolve:secretsmanager:${AWS::StackName}/token}}"}}}),
    );
    map.insert(
        "RegionalParameter".into(),
        json!({"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": "/orders/regional", "Type": "String",
            "Value": {"Fn::Sub": "{{resolve:secretsmanager:arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:shared/key:SecretString:key}}"}}}),
    );
    json!({
        "Parameters": {"ApiSecretArn": {"Type": "String"}},
        "Resources": resources
    })
}

/// The plan of one stack as JSON, its stack id left out.
fn stack_entry(plan: &Plan, name: &str) -> Value {
    let mut v = serde_json::to_value(plan).unwrap();
    for list in ["stacks", "skipped"] {
        if let Some(entry) = v[list]
            .as_array_mut()
            .and_then(|a| a.iter_mut().find(|s| s["stack_name"] == name))
        {
            entry.as_object_mut().unwrap().remove("stack_id");
            return json!({list: entry.clone()});
        }
    }
    Value::Null
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_plan_given_what_the_account_shows_equals_the_account_plan() -> anyhow::Result<()>
{
    let local = LocalStack::start()?;
    let clients = local.clients().await;
    let cfn = &clients.cloudformation;
    let mut arns = BTreeMap::new();
    for (name, value) in [
        ("shared/key", r#"{"key":"k1"}"#),
        ("orders/token", "t1"),
        ("prod/api", r#"{"password":"p1"}"#),
    ] {
        let created = clients
            .secrets
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await?;
        arns.insert(name, created.arn().context("no ARN")?.to_string());
    }
    cfn.create_stack()
        .stack_name("shared")
        .template_body(
            json!({
                "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {"KeyArn": {"Value": arns["shared/key"], "Export": {"Name": "shared-KeyArn"}}}
            })
            .to_string(),
        )
        .send()
        .await?;
    cfn.create_stack()
        .stack_name("orders")
        .template_body(orders(&arns["prod/api"]).to_string())
        .parameters(
            Parameter::builder()
                .parameter_key("ApiSecretArn")
                .parameter_value(&arns["prod/api"])
                .build(),
        )
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .context("CreateStack orders")?;

    // What the account shows: the stack, its resources, the exports.
    let stack = cfn.describe_stacks().stack_name("orders").send().await?;
    let stack = stack.stacks().first().context("no stack")?.clone();
    let stack_id = Arn::parse(stack.stack_id().unwrap_or_default())
        .map(|a| (a.region.to_string(), a.account.to_string()))
        .context("a stack ARN")?;
    let resources: BTreeMap<String, String> = cfn
        .describe_stack_resources()
        .stack_name("orders")
        .send()
        .await?
        .stack_resources()
        .iter()
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_string(),
                r.physical_resource_id()?.to_string(),
            ))
        })
        .collect();
    let own_arn = resources
        .get("DbSecret")
        .context("the stack's secret")?
        .clone();
    let exports: std::collections::HashMap<String, String> = cfn
        .list_exports()
        .send()
        .await?
        .exports()
        .iter()
        .filter_map(|e| Some((e.name()?.to_string(), e.value()?.to_string())))
        .collect();
    let body = cfn
        .get_template()
        .stack_name("orders")
        .send()
        .await?
        .template_body()
        .unwrap_or_default()
        .to_string();
    let template = read_template(&body)?;

    // Every secret in turn, then all together.
    let every: Vec<String> = [
        own_arn.as_str(),
        &arns["shared/key"],
        &arns["orders/token"],
        &arns["prod/api"],
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut cases: Vec<Vec<String>> = every.iter().map(|a| vec![a.clone()]).collect();
    cases.push(every.clone());
    for arns_changed in cases {
        let secrets = resolve_secrets(&clients, &arns_changed).await?;
        let account = plan_secrets(&clients, &secrets, StrategyChoice::Auto, 4).await?;
        let offline_secrets: Vec<Secret> = arns_changed
            .iter()
            .map(|a| Secret::from_arn(a))
            .collect::<Result<_, _>>()?;
        let offline = OfflineStack {
            stack_name: "orders".into(),
            region: Some(stack_id.0.clone()),
            account: Some(stack_id.1.clone()),
            parameters: stack
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((
                        p.parameter_key()?.to_string(),
                        p.parameter_value()?.to_string(),
                    ))
                })
                .collect(),
            exports: exports.clone(),
            resources: resources.clone(),
        }
        .plan(&template, &offline_secrets, StrategyChoice::Auto)?;
        let (account_entry, offline_entry) = (
            stack_entry(&account, "orders"),
            stack_entry(&offline, "orders"),
        );
        assert_ne!(account_entry, Value::Null, "{arns_changed:?}: {account:#?}");
        assert_eq!(
            offline_entry, account_entry,
            "offline and account plans differ for {arns_changed:?}"
        );
        // Each secret is found: the stack is refreshed, not skipped.
        assert!(
            account_entry.get("stacks").is_some(),
            "{arns_changed:?}: {account_entry:#}"
        );
    }

    // Without the flags, offline planning cannot see the stack's own secret nor the import.
    let bare = OfflineStack {
        stack_name: "orders".into(),
        ..OfflineStack::default()
    }
    .plan(
        &template,
        &[Secret::from_arn(&own_arn)?],
        StrategyChoice::Auto,
    )?;
    assert!(bare.stacks.is_empty(), "{bare:#?}");
    Ok(())
}
