//! End-to-end refresh against the local stack, through the library exactly as `cascade run`
//! drives it: `plan_secrets`, `start_batch`, `run_batch` (interrupted twice and resumed),
//! `Refresher::restore`, `mark_failed_for_retry`, with the real SDK against moto and the
//! batch's state in an S3 bucket of the local stack.
//!
//! The fixture account is `tests/fixtures/refresh` (its `stacks.json` says what each stack
//! is for). Every check looks at what moto really holds afterwards: GetTemplate (Original),
//! DescribeStacks, ListStackResources / DescribeStackResources, DescribeStackEvents, and at
//! the report and the saved state.
//!
//! moto facts the checks rely on (see also shared notes/moto.md):
//! - updates complete at once; each successful update records exactly one stack-level
//!   UPDATE_COMPLETE event, a rolled-back one UPDATE_ROLLBACK_COMPLETE instead, so counting
//!   UPDATE_COMPLETE tells how many updates a stack went through (recreate 2, pin 1);
//! - the launcher rolls back any update whose template text contains
//!   `MotoSimulateUpdateFailure`. The marker travels with the template: a stack whose
//!   ORIGINAL carries it in the recreate closure can never be restored in moto (every
//!   restore re-sends the marker), so "restore brings it back" is shown on a stack whose
//!   batch was stopped right after its removal update instead;
//! - moto's DescribeStacks shows NoEcho values unmasked (AWS shows `****`);
//! - UsePreviousValue of a parameter left at its Default fails in moto (HTTP 500), so the
//!   fixtures pass every parameter explicitly;
//! - AWS::Serverless::Function (SAM, not transformed by moto) is a no-op resource with no
//!   logical id in ListStackResources.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_cloudformation::Client as CloudFormation;
use aws_sdk_cloudformation::types::{Capability, Parameter, Stack, TemplateStage};
use cascade_aws::Clients;
use cascade_aws::discovery::plan_secrets;
use cascade_aws::refresh::{PollPolicy, RefreshSettings, Refresher};
use cascade_aws::run::{Observer, Quiet, RunEvent, RunSummary, mark_failed_for_retry, run_batch};
use cascade_aws::secrets::resolve_secrets;
use cascade_aws::store::Store;
use cascade_core::batch::{BatchManifest, keys};
use cascade_core::plan::{Strategy, StrategyChoice};
use cascade_core::refresh::StackState;
use cascade_core::refresh::UpdateProgress;
use cascade_core::report::{Outcome, Phase, Report, StackReport};
use cascade_core::secret::Secret;
use cascade_core::template::read_template;
use cascade_tests::fixtures::{self, FAILURE_MARKER, Seeded};
use cascade_tests::{LocalStack, workspace_root};
use serde_json::Value;

const BUCKET: &str = "cascade-e2e-state";
const PREFIX: &str = "cascade/";
const BATCH: &str = "e2e-batch-1";
const PIN_BATCH: &str = "e2e-batch-2";
/// The NoEcho value of a07-noecho (tests/fixtures/refresh/stacks.json).
const NOECHO_VALUE: &str = "noecho-token-2f9c41d7e5";

fn fixture_dir() -> std::path::PathBuf {
    workspace_root().join("tests/fixtures/refresh")
}

async fn start() -> anyhow::Result<LocalStack> {
    tokio::task::spawn_blocking(LocalStack::start).await?
}

fn poll() -> RefreshSettings {
    RefreshSettings {
        poll: PollPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            max_wait: Duration::from_secs(30),
        },
        execution_role_arn: None,
    }
}

async fn s3_refresher(clients: &Clients) -> anyhow::Result<Refresher> {
    clients
        .s3
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .context("CreateBucket")?;
    Ok(Refresher {
        clients: clients.clone(),
        store: Store::S3 {
            client: clients.s3.clone(),
            bucket: BUCKET.into(),
            prefix: PREFIX.into(),
        },
        settings: poll(),
    })
}

// ------------------------------------------------------------------ what moto holds

/// Everything the checks compare before and after.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    status: String,
    template: String,
    parameters: Vec<(String, String)>,
    outputs: BTreeMap<String, String>,
    /// Logical id → physical id (ListStackResources; entries without a logical id, moto's
    /// no-op resources, left out).
    resources: BTreeMap<String, String>,
}

async fn describe(cfn: &CloudFormation, name: &str) -> anyhow::Result<Stack> {
    let out = cfn
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .with_context(|| format!("DescribeStacks {name}"))?;
    out.stacks()
        .first()
        .cloned()
        .with_context(|| format!("no stack {name}"))
}

async fn template(cfn: &CloudFormation, name: &str) -> anyhow::Result<String> {
    let out = cfn
        .get_template()
        .stack_name(name)
        .template_stage(TemplateStage::Original)
        .send()
        .await
        .with_context(|| format!("GetTemplate {name}"))?;
    Ok(out.template_body().unwrap_or_default().to_string())
}

async fn resources(cfn: &CloudFormation, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut found = BTreeMap::new();
    let mut pages = cfn
        .list_stack_resources()
        .stack_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for r in page
            .with_context(|| format!("ListStackResources {name}"))?
            .stack_resource_summaries()
        {
            let id = r.logical_resource_id().unwrap_or_default();
            if !id.is_empty() {
                found.insert(
                    id.to_string(),
                    r.physical_resource_id().unwrap_or_default().to_string(),
                );
            }
        }
    }
    Ok(found)
}

/// Logical ids DescribeStackResources lists (a second view of the same thing).
async fn described_resources(cfn: &CloudFormation, name: &str) -> anyhow::Result<Vec<String>> {
    let out = cfn
        .describe_stack_resources()
        .stack_name(name)
        .send()
        .await
        .with_context(|| format!("DescribeStackResources {name}"))?;
    let mut ids: Vec<String> = out
        .stack_resources()
        .iter()
        .filter_map(|r| r.logical_resource_id())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    ids.sort();
    Ok(ids)
}

