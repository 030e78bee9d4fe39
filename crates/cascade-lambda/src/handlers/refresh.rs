//! `refresh`: one step of one stack, called by the state machine inside each map
//! iteration: `begin`, `poll`, `finish`, or `record-failure` (any error caught in the
//! iteration becomes the stack's outcome). Every step is safe to call again.

use std::time::{Duration, SystemTime};

use cascade_aws::refresh::now;
use cascade_aws::run::load_manifest;
use cascade_core::batch::{StackState, keys};
use cascade_core::refresh::Progress;
use cascade_core::report::{Outcome, Phase};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::RefreshConfig;
use crate::error::{ErrorKind, HandlerError};
use crate::handlers::Context;

/// Which step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Save the original, issue the first update.
    Begin,
    /// Look at the update.
    Poll,
    /// Recreate: update back to the original.
    Finish,
    /// Record an error the state machine caught as the stack's outcome.
    RecordFailure,
}

/// The event.
#[derive(Debug, Deserialize)]
pub struct RefreshEvent {
    /// The step.
    pub action: Action,
    /// The batch.
    pub batch_id: String,
    /// The stack.
    pub stack: String,
    /// Seconds between two looks.
    #[serde(default = "default_wait")]
    pub wait_seconds: u32,
    /// With `record-failure`: the error the state machine caught (`Error`, `Cause`).
    #[serde(default)]
    pub error: Option<Value>,
}

fn default_wait() -> u32 {
    30
}

/// What comes next for the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Next {
    /// Wait, then poll.
    Wait,
    /// The removal completed: restore (recreate).
    Finish,
    /// The stack's outcome is decided.
    Done,
}

/// The result, which is also the next step's input.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepResult {
    /// The batch.
    pub batch_id: String,
    /// The stack.
    pub stack: String,
    /// What comes next.
    pub next: Next,
    /// Seconds to wait before the next look.
    pub wait_seconds: u32,
}

/// Handles a `refresh` event.
pub async fn handle(
    context: &Context<RefreshConfig>,
    event: RefreshEvent,
) -> Result<StepResult, HandlerError> {
    let refresher = context.refresher();
    let batch = event.batch_id.as_str();
    let manifest = load_manifest(&refresher, batch).await?;
    let plan = manifest
        .plan
        .stacks
        .iter()
        .find(|p| p.stack_name == event.stack)
        .ok_or_else(|| {
            HandlerError::new(
                ErrorKind::InvalidInput,
                format!("stack {} is not in the plan of batch {batch}", event.stack),
            )
        })?
        .clone();
    let mut state: StackState = refresher
        .store
        .get_json(&keys::state(batch, &event.stack))
        .await?
        .unwrap_or_else(|| StackState::planned(&plan));

    let next = if state.is_final() {
        Next::Done
    } else {
        match event.action {
            Action::Begin => {
                if matches!(state.phase, Phase::Begin | Phase::Plan) {
                    refresher.begin(&manifest, &plan, &mut state).await?;
                }
                waiting_or_done(&state)
            }
            Action::Poll => {
                let look = refresher.poll(&event.stack).await?;
                if look.progress == Progress::InProgress
                    && !waited_too_long(&state, context.config.max_wait)
                {
                    Next::Wait
                } else {
                    let look = (look.progress != Progress::InProgress).then_some(look);
                    if refresher.settle(batch, &mut state, look).await? {
                        Next::Finish
                    } else {
                        Next::Done
                    }
                }
            }
            Action::Finish => {
                if state.phase == Phase::Remove {
                    refresher.finish(batch, &mut state).await?;
                }
                waiting_or_done(&state)
            }
            Action::RecordFailure => {
                record_failure(&mut state, event.error.as_ref());
                refresher.save_state(batch, &state).await?;
                Next::Done
            }
        }
    };
    Ok(StepResult {
        batch_id: event.batch_id,
        stack: event.stack,
        next,
        wait_seconds: event.wait_seconds.max(1),
    })
}

