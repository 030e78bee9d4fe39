//! Tickets: what the queue says has changed (DESIGN.md §1 points 1-2, §6).
//!
//! A queue message is either a raw EventBridge event from Secrets Manager (the native
//! `Secret Label Updated` event, or the CloudTrail-derived `PutSecretValue` /
//! `UpdateSecret` call) or a manual ticket `{"kind":"manual","secret":ID, ...}`.
//! [`parse_ticket`] normalises each to a [`Ticket`] (or says why it is ignored),
//! [`coalesce`] turns the tickets of one receive into a [`Batch`], and [`ExecutionInput`]
//! is what the state machine is started with.
//!
//! Only identifiers are ever copied out of a message: CloudTrail's `requestParameters`
//! may carry a (redacted) secret string, and errors never quote the message at all.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::plan::StrategyChoice;
use crate::secret::{Arn, Secret};

/// The staging label of a secret's current value.
const AWSCURRENT: &str = "AWSCURRENT";
/// `detail-type` of Secrets Manager's native event.
const LABEL_UPDATED: &str = "Secret Label Updated";
/// `detail-type` of a CloudTrail-derived API call event.
const CLOUDTRAIL_CALL: &str = "AWS API Call via CloudTrail";
/// Longest execution name Step Functions accepts.
const MAX_EXECUTION_NAME: usize = 80;

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
    /// When the change happened (RFC 3339), or `""` when the ticket does not say.
    pub at: String,
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

/// Why a message is not a ticket. The text names the problem, never the message's
/// content (which could hold anything, a secret value included).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The body is not JSON.
    #[error("the message is not valid JSON ({reason} at line {line}, column {column})")]
    Malformed {
        /// The kind of syntax error.
        reason: &'static str,
        /// Where it was found.
        line: usize,
        /// Where it was found.
        column: usize,
    },
    /// The body is JSON but neither an EventBridge event nor a manual ticket.
    #[error(
        "the message is neither an EventBridge event nor a manual ticket ({0}); \
         expected `detail-type` and `source`, or `\"kind\": \"manual\"`"
    )]
    UnknownShape(&'static str),
    /// A field the shape requires is missing.
    #[error("the {shape} has no `{field}`")]
    MissingField {
        /// What the message was taken for, e.g. `manual ticket`.
        shape: &'static str,
        /// The missing field, as a path.
        field: &'static str,
    },
    /// A field is there but unusable.
    #[error("the {shape} has an invalid `{field}`: {reason}")]
    InvalidField {
        /// What the message was taken for, e.g. `manual ticket`.
        shape: &'static str,
        /// The field, as a path.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

const MANUAL: &str = "manual ticket";
const NATIVE: &str = "Secret Label Updated event";
const CLOUDTRAIL: &str = "CloudTrail event";
const EVENT: &str = "EventBridge event";

/// Parses one queue message. `message_id` is the queue's id for it (the event id of a
/// manual ticket). Never panics, whatever the body.
pub fn parse_ticket(body: &str, message_id: &str) -> Result<TicketParse, TicketError> {
    let value: Value = serde_json::from_str(body).map_err(|e| TicketError::Malformed {
        reason: syntax_reason(&e),
        line: e.line(),
        column: e.column(),
    })?;
    let Value::Object(object) = value else {
        return Err(TicketError::UnknownShape("the body is not a JSON object"));
    };
    if let Some(kind) = object.get("kind") {
        return match kind.as_str() {
            Some("manual") => parse_manual(&object, message_id),
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

/// A few words on a JSON syntax error, without quoting the input.
fn syntax_reason(error: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match error.classify() {
        Category::Eof => "unexpected end of input",
        Category::Syntax => "syntax error",
        Category::Data => "unsupported value",
        Category::Io => "read error",
    }
}

/// `{"kind":"manual","secret":ID,"requested_by":...,"stacks":[...],"at":...}`.
fn parse_manual(object: &Map<String, Value>, message_id: &str) -> Result<TicketParse, TicketError> {
    let secret = required_str(object, "secret", MANUAL, "secret")?;
    if secret.trim().is_empty() {
        return Err(invalid(MANUAL, "secret", "it is empty"));
    }
    let actor = optional_str(object, "requested_by", MANUAL, "requested_by")?;
    let stacks = match object.get("stacks") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
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
            Some(names)
        }
        Some(_) => return Err(invalid(MANUAL, "stacks", "it is not a list of stack names")),
    };
    let at = match object.get("at") {
        None | Some(Value::Null) => String::new(),
        Some(value) => timestamp(value).ok_or(invalid(MANUAL, "at", TIMESTAMP_EXPECTED))?,
    };
    Ok(TicketParse::Ticket(Ticket {
        secret_arn: is_full_secret_arn(secret).then(|| secret.to_string()),
        secret_id: secret.to_string(),
        version_id: None,
        source: TicketSource::Manual,
        event_id: message_id.to_string(),
        at,
        actor,
        stacks,
    }))
}

/// An EventBridge event: the native one, a CloudTrail-derived one, or one to ignore.
fn parse_event(object: &Map<String, Value>, message_id: &str) -> Result<TicketParse, TicketError> {
    let source = required_str(object, "source", EVENT, "source")?;
    let detail_type = required_str(object, "detail-type", EVENT, "detail-type")?;
    match (source, detail_type) {
        ("aws.secretsmanager", LABEL_UPDATED) => parse_label_updated(object, message_id),
        (_, CLOUDTRAIL_CALL) => parse_cloudtrail(object, message_id),
        ("aws.secretsmanager", _) => Ok(ignored(
            "a Secrets Manager event other than Secret Label Updated: no new current value",
        )),
        _ => Ok(ignored("an event from another source than Secrets Manager")),
    }
}

/// Secrets Manager's native `Secret Label Updated` event.
fn parse_label_updated(
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

/// A `PutSecretValue` or `UpdateSecret` call recorded by CloudTrail. Only ids are read:
/// `requestParameters` may hold the (redacted) secret string.
fn parse_cloudtrail(
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

fn ignored(reason: impl Into<String>) -> TicketParse {
    TicketParse::Ignored(reason.into())
}

fn invalid(shape: &'static str, field: &'static str, reason: &'static str) -> TicketError {
    TicketError::InvalidField {
        shape,
        field,
        reason,
    }
}

fn detail<'a>(
    object: &'a Map<String, Value>,
    shape: &'static str,
) -> Result<&'a Map<String, Value>, TicketError> {
    object_field(object, "detail", shape)
}

fn object_field<'a>(
    object: &'a Map<String, Value>,
    key: &'static str,
    shape: &'static str,
) -> Result<&'a Map<String, Value>, TicketError> {
    match object.get(key) {
        Some(Value::Object(inner)) => Ok(inner),
        None | Some(Value::Null) => Err(TicketError::MissingField { shape, field: key }),
        Some(_) => Err(invalid(shape, key, "it is not an object")),
    }
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    shape: &'static str,
    field: &'static str,
) -> Result<&'a str, TicketError> {
    match object.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(TicketError::MissingField { shape, field }),
        Some(_) => Err(invalid(shape, field, "it is not a string")),
    }
}

