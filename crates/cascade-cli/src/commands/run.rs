//! `cascade run`: plan, confirm, refresh every dependent stack one at a time, report,
//! tell Slack. Also `--resume BATCH` and `--retry-failed BATCH`.

use std::hash::{BuildHasher, Hasher};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cascade_aws::discovery::plan_secrets;
use cascade_aws::refresh::{PollPolicy, RefreshSettings, Refresher};
use cascade_aws::run::{Observer, RunEvent, RunSummary, mark_failed_for_retry, run_batch};
use cascade_aws::secrets::resolve_secrets;
use cascade_aws::slack::{Notification, RetryPolicy, SlackClient};
use cascade_core::batch::new_batch_id;
use cascade_core::plan::Plan;
use cascade_core::report::markdown::render_markdown;
use cascade_core::report::{Outcome, Report};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;

use crate::cli::RunArgs;
use crate::commands::refresher;
use crate::render;

/// Exit code when a stack failed (rolled back, intact).
const EXIT_FAILED: u8 = 2;
/// Exit code when a stack is degraded (needs `cascade restore`).
const EXIT_DEGRADED: u8 = 3;
/// Exit code when the run was interrupted (resume it).
const EXIT_INTERRUPTED: u8 = 130;

/// Runs `cascade run`.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let settings = RefreshSettings {
        poll: PollPolicy {
            initial: seconds(args.poll_seconds, "--poll-seconds")?,
            max: seconds(args.max_poll_seconds, "--max-poll-seconds")?,
            max_wait: seconds(args.max_wait_seconds, "--max-wait-seconds")?,
        },
        execution_role_arn: args.execution_role_arn.clone(),
    };
    let refresher = refresher(&args.aws, &args.state, settings).await?;

    let manifest = if let Some(batch) = &args.resume {
        let manifest = refresher.batches().manifest(batch).await?;
        eprintln!("resuming batch {batch}");
        manifest
    } else if let Some(batch) = &args.retry_failed {
        let manifest = refresher.batches().manifest(batch).await?;
        let retried = mark_failed_for_retry(&refresher, &manifest).await?;
        if retried.is_empty() {
            eprintln!("batch {batch} has no failed or degraded stack: nothing to retry");
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("retrying in batch {batch}: {}", retried.join(", "));
        manifest
    } else {
        let secrets = resolve_secrets(&refresher.clients, &args.secrets).await?;
        let planning = crate::commands::with_template_cache(refresher.clients.clone(), &args.cache);
        let plan = plan_secrets(
            &planning,
            &secrets,
            args.strategy.into(),
            usize::from(args.concurrency),
        )
        .await?;
        let plan = only_stacks(plan, &args.stacks)?;
        print!("{}", render::plan_table(&plan));
        std::io::stdout().flush()?;
        if plan.stacks.is_empty() {
            eprintln!("nothing to refresh");
        } else if !args.yes && !confirm(plan.stacks.len())? {
            eprintln!("cancelled: nothing was changed");
            return Ok(ExitCode::SUCCESS);
        }
        let batch = new_batch_id(Timestamp::now(), random());
        refresher
            .batches()
            .start(&batch, "cli", &secrets, args.strategy.into(), plan)
            .await?
    };

    let cancel = Arc::new(AtomicBool::new(false));
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ninterrupted: finishing the current step, then stopping (the batch is saved)"
            );
            on_ctrl_c.store(true, Ordering::SeqCst);
        }
    });
    let progress = Progress::new(manifest.plan.stacks.len());
    let started = Instant::now();
    let summary = run_batch(&refresher, manifest, &progress, &cancel).await?;
    progress.finish();

    finish(&refresher, &args, &summary, started.elapsed()).await
}

