//! The report of a batch (DESIGN.md §6): what was refreshed, what failed and why.
//! Rendered as JSON (the contract, `schema/report.schema.json`), as Markdown for people,
//! and as a Slack Block Kit message.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pins::Attention;
use crate::plan::Strategy;

pub mod markdown;
#[cfg(test)]
mod samples;
pub mod slack;

/// Version of the report's JSON shape.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// How a stack ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Resources were removed and could not be restored: needs `cascade restore`. First
    /// everywhere.
    Degraded,
    /// The update failed and CloudFormation rolled it back: the stack is intact, with the
    /// old value.
    Failed,
    /// The stack now uses the new value.
    Refreshed,
    /// Nothing was changed, for the reason given.
    Skipped,
}

/// The step a stack was in when its outcome was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Planning (skipped stacks).
    Plan,
    /// Saving the original and issuing the first update.
    Begin,
    /// Waiting for the update that removes the affected resources (recreate).
    Remove,
    /// Restoring the original template (recreate).
    Restore,
    /// Waiting for the update that pins the new version (pin).
    Pin,
    /// Restarting the ECS services that read the secret when their tasks start.
    Restart,
    /// Finished.
    Done,
}

impl Outcome {
    /// The outcome's name, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Degraded => "degraded",
            Outcome::Failed => "failed",
            Outcome::Refreshed => "refreshed",
            Outcome::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Phase {
    /// The phase's name, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Begin => "begin",
            Phase::Remove => "remove",
            Phase::Restore => "restore",
            Phase::Pin => "pin",
            Phase::Restart => "restart",
            Phase::Done => "done",
        }
    }

    /// Whether a stack stopped in this phase may lack resources: between the update that
    /// removes them and the one that restores them. A stack that fails or is given up on
    /// here is `degraded`, anywhere else `failed`.
    pub fn may_leave_resources_removed(self) -> bool {
        matches!(self, Phase::Remove | Phase::Restore)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource CloudFormation reported as failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedResource {
    /// Its logical id.
    pub logical_id: String,
    /// Its type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Its status, e.g. `UPDATE_FAILED`.
    pub status: String,
    /// CloudFormation's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A changed secret, by name and version (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSecret {
    /// Name.
    pub name: String,
    /// Full ARN.
    pub arn: String,
    /// The version now current, when known.
    pub version_id: Option<String>,
}

/// One stack's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackReport {
    /// The stack's name.
    pub stack_name: String,
    /// The stack's id.
    pub stack_id: String,
    /// The strategy used (none for stacks skipped at planning).
    pub strategy: Option<Strategy>,
    /// The resources refreshed (or that would have been).
    pub resources: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Where it ended.
    pub phase: Phase,
    /// Why it failed, was skipped or is degraded.
    pub reason: Option<String>,
    /// The resources CloudFormation reported as failed.
    #[serde(default)]
    pub failed_resources: Vec<FailedResource>,
    /// When its refresh began (RFC 3339).
    pub started_at: Option<String>,
    /// When its outcome was decided (RFC 3339).
    pub finished_at: Option<String>,
    /// For a degraded stack: the exact command that restores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_command: Option<String>,
    /// The ids (ARNs) of the change sets executed for the stack, oldest first.
    #[serde(default)]
    pub change_sets: Vec<String>,
    /// When CloudFormation's change set for an update was refused (and deleted): what it
    /// would have done that the plan does not mean, one entry per resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

/// Counts by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Stacks refreshed.
    pub refreshed: usize,
    /// Stacks failed (rolled back, intact).
    pub failed: usize,
    /// Stacks skipped.
    pub skipped: usize,
    /// Stacks degraded (need a restore).
    pub degraded: usize,
}

/// The report of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Version of this JSON shape ([`REPORT_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The batch.
    pub batch_id: String,
    /// What ran it: a Step Functions execution ARN, or `cli` for a local run.
    pub execution: String,
    /// The changed secrets.
    pub secrets: Vec<ReportSecret>,
    /// When the batch started (RFC 3339).
    pub started_at: String,
    /// When it finished (RFC 3339), if it did.
    pub finished_at: Option<String>,
    /// Counts by outcome.
    pub totals: Totals,
    /// Every stack, degraded first, then failed, refreshed, skipped; by name within each.
    pub stacks: Vec<StackReport>,
    /// References pinned to a version of a changed secret that Secrets Manager deprecated
    /// (it will delete it) or deleted, left as they are by the batch: a person has to
    /// change them (shown right after the degraded and failed stacks). Absent when none,
    /// and in reports written before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attention: Vec<Attention>,
    /// What concerns the batch as a whole: a secret that no longer exists (skipped), a
    /// discovery that failed, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    /// Puts the stacks (and what needs attention) in report order and recounts the totals.
    pub fn normalise(&mut self) {
        self.stacks
            .sort_by(|a, b| (a.outcome, &a.stack_name).cmp(&(b.outcome, &b.stack_name)));
        self.attention
            .sort_by(|a, b| (&a.stack_name, &a.path).cmp(&(&b.stack_name, &b.path)));
        let mut totals = Totals::default();
        for s in &self.stacks {
            match s.outcome {
                Outcome::Refreshed => totals.refreshed += 1,
                Outcome::Failed => totals.failed += 1,
                Outcome::Skipped => totals.skipped += 1,
                Outcome::Degraded => totals.degraded += 1,
            }
        }
        self.totals = totals;
    }

    /// The stacks with a given outcome.
    pub fn with_outcome(&self, outcome: Outcome) -> impl Iterator<Item = &StackReport> {
        self.stacks.iter().filter(move |s| s.outcome == outcome)
    }
}