fn optional_str(
    object: &Map<String, Value>,
    key: &str,
    shape: &'static str,
    field: &'static str,
) -> Result<Option<String>, TicketError> {
    match object.get(key) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(invalid(shape, field, "it is not a string")),
    }
}

/// `preferred` (e.g. CloudTrail's `eventTime`) or the envelope's `time`, as RFC 3339;
/// `""` when neither is there.
fn event_time(
    object: &Map<String, Value>,
    preferred: Option<&Value>,
    shape: &'static str,
) -> Result<String, TicketError> {
    if let Some(value) = preferred.filter(|v| !v.is_null())
        && let Some(at) = timestamp(value)
    {
        return Ok(at);
    }
    match object.get("time") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(value) => timestamp(value).ok_or(invalid(shape, "time", TIMESTAMP_EXPECTED)),
    }
}

const TIMESTAMP_EXPECTED: &str = "expected an ISO-8601 timestamp with a time zone or epoch seconds";

/// A timestamp as RFC 3339: ISO-8601 text is kept as it is, epoch seconds (a number or
/// a string of digits, as moto's EventBridge sends `$.time`) are converted to UTC.
fn timestamp(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if is_rfc3339(text) => Some(text.clone()),
        Value::String(text) => text.trim().parse::<f64>().ok().and_then(epoch_to_rfc3339),
        Value::Number(n) => n.as_f64().and_then(epoch_to_rfc3339),
        _ => None,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let fixed = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't'))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    if !fixed {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Epoch seconds → `YYYY-MM-DDTHH:MM:SSZ` (fractions dropped); `None` outside years
/// 1970-9999.
fn epoch_to_rfc3339(seconds: f64) -> Option<String> {
    if !seconds.is_finite() || !(0.0..253_402_300_800.0).contains(&seconds) {
        return None;
    }
    let seconds = seconds as i64;
    let (days, time) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time % 3600 / 60,
        time % 60
    ))
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `id` is a full secret ARN (with its random suffix).
fn is_full_secret_arn(id: &str) -> bool {
    Secret::from_arn(id).is_ok()
}

