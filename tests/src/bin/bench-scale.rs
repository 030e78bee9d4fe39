//! Scale benchmark: one batch of N dependent stacks (default 2,000) through the deployed
//! application on the local stack, figures printed, not asserted.
//!
//! template.yaml is deployed (IAM enforced, the real handlers behind the local Lambda
//! server, a Slack sink for the webhook); N stacks whose database password is a dynamic
//! reference to one secret are created, the secret changes, and one execution of the real
//! state machine (waits shortened to 0 s: moto completes every update at once) refreshes
//! them all. Measured from the execution itself:
//! - the largest payload: every state input and output of the parent's history, and every
//!   Lambda payload the state machine sent (the local Lambda server records them), against
//!   Step Functions' 256 KiB;
//! - the parent's history events, against the 25,000-event limit; each child's (in AWS each
//!   map iteration is a child execution with its own history; moto drops the iterations'
//!   events, so they are counted on an INLINE twin of the same definition over a sample of
//!   stacks: the events between MapIterationStarted and MapIterationSucceeded, plus the
//!   child's ExecutionStarted and ExecutionSucceeded);
//! - wall time: discovery and planning (as `cascade plan`, API calls per stack), the whole
//!   execution and per stack, Discover, Report, Notify;
//! - the report (JSON, Markdown) and the Slack message: sizes, totals.
//!
//! Then the largest batch that fits, computed from the measured sizes.
//!
//! Run: `cargo run --release -p cascade-tests --bin bench-scale [-- --stacks 2000
//! --name-length 40 --sample 20]` (2,000 stacks: about 10 minutes on 2 cores, debug build).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use cascade_aws::discovery::plan_secrets;
use cascade_aws::secrets::resolve_secrets;
use cascade_core::intake::{ExecutionInput, RunOptions, Ticket, TicketSource};
use cascade_core::plan::StrategyChoice;
use cascade_lambda::Function;
use cascade_tests::bench::{NameLength, stack_name};
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
use cascade_tests::slack_sink::SlackSink;
use clap::Parser;
use serde_json::Value;

/// Step Functions' payload limit: 256 KiB.
const PAYLOAD_LIMIT: usize = 256 * 1024;
/// Step Functions' history limit of one execution.
const HISTORY_LIMIT: usize = 25_000;
/// A Standard execution's longest run: one year.
const YEAR_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// A stack refreshed by pinning (tag `cascade:strategy=pin`); moto creates no App Runner
/// service, so thousands of them cost nothing (moto caps RDS instances near 1,000).
const PIN_TEMPLATE: &str = "Resources:
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
  Service:
    Type: AWS::AppRunner::Service
    Properties:
      Secret: '{{resolve:secretsmanager:SECRET:SecretString:password}}'
";

