//! Intake: what the queue says has changed, made into the input of one execution
//! (DESIGN.md §1 points 1-2, §6).
//!
//! A queue message is a raw EventBridge event from Secrets Manager or a manual ticket.
//! [`parse_ticket`] is the entry point: it normalises each message to a [`Ticket`] (or
//! says why it is ignored), one stage per file:
//!
//! - `label_updated.rs`: Secrets Manager's native `Secret Label Updated` event;
//! - `cloudtrail.rs`: a `PutSecretValue` / `UpdateSecret` call recorded by CloudTrail;
//! - `manual.rs`: a [`ManualTicket`], the type `cascade enqueue` writes;
//! - `time.rs`: when the change happened (RFC 3339 text or epoch seconds), as a
//!   [`jiff::Timestamp`];
//! - `fields.rs` reads the fields of an untrusted JSON object, and `error.rs` says why a
//!   message is not a ticket ([`TicketError`]);
//! - `foreign.rs`: a ticket's secret in another partition, account or region than the
//!   application ([`foreign_secret`]), skipped by discovery with that reason.
//!
//! Then `coalesce.rs` turns the tickets of one receive into a [`Batch`] ([`coalesce`],
//! [`execution_name`]), and `execution_input.rs` holds the [`ExecutionInput`] the state
//! machine is started with and its [`RunOptions`].
//!
//! Only identifiers are ever copied out of a message: CloudTrail's `requestParameters`
//! may carry a (redacted) secret string, and errors never quote the message at all.

mod cloudtrail;
mod coalesce;
mod error;
mod execution_input;
mod fields;
mod foreign;
mod label_updated;
mod manual;
mod time;

#[cfg(test)]
mod fixtures;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::secret::Secret;
pub use coalesce::{Batch, coalesce, execution_name};
pub use error::TicketError;
pub use execution_input::{ExecutionInput, RunOptions};
pub use foreign::{ForeignSecret, foreign_secret};
pub use manual::ManualTicket;

/// Where a ticket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketSource {
    /// Secrets Manager's native `Secret Label Updated` event (label `AWSCURRENT`).
    LabelUpdated,
    /// A `PutSecretValue` or `UpdateSecret` call recorded by CloudTrail.
    Cloudtrail,
    /// A ticket enqueued by an operator (`cascade enqueue`).
    Manual,
}

/// A normalised ticket: one secret that got a new current value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The secret as the event or the operator named it (name, full or partial ARN).
    pub secret_id: String,
    /// The secret's full ARN, when the ticket carries it.
    #[serde(default)]
    pub secret_arn: Option<String>,
    /// The new version, when the ticket carries it.
    #[serde(default)]
    pub version_id: Option<String>,
    /// Where the ticket came from.
    pub source: TicketSource,
    /// The event's id (the message id for a manual ticket).
    pub event_id: String,
    /// When the change happened, when the ticket says. On the wire: RFC 3339 in UTC, or
    /// `""` when the ticket does not say.
    #[serde(with = "time::rfc3339_or_empty")]
    pub at: Option<Timestamp>,
    /// Who made the change, when known (an IAM ARN, or the operator's name).
    #[serde(default)]
    pub actor: Option<String>,
    /// The stacks to refresh (manual tickets only); `None` means every dependent stack.
    #[serde(default)]
    pub stacks: Option<Vec<String>>,
}

/// What a queue message turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketParse {
    /// A ticket to act on.
    Ticket(Ticket),
    /// A well-formed message that asks for nothing (e.g. a label other than
    /// `AWSCURRENT`), with the reason. It is deleted like a handled ticket.
    Ignored(String),
}

/// The message group of every ticket on the FIFO queue (template.yaml's rule targets set
/// it): one group, so the queue hands tickets out one batch at a time.
pub const MESSAGE_GROUP: &str = "cascade";

/// `detail-type` of Secrets Manager's native event.
const LABEL_UPDATED: &str = "Secret Label Updated";
/// `detail-type` of a CloudTrail-derived API call event.
const CLOUDTRAIL_CALL: &str = "AWS API Call via CloudTrail";
/// What a message with `detail-type` and `source` is taken for, in errors.
const EVENT: &str = "EventBridge event";