/// The secret's name, whichever way `id` names it: a full ARN loses its prefix and random
/// suffix, a partial ARN its prefix, a name stays as it is.
pub fn secret_name(id: &str) -> &str {
    let Some(arn) = Arn::parse(id).filter(|a| a.service == "secretsmanager") else {
        return id;
    };
    let Some(with_suffix) = arn.resource.strip_prefix("secret:") else {
        return id;
    };
    match Secret::from_arn(id) {
        Ok(secret) => &with_suffix[..secret.name.len()],
        Err(_) => with_suffix,
    }
}

/// The tickets of one receive, coalesced: each secret once, the stacks to limit the run
/// to (if any), and a batch id derived from the messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// First 16 hex characters of SHA-256 over the sorted message ids: the same
    /// messages always give the same batch (and so the same execution name).
    pub batch_id: String,
    /// The tickets, ordered by message id.
    pub tickets: Vec<Ticket>,
    /// Each changed secret once (its ARN when a ticket has it), sorted.
    pub secrets: Vec<String>,
    /// The stacks to refresh, when every ticket is a manual one with a subset (their
    /// union, sorted); `None` means every dependent stack.
    pub stacks: Option<Vec<String>>,
}

/// Coalesces `(message id, ticket)` pairs into one batch. A secret named by its name in
/// one ticket and by its ARN in another counts once.
pub fn coalesce(items: impl IntoIterator<Item = (String, Ticket)>) -> Batch {
    let mut items: Vec<(String, Ticket)> = items.into_iter().collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));

    let mut hasher = Sha256::new();
    for (message_id, _) in &items {
        hasher.update(message_id.as_bytes());
        hasher.update(b"\n");
    }
    let batch_id: String = hasher
        .finalize()
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();

    // Name → how to name the secret in the batch: a full ARN wins over anything else.
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    for (_, ticket) in &items {
        let arn = ticket
            .secret_arn
            .as_deref()
            .filter(|arn| is_full_secret_arn(arn))
            .or_else(|| is_full_secret_arn(&ticket.secret_id).then_some(ticket.secret_id.as_str()));
        let key = secret_name(arn.unwrap_or(&ticket.secret_id)).to_string();
        match (secrets.get(&key), arn) {
            (Some(known), _) if is_full_secret_arn(known) => {}
            (Some(_), None) => {}
            (_, Some(arn)) => {
                secrets.insert(key, arn.to_string());
            }
            (None, None) => {
                secrets.insert(key, ticket.secret_id.clone());
            }
        }
    }
    let mut secrets: Vec<String> = secrets.into_values().collect();
    secrets.sort();

    let all_subsets = !items.is_empty()
        && items
            .iter()
            .all(|(_, t)| t.source == TicketSource::Manual && t.stacks.is_some());
    let stacks = all_subsets.then(|| {
        let union: BTreeSet<&String> = items
            .iter()
            .flat_map(|(_, t)| t.stacks.iter().flatten())
            .collect();
        union.into_iter().cloned().collect()
    });

    Batch {
        batch_id,
        tickets: items.into_iter().map(|(_, ticket)| ticket).collect(),
        secrets,
        stacks,
    }
}

/// The Step Functions execution name of a batch: `cascade-<batch_id>` (at most 80
/// characters of `[A-Za-z0-9_-]`).
pub fn execution_name(batch: &Batch) -> String {
    let mut name: String = format!("cascade-{}", batch.batch_id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(MAX_EXECUTION_NAME);
    name
}

/// How the execution runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// The refresh strategy asked for.
    pub strategy: StrategyChoice,
    /// Seconds between two looks at an updating stack.
    pub poll_seconds: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strategy: StrategyChoice::Auto,
            poll_seconds: 30,
        }
    }
}

