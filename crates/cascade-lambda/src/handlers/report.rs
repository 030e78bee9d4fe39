//! `report`: builds the batch's report from the saved state of every stack, writes it to
//! S3 as JSON and Markdown, and returns where it is with the totals.

use cascade_aws::refresh::now;
use cascade_aws::run::{load_states, write_report};
use cascade_core::batch::{BatchManifest, STATE_SCHEMA_VERSION, build_report, keys};
use cascade_core::plan::{Plan, StrategyChoice};
use cascade_core::report::Totals;
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
    let input = &event.input;
    let batch_id = input
        .pointer("/discovery/batch_id")
        .and_then(Value::as_str)
        .or_else(|| input.get("batch_id").and_then(Value::as_str))
        .ok_or_else(|| HandlerError::new(ErrorKind::InvalidInput, "the event names no batch_id"))?
        .to_string();
    let (mut manifest, states) = match refresher
        .store
        .get_json::<BatchManifest>(&keys::manifest(&batch_id))
        .await?
    {
        Some(manifest) => {
            let states = load_states(&refresher, &manifest).await?;
            (manifest, states)
        }
        None => (
            BatchManifest {
                schema_version: STATE_SCHEMA_VERSION,
                batch_id: batch_id.clone(),
                execution: event.execution.clone(),
                created_at: now(),
                secrets: Vec::new(),
                strategy: StrategyChoice::Auto,
                plan: Plan::empty(Vec::new()),
                notes: Vec::new(),
            },
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
                .push(format!("{what}: {}", describe_error(error)));
        }
    }
    let report = build_report(&manifest, &states, Some(&now()));
    write_report(&refresher, &report).await?;
    Ok(ReportResult {
        batch_id,
        report_key: keys::report_json(&report.batch_id),
        totals: report.totals,
    })
}

/// `{"Error": ..., "Cause": ...}` in a line; a Lambda error's cause is its JSON body.
fn describe_error(error: &Value) -> String {
    let name = error
        .get("Error")
        .and_then(Value::as_str)
        .unwrap_or("error");
    let cause = error.get("Cause").and_then(Value::as_str).unwrap_or("");
    let cause = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| cause.to_string());
    if cause.is_empty() {
        name.to_string()
    } else {
        format!("{name}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_read_as_a_line() {
        assert_eq!(
            describe_error(
                &json!({"Error": "AwsCallFailed", "Cause": "{\"errorType\":\"AwsCallFailed\",\"errorMessage\":\"cloudformation:DescribeStacks failed: AccessDenied: no\"}"})
            ),
            "AwsCallFailed: cloudformation:DescribeStacks failed: AccessDenied: no"
        );
        assert_eq!(
            describe_error(&json!({"Error": "States.Timeout"})),
            "States.Timeout"
        );
    }
}
