//! `report`: builds the batch's report from the saved state of every stack, writes it to
//! S3 as JSON and Markdown, and returns where it is with the totals.

use cascade_aws::refresh::Refresher;
use cascade_core::batch::{BatchManifest, build_report, keys};
use cascade_core::caught::CaughtError;
use cascade_core::report::{Report, Totals};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ReportConfig;
use crate::error::{ErrorKind, HandlerError};
use crate::handlers::Context;

/// The event: the execution and its state (the execution input plus what the steps added).
#[derive(Debug, Deserialize)]
pub struct ReportEvent {
    /// The execution id.
    pub execution: String,
    /// The state: `batch_id`, `discovery` (`batch_id`, or `error` when discovery failed),
    /// and `error` when the refresh map itself stopped.
    pub input: Value,
}

/// The result.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReportResult {
    /// The batch.
    pub batch_id: String,
    /// Key of the JSON report in the bucket.
    pub report_key: String,
    /// Counts by outcome.
    pub totals: Totals,
}

/// Handles a `report` event.
pub async fn handle(
    context: &Context<ReportConfig>,
    event: ReportEvent,
) -> Result<ReportResult, HandlerError> {
    let refresher = context.refresher();
    let report = assemble(&refresher, &event.execution, &event.input).await?;
    refresher.batches().write_report(&report).await?;
    Ok(ReportResult {
        batch_id: report.batch_id.clone(),
        report_key: keys::report_json(&report.batch_id),
        totals: report.totals,
    })
}

/// The batch's report, built from the saved state of every stack and what the execution's
/// state says went wrong (`input`: the state the Report step gets). Also what Notify tells
/// when the report could not be saved.
pub async fn assemble(
    refresher: &Refresher,
    execution: &str,
    input: &Value,
) -> Result<Report, HandlerError> {
    let batch_id = input
        .pointer("/discovery/batch_id")
        .and_then(Value::as_str)
        .or_else(|| input.get("batch_id").and_then(Value::as_str))
        .ok_or_else(|| HandlerError::new(ErrorKind::InvalidInput, "the event names no batch_id"))?
        .to_string();
    let batches = refresher.batches();
    let (mut manifest, states) = match batches.find_manifest(&batch_id).await? {
        Some(manifest) => {
            let states = batches.states(&manifest).await?;
            (manifest, states)
        }
        None => (
            BatchManifest::missing(&batch_id, execution, Timestamp::now()),
            Vec::new(),
        ),
    };
    for (what, pointer) in [
        ("discovery failed", "/discovery/error"),
        ("the refresh map stopped", "/error"),
    ] {
        if let Some(error) = input.pointer(pointer) {
            manifest
                .notes
                .push(format!("{what}: {}", CaughtError::from_value(error)));
        }
    }
    Ok(build_report(
        &manifest,
        &states,
        Some(Timestamp::now()),
        &refresher.restore_target(),
    ))
}
