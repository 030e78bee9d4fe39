//! A ticket enqueued by an operator (`cascade enqueue`): one type, written by the CLI
//! and read back by the parser.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::invalid;
use super::fields::{optional_str, required_str};
use super::time::optional_timestamp;
use super::{Ticket, TicketError, TicketSource, is_full_secret_arn};

/// The `kind` that marks a manual ticket.
pub(super) const KIND: &str = "manual";
/// What the message is taken for, in errors.
const MANUAL: &str = "manual ticket";

/// `{"kind":"manual","secret":ID,"requested_by":...,"stacks":[...],"at":...}`: a secret
/// to refresh as if it had just changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename = "manual")]
pub struct ManualTicket {
    /// The secret: its name, full or partial ARN. Never empty.
    pub secret: String,
    /// Who asked for it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// The stacks to refresh; `None` means every dependent stack (never an empty list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stacks: Option<Vec<String>>,
    /// When it was asked for, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

impl ManualTicket {
    /// Reads a manual ticket from a message's object (whose `kind` is `manual`), saying
    /// which field is wrong, never what it holds.
    pub(super) fn from_object(object: &Map<String, Value>) -> Result<Self, TicketError> {
        let secret = required_str(object, "secret", MANUAL, "secret")?;
        if secret.trim().is_empty() {
            return Err(invalid(MANUAL, "secret", "it is empty"));
        }
        let stacks = match object.get("stacks") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(stack_names(items)?),
            Some(_) => {
                return Err(invalid(MANUAL, "stacks", "it is not a list of stack names"));
            }
        };
        Ok(ManualTicket {
            secret: secret.to_string(),
            requested_by: optional_str(object, "requested_by", MANUAL, "requested_by")?,
            stacks,
            at: optional_timestamp(object, "at", MANUAL)?,
        })
    }

    /// The normalised ticket; `message_id` is its event id.
    pub(super) fn into_ticket(self, message_id: &str) -> Ticket {
        Ticket {
            secret_arn: is_full_secret_arn(&self.secret).then(|| self.secret.clone()),
            secret_id: self.secret,
            version_id: None,
            source: TicketSource::Manual,
            event_id: message_id.to_string(),
            at: self.at,
            actor: self.requested_by,
            stacks: self.stacks,
        }
    }
}

/// A non-empty list of non-empty stack names.
fn stack_names(items: &[Value]) -> Result<Vec<String>, TicketError> {
    let names = items
        .iter()
        .map(|item| match item.as_str() {
            Some(name) if !name.trim().is_empty() => Ok(name.to_string()),
            _ => Err(invalid(MANUAL, "stacks", "every item must be a stack name")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if names.is_empty() {
        return Err(invalid(
            MANUAL,
            "stacks",
            "it is empty; leave it out to refresh every dependent stack",
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{TicketParse, parse_ticket};
    use super::*;
    use serde_json::json;

    #[test]
    fn manual_tickets() {
        let t = ticket(&json!({
            "kind": "manual", "secret": "prod/db", "requested_by": "alice",
            "stacks": ["app", "api"], "at": "2024-02-06T16:43:48Z"
        }));
        assert_eq!(
            t,
            Ticket {
                secret_id: "prod/db".into(),
                secret_arn: None,
                version_id: None,
                source: TicketSource::Manual,
                event_id: "msg-1".into(),
                at: Some(at("2024-02-06T16:43:48Z")),
                actor: Some("alice".into()),
                stacks: Some(vec!["app".into(), "api".into()]),
            }
        );
        let minimal = ticket(&json!({"kind": "manual", "secret": ARN}));
        assert_eq!(minimal.secret_arn.as_deref(), Some(ARN));
        assert_eq!(
            (minimal.at, minimal.stacks, minimal.actor),
            (None, None, None)
        );
    }

    #[test]
    fn malformed_manual_tickets_say_which_field() {
        let cases = [
            (json!({"kind": "manual"}), "secret"),
            (json!({"kind": "manual", "secret": ""}), "secret"),
            (json!({"kind": "manual", "secret": 7}), "secret"),
            (
                json!({"kind": "manual", "secret": "s", "stacks": []}),
                "stacks",
            ),
            (
                json!({"kind": "manual", "secret": "s", "stacks": "app"}),
                "stacks",
            ),
            (
                json!({"kind": "manual", "secret": "s", "stacks": [1]}),
                "stacks",
            ),
            (
                json!({"kind": "manual", "secret": "s", "requested_by": {}}),
                "requested_by",
            ),
            (json!({"kind": "manual", "secret": "s", "at": "soon"}), "at"),
        ];
        for (body, field) in cases {
            let error = parse_value(&body).unwrap_err();
            assert!(error.to_string().contains(&format!("`{field}`")), "{error}");
        }
    }

    #[test]
    fn what_enqueue_writes_the_parser_reads_back() {
        let full = ManualTicket {
            secret: ARN.into(),
            requested_by: Some("alice".into()),
            stacks: Some(vec!["app".into(), "api".into()]),
            at: Some(at("2024-02-06T16:43:48.123456789Z")),
        };
        let minimal = ManualTicket {
            secret: "prod/db".into(),
            requested_by: None,
            stacks: None,
            at: None,
        };
        assert_eq!(
            serde_json::to_value(&full).unwrap(),
            json!({
                "kind": "manual", "secret": ARN, "requested_by": "alice",
                "stacks": ["app", "api"], "at": "2024-02-06T16:43:48.123456789Z"
            })
        );
        assert_eq!(
            serde_json::to_string(&minimal).unwrap(),
            r#"{"kind":"manual","secret":"prod/db"}"#
        );
        for manual in [full, minimal] {
            let body = serde_json::to_string(&manual).unwrap();
            assert_eq!(
                parse_ticket(&body, "msg-1"),
                Ok(TicketParse::Ticket(manual.into_ticket("msg-1")))
            );
        }
    }
}
