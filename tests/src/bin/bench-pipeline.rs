//! State machine benchmark: figures for the closing note, printed, not asserted.
//!
//! 1. History events and state transitions per refreshed stack. In AWS each iteration of
//!    the DISTRIBUTED map is a child execution with its own history, which moto does not
//!    create (it drops the iterations' events). So the real definition is also deployed
//!    with only its map's `ProcessorConfig` switched to `{"Mode": "INLINE"}` (same states),
//!    and both run end to end with the real handlers (local Lambda server) against seeded
//!    stacks: N recreate stacks, M pin stacks, K restart stacks (an ECS service taking the
//!    secret by ARN) and L mixed stacks (pin and recreate in one update, the restore, then
//!    the restart) depending on a secret that changed, started with the input the
//!    gatekeeper writes. Per-stack costs come from the INLINE histories
//!    (differences between runs with different N and M, cross-checked per iteration); the
//!    parent's fixed overhead from the DISTRIBUTED runs.
//! 2. Payload sizes at 1,000 stacks (names of 40 characters), computed from the real serde
//!    types (`DiscoverResult`, `StepResult`, `ExecutionInput`) against Step Functions'
//!    256 KiB limit (the names themselves are in S3, read by the map's ItemReader), and the projected history of the parent (measured fixed overhead) and
//!    of each child execution against the 25,000-event limit.
//!
//! moto completes every stack update at once, so each stack is looked at exactly once per
//! update; in AWS every further look while an update is IN_PROGRESS adds one Wait, one poll
//! Task and one Choice (the measured per-state costs are printed for that projection).
//!
//! Run: `cargo run --release -p cascade-tests --bin bench-pipeline [-- --stacks 1000
//! --name-length 40]` (about 30 s; the runs poll every second).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use cascade_core::intake::{ExecutionInput, RunOptions, Ticket, TicketSource};
use cascade_core::plan::StrategyChoice;
use cascade_lambda::handlers::discover::DiscoverResult;
use cascade_lambda::handlers::refresh::{Next, StepResult};
use cascade_tests::bench::{NameLength, stack_name};
use cascade_tests::deploy::DeployOptions;
use cascade_tests::fixtures::{ecs_service_resources, mixed_actions_template};
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
use cascade_tests::{ACCOUNT, REGION};
use clap::Parser;
use serde_json::{Value, json};

/// Step Functions' payload limit (state input, output, task result): 256 KiB.
const PAYLOAD_LIMIT: usize = 256 * 1024;
/// Step Functions' history limit of one execution.
const HISTORY_LIMIT: usize = 25_000;
/// Default of CASCADE_MAX_WAIT_SECONDS: the longest wait for one update.
const MAX_WAIT_SECONDS: usize = cascade_core::defaults::MAX_WAIT_SECONDS as usize;
/// PollSeconds of template.yaml: its minimum and its default.
const POLL_SECONDS: [usize; 2] = [5, 30];

/// A stack refreshed by recreating (App Runner service: removed, then restored); tagged
/// `cascade:strategy=recreate`, since `auto` would pin its dynamic reference.
const RECREATE_TEMPLATE: &str = "Resources:
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
  Service:
    Type: AWS::AppRunner::Service
    Properties:
      Secret: '{{resolve:secretsmanager:SECRET:SecretString:password}}'
";

/// A stack that auto refreshes by pinning (a database: never removed).
const PIN_TEMPLATE: &str = "Resources:
  Db:
    Type: AWS::RDS::DBInstance
    Properties:
      Engine: postgres
      DBInstanceClass: db.t3.micro
      AllocatedStorage: '20'
      MasterUsername: admin
      MasterUserPassword: '{{resolve:secretsmanager:SECRET:SecretString:password}}'
";

