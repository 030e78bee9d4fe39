//! ECS services that read a secret when their tasks start are restarted, not removed
//! (issue 8 item 3), through `cascade run`'s batch runner against the local stack:
//! - a service taking the secret by ARN (`Secrets[].ValueFrom`): the same service gets a
//!   new deployment, the template is unchanged, no resource is deleted;
//! - a deployment that fails (the launcher's circuit-breaker marker): `failed`, with ECS's
//!   reason, nothing removed;
//! - a stack holding a database and its consumers (RDS with both credentials from the
//!   secret, an SSM parameter, an ECS service): one pin update (the password, never the
//!   create-only username), then the service restarted; nothing stateful removed;
//! - a stack whose resources need all three actions (an SSM parameter pinned, an IAM
//!   policy scoped through a parameter holding the secret's ARN recreated, an ECS service
//!   restarted): one update pins the parameter and removes the policy, the restore adds it
//!   back keeping the pin, then the service restarts; only the policy is deleted.
//!
//! The secret's value is a canary that must appear in no report or state.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_cloudformation::Client as CloudFormation;
use cascade_aws::Clients;
use cascade_aws::discovery::plan_secrets;
use cascade_aws::refresh::{PollPolicy, RefreshSettings, Refresher};
use cascade_aws::run::{Quiet, run_batch};
use cascade_aws::secrets::resolve_secrets;
use cascade_aws::store::Store;
use cascade_core::plan::{Action, Strategy, StrategyChoice};
use cascade_core::report::{Outcome, Phase};
use cascade_tests::LocalStack;
use cascade_tests::fixtures::{ecs_service_resources, mixed_actions_template};
use serde_json::{Value, json};

const CANARY: &str = "canary-restart-7f3e9c1d";
const FAIL_MARKER: &str = "cascade-test:fail-deployment";

/// An RDS instance with both credentials from the secret, an SSM parameter holding the
/// password, and an ECS service taking it by ARN.
fn platform(name: &str, secret_arn: &str) -> Value {
    let mut resources = ecs_service_resources(name, secret_arn, "normal");
    let resources = resources.as_object_mut().unwrap();
    resources.insert(
        "Database".into(),
        json!({"Type": "AWS::RDS::DBInstance", "DeletionPolicy": "Snapshot", "Properties": {
            "Engine": "postgres", "DBInstanceClass": "db.t3.micro", "AllocatedStorage": "20",
            "MasterUsername": "{{resolve:secretsmanager:app/db:SecretString:username}}",
            "MasterUserPassword": "{{resolve:secretsmanager:app/db:SecretString:password}}"
        }}),
    );
    resources.insert(
        "PasswordParameter".into(),
        json!({"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": format!("/{name}/db-password"), "Type": "String",
            "Value": "{{resolve:secretsmanager:app/db:SecretString:password}}"
        }}),
    );
    json!({"Resources": resources})
}

async fn create(cfn: &CloudFormation, name: &str, template: &Value) -> anyhow::Result<()> {
    create_with(cfn, name, template, &[]).await
}

async fn create_with(
    cfn: &CloudFormation,
    name: &str,
    template: &Value,
    parameters: &[(&str, &str)],
) -> anyhow::Result<()> {
    let parameters = parameters
        .iter()
        .map(|(k, v)| {
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key(*k)
                .parameter_value(*v)
                .build()
        })
        .collect();
    cfn.create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .set_parameters(Some(parameters))
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityNamedIam)
        .send()
        .await
        .with_context(|| format!("CreateStack {name}"))?;
    Ok(())
}

/// The service's ARN and its deployment ids.
async fn deployments(clients: &Clients, name: &str) -> anyhow::Result<(String, Vec<String>)> {
    let out = clients
        .ecs
        .describe_services()
        .cluster(format!("{name}-cluster"))
        .services(format!("{name}-svc"))
        .send()
        .await?;
    let svc = out.services().first().context("no service")?;
    Ok((
        svc.service_arn().unwrap_or_default().to_string(),
        svc.deployments()
            .iter()
            .filter_map(|d| d.id().map(str::to_string))
            .collect(),
    ))
}

/// A stack's template now, as JSON.
async fn template_of(cfn: &CloudFormation, name: &str) -> anyhow::Result<Value> {
    let out = cfn.get_template().stack_name(name).send().await?;
    Ok(serde_json::from_str(
        out.template_body().unwrap_or_default(),
    )?)
}

