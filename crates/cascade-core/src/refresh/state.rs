//! The refresh of one stack as a state machine: its saved state ([`StackState`]), the step
//! that state calls for next ([`StackState::next_step`]), and what each observation of
//! CloudFormation makes of it ([`StackState::settle`]). Pure: the CLI's batch runner and
//! the Lambda `refresh` handler carry out the steps and save the state; what the state
//! becomes is decided here, once.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::caught::CaughtError;
use crate::change_set::refusal_reason;
use crate::plan::{Action, SkippedStack, StackPlan, Strategy};
use crate::refresh::rollout::Rollout;
use crate::refresh::status::{Look, UpdateProgress};
use crate::refresh::token::UpdateStep;
use crate::report::{FailedResource, Outcome, Phase, StackReport};

/// The saved state of one stack in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackState {
    /// The stack's name.
    pub stack_name: String,
    /// The stack's id.
    pub stack_id: String,
    /// The strategy (none when skipped at planning).
    pub strategy: Option<Strategy>,
    /// The resources refreshed.
    pub resources: Vec<String>,
    /// The step it is in (or ended in).
    pub phase: Phase,
    /// How it ended, once it has.
    pub outcome: Option<Outcome>,
    /// Why it failed, was skipped or is degraded.
    pub reason: Option<String>,
    /// The resources CloudFormation reported as failed.
    #[serde(default)]
    pub failed_resources: Vec<FailedResource>,
    /// When its refresh began (RFC 3339).
    pub started_at: Option<String>,
    /// When its outcome was decided (RFC 3339).
    pub finished_at: Option<String>,
    /// Which attempt (1, then 2 after `--retry-failed`, ...): part of the request tokens.
    pub attempt: u32,
    /// When the update being waited on was issued; `None` when no update is in flight.
    pub update_issued_at: Option<Timestamp>,
    /// A degraded stack being retried: its original is put back before it begins again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restore_before_retry: bool,
    /// The ids (ARNs) of the change sets executed for this stack, oldest first, so that a
    /// reader can open them in the console.
    #[serde(default)]
    pub change_sets: Vec<String>,
    /// The ECS services to restart once the template updates are done, and how far each
    /// is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<ServiceRestart>,
    /// What the change set CloudFormation made for an update would have done that the
    /// plan does not mean (one entry per resource), when it was refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

/// The restart of one ECS service: a new deployment, then its rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRestart {
    /// The service's logical id.
    pub logical_id: String,
    /// The cluster and service as ECS was asked to restart them (name or ARN), once the
    /// deployment is started: the rollout is looked at with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// See `cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The deployment started, once it is.
    pub deployment_id: Option<String>,
    /// Whether that deployment completed.
    #[serde(default)]
    pub completed: bool,
}

/// What a stack's refresh does next, read from its saved state alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Check the stack is still what was planned, save its original, issue the first
    /// update.
    Begin,
    /// An update is in flight: look at it.
    Poll,
    /// Put the saved original back: after the removal (recreate), or before a degraded
    /// stack begins again.
    Finish,
    /// Start a new deployment of each ECS service to restart.
    Restart,
    /// The restarts' deployments are rolling out: look at them.
    PollRollout,
    /// The outcome is decided.
    Done,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Begin => "begin",
            Step::Poll => "poll",
            Step::Finish => "finish",
            Step::Restart => "restart",
            Step::PollRollout => "poll-rollout",
            Step::Done => "done",
        })
    }
}

/// What was seen of the update in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A look at the stack.
    Looked(Look),
    /// The update was still in progress when the longest wait for one update was over.
    GaveUp {
        /// The longest wait.
        waited: Duration,
    },
}

/// What an observation made of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The update is still in progress: look again later.
    Waiting,
    /// The removal completed: [`Step::Finish`] puts the resources back.
    RemovalDone,
    /// A degraded stack's original is back: it begins again.
    ReadyToBegin,
    /// The template updates are done: the ECS services are restarted next.
    RestartNext,
    /// The stack's outcome is decided.
    Concluded(Outcome),
}

impl Settled {
    /// Whether the stack ended failed or degraded: the resources CloudFormation reported
    /// as failed belong in its state.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Settled::Concluded(Outcome::Failed | Outcome::Degraded)
        )
    }
}

/// What CloudFormation answered a request for an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateAnswer {
    /// The update started.
    Started,
    /// "No updates are to be performed": the stack already says this.
    NoChange,
    /// Refused (validation, status, ...): nothing changed.
    Rejected(String),
    /// CloudFormation's change set would do what the plan does not mean (replace a
    /// database, change a resource the plan did not name, ...): it was deleted unexecuted,
    /// nothing changed. One entry per offending resource, naming it.
    Refused(Vec<String>),
}

