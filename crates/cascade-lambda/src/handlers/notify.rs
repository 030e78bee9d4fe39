//! `notify`: posts the report's summary to Slack. Without a configured webhook it does
//! nothing; when Slack cannot be reached it fails with `NotificationFailed`, which the
//! state machine catches: the report is already saved, the run is not failed for it.

use cascade_aws::slack::{RetryPolicy, SlackDelivery, post_message, webhook_url};
use cascade_core::report::Report;
use cascade_core::report::slack::slack_message;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use crate::error::{ErrorKind, HandlerError};
use crate::handlers::Context;

/// The event.
#[derive(Debug, Deserialize)]
pub struct NotifyEvent {
    /// The batch.
    pub batch_id: String,
    /// Key of the JSON report in the bucket.
    pub report_key: String,
}

/// The result.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotifyResult {
    /// Whether Slack took the message.
    pub delivered: bool,
    /// Why not, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Handles a `notify` event.
pub async fn handle(context: &Context, event: NotifyEvent) -> Result<Value, HandlerError> {
    let result = |delivered, reason: Option<String>| {
        serde_json::to_value(NotifyResult { delivered, reason }).expect("serialisable")
    };
    let Some(secret) = &context.config.slack_webhook_secret else {
        info!(batch = %event.batch_id, "no Slack webhook configured: nothing sent");
        return Ok(result(false, Some("no Slack webhook configured".into())));
    };
    let refresher = context.refresher()?;
    let report: Report = refresher
        .store
        .get_json(&event.report_key)
        .await?
        .ok_or_else(|| {
            HandlerError::new(
                ErrorKind::BatchNotFound,
                format!(
                    "no report at {}",
                    refresher.store.location(&event.report_key)
                ),
            )
        })?;
    let location = refresher.store.location(&event.report_key);
    let url = webhook_url(&context.clients.secrets, secret)
        .await
        .map_err(|e| HandlerError::new(ErrorKind::NotificationFailed, e.to_string()))?;
    match post_message(
        &url,
        &slack_message(&report, Some(&location)),
        &RetryPolicy::default(),
    )
    .await
    {
        SlackDelivery::Delivered { attempts } => {
            info!(batch = %event.batch_id, attempts, "Slack message delivered");
            Ok(result(true, None))
        }
        SlackDelivery::GaveUp { attempts, reason } => Err(HandlerError::new(
            ErrorKind::NotificationFailed,
            format!(
                "Slack did not take the message after {attempts} attempt(s): {reason} (the report is saved at {location})"
            ),
        )),
    }
}
