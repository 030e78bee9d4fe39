//! `notify`: posts the report's summary to Slack. Without a configured webhook it does
//! nothing; when Slack cannot be reached it fails with `NotificationFailed`, which the
//! state machine catches: the report is already saved, the run is not failed for it.

use cascade_aws::slack::{Notification, SlackClient};
use cascade_core::report::Report;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::config::NotifyConfig;
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotifyResult {
    /// Whether Slack took the message.
    pub delivered: bool,
    /// Why not, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
    let location = store.location(&event.report_key);
    let report: Report = store.get_json(&event.report_key).await?.ok_or_else(|| {
        HandlerError::new(ErrorKind::BatchNotFound, format!("no report at {location}"))
    })?;
    match slack
        .notify_report(&context.clients.secrets, secret, &report, &location)
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
                "Slack did not take the message after {attempts} attempt(s): {reason} (the report is saved at {location})"
            ),
        )),
    }
}