async fn deleted_resources(cfn: &CloudFormation, stack: &str) -> anyhow::Result<Vec<String>> {
    let events = cfn.describe_stack_events().stack_name(stack).send().await?;
    Ok(events
        .stack_events()
        .iter()
        .filter(|e| {
            e.resource_status()
                .is_some_and(|s| s.as_str().starts_with("DELETE"))
        })
        .filter_map(|e| e.logical_resource_id().map(str::to_string))
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn services_are_restarted_and_mixed_stacks_refreshed_per_resource() -> anyhow::Result<()> {
    let local = LocalStack::start()?;
    let clients = local.clients().await;
    let cfn = clients.cloudformation.clone();
    let secret = clients
        .secrets
        .create_secret()
        .name("app/db")
        .secret_string(format!(
            r#"{{"username":"admin","password":"{CANARY}-v1"}}"#
        ))
        .send()
        .await?;
    let arn = secret.arn().context("no ARN")?.to_string();
    create(
        &cfn,
        "orders",
        &json!({"Resources": ecs_service_resources("orders", &arn, "normal")}),
    )
    .await?;
    create(
        &cfn,
        "billing",
        &json!({"Resources": ecs_service_resources("billing", &arn, FAIL_MARKER)}),
    )
    .await?;
    create(&cfn, "platform", &platform("platform", &arn)).await?;
    create_with(
        &cfn,
        "ledger",
        &mixed_actions_template("ledger", "app/db", &arn),
        &[("DbSecretArn", &arn)],
    )
    .await?;
    let templates_before: Vec<String> = {
        let mut out = Vec::new();
        for name in ["orders", "billing"] {
            let t = cfn.get_template().stack_name(name).send().await?;
            out.push(t.template_body().unwrap_or_default().to_string());
        }
        out
    };
    let before = [
        deployments(&clients, "orders").await?,
        deployments(&clients, "platform").await?,
        deployments(&clients, "ledger").await?,
    ];

    clients
        .secrets
        .put_secret_value()
        .secret_id("app/db")
        .secret_string(format!(
            r#"{{"username":"admin","password":"{CANARY}-v2"}}"#
        ))
        .send()
        .await?;
    let secrets = resolve_secrets(&clients, &["app/db".to_string()]).await?;
    let version = secrets[0].version_id.clone().context("no version")?;
    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Auto, 4).await?;
    let strategy_of = |name: &str| {
        plan.stacks
            .iter()
            .find(|p| p.stack_name == name)
            .map(|p| p.strategy)
    };
    assert_eq!(strategy_of("orders"), Some(Strategy::Restart), "{plan:#?}");
    assert_eq!(strategy_of("billing"), Some(Strategy::Restart));
    assert_eq!(strategy_of("platform"), Some(Strategy::Pin));
    assert_eq!(strategy_of("ledger"), Some(Strategy::Recreate));
    let platform_plan = plan
        .stacks
        .iter()
        .find(|p| p.stack_name == "platform")
        .unwrap();
    let mut actions: Vec<(&str, Action)> = platform_plan
        .actions
        .iter()
        .map(|a| (a.logical_id.as_str(), a.action))
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            ("Database", Action::Pin),
            ("PasswordParameter", Action::Pin),
            ("Service", Action::Restart)
        ]
    );

    let dir = std::env::temp_dir().join(format!("cascade-restart-{}", std::process::id()));
    let refresher = Refresher {
        clients: clients.clone(),
        store: Store::Local(dir.clone()),
        settings: RefreshSettings {
            poll: PollPolicy {
                initial: Duration::from_millis(20),
                max: Duration::from_millis(100),
                max_wait: Duration::from_secs(60),
            },
            execution_role_arn: None,
        },
    };
    let manifest = refresher
        .batches()
        .start("restarts", "cli", &secrets, StrategyChoice::Auto, plan)
        .await?;
    let calls_before = clients.calls.snapshot();
    let summary = run_batch(
        &refresher,
        manifest,
        &Quiet,
        &Arc::new(AtomicBool::new(false)),
    )
    .await?;
    // The figures (not asserted): API calls of the batch (a restart, a failed restart, a
    // pin then a restart), by operation.
    for (operation, count) in clients.calls.snapshot() {
        let before = calls_before.get(&operation).copied().unwrap_or(0);
        if count > before && !operation.starts_with("s3:") {
            eprintln!("restart batch calls: {operation} {}", count - before);
        }
    }
    let line = |name: &str| {
        summary
            .report
            .stacks
            .iter()
            .find(|s| s.stack_name == name)
            .cloned()
            .unwrap()
    };

    // A restart alone: the same service, a new deployment, the template as it was.
    let orders = line("orders");
    assert_eq!(
        (orders.outcome, orders.phase),
        (Outcome::Refreshed, Phase::Done),
        "{orders:#?}"
    );
    assert!(
        orders.change_sets.is_empty(),
        "no template update: {orders:?}"
    );
    let after = deployments(&clients, "orders").await?;
    assert_eq!(after.0, before[0].0, "the same service");
    assert!(
        after.1.iter().all(|d| !before[0].1.contains(d)),
        "a new deployment: {after:?} after {:?}",
        before[0]
    );
    let orders_template = cfn.get_template().stack_name("orders").send().await?;
    assert_eq!(
        orders_template.template_body().unwrap_or_default(),
        templates_before[0]
    );
    assert!(deleted_resources(&cfn, "orders").await?.is_empty());

    // A deployment the circuit breaker stops: failed with ECS's reason, nothing removed.
    let billing = line("billing");
    assert_eq!(
        (billing.outcome, billing.phase),
        (Outcome::Failed, Phase::Restart)
    );
    assert_eq!(
        billing.reason.as_deref(),
        Some(
            "the new deployment of ECS service Service failed: ECS deployment circuit breaker: tasks failed to start."
        )
    );
    let billing_template = cfn.get_template().stack_name("billing").send().await?;
    assert_eq!(
        billing_template.template_body().unwrap_or_default(),
        templates_before[1]
    );
    assert!(deleted_resources(&cfn, "billing").await?.is_empty());

    // The database and its consumers: one pin update (the password, not the create-only
    // username), then the service restarted; nothing removed.
    let platform = line("platform");
    assert_eq!(platform.outcome, Outcome::Refreshed, "{platform:#?}");
    assert_eq!(platform.change_sets.len(), 1, "one update: {platform:?}");
    let template = template_of(&cfn, "platform").await?;
    let db = &template["Resources"]["Database"]["Properties"];
    assert_eq!(
        db["MasterUserPassword"],
        format!("{{{{resolve:secretsmanager:app/db:SecretString:password::{version}}}}}")
    );
    assert_eq!(
        db["MasterUsername"], "{{resolve:secretsmanager:app/db:SecretString:username}}",
        "a create-only property is never rewritten"
    );
    assert!(
        template["Resources"]["PasswordParameter"]["Properties"]["Value"]
            .as_str()
            .unwrap()
            .ends_with(&format!("::{version}}}}}"))
    );
    let after = deployments(&clients, "platform").await?;
    assert_eq!(after.0, before[1].0);
    assert!(after.1.iter().all(|d| !before[1].1.contains(d)));
    assert!(deleted_resources(&cfn, "platform").await?.is_empty());

    // Pin, recreate and restart in one stack: the removal update pinned the parameter and
    // removed the policy, the restore added the policy back and kept the pin, then the
    // service restarted. Only the policy was deleted; the service is the same one.
    let ledger = line("ledger");
    assert_eq!(
        (ledger.outcome, ledger.phase),
        (Outcome::Refreshed, Phase::Done),
        "{ledger:#?}"
    );
    assert_eq!(
        ledger.change_sets.len(),
        2,
        "removal and restore: {ledger:?}"
    );
    let template = template_of(&cfn, "ledger").await?;
    assert!(
        template["Resources"]["PasswordParameter"]["Properties"]["Value"]
            .as_str()
            .unwrap()
            .ends_with(&format!("::{version}}}}}")),
        "the restore keeps the pin: {template:#}"
    );
    assert_eq!(
        template["Resources"]["ReadSecretPolicy"],
        mixed_actions_template("ledger", "app/db", &arn)["Resources"]["ReadSecretPolicy"],
        "the policy is back as it was"
    );
    assert_eq!(
        template["Metadata"]["SecretCascade"]["Pins"][0]["Path"],
        "Resources.PasswordParameter.Properties.Value"
    );
    let mut deleted = deleted_resources(&cfn, "ledger").await?;
    deleted.sort();
    deleted.dedup();
    assert_eq!(deleted, ["ReadSecretPolicy"]);
    let after = deployments(&clients, "ledger").await?;
    assert_eq!(after.0, before[2].0, "the same service");
    assert!(after.1.iter().all(|d| !before[2].1.contains(d)));
    let report = serde_json::to_string(&summary.report)?;

    // The canary is nowhere in what the run wrote.
    for entry in walk(&dir) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains(CANARY),
            "{} holds the secret value",
            entry.display()
        );
    }
    assert!(!report.contains(CANARY));
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
