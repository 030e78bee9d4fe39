//! `notify`: posts the report's summary to Slack. Without a configured webhook it does
//! nothing; when Slack cannot be reached it fails with `NotificationFailed`, which the
//! state machine catches: the report is already saved, the run is not failed for it.
//! When the report could not be saved (S3 unavailable), it is told anyway: built again from
//! the batch's states, saying first that it is not saved.

use cascade_aws::slack::{Notification, SlackClient};
use cascade_core::batch::{BatchManifest, build_report};
use cascade_core::caught::CaughtError;
use cascade_core::report::Report;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::config::NotifyConfig;
use crate::error::{ErrorKind, HandlerError};
use crate::handlers::{Context, report};

/// The event: where the saved report is, or (when it could not be saved) why not.
#[derive(Debug, Deserialize)]
pub struct NotifyEvent {
    /// The batch.
    pub batch_id: String,
    /// Key of the JSON report in the bucket.
    #[serde(default)]
    pub report_key: Option<String>,
    /// The Report step's error, when the report could not be written: the report is then
    /// built again here from the batch's saved states, and the message says it is not saved.
    #[serde(default)]
    pub report_error: Option<Value>,
    /// The execution (with `report_error`).
    #[serde(default)]
    pub execution: Option<String>,
}

/// The result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotifyResult {
    /// Whether Slack took the message.
    pub delivered: bool,
    /// Why not, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The report of a batch whose report could not be saved: built again from the batch's
/// saved states (or, when they cannot be read either, the batch alone), with a note
/// saying so first. Nothing is written.
async fn unsaved_report(
    context: &Context<NotifyConfig>,
    event: &NotifyEvent,
    error: Option<&Value>,
) -> Report {
    let why = error.map_or_else(
        || "no report was given".to_string(),
        |e| CaughtError::from_value(e).to_string(),
    );
    let execution = event.execution.as_deref().unwrap_or("unknown execution");
    let input = serde_json::json!({ "batch_id": event.batch_id });
    let refresher = context.refresher();
    let mut report = match report::assemble(&refresher, execution, &input).await {
        Ok(report) => report,
        Err(e) => {
            warn!(batch = %event.batch_id, "the batch's states cannot be read either: {e}");
            let manifest = BatchManifest::missing(&event.batch_id, execution, Timestamp::now());
            let mut report = build_report(
                &manifest,
                &[],
                Some(Timestamp::now()),
                &refresher.restore_target(),
            );
            report.notes.push(format!(
                "the stacks' outcomes could not be read either ({e}): `cascade status --last` or `cascade report {}` once S3 answers",
                event.batch_id
            ));
            report
        }
    };
    let bucket = match context.store().state_location() {
        cascade_core::restore::StateLocation::Bucket { bucket, .. } => bucket,
        _ => String::new(),
    };
    report.notes.insert(
        0,
        format!(
            "the report could not be saved to S3 ({why}); the stacks' states are kept under batches/{}/: `cascade report {} --bucket {bucket}` builds and saves it once S3 answers",
            event.batch_id, event.batch_id
        ),
    );
    report
}

/// Handles a `notify` event, posting through the process's Slack client.
pub async fn handle(
    context: &Context<NotifyConfig>,
    slack: &SlackClient,
    event: NotifyEvent,
) -> Result<NotifyResult, HandlerError> {
    let Some(secret) = &context.config.slack_webhook_secret else {
        info!(batch = %event.batch_id, "no Slack webhook configured: nothing sent");
        return Ok(NotifyResult {
            delivered: false,
            reason: Some("no Slack webhook configured".into()),
        });
    };
    let store = context.store();
    let (report, location) = match (&event.report_key, &event.report_error) {
        (Some(key), None) => {
            let location = store.location(key);
            let report: Report = store.get_json(key).await?.ok_or_else(|| {
                HandlerError::new(ErrorKind::BatchNotFound, format!("no report at {location}"))
            })?;
            (report, Some(location))
        }
        (_, error) => (unsaved_report(context, &event, error.as_ref()).await, None),
    };
    match slack
        .notify_report(
            &context.clients.secrets,
            secret,
            &report,
            location.as_deref(),
        )
        .await
    {
        Notification::Delivered { attempts } => {
            info!(batch = %event.batch_id, attempts, "Slack message delivered");
            Ok(NotifyResult {
                delivered: true,
                reason: None,
            })
        }
        Notification::NotSent(e) => Err(HandlerError::new(
            ErrorKind::NotificationFailed,
            e.to_string(),
        )),
        Notification::GaveUp { attempts, reason } => Err(HandlerError::new(
            ErrorKind::NotificationFailed,
            format!(
                "Slack did not take the message after {attempts} attempt(s): {reason} ({})",
                location.map_or("the report is not saved".to_string(), |l| format!(
                    "the report is saved at {l}"
                ))
            ),
        )),
    }
}
