//! `make demo`: the whole pipeline on a local AWS stack, as it runs in AWS.
//!
//! Starts its own local stack (moto with the project's launcher) and the local Lambda
//! server running the real handlers, deploys template.yaml through the SAM transform with
//! IAM enforced (each function under its own role), seeds the stacks
//! of `tests/fixtures/refresh`, changes their secrets, and sends the `Secret Label Updated`
//! events Secrets Manager would send. Then it does what the schedule would: calls the
//! deployed gatekeeper through Lambda, follows the execution of the real state machine, and prints the report and
//! the Slack message. Everything stops when it ends.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_sfn::types::ExecutionStatus;
use cascade_core::report::Report;
use cascade_core::report::markdown::render_markdown;
use cascade_core::secret::AWSCURRENT;
use cascade_lambda::Function;
use cascade_tests::deploy::DeployOptions;
use cascade_tests::fixtures::seed_with_progress;
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
use cascade_tests::slack_sink::SlackSink;
use cascade_tests::workspace_root;
use serde_json::{Value, json};

fn step(text: &str) {
    eprintln!("==> {text}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    step(
        "starting a local AWS stack (IAM enforced) and the local Lambda server (the real handlers); \
         deploying template.yaml as `sam deploy` does: through the SAM transform, every function \
         under its own role",
    );
    let sink = SlackSink::start().await?;
    let pipeline = LocalPipeline::start(PipelineOptions {
        slack_webhook_url: Some(sink.url.clone()),
        deploy: DeployOptions {
            poll_seconds: 1,
            ..DeployOptions::default()
        },
        ..PipelineOptions::default()
    })
    .await?;
    let (config, clients, deployment, lambda) = (
        &pipeline.config,
        &pipeline.clients,
        &pipeline.deployment,
        &pipeline.lambda,
    );

    step("seeding secrets and stacks (tests/fixtures/refresh)");
    let seeded = seed_with_progress(
        config,
        &workspace_root().join("tests/fixtures/refresh"),
        |s| eprintln!("    {:<28} {}", s.name, s.status),
    )
    .await?;

    // A stack holding a database and its consumers, as teams run them: an RDS instance with
    // both credentials from e2e/db (the username is create-only: reported, never rewritten;
    // the password is pinned), an SSM parameter (pinned) and an ECS service taking the
    // secret by ARN (restarted after the pin: a new deployment, nothing removed).
    let db_arn = seeded.secrets.get("e2e/db").context("e2e/db not seeded")?;
    let mut platform = cascade_tests::fixtures::ecs_service_resources("orders", db_arn, "normal");
    let resources = platform.as_object_mut().context("resources")?;
    resources.insert(
        "Database".into(),
        json!({"Type": "AWS::RDS::DBInstance", "DeletionPolicy": "Snapshot", "Properties": {
            "Engine": "postgres", "DBInstanceClass": "db.t3.micro", "AllocatedStorage": "20",
            "MasterUsername": "{{resolve:secretsmanager:e2e/db:SecretString:username}}",
            "MasterUserPassword": "{{resolve:secretsmanager:e2e/db:SecretString:password}}"}}),
    );
    resources.insert(
        "PasswordParameter".into(),
        json!({"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": "/b01-platform/db-password", "Type": "String",
            "Value": "{{resolve:secretsmanager:e2e/db:SecretString:password}}"}}),
    );
    let platform = json!({ "Resources": platform });
    clients
        .cloudformation
        .create_stack()
        .stack_name("b01-platform")
        .template_body(platform.to_string())
        .send()
        .await
        .context("CreateStack b01-platform")?;
    eprintln!(
        "    {:<28} CREATE_COMPLETE (RDS + SSM parameter + ECS service on e2e/db)",
        "b01-platform"
    );

    step(&format!(
        "someone updates {} in the console",
        seeded.changed_secrets.join(", ")
    ));
    let events = aws_sdk_eventbridge::Client::new(config);
    for name in &seeded.changed_secrets {
        let version = clients
            .secrets
            .put_secret_value()
            .secret_id(name)
            .secret_string(
                json!({ "rotated": true, "at": started.elapsed().as_millis() }).to_string(),
            )
            .send()
            .await?
            .version_id()
            .context("no version id")?
            .to_string();
        let arn = seeded.secrets.get(name).context("secret not seeded")?;
        // What Secrets Manager sends to EventBridge (moto does not emit it).
        events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("aws.secretsmanager")
                    .detail_type("Secret Label Updated")
                    .resources(arn)
                    .detail(
                        json!({"name": name, "labelUpdated": AWSCURRENT, "versionId": version})
                            .to_string(),
                    )
                    .build(),
            )
            .send()
            .await?;
        eprintln!("    {name}: new version {version}, event sent");
    }

    step("the schedule fires: the deployed gatekeeper, invoked through Lambda");
    let tick = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
    let outcome = pipeline.invoke(Function::Gatekeeper, &tick).await?;
    eprintln!("    {}", outcome["outcome"].as_str().unwrap_or_default());
    let sfn = aws_sdk_sfn::Client::new(config);
    let listed = sfn
        .list_executions()
        .state_machine_arn(&deployment.state_machine_arn)
        .send()
        .await?;
    let execution_arn = listed
        .executions()
        .first()
        .context("the gatekeeper started no execution")?
        .execution_arn()
        .to_string();
    let again = pipeline.invoke(Function::Gatekeeper, &tick).await?;
    eprintln!(
        "    a second tick while it runs: {}",
        again["outcome"].as_str().unwrap_or_default()
    );

    step(&format!("state machine running: {execution_arn}"));
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last = 0;
    let execution = loop {
        let out = sfn
            .describe_execution()
            .execution_arn(&execution_arn)
            .send()
            .await?;
        let calls = lambda.count(Function::Refresh);
        if calls != last {
            eprintln!(
                "    [{:>4.0}s] refresh steps so far: {calls}",
                started.elapsed().as_secs_f64()
            );
            last = calls;
        }
        if *out.status() != ExecutionStatus::Running {
            break out;
        }
        if Instant::now() > deadline {
            bail!("the execution did not finish within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("    execution {:?}", execution.status());

    let report_key = execution
        .output()
        .and_then(|o| serde_json::from_str::<Value>(o).ok())
        .and_then(|o| {
            o.pointer("/report/report_key")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .context("the execution's output names no report")?;
    let report: Report = serde_json::from_value(pipeline.read_report(&report_key).await?)?;

    step(&format!(
        "the report (s3://{}/{report_key}, and report.md beside it)",
        deployment.bucket
    ));
    println!("{}", render_markdown(&report));
    step("the Slack message the team reads");
    for message in sink.bodies() {
        let value: Value = serde_json::from_str(&message)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    step(&format!(
        "done in {:.1} s; the local stack stops now",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
