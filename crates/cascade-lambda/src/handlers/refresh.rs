//! `refresh`: one step of one stack, called by the state machine inside each map
//! iteration: `begin`, `poll`, `finish`, or `record-failure` (any error caught in the
//! iteration becomes the stack's outcome). Every step is safe to call again.

use cascade_core::caught::CaughtError;
use cascade_core::refresh::{StackState, Step};
use jiff::Timestamp;
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
    /// Start a new deployment of each ECS service to restart.
    Restart,
    /// Look at the restarts' deployments.
    PollRollout,
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
    cascade_core::defaults::MAX_POLL_SECONDS as u32
}

/// What comes next for the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Next {
    /// Wait, then poll.
    Wait,
    /// The removal completed: restore (recreate).
    Finish,
    /// The template updates are done: restart the ECS services.
    Restart,
    /// Wait, then look at the restarts' deployments.
    WaitRollout,
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

/// Handles a `refresh` event: carries out the step the stack's state calls for, when it
/// is the one the event asks for (a retried event whose step is done already does
/// nothing), and says what comes next.
pub async fn handle(
    context: &Context<RefreshConfig>,
    event: RefreshEvent,
) -> Result<StepResult, HandlerError> {
    let refresher = context.refresher();
    let batches = refresher.batches();
    let batch = event.batch_id.as_str();
    let manifest = batches.stack_manifest(batch, &event.stack).await?;
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
    let mut state = batches
        .state(batch, &event.stack)
        .await?
        .unwrap_or_else(|| StackState::planned(&plan));

    match (event.action, state.next_step()) {
        (_, Step::Done) => {}
        (Action::RecordFailure, _) => {
            let caught = event
                .error
                .as_ref()
                .map(CaughtError::from_value)
                .unwrap_or_default();
            // A `begin` timed out after its removal executed: the phase alone says intact.
            refresher
                .reconcile_unrecorded_removal(batch, &mut state)
                .await?;
            state.record_failure(&caught, Timestamp::now());
            refresher.save_state(batch, &state).await?;
        }
        (_, Step::Begin) => refresher.begin(&manifest, &plan, &mut state).await?,
        (Action::Poll, Step::Poll) => {
            let look = refresher.poll(&event.stack).await?;
            let observation = state.observe(look, Timestamp::now(), context.config.max_wait);
            refresher.settle(batch, &mut state, observation).await?;
        }
        (Action::Finish, Step::Finish) => refresher.finish(&manifest, &plan, &mut state).await?,
        (Action::Restart, Step::Restart) => refresher.restart(batch, &mut state).await?,
        (Action::PollRollout, Step::PollRollout) => {
            refresher.poll_rollouts(batch, &mut state).await?;
        }
        // The state is past what the event asks for (a retried event): say where it is.
        (_, Step::Poll | Step::Finish | Step::Restart | Step::PollRollout) => {}
    }
    let next = match state.next_step() {
        Step::Done => Next::Done,
        Step::Finish => Next::Finish,
        Step::Restart => Next::Restart,
        Step::PollRollout => Next::WaitRollout,
        Step::Begin | Step::Poll => Next::Wait,
    };
    Ok(StepResult {
        batch_id: event.batch_id,
        stack: event.stack,
        next,
        // As given: the template's PollSeconds (MinValue 5) keeps production waits sane,
        // and a local run may wait 0 s.
        wait_seconds: event.wait_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
