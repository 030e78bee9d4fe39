//! `make demo`: the whole pipeline on a local AWS stack, as it runs in AWS, told as a story.
//!
//! Starts its own local stack (moto with the project's launcher) and the local Lambda
//! server running the real handlers, deploys template.yaml through the SAM transform with
//! IAM enforced (each function under its own role), seeds the stacks of
//! `tests/fixtures/refresh` and a stack holding a database and its consumers. Then: the
//! plan (what will change and why, the skipped stacks, the create-only reference), the
//! secrets changed and the `Secret Label Updated` events Secrets Manager would send, the
//! deployed gatekeeper called as the schedule would, one line per stack as the real state
//! machine refreshes it, a second change arriving mid-run that waits for the first batch
//! and runs next, the report, and the Slack message as the team reads it (its JSON saved
//! beside). Everything stops when it ends.

use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use aws_sdk_sfn::types::ExecutionStatus;
use cascade_aws::batch_store::BatchStore;
use cascade_aws::store::Store;
use cascade_core::finder::Disposition;
use cascade_core::plan::Action;
use cascade_core::report::markdown::render_markdown;
use cascade_core::report::slack::message_as_text;
use cascade_core::report::{Outcome, Phase, Report};
use cascade_lambda::Function;
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
    let pipeline = LocalPipeline::start(PipelineOptions::notifying(&sink.url)).await?;
    let (config, clients, deployment) = (&pipeline.config, &pipeline.clients, &pipeline.deployment);

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
        "the plan for a change of {} (what `cascade plan` shows)",
        seeded.changed_secrets.join(", ")
    ));
    print_plan(clients, &seeded.changed_secrets).await?;

    step(&format!(
        "someone updates {} in the console",
        seeded.changed_secrets.join(", ")
    ));
    for name in &seeded.changed_secrets {
        change_secret(&pipeline, name, started).await?;
    }

    step("the schedule fires: the deployed gatekeeper, invoked through Lambda");
    let tick = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
    let outcome = pipeline.invoke(Function::Gatekeeper, &tick).await?;
    eprintln!("    {}", outcome["outcome"].as_str().unwrap_or_default());
    let first = newest_execution(&pipeline).await?;

    step("the state machine refreshes one stack at a time");
    let mut second_change = Some("e2e/pin");
    let (execution, report_key) = follow(
        &pipeline,
        &first,
        started,
        |progressed| {
            // Mid-run, someone changes a secret again: its ticket waits for this batch.
            if progressed >= 3 {
                second_change.take()
            } else {
                None
            }
        },
        &tick,
    )
    .await?;
    eprintln!("    execution {:?}", execution.status());
    let report: Report = serde_json::from_value(pipeline.read_report(&report_key).await?)?;
    step(&format!(
        "the report (s3://{}/{report_key}, and report.md beside it)",
        deployment.bucket
    ));
    println!("{}", render_markdown(&report));

    step("the first batch ended: the next tick starts the waiting change");
    let outcome = pipeline.invoke(Function::Gatekeeper, &tick).await?;
    eprintln!("    {}", outcome["outcome"].as_str().unwrap_or_default());
    let second = newest_execution(&pipeline).await?;
    let (execution, second_key) = follow(&pipeline, &second, started, |_| None, &tick).await?;
    let second_report: Report = serde_json::from_value(pipeline.read_report(&second_key).await?)?;
    eprintln!(
        "    execution {:?}: batch {} for {}: {} refreshed, {} failed, {} skipped, {} degraded",
        execution.status(),
        second_report.batch_id,
        second_report
            .secrets
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        second_report.totals.refreshed,
        second_report.totals.failed,
        second_report.totals.skipped,
        second_report.totals.degraded
    );

    step("the Slack messages the team reads");
    let dir = workspace_root().join("target/demo");
    std::fs::create_dir_all(&dir)?;
    for (i, message) in sink.bodies().iter().enumerate() {
        let value: Value = serde_json::from_str(message)?;
        let path = dir.join(format!("slack-{}.json", i + 1));
        std::fs::write(&path, serde_json::to_string_pretty(&value)?)?;
        println!("┌─ Slack, message {} (its JSON: {})", i + 1, path.display());
        for line in message_as_text(&value).lines() {
            println!("│ {line}");
        }
        println!("└─");
    }
    let lambda = &pipeline.lambda;
    step(&format!(
        "Lambda invocations for both batches ({} stacks refreshed or tried): gatekeeper {}, discover {}, refresh {}, report {}, notify {}",
        report.stacks.len() - report.totals.skipped + second_report.stacks.len()
            - second_report.totals.skipped,
        lambda.count(Function::Gatekeeper),
        lambda.count(Function::Discover),
        lambda.count(Function::Refresh),
        lambda.count(Function::Report),
        lambda.count(Function::Notify),
    ));
    step(&format!(
        "done in {:.1} s; the local stack stops now",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The plan for `secrets`, a line per stack: its strategy and each resource's action, the
/// reason of every resource only reported (a create-only property), and the skipped stacks.
async fn print_plan(clients: &cascade_aws::Clients, secrets: &[String]) -> anyhow::Result<()> {
    let resolved = cascade_aws::secrets::resolve_secrets(clients, secrets).await?;
    let plan = cascade_aws::discovery::plan_secrets(
        clients,
        &resolved,
        cascade_core::plan::StrategyChoice::Auto,
        8,
    )
    .await?;
    eprintln!(
        "    {} stacks to refresh, {} skipped",
        plan.stacks.len(),
        plan.skipped.len()
    );
    for stack in &plan.stacks {
        let actions: Vec<String> = stack
            .actions
            .iter()
            .map(|a| format!("{} {}", a.logical_id, a.action))
            .collect();
        eprintln!(
            "    {:<22} {:<9} {}",
            stack.stack_name,
            stack.strategy.to_string(),
            actions.join(", ")
        );
        for reported in stack.actions.iter().filter(|a| a.action == Action::Report) {
            eprintln!(
                "    {:<32} {} not refreshed: {}",
                "", reported.logical_id, reported.reason
            );
        }
        // References left as they are (a create-only property, a version pinned by hand...).
        for reference in stack.references.iter().filter(|r| {
            !matches!(
                r.disposition,
                Disposition::Refresh | Disposition::Restart | Disposition::Current
            )
        }) {
            eprintln!(
                "    {:<32} {} left as it is ({}){}",
                "",
                reference.path,
                reference.disposition,
                reference
                    .detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            );
        }
    }
    for skipped in &plan.skipped {
        eprintln!(
            "    {:<22} {:<9} {}",
            skipped.stack_name, "skipped", skipped.reason
        );
    }
    Ok(())
}

/// Gives `name` a new value and sends the event Secrets Manager would (moto sends none).
async fn change_secret(
    pipeline: &LocalPipeline,
    name: &str,
    started: Instant,
) -> anyhow::Result<()> {
    let value = json!({ "rotated": true, "at": started.elapsed().as_millis() }).to_string();
    let version = pipeline.change_secret(name, &value).await?;
    eprintln!("    {name}: new version {version}, event sent");
    Ok(())
}

/// The newest execution of the deployed state machine.
async fn newest_execution(pipeline: &LocalPipeline) -> anyhow::Result<String> {
    let listed = aws_sdk_sfn::Client::new(&pipeline.config)
        .list_executions()
        .state_machine_arn(&pipeline.deployment.state_machine_arn)
        .send()
        .await?;
    Ok(listed
        .executions()
        .first()
        .context("the gatekeeper started no execution")?
        .execution_arn()
        .to_string())
}

/// Follows the execution `arn` to its end, printing a line each time a stack moves (its
/// phase) or ends (its outcome, how long it took). `mid_run` is asked, with the number of
/// stacks ended so far, for a secret to change while it runs. Returns the execution and
/// its report's key.
async fn follow(
    pipeline: &LocalPipeline,
    arn: &str,
    started: Instant,
    mut mid_run: impl FnMut(usize) -> Option<&'static str>,
    tick: &Value,
) -> anyhow::Result<(
    aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
    String,
)> {
    let sfn = aws_sdk_sfn::Client::new(&pipeline.config);
    let store = Store::s3(
        pipeline.clients.s3.clone(),
        pipeline.deployment.bucket.clone(),
    );
    let batches = BatchStore::new(&store);
    let described = sfn.describe_execution().execution_arn(arn).send().await?;
    let batch = described
        .input()
        .and_then(|i| serde_json::from_str::<Value>(i).ok())
        .and_then(|i| i["batch_id"].as_str().map(str::to_string))
        .context("the execution's input names no batch")?;
    eprintln!("    batch {batch}");
    let mut seen: BTreeMap<String, (Phase, Option<Outcome>)> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let execution = loop {
        let out = sfn.describe_execution().execution_arn(arn).send().await?;
        if let Some(manifest) = batches.find_manifest(&batch).await? {
            let states = batches.states(&manifest).await?;
            // Stacks as they start and move; those not reached yet say nothing.
            for state in states
                .iter()
                .filter(|s| s.started_at.is_some() || s.is_final())
            {
                let now = (state.phase, state.outcome);
                if seen.get(&state.stack_name) == Some(&now) {
                    continue;
                }
                seen.insert(state.stack_name.clone(), now);
                let strategy = state.strategy.map(|s| s.to_string()).unwrap_or_default();
                let what = match state.outcome {
                    Some(outcome) => {
                        let took = match (&state.started_at, &state.finished_at) {
                            (Some(a), Some(b)) => {
                                match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
                                    (Ok(a), Ok(b)) => format!(
                                        " in {:.1} s",
                                        (b.as_millisecond() - a.as_millisecond()) as f64 / 1000.0
                                    ),
                                    _ => String::new(),
                                }
                            }
                            _ => String::new(),
                        };
                        match (outcome, &state.reason) {
                            (Outcome::Refreshed, _) | (_, None) => format!("{outcome}{took}"),
                            (_, Some(reason)) => {
                                let mut short: String = reason.chars().take(90).collect();
                                if reason.chars().count() > 90 {
                                    short.push('…');
                                }
                                format!("{outcome}{took}: {short}")
                            }
                        }
                    }
                    None => format!("{} …", state.phase),
                };
                eprintln!(
                    "    [{:>4.0}s] {:<22} {:<9} {what}",
                    started.elapsed().as_secs_f64(),
                    state.stack_name,
                    strategy
                );
            }
            let ended = states.iter().filter(|s| s.is_final()).count();
            if let Some(secret) = mid_run(ended) {
                eprintln!("    ==> meanwhile someone changes {secret} again");
                change_secret(pipeline, secret, started).await?;
                let busy = pipeline.invoke(Function::Gatekeeper, tick).await?;
                eprintln!(
                    "    ==> the next tick: {}",
                    busy["outcome"].as_str().unwrap_or_default()
                );
            }
        }
        if *out.status() != ExecutionStatus::Running {
            break out;
        }
        if Instant::now() > deadline {
            bail!("the execution did not finish within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    };
    let report_key = execution
        .output()
        .and_then(|o| serde_json::from_str::<Value>(o).ok())
        .and_then(|o| {
            o.pointer("/report/report_key")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .context("the execution's output names no report")?;
    Ok((execution, report_key))
}