fn waiting_or_done(state: &StackState) -> Next {
    if state.is_final() {
        Next::Done
    } else {
        Next::Wait
    }
}

/// Whether the update being waited on was issued longer ago than `max_wait`.
fn waited_too_long(state: &StackState, max_wait: Duration) -> bool {
    let Some(issued) = state.update_issued_at.as_deref().and_then(|t| {
        aws_smithy_types::DateTime::from_str(t, aws_smithy_types::date_time::Format::DateTime).ok()
    }) else {
        return false;
    };
    let issued = SystemTime::try_from(issued).unwrap_or(SystemTime::now());
    SystemTime::now().duration_since(issued).unwrap_or_default() > max_wait
}

/// The stack's outcome after an error the state machine caught: degraded when resources
/// may be removed (between removal and restore), failed otherwise.
fn record_failure(state: &mut StackState, error: Option<&Value>) {
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (name, cause) = (field("Error"), field("Cause"));
    let cause = serde_json::from_str::<Value>(&cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or(cause);
    let outcome = match state.phase {
        Phase::Remove | Phase::Restore => Outcome::Degraded,
        _ => Outcome::Failed,
    };
    let reason = format!(
        "the refresh step failed in phase {:?}: {}{}",
        state.phase,
        if name.is_empty() {
            "unknown error"
        } else {
            &name
        },
        if cause.is_empty() {
            String::new()
        } else {
            format!(": {cause}")
        }
    );
    state.conclude(outcome, Some(reason), &now());
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_core::plan::Strategy;
    use serde_json::json;

    fn state(phase: Phase) -> StackState {
        StackState {
            stack_name: "app".into(),
            stack_id: "id".into(),
            strategy: Some(Strategy::Recreate),
            resources: vec![],
            phase,
            outcome: None,
            reason: None,
            failed_resources: vec![],
            started_at: None,
            finished_at: None,
            attempt: 1,
            update_issued_at: None,
        }
    }

    #[test]
    fn a_caught_error_is_degraded_only_where_resources_may_be_removed() {
        let error = json!({"Error": "Throttled", "Cause": "{\"errorType\":\"Throttled\",\"errorMessage\":\"Rate exceeded\"}"});
        let mut s = state(Phase::Remove);
        record_failure(&mut s, Some(&error));
        assert_eq!(s.outcome, Some(Outcome::Degraded));
        assert_eq!(
            s.reason.as_deref(),
            Some("the refresh step failed in phase Remove: Throttled: Rate exceeded")
        );
        let mut s = state(Phase::Begin);
        record_failure(&mut s, None);
        assert_eq!(s.outcome, Some(Outcome::Failed));
        assert!(s.reason.unwrap().contains("unknown error"));
    }

    #[test]
    fn waiting_too_long_is_measured_from_the_update() {
        let mut s = state(Phase::Remove);
        assert!(!waited_too_long(&s, Duration::from_secs(1)));
        s.update_issued_at = Some("2020-01-01T00:00:00Z".into());
        assert!(waited_too_long(&s, Duration::from_secs(60)));
        s.update_issued_at = Some(now());
        assert!(!waited_too_long(&s, Duration::from_secs(60)));
    }

    #[test]
    fn events_and_results_have_the_state_machine_shape() {
        let e: RefreshEvent = serde_json::from_value(json!({"action": "record-failure", "batch_id": "b", "stack": "s", "error": {"Error": "X"}})).unwrap();
        assert_eq!(e.action, Action::RecordFailure);
        assert_eq!(e.wait_seconds, 30);
        let r = serde_json::to_value(StepResult {
            batch_id: "b".into(),
            stack: "s".into(),
            next: Next::Finish,
            wait_seconds: 5,
        })
        .unwrap();
        assert_eq!(
            r,
            json!({"batch_id": "b", "stack": "s", "next": "finish", "wait_seconds": 5})
        );
    }
}