/// Planning, discovery and the execution's payloads over `--stacks` stacks.
#[derive(Parser)]
struct Args {
    /// Stacks seeded.
    #[arg(long, default_value_t = 1000)]
    stacks: usize,
    #[command(flatten)]
    name_length: NameLength,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let pipeline = LocalPipeline::start(PipelineOptions {
        deploy: DeployOptions {
            poll_seconds: 1,
            ..DeployOptions::default()
        },
        ..PipelineOptions::default()
    })
    .await?;
    let (clients, deployment) = (&pipeline.clients, &pipeline.deployment);
    let sfn = aws_sdk_sfn::Client::new(&pipeline.config);
    let inline_arn = pipeline
        .deploy_inline_twin("secret-cascade-cascade-inline")
        .await?;
    println!(
        "local stack and deployment ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // ------------------------------------------------------------------ measured runs
    let bench = Bench { clients, sfn: &sfn };
    let inline_a = bench.run("A", &inline_arn, Mix::recreate(1)).await?;
    let inline_b = bench.run("B", &inline_arn, Mix::recreate(3)).await?;
    let inline_c = bench
        .run(
            "C",
            &inline_arn,
            Mix {
                pin: 2,
                ..Mix::recreate(1)
            },
        )
        .await?;
    let distributed_d = bench
        .run("D", &deployment.state_machine_arn, Mix::recreate(1))
        .await?;
    let distributed_e = bench
        .run(
            "E",
            &deployment.state_machine_arn,
            Mix {
                pin: 2,
                ..Mix::recreate(3)
            },
        )
        .await?;
    let inline_f = bench
        .run(
            "F",
            &inline_arn,
            Mix {
                restart: 2,
                ..Mix::recreate(1)
            },
        )
        .await?;
    let inline_g = bench
        .run(
            "G",
            &inline_arn,
            Mix {
                mixed: 2,
                ..Mix::recreate(1)
            },
        )
        .await?;

    println!();
    println!("measured runs (real handlers, moto; every update completes at the first look)");
    println!(
        "  {:<3} {:<12} {:>8} {:>5} {:>7} {:>5} {:>7} {:>12} {:>7}",
        "run", "map mode", "recreate", "pin", "restart", "mixed", "events", "transitions", "wall s"
    );
    for (run, mode) in [
        (&inline_a, "INLINE"),
        (&inline_b, "INLINE"),
        (&inline_c, "INLINE"),
        (&distributed_d, "DISTRIBUTED"),
        (&distributed_e, "DISTRIBUTED"),
        (&inline_f, "INLINE"),
        (&inline_g, "INLINE"),
    ] {
        println!(
            "  {:<3} {:<12} {:>8} {:>5} {:>7} {:>5} {:>7} {:>12} {:>7.1}",
            run.label,
            mode,
            run.mix.recreate,
            run.mix.pin,
            run.mix.restart,
            run.mix.mixed,
            run.events.len(),
            run.transitions(),
            run.took.as_secs_f64()
        );
    }

    let per_recreate_events = (inline_b.events.len() - inline_a.events.len()) / 2;
    let per_recreate_transitions = (inline_b.transitions() - inline_a.transitions()) / 2;
    let per_pin_events = (inline_c.events.len() - inline_a.events.len()) / 2;
    let per_pin_transitions = (inline_c.transitions() - inline_a.transitions()) / 2;
    let per_restart_events = (inline_f.events.len() - inline_a.events.len()) / 2;
    let per_restart_transitions = (inline_f.transitions() - inline_a.transitions()) / 2;
    let per_mixed_events = (inline_g.events.len() - inline_a.events.len()) / 2;
    let per_mixed_transitions = (inline_g.transitions() - inline_a.transitions()) / 2;
    let inline_overhead_events = inline_a.events.len() - per_recreate_events;
    let inline_overhead_transitions = inline_a.transitions() - per_recreate_transitions;
    let parent_events = distributed_d.events.len();
    let parent_transitions = distributed_d.transitions();

    println!();
    println!(
        "per refreshed stack (INLINE histories: (B - A) / 2, (C - A) / 2, (F - A) / 2, (G - A) / 2)"
    );
    println!(
        "  recreate  {per_recreate_events:>3} events, {per_recreate_transitions:>2} state transitions"
    );
    println!("  pin       {per_pin_events:>3} events, {per_pin_transitions:>2} state transitions");
    println!(
        "  restart   {per_restart_events:>3} events, {per_restart_transitions:>2} state transitions"
    );
    println!(
        "  mixed     {per_mixed_events:>3} events, {per_mixed_transitions:>2} state transitions (pin + removal, restore, restart)"
    );
    println!("  cross-check, iteration by iteration (MapIterationStarted..Succeeded):");
    for run in [&inline_a, &inline_b, &inline_c, &inline_f, &inline_g] {
        for iteration in run.iterations() {
            println!(
                "    run {} {:<28} {:>3} events, {:>2} transitions: {}",
                run.label,
                iteration.stack,
                iteration.events,
                iteration.entered.len(),
                iteration.entered.join(" > ")
            );
        }
    }
    println!(
        "  INLINE fixed overhead (A minus one recreate): {inline_overhead_events} events, {inline_overhead_transitions} transitions"
    );
    println!(
        "  DISTRIBUTED parent: {} events / {} transitions with 1 stack (D), {} / {} with 5 (E): {}",
        distributed_d.events.len(),
        distributed_d.transitions(),
        distributed_e.events.len(),
        distributed_e.transitions(),
        if distributed_d.events.len() == distributed_e.events.len() {
            "independent of the number of stacks"
        } else {
            "DEPENDS on the number of stacks"
        }
    );
    println!("    parent path: {}", distributed_e.entered().join(" > "));

    // Per-state costs, for looks beyond the first.
    let costs = state_costs(&[&inline_a, &inline_b, &inline_c, &inline_f, &inline_g]);
    println!("  events per state entry (INLINE runs):");
    for (state, (events, entries)) in &costs {
        println!(
            "    {state:<18} {:>4.1}  ({entries} entries)",
            *events as f64 / *entries as f64
        );
    }
    let per_entry = |state: &str| {
        costs
            .get(state)
            .map_or(0, |(events, entries)| events / entries)
    };
    let extra_look_events =
        per_entry("WaitForUpdate") + per_entry("PollUpdate") + per_entry("AfterPollUpdate");
    let extra_look_transitions = 3;
    println!(
        "  each further look at an IN_PROGRESS stack (Wait > Poll > Choice): +{extra_look_events} events, +{extra_look_transitions} transitions"
    );

    // ------------------------------------------------------------------ projections
    let n = args.stacks;
    println!();
    println!("history at {n} stacks (limit {HISTORY_LIMIT} events per execution)");
    println!(
        "  DISTRIBUTED parent            {:>7} events (measured fixed overhead; + 3 per Discover/Report/Notify retry)",
        parent_events
    );
    // A child execution's history: ExecutionStarted/Succeeded instead of the iteration's
    // MapIterationStarted/Succeeded, the same states in between.
    println!(
        "  child, recreate / pin / restart / mixed {:>5} / {} / {} / {} events",
        per_recreate_events, per_pin_events, per_restart_events, per_mixed_events
    );
    for poll in POLL_SECONDS {
        let looks = MAX_WAIT_SECONDS / poll;
        let worst = per_recreate_events + 2 * (looks - 1) * extra_look_events;
        println!(
            "  child, worst case at PollSeconds {poll:>2}: {looks} looks per update for the {MAX_WAIT_SECONDS} s max wait, 2 updates: {worst:>6} events ({:.0} % of the limit)",
            worst as f64 * 100.0 / HISTORY_LIMIT as f64
        );
    }
    let inline_total = inline_overhead_events + n * per_recreate_events;
    let inline_max = (HISTORY_LIMIT - inline_overhead_events) / per_recreate_events;
    println!(
        "  for contrast, INLINE map:     {inline_total:>7} events for {n} recreated stacks ({}); at most {inline_max} stacks fit, fewer with retries or further looks",
        if inline_total > HISTORY_LIMIT {
            "over the limit"
        } else {
            "within the limit"
        }
    );
    println!(
        "  state transitions (billed, Standard) for {n} recreated stacks: {} = {parent_transitions} parent + {n} x {per_recreate_transitions}",
        parent_transitions + n * per_recreate_transitions
    );

    payloads(&args)?;
    Ok(())
}

// ---------------------------------------------------------------------- runs

struct Bench<'a> {
    clients: &'a cascade_aws::Clients,
    sfn: &'a aws_sdk_sfn::Client,
}

