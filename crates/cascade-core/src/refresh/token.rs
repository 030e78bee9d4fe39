//! The updates a refresh makes, and the `ClientRequestToken`s that make a retried call
//! harmless.

use std::fmt;

/// The updates a refresh makes to a stack, by what they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateStep {
    /// `recreate`: the template without the affected resources.
    Remove,
    /// `pin`: the template with the references pinned to the new version.
    Pin,
    /// Back to the saved original template and parameters.
    Restore,
}

impl UpdateStep {
    /// The step's name in request tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateStep::Remove => "remove",
            UpdateStep::Pin => "pin",
            UpdateStep::Restore => "restore",
        }
    }

    /// The name of the template it sends, in the keys of templates sent through S3.
    pub fn template_name(self) -> &'static str {
        match self {
            UpdateStep::Remove => "remove",
            UpdateStep::Pin => "pin",
            UpdateStep::Restore => "original",
        }
    }
}

impl fmt::Display for UpdateStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `ClientRequestToken` for one update of a batch: the same step retried gets the same
/// token (CloudFormation then knows it is not a second update); `attempt` tells a
/// deliberate new attempt (`--retry-failed`) from a retried call.
pub fn client_request_token(batch_id: &str, step: UpdateStep, attempt: u32) -> String {
    token(&format!("cascade-{batch_id}-{step}-{attempt}"))
}

/// The token of a restore asked for by hand (`cascade restore`) at `at`: each is its own
/// update.
pub fn manual_restore_token(batch_id: &str, at: jiff::Timestamp) -> String {
    token(&format!(
        "cascade-{batch_id}-manual-restore-{}-1",
        at.as_millisecond()
    ))
}

/// `raw` with every character a token may not hold replaced, at most 128 long.
fn token(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}
