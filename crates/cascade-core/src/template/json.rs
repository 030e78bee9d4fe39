//! JSON templates, through serde_json.
//!
//! A duplicate key keeps its first place and takes its last value, as CloudFormation and
//! cfn-flip (Python's `json`) do; serde_json with `preserve_order` does exactly that.

use serde_json::Value;

use super::TemplateError;

/// Reads a JSON text; errors carry serde_json's line and column.
pub(crate) fn load(text: &str) -> Result<Value, TemplateError> {
    serde_json::from_str::<Value>(text).map_err(|e| {
        // serde_json's message ends with " at line L column C": keep the reason only.
        let message = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        let reason = message.strip_suffix(&position).unwrap_or(&message);
        let message = if reason == "recursion limit exceeded" {
            // The YAML reader's error for the same template.
            super::yaml::too_deep_message()
        } else {
            format!("invalid JSON: {reason}")
        };
        TemplateError {
            line: e.line().max(1),
            column: e.column().max(1),
            message,
        }
    })
}