/// How many stacks of each kind a run seeds.
#[derive(Debug, Clone, Copy, Default)]
struct Mix {
    recreate: usize,
    pin: usize,
    restart: usize,
    mixed: usize,
}

impl Mix {
    fn recreate(recreate: usize) -> Self {
        Mix {
            recreate,
            ..Mix::default()
        }
    }

    fn total(&self) -> usize {
        self.recreate + self.pin + self.restart + self.mixed
    }
}

struct Run {
    label: String,
    mix: Mix,
    events: Vec<HistoryEvent>,
    stacks: Vec<String>,
    took: Duration,
}

struct Iteration {
    stack: String,
    events: usize,
    entered: Vec<String>,
}

impl Bench<'_> {
    /// Seeds the stacks of `mix` on a secret of their own, changes it, and runs one
    /// execution with the gatekeeper's input on `state_machine_arn`.
    async fn run(&self, label: &str, state_machine_arn: &str, mix: Mix) -> anyhow::Result<Run> {
        let secret = format!("bench-{}/db", label.to_lowercase());
        let created = self
            .clients
            .secrets
            .create_secret()
            .name(&secret)
            .secret_string("{\"password\":\"first\"}")
            .send()
            .await?;
        let arn = created.arn().unwrap_or_default().to_string();
        let mut names = Vec::new();
        for (kind, count) in [
            ("recreate", mix.recreate),
            ("pin", mix.pin),
            ("restart", mix.restart),
            ("mixed", mix.mixed),
        ] {
            for i in 1..=count {
                let name = format!("bench-{}-{kind}-{i}", label.to_lowercase());
                let mut create = self.clients.cloudformation.create_stack().stack_name(&name);
                create = match kind {
                    "recreate" => create
                        .template_body(RECREATE_TEMPLATE.replace("SECRET", &secret))
                        .tags(
                            aws_sdk_cloudformation::types::Tag::builder()
                                .key("cascade:strategy")
                                .value("recreate")
                                .build(),
                        ),
                    "pin" => create.template_body(PIN_TEMPLATE.replace("SECRET", &secret)),
                    "restart" => create.template_body(
                        json!({"Resources": ecs_service_resources(&name, &arn, "normal")})
                            .to_string(),
                    ),
                    _ => create
                        .template_body(mixed_actions_template(&name, &secret, &arn).to_string())
                        .parameters(
                            aws_sdk_cloudformation::types::Parameter::builder()
                                .parameter_key("DbSecretArn")
                                .parameter_value(&arn)
                                .build(),
                        )
                        .capabilities(
                            aws_sdk_cloudformation::types::Capability::CapabilityNamedIam,
                        ),
                };
                create
                    .send()
                    .await
                    .with_context(|| format!("CreateStack {name}"))?;
                names.push(name);
            }
        }
        let version = self
            .clients
            .secrets
            .put_secret_value()
            .secret_id(&secret)
            .secret_string("{\"password\":\"second\"}")
            .send()
            .await?
            .version_id()
            .unwrap_or_default()
            .to_string();
        let batch_id = format!("{:016x}", 0xbe_0000 + u64::from(label.as_bytes()[0]));
        let input = ExecutionInput {
            batch_id: batch_id.clone(),
            tickets: vec![ticket(&secret, created.arn(), Some(&version), 1)],
            secrets: vec![secret.clone()],
            stacks: None,
            options: RunOptions {
                strategy: StrategyChoice::Auto,
                poll_seconds: 1,
            },
        };
        let started = Instant::now();
        let execution_arn = self
            .sfn
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(format!("cascade-{batch_id}"))
            .input(input.to_json())
            .send()
            .await?
            .execution_arn()
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(300);
        let execution = loop {
            let out = self
                .sfn
                .describe_execution()
                .execution_arn(&execution_arn)
                .send()
                .await?;
            if *out.status() != ExecutionStatus::Running {
                break out;
            }
            if Instant::now() > deadline {
                bail!("run {label} still running after 300 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let took = started.elapsed();
        let output: Value = serde_json::from_str(execution.output().unwrap_or("null"))?;
        if *execution.status() != ExecutionStatus::Succeeded {
            bail!(
                "run {label}: {:?} {:?} {:?}",
                execution.status(),
                execution.error(),
                execution.cause()
            );
        }
        let refreshed = output
            .pointer("/report/totals/refreshed")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        if refreshed != mix.total() {
            bail!(
                "run {label}: {refreshed} stacks refreshed, expected {}: {output:#}",
                mix.total()
            );
        }
        // The INLINE twin's LoadMapItems puts the map's items here (the DISTRIBUTED map
        // reads them from S3 and shows no iterations).
        let stacks: Vec<String> = output
            .pointer("/map_items/stacks")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut events = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .sfn
                .get_execution_history()
                .execution_arn(&execution_arn)
                .set_next_token(token)
                .send()
                .await?;
            events.extend(page.events().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(Run {
            label: label.to_string(),
            mix,
            events,
            stacks,
            took,
        })
    }
}

impl Run {
    fn entered(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| e.state_entered_event_details().map(|d| d.name()))
            .collect()
    }

    /// State transitions: one per state entered.
    fn transitions(&self) -> usize {
        self.entered().len()
    }

    /// Each map iteration: its stack, its events (MapIterationStarted..Succeeded
    /// inclusive) and the states it entered.
    fn iterations(&self) -> Vec<Iteration> {
        let mut done = Vec::new();
        let mut current: Option<Iteration> = None;
        for e in &self.events {
            if let Some(d) = e.map_iteration_started_event_details() {
                current = Some(Iteration {
                    stack: self
                        .stacks
                        .get(d.index() as usize)
                        .cloned()
                        .unwrap_or_default(),
                    events: 0,
                    entered: Vec::new(),
                });
            }
            if let Some(c) = current.as_mut() {
                c.events += 1;
                if let Some(d) = e.state_entered_event_details() {
                    c.entered.push(d.name().to_string());
                }
            }
            if matches!(
                e.r#type(),
                HistoryEventType::MapIterationSucceeded | HistoryEventType::MapIterationFailed
            ) && let Some(c) = current.take()
            {
                done.push(c);
            }
        }
        done
    }
}

/// For each state inside the map: (events, entries) over the runs, counting the events
/// from its StateEntered to its StateExited.
fn state_costs(runs: &[&Run]) -> BTreeMap<String, (usize, usize)> {
    let mut costs: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for run in runs {
        let mut current: Option<String> = None;
        for e in &run.events {
            if let Some(d) = e.state_entered_event_details() {
                current = Some(d.name().to_string());
                costs.entry(d.name().to_string()).or_default().1 += 1;
            }
            if let Some(state) = &current {
                costs.entry(state.clone()).or_default().0 += 1;
            }
            if e.state_exited_event_details().is_some() {
                current = None;
            }
        }
    }
    // Only the iteration's states.
    let inner = [
        "Begin",
        "AfterBegin",
        "WaitForUpdate",
        "PollUpdate",
        "AfterPollUpdate",
        "Finish",
        "AfterFinish",
        "WaitForRestore",
        "PollRestore",
        "AfterPollRestore",
        "Restart",
        "AfterRestart",
        "WaitForRollout",
        "PollRollout",
        "AfterPollRollout",
        "RecordFailure",
        "StackDone",
    ];
    costs.retain(|state, _| inner.contains(&state.as_str()));
    costs
}

// ---------------------------------------------------------------------- payloads

/// A ticket as the gatekeeper writes it (label-updated event).
fn ticket(secret: &str, arn: Option<&str>, version: Option<&str>, i: usize) -> Ticket {
    Ticket {
        secret_id: secret.to_string(),
        secret_arn: Some(arn.map_or_else(
            || format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}-AbCdEf"),
            str::to_string,
        )),
        version_id: Some(version.map_or_else(
            || format!("a1b2c3d4-5678-90ab-cdef-{i:012}"),
            str::to_string,
        )),
        source: TicketSource::LabelUpdated,
        event_id: format!("7e2a3c1d-95b4-4f0e-8c36-{i:012}"),
        at: "2026-03-02T09:14:27Z".parse().ok(),
        actor: Some(format!("arn:aws:iam::{ACCOUNT}:role/rotation-lambda-role")),
        stacks: None,
    }
}

fn size(value: &impl serde::Serialize) -> usize {
    serde_json::to_vec(value).expect("serialisable").len()
}

fn verdict(bytes: usize) -> String {
    format!(
        "{bytes:>9} bytes  {:>5.1} % of 256 KiB{}",
        bytes as f64 * 100.0 / PAYLOAD_LIMIT as f64,
        if bytes > PAYLOAD_LIMIT {
            "  OVER THE LIMIT"
        } else {
            ""
        }
    )
}

fn payloads(args: &Args) -> anyhow::Result<()> {
    let n = args.stacks;
    let batch_id = "3f9c1a7b2d4e6f80".to_string();
    let stacks: Vec<String> = (0..n)
        .map(|i| stack_name("prod", i, args.name_length.get()))
        .collect();
    let discover = DiscoverResult {
        batch_id: batch_id.clone(),
        items_key: format!("batches/{batch_id}/map-items.json"),
        stack_count: n,
        wait_seconds: 30,
    };
    let execution = format!(
        "arn:aws:states:{REGION}:{ACCOUNT}:execution:secret-cascade-cascade:cascade-{batch_id}"
    );
    let input = |tickets: usize| ExecutionInput {
        batch_id: batch_id.clone(),
        tickets: (0..tickets)
            .map(|i| ticket(&format!("prod/service-{i:02}/db"), None, None, i))
            .collect(),
        secrets: (0..tickets)
            .map(|i| format!("prod/service-{i:02}/db"))
            .collect(),
        stacks: None,
        options: RunOptions {
            strategy: StrategyChoice::Auto,
            poll_seconds: 30,
        },
    };
    // The state after Discover (ResultPath $.discovery): the Map's input, Report's too.
    let state_after_discover = |tickets: usize| -> anyhow::Result<Value> {
        let mut state = serde_json::to_value(input(tickets))?;
        state["discovery"] = serde_json::to_value(&discover)?;
        Ok(state)
    };
    // The Lambda invoke result as Step Functions records it (TaskSucceeded output, what
    // ResultSelector reads): the payload plus the response metadata (typical values).
    let invoke_envelope = |payload: Value| {
        json!({
            "ExecutedVersion": "$LATEST",
            "Payload": payload,
            "SdkHttpMetadata": {
                "AllHttpHeaders": {
                    "X-Amz-Executed-Version": ["$LATEST"],
                    "x-amzn-Remapped-Content-Length": ["0"],
                    "Connection": ["keep-alive"],
                    "x-amzn-RequestId": ["0f6a4d3c-8e1b-4b7a-9c2d-5e6f7a8b9c0d"],
                    "Content-Length": ["123456"],
                    "Date": ["Mon, 02 Mar 2026 09:14:30 GMT"],
                    "X-Amzn-Trace-Id": ["Root=1-65e2ed06-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0"],
                    "Content-Type": ["application/json"]
                },
                "HttpHeaders": {
                    "Connection": "keep-alive",
                    "Content-Length": "123456",
                    "Content-Type": "application/json",
                    "Date": "Mon, 02 Mar 2026 09:14:30 GMT",
                    "X-Amz-Executed-Version": "$LATEST",
                    "x-amzn-Remapped-Content-Length": "0",
                    "x-amzn-RequestId": "0f6a4d3c-8e1b-4b7a-9c2d-5e6f7a8b9c0d",
                    "X-Amzn-Trace-Id": "Root=1-65e2ed06-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0"
                },
                "HttpStatusCode": 200
            },
            "SdkResponseMetadata": {"RequestId": "0f6a4d3c-8e1b-4b7a-9c2d-5e6f7a8b9c0d"},
            "StatusCode": 200
        })
    };
    let item =
        json!({"batch_id": batch_id, "stack": stacks[n.saturating_sub(1)], "wait_seconds": 30});
    let step = StepResult {
        batch_id: batch_id.clone(),
        stack: stacks[n.saturating_sub(1)].clone(),
        next: Next::Wait,
        wait_seconds: 30,
    };
    // A failed iteration ends with RecordFailure (ResultPath null): its output is its input,
    // the failed step's input plus the caught error; the Cause is the Lambda error body.
    let failed_output = json!({
        "batch_id": batch_id,
        "stack": stacks[n.saturating_sub(1)],
        "next": "wait",
        "wait_seconds": 30,
        "error": {
            "Error": "StackUpdateFailed",
            "Cause": json!({
                "errorType": "StackUpdateFailed",
                "errorMessage": format!(
                    "stack {} ended UPDATE_ROLLBACK_COMPLETE: The following resource(s) failed to update: [Service]. Resource handler returned message: \"Invalid request provided: Secret version not found (Service: AppRunner, Status Code: 400)\"",
                    stacks[n.saturating_sub(1)]
                )
            }).to_string()
        }
    });

    println!();
    println!(
        "payload sizes at {n} stacks, names of {} characters (limit 256 KiB = {PAYLOAD_LIMIT} bytes)",
        args.name_length.get()
    );
    println!(
        "  DiscoverResult (Discover's Payload)                  {}",
        verdict(size(&discover))
    );
    println!(
        "  Discover's invoke result (Payload + metadata, est.)  {}",
        verdict(size(&invoke_envelope(serde_json::to_value(&discover)?)))
    );
    for tickets in [1, 10, 50] {
        println!(
            "  state after Discover = Map input, {tickets:>2} ticket(s)      {}",
            verdict(size(&state_after_discover(tickets)?))
        );
    }
    let report_payload = json!({"execution": execution, "input": state_after_discover(10)?});
    println!(
        "  Report's invoke payload ({{execution, input: $}}, 10 t.) {}",
        verdict(size(&report_payload))
    );
    println!(
        "  one child's input (ItemSelector)                     {}",
        verdict(size(&item))
    );
    println!(
        "  StepResult (every refresh step's result)             {}",
        verdict(size(&step))
    );
    println!(
        "  refresh invoke result (Payload + metadata, est.)     {}",
        verdict(size(&invoke_envelope(serde_json::to_value(&step)?)))
    );
    // Without ResultWriter the map's result is the array of every child's output; the state
    // applies ResultPath null only afterwards. Whether the 256 KiB limit applies to that raw
    // array in AWS is not something moto can tell: these sizes say when it would matter.
    let ok_array = (0..n)
        .map(|i| {
            serde_json::to_value(StepResult {
                batch_id: batch_id.clone(),
                stack: stacks[i].clone(),
                next: Next::Done,
                wait_seconds: 30,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "  map result array, every stack refreshed              {}",
        verdict(size(&ok_array))
    );
    let failed_array = vec![failed_output.clone(); n];
    println!(
        "  map result array, every stack failed                 {}",
        verdict(size(&failed_array))
    );
    // Every child ends in StackDone (OutputPath null): its output is `{}`.
    let done_array = vec![json!({}); n];
    println!(
        "  map result array, as the children end (StackDone {{}}) {}",
        verdict(size(&done_array))
    );
    println!(
        "  the stack names are in S3 (map-items.json, read by the map's ItemReader): no payload above grows with the names; the map result grows by 3 bytes a stack, so {} stacks fill 256 KiB",
        PAYLOAD_LIMIT / 3
    );
    Ok(())
}
