//! Runs a batch from one machine: every planned stack strictly one at a time, a failing
//! stack recorded and skipped, the state saved after every step so that an interrupted
//! batch resumes where it stopped, then the report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cascade_core::batch::{BatchManifest, STATE_SCHEMA_VERSION, StackState, build_report, keys};
use cascade_core::plan::{Plan, StackOutcome, StrategyChoice};
use cascade_core::report::markdown::render_markdown;
use cascade_core::report::{Outcome, Phase, Report};
use cascade_core::secret::Secret;

use crate::discovery::plan_one_stack;
use crate::refresh::{Refresher, StepError, now};
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
    /// No such batch in the store.
    #[error(
        "no batch {0} in the state store: check the id (`cascade report latest`) and --bucket / --state-dir"
    )]
    UnknownBatch(String),
    /// A step failed in a way that stops the batch (its state is saved; resume it).
    #[error("{source} (the batch is saved: `cascade run --resume {batch}` goes on from here)")]
    Step {
        /// The batch.
        batch: String,
        /// What failed.
        source: StepError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts a batch: saves its manifest and the initial state of every stack.
pub async fn start_batch(
    refresher: &Refresher,
    batch_id: &str,
    execution: &str,
    secrets: &[Secret],
    strategy: StrategyChoice,
    plan: Plan,
) -> Result<BatchManifest, RunError> {
    let manifest = BatchManifest {
        schema_version: STATE_SCHEMA_VERSION,
        batch_id: batch_id.to_string(),
        execution: execution.to_string(),
        created_at: now(),
        secrets: secrets.to_vec(),
        strategy,
        plan,
        notes: Vec::new(),
    };
    save_new_batch(refresher, manifest).await
}

/// Saves a new batch's manifest and the initial state of every stack.
pub async fn save_new_batch(
    refresher: &Refresher,
    manifest: BatchManifest,
) -> Result<BatchManifest, RunError> {
    let batch_id = manifest.batch_id.as_str();
    refresher
        .store
        .put_json(&keys::manifest(batch_id), &manifest)
        .await?;
    for p in &manifest.plan.stacks {
        refresher
            .save_state(batch_id, &StackState::planned(p))
            .await?;
    }
    for s in &manifest.plan.skipped {
        refresher
            .save_state(batch_id, &StackState::skipped_at_plan(s))
            .await?;
    }
    Ok(manifest)
}

/// Reads a batch's manifest.
pub async fn load_manifest(
    refresher: &Refresher,
    batch_id: &str,
) -> Result<BatchManifest, RunError> {
    refresher
        .store
        .get_json(&keys::manifest(batch_id))
        .await?
        .ok_or_else(|| RunError::UnknownBatch(batch_id.to_string()))
}

/// Reads the state of every stack of a batch, in plan order.
pub async fn load_states(
    refresher: &Refresher,
    manifest: &BatchManifest,
) -> Result<Vec<StackState>, RunError> {
    let batch = &manifest.batch_id;
    let mut states = Vec::new();
    for p in &manifest.plan.stacks {
        let state = refresher
            .store
            .get_json(&keys::state(batch, &p.stack_name))
            .await?;
        states.push(state.unwrap_or_else(|| StackState::planned(p)));
    }
    for s in &manifest.plan.skipped {
        let state = refresher
            .store
            .get_json(&keys::state(batch, &s.stack_name))
            .await?;
        states.push(state.unwrap_or_else(|| StackState::skipped_at_plan(s)));
    }
    Ok(states)
}

/// The most recent batch id in the store.
pub async fn latest_batch(refresher: &Refresher) -> Result<Option<String>, RunError> {
    let keys = refresher.store.list(keys::BATCHES).await?;
    let mut latest: Option<(String, String)> = None;
    for batch in keys
        .iter()
        .filter_map(|k| k.strip_prefix(keys::BATCHES)?.strip_suffix("/batch.json"))
    {
        // Batch ids are not ordered by time (the state machine's are hashes): the
        // manifest's creation time is.
        let manifest: Option<BatchManifest> =
            refresher.store.get_json(&keys::manifest(batch)).await?;
        let created = manifest.map(|m| m.created_at).unwrap_or_default();
        if latest
            .as_ref()
            .is_none_or(|(at, id)| (&created, batch) > (at, id.as_str()))
        {
            latest = Some((created, batch.to_string()));
        }
    }
    Ok(latest.map(|(_, id)| id))
}

/// Marks the failed and degraded stacks of a batch for another attempt; returns their names.
pub async fn mark_failed_for_retry(
    refresher: &Refresher,
    manifest: &BatchManifest,
) -> Result<Vec<String>, RunError> {
    let mut names = Vec::new();
    for mut state in load_states(refresher, manifest).await? {
        if matches!(state.outcome, Some(Outcome::Failed | Outcome::Degraded))
            && state.strategy.is_some()
        {
            let degraded = state.outcome == Some(Outcome::Degraded);
            state.retry();
            // A degraded stack lacks the removed resources: put the original back first.
            if degraded {
                state.phase = Phase::Restore;
                state.update_issued_at = None;
            }
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
    let mut states = load_states(refresher, &manifest).await?;
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
        let step = drive(refresher, &mut manifest, index, state, observer, cancel).await;
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
    let finished = (!interrupted).then(now);
    let report = build_report(&manifest, &states, finished.as_deref());
    let report_location = write_report(refresher, &report).await?;
    Ok(RunSummary {
        report,
        interrupted,
        report_location,
    })
}

/// Saves the report as JSON and Markdown; returns where the JSON is.
pub async fn write_report(refresher: &Refresher, report: &Report) -> Result<String, StoreError> {
    let json_key = keys::report_json(&report.batch_id);
    refresher.store.put_json(&json_key, report).await?;
    refresher
        .store
        .put(
            &keys::report_markdown(&report.batch_id),
            render_markdown(report).into_bytes(),
            "text/markdown",
        )
        .await?;
    Ok(refresher.store.location(&json_key))
}

/// Takes one stack (the `index`th of the plan) through its remaining steps.
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
    let phase = |state: &StackState| RunEvent::Phase {
        stack: state.stack_name.clone(),
        phase: state.phase,
    };
    while !state.is_final() {
        if cancel.load(Ordering::SeqCst) {
            return Ok(());
        }
        observer.event(&phase(state));
        match (state.phase, state.update_issued_at.is_some()) {
            (Phase::Begin | Phase::Plan, _) => {
                if state.attempt > 1 && !replan(refresher, manifest, index, state).await? {
                    return Ok(());
                }
                let plan = manifest.plan.stacks[index].clone();
                refresher.begin(manifest, &plan, state).await?
            }
            // A degraded stack retried: put the original back, then begin again.
            (Phase::Restore, false) if state.attempt > 1 => {
                refresher.finish(batch, state).await?;
                if state.is_final() {
                    return Ok(());
                }
                let look = refresher.wait(&state.stack_name, cancel).await?;
                if look.is_none() && cancel.load(Ordering::SeqCst) {
                    return Ok(());
                }
                match look.as_ref().map(|l| l.progress) {
                    Some(cascade_core::refresh::Progress::Complete) => {
                        state.phase = Phase::Begin;
                        state.update_issued_at = None;
                        refresher.save_state(batch, state).await?;
                    }
                    _ => {
                        refresher.settle(batch, state, look).await?;
                    }
                }
            }
            (Phase::Remove | Phase::Pin | Phase::Restore, _) => {
                let look = refresher.wait(&state.stack_name, cancel).await?;
                if look.is_none() && cancel.load(Ordering::SeqCst) {
                    return Ok(());
                }
                if refresher.settle(batch, state, look).await? {
                    refresher.finish(batch, state).await?;
                }
            }
            (Phase::Done, _) => break,
        }
    }
    Ok(())
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
            state.strategy = Some(plan.strategy);
            state.resources = plan.resources.clone();
            manifest.plan.stacks[index] = plan;
            refresher
                .store
                .put_json(&keys::manifest(&batch), &*manifest)
                .await?;
            return Ok(true);
        }
        Some(StackOutcome::Skip(skipped)) => skipped.reason,
        None => "it no longer depends on the batch's secrets".to_string(),
    };
    state.conclude(Outcome::Skipped, Some(reason), &now());
    refresher.save_state(&batch, state).await?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::RefreshSettings;
    use crate::store::Store;

    #[tokio::test]
    async fn the_latest_batch_is_the_last_created_not_the_largest_id() {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let dir = std::env::temp_dir().join(format!("cascade-latest-{}", std::process::id()));
        let refresher = Refresher {
            clients: crate::Clients::new(&config),
            store: Store::Local(dir.clone()),
            settings: RefreshSettings::default(),
        };
        assert_eq!(latest_batch(&refresher).await.unwrap(), None);
        for (id, at) in [
            ("ffff0000", "2026-11-26T01:00:00Z"),
            ("0000ffff", "2026-11-26T02:00:00.5Z"),
            ("20261126T013000Z-abc", "2026-11-26T01:30:00Z"),
        ] {
            let mut manifest = start_batch(
                &refresher,
                id,
                "cli",
                &[],
                StrategyChoice::Auto,
                Plan::empty(vec![]),
            )
            .await
            .unwrap();
            manifest.created_at = at.to_string();
            refresher
                .store
                .put_json(&keys::manifest(id), &manifest)
                .await
                .unwrap();
        }
        assert_eq!(
            latest_batch(&refresher).await.unwrap().as_deref(),
            Some("0000ffff")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
