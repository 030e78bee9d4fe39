//! When a change happened: RFC 3339 text or epoch seconds in, a [`Timestamp`] out.

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::TicketError;
use super::error::invalid;

/// What an unusable timestamp field should have been.
const TIMESTAMP_EXPECTED: &str = "expected an ISO-8601 timestamp with a time zone or epoch seconds";

/// `preferred` (e.g. CloudTrail's `eventTime`) when it is a usable timestamp, else the
/// envelope's `time`; `None` when neither is there, an error when `time` is unusable.
pub(super) fn event_time(
    object: &Map<String, Value>,
    preferred: Option<&Value>,
    shape: &'static str,
) -> Result<Option<Timestamp>, TicketError> {
    if let Some(at) = preferred.and_then(timestamp) {
        return Ok(Some(at));
    }
    optional_timestamp(object, "time", shape)
}

/// The timestamp under `key`: `None` when absent or `null`, an error when unusable.
pub(super) fn optional_timestamp(
    object: &Map<String, Value>,
    key: &'static str,
    shape: &'static str,
) -> Result<Option<Timestamp>, TicketError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => timestamp(value)
            .map(Some)
            .ok_or(invalid(shape, key, TIMESTAMP_EXPECTED)),
    }
}

/// A timestamp: ISO-8601 text with an offset (RFC 3339), or epoch seconds (a number or a
/// string of digits, as moto's EventBridge sends `$.time`; fractions dropped, none
/// before 1970).
fn timestamp(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(text) => text
            .parse()
            .ok()
            .or_else(|| text.trim().parse().ok().and_then(from_epoch_seconds)),
        Value::Number(n) => n.as_f64().and_then(from_epoch_seconds),
        _ => None,
    }
}

/// Whole epoch seconds as a timestamp; `None` before 1970 or past what [`Timestamp`]
/// holds (the year 9999).
fn from_epoch_seconds(seconds: f64) -> Option<Timestamp> {
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    // `as` saturates: an infinite or huge value lands outside the range and is refused.
    Timestamp::from_second(seconds.trunc() as i64).ok()
}

/// Serde for [`super::Ticket::at`]: RFC 3339 in UTC, `""` for "not known" (the wire
/// format tickets have always had).
pub(super) mod rfc3339_or_empty {
    use jiff::Timestamp;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// `Some` as RFC 3339, `None` as `""`.
    pub fn serialize<S: Serializer>(
        at: &Option<Timestamp>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => at.serialize(serializer),
            None => serializer.serialize_str(""),
        }
    }

    /// `""` as `None`, anything else must be a timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Ticket, TicketError};
    use crate::secret::AWSCURRENT;
    use serde_json::json;

    /// `at` as it is written in the execution input.
    fn wire_at(ticket: &Ticket) -> String {
        serde_json::to_value(ticket).unwrap()["at"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn epoch_time_as_moto_sends_it_is_converted() {
        let mut event = native("mySecret", ARN, AWSCURRENT);
        event["time"] = json!(1_707_237_828);
        assert_eq!(wire_at(&ticket(&event)), "2024-02-06T16:43:48Z");
        event["time"] = json!("1707237828");
        assert_eq!(wire_at(&ticket(&event)), "2024-02-06T16:43:48Z");
        event["time"] = json!(1_707_237_828.75);
        assert_eq!(wire_at(&ticket(&event)), "2024-02-06T16:43:48Z");
        event["time"] = json!(0);
        assert_eq!(wire_at(&ticket(&event)), "1970-01-01T00:00:00Z");
        event["time"] = json!(951_782_400); // a leap day
        assert_eq!(wire_at(&ticket(&event)), "2000-02-29T00:00:00Z");
        // An offset is kept as the instant it names, written in UTC.
        event["time"] = json!("2024-02-06T17:43:48.123+01:00");
        assert_eq!(ticket(&event).at, Some(at("2024-02-06T16:43:48.123Z")));
        assert_eq!(wire_at(&ticket(&event)), "2024-02-06T16:43:48.123Z");
    }

    #[test]
    fn unusable_times_are_rejected_and_a_missing_one_is_empty() {
        let mut event = native("mySecret", ARN, AWSCURRENT);
        for bad in [
            json!("yesterday"),
            json!(-1),
            json!("2024-02-06 16:43"),
            json!([1]),
            json!("2024-02-30T00:00:00Z"),
            json!(253_402_300_800_u64),
            json!(1e300),
        ] {
            event["time"] = bad;
            assert!(matches!(
                parse_value(&event),
                Err(TicketError::InvalidField { field: "time", .. })
            ));
        }
        event.as_object_mut().unwrap().remove("time");
        assert_eq!(ticket(&event).at, None);
        assert_eq!(wire_at(&ticket(&event)), "");
    }

    #[test]
    fn an_unusable_cloudtrail_event_time_falls_back_to_the_envelope() {
        let mut event = cloudtrail("PutSecretValue");
        assert_eq!(wire_at(&ticket(&event)), "2024-02-06T16:43:48Z");
        event["detail"]["eventTime"] = json!("soon");
        assert_eq!(wire_at(&ticket(&event)), "2024-02-06T16:43:50Z");
    }

    #[test]
    fn at_round_trips_through_the_wire_format() {
        let mut with = ticket(&native("mySecret", ARN, AWSCURRENT));
        let without = Ticket {
            at: None,
            ..with.clone()
        };
        with.at = Some(at("2024-02-06T16:43:48.5Z"));
        for t in [with, without] {
            let text = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<Ticket>(&text).unwrap(), t);
        }
        let mut value = serde_json::to_value(ticket(&native("mySecret", ARN, AWSCURRENT))).unwrap();
        value["at"] = json!("not a time");
        assert!(serde_json::from_value::<Ticket>(value).is_err());
    }
}