/// The state machine's input. Its JSON is deterministic (same batch and options, same
/// bytes): StartExecution is idempotent only for the same name AND the same input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionInput {
    /// The batch id.
    pub batch_id: String,
    /// The tickets, ordered by message id.
    pub tickets: Vec<Ticket>,
    /// Each changed secret once.
    pub secrets: Vec<String>,
    /// The stacks to limit the run to; `None` means every dependent stack.
    pub stacks: Option<Vec<String>>,
    /// How to run.
    pub options: RunOptions,
}

impl ExecutionInput {
    /// The input for a batch.
    pub fn new(batch: &Batch, options: &RunOptions) -> Self {
        ExecutionInput {
            batch_id: batch.batch_id.clone(),
            tickets: batch.tickets.clone(),
            secrets: batch.secrets.clone(),
            stacks: batch.stacks.clone(),
            options: options.clone(),
        }
    }

    /// The input as compact JSON (fields in declaration order, lists in batch order).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an execution input always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:secretsmanager:us-west-2:012345678901:secret:mySecret-a1b2c3";
    const CANARY: &str = "CANARY-hunter2-do-not-log";

    fn native(name: &str, arn: &str, label: &str) -> Value {
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

    fn cloudtrail(event_name: &str) -> Value {
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

    fn parse(value: &Value) -> Result<TicketParse, TicketError> {
        parse_ticket(&value.to_string(), "msg-1")
    }

    fn ticket(value: &Value) -> Ticket {
        match parse(value) {
            Ok(TicketParse::Ticket(t)) => t,
            other => panic!("expected a ticket, got {other:?}"),
        }
    }

    fn ignored_reason(value: &Value) -> String {
        match parse(value) {
            Ok(TicketParse::Ignored(reason)) => reason,
            other => panic!("expected an ignored message, got {other:?}"),
        }
    }

    fn manual(secret: &str, stacks: Option<&[&str]>) -> Ticket {
        Ticket {
            secret_id: secret.into(),
            secret_arn: None,
            version_id: None,
            source: TicketSource::Manual,
            event_id: "m".into(),
            at: String::new(),
            actor: None,
            stacks: stacks.map(|s| s.iter().map(|x| x.to_string()).collect()),
        }
    }

    #[test]
    fn native_label_updated_event_becomes_a_ticket() {
        let t = ticket(&native("mySecret", ARN, "AWSCURRENT"));
        assert_eq!(
            t,
            Ticket {
                secret_id: "mySecret".into(),
                secret_arn: Some(ARN.into()),
                version_id: Some("a1b2c3d4-v2".into()),
                source: TicketSource::LabelUpdated,
                event_id: "6a7e8feb-b491-4cf7-a9f1-bf3703467718".into(),
                at: "2024-02-06T16:43:48Z".into(),
                actor: None,
                stacks: None,
            }
        );
    }

    #[test]
    fn epoch_time_as_moto_sends_it_is_converted() {
        let mut event = native("mySecret", ARN, "AWSCURRENT");
        event["time"] = json!(1_707_237_828);
        assert_eq!(ticket(&event).at, "2024-02-06T16:43:48Z");
        event["time"] = json!("1707237828");
        assert_eq!(ticket(&event).at, "2024-02-06T16:43:48Z");
        event["time"] = json!(1_707_237_828.75);
        assert_eq!(ticket(&event).at, "2024-02-06T16:43:48Z");
        event["time"] = json!(0);
        assert_eq!(ticket(&event).at, "1970-01-01T00:00:00Z");
        event["time"] = json!(951_782_400); // a leap day
        assert_eq!(ticket(&event).at, "2000-02-29T00:00:00Z");
        event["time"] = json!("2024-02-06T17:43:48.123+01:00");
        assert_eq!(ticket(&event).at, "2024-02-06T17:43:48.123+01:00");
    }

    #[test]
    fn unusable_times_are_rejected_and_a_missing_one_is_empty() {
        let mut event = native("mySecret", ARN, "AWSCURRENT");
        for bad in [
            json!("yesterday"),
            json!(-1),
            json!("2024-02-06 16:43"),
            json!([1]),
        ] {
            event["time"] = bad;
            assert!(matches!(
                parse(&event),
                Err(TicketError::InvalidField { field: "time", .. })
            ));
        }
        event.as_object_mut().unwrap().remove("time");
        assert_eq!(ticket(&event).at, "");
    }

    #[test]
    fn native_event_without_name_falls_back_to_the_arn() {
        let mut event = native("mySecret", ARN, "AWSCURRENT");
        event["detail"].as_object_mut().unwrap().remove("name");
        let t = ticket(&event);
        assert_eq!(t.secret_id, ARN);
        event["resources"] = json!([]);
        assert_eq!(
            parse(&event),
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
                reason.contains(label) && reason.contains("AWSCURRENT"),
                "{reason}"
            );
        }
        let reason = ignored_reason(&native("mySecret", ARN, "blue-green"));
        assert!(
            reason.contains("custom label") && !reason.contains("blue"),
            "{reason}"
        );
    }

    #[test]
    fn cloudtrail_put_secret_value_becomes_a_ticket_without_the_value() {
        let t = ticket(&cloudtrail("PutSecretValue"));
        assert_eq!(t.secret_id, "mySecret");
        assert_eq!(t.secret_arn.as_deref(), Some(ARN));
        assert_eq!(t.version_id.as_deref(), Some("v-ct"));
        assert_eq!(t.source, TicketSource::Cloudtrail);
        assert_eq!(t.event_id, "ct-event-1");
        assert_eq!(t.at, "2024-02-06T16:43:48Z");
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
            json!(["AWSCURRENT", "custom"]);
        ticket(&staged_current);
    }

    #[test]
    fn other_events_are_ignored() {
        let mut rotation = native("mySecret", ARN, "AWSCURRENT");
        rotation["detail-type"] = json!("Secret Rotation Succeeded");
        ignored_reason(&rotation);
        let mut ec2 = native("mySecret", ARN, "AWSCURRENT");
        ec2["source"] = json!("aws.ec2");
        ignored_reason(&ec2);
    }

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
                at: "2024-02-06T16:43:48Z".into(),
                actor: Some("alice".into()),
                stacks: Some(vec!["app".into(), "api".into()]),
            }
        );
        let minimal = ticket(&json!({"kind": "manual", "secret": ARN}));
        assert_eq!(minimal.secret_arn.as_deref(), Some(ARN));
        assert_eq!(
            (minimal.at.as_str(), minimal.stacks, minimal.actor),
            ("", None, None)
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
            let error = parse(&body).unwrap_err();
            assert!(error.to_string().contains(&format!("`{field}`")), "{error}");
        }
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
        let mut no_detail = native("mySecret", ARN, "AWSCURRENT");
        no_detail.as_object_mut().unwrap().remove("detail");
        assert!(matches!(
            parse(&no_detail),
            Err(TicketError::MissingField {
                field: "detail",
                ..
            })
        ));
        let mut no_label = native("mySecret", ARN, "AWSCURRENT");
        no_label["detail"]
            .as_object_mut()
            .unwrap()
            .remove("labelUpdated");
        assert!(
            parse(&no_label)
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
            parse(&no_secret_id),
            Err(TicketError::MissingField {
                field: "detail.requestParameters.secretId",
                ..
            })
        ));
    }

    #[test]
    fn every_prefix_of_a_valid_event_is_an_error_not_a_panic() {
        for event in [
            native("mySecret", ARN, "AWSCURRENT"),
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
            json!(format!("AWSCURRENT {CANARY} \u{1F600}")),
        ];
        for event in [
            native("mySecret", ARN, "AWSCURRENT"),
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
                    let text = match parse(&mutated) {
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
        let body = native("mySecret", ARN, "AWSCURRENT").to_string();
        assert_eq!(parse_ticket(&body, "m"), parse_ticket(&body, "m"));
        let body = json!({"kind": "manual", "secret": "s"}).to_string();
        assert_eq!(parse_ticket(&body, "m"), parse_ticket(&body, "m"));
    }

    #[test]
    fn secret_names_from_any_identifier() {
        assert_eq!(secret_name(ARN), "mySecret");
        assert_eq!(
            secret_name("arn:aws:secretsmanager:us-west-2:012345678901:secret:prod/db"),
            "prod/db"
        );
        assert_eq!(secret_name("prod/db"), "prod/db");
        assert_eq!(secret_name("arn:aws:s3:::bucket"), "arn:aws:s3:::bucket");
    }

    #[test]
    fn ten_tickets_for_three_secrets_make_three_secrets() {
        let a_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AAAAAA";
        let b_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/b-BBBBBB";
        let mut items = Vec::new();
        for i in 0..4 {
            let t = ticket(&native("a", a_arn, "AWSCURRENT"));
            items.push((format!("m{i}"), t));
        }
        for i in 4..7 {
            let mut t = ticket(&native("prod/b", b_arn, "AWSCURRENT"));
            if i == 5 {
                t.secret_arn = None; // named by its name only
            }
            items.push((format!("m{i}"), t));
        }
        items.push(("m7".into(), manual(b_arn, None)));
        items.push(("m8".into(), manual("c", None)));
        items.push((
            "m9".into(),
            manual(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:c",
                None,
            ),
        ));
        let batch = coalesce(items);
        assert_eq!(batch.tickets.len(), 10);
        assert_eq!(
            batch.secrets,
            vec![a_arn.to_string(), b_arn.to_string(), "c".to_string()]
        );
        assert_eq!(batch.stacks, None);
    }

    #[test]
    fn an_arn_wins_over_a_name_whatever_the_order() {
        for order in [["m1", "m2"], ["m2", "m1"]] {
            let batch = coalesce([
                (order[0].to_string(), manual("mySecret", None)),
                (order[1].to_string(), manual(ARN, None)),
            ]);
            assert_eq!(batch.secrets, vec![ARN.to_string()]);
        }
    }

    #[test]
    fn stack_subsets_only_when_every_ticket_is_manual_with_one() {
        let subset = coalesce([
            ("m1".to_string(), manual("a", Some(&["web", "api"]))),
            ("m2".to_string(), manual("b", Some(&["api", "db"]))),
        ]);
        assert_eq!(
            subset.stacks,
            Some(vec!["api".to_string(), "db".to_string(), "web".to_string()])
        );
        let mixed = coalesce([
            ("m1".to_string(), manual("a", Some(&["web"]))),
            ("m2".to_string(), manual("b", None)),
        ]);
        assert_eq!(mixed.stacks, None);
        let with_event = coalesce([
            ("m1".to_string(), manual("a", Some(&["web"]))),
            (
                "m2".to_string(),
                ticket(&native("mySecret", ARN, "AWSCURRENT")),
            ),
        ]);
        assert_eq!(with_event.stacks, None);
        assert_eq!(coalesce([]).stacks, None);
    }

    #[test]
    fn batch_id_depends_on_the_message_ids_only_and_not_their_order() {
        let forward = coalesce([
            ("m1".to_string(), manual("a", None)),
            ("m2".to_string(), manual("b", None)),
        ]);
        let backward = coalesce([
            ("m2".to_string(), manual("b", None)),
            ("m1".to_string(), manual("a", None)),
        ]);
        assert_eq!(forward, backward);
        assert_eq!(forward.batch_id.len(), 16);
        assert!(forward.batch_id.chars().all(|c| c.is_ascii_hexdigit()));
        let other = coalesce([("m1".to_string(), manual("a", None))]);
        assert_ne!(forward.batch_id, other.batch_id);
    }

    #[test]
    fn execution_names_are_valid() {
        let batch = coalesce([("m1".to_string(), manual("a", None))]);
        let name = execution_name(&batch);
        assert_eq!(name, format!("cascade-{}", batch.batch_id));
        assert!(name.len() <= 80);
        let odd = Batch {
            batch_id: format!("x y/{}", "z".repeat(100)),
            ..batch
        };
        let name = execution_name(&odd);
        assert!(name.len() <= 80);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn execution_input_json_is_byte_identical_and_round_trips() {
        let items = || {
            vec![
                ("m2".to_string(), ticket(&cloudtrail("PutSecretValue"))),
                (
                    "m1".to_string(),
                    ticket(&native("mySecret", ARN, "AWSCURRENT")),
                ),
                ("m3".to_string(), manual("other", Some(&["web"]))),
            ]
        };
        let options = RunOptions {
            strategy: StrategyChoice::Pin,
            poll_seconds: 10,
        };
        let first = ExecutionInput::new(&coalesce(items()), &options).to_json();
        let mut reversed = items();
        reversed.reverse();
        let second = ExecutionInput::new(&coalesce(reversed), &options).to_json();
        assert_eq!(first, second);
        assert!(!first.contains(CANARY));
        let back: ExecutionInput = serde_json::from_str(&first).unwrap();
        assert_eq!(back.to_json(), first);
        let value: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(
            value["options"],
            json!({"strategy": "pin", "poll_seconds": 10})
        );
        assert_eq!(value["tickets"][0]["source"], json!("label-updated"));
        assert_eq!(value["tickets"][1]["source"], json!("cloudtrail"));
        assert_eq!(value["tickets"][2]["source"], json!("manual"));
        assert_eq!(value["secrets"], json!([ARN, "other"]));
    }
}
