//! Refresh benchmark: starts its own local AWS stack, seeds the fixture account of
//! `tests/fixtures/refresh` (13 stacks to refresh for e2e/db + e2e/api + e2e/pin: recreate,
//! pin, a failed removal, a failed restore, SAM, NoEcho, a template over 51,200 bytes, IAM,
//! two secrets in one stack), then plans and runs the batch exactly as `cascade run` does,
//! with the batch's state in an S3 bucket of the local stack, and prints:
//!
//! - wall time of the plan and of `run_batch`;
//! - API calls per stack, by operation, for the plan and for the run;
//! - report sizes: JSON, Markdown, Slack payload.
//!
//! moto completes every update at once, so the run's wall time is the engine's own cost
//! (state saves, polls, template handling), not CloudFormation's.
//!
//! Run: `cargo run --release -p cascade-tests --bin bench-run`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use cascade_aws::discovery::plan_secrets;
use cascade_aws::refresh::{PollPolicy, RefreshSettings, Refresher};
use cascade_aws::run::{Quiet, run_batch};
use cascade_aws::secrets::resolve_secrets;
use cascade_aws::store::Store;
use cascade_core::batch::keys;
use cascade_core::plan::StrategyChoice;
use cascade_core::report::slack::slack_message;
use cascade_tests::{LocalStack, fixtures, workspace_root};

const BUCKET: &str = "cascade-bench-state";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().len() > 1 {
        anyhow::bail!("usage: bench-run (no arguments)");
    }
    let started = Instant::now();
    let local = tokio::task::spawn_blocking(LocalStack::start).await??;
    let local_up = started.elapsed();
    let dir = workspace_root().join("tests/fixtures/refresh");
    let seeded = fixtures::seed(&local.sdk_config().await, &dir)
        .await
        .with_context(|| format!("seeding failed; server log:\n{}", local.log_tail()))?;
    let seeded_in = started.elapsed() - local_up;

    let clients = local.clients().await;
    clients
        .s3
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .context("CreateBucket")?;
    let refresher = Refresher {
        clients: clients.clone(),
        store: Store::s3(clients.s3.clone(), BUCKET),
        settings: RefreshSettings {
            poll: PollPolicy {
                initial: Duration::from_millis(10),
                max: Duration::from_millis(50),
                max_wait: Duration::from_secs(60),
            },
            execution_role_arn: None,
        },
    };

    let secrets = resolve_secrets(&clients, &seeded.changed_secrets).await?;
    let before_plan = clients.calls.snapshot();
    let t_plan = Instant::now();
    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Auto, 8).await?;
    let plan_wall = t_plan.elapsed();
    let after_plan = clients.calls.snapshot();
    let stacks = plan.stacks.len();

    let manifest = refresher
        .batches()
        .start("bench-run", "bench", &secrets, StrategyChoice::Auto, plan)
        .await?;
    let before_run = clients.calls.snapshot();
    let t_run = Instant::now();
    let summary = run_batch(
        &refresher,
        manifest,
        &Quiet,
        &Arc::new(AtomicBool::new(false)),
    )
    .await?;
    let run_wall = t_run.elapsed();
    let after_run = clients.calls.snapshot();

    let report = &summary.report;
    let json_bytes = refresher
        .store
        .get(&keys::report_json(&report.batch_id))
        .await?
        .map(|b| b.len())
        .unwrap_or_default();
    let md_bytes = refresher
        .store
        .get(&keys::report_markdown(&report.batch_id))
        .await?
        .map(|b| b.len())
        .unwrap_or_default();
    let slack_bytes = slack_message(report, Some(&summary.report_location))
        .to_string()
        .len();

    println!(
        "refresh of {stacks} stacks ({} in the account; local stack up in {:.2} s, seeded in {:.2} s)",
        seeded.stacks.len(),
        local_up.as_secs_f64(),
        seeded_in.as_secs_f64()
    );
    println!(
        "  outcome          {} refreshed, {} failed, {} degraded, {} skipped",
        report.totals.refreshed,
        report.totals.failed,
        report.totals.degraded,
        report.totals.skipped
    );
    println!("  plan wall time   {:.3} s", plan_wall.as_secs_f64());
    println!(
        "  run wall time    {:.3} s ({:.1} ms per stack)",
        run_wall.as_secs_f64(),
        run_wall.as_secs_f64() * 1000.0 / stacks.max(1) as f64
    );
    print_calls("plan", &before_plan, &after_plan, stacks);
    print_calls("run_batch", &before_run, &after_run, stacks);
    println!("  report sizes");
    println!("    JSON           {json_bytes:>7} bytes");
    println!("    Markdown       {md_bytes:>7} bytes");
    println!("    Slack payload  {slack_bytes:>7} bytes");
    Ok(())
}

fn print_calls(
    what: &str,
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    stacks: usize,
) {
    println!("  API calls of {what} (total, per stack)");
    let mut total = 0;
    for (op, n) in after {
        let n = n - before.get(op).copied().unwrap_or(0);
        if n > 0 {
            total += n;
            println!(
                "    {op:<40} {n:>5}  {:>6.2}",
                n as f64 / stacks.max(1) as f64
            );
        }
    }
    println!(
        "    {:<40} {total:>5}  {:>6.2}",
        "total",
        total as f64 / stacks.max(1) as f64
    );
}
