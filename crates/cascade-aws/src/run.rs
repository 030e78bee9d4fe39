//! Runs a batch from one machine: every planned stack strictly one at a time, a failing
//! stack (a step refused, or a call throttled beyond the retries) recorded and skipped, the state saved after every step so that an interrupted
//! batch resumes where it stopped, then the report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cascade_core::batch::{BatchManifest, build_report};
use cascade_core::plan::StackOutcome;
use cascade_core::refresh::{Settled, StackState, Step};
use cascade_core::report::{Outcome, Phase, Report};
use jiff::Timestamp;

use crate::discovery::plan_one_stack;
use crate::refresh::{Refresher, StepError};
use crate::store::StoreError;

/// What happens while a batch runs, for progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// A stack's refresh starts (1-based index of the stacks to refresh).
    StackStarted {
        /// Position.
        index: usize,
        /// Stacks to refresh in all.
        total: usize,
        /// The stack.
        stack: String,
    },
    /// A stack entered a phase.
    Phase {
        /// The stack.
        stack: String,
        /// The phase.
        phase: Phase,
    },
    /// A stack's outcome is decided.
    StackFinished {
        /// The stack.
        stack: String,
        /// How it ended.
        outcome: Outcome,
        /// Why, when not refreshed.
        reason: Option<String>,
    },
}

/// Receives [`RunEvent`]s.
pub trait Observer: Send + Sync {
    /// Called for each event.
    fn event(&self, event: &RunEvent);
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: &RunEvent) {}
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The report (also saved in the store).
    pub report: Report,
    /// Whether the run was interrupted before every stack was decided.
    pub interrupted: bool,
    /// Where the JSON report is.
    pub report_location: String,
}

/// A run that could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A step failed in a way that stops the batch (its state is saved; resume it).
    #[error("{source} (the batch is saved: `cascade run --resume {batch}` goes on from here)")]
    Step {
        /// The batch.
        batch: String,
        /// What failed.
        source: StepError,
    },
    /// The store failed (or has no such batch).
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Marks the failed and degraded stacks of a batch for another attempt (a degraded one
/// puts its original back first); returns their names.
pub async fn mark_failed_for_retry(
    refresher: &Refresher,
    manifest: &BatchManifest,
) -> Result<Vec<String>, RunError> {
    let mut names = Vec::new();
    for mut state in refresher.batches().states(manifest).await? {
        if state.is_retryable() {
            state.retry();
            refresher.save_state(&manifest.batch_id, &state).await?;
            names.push(state.stack_name.clone());
        }
    }
    Ok(names)
}

/// Runs (or resumes) a batch: every stack whose outcome is not decided, one at a time.
/// Stacks already decided are not touched again. Setting `cancel` stops after the current
/// step; the state is saved and the batch can be resumed.
pub async fn run_batch(
    refresher: &Refresher,
    mut manifest: BatchManifest,
    observer: &dyn Observer,
    cancel: &Arc<AtomicBool>,
) -> Result<RunSummary, RunError> {
    let batch = manifest.batch_id.clone();
    let mut states = refresher.batches().states(&manifest).await?;
    let total = manifest.plan.stacks.len();
    let mut interrupted = false;
    for (index, state) in states.iter_mut().enumerate().take(total) {
        if cancel.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        if state.is_final() {
            continue;
        }
        let stack_name = state.stack_name.clone();
        observer.event(&RunEvent::StackStarted {
            index: index + 1,
            total,
            stack: stack_name.clone(),
        });
        // A call throttled beyond the retries fails this stack only (degraded when its
        // removal had executed); any other error stops the batch, saved for `--resume`.
        let step = match drive(refresher, &mut manifest, index, state, observer, cancel).await {
            Ok(()) => Ok(()),
            Err(e) => refresher.record_transient_failure(&batch, state, e).await,
        };
        step.map_err(|source| RunError::Step {
            batch: batch.clone(),
            source,
        })?;
        match state.outcome {
            Some(outcome) => observer.event(&RunEvent::StackFinished {
                stack: stack_name,
                outcome,
                reason: state.reason.clone(),
            }),
            None => {
                interrupted = true;
                break;
            }
        }
    }
    let finished = (!interrupted).then(Timestamp::now);
    let report = build_report(&manifest, &states, finished, &refresher.restore_target());
    let report_location = refresher.batches().write_report(&report).await?;
    Ok(RunSummary {
        report,
        interrupted,
        report_location,
    })
}

/// Takes one stack (the `index`th of the plan) through the steps its state calls for,
/// until its outcome is decided or `cancel` is set.
async fn drive(
    refresher: &Refresher,
    manifest: &mut BatchManifest,
    index: usize,
    state: &mut StackState,
    observer: &dyn Observer,
    cancel: &Arc<AtomicBool>,
) -> Result<(), StepError> {
    let batch = manifest.batch_id.clone();
    let batch = batch.as_str();
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Ok(());
        }
        observer.event(&RunEvent::Phase {
            stack: state.stack_name.clone(),
            phase: state.phase,
        });
        match state.next_step() {
            Step::Done => return Ok(()),
            Step::Begin => {
                if state.attempt > 1 && !replan(refresher, manifest, index, state).await? {
                    return Ok(());
                }
                let plan = manifest.plan.stacks[index].clone();
                refresher.begin(manifest, &plan, state).await?;
            }
            Step::Poll => {
                let Some(observation) = refresher.wait(state, cancel).await? else {
                    return Ok(());
                };
                // The removal done: the resources are put back at once.
                if refresher.settle(batch, state, observation).await? == Settled::RemovalDone {
                    refresher
                        .finish(manifest, &manifest.plan.stacks[index], state)
                        .await?;
                }
            }
            Step::Finish => {
                refresher
                    .finish(manifest, &manifest.plan.stacks[index], state)
                    .await?
            }
            Step::Restart => refresher.restart(batch, state).await?,
            Step::PollRollout => {
                let mut delay = refresher.settings.poll.initial;
                while refresher.poll_rollouts(batch, state).await? == Settled::Waiting {
                    if cancel.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    crate::refresh::sleep_unless_cancelled(delay, cancel).await;
                    delay = (delay + delay / 2).min(refresher.settings.poll.max);
                }
            }
        }
    }
}

/// Plans a retried stack again from its current state (its cause may have been fixed by
/// changing it); saves the new plan in the manifest. `false` when it is now skipped.
async fn replan(
    refresher: &Refresher,
    manifest: &mut BatchManifest,
    index: usize,
    state: &mut StackState,
) -> Result<bool, StepError> {
    let batch = manifest.batch_id.clone();
    let outcome = plan_one_stack(
        &refresher.clients,
        &state.stack_name,
        &manifest.secrets,
        manifest.strategy,
    )
    .await?;
    let reason = match outcome {
        Some(StackOutcome::Refresh(plan)) => {
            state.replanned(&plan);
            manifest.plan.stacks[index] = plan;
            refresher.batches().save_manifest(manifest).await?;
            if let Some(slice) = manifest.for_stack(&state.stack_name) {
                refresher.batches().save_stack_manifest(&slice).await?;
            }
            return Ok(true);
        }
        Some(StackOutcome::Skip(skipped)) => skipped.reason,
        None => "it no longer depends on the batch's secrets".to_string(),
    };
    state.conclude(Outcome::Skipped, Some(reason), Timestamp::now());
    refresher.save_state(&batch, state).await?;
    Ok(false)
}
