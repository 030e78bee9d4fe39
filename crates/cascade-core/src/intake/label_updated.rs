//! Secrets Manager's native `Secret Label Updated` event: a ticket when `AWSCURRENT`
//! moved, ignored when another label did.

use serde_json::{Map, Value};

use super::error::invalid;
use super::fields::{detail, optional_str, required_str};
use super::time::event_time;
use super::{Ticket, TicketError, TicketParse, TicketSource, ignored, is_full_secret_arn};
use crate::secret::AWSCURRENT;

/// What the message is taken for, in errors.
pub(super) const NATIVE: &str = "Secret Label Updated event";

/// Parses a `Secret Label Updated` event from `aws.secretsmanager`.
pub(super) fn parse(
    object: &Map<String, Value>,
    message_id: &str,
) -> Result<TicketParse, TicketError> {
    let detail = detail(object, NATIVE)?;
    let label = required_str(detail, "labelUpdated", NATIVE, "detail.labelUpdated")?;
    if label != AWSCURRENT {
        // Only AWS's own labels are named: a custom label is the message's content.
        let which = match label {
            "AWSPENDING" | "AWSPREVIOUS" => label,
            _ => "a custom label",
        };
        return Ok(ignored(format!(
            "{which} moved, not {AWSCURRENT}: the current value did not change"
        )));
    }
    let secret_arn = match object.get("resources") {
        None | Some(Value::Null) => None,
        Some(Value::Array(resources)) => resources
            .iter()
            .filter_map(Value::as_str)
            .find(|r| is_full_secret_arn(r))
            .map(str::to_string),
        Some(_) => return Err(invalid(NATIVE, "resources", "it is not a list")),
    };
    let secret_id = match optional_str(detail, "name", NATIVE, "detail.name")? {
        Some(name) if !name.is_empty() => name,
        _ => secret_arn.clone().ok_or(TicketError::MissingField {
            shape: NATIVE,
            field: "detail.name",
        })?,
    };
    Ok(TicketParse::Ticket(Ticket {
        secret_id,
        secret_arn,
        version_id: optional_str(detail, "versionId", NATIVE, "detail.versionId")?,
        source: TicketSource::LabelUpdated,
        event_id: optional_str(object, "id", NATIVE, "id")?.unwrap_or_else(|| message_id.into()),
        at: event_time(object, None, NATIVE)?,
        actor: None,
        stacks: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn native_label_updated_event_becomes_a_ticket() {
        let t = ticket(&native("mySecret", ARN, AWSCURRENT));
        assert_eq!(
            t,
            Ticket {
                secret_id: "mySecret".into(),
                secret_arn: Some(ARN.into()),
                version_id: Some("a1b2c3d4-v2".into()),
                source: TicketSource::LabelUpdated,
                event_id: "6a7e8feb-b491-4cf7-a9f1-bf3703467718".into(),
                at: Some(at("2024-02-06T16:43:48Z")),
                actor: None,
                stacks: None,
            }
        );
    }

    #[test]
    fn native_event_without_name_falls_back_to_the_arn() {
        let mut event = native("mySecret", ARN, AWSCURRENT);
        event["detail"].as_object_mut().unwrap().remove("name");
        let t = ticket(&event);
        assert_eq!(t.secret_id, ARN);
        event["resources"] = json!([]);
        assert_eq!(
            parse_value(&event),
            Err(TicketError::MissingField {
                shape: NATIVE,
                field: "detail.name"
            })
        );
    }

    #[test]
    fn other_labels_are_ignored() {
        for label in ["AWSPENDING", "AWSPREVIOUS"] {
            let reason = ignored_reason(&native("mySecret", ARN, label));
            assert!(
                reason.contains(label) && reason.contains(AWSCURRENT),
                "{reason}"
            );
        }
        let reason = ignored_reason(&native("mySecret", ARN, "blue-green"));
        assert!(
            reason.contains("custom label") && !reason.contains("blue"),
            "{reason}"
        );
    }
}
