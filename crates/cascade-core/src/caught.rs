//! An error the state machine caught (`{"Error": ..., "Cause": ...}` in the state), read
//! as one line for a report. A Lambda function's error arrives with its name as `Error`
//! and its JSON body (`errorType`, `errorMessage`) as `Cause`.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// An error Step Functions caught.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CaughtError {
    /// The error's name (`States.Timeout`, `Throttled`, ...).
    #[serde(rename = "Error", default)]
    pub error: String,
    /// Its cause: free text, or a Lambda error's JSON body.
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl CaughtError {
    /// Reads a caught error from the state; anything else reads as an unknown error.
    pub fn from_value(value: &Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    /// The cause in a few words: a Lambda error's `errorMessage`, else the cause as given.
    pub fn message(&self) -> String {
        serde_json::from_str::<Value>(&self.cause)
            .ok()
            .and_then(|c| {
                c.get("errorMessage")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| self.cause.clone())
    }
}

impl fmt::Display for CaughtError {
    /// `Error: message`, or only the name when there is no cause, `unknown error` when
    /// there is neither.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.error.is_empty() {
            "unknown error"
        } else {
            &self.error
        };
        match self.message() {
            m if m.is_empty() => f.write_str(name),
            m => write!(f, "{name}: {m}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_read_as_a_line() {
        let e = CaughtError::from_value(
            &json!({"Error": "AwsCallFailed", "Cause": "{\"errorType\":\"AwsCallFailed\",\"errorMessage\":\"cloudformation:DescribeStacks failed: AccessDenied: no\"}"}),
        );
        assert_eq!(
            e.to_string(),
            "AwsCallFailed: cloudformation:DescribeStacks failed: AccessDenied: no"
        );
        let e = CaughtError::from_value(&json!({"Error": "States.Timeout"}));
        assert_eq!(e.to_string(), "States.Timeout");
        let e = CaughtError::from_value(&json!({"Error": "X", "Cause": "plain words"}));
        assert_eq!(e.to_string(), "X: plain words");
        assert_eq!(
            CaughtError::from_value(&json!("nonsense")).to_string(),
            "unknown error"
        );
    }
}
