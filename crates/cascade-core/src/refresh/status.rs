//! How a stack's status reads for a refresh waiting on its update.

use std::fmt;

/// How far a stack's update is, read from its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateProgress {
    /// Still working (`*_IN_PROGRESS`, cleanup included).
    InProgress,
    /// The update completed.
    Complete,
    /// The update failed and was rolled back: the stack is as before it.
    RolledBack,
    /// The update failed and the rollback failed too: the stack needs attention.
    Broken,
    /// The stack is gone or going.
    Gone,
}

impl UpdateProgress {
    /// Reads a CloudFormation stack status.
    pub fn of_status(status: &str) -> Self {
        match status {
            s if s.starts_with("DELETE_") => UpdateProgress::Gone,
            s if s.ends_with("_IN_PROGRESS") => UpdateProgress::InProgress,
            "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_ROLLBACK_COMPLETE" => UpdateProgress::RolledBack,
            s if s.ends_with("_FAILED") || s == "ROLLBACK_COMPLETE" => UpdateProgress::Broken,
            _ => UpdateProgress::Complete,
        }
    }
}

impl fmt::Display for UpdateProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpdateProgress::InProgress => "in progress",
            UpdateProgress::Complete => "complete",
            UpdateProgress::RolledBack => "rolled back",
            UpdateProgress::Broken => "broken",
            UpdateProgress::Gone => "gone",
        })
    }
}

/// What one look at a stack found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    /// How the status reads.
    pub progress: UpdateProgress,
    /// The status itself, e.g. `UPDATE_COMPLETE`.
    pub status: String,
    /// CloudFormation's status reason.
    pub reason: Option<String>,
}

impl Look {
    /// A look at a stack in `status`.
    pub fn at(status: &str, reason: Option<String>) -> Self {
        Look {
            progress: UpdateProgress::of_status(status),
            status: status.to_string(),
            reason,
        }
    }

    /// A look that found no stack any more.
    pub fn gone() -> Self {
        Look::at("DELETE_COMPLETE", None)
    }

    /// The status and its reason, as `STATUS: reason`.
    pub fn describe(&self) -> String {
        match &self.reason {
            Some(reason) => format!("{}: {reason}", self.status),
            None => self.status.clone(),
        }
    }
}
