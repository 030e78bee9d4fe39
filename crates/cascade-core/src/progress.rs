//! Where a batch is: the stack being refreshed (i of n, its phase and for how long) and the
//! outcomes so far, from its manifest and the saved states of its stacks.

use jiff::Timestamp;
use serde::Serialize;

use crate::batch::BatchManifest;
use crate::refresh::StackState;
use crate::report::{Outcome, Phase, Totals};

/// A batch's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchProgress {
    /// The batch.
    pub batch_id: String,
    /// The changed secrets (names).
    pub secrets: Vec<String>,
    /// Stacks the plan refreshes (those skipped at planning not counted).
    pub planned: usize,
    /// The stack being refreshed now, if one is.
    pub current: Option<CurrentStack>,
    /// Outcomes so far, stacks skipped at planning included.
    pub totals: Totals,
}

/// The stack a batch is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentStack {
    /// Its place in the plan, from 1.
    pub index: usize,
    /// Its name.
    pub stack_name: String,
    /// The step it is in.
    pub phase: Phase,
    /// Since when (its last update was issued, else it started), if it started.
    pub since: Option<String>,
    /// Seconds since then.
    pub seconds: Option<i64>,
}

/// The progress of the batch `manifest` describes, from the states of its stacks (in the
/// manifest's order, as [`BatchManifest::initial_states`] lists them), at `now`. Stacks
/// are refreshed one at a time in plan order: the current one is the first planned stack
/// without an outcome.
pub fn progress(manifest: &BatchManifest, states: &[StackState], now: Timestamp) -> BatchProgress {
    let planned = manifest.plan.stacks.len();
    let mut totals = Totals::default();
    for state in states {
        match state.outcome {
            Some(Outcome::Refreshed) => totals.refreshed += 1,
            Some(Outcome::Failed) => totals.failed += 1,
            Some(Outcome::Skipped) => totals.skipped += 1,
            Some(Outcome::Degraded) => totals.degraded += 1,
            None => {}
        }
    }
    let current = states
        .iter()
        .take(planned)
        .enumerate()
        .find(|(_, s)| !s.is_final())
        .map(|(i, s)| {
            let since = s
                .update_issued_at
                .or_else(|| s.started_at.as_deref().and_then(|t| t.parse().ok()));
            CurrentStack {
                index: i + 1,
                stack_name: s.stack_name.clone(),
                phase: s.phase,
                since: since.map(|t| t.to_string()),
                seconds: since.map(|t| now.as_second() - t.as_second()),
            }
        });
    BatchProgress {
        batch_id: manifest.batch_id.clone(),
        secrets: manifest.secrets.iter().map(|s| s.name.clone()).collect(),
        planned,
        current,
        totals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, StackPlan, Strategy, StrategyChoice};

    fn manifest(stacks: &[&str]) -> BatchManifest {
        let mut plan = Plan::empty(Vec::new());
        plan.stacks = stacks
            .iter()
            .map(|name| StackPlan {
                stack_name: name.to_string(),
                stack_id: format!("id-{name}"),
                strategy: Strategy::Pin,
                secrets: vec!["prod/db".into()],
                resources: vec!["Fn".into()],
                closure: Vec::new(),
                outputs: Vec::new(),
                needs_placeholder: false,
                actions: Vec::new(),
                references: Vec::new(),
                template_digest: String::new(),
                notes: Vec::new(),
            })
            .collect();
        BatchManifest::new(
            "b1",
            "cli",
            "2026-12-02T00:00:00Z".parse().unwrap(),
            Vec::new(),
            StrategyChoice::Auto,
            plan,
        )
    }

    #[test]
    fn the_current_stack_is_the_first_without_an_outcome() {
        let manifest = manifest(&["a", "b", "c"]);
        let mut states = manifest.initial_states();
        states[0].outcome = Some(Outcome::Refreshed);
        states[1].phase = Phase::Remove;
        states[1].started_at = Some("2026-12-02T00:00:10Z".into());
        states[1].update_issued_at = Some("2026-12-02T00:00:20Z".parse().unwrap());
        let now = "2026-12-02T00:01:05Z".parse().unwrap();
        let progress = progress(&manifest, &states, now);
        assert_eq!(progress.planned, 3);
        assert_eq!(progress.totals.refreshed, 1);
        let current = progress.current.unwrap();
        assert_eq!(
            (current.index, current.stack_name.as_str(), current.phase),
            (2, "b", Phase::Remove)
        );
        assert_eq!(current.seconds, Some(45));
    }

    #[test]
    fn a_finished_batch_has_no_current_stack() {
        let manifest = manifest(&["a"]);
        let mut states = manifest.initial_states();
        states[0].outcome = Some(Outcome::Failed);
        let progress = progress(&manifest, &states, Timestamp::now());
        assert!(progress.current.is_none());
        assert_eq!(progress.totals.failed, 1);
    }
}