/// Parses one queue message. `message_id` is the queue's id for it (the event id of a
/// manual ticket). Never panics, whatever the body.
pub fn parse_ticket(body: &str, message_id: &str) -> Result<TicketParse, TicketError> {
    let value: Value = serde_json::from_str(body).map_err(|e| TicketError::malformed(&e))?;
    let Value::Object(object) = value else {
        return Err(TicketError::UnknownShape("the body is not a JSON object"));
    };
    if let Some(kind) = object.get("kind") {
        return match kind.as_str() {
            Some(manual::KIND) => Ok(TicketParse::Ticket(
                ManualTicket::from_object(&object)?.into_ticket(message_id),
            )),
            Some(_) => Err(TicketError::UnknownShape("unknown `kind`")),
            None => Err(TicketError::UnknownShape("`kind` is not a string")),
        };
    }
    if object.contains_key("detail-type") && object.contains_key("source") {
        return parse_event(&object, message_id);
    }
    Err(TicketError::UnknownShape(
        "no `kind`, `detail-type` or `source`",
    ))
}

/// An EventBridge event: the native one, a CloudTrail-derived one, or one to ignore.
fn parse_event(object: &Map<String, Value>, message_id: &str) -> Result<TicketParse, TicketError> {
    let source = fields::required_str(object, "source", EVENT, "source")?;
    let detail_type = fields::required_str(object, "detail-type", EVENT, "detail-type")?;
    match (source, detail_type) {
        ("aws.secretsmanager", LABEL_UPDATED) => label_updated::parse(object, message_id),
        (_, CLOUDTRAIL_CALL) => cloudtrail::parse(object, message_id),
        ("aws.secretsmanager", _) => Ok(ignored(
            "a Secrets Manager event other than Secret Label Updated: no new current value",
        )),
        _ => Ok(ignored("an event from another source than Secrets Manager")),
    }
}

/// A message that asks for nothing, and why.
fn ignored(reason: impl Into<String>) -> TicketParse {
    TicketParse::Ignored(reason.into())
}

