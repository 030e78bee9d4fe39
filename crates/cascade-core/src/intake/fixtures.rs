//! Events and tickets the intake tests share.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Ticket, TicketError, TicketParse, TicketSource, parse_ticket};

pub const ARN: &str = "arn:aws:secretsmanager:us-west-2:012345678901:secret:mySecret-a1b2c3";
pub const CANARY: &str = "CANARY-hunter2-do-not-log";

/// A native `Secret Label Updated` event for `label`.
pub fn native(name: &str, arn: &str, label: &str) -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Secret Label Updated",
        "source": "aws.secretsmanager",
        "account": "012345678901",
        "time": "2024-02-06T16:43:48Z",
        "region": "us-west-2",
        "resources": [arn],
        "detail": {"name": name, "labelUpdated": label, "versionId": "a1b2c3d4-v2"}
    })
}

/// A CloudTrail-derived event for a call to `event_name`, carrying the canary as the
/// secret string.
pub fn cloudtrail(event_name: &str) -> Value {
    json!({
        "version": "0",
        "id": "envelope-id",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.secretsmanager",
        "account": "012345678901",
        "time": "2024-02-06T16:43:50Z",
        "region": "us-west-2",
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::012345678901:assumed-role/ops/alice"},
            "eventTime": "2024-02-06T16:43:48Z",
            "eventSource": "secretsmanager.amazonaws.com",
            "eventName": event_name,
            "requestParameters": {"secretId": "mySecret", "secretString": CANARY, "clientRequestToken": "t"},
            "responseElements": {"arn": ARN, "versionId": "v-ct", "name": "mySecret"},
            "eventID": "ct-event-1"
        }
    })
}

/// Parses `value` as the body of message `msg-1`.
pub fn parse_value(value: &Value) -> Result<TicketParse, TicketError> {
    parse_ticket(&value.to_string(), "msg-1")
}

/// The ticket `value` makes; panics when it makes none.
pub fn ticket(value: &Value) -> Ticket {
    match parse_value(value) {
        Ok(TicketParse::Ticket(t)) => t,
        other => panic!("expected a ticket, got {other:?}"),
    }
}

/// Why `value` is ignored; panics when it is not.
pub fn ignored_reason(value: &Value) -> String {
    match parse_value(value) {
        Ok(TicketParse::Ignored(reason)) => reason,
        other => panic!("expected an ignored message, got {other:?}"),
    }
}

/// A manual ticket for `secret`, with no time.
pub fn manual(secret: &str, stacks: Option<&[&str]>) -> Ticket {
    Ticket {
        secret_id: secret.into(),
        secret_arn: None,
        version_id: None,
        source: TicketSource::Manual,
        event_id: "m".into(),
        at: None,
        actor: None,
        stacks: stacks.map(|s| s.iter().map(|x| x.to_string()).collect()),
    }
}

/// The instant `text` names.
pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}