/// The services a plan restarts.
fn restarts_of(plan: &StackPlan) -> Vec<ServiceRestart> {
    plan.actions
        .iter()
        .filter(|a| a.action == Action::Restart)
        .map(|a| ServiceRestart {
            logical_id: a.logical_id.clone(),
            cluster: None,
            service: None,
            deployment_id: None,
            completed: false,
        })
        .collect()
}

/// Whether an update issued at `issued_at` has been waited on for longer than `max_wait`
/// at `now`.
pub fn update_timed_out(issued_at: Timestamp, now: Timestamp, max_wait: Duration) -> bool {
    now.duration_since(issued_at).unsigned_abs() > max_wait && now > issued_at
}

impl StackState {
    /// A stack about to begin its first attempt, refreshing `resources` by `strategy`.
    pub fn new(
        stack_name: impl Into<String>,
        stack_id: impl Into<String>,
        strategy: Option<Strategy>,
        resources: Vec<String>,
    ) -> Self {
        StackState {
            stack_name: stack_name.into(),
            stack_id: stack_id.into(),
            strategy,
            resources,
            phase: Phase::Begin,
            outcome: None,
            reason: None,
            failed_resources: Vec::new(),
            started_at: None,
            finished_at: None,
            attempt: 1,
            update_issued_at: None,
            restore_before_retry: false,
            change_sets: Vec::new(),
            restarts: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// The initial state of a stack to refresh.
    pub fn planned(plan: &StackPlan) -> Self {
        StackState {
            restarts: restarts_of(plan),
            ..StackState::new(
                &plan.stack_name,
                &plan.stack_id,
                Some(plan.strategy),
                plan.resources.clone(),
            )
        }
    }

    /// The final state of a stack skipped at planning.
    pub fn skipped_at_plan(skipped: &SkippedStack) -> Self {
        StackState {
            phase: Phase::Plan,
            outcome: Some(Outcome::Skipped),
            reason: Some(skipped.reason.clone()),
            ..StackState::new(&skipped.stack_name, &skipped.stack_id, None, Vec::new())
        }
    }

    /// Whether the stack's outcome is decided.
    pub fn is_final(&self) -> bool {
        self.outcome.is_some()
    }

    /// The step the state calls for.
    pub fn next_step(&self) -> Step {
        if self.is_final() {
            return Step::Done;
        }
        match (self.phase, self.update_issued_at.is_some()) {
            (Phase::Done, _) => Step::Done,
            (Phase::Plan | Phase::Begin, _) => Step::Begin,
            (Phase::Restart, _) if self.restarts.iter().any(|r| r.deployment_id.is_none()) => {
                Step::Restart
            }
            (Phase::Restart, _) => Step::PollRollout,
            (_, true) => Step::Poll,
            (Phase::Remove | Phase::Restore, false) => Step::Finish,
            // A pin that was never issued: issue it (its token makes a repeat harmless).
            (Phase::Pin, false) => Step::Begin,
        }
    }

    /// The refresh begins (or begins again): recorded before anything is sent.
    pub fn begin(&mut self, at: Timestamp) {
        self.started_at.get_or_insert_with(|| at.to_string());
        self.phase = Phase::Begin;
    }

    /// An update was issued (or found already issued by an earlier try of the same step).
    pub fn update_issued(&mut self, step: UpdateStep, at: Timestamp) {
        self.phase = match step {
            UpdateStep::Remove => Phase::Remove,
            UpdateStep::Pin => Phase::Pin,
            UpdateStep::Restore => Phase::Restore,
        };
        self.update_issued_at = Some(at);
    }

    /// Applies CloudFormation's answer to the request for the update `step`, sent at `at`.
    pub fn update_answered(&mut self, step: UpdateStep, answer: UpdateAnswer, at: Timestamp) {
        match (step, answer) {
            (_, UpdateAnswer::Started) | (UpdateStep::Restore, UpdateAnswer::NoChange) => {
                self.update_issued(step, at)
            }
            (UpdateStep::Pin, UpdateAnswer::NoChange) => self.conclude(
                Outcome::Refreshed,
                Some("already pinned to the current version".into()),
                at,
            ),
            (UpdateStep::Remove, UpdateAnswer::NoChange) => self.conclude(
                Outcome::Failed,
                Some(
                    "removing the resources changed nothing: CloudFormation reported no updates"
                        .into(),
                ),
                at,
            ),
            (UpdateStep::Restore, UpdateAnswer::Rejected(message)) => {
                self.phase = Phase::Restore;
                self.update_issued_at = None;
                self.conclude(
                    Outcome::Degraded,
                    Some(format!(
                        "the resources were removed and CloudFormation rejected the update that restores them: {message}"
                    )),
                    at,
                );
            }
            // A refused restore is degraded, not skipped: the removal before it succeeded,
            // so the stack is left without the closure's resources until someone puts the
            // original back (`cascade restore`); "skipped" would say nothing changed.
            (UpdateStep::Restore, UpdateAnswer::Refused(problems)) => {
                self.phase = Phase::Restore;
                self.update_issued_at = None;
                let reason = refusal_reason(&problems);
                self.refused = problems;
                self.conclude(
                    Outcome::Degraded,
                    Some(format!(
                        "the resources were removed and the update that restores them was refused: {reason}"
                    )),
                    at,
                );
            }
            // Refused before anything changed: the stack is as it was, with the old value.
            (UpdateStep::Remove | UpdateStep::Pin, UpdateAnswer::Refused(problems)) => {
                let reason = refusal_reason(&problems);
                self.refused = problems;
                self.conclude(Outcome::Skipped, Some(reason), at)
            }
            (UpdateStep::Remove | UpdateStep::Pin, UpdateAnswer::Rejected(message)) => self
                .conclude(
                    Outcome::Failed,
                    Some(format!(
                        "CloudFormation rejected the first update, nothing changed: {message}"
                    )),
                    at,
                ),
        }
    }

    /// A change set was executed for this stack (recorded once, however often a retried
    /// step finds it).
    pub fn change_set_executed(&mut self, id: &str) {
        if !id.is_empty() && !self.change_sets.iter().any(|c| c == id) {
            self.change_sets.push(id.to_string());
        }
    }

    /// The template updates are done (or there are none): the services are restarted next.
    pub fn restarts_next(&mut self) {
        self.phase = Phase::Restart;
        self.update_issued_at = None;
    }

    /// A new deployment of service `logical_id` (ECS's `cluster` and `service`) was
    /// started at `at` (the longest wait for the restarts runs from the first).
    pub fn restart_started(
        &mut self,
        logical_id: &str,
        (cluster, service): (&str, &str),
        deployment_id: &str,
        at: Timestamp,
    ) {
        if let Some(restart) = self
            .restarts
            .iter_mut()
            .find(|r| r.logical_id == logical_id)
        {
            restart.cluster = Some(cluster.to_string());
            restart.service = Some(service.to_string());
            restart.deployment_id = Some(deployment_id.to_string());
        }
        self.update_issued_at.get_or_insert(at);
    }

    /// What a look at the rollout of service `logical_id` makes of the stack: every
    /// deployment completed is `refreshed`; one that failed (or a service gone, or a
    /// rollout still going past the longest wait) is `failed`, with ECS's reason. Nothing
    /// was removed, so a restart never leaves a stack degraded.
    pub fn rollout_observed(
        &mut self,
        logical_id: &str,
        rollout: &Rollout,
        now: Timestamp,
        max_wait: Duration,
    ) -> Settled {
        let updated = if self.strategy == Some(Strategy::Restart) {
            ""
        } else {
            "; the template updates are done"
        };
        let failure = match rollout {
            Rollout::Completed => {
                if let Some(r) = self.restarts.iter_mut().find(|r| r.logical_id == logical_id) {
                    r.completed = true;
                }
                None
            }
            Rollout::Failed(reason) => Some(format!(
                "the new deployment of ECS service {logical_id} failed: {reason}{updated}"
            )),
            Rollout::Gone => Some(format!(
                "ECS service {logical_id} is gone (deleted or draining) during its restart{updated}"
            )),
            Rollout::InProgress => self
                .update_issued_at
                .filter(|issued| update_timed_out(*issued, now, max_wait))
                .map(|_| {
                    format!(
                        "gave up waiting after {} s for the new deployment of ECS service {logical_id}; it may still be rolling out: check it in the ECS console{updated}",
                        max_wait.as_secs()
                    )
                }),
        };
        if let Some(reason) = failure {
            self.conclude(Outcome::Failed, Some(reason), now);
            return Settled::Concluded(Outcome::Failed);
        }
        if self.restarts.iter().all(|r| r.completed) {
            self.conclude(Outcome::Refreshed, None, now);
            return Settled::Concluded(Outcome::Refreshed);
        }
        Settled::Waiting
    }

    /// What a look at the stack means now: the update still in progress past the longest
    /// wait (`max_wait` since it was issued) is given up on.
    pub fn observe(&self, look: Look, now: Timestamp, max_wait: Duration) -> Observation {
        let timed_out = self
            .update_issued_at
            .is_some_and(|issued| update_timed_out(issued, now, max_wait));
        if look.progress == UpdateProgress::InProgress && timed_out {
            Observation::GaveUp { waited: max_wait }
        } else {
            Observation::Looked(look)
        }
    }

    /// Applies what was seen of the update in flight, in the phase the stack is in.
    pub fn settle(&mut self, batch_id: &str, observation: Observation, at: Timestamp) -> Settled {
        let look = match observation {
            Observation::GaveUp { waited } => {
                let reason = format!(
                    "gave up waiting after {} s in phase {}; the stack may still be updating: check it, then `cascade run --retry-failed {batch_id}`",
                    waited.as_secs(),
                    self.phase
                );
                return self.conclude_by_phase(reason, at);
            }
            Observation::Looked(look) => look,
        };
        let failure = |what: &str| format!("{what} ({})", look.describe());
        let (outcome, reason) = match (self.phase, look.progress) {
            (_, UpdateProgress::InProgress) => return Settled::Waiting,
            (Phase::Remove, UpdateProgress::Complete) => {
                self.update_issued_at = None;
                return Settled::RemovalDone;
            }
            (Phase::Restore, UpdateProgress::Complete) if self.restore_before_retry => {
                self.restore_before_retry = false;
                self.update_issued_at = None;
                self.phase = Phase::Begin;
                return Settled::ReadyToBegin;
            }
            (Phase::Pin | Phase::Restore, UpdateProgress::Complete)
                if !self.restarts.is_empty() =>
            {
                self.restarts_next();
                return Settled::RestartNext;
            }
            (Phase::Pin | Phase::Restore, UpdateProgress::Complete) => (Outcome::Refreshed, None),
            (Phase::Remove, UpdateProgress::RolledBack) => (
                Outcome::Failed,
                Some(failure(
                    "the removal update failed and was rolled back; the stack is intact with the old value",
                )),
            ),
            (Phase::Pin, UpdateProgress::RolledBack) => (
                Outcome::Failed,
                Some(failure(
                    "the pin update failed and was rolled back; the stack is intact with the old value",
                )),
            ),
            (Phase::Pin, UpdateProgress::Broken) => (
                Outcome::Failed,
                Some(failure("the pin update failed and so did its rollback")),
            ),
            (Phase::Restore, UpdateProgress::RolledBack | UpdateProgress::Broken) => (
                Outcome::Degraded,
                Some(failure(
                    "the resources were removed but restoring them failed",
                )),
            ),
            (Phase::Remove, UpdateProgress::Broken) => (
                Outcome::Degraded,
                Some(failure("the removal update failed and so did its rollback")),
            ),
            (_, UpdateProgress::Gone) => (
                Outcome::Failed,
                Some(failure("the stack was deleted during the refresh")),
            ),
            (phase, progress) => (
                Outcome::Failed,
                Some(format!("unexpected {progress} update in phase {phase}")),
            ),
        };
        self.conclude(outcome, reason, at);
        Settled::Concluded(outcome)
    }

    /// Records an error the state machine caught in this stack's iteration as its
    /// outcome: degraded where resources may be removed, failed anywhere else.
    pub fn record_failure(&mut self, caught: &CaughtError, at: Timestamp) -> Settled {
        self.step_failed(caught, at)
    }

    /// Records a step that could not be carried out (`what`: why, e.g. a call throttled
    /// beyond the retries) as the stack's outcome: degraded where resources may be
    /// removed, failed anywhere else.
    pub fn step_failed(&mut self, what: &dyn fmt::Display, at: Timestamp) -> Settled {
        let reason = format!("the refresh step failed in phase {}: {what}", self.phase);
        self.conclude_by_phase(reason, at)
    }

    /// A `begin` that died before saving its state (a timeout, a call failing after the
    /// execute) was found to have executed its removal (`change_set`, when known): the
    /// state says so, so that a failure recorded now leaves the stack degraded.
    pub fn removal_found_executed(&mut self, change_set: Option<&str>, at: Timestamp) {
        if let Some(id) = change_set {
            self.change_set_executed(id);
        }
        self.update_issued(UpdateStep::Remove, at);
    }

    /// Whether a failure now may have left the removal executed unbeknown to the state:
    /// a recreate whose `begin` had not recorded its first update.
    pub fn removal_unrecorded(&self) -> bool {
        self.phase == Phase::Begin && self.strategy == Some(Strategy::Recreate)
    }

    /// Decides the outcome.
    pub fn conclude(&mut self, outcome: Outcome, reason: Option<String>, at: Timestamp) {
        self.outcome = Some(outcome);
        self.reason = reason;
        self.finished_at = Some(at.to_string());
        if outcome == Outcome::Refreshed {
            self.phase = Phase::Done;
        }
    }

    /// The stack's original was put back by hand (`cascade restore`): its resources are
    /// back, resolving the current value.
    pub fn restored_by_hand(&mut self, at: Timestamp) {
        self.phase = Phase::Done;
        self.failed_resources.clear();
        self.update_issued_at = None;
        self.restore_before_retry = false;
        self.conclude(
            Outcome::Refreshed,
            Some(format!("restored with `cascade restore` at {at}")),
            at,
        );
    }

    /// The stack was planned again (a retry): what it refreshes, and how, may have changed.
    pub fn replanned(&mut self, plan: &StackPlan) {
        self.strategy = Some(plan.strategy);
        self.resources = plan.resources.clone();
    }

    /// Makes a failed or degraded stack ready for another attempt; a degraded one puts
    /// its original back first.
    pub fn retry(&mut self) {
        let degraded = self.outcome == Some(Outcome::Degraded);
        self.outcome = None;
        self.reason = None;
        self.failed_resources.clear();
        self.refused.clear();
        self.finished_at = None;
        self.update_issued_at = None;
        self.attempt += 1;
        self.phase = if degraded {
            Phase::Restore
        } else {
            Phase::Begin
        };
        self.restore_before_retry = degraded;
    }

    /// Whether another attempt can be made (`--retry-failed`): failed or degraded, and
    /// planned (not skipped at planning).
    pub fn is_retryable(&self) -> bool {
        matches!(self.outcome, Some(Outcome::Failed | Outcome::Degraded)) && self.strategy.is_some()
    }

    /// The stack's line in the report; `restore_command` is given for a degraded stack.
    pub fn to_report(&self, batch_id: &str, restore_command: Option<String>) -> StackReport {
        let outcome = self.outcome.unwrap_or(Outcome::Failed);
        StackReport {
            stack_name: self.stack_name.clone(),
            stack_id: self.stack_id.clone(),
            strategy: self.strategy,
            resources: self.resources.clone(),
            outcome,
            phase: self.phase,
            reason: match self.outcome {
                Some(_) => self.reason.clone(),
                None => Some(format!(
                    "the batch stopped while this stack was in phase {}: resume it with `cascade run --resume {batch_id}`",
                    self.phase
                )),
            },
            failed_resources: self.failed_resources.clone(),
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            restore_command: restore_command.filter(|_| outcome == Outcome::Degraded),
            change_sets: self.change_sets.clone(),
            refused: self.refused.clone(),
        }
    }

    fn conclude_by_phase(&mut self, reason: String, at: Timestamp) -> Settled {
        let outcome = if self.phase.may_leave_resources_removed() {
            Outcome::Degraded
        } else {
            Outcome::Failed
        };
        self.conclude(outcome, Some(reason), at);
        Settled::Concluded(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(phase: Phase) -> StackState {
        StackState {
            phase,
            ..StackState::new("app", "id", Some(Strategy::Recreate), vec!["Fn".into()])
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn looked(status: &str) -> Observation {
        Observation::Looked(Look::at(status, Some("why".into())))
    }

    #[test]
    fn a_recreate_goes_begin_remove_finish_restore_done() {
        let t = at("2026-11-26T00:00:00Z");
        let mut s = state(Phase::Begin);
        assert_eq!(s.next_step(), Step::Begin);
        s.begin(t);
        s.update_issued(UpdateStep::Remove, t);
        assert_eq!((s.phase, s.next_step()), (Phase::Remove, Step::Poll));
        assert_eq!(
            s.settle("b1", looked("UPDATE_IN_PROGRESS"), t),
            Settled::Waiting
        );
        assert_eq!(
            s.settle("b1", looked("UPDATE_COMPLETE"), t),
            Settled::RemovalDone
        );
        assert_eq!(s.next_step(), Step::Finish);
        s.update_issued(UpdateStep::Restore, t);
        assert_eq!(s.next_step(), Step::Poll);
        assert_eq!(
            s.settle("b1", looked("UPDATE_COMPLETE"), t),
            Settled::Concluded(Outcome::Refreshed)
        );
        assert_eq!((s.phase, s.next_step()), (Phase::Done, Step::Done));
        assert_eq!(s.started_at.as_deref(), Some("2026-11-26T00:00:00Z"));
    }

    fn with_restarts(strategy: Strategy, services: &[&str]) -> StackState {
        StackState {
            restarts: services
                .iter()
                .map(|id| ServiceRestart {
                    logical_id: id.to_string(),
                    cluster: None,
                    service: None,
                    deployment_id: None,
                    completed: false,
                })
                .collect(),
            ..StackState::new("app", "id", Some(strategy), vec!["Fn".into()])
        }
    }

    #[test]
    fn a_pin_then_restarts_every_service_and_waits_for_every_rollout() {
        let t = at("2026-11-26T00:00:00Z");
        let max = Duration::from_secs(600);
        let mut s = with_restarts(Strategy::Pin, &["Api", "Worker"]);
        s.update_issued(UpdateStep::Pin, t);
        assert_eq!(
            s.settle("b1", looked("UPDATE_COMPLETE"), t),
            Settled::RestartNext,
            "the pin is in: restarts come next, the stack is not refreshed yet"
        );
        assert_eq!((s.phase, s.next_step()), (Phase::Restart, Step::Restart));
        s.restart_started("Api", ("c", "api"), "ecs-svc/1", t);
        assert_eq!(s.next_step(), Step::Restart, "Worker is not restarted yet");
        s.restart_started("Worker", ("c", "worker"), "ecs-svc/2", t);
        assert_eq!(s.next_step(), Step::PollRollout);
        assert_eq!(
            s.rollout_observed("Api", &Rollout::Completed, t, max),
            Settled::Waiting
        );
        assert_eq!(
            s.rollout_observed("Worker", &Rollout::InProgress, t, max),
            Settled::Waiting
        );
        assert_eq!(
            s.rollout_observed("Worker", &Rollout::Completed, t, max),
            Settled::Concluded(Outcome::Refreshed)
        );
        assert_eq!((s.phase, s.next_step()), (Phase::Done, Step::Done));
    }

    #[test]
    fn a_failed_or_endless_rollout_fails_the_stack_never_degrades_it() {
        let t = at("2026-11-26T00:00:00Z");
        let max = Duration::from_secs(60);
        let mut s = with_restarts(Strategy::Restart, &["Api"]);
        s.restarts_next();
        assert_eq!(s.next_step(), Step::Restart);
        s.restart_started("Api", ("c", "api"), "ecs-svc/1", t);
        let failed =
            Rollout::Failed("ECS deployment circuit breaker: tasks failed to start.".into());
        assert_eq!(
            s.rollout_observed("Api", &failed, t, max),
            Settled::Concluded(Outcome::Failed)
        );
        assert_eq!(
            s.reason.as_deref(),
            Some(
                "the new deployment of ECS service Api failed: ECS deployment circuit breaker: tasks failed to start."
            )
        );
        let mut s = with_restarts(Strategy::Pin, &["Api"]);
        s.restarts_next();
        s.restart_started("Api", ("c", "api"), "ecs-svc/1", t);
        assert_eq!(
            s.rollout_observed("Api", &Rollout::InProgress, at("2026-11-26T00:00:59Z"), max),
            Settled::Waiting
        );
        assert_eq!(
            s.rollout_observed("Api", &Rollout::InProgress, at("2026-11-26T00:01:01Z"), max),
            Settled::Concluded(Outcome::Failed)
        );
        assert!(
            s.reason
                .as_deref()
                .unwrap()
                .contains("gave up waiting after 60 s")
        );
        assert!(
            s.reason
                .as_deref()
                .unwrap()
                .ends_with("the template updates are done")
        );
        assert!(!Phase::Restart.may_leave_resources_removed());
    }

    #[test]
    fn answers_to_update_requests_move_the_state() {
        let t = at("2026-11-26T00:00:00Z");
        let mut s = state(Phase::Begin);
        s.update_answered(UpdateStep::Pin, UpdateAnswer::NoChange, t);
        assert_eq!(
            (s.outcome, s.phase),
            (Some(Outcome::Refreshed), Phase::Done)
        );
        let mut s = state(Phase::Begin);
        s.update_answered(UpdateStep::Remove, UpdateAnswer::NoChange, t);
        assert_eq!((s.outcome, s.phase), (Some(Outcome::Failed), Phase::Begin));
        let mut s = state(Phase::Begin);
        s.update_answered(UpdateStep::Pin, UpdateAnswer::Rejected("bad".into()), t);
        assert_eq!(s.outcome, Some(Outcome::Failed));
        assert!(
            s.reason
                .as_deref()
                .unwrap()
                .ends_with("nothing changed: bad")
        );
        let mut s = state(Phase::Remove);
        s.update_answered(UpdateStep::Restore, UpdateAnswer::Rejected("bad".into()), t);
        assert_eq!(
            (s.outcome, s.phase),
            (Some(Outcome::Degraded), Phase::Restore)
        );
        let mut s = state(Phase::Remove);
        s.update_answered(UpdateStep::Restore, UpdateAnswer::NoChange, t);
        assert_eq!((s.phase, s.next_step()), (Phase::Restore, Step::Poll));
    }

    #[test]
    fn a_refused_change_set_skips_a_first_update_and_degrades_a_restore() {
        let t = at("2026-11-26T00:00:00Z");
        for step in [UpdateStep::Remove, UpdateStep::Pin] {
            let mut s = state(Phase::Begin);
            let problems = vec!["replace Db (AWS::RDS::DBInstance, Replacement True)".to_string()];
            s.update_answered(step, UpdateAnswer::Refused(problems.clone()), t);
            assert_eq!((s.outcome, s.phase), (Some(Outcome::Skipped), Phase::Begin));
            assert_eq!(
                s.reason.as_deref(),
                Some(
                    "CloudFormation's change set was refused and deleted, nothing changed: it would replace Db (AWS::RDS::DBInstance, Replacement True)"
                )
            );
            assert_eq!(s.refused, problems);
            assert_eq!(s.to_report("b", None).refused, problems);
            assert_eq!(s.next_step(), Step::Done);
        }
        let mut s = state(Phase::Remove);
        s.update_answered(
            UpdateStep::Restore,
            UpdateAnswer::Refused(vec!["add X (AWS::SNS::Topic)".into()]),
            t,
        );
        assert_eq!(
            (s.outcome, s.phase),
            (Some(Outcome::Degraded), Phase::Restore)
        );
        assert!(
            s.reason
                .as_deref()
                .unwrap()
                .ends_with("nothing changed: it would add X (AWS::SNS::Topic)")
        );
        assert!(s.is_retryable());
    }

    #[test]
    fn executed_change_sets_are_recorded_once_and_reported() {
        let mut s = state(Phase::Begin);
        s.change_set_executed("arn:cs/1");
        s.change_set_executed("arn:cs/1");
        s.change_set_executed("");
        s.change_set_executed("arn:cs/2");
        assert_eq!(s.change_sets, ["arn:cs/1", "arn:cs/2"]);
        s.retry();
        assert_eq!(s.change_sets.len(), 2, "kept across attempts");
        assert_eq!(
            s.to_report("b1", None).change_sets,
            ["arn:cs/1", "arn:cs/2"]
        );
    }

    #[test]
    fn failures_are_degraded_only_where_resources_may_be_removed() {
        let t = at("2026-11-26T00:00:00Z");
        for (phase, status, outcome) in [
            (Phase::Remove, "UPDATE_ROLLBACK_COMPLETE", Outcome::Failed),
            (Phase::Remove, "UPDATE_ROLLBACK_FAILED", Outcome::Degraded),
            (Phase::Pin, "UPDATE_ROLLBACK_COMPLETE", Outcome::Failed),
            (Phase::Pin, "UPDATE_ROLLBACK_FAILED", Outcome::Failed),
            (
                Phase::Restore,
                "UPDATE_ROLLBACK_COMPLETE",
                Outcome::Degraded,
            ),
            (Phase::Pin, "DELETE_COMPLETE", Outcome::Failed),
        ] {
            let mut s = state(phase);
            s.update_issued_at = Some(t);
            let settled = s.settle("b1", looked(status), t);
            assert_eq!(settled, Settled::Concluded(outcome), "{phase} {status}");
            assert!(settled.is_failure());
            assert!(s.reason.as_deref().unwrap().contains(status), "{s:?}");
        }
    }

    #[test]
    fn the_longest_wait_is_measured_from_the_update_once() {
        let issued = at("2026-11-26T00:00:00Z");
        let max = Duration::from_secs(60);
        let mut s = state(Phase::Remove);
        s.update_issued_at = Some(issued);
        let busy = Look::at("UPDATE_IN_PROGRESS", None);
        assert_eq!(
            s.observe(busy.clone(), at("2026-11-26T00:00:59Z"), max),
            Observation::Looked(busy.clone())
        );
        let gave_up = s.observe(busy, at("2026-11-26T00:01:01Z"), max);
        assert_eq!(gave_up, Observation::GaveUp { waited: max });
        let done = Look::at("UPDATE_COMPLETE", None);
        assert_eq!(
            s.observe(done.clone(), at("2026-11-26T09:00:00Z"), max),
            Observation::Looked(done),
            "a finished update is never given up on"
        );
        assert_eq!(
            s.settle("b1", gave_up.clone(), issued),
            Settled::Concluded(Outcome::Degraded)
        );
        assert!(
            s.reason
                .as_deref()
                .unwrap()
                .contains("gave up waiting after 60 s in phase remove")
        );
        let mut pin = state(Phase::Pin);
        assert_eq!(
            pin.settle("b1", gave_up, issued),
            Settled::Concluded(Outcome::Failed)
        );
    }

    #[test]
    fn a_degraded_stack_retried_is_restored_then_begins_again() {
        let t = at("2026-11-26T00:00:00Z");
        let mut s = state(Phase::Restore);
        s.conclude(Outcome::Degraded, Some("restore failed".into()), t);
        assert!(s.is_retryable());
        s.retry();
        assert_eq!(
            (s.outcome, s.phase, s.attempt, s.next_step()),
            (None, Phase::Restore, 2, Step::Finish)
        );
        s.update_issued(UpdateStep::Restore, t);
        assert_eq!(
            s.settle("b1", looked("UPDATE_COMPLETE"), t),
            Settled::ReadyToBegin
        );
        assert_eq!((s.phase, s.next_step()), (Phase::Begin, Step::Begin));
        let mut failed = state(Phase::Pin);
        failed.conclude(Outcome::Failed, None, t);
        failed.retry();
        assert_eq!(
            (
                failed.phase,
                failed.next_step(),
                failed.restore_before_retry
            ),
            (Phase::Begin, Step::Begin, false)
        );
    }

    #[test]
    fn a_caught_error_is_degraded_only_where_resources_may_be_removed() {
        let t = at("2026-11-26T00:00:00Z");
        let error = CaughtError::from_value(
            &json!({"Error": "Throttled", "Cause": "{\"errorType\":\"Throttled\",\"errorMessage\":\"Rate exceeded\"}"}),
        );
        let mut s = state(Phase::Remove);
        assert_eq!(
            s.record_failure(&error, t),
            Settled::Concluded(Outcome::Degraded)
        );
        assert_eq!(
            s.reason.as_deref(),
            Some("the refresh step failed in phase remove: Throttled: Rate exceeded")
        );
        let mut s = state(Phase::Begin);
        s.record_failure(&CaughtError::default(), t);
        assert_eq!(s.outcome, Some(Outcome::Failed));
        assert!(s.reason.unwrap().contains("unknown error"));
    }

    #[test]
    fn a_begin_found_to_have_executed_its_removal_fails_degraded() {
        let t = at("2026-11-26T00:00:00Z");
        let timeout = CaughtError::from_value(&json!({"Error": "States.Timeout"}));
        let mut s = state(Phase::Begin);
        assert!(s.removal_unrecorded());
        s.removal_found_executed(Some("arn:cs"), t);
        assert!(!s.removal_unrecorded());
        assert_eq!(
            s.record_failure(&timeout, t),
            Settled::Concluded(Outcome::Degraded)
        );
        assert_eq!(s.change_sets, ["arn:cs"]);
        assert!(s.reason.unwrap().contains("phase remove: States.Timeout"));
        // A pin removes nothing: never unrecorded.
        let pin = StackState {
            phase: Phase::Begin,
            ..StackState::new("app", "id", Some(Strategy::Pin), vec!["Fn".into()])
        };
        assert!(!pin.removal_unrecorded());
    }

    #[test]
    fn states_round_trip_and_read_the_shape_saved_before() {
        let mut s = state(Phase::Remove);
        s.update_issued_at = Some(at("2026-11-26T00:00:00.5Z"));
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("restore_before_retry"), "{text}");
        assert_eq!(serde_json::from_str::<StackState>(&text).unwrap(), s);
        let old = json!({"stack_name": "a", "stack_id": "i", "strategy": "pin", "resources": [],
            "phase": "pin", "outcome": null, "reason": null, "failed_resources": [],
            "started_at": null, "finished_at": null, "attempt": 1,
            "update_issued_at": "2026-11-26T00:00:00Z"});
        let read: StackState = serde_json::from_value(old).unwrap();
        assert_eq!(read.next_step(), Step::Poll);
        let bad = json!({"stack_name": "a", "stack_id": "i", "strategy": "pin", "resources": [],
            "phase": "pin", "outcome": null, "reason": null, "started_at": null,
            "finished_at": null, "attempt": 1, "update_issued_at": "yesterday"});
        assert!(serde_json::from_value::<StackState>(bad).is_err());
    }
}