async fn snapshot(cfn: &CloudFormation, name: &str) -> anyhow::Result<Snapshot> {
    let stack = describe(cfn, name).await?;
    Ok(Snapshot {
        status: stack
            .stack_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        template: template(cfn, name).await?,
        parameters: parameters(&stack),
        outputs: stack
            .outputs()
            .iter()
            .filter_map(|o| {
                Some((
                    o.output_key()?.to_string(),
                    o.output_value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        resources: resources(cfn, name).await?,
    })
}

fn parameters(stack: &Stack) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = stack
        .parameters()
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_key()?.to_string(),
                p.parameter_value().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    params.sort();
    params
}

/// Stack events, oldest first: (logical id, resource type, status).
async fn events(cfn: &CloudFormation, name: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut all = Vec::new();
    let mut pages = cfn
        .describe_stack_events()
        .stack_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for e in page
            .with_context(|| format!("DescribeStackEvents {name}"))?
            .stack_events()
        {
            all.push((
                e.logical_resource_id().unwrap_or_default().to_string(),
                e.resource_type().unwrap_or_default().to_string(),
                e.resource_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            ));
        }
    }
    all.reverse();
    Ok(all)
}

/// How many updates of the stack completed (stack-level UPDATE_COMPLETE events).
async fn updates_completed(cfn: &CloudFormation, name: &str) -> anyhow::Result<usize> {
    Ok(events(cfn, name)
        .await?
        .iter()
        .filter(|(id, kind, status)| {
            id == name && kind == "AWS::CloudFormation::Stack" && status == "UPDATE_COMPLETE"
        })
        .count())
}

// ------------------------------------------------------------------ the engine's side

/// Records every event and sets the cancel flag once when a stack enters a given phase.
struct Interrupt {
    cancel: Arc<AtomicBool>,
    at: Mutex<Option<(String, Phase)>>,
    seen: Mutex<Vec<RunEvent>>,
}

impl Interrupt {
    fn new(at: Option<(&str, Phase)>) -> Self {
        Interrupt {
            cancel: Arc::new(AtomicBool::new(false)),
            at: Mutex::new(at.map(|(s, p)| (s.to_string(), p))),
            seen: Mutex::new(Vec::new()),
        }
    }

    fn seen(&self) -> Vec<RunEvent> {
        self.seen.lock().unwrap().clone()
    }
}

impl Observer for Interrupt {
    fn event(&self, event: &RunEvent) {
        self.seen.lock().unwrap().push(event.clone());
        if let RunEvent::Phase { stack, phase } = event {
            let mut at = self.at.lock().unwrap();
            if at.as_ref().is_some_and(|(s, p)| s == stack && p == phase) {
                *at = None;
                self.cancel.store(true, Ordering::SeqCst);
            }
        }
    }
}

fn started(events: &[RunEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::StackStarted { stack, .. } => Some(stack.clone()),
            _ => None,
        })
        .collect()
}

/// Runs (or resumes) the batch once, timing it and counting its API calls.
async fn timed_run(
    refresher: &Refresher,
    manifest: BatchManifest,
    observer: &Interrupt,
    figures: &mut Figures,
) -> anyhow::Result<RunSummary> {
    let before = refresher.clients.calls.snapshot();
    let t0 = Instant::now();
    let summary = run_batch(refresher, manifest, observer, &observer.cancel).await?;
    figures.run_wall += t0.elapsed();
    figures.runs += 1;
    for (op, n) in refresher.clients.calls.snapshot() {
        let d = n - before.get(&op).copied().unwrap_or(0);
        if d > 0 {
            *figures.calls.entry(op).or_default() += d;
        }
    }
    Ok(summary)
}

#[derive(Default)]
struct Figures {
    run_wall: Duration,
    runs: usize,
    calls: BTreeMap<String, u64>,
}

fn state_of<'a>(states: &'a [StackState], name: &str) -> &'a StackState {
    states
        .iter()
        .find(|s| s.stack_name == name)
        .unwrap_or_else(|| panic!("no state for {name}"))
}

fn line<'a>(report: &'a Report, name: &str) -> &'a StackReport {
    report
        .stacks
        .iter()
        .find(|s| s.stack_name == name)
        .unwrap_or_else(|| panic!("{name} is not in the report"))
}

fn seeded_body<'a>(seeded: &'a Seeded, name: &str) -> &'a str {
    &seeded
        .stacks
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} was not seeded"))
        .template_body
}

fn version_of(secrets: &[Secret], name: &str) -> String {
    secrets
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.version_id.clone())
        .unwrap_or_else(|| panic!("{name} has no current version"))
}

/// Every object of the store, key → bytes.
async fn store_objects(store: &Store) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut objects = BTreeMap::new();
    for key in store.list("").await? {
        let body = store.get(&key).await?.unwrap_or_default();
        objects.insert(key, body);
    }
    Ok(objects)
}

/// Checks a pinned queue template: the reference names `version`, and the pin is recorded
/// once in `Metadata.SecretCascade.Pins`.
fn assert_pinned(body: &str, secret: &Secret, version: &str) {
    let expected =
        format!("{{{{resolve:secretsmanager:e2e/pin:SecretString:password::{version}}}}}");
    let template = read_template(body).expect("the pinned template reads");
    assert_eq!(
        template.pointer("/Resources/Jobs/Properties/Tags/0/Value"),
        Some(&Value::String(expected)),
        "{body}"
    );
    let pins = template
        .pointer("/Metadata/SecretCascade/Pins")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no Metadata.SecretCascade.Pins in {body}"));
    assert_eq!(pins.len(), 1, "{pins:?}");
    assert_eq!(pins[0]["VersionId"], version);
    assert_eq!(pins[0]["SecretArn"], secret.arn.as_str());
    assert_eq!(pins[0]["Path"], "Resources.Jobs.Properties.Tags[0].Value");
    // Nothing else of the template changed.
    assert_eq!(
        template.pointer("/Resources/Jobs/Properties/VisibilityTimeout"),
        Some(&Value::from(300))
    );
}

// ------------------------------------------------------------------ the batch