/// Whether `id` is a full secret ARN (with its random suffix).
fn is_full_secret_arn(id: &str) -> bool {
    Secret::from_arn(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::secret::AWSCURRENT;
    use serde_json::json;

    #[test]
    fn other_events_are_ignored() {
        let mut rotation = native("mySecret", ARN, AWSCURRENT);
        rotation["detail-type"] = json!("Secret Rotation Succeeded");
        ignored_reason(&rotation);
        let mut ec2 = native("mySecret", ARN, AWSCURRENT);
        ec2["source"] = json!("aws.ec2");
        ignored_reason(&ec2);
    }

    /// The longest names AWS allows (secret names 512 characters, stack names 128) and
    /// unicode where AWS allows it (who asked) make tickets and a valid execution name;
    /// nothing is cut (issue 12, part 4).
    #[test]
    fn the_longest_names_and_unicode_make_tickets_and_a_valid_execution() {
        let secret = format!("team/{}", "a/b_c+d=e.f@g-".repeat(40).get(..507).unwrap());
        assert_eq!(secret.len(), 512);
        let arn = format!("arn:aws:secretsmanager:us-west-2:012345678901:secret:{secret}-a1b2c3");
        let stack = format!("S{}", "tack-9".repeat(22).get(..127).unwrap());
        assert_eq!(stack.len(), 128);
        let manual = json!({
            "kind": "manual", "secret": secret, "requested_by": "Zoë Ødegård 🚀",
            "stacks": [stack]
        });
        let from_manual = ticket(&manual);
        assert_eq!(from_manual.secret_id, secret);
        assert_eq!(from_manual.actor.as_deref(), Some("Zoë Ødegård 🚀"));
        assert_eq!(from_manual.stacks.as_deref(), Some(&[stack.clone()][..]));
        let from_event = ticket(&native(&secret, &arn, AWSCURRENT));
        assert_eq!(from_event.secret_id, secret);
        assert_eq!(from_event.secret_arn.as_deref(), Some(arn.as_str()));

        let batch = coalesce([
            ("m-1".to_string(), from_manual),
            ("m-2".to_string(), from_event),
        ]);
        assert_eq!(batch.secrets, std::slice::from_ref(&arn));
        assert_eq!(batch.stacks, None, "an event asks for every stack");
        let name = execution_name(&batch);
        assert!(name.len() <= 80, "{name}");
        let wire = serde_json::to_string(&batch.tickets).unwrap();
        assert!(wire.contains(&secret) && wire.contains("Zoë Ødegård 🚀"));
    }

    #[test]
    fn unknown_shapes_and_bad_json_are_errors() {
        for body in [
            "",
            "nul",
            "{",
            "[]",
            "42",
            "\"x\"",
            "{}",
            r#"{"kind":"robot"}"#,
            r#"{"kind":1}"#,
            r#"{"source":"aws.secretsmanager"}"#,
        ] {
            let error = parse_ticket(body, "m").unwrap_err();
            assert!(
                matches!(
                    error,
                    TicketError::Malformed { .. } | TicketError::UnknownShape(_)
                ),
                "{body}: {error:?}"
            );
        }
        let mut no_detail = native("mySecret", ARN, AWSCURRENT);
        no_detail.as_object_mut().unwrap().remove("detail");
        assert!(matches!(
            parse_value(&no_detail),
            Err(TicketError::MissingField {
                field: "detail",
                ..
            })
        ));
        let mut no_label = native("mySecret", ARN, AWSCURRENT);
        no_label["detail"]
            .as_object_mut()
            .unwrap()
            .remove("labelUpdated");
        assert!(
            parse_value(&no_label)
                .unwrap_err()
                .to_string()
                .contains("detail.labelUpdated")
        );
        let mut no_secret_id = cloudtrail("PutSecretValue");
        no_secret_id["detail"]["requestParameters"]
            .as_object_mut()
            .unwrap()
            .remove("secretId");
        assert!(matches!(
            parse_value(&no_secret_id),
            Err(TicketError::MissingField {
                field: "detail.requestParameters.secretId",
                ..
            })
        ));
    }

    #[test]
    fn every_prefix_of_a_valid_event_is_an_error_not_a_panic() {
        for event in [
            native("mySecret", ARN, AWSCURRENT),
            cloudtrail("PutSecretValue"),
        ] {
            let body = serde_json::to_string_pretty(&event).unwrap();
            for end in (0..body.len()).filter(|&i| body.is_char_boundary(i)) {
                assert!(
                    matches!(
                        parse_ticket(&body[..end], "m"),
                        Err(TicketError::Malformed { .. })
                    ),
                    "prefix of {end} bytes"
                );
            }
        }
    }

    /// Every value of every field, replaced by every JSON type: no panic, and no error
    /// or ignore reason quotes the canary.
    #[test]
    fn any_field_of_any_type_never_panics_nor_leaks() {
        fn paths(value: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
            if let Value::Object(map) = value {
                for (key, inner) in map {
                    let mut path = prefix.clone();
                    path.push(key.clone());
                    out.push(path.clone());
                    paths(inner, path, out);
                }
            }
        }
        let replacements = [
            json!(null),
            json!(1),
            json!(-5.5),
            json!(true),
            json!([CANARY]),
            json!({"x": CANARY}),
            json!(CANARY),
            json!(format!("{AWSCURRENT} {CANARY} \u{1F600}")),
        ];
        for event in [
            native("mySecret", ARN, AWSCURRENT),
            cloudtrail("UpdateSecret"),
        ] {
            let mut all = Vec::new();
            paths(&event, Vec::new(), &mut all);
            for path in all {
                for replacement in &replacements {
                    let mut mutated = event.clone();
                    let mut slot = &mut mutated;
                    for key in &path {
                        slot = &mut slot[key.as_str()];
                    }
                    *slot = replacement.clone();
                    let text = match parse_value(&mutated) {
                        Ok(TicketParse::Ticket(_)) => continue,
                        Ok(TicketParse::Ignored(reason)) => reason,
                        Err(error) => error.to_string(),
                    };
                    assert!(!text.contains(CANARY), "{path:?}: {text}");
                }
            }
        }
    }

    #[test]
    fn errors_never_contain_the_body() {
        let bodies = [
            CANARY.to_string(),
            format!("{{\"secretString\": \"{CANARY}\""),
            format!("{{\"kind\": \"{CANARY}\"}}"),
            format!("{{\"kind\": \"manual\", \"secret\": \"s\", \"stacks\": [\"{CANARY}\", 3]}}"),
            format!("{{\"kind\": \"manual\", \"secret\": \"s\", \"at\": \"{CANARY}\"}}"),
            format!("[\"{CANARY}\"]"),
            format!("{{\"a\": \"{CANARY}\\x\"}}"),
            format!("{{\"{CANARY}\": 1e999999}}"),
        ];
        for body in bodies {
            let error = parse_ticket(&body, "m").unwrap_err();
            assert!(!error.to_string().contains(CANARY), "{error}");
            assert!(!format!("{error:?}").contains(CANARY), "{error:?}");
        }
    }

    #[test]
    fn parsing_is_deterministic() {
        let body = native("mySecret", ARN, AWSCURRENT).to_string();
        assert_eq!(parse_ticket(&body, "m"), parse_ticket(&body, "m"));
        let body = json!({"kind": "manual", "secret": "s"}).to_string();
        assert_eq!(parse_ticket(&body, "m"), parse_ticket(&body, "m"));
    }
}
