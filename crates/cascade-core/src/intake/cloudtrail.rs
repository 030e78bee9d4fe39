//! A `PutSecretValue` or `UpdateSecret` call recorded by CloudTrail and sent on by
//! EventBridge: a ticket when the call gave the secret a new current value.
//!
//! Only ids are read: `requestParameters` may hold the (redacted) secret string.

use serde_json::{Map, Value};

use super::error::invalid;
use super::fields::{detail, object_field, optional_str, required_str};
use super::time::event_time;
use super::{Ticket, TicketError, TicketParse, TicketSource, ignored, is_full_secret_arn};
use crate::secret::AWSCURRENT;

/// What the message is taken for, in errors.
const CLOUDTRAIL: &str = "CloudTrail event";

/// Parses an `AWS API Call via CloudTrail` event.
pub(super) fn parse(
    object: &Map<String, Value>,
    message_id: &str,
) -> Result<TicketParse, TicketError> {
    let detail = detail(object, CLOUDTRAIL)?;
    let event_source = optional_str(detail, "eventSource", CLOUDTRAIL, "detail.eventSource")?;
    if event_source.as_deref() != Some("secretsmanager.amazonaws.com") {
        return Ok(ignored(
            "an API call to another service than Secrets Manager",
        ));
    }
    let event_name = required_str(detail, "eventName", CLOUDTRAIL, "detail.eventName")?;
    if !matches!(event_name, "PutSecretValue" | "UpdateSecret") {
        return Ok(ignored(
            "an API call other than PutSecretValue or UpdateSecret: no new value",
        ));
    }
    if detail.get("errorCode").is_some_and(|code| !code.is_null()) {
        return Ok(ignored(format!("the {event_name} call failed")));
    }
    let request = object_field(detail, "requestParameters", CLOUDTRAIL)?;
    let secret_id = required_str(
        request,
        "secretId",
        CLOUDTRAIL,
        "detail.requestParameters.secretId",
    )?;
    if secret_id.trim().is_empty() {
        return Err(invalid(
            CLOUDTRAIL,
            "detail.requestParameters.secretId",
            "it is empty",
        ));
    }
    if let Some(stages) = request.get("versionStages").and_then(Value::as_array)
        && !stages.iter().any(|s| s.as_str() == Some(AWSCURRENT))
    {
        return Ok(ignored(
            "the new version was staged without AWSCURRENT (e.g. AWSPENDING during a rotation)",
        ));
    }
    let response = match detail.get("responseElements") {
        Some(Value::Object(response)) => Some(response),
        _ => None,
    };
    let response_str = |key: &'static str, field: &'static str| match response {
        Some(response) => optional_str(response, key, CLOUDTRAIL, field),
        None => Ok(None),
    };
    let version_id = response_str("versionId", "detail.responseElements.versionId")?;
    if event_name == "UpdateSecret" && version_id.is_none() {
        return Ok(ignored(
            "an UpdateSecret without a new value (no versionId: description, key or tags only)",
        ));
    }
    let secret_arn = match response_str("arn", "detail.responseElements.arn")? {
        Some(arn) => Some(arn),
        None => response_str("aRN", "detail.responseElements.aRN")?,
    }
    .filter(|arn| is_full_secret_arn(arn));
    let actor = match detail.get("userIdentity") {
        Some(Value::Object(identity)) => {
            optional_str(identity, "arn", CLOUDTRAIL, "detail.userIdentity.arn")?
        }
        _ => None,
    };
    let event_id = match optional_str(detail, "eventID", CLOUDTRAIL, "detail.eventID")? {
        Some(id) => id,
        None => optional_str(object, "id", CLOUDTRAIL, "id")?.unwrap_or_else(|| message_id.into()),
    };
    Ok(TicketParse::Ticket(Ticket {
        secret_id: secret_id.to_string(),
        secret_arn,
        version_id,
        source: TicketSource::Cloudtrail,
        event_id,
        at: event_time(object, detail.get("eventTime"), CLOUDTRAIL)?,
        actor,
        stacks: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn cloudtrail_put_secret_value_becomes_a_ticket_without_the_value() {
        let t = ticket(&cloudtrail("PutSecretValue"));
        assert_eq!(t.secret_id, "mySecret");
        assert_eq!(t.secret_arn.as_deref(), Some(ARN));
        assert_eq!(t.version_id.as_deref(), Some("v-ct"));
        assert_eq!(t.source, TicketSource::Cloudtrail);
        assert_eq!(t.event_id, "ct-event-1");
        assert_eq!(t.at, Some(at("2024-02-06T16:43:48Z")));
        assert_eq!(
            t.actor.as_deref(),
            Some("arn:aws:sts::012345678901:assumed-role/ops/alice")
        );
        assert!(!serde_json::to_string(&t).unwrap().contains(CANARY));
    }

    #[test]
    fn cloudtrail_update_secret_with_a_value_and_the_odd_arn_spelling() {
        let mut event = cloudtrail("UpdateSecret");
        let response = event["detail"]["responseElements"].as_object_mut().unwrap();
        let arn = response.remove("arn").unwrap();
        response.insert("aRN".into(), arn);
        let t = ticket(&event);
        assert_eq!(t.secret_arn.as_deref(), Some(ARN));
        assert_eq!(t.version_id.as_deref(), Some("v-ct"));
    }

    #[test]
    fn cloudtrail_calls_that_change_no_value_are_ignored() {
        let mut update = cloudtrail("UpdateSecret");
        update["detail"]["responseElements"]
            .as_object_mut()
            .unwrap()
            .remove("versionId");
        assert!(ignored_reason(&update).contains("no versionId"));

        let mut pending = cloudtrail("PutSecretValue");
        pending["detail"]["requestParameters"]["versionStages"] = json!(["AWSPENDING"]);
        assert!(ignored_reason(&pending).contains("AWSPENDING"));

        let mut failed = cloudtrail("PutSecretValue");
        failed["detail"]["errorCode"] = json!("AccessDenied");
        assert!(ignored_reason(&failed).contains("failed"));

        assert!(ignored_reason(&cloudtrail("GetSecretValue")).contains("other than"));

        let mut other_service = cloudtrail("PutSecretValue");
        other_service["detail"]["eventSource"] = json!("ssm.amazonaws.com");
        ignored_reason(&other_service);

        let mut staged_current = cloudtrail("PutSecretValue");
        staged_current["detail"]["requestParameters"]["versionStages"] =
            json!([AWSCURRENT, "custom"]);
        ticket(&staged_current);
    }
}