/// The fixture account: 13 stacks to refresh, one opted out, one unrelated. The batch is
/// interrupted twice (when a05 enters phase remove, and right after a08's removal update),
/// resumed each time; a08 is restored by hand while its resources are removed. Then a
/// second batch pins the queue to the secret's next version.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_stacks_is_refreshed_one_at_a_time_and_resumes_after_interruptions()
-> anyhow::Result<()> {
    let test_started = Instant::now();
    let local = start().await?;
    let config = local.sdk_config().await;
    let seeded = fixtures::seed(&config, &fixture_dir())
        .await
        .with_context(|| format!("seeding failed; server log:\n{}", local.log_tail()))?;
    let seeded_in = test_started.elapsed();
    let clients = local.clients().await;
    let cfn = clients.cloudformation.clone();
    let refresher = s3_refresher(&clients).await?;

    let names: Vec<String> = seeded.stacks.iter().map(|s| s.name.clone()).collect();
    let mut before = BTreeMap::new();
    for name in &names {
        before.insert(name.clone(), snapshot(&cfn, name).await?);
    }

    // Plan.
    let secrets = resolve_secrets(&clients, &seeded.changed_secrets).await?;
    let calls_before_plan = clients.calls.snapshot();
    let t_plan = Instant::now();
    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Auto, 8).await?;
    let plan_wall = t_plan.elapsed();
    let plan_calls = diff(&calls_before_plan, &clients.calls.snapshot());
    let planned: Vec<(&str, Strategy)> = plan
        .stacks
        .iter()
        .map(|p| (p.stack_name.as_str(), p.strategy))
        .collect();
    let recreate = |n| (n, Strategy::Recreate);
    assert_eq!(
        planned,
        [
            recreate("a01-function"),
            ("a02-pin-queue", Strategy::Pin),
            recreate("a03-removal-fails"),
            recreate("a04-restore-fails"),
            recreate("a05-interrupt-remove"),
            recreate("a06-sam"),
            recreate("a07-noecho"),
            recreate("a08-interrupt-begin"),
            recreate("a09-large"),
            recreate("a10-iam-user"),
            recreate("a11-two-secrets"),
            recreate("a12-deleted"),
            recreate("a13-ssm-api"),
        ]
    );
    let skipped: Vec<&str> = plan.skipped.iter().map(|s| s.stack_name.as_str()).collect();
    assert_eq!(skipped, ["a14-opted-out"]);
    let two = plan
        .stacks
        .iter()
        .find(|p| p.stack_name == "a11-two-secrets")
        .unwrap();
    assert_eq!(two.secrets, ["e2e/api", "e2e/db"]);
    let stacks_in_batch = plan.stacks.len();

    // Deleted after planning, before the run.
    cfn.delete_stack().stack_name("a12-deleted").send().await?;
    assert!(
        cfn.describe_stacks()
            .stack_name("a12-deleted")
            .send()
            .await
            .is_err(),
        "a12-deleted should be gone"
    );

    let manifest = refresher
        .batches()
        .start(BATCH, "e2e-test", &secrets, StrategyChoice::Auto, plan)
        .await?;
    let mut figures = Figures::default();

    // Run 1: interrupted when a05 enters phase remove. Its removal update has completed by
    // then (moto is synchronous), so the step goes on to issue the restore before the flag
    // is looked at again.
    let first = Interrupt::new(Some(("a05-interrupt-remove", Phase::Remove)));
    let run1 = timed_run(&refresher, manifest, &first, &mut figures).await?;
    assert!(run1.interrupted);
    assert!(run1.report.finished_at.is_none());
    assert_eq!(
        started(&first.seen()),
        [
            "a01-function",
            "a02-pin-queue",
            "a03-removal-fails",
            "a04-restore-fails",
            "a05-interrupt-remove"
        ]
    );
    let manifest = refresher.batches().manifest(BATCH).await?;
    let states = refresher.batches().states(&manifest).await?;
    let a05 = state_of(&states, "a05-interrupt-remove");
    assert_eq!((a05.outcome, a05.phase), (None, Phase::Restore), "{a05:?}");
    assert!(
        line(&run1.report, "a05-interrupt-remove")
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("cascade run --resume {BATCH}")),
        "{:?}",
        line(&run1.report, "a05-interrupt-remove")
    );

    // Run 2: resumed; interrupted right after a08's removal update (the flag is set when it
    // enters phase begin, and looked at again once begin has issued the update).
    let second = Interrupt::new(Some(("a08-interrupt-begin", Phase::Begin)));
    let run2 = timed_run(&refresher, manifest, &second, &mut figures).await?;
    assert!(run2.interrupted);
    assert_eq!(
        started(&second.seen()),
        [
            "a05-interrupt-remove",
            "a06-sam",
            "a07-noecho",
            "a08-interrupt-begin"
        ],
        "stacks decided in run 1 are not started again"
    );
    let manifest = refresher.batches().manifest(BATCH).await?;
    let states = refresher.batches().states(&manifest).await?;
    let a08 = state_of(&states, "a08-interrupt-begin");
    assert_eq!((a08.outcome, a08.phase), (None, Phase::Remove), "{a08:?}");
    assert!(a08.update_issued_at.is_some());
    // In moto, a08 is now without its closure: Function, FunctionArn and the output.
    let removed = snapshot(&cfn, "a08-interrupt-begin").await?;
    assert_eq!(
        removed.resources.keys().collect::<Vec<_>>(),
        ["Role"],
        "{removed:?}"
    );
    assert!(!removed.outputs.contains_key("FunctionName"));
    assert_ne!(removed.template, before["a08-interrupt-begin"].template);

    // The way out of a batch that died half-way: restore the saved original by hand.
    let look = refresher
        .restore(
            BATCH,
            "a08-interrupt-begin",
            &Arc::new(AtomicBool::new(false)),
        )
        .await?;
    assert_eq!(look.progress, UpdateProgress::Complete, "{look:?}");
    let restored = snapshot(&cfn, "a08-interrupt-begin").await?;
    let original = &before["a08-interrupt-begin"];
    assert_eq!(restored.template, original.template, "byte for byte");
    assert_eq!(
        restored.template,
        seeded_body(&seeded, "a08-interrupt-begin")
    );
    assert_eq!(restored.parameters, original.parameters);
    assert_eq!(
        restored.resources.keys().collect::<Vec<_>>(),
        original.resources.keys().collect::<Vec<_>>()
    );
    assert_ne!(
        restored.resources["Function"], original.resources["Function"],
        "the function was created again"
    );

    // Run 3: resumed to the end. a08's own restore now finds nothing to do.
    let third = Interrupt::new(None);
    let run3 = timed_run(&refresher, manifest, &third, &mut figures).await?;
    assert!(!run3.interrupted);
    assert_eq!(
        started(&third.seen()),
        [
            "a08-interrupt-begin",
            "a09-large",
            "a10-iam-user",
            "a11-two-secrets",
            "a12-deleted",
            "a13-ssm-api"
        ]
    );
    let report = run3.report.clone();
    let manifest = refresher.batches().manifest(BATCH).await?;
    let states = refresher.batches().states(&manifest).await?;

    // ---- the report
    let outcomes: BTreeMap<&str, Outcome> = report
        .stacks
        .iter()
        .map(|s| (s.stack_name.as_str(), s.outcome))
        .collect();
    let expected: BTreeMap<&str, Outcome> = [
        ("a01-function", Outcome::Refreshed),
        ("a02-pin-queue", Outcome::Refreshed),
        ("a03-removal-fails", Outcome::Failed),
        ("a04-restore-fails", Outcome::Degraded),
        ("a05-interrupt-remove", Outcome::Refreshed),
        ("a06-sam", Outcome::Refreshed),
        ("a07-noecho", Outcome::Refreshed),
        ("a08-interrupt-begin", Outcome::Refreshed),
        ("a09-large", Outcome::Refreshed),
        ("a10-iam-user", Outcome::Refreshed),
        ("a11-two-secrets", Outcome::Refreshed),
        ("a12-deleted", Outcome::Skipped),
        ("a13-ssm-api", Outcome::Refreshed),
        ("a14-opted-out", Outcome::Skipped),
    ]
    .into_iter()
    .collect();
    assert_eq!(outcomes, expected, "{report:#?}");
    assert_eq!(
        (
            report.totals.refreshed,
            report.totals.failed,
            report.totals.degraded,
            report.totals.skipped
        ),
        (10, 1, 1, 2)
    );
    assert_eq!(report.stacks[0].stack_name, "a04-restore-fails");
    assert_eq!(report.stacks[1].stack_name, "a03-removal-fails");
    assert!(report.finished_at.is_some());
    assert_eq!(report.batch_id, BATCH);
    let reported_secrets: Vec<(&str, Option<&str>)> = report
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), s.version_id.as_deref()))
        .collect();
    let wanted_secrets: Vec<(&str, Option<&str>)> = secrets
        .iter()
        .map(|s| (s.name.as_str(), s.version_id.as_deref()))
        .collect();
    assert_eq!(reported_secrets, wanted_secrets);
    for s in &states {
        assert_eq!(
            Some(line(&report, &s.stack_name).outcome),
            s.outcome,
            "state and report agree on {}",
            s.stack_name
        );
        assert_eq!(s.attempt, 1);
    }
    // The saved report is the one returned.
    let saved_json = refresher
        .store
        .get(&keys::report_json(BATCH))
        .await?
        .context("no report.json in the store")?;
    let saved: Report = serde_json::from_slice(&saved_json)?;
    assert_eq!(saved, report);
    let saved_md = refresher
        .store
        .get(&keys::report_markdown(BATCH))
        .await?
        .context("no report.md in the store")?;
    let markdown = String::from_utf8(saved_md.clone())?;
    for name in outcomes.keys() {
        assert!(markdown.contains(name), "{name} missing from the Markdown");
    }
    assert_eq!(
        run3.report_location,
        format!("s3://{BUCKET}/{PREFIX}reports/{BATCH}/report.json")
    );

    // ---- recreate success (a01): removed and put back, byte for byte.
    let after = snapshot(&cfn, "a01-function").await?;
    let was = &before["a01-function"];
    assert_eq!(after.template, was.template);
    assert_eq!(after.template, seeded_body(&seeded, "a01-function"));
    assert_eq!(after.parameters, was.parameters);
    assert_eq!(
        after.parameters,
        [
            ("Stage".to_string(), "prod".to_string()),
            ("Team".to_string(), "platform".to_string())
        ]
    );
    assert_eq!(after.status, "UPDATE_COMPLETE");
    assert_eq!(
        after.resources.keys().collect::<Vec<_>>(),
        ["Function", "FunctionArn", "Role"]
    );
    assert_eq!(
        described_resources(&cfn, "a01-function").await?,
        ["Function", "FunctionArn", "Role"]
    );
    assert_ne!(after.resources["Function"], was.resources["Function"]);
    assert_eq!(
        after.resources["Role"], was.resources["Role"],
        "not in the closure"
    );
    assert_eq!(after.outputs["FunctionName"], after.resources["Function"]);
    let a01 = line(&report, "a01-function");
    assert_eq!(a01.strategy, Some(Strategy::Recreate));
    assert_eq!(a01.resources, ["Function"]);
    assert_eq!(a01.phase, Phase::Done);

    // ---- pin (a02): one update naming the version, recorded in the Metadata.
    let pin_secret = secrets.iter().find(|s| s.name == "e2e/pin").unwrap();
    let first_version = version_of(&secrets, "e2e/pin");
    let pinned = snapshot(&cfn, "a02-pin-queue").await?;
    assert_pinned(&pinned.template, pin_secret, &first_version);
    assert_eq!(
        pinned.resources, before["a02-pin-queue"].resources,
        "pinned in place: no queue replaced"
    );
    assert_eq!(line(&report, "a02-pin-queue").strategy, Some(Strategy::Pin));
    assert_eq!(line(&report, "a02-pin-queue").phase, Phase::Done);

    // ---- removal fails (a03): failed, intact, the failed resource named.
    let a03 = line(&report, "a03-removal-fails");
    assert_eq!(a03.phase, Phase::Remove);
    let failed_ids: Vec<(&str, &str)> = a03
        .failed_resources
        .iter()
        .map(|r| (r.logical_id.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(failed_ids, [("Guard", "UPDATE_FAILED")], "{a03:?}");
    assert!(
        a03.reason
            .as_deref()
            .unwrap_or_default()
            .contains("rolled back"),
        "{a03:?}"
    );
    assert!(a03.restore_command.is_none());
    let intact = snapshot(&cfn, "a03-removal-fails").await?;
    assert_eq!(intact.status, "UPDATE_ROLLBACK_COMPLETE");
    assert_eq!(intact.template, before["a03-removal-fails"].template);
    assert_eq!(intact.resources, before["a03-removal-fails"].resources);
    assert!(
        events(&cfn, "a03-removal-fails")
            .await?
            .iter()
            .any(|(id, _, status)| id == "Guard" && status == "UPDATE_FAILED")
    );

    // ---- restore fails (a04): degraded, with the command that restores it.
    let a04 = line(&report, "a04-restore-fails");
    assert_eq!(a04.phase, Phase::Restore);
    assert_eq!(
        a04.restore_command.as_deref(),
        Some(
            format!(
                "cascade restore --stack a04-restore-fails --batch {BATCH} --bucket {BUCKET} --region us-east-1"
            )
            .as_str()
        )
    );
    assert_eq!(
        a04.failed_resources
            .iter()
            .map(|r| r.logical_id.as_str())
            .collect::<Vec<_>>(),
        ["Function"]
    );
    let degraded = snapshot(&cfn, "a04-restore-fails").await?;
    assert_eq!(degraded.resources.keys().collect::<Vec<_>>(), ["Role"]);
    assert!(!degraded.template.contains(FAILURE_MARKER));
    // The restore command re-sends the original, byte for byte: in moto the original
    // carries the failure marker in Function, so that update is rolled back too (a second
    // UPDATE_FAILED on Function) and the stack stays without Function.
    let look = refresher
        .restore(
            BATCH,
            "a04-restore-fails",
            &Arc::new(AtomicBool::new(false)),
        )
        .await?;
    assert_eq!(look.progress, UpdateProgress::RolledBack, "{look:?}");
    let function_failures = events(&cfn, "a04-restore-fails")
        .await?
        .iter()
        .filter(|(id, _, status)| id == "Function" && status == "UPDATE_FAILED")
        .count();
    assert_eq!(function_failures, 2);

    // ---- interrupted and resumed (a05, a08): refreshed, each updated exactly twice.
    for name in ["a05-interrupt-remove", "a08-interrupt-begin"] {
        let now = snapshot(&cfn, name).await?;
        assert_eq!(now.template, before[name].template, "{name}");
        assert_eq!(now.parameters, before[name].parameters, "{name}");
        assert_eq!(
            now.resources.keys().collect::<Vec<_>>(),
            ["Function", "FunctionArn", "Role"],
            "{name}"
        );
        assert_eq!(line(&report, name).outcome, Outcome::Refreshed, "{name}");
    }

    // ---- SAM (a06): the transform expands Ingest into a function and its role; recreating
    // Ingest removes and re-adds both (new physical ids), and nothing else: GetTemplate
    // still gives the template as written.
    let sam = snapshot(&cfn, "a06-sam").await?;
    assert!(
        sam.template
            .contains("Transform: AWS::Serverless-2016-10-31")
    );
    assert_eq!(sam.template, before["a06-sam"].template);
    assert_eq!(line(&report, "a06-sam").resources, ["Ingest"]);
    assert_eq!(
        sam.resources["Marker"], before["a06-sam"].resources["Marker"],
        "Marker untouched"
    );
    for generated in ["Ingest", "IngestRole"] {
        assert_ne!(
            sam.resources[generated], before["a06-sam"].resources[generated],
            "{generated} recreated"
        );
    }
    assert_eq!(sam.resources.len(), 3);

    // ---- NoEcho (a07): the value is kept (UsePreviousValue), and written nowhere in the
    // store, saved originals included.
    let noecho = snapshot(&cfn, "a07-noecho").await?;
    assert_eq!(noecho.parameters, before["a07-noecho"].parameters);
    let shown = noecho
        .parameters
        .iter()
        .find(|(k, _)| k == "ApiToken")
        .map(|(_, v)| v.as_str());
    eprintln!("moto shows the NoEcho parameter as {shown:?} (AWS shows ****)");
    assert!(
        shown == Some(NOECHO_VALUE) || shown == Some("****"),
        "{shown:?}"
    );
    assert_eq!(noecho.template, before["a07-noecho"].template);
    let objects = store_objects(&refresher.store).await?;
    assert!(objects.contains_key(&format!("batches/{BATCH}/originals/a07-noecho.json")));
    for (key, body) in &objects {
        assert!(
            !String::from_utf8_lossy(body).contains(NOECHO_VALUE),
            "the NoEcho value is in {key}"
        );
    }
    assert!(!markdown.contains(NOECHO_VALUE));

    // ---- large template (a09): both updates through TemplateURL, from the store.
    let large = snapshot(&cfn, "a09-large").await?;
    assert!(large.template.len() > 51_200, "{}", large.template.len());
    assert_eq!(large.template, before["a09-large"].template);
    assert_eq!(
        large.resources.keys().collect::<Vec<_>>(),
        ["Function", "FunctionArn", "Role"]
    );
    let uploaded: Vec<&String> = objects
        .keys()
        .filter(|k| k.contains("/templates/"))
        .collect();
    assert_eq!(
        uploaded,
        [
            &format!("batches/{BATCH}/templates/a09-large-original.json"),
            &format!("batches/{BATCH}/templates/a09-large-remove.json")
        ],
        "only the large stack goes through S3"
    );
    assert_eq!(
        objects[&format!("batches/{BATCH}/templates/a09-large-original.json")],
        large.template.as_bytes(),
        "the restore sent the original byte for byte"
    );
    let removal = read_template(&String::from_utf8_lossy(
        &objects[&format!("batches/{BATCH}/templates/a09-large-remove.json")],
    ))?;
    assert!(removal.pointer("/Resources/Function").is_none());
    assert!(removal.pointer("/Resources/Role").is_some());

    // ---- IAM (a10): the user and its key recreated (capabilities were accepted).
    let iam = snapshot(&cfn, "a10-iam-user").await?;
    let iam_was = &before["a10-iam-user"];
    assert_eq!(iam.template, iam_was.template);
    assert_eq!(
        iam.resources.keys().collect::<Vec<_>>(),
        ["AccessKey", "User"]
    );
    assert_ne!(iam.resources["AccessKey"], iam_was.resources["AccessKey"]);
    assert_eq!(iam.outputs["UserName"], iam.resources["User"]);

    // ---- two secrets (a11): one plan, one refresh.
    let a11 = line(&report, "a11-two-secrets");
    assert_eq!(a11.resources, ["Authorizer", "Gateway"]);
    let starts_of_a11 = [first.seen(), second.seen(), third.seen()]
        .iter()
        .flat_map(|e| started(e))
        .filter(|s| s == "a11-two-secrets")
        .count();
    assert_eq!(starts_of_a11, 1);

    // ---- deleted between plan and run (a12).
    let a12 = line(&report, "a12-deleted");
    assert!(
        a12.reason
            .as_deref()
            .unwrap_or_default()
            .contains("deleted"),
        "{a12:?}"
    );
    assert_eq!(a12.phase, Phase::Begin);

    // ---- a13, a14, z-unrelated.
    let ssm = snapshot(&cfn, "a13-ssm-api").await?;
    assert_eq!(ssm.template, before["a13-ssm-api"].template);
    assert_eq!(
        ssm.resources.keys().collect::<Vec<_>>(),
        ["ApiKey", "ApiKeyName", "Unrelated"]
    );
    assert_eq!(
        ssm.resources["Unrelated"],
        before["a13-ssm-api"].resources["Unrelated"]
    );
    assert!(
        line(&report, "a14-opted-out")
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("cascade:ignore")
    );
    assert!(!outcomes.contains_key("z-unrelated"));

    // ---- no stack refreshed twice: exact update counts.
    let expected_updates = [
        ("a01-function", 2),
        ("a02-pin-queue", 1),
        ("a03-removal-fails", 0),
        ("a04-restore-fails", 1),
        ("a05-interrupt-remove", 2),
        ("a06-sam", 2),
        ("a07-noecho", 2),
        // Removal by the batch, restore by hand; the batch's own restore then found
        // nothing to do ("No updates are to be performed").
        ("a08-interrupt-begin", 2),
        ("a09-large", 2),
        ("a10-iam-user", 2),
        ("a11-two-secrets", 2),
        ("a13-ssm-api", 2),
        ("a14-opted-out", 0),
        ("z-unrelated", 0),
    ];
    let mut counted = Vec::new();
    for (name, _) in expected_updates {
        counted.push((name, updates_completed(&cfn, name).await?));
    }
    assert_eq!(counted, expected_updates);

    // ---- figures
    let report_json_bytes = saved_json.len();
    let report_md_bytes = saved_md.len();
    let slack_bytes =
        cascade_core::report::slack::slack_message(&report, Some(&run3.report_location))
            .to_string()
            .len();
    eprintln!(
        "refresh e2e: {stacks_in_batch} stacks in the batch; seed {:.2} s, plan {:.3} s, \
         run_batch {:.3} s over {} runs ({:.1} ms per stack)",
        seeded_in.as_secs_f64(),
        plan_wall.as_secs_f64(),
        figures.run_wall.as_secs_f64(),
        figures.runs,
        figures.run_wall.as_secs_f64() * 1000.0 / stacks_in_batch as f64
    );
    print_calls("plan", &plan_calls, stacks_in_batch);
    print_calls("run_batch (3 runs)", &figures.calls, stacks_in_batch);
    eprintln!(
        "report sizes: JSON {report_json_bytes} B, Markdown {report_md_bytes} B, Slack payload {slack_bytes} B"
    );

    // ---- a second change of the pinned secret: a second batch pins the new version.
    clients
        .secrets
        .put_secret_value()
        .secret_id("e2e/pin")
        .secret_string(r#"{"password":"dummy-pin-password-2"}"#)
        .send()
        .await?;
    let secrets2 = resolve_secrets(&clients, &["e2e/pin".to_string()]).await?;
    let second_version = version_of(&secrets2, "e2e/pin");
    assert_ne!(second_version, first_version);
    let plan2 = plan_secrets(&clients, &secrets2, StrategyChoice::Auto, 8).await?;
    assert_eq!(
        plan2
            .stacks
            .iter()
            .map(|p| (p.stack_name.as_str(), p.strategy))
            .collect::<Vec<_>>(),
        [("a02-pin-queue", Strategy::Pin)],
        "skipped: {:?}",
        plan2.skipped
    );
    let manifest2 = refresher
        .batches()
        .start(
            PIN_BATCH,
            "e2e-test",
            &secrets2,
            StrategyChoice::Auto,
            plan2,
        )
        .await?;
    let summary2 = run_batch(
        &refresher,
        manifest2,
        &Quiet,
        &Arc::new(AtomicBool::new(false)),
    )
    .await?;
    assert_eq!(
        summary2.report.totals.refreshed, 1,
        "{:#?}",
        summary2.report
    );
    let repinned = template(&cfn, "a02-pin-queue").await?;
    assert_pinned(&repinned, pin_secret, &second_version);
    assert_eq!(updates_completed(&cfn, "a02-pin-queue").await?, 2);
    eprintln!(
        "refresh e2e: whole test {:.1} s",
        test_started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn diff(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(op, n)| {
            let d = n - before.get(op).copied().unwrap_or(0);
            (d > 0).then(|| (op.clone(), d))
        })
        .collect()
}

fn print_calls(what: &str, calls: &BTreeMap<String, u64>, stacks: usize) {
    let total: u64 = calls.values().sum();
    eprintln!(
        "API calls of {what}: {total} ({:.1} per stack)",
        total as f64 / stacks as f64
    );
    for (op, n) in calls {
        eprintln!(
            "  {op:<40} {n:>5}  ({:.2} per stack)",
            *n as f64 / stacks as f64
        );
    }
}

// ------------------------------------------------------------------ retry

const REMOVAL_FAILS: &str = "removal-fails.yaml";

/// The tag that makes a stack's refresh a recreate, whatever auto would choose.
fn recreate_tag() -> aws_sdk_cloudformation::types::Tag {
    aws_sdk_cloudformation::types::Tag::builder()
        .key("cascade:strategy")
        .value("recreate")
        .build()
}
const RESTORE_FAILS: &str = "restore-fails.yaml";

/// Creates a stack refreshed by recreate (auto would pin its dynamic references).
async fn create_stack(cfn: &CloudFormation, name: &str, body: &str) -> anyhow::Result<()> {
    create_stack_tagged(cfn, name, body, recreate_tag()).await
}

/// Creates a stack with one tag (e.g. the `cascade:strategy` it asks for).
async fn create_stack_tagged(
    cfn: &CloudFormation,
    name: &str,
    body: &str,
    tag: aws_sdk_cloudformation::types::Tag,
) -> anyhow::Result<()> {
    cfn.create_stack()
        .stack_name(name)
        .template_body(body)
        .tags(tag)
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .with_context(|| format!("CreateStack {name}"))?;
    Ok(())
}

/// `mark_failed_for_retry` after the cause of a failure is removed: the operator updates the
/// failed stack to drop the failure marker, retries the batch, and the stack ends refreshed,
/// re-planned from its current template (which is what the restore puts back, not the
/// template the first attempt saw). A degraded stack is retried too: its original is put
/// back first (in moto, that original carries the marker, so it stays degraded).
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_stack_is_refreshed_when_retried_after_its_cause_is_removed() -> anyhow::Result<()>
{
    let local = start().await?;
    let clients = local.clients().await;
    let cfn = clients.cloudformation.clone();
    clients
        .secrets
        .create_secret()
        .name("e2e/db")
        .secret_string(r#"{"username":"app","password":"dummy"}"#)
        .send()
        .await?;
    let dir = fixture_dir();
    let failing = std::fs::read_to_string(dir.join(REMOVAL_FAILS))?;
    let restore_fails = std::fs::read_to_string(dir.join(RESTORE_FAILS))?;
    create_stack(&cfn, "r1-removal-fails", &failing).await?;
    create_stack(&cfn, "r2-restore-fails", &restore_fails).await?;
    let refresher = s3_refresher(&clients).await?;

    let secrets = resolve_secrets(&clients, &["e2e/db".to_string()]).await?;
    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Auto, 8).await?;
    assert_eq!(plan.stacks.len(), 2);
    let manifest = refresher
        .batches()
        .start(
            "retry-batch",
            "e2e-test",
            &secrets,
            StrategyChoice::Auto,
            plan,
        )
        .await?;
    let cancel = Arc::new(AtomicBool::new(false));
    let first = run_batch(&refresher, manifest, &Quiet, &cancel).await?;
    assert_eq!(
        line(&first.report, "r1-removal-fails").outcome,
        Outcome::Failed
    );
    assert_eq!(
        line(&first.report, "r2-restore-fails").outcome,
        Outcome::Degraded
    );

    // The operator removes the cause: the same template without the marker.
    let fixed = failing.replace(
        "    Metadata:\n      Simulation: MotoSimulateUpdateFailure\n",
        "",
    );
    assert!(!fixed.contains(FAILURE_MARKER));
    cfn.update_stack()
        .stack_name("r1-removal-fails")
        .template_body(&fixed)
        .capabilities(Capability::CapabilityIam)
        .send()
        .await?;
    assert_eq!(
        describe(&cfn, "r1-removal-fails")
            .await?
            .stack_status()
            .map(|s| s.as_str()),
        Some("UPDATE_COMPLETE")
    );
    let fixed_resources = resources(&cfn, "r1-removal-fails").await?;

    let manifest = refresher.batches().manifest("retry-batch").await?;
    let mut retried = mark_failed_for_retry(&refresher, &manifest).await?;
    retried.sort();
    assert_eq!(retried, ["r1-removal-fails", "r2-restore-fails"]);
    let manifest = refresher.batches().manifest("retry-batch").await?;
    let second = run_batch(&refresher, manifest, &Quiet, &cancel).await?;
    let r1 = line(&second.report, "r1-removal-fails");
    assert_eq!(r1.outcome, Outcome::Refreshed, "{r1:#?}");
    let after = snapshot(&cfn, "r1-removal-fails").await?;
    assert_eq!(
        after.template, fixed,
        "the retry put back the stack as the operator left it"
    );
    assert_eq!(
        after.resources.keys().collect::<Vec<_>>(),
        fixed_resources.keys().collect::<Vec<_>>()
    );
    assert_ne!(after.resources["Function"], fixed_resources["Function"]);
    // The operator's update, then the retry's removal and restore.
    assert_eq!(updates_completed(&cfn, "r1-removal-fails").await?, 3);
    let manifest = refresher.batches().manifest("retry-batch").await?;
    let states = refresher.batches().states(&manifest).await?;
    assert_eq!(state_of(&states, "r1-removal-fails").attempt, 2);

    let r2 = line(&second.report, "r2-restore-fails");
    assert_eq!(r2.outcome, Outcome::Degraded, "{r2:#?}");
    assert_eq!(state_of(&states, "r2-restore-fails").attempt, 2);
    assert_eq!(
        resources(&cfn, "r2-restore-fails")
            .await?
            .keys()
            .collect::<Vec<_>>(),
        ["Role"]
    );
    Ok(())
}

// ------------------------------------------------------------------ NoEcho

/// A NoEcho parameter's value must not be written into the batch's state, saved originals
/// included: the original keeps it with UsePreviousValue (SavedOriginal's contract: `None`
/// for NoEcho parameters). AWS masks NoEcho values in DescribeStacks; moto does not, which
/// shows whether the engine relies on that masking or on the template's `NoEcho: true`
/// (it relied on the masking until the template's flag was read too). The stack is alone in
/// its account, so that a failure here points at nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn noecho_values_are_never_saved() -> anyhow::Result<()> {
    let local = start().await?;
    let clients = local.clients().await;
    let cfn = clients.cloudformation.clone();
    clients
        .secrets
        .create_secret()
        .name("e2e/db")
        .secret_string(r#"{"password":"dummy"}"#)
        .send()
        .await?;
    let body = std::fs::read_to_string(fixture_dir().join("noecho.yaml"))?;
    cfn.create_stack()
        .stack_name("noecho")
        .template_body(&body)
        .tags(recreate_tag())
        .capabilities(Capability::CapabilityIam)
        .parameters(
            Parameter::builder()
                .parameter_key("ApiToken")
                .parameter_value(NOECHO_VALUE)
                .build(),
        )
        .parameters(
            Parameter::builder()
                .parameter_key("Stage")
                .parameter_value("prod")
                .build(),
        )
        .send()
        .await?;
    let parameters_before = parameters(&describe(&cfn, "noecho").await?);
    let refresher = s3_refresher(&clients).await?;
    let secrets = resolve_secrets(&clients, &["e2e/db".to_string()]).await?;
    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Auto, 8).await?;
    let manifest = refresher
        .batches()
        .start(
            "noecho-batch",
            "e2e-test",
            &secrets,
            StrategyChoice::Auto,
            plan,
        )
        .await?;
    let summary = run_batch(
        &refresher,
        manifest,
        &Quiet,
        &Arc::new(AtomicBool::new(false)),
    )
    .await?;
    assert_eq!(summary.report.totals.refreshed, 1);
    assert_eq!(
        parameters(&describe(&cfn, "noecho").await?),
        parameters_before,
        "the value is kept"
    );
    let leaks: Vec<String> = store_objects(&refresher.store)
        .await?
        .into_iter()
        .filter(|(_, body)| String::from_utf8_lossy(body).contains(NOECHO_VALUE))
        .map(|(key, _)| key)
        .collect();
    assert!(
        leaks.is_empty(),
        "the NoEcho value of ApiToken is written into {leaks:?}"
    );
    Ok(())
}

// ------------------------------------------------------------------ change sets

/// A database whose user name and password both come from the secret. `MasterUsername`
/// is create-only: changing it makes CloudFormation replace the database.
const RDS: &str = "Resources:
  Db:
    Type: AWS::RDS::DBInstance
    Properties:
      Engine: postgres
      DBInstanceClass: db.t3.micro
      AllocatedStorage: '20'
      MasterUsername: '{{resolve:secretsmanager:e2e/rds:SecretString:username}}'
      MasterUserPassword: '{{resolve:secretsmanager:e2e/rds:SecretString:password}}'
";

/// A topic whose display name comes from the secret: recreate or pin both refresh it.
const TOPIC: &str = "Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: '{{resolve:secretsmanager:e2e/cs:SecretString:password}}'
  Keep:
    Type: AWS::CloudFormation::WaitConditionHandle
";

/// The CloudFormation calls among `calls`.
fn cloudformation_calls(calls: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    calls
        .iter()
        .filter(|(op, _)| op.starts_with("cloudformation:"))
        .map(|(op, n)| (op.clone(), *n))
        .collect()
}

fn count(calls: &BTreeMap<String, u64>, op: &str) -> u64 {
    calls.get(op).copied().unwrap_or(0)
}

/// The change sets moto holds for a stack (ListChangeSets; moto lists every stack's, so
/// they are kept by stack id).
async fn change_sets_of(cfn: &CloudFormation, stack_id: &str) -> anyhow::Result<Vec<String>> {
    let out = cfn
        .list_change_sets()
        .stack_name(stack_id)
        .send()
        .await
        .context("ListChangeSets")?;
    Ok(out
        .summaries()
        .iter()
        .filter(|s| s.stack_id() == Some(stack_id))
        .filter_map(|s| s.change_set_id().map(str::to_string))
        .collect())
}

async fn create_secret(clients: &Clients, name: &str, value: &str) -> anyhow::Result<()> {
    clients
        .secrets
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .with_context(|| format!("CreateSecret {name}"))?;
    Ok(())
}

async fn manifest_for(
    refresher: &Refresher,
    batch: &str,
    secrets: &[Secret],
    choice: StrategyChoice,
    plan: cascade_core::plan::Plan,
) -> anyhow::Result<BatchManifest> {
    Ok(refresher
        .batches()
        .create(BatchManifest::new(
            batch,
            "e2e-test",
            jiff::Timestamp::now(),
            secrets.to_vec(),
            choice,
            plan,
        ))
        .await?)
}

/// The safety net: a plan that pins a create-only property (as if the planner were wrong)
/// would make CloudFormation replace the database. The change set says `Replacement: True`
/// (the launcher's patch (e) fills it in moto from the create-only table), so the update is
/// refused: the change set is deleted, the stack is untouched (same template, no update
/// event), and the stack is `skipped` with a reason naming the database.
#[tokio::test(flavor = "multi_thread")]
async fn a_change_set_that_would_replace_a_database_is_refused_and_deleted() -> anyhow::Result<()> {
    let local = start().await?;
    let clients = local.clients().await;
    let cfn = clients.cloudformation.clone();
    create_secret(
        &clients,
        "e2e/rds",
        r#"{"username":"admin","password":"dummy"}"#,
    )
    .await?;
    create_stack(&cfn, "c1-rds", RDS).await?;
    let stack_id = describe(&cfn, "c1-rds")
        .await?
        .stack_id()
        .unwrap_or_default()
        .to_string();
    let events_before = events(&cfn, "c1-rds").await?;
    let template_before = template(&cfn, "c1-rds").await?;
    let refresher = s3_refresher(&clients).await?;

    let secrets = resolve_secrets(&clients, &["e2e/rds".to_string()]).await?;
    let mut plan = plan_secrets(&clients, &secrets, StrategyChoice::Pin, 8).await?;
    // Built by hand, not by the planner: a pin of EVERY reference of Db, MasterUsername
    // included, whatever the planner decided for it.
    let mut db_plan = match plan.stacks.iter().position(|p| p.stack_name == "c1-rds") {
        Some(i) => plan.stacks.remove(i),
        None => {
            let i = plan
                .skipped
                .iter()
                .position(|s| s.stack_name == "c1-rds")
                .context("c1-rds is neither planned nor skipped")?;
            let skipped = plan.skipped.remove(i);
            cascade_core::plan::StackPlan {
                stack_name: skipped.stack_name,
                stack_id: skipped.stack_id,
                strategy: Strategy::Pin,
                secrets: vec!["e2e/rds".into()],
                resources: vec!["Db".into()],
                closure: vec![],
                outputs: vec![],
                needs_placeholder: false,
                actions: vec![],
                references: skipped.references,
                template_digest: cascade_core::plan::template_digest(&read_template(
                    &template_before,
                )?),
                notes: vec![],
            }
        }
    };
    db_plan.strategy = Strategy::Pin;
    db_plan.closure.clear();
    db_plan.resources = vec!["Db".into()];
    for reference in &mut db_plan.references {
        reference.disposition = cascade_core::finder::Disposition::Refresh;
    }
    assert!(
        db_plan
            .references
            .iter()
            .any(|r| r.path == "Resources.Db.Properties.MasterUsername"),
        "{:?}",
        db_plan.references
    );
    plan.stacks = vec![db_plan];
    plan.skipped.clear();
    let manifest = manifest_for(
        &refresher,
        "cs-refused",
        &secrets,
        StrategyChoice::Pin,
        plan,
    )
    .await?;

    let before = clients.calls.snapshot();
    let summary = run_batch(
        &refresher,
        manifest,
        &Quiet,
        &Arc::new(AtomicBool::new(false)),
    )
    .await?;
    let calls = cloudformation_calls(&diff(&before, &clients.calls.snapshot()));

    let db = line(&summary.report, "c1-rds");
    assert_eq!(db.outcome, Outcome::Skipped, "{db:#?}");
    let reason = db.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("replace Db (AWS::RDS::DBInstance, Replacement True)")
            && reason.contains("holds state")
            && reason.contains("nothing changed"),
        "{reason}"
    );
    assert!(db.change_sets.is_empty(), "nothing was executed: {db:?}");
    // Untouched: the same template, no update started, no change set left behind.
    assert_eq!(template(&cfn, "c1-rds").await?, template_before);
    assert_eq!(events(&cfn, "c1-rds").await?, events_before);
    assert_eq!(
        describe(&cfn, "c1-rds")
            .await?
            .stack_status()
            .map(|s| s.as_str()),
        Some("CREATE_COMPLETE")
    );
    assert!(
        change_sets_of(&cfn, &stack_id).await?.is_empty(),
        "the refused change set is deleted"
    );
    assert_eq!(
        (
            count(&calls, "cloudformation:CreateChangeSet"),
            count(&calls, "cloudformation:ExecuteChangeSet"),
            count(&calls, "cloudformation:DeleteChangeSet"),
            count(&calls, "cloudformation:UpdateStack"),
        ),
        (1, 0, 1, 0),
        "{calls:?}"
    );
    let markdown = cascade_core::report::markdown::render_markdown(&summary.report);
    assert!(markdown.contains("replace Db"), "{markdown}");
    // The structured refusal, and the Slack message naming the stack and the database.
    assert!(
        db.refused
            .iter()
            .any(|p| p.starts_with("replace Db (AWS::RDS::DBInstance, Replacement True)")),
        "{db:#?}"
    );
    let slack = cascade_core::report::slack::slack_message(&summary.report, None).to_string();
    assert!(
        slack.contains("*Refused: `c1-rds`*")
            && slack.contains("• replace Db (AWS::RDS::DBInstance, Replacement True)"),
        "{slack}"
    );
    Ok(())
}

/// A normal recreate and a normal pin still refresh, each update now a change set whose
/// id is in the state and the report; the figures are the CloudFormation calls of one
/// stack for each.
#[tokio::test(flavor = "multi_thread")]
async fn recreate_and_pin_go_through_change_sets_and_record_their_ids() -> anyhow::Result<()> {
    let local = start().await?;
    let clients = local.clients().await;
    let cfn = clients.cloudformation.clone();
    create_secret(&clients, "e2e/cs", r#"{"password":"dummy"}"#).await?;
    let refresher = s3_refresher(&clients).await?;
    let secrets = resolve_secrets(&clients, &["e2e/cs".to_string()]).await?;

    for (name, choice, updates) in [
        ("c2-recreate", StrategyChoice::Recreate, 2),
        ("c3-pin", StrategyChoice::Pin, 1),
    ] {
        // The stack's own strategy tag says the same as the choice (a tag overrides it).
        let tag = aws_sdk_cloudformation::types::Tag::builder()
            .key("cascade:strategy")
            .value(choice.to_string())
            .build();
        create_stack_tagged(&cfn, name, TOPIC, tag).await?;
        let mut plan = plan_secrets(&clients, &secrets, choice, 8).await?;
        plan.stacks.retain(|p| p.stack_name == name);
        plan.skipped.clear();
        assert_eq!(plan.stacks.len(), 1, "{name}: {plan:?}");
        let batch = format!("cs-{name}");
        let manifest = manifest_for(&refresher, &batch, &secrets, choice, plan).await?;
        let before = clients.calls.snapshot();
        let summary = run_batch(
            &refresher,
            manifest,
            &Quiet,
            &Arc::new(AtomicBool::new(false)),
        )
        .await?;
        let calls = cloudformation_calls(&diff(&before, &clients.calls.snapshot()));
        print_calls(
            &format!("one {choice:?} stack ({name}), CloudFormation only"),
            &calls,
            1,
        );

        let stack = line(&summary.report, name);
        assert_eq!(stack.outcome, Outcome::Refreshed, "{stack:#?}");
        assert_eq!(stack.change_sets.len(), updates, "{stack:?}");
        let manifest = refresher.batches().manifest(&batch).await?;
        let states = refresher.batches().states(&manifest).await?;
        assert_eq!(state_of(&states, name).change_sets, stack.change_sets);
        for id in &stack.change_sets {
            assert!(id.starts_with("arn:aws:cloudformation:"), "{id}");
            let described = cfn.describe_change_set().change_set_name(id).send().await?;
            assert_eq!(
                described.execution_status().map(|s| s.as_str()),
                Some("EXECUTE_COMPLETE"),
                "{id}"
            );
        }
        assert_eq!(updates_completed(&cfn, name).await?, updates);
        assert_eq!(
            (
                count(&calls, "cloudformation:CreateChangeSet"),
                count(&calls, "cloudformation:ExecuteChangeSet"),
                count(&calls, "cloudformation:DeleteChangeSet"),
                count(&calls, "cloudformation:UpdateStack"),
            ),
            (updates as u64, updates as u64, 0, 0),
            "{name}: {calls:?}"
        );
        let markdown = cascade_core::report::markdown::render_markdown(&summary.report);
        let listed = stack
            .change_sets
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(
            markdown.contains(&format!("- `{name}`: {listed}")),
            "{markdown}"
        );
    }
    assert!(
        template(&cfn, "c2-recreate")
            .await?
            .contains("{{resolve:secretsmanager:e2e/cs:SecretString:password}}")
    );
    assert!(template(&cfn, "c3-pin").await?.contains("SecretCascade"));
    Ok(())
}

/// A retried or resumed begin never creates a second change set for the same step: one
/// that died after creating the change set (made here by hand, with the step's own name)
/// finds and executes it; one that died after executing it, before saving its state
/// (begin run twice with the same state, as in resume_local.rs), issues nothing more.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_begin_never_creates_a_second_change_set() -> anyhow::Result<()> {
    let local = start().await?;
    let clients = local.clients().await;
    let cfn = clients.cloudformation.clone();
    create_secret(&clients, "e2e/cs", r#"{"password":"dummy"}"#).await?;
    create_stack(&cfn, "c4-died-after-create", TOPIC).await?;
    create_stack(&cfn, "c5-died-after-execute", TOPIC).await?;
    let refresher = s3_refresher(&clients).await?;
    let secrets = resolve_secrets(&clients, &["e2e/cs".to_string()]).await?;
    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Recreate, 8).await?;
    let manifest = manifest_for(
        &refresher,
        "cs-retry",
        &secrets,
        StrategyChoice::Recreate,
        plan,
    )
    .await?;
    let plan_of = |name: &str| {
        manifest
            .plan
            .stacks
            .iter()
            .find(|p| p.stack_name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is not planned"))
    };

    // c4: an earlier try created the removal change set, then died.
    let c4 = plan_of("c4-died-after-create");
    let removal = cascade_core::refresh::removal_template(&read_template(TOPIC)?, &c4);
    let name = cascade_core::refresh::change_set_name(
        "cs-retry",
        &c4.stack_name,
        cascade_core::refresh::UpdateStep::Remove,
        1,
    );
    let earlier = cfn
        .create_change_set()
        .stack_name(&c4.stack_name)
        .change_set_name(&name)
        .change_set_type(aws_sdk_cloudformation::types::ChangeSetType::Update)
        .template_body(removal.to_string())
        .send()
        .await?
        .id()
        .unwrap_or_default()
        .to_string();
    let before = clients.calls.snapshot();
    let mut state = StackState::planned(&c4);
    refresher.begin(&manifest, &c4, &mut state).await?;
    let calls = diff(&before, &clients.calls.snapshot());
    assert_eq!(state.phase, Phase::Remove, "{state:?}");
    assert_eq!(
        state.change_sets,
        [earlier.as_str()],
        "the earlier try's change set"
    );
    assert_eq!(
        count(&calls, "cloudformation:CreateChangeSet"),
        0,
        "{calls:?}"
    );
    assert_eq!(
        count(&calls, "cloudformation:ExecuteChangeSet"),
        1,
        "{calls:?}"
    );

    // c5: begin executed the removal, then died before saving: begin again from the same
    // state.
    let c5 = plan_of("c5-died-after-execute");
    let before = clients.calls.snapshot();
    let mut state = StackState::planned(&c5);
    refresher.begin(&manifest, &c5, &mut state).await?;
    assert_eq!(state.phase, Phase::Remove);
    let executed = state.change_sets.clone();
    assert_eq!(executed.len(), 1, "{state:?}");
    let before_crash = StackState::planned(&c5);
    refresher
        .store
        .put_json(&keys::state("cs-retry", &c5.stack_name), &before_crash)
        .await?;
    let mut state = before_crash.clone();
    refresher.begin(&manifest, &c5, &mut state).await?;
    assert_eq!(
        state.phase,
        Phase::Remove,
        "the removal is recognised: {state:?}"
    );
    let calls = diff(&before, &clients.calls.snapshot());
    assert_eq!(
        count(&calls, "cloudformation:CreateChangeSet"),
        1,
        "{calls:?}"
    );
    assert_eq!(
        count(&calls, "cloudformation:ExecuteChangeSet"),
        1,
        "{calls:?}"
    );

    // Both end refreshed, each with one removal and one restore.
    let before = clients.calls.snapshot();
    let manifest = refresher.batches().manifest("cs-retry").await?;
    let summary = run_batch(
        &refresher,
        manifest,
        &Quiet,
        &Arc::new(AtomicBool::new(false)),
    )
    .await?;
    let calls = diff(&before, &clients.calls.snapshot());
    for name in ["c4-died-after-create", "c5-died-after-execute"] {
        assert_eq!(
            line(&summary.report, name).outcome,
            Outcome::Refreshed,
            "{name}"
        );
        assert_eq!(updates_completed(&cfn, name).await?, 2, "{name}");
        assert_eq!(template(&cfn, name).await?, TOPIC, "{name}");
    }
    assert_eq!(
        count(&calls, "cloudformation:CreateChangeSet"),
        2,
        "two restores: {calls:?}"
    );
    let c4_line = line(&summary.report, "c4-died-after-create");
    assert_eq!(c4_line.change_sets.len(), 2);
    assert_eq!(c4_line.change_sets[0], earlier);
    Ok(())
}