/// Writes the local report copy, tells Slack, prints the summary, picks the exit code.
async fn finish(
    refresher: &Refresher,
    args: &RunArgs,
    summary: &RunSummary,
    elapsed: Duration,
) -> anyhow::Result<ExitCode> {
    let report = &summary.report;
    if let Some(dir) = &args.report_dir {
        write_local_report(dir, report).await?;
    }
    eprintln!("{}", render::report_summary(report, elapsed));
    eprintln!("report: {}", summary.report_location);
    if summary.interrupted {
        eprintln!(
            "the batch was interrupted: `cascade run --resume {}` goes on from here",
            report.batch_id
        );
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    if let Some(secret) = &args.slack_webhook_secret {
        notify_slack(refresher, secret, report, &summary.report_location).await;
    }
    let code = if report.totals.degraded > 0 {
        EXIT_DEGRADED
    } else if report.totals.failed > 0 {
        EXIT_FAILED
    } else {
        0
    };
    Ok(ExitCode::from(code))
}

/// Posts the report's summary to Slack; never fails the run.
async fn notify_slack(refresher: &Refresher, secret: &str, report: &Report, location: &str) {
    let notification = match SlackClient::new(RetryPolicy::default()) {
        Ok(slack) => {
            slack
                .notify_report(&refresher.clients.secrets, secret, report, Some(location))
                .await
        }
        Err(e) => Notification::NotSent(e),
    };
    match notification {
        Notification::Delivered { .. } => eprintln!("Slack: message sent"),
        Notification::NotSent(e) => eprintln!("warning: no Slack message: {e}"),
        Notification::GaveUp { attempts, reason } => {
            eprintln!(
                "warning: Slack message not delivered after {attempts} attempt(s): {reason} (the report is saved)"
            )
        }
    }
}

async fn write_local_report(dir: &Path, report: &Report) -> anyhow::Result<()> {
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let json = dir.join("report.json");
    tokio::fs::write(&json, serde_json::to_vec_pretty(report)?)
        .await
        .with_context(|| format!("cannot write {}", json.display()))?;
    let md = dir.join("report.md");
    tokio::fs::write(&md, render_markdown(report))
        .await
        .with_context(|| format!("cannot write {}", md.display()))?;
    eprintln!("report written to {}", dir.display());
    Ok(())
}

/// Keeps only the named stacks; a name that is not in the plan is an error.
fn only_stacks(mut plan: Plan, names: &[String]) -> anyhow::Result<Plan> {
    if let Some(name) = plan.keep_stacks(names).first() {
        bail!(
            "stack {name} does not depend on these secrets (or does not exist): see `cascade plan`"
        );
    }
    Ok(plan)
}

fn confirm(count: usize) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "not a terminal, so no confirmation can be asked: pass --yes to refresh {count} stack(s)"
        );
    }
    eprint!("Refresh {count} stack(s), one at a time? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} must be a positive number of seconds"))
}

fn random() -> u32 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32
}

/// Progress: a bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] stack {pos}/{len} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn event(&self, event: &RunEvent) {
        let elapsed = self.started.elapsed().as_secs();
        match (&self.bar, event) {
            (Some(bar), RunEvent::StackStarted { index, stack, .. }) => {
                bar.set_position(*index as u64 - 1);
                bar.set_message(stack.clone());
            }
            (Some(bar), RunEvent::Phase { stack, phase }) => {
                bar.set_message(format!("{stack}: {phase}"))
            }
            (
                Some(bar),
                RunEvent::StackFinished {
                    stack,
                    outcome,
                    reason,
                },
            ) => {
                bar.inc(1);
                if *outcome != Outcome::Refreshed {
                    bar.println(format!(
                        "{stack}: {outcome}: {}",
                        reason.as_deref().unwrap_or("")
                    ));
                }
            }
            (
                None,
                RunEvent::StackStarted {
                    index,
                    total,
                    stack,
                },
            ) => eprintln!("[{elapsed}s] stack {index}/{total} {stack}"),
            (None, RunEvent::Phase { stack, phase }) => {
                eprintln!("[{elapsed}s]   {stack}: {phase}")
            }
            (
                None,
                RunEvent::StackFinished {
                    stack,
                    outcome,
                    reason,
                },
            ) => eprintln!(
                "[{elapsed}s]   {stack}: {outcome}{}",
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_stack_not_in_the_plan_is_an_error() {
        let plan = Plan::empty(Vec::new());
        assert_eq!(only_stacks(plan.clone(), &[]).unwrap(), plan);
        let e = only_stacks(plan, &["ghost".to_string()]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("stack ghost does not depend on these secrets"),
            "{e}"
        );
    }

    #[test]
    fn seconds_must_be_positive() {
        assert!(seconds(0.5, "--x").is_ok());
        assert!(seconds(0.0, "--x").is_err());
        assert!(seconds(-1.0, "--x").is_err());
        assert!(seconds(f64::NAN, "--x").is_err());
    }
}
