//! `gatekeeper`: runs on a schedule and when an execution ends; starts one execution from
//! the queued tickets when none is running (see `cascade_aws::gatekeeper`).

use cascade_aws::gatekeeper::{GatekeeperConfig, run_gatekeeper};
use serde_json::{Value, json};
use tracing::info;

use crate::error::{ErrorKind, HandlerError};
use crate::handlers::Context;

/// Seconds a received ticket stays invisible to other receivers while this runs.
const VISIBILITY_TIMEOUT_SECONDS: i32 = 120;
/// Receive rounds per invocation (a poison ticket is received again until it moves to the
/// dead-letter queue).
const MAX_RECEIVE_ROUNDS: u32 = 5;

/// Handles a scheduled or execution-status-change event (its content is not needed).
pub async fn handle(context: &Context, _event: Value) -> Result<Value, HandlerError> {
    let config = &context.config;
    let missing =
        |what: &str| HandlerError::new(ErrorKind::ConfigurationError, format!("{what} is not set"));
    let gate = GatekeeperConfig {
        queue_url: config
            .queue_url
            .clone()
            .ok_or_else(|| missing("CASCADE_QUEUE_URL"))?,
        state_machine_arn: config
            .state_machine_arn
            .clone()
            .ok_or_else(|| missing("CASCADE_STATE_MACHINE_ARN"))?,
        options: config.run_options.clone(),
        visibility_timeout_seconds: VISIBILITY_TIMEOUT_SECONDS,
        max_receive_rounds: MAX_RECEIVE_ROUNDS,
    };
    let outcome = run_gatekeeper(&context.clients, &gate)
        .await
        .map_err(|e| HandlerError::new(ErrorKind::AwsCallFailed, e.to_string()))?;
    info!(?outcome, "gatekeeper");
    Ok(json!({ "outcome": format!("{outcome:?}") }))
}