/// One batch of `--stacks` stacks through the deployed state machine, figures printed.
#[derive(Parser)]
struct Args {
    /// Stacks in the batch.
    #[arg(long, default_value_t = 2000)]
    stacks: usize,
    #[command(flatten)]
    name_length: NameLength,
    /// Stacks run on the INLINE twin to count a child's history events.
    #[arg(long, default_value_t = 20)]
    sample: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let sink = SlackSink::start().await?;
    let pipeline = LocalPipeline::start(PipelineOptions::notifying(&sink.url)).await?;
    let inline_arn = pipeline.deploy_inline_twin("bench-scale-inline").await?;
    let clients = &pipeline.clients;
    let sfn = aws_sdk_sfn::Client::new(&pipeline.config);
    println!(
        "local stack and deployment ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The sample for the children's histories, on the INLINE twin, then the batch.
    let sample = seed(
        &pipeline,
        "bench/sample",
        "smp",
        args.sample,
        args.name_length.get(),
    )
    .await?;
    let sample_run = execute(&pipeline, &sfn, &inline_arn, "bench/sample", "sample").await?;
    let children = child_histories(&sample_run.events);
    if children.len() != sample {
        bail!(
            "the sample ran {} iterations for {sample} stacks",
            children.len()
        );
    }
    let seeded = seed(
        &pipeline,
        "bench/db",
        "prd",
        args.stacks,
        args.name_length.get(),
    )
    .await?;

    // Discovery and planning as `cascade plan` does it, API calls counted.
    let secrets = resolve_secrets(clients, &["bench/db".to_string()]).await?;
    let before = clients.calls.snapshot();
    let planning = Instant::now();
    let plan = plan_secrets(clients, &secrets, StrategyChoice::Auto, 8).await?;
    let planning = planning.elapsed().as_secs_f64();
    let after = clients.calls.snapshot();
    let calls: u64 = after
        .iter()
        .map(|(op, n)| n - before.get(op).copied().unwrap_or(0))
        .sum();
    if plan.stacks.len() != seeded {
        bail!("planned {} stacks of {seeded}", plan.stacks.len());
    }

    let invoked_before = pipeline.lambda.invocations.read().unwrap().len();
    let run = execute(
        &pipeline,
        &sfn,
        &pipeline.deployment.state_machine_arn,
        "bench/db",
        "batch",
    )
    .await?;
    let invocations: Vec<(Function, Value)> =
        pipeline.lambda.invocations.read().unwrap()[invoked_before..].to_vec();
    let report_key = run.output["report"]["report_key"]
        .as_str()
        .context("no report key in the output")?
        .to_string();
    let report = pipeline.read_report(&report_key).await?;
    let markdown_key = report_key.replace(".json", ".md");
    let markdown = read_text(&pipeline, &markdown_key)
        .await
        .unwrap_or_default();
    let refreshed = report["totals"]["refreshed"].as_u64().unwrap_or(0) as usize;
    let slack = sink.bodies().last().cloned().unwrap_or_default();

    // ------------------------------------------------------------------ figures
    let n = seeded;
    println!();
    println!(
        "one batch of {n} stacks (names of {} characters), one execution of the real state machine",
        args.name_length.get()
    );
    println!(
        "  outcome                      {:?}; report: {refreshed} refreshed, {} failed, {} skipped",
        run.status, report["totals"]["failed"], report["totals"]["skipped"]
    );
    println!(
        "  discovery + plan (CLI path)  {planning:.1} s, {:.2} API calls per stack",
        calls as f64 / n as f64
    );
    let per_stack = run.seconds / n as f64;
    println!(
        "  execution wall time          {:.1} s = {:.1} ms per stack",
        run.seconds,
        per_stack * 1000.0
    );
    for state in ["Discover", "RefreshEachStack", "Report", "Notify"] {
        if let Some(seconds) = state_seconds(&run.events, state) {
            println!("    {state:<26} {seconds:.1} s");
        }
    }
    let mut per_function: BTreeMap<&str, usize> = BTreeMap::new();
    for (function, _) in &invocations {
        *per_function.entry(function.name()).or_default() += 1;
    }
    println!("  Lambda invocations           {per_function:?}");

    println!("  payloads (limit {PAYLOAD_LIMIT} bytes):");
    let (history_max, history_where) = largest_history_payload(&run.events);
    println!(
        "    largest state input/output in the parent's history  {history_max:>7} bytes ({:.2} %, {history_where})",
        history_max as f64 * 100.0 / PAYLOAD_LIMIT as f64
    );
    let (lambda_max, lambda_where) = invocations
        .iter()
        .map(|(f, p)| (p.to_string().len(), f.name()))
        .max()
        .unwrap_or((0, "none"));
    println!(
        "    largest Lambda payload the state machine sent       {lambda_max:>7} bytes ({:.2} %, {lambda_where})",
        lambda_max as f64 * 100.0 / PAYLOAD_LIMIT as f64
    );
    println!("  history events (limit {HISTORY_LIMIT}):");
    println!(
        "    parent                     {} events (moto records no child events in it; AWS neither: each child is its own execution)",
        run.events.len()
    );
    let (least, most) = (
        children.iter().min().copied().unwrap_or(0),
        children.iter().max().copied().unwrap_or(0),
    );
    println!(
        "    each child (sample of {sample} on the INLINE twin)  {least}..{most} events; each further look at an update AWS reports IN_PROGRESS adds 9 (Wait 2, Task 5, Choice 2)"
    );
    println!("  report and Slack:");
    println!(
        "    report JSON {} bytes ({:.0} per stack), Markdown {} bytes, Slack message {} bytes",
        report.to_string().len(),
        report.to_string().len() as f64 / n as f64,
        markdown.len(),
        slack.len()
    );

    // ------------------------------------------------------------------ what fits
    // The map's result (without ResultWriter) is the array of the children's outputs: `{}`
    // each (StackDone, OutputPath null), 3 bytes with the comma. Every other payload is the
    // same size whatever N is (the names are in S3).
    let fixed = history_max.max(lambda_max);
    let by_map_result = (PAYLOAD_LIMIT - fixed.min(PAYLOAD_LIMIT)) / 3;
    let by_duration = (YEAR_SECONDS / 60.0) as usize;
    println!();
    println!("largest batch that fits one execution:");
    println!(
        "  payloads          no limit from the names: the largest payload ({fixed} bytes) does not grow with N"
    );
    println!(
        "  map result        {by_map_result} stacks (3 bytes a child in the 256 KiB map result, if AWS counts it before ResultPath null)"
    );
    println!(
        "  parent history    no limit from N: {} events for {n} stacks",
        run.events.len()
    );
    println!(
        "  child history     {} further looks at one update before a child's 25,000 events (at PollSeconds 5: {:.0} hours)",
        (HISTORY_LIMIT - most.min(HISTORY_LIMIT)) / 9,
        (HISTORY_LIMIT - most.min(HISTORY_LIMIT)) as f64 / 9.0 * 5.0 / 3600.0
    );
    println!(
        "  execution length  one year: {by_duration} stacks at 1 minute a stack, {} at 5 minutes",
        by_duration / 5
    );
    println!("  total {:.1} s", started.elapsed().as_secs_f64());
    if refreshed != n || run.status != ExecutionStatus::Succeeded {
        bail!("the batch did not refresh every stack");
    }
    Ok(())
}

/// Creates the secret `secret` and `count` stacks using it, then changes the secret.
async fn seed(
    pipeline: &LocalPipeline,
    secret: &str,
    prefix: &str,
    count: usize,
    name_length: usize,
) -> anyhow::Result<usize> {
    let clients = &pipeline.clients;
    clients
        .secrets
        .create_secret()
        .name(secret)
        .secret_string(r#"{"password":"first"}"#)
        .send()
        .await?;
    let body = PIN_TEMPLATE.replace("SECRET", secret);
    let seeding = Instant::now();
    let names: Vec<String> = (0..count)
        .map(|i| stack_name(prefix, i, name_length))
        .collect();
    for name in &names {
        clients
            .cloudformation
            .create_stack()
            .stack_name(name)
            .template_body(&body)
            .tags(
                aws_sdk_cloudformation::types::Tag::builder()
                    .key("cascade:strategy")
                    .value("pin")
                    .build(),
            )
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("creating {name}: {e:?}"))?;
    }
    clients
        .secrets
        .put_secret_value()
        .secret_id(secret)
        .secret_string(r#"{"password":"second"}"#)
        .send()
        .await?;
    eprintln!(
        "seeded {count} stacks for {secret} in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    Ok(count)
}

/// One finished execution.
struct Execution {
    status: ExecutionStatus,
    output: Value,
    events: Vec<HistoryEvent>,
    seconds: f64,
}

/// Starts one execution of `state_machine` for `secret` with the gatekeeper's input (waits
/// of 0 s) and waits for it.
async fn execute(
    pipeline: &LocalPipeline,
    sfn: &aws_sdk_sfn::Client,
    state_machine: &str,
    secret: &str,
    label: &str,
) -> anyhow::Result<Execution> {
    let batch_id = format!("{:016x}", rand_id(label));
    let arn = pipeline
        .clients
        .secrets
        .describe_secret()
        .secret_id(secret)
        .send()
        .await?
        .arn()
        .map(str::to_string);
    let input = ExecutionInput {
        batch_id: batch_id.clone(),
        tickets: vec![Ticket {
            secret_id: secret.to_string(),
            secret_arn: arn,
            version_id: None,
            source: TicketSource::Manual,
            event_id: format!("bench-{label}"),
            at: None,
            actor: Some("bench-scale".into()),
            stacks: None,
        }],
        secrets: vec![secret.to_string()],
        stacks: None,
        options: RunOptions {
            strategy: StrategyChoice::Auto,
            poll_seconds: 0,
        },
    };
    let started = Instant::now();
    let execution = sfn
        .start_execution()
        .state_machine_arn(state_machine)
        .name(format!("cascade-{batch_id}"))
        .input(serde_json::to_string(&input)?)
        .send()
        .await?
        .execution_arn()
        .to_string();
    let described = loop {
        let described = sfn
            .describe_execution()
            .execution_arn(&execution)
            .send()
            .await?;
        if described.status() != &ExecutionStatus::Running {
            break described;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut events = Vec::new();
    let mut token = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(&execution)
            .set_next_token(token)
            .max_results(1000)
            .send()
            .await?;
        events.extend(page.events().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let output = described
        .output()
        .map(serde_json::from_str)
        .transpose()?
        .unwrap_or(Value::Null);
    Ok(Execution {
        status: described.status().clone(),
        output,
        events,
        seconds,
    })
}

/// A batch id for `label`, different on every run (a batch id is the execution's name).
fn rand_id(label: &str) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let digest = cascade_core::digest::sha256_hex(format!("{label}{nanos}"));
    u64::from_str_radix(&digest[..16], 16).unwrap_or(0)
}

/// The events of each iteration of an INLINE map as a child execution would have them:
/// MapIterationStarted..MapIterationSucceeded stand for ExecutionStarted..ExecutionSucceeded.
fn child_histories(events: &[HistoryEvent]) -> Vec<usize> {
    let mut children = Vec::new();
    let mut current: Option<usize> = None;
    for event in events {
        if event.map_iteration_started_event_details().is_some() {
            current = Some(0);
        }
        if let Some(count) = current.as_mut() {
            *count += 1;
        }
        if event.map_iteration_succeeded_event_details().is_some()
            || event.map_iteration_failed_event_details().is_some()
        {
            children.extend(current.take());
        }
    }
    children
}

/// Seconds from entering `state` to leaving it.
fn state_seconds(events: &[HistoryEvent], state: &str) -> Option<f64> {
    let entered = events.iter().find(|e| {
        e.state_entered_event_details()
            .is_some_and(|d| d.name() == state)
    })?;
    let exited = events.iter().find(|e| {
        e.state_exited_event_details()
            .is_some_and(|d| d.name() == state)
    })?;
    let seconds = |e: &HistoryEvent| e.timestamp().as_secs_f64();
    Some(seconds(exited) - seconds(entered))
}

/// The largest state input or output of the history, and which state's.
fn largest_history_payload(events: &[HistoryEvent]) -> (usize, String) {
    let mut largest = (0, String::from("none"));
    for event in events {
        let candidates = [
            event
                .state_entered_event_details()
                .map(|d| (d.input().map_or(0, str::len), format!("{} input", d.name()))),
            event.state_exited_event_details().map(|d| {
                (
                    d.output().map_or(0, str::len),
                    format!("{} output", d.name()),
                )
            }),
            event.task_succeeded_event_details().map(|d| {
                (
                    d.output().map_or(0, str::len),
                    "a task's result".to_string(),
                )
            }),
            event
                .execution_started_event_details()
                .map(|d| (d.input().map_or(0, str::len), "execution input".to_string())),
            event.execution_succeeded_event_details().map(|d| {
                (
                    d.output().map_or(0, str::len),
                    "execution output".to_string(),
                )
            }),
        ];
        for (size, what) in candidates.into_iter().flatten() {
            if size > largest.0 {
                largest = (size, what);
            }
        }
    }
    largest
}

async fn read_text(pipeline: &LocalPipeline, key: &str) -> anyhow::Result<String> {
    let object = aws_sdk_s3::Client::new(&pipeline.config)
        .get_object()
        .bucket(&pipeline.deployment.bucket)
        .key(key)
        .send()
        .await?;
    Ok(String::from_utf8(
        object.body.collect().await?.into_bytes().to_vec(),
    )?)
}
