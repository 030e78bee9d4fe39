//! `gatekeeper`: runs on a schedule and when an execution ends; starts one execution from
//! the queued tickets when none is running (see `cascade_aws::gatekeeper`). Its event (a
//! schedule tick or an execution's status change) is not read.

use cascade_aws::gatekeeper::run_gatekeeper;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::config::GatekeeperConfig;
use crate::error::HandlerError;
use crate::handlers::Context;

/// The result: what the invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatekeeperResult {
    /// The outcome, for people (`Started { .. }`, `Busy { .. }`, `Idle`, ...).
    pub outcome: String,
}

/// Handles a scheduled or execution-status-change event.
pub async fn handle(context: &Context<GatekeeperConfig>) -> Result<GatekeeperResult, HandlerError> {
    // A failure keeps the kind of the AWS error behind it (a throttled call stays
    // `Throttled`).
    let outcome = run_gatekeeper(&context.clients, &context.config).await?;
    info!(?outcome, "gatekeeper");
    Ok(GatekeeperResult {
        outcome: outcome.to_string(),
    })
}
