//! Reading the fields of an untrusted JSON object: a missing or mistyped field is a
//! [`TicketError`] that names the field by its path, never its value.

use serde_json::{Map, Value};

use super::TicketError;
use super::error::invalid;

/// The object under `key`.
pub(super) fn object_field<'a>(
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

/// An event's `detail` object.
pub(super) fn detail<'a>(
    object: &'a Map<String, Value>,
    shape: &'static str,
) -> Result<&'a Map<String, Value>, TicketError> {
    object_field(object, "detail", shape)
}

/// The string under `key`, which must be there; `field` is its path in errors.
pub(super) fn required_str<'a>(
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

/// The string under `key`, when there (`null` counts as absent).
pub(super) fn optional_str(
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
