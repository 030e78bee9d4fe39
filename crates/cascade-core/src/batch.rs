//! A batch: the secrets it refreshes, its plan, and the saved state of each stack, so that
//! an interrupted batch resumes where it stopped and is never redone from scratch.
//!
//! Where things are kept (under the state store's root, S3 or a local directory):
//!
//! ```text
//! batches/BATCH/batch.json              the manifest: secrets, options, plan
//! batches/BATCH/stacks/STACK.json       one stack's state (phase, outcome, ...)
//! batches/BATCH/originals/STACK.json    the stack's original template and settings
//! batches/BATCH/templates/STACK-STEP.json  a template too large to send inline
//! reports/BATCH/report.json|.md         the report
//! ```

use serde::{Deserialize, Serialize};

use crate::plan::{Plan, SkippedStack, StackPlan, Strategy, StrategyChoice};
use crate::report::{
    FailedResource, Outcome, Phase, REPORT_SCHEMA_VERSION, Report, ReportSecret, StackReport,
    Totals,
};
use crate::secret::Secret;

/// Version of the manifest and state JSON shapes.
pub const STATE_SCHEMA_VERSION: u32 = 1;

/// What a batch is about; written once when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchManifest {
    /// Version of this shape.
    pub schema_version: u32,
    /// The batch id.
    pub batch_id: String,
    /// What runs it: `cli`, or a Step Functions execution ARN.
    pub execution: String,
    /// When it started (RFC 3339).
    pub created_at: String,
    /// The changed secrets (names, ARNs, versions; never values).
    pub secrets: Vec<Secret>,
    /// The strategy asked for.
    pub strategy: StrategyChoice,
    /// The plan the batch carries out.
    pub plan: Plan,
    /// What concerns the batch as a whole (e.g. a secret that no longer exists: skipped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The saved state of one stack in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackState {
    /// The stack's name.
    pub stack_name: String,
    /// The stack's id.
    pub stack_id: String,
    /// The strategy (none when skipped at planning).
    pub strategy: Option<Strategy>,
    /// The resources refreshed.
    pub resources: Vec<String>,
    /// The step it is in (or ended in).
    pub phase: Phase,
    /// How it ended, once it has.
    pub outcome: Option<Outcome>,
    /// Why it failed, was skipped or is degraded.
    pub reason: Option<String>,
    /// The resources CloudFormation reported as failed.
    #[serde(default)]
    pub failed_resources: Vec<FailedResource>,
    /// When its refresh began.
    pub started_at: Option<String>,
    /// When its outcome was decided.
    pub finished_at: Option<String>,
    /// Which attempt (1, then 2 after `--retry-failed`, ...): part of the request tokens.
    pub attempt: u32,
    /// When the update being waited on was issued (events before it are not ours).
    pub update_issued_at: Option<String>,
}

impl StackState {
    /// The initial state of a stack to refresh.
    pub fn planned(plan: &StackPlan) -> Self {
        StackState {
            stack_name: plan.stack_name.clone(),
            stack_id: plan.stack_id.clone(),
            strategy: Some(plan.strategy),
            resources: plan.resources.clone(),
            phase: Phase::Begin,
            outcome: None,
            reason: None,
            failed_resources: Vec::new(),
            started_at: None,
            finished_at: None,
            attempt: 1,
            update_issued_at: None,
        }
    }

    /// The final state of a stack skipped at planning.
    pub fn skipped_at_plan(skipped: &SkippedStack) -> Self {
        StackState {
            stack_name: skipped.stack_name.clone(),
            stack_id: skipped.stack_id.clone(),
            strategy: None,
            resources: Vec::new(),
            phase: Phase::Plan,
            outcome: Some(Outcome::Skipped),
            reason: Some(skipped.reason.clone()),
            failed_resources: Vec::new(),
            started_at: None,
            finished_at: None,
            attempt: 1,
            update_issued_at: None,
        }
    }

    /// Whether the stack's outcome is decided.
    pub fn is_final(&self) -> bool {
        self.outcome.is_some()
    }

    /// Decides the outcome.
    pub fn conclude(&mut self, outcome: Outcome, reason: Option<String>, at: &str) {
        self.outcome = Some(outcome);
        self.reason = reason;
        self.finished_at = Some(at.to_string());
        if outcome == Outcome::Refreshed {
            self.phase = Phase::Done;
        }
    }

    /// Makes a failed or degraded stack ready for another attempt.
    pub fn retry(&mut self) {
        self.outcome = None;
        self.reason = None;
        self.failed_resources.clear();
        self.finished_at = None;
        self.update_issued_at = None;
        self.attempt += 1;
        self.phase = Phase::Begin;
    }

    /// The stack's line in the report.
    pub fn to_report(&self, batch_id: &str) -> StackReport {
        let outcome = self.outcome.unwrap_or(Outcome::Failed);
        StackReport {
            stack_name: self.stack_name.clone(),
            stack_id: self.stack_id.clone(),
            strategy: self.strategy,
            resources: self.resources.clone(),
            outcome,
            phase: self.phase,
            reason: match self.outcome {
                Some(_) => self.reason.clone(),
                None => Some(format!(
                    "the batch stopped while this stack was in phase {:?}: resume it with `cascade run --resume {batch_id}`",
                    self.phase
                )),
            },
            failed_resources: self.failed_resources.clone(),
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            restore_command: (outcome == Outcome::Degraded)
                .then(|| restore_command(batch_id, &self.stack_name)),
        }
    }
}

/// The command that puts a stack back as it was before the batch touched it.
pub fn restore_command(batch_id: &str, stack_name: &str) -> String {
    format!("cascade restore --stack {stack_name} --batch {batch_id}")
}

/// The report of a batch from its manifest and the states of its stacks.
pub fn build_report(
    manifest: &BatchManifest,
    states: &[StackState],
    finished_at: Option<&str>,
) -> Report {
    let mut report = Report {
        schema_version: REPORT_SCHEMA_VERSION,
        batch_id: manifest.batch_id.clone(),
        execution: manifest.execution.clone(),
        secrets: manifest
            .secrets
            .iter()
            .map(|s| ReportSecret {
                name: s.name.clone(),
                arn: s.arn.clone(),
                version_id: s.version_id.clone(),
            })
            .collect(),
        started_at: manifest.created_at.clone(),
        finished_at: finished_at.map(str::to_string),
        totals: Totals::default(),
        stacks: states
            .iter()
            .map(|s| s.to_report(&manifest.batch_id))
            .collect(),
        notes: manifest.notes.clone(),
    };
    report.normalise();
    report
}

/// Keys of a batch's objects in the state store.
pub mod keys {
    /// The manifest.
    pub fn manifest(batch: &str) -> String {
        format!("batches/{batch}/batch.json")
    }
    /// Prefix of the stack states.
    pub fn states_prefix(batch: &str) -> String {
        format!("batches/{batch}/stacks/")
    }
    /// One stack's state.
    pub fn state(batch: &str, stack: &str) -> String {
        format!("batches/{batch}/stacks/{stack}.json")
    }
    /// One stack's saved original.
    pub fn original(batch: &str, stack: &str) -> String {
        format!("batches/{batch}/originals/{stack}.json")
    }
    /// A template uploaded for TemplateURL.
    pub fn template(batch: &str, stack: &str, step: &str) -> String {
        format!("batches/{batch}/templates/{stack}-{step}.json")
    }
    /// The JSON report.
    pub fn report_json(batch: &str) -> String {
        format!("reports/{batch}/report.json")
    }
    /// The Markdown report.
    pub fn report_markdown(batch: &str) -> String {
        format!("reports/{batch}/report.md")
    }
    /// Prefix of every batch.
    pub const BATCHES: &str = "batches/";
}

/// What a stack looked like before the batch changed it: restored byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOriginal {
    /// Version of this shape.
    pub schema_version: u32,
    /// The stack's id.
    pub stack_id: String,
    /// The stack's name.
    pub stack_name: String,
    /// The Original-stage template body, exactly as GetTemplate returned it.
    pub template_body: String,
    /// Parameters: key and value; `None` for NoEcho parameters (kept with UsePreviousValue).
    pub parameters: Vec<(String, Option<String>)>,
    /// The stack's capabilities.
    pub capabilities: Vec<String>,
    /// The stack's service role, if any.
    pub role_arn: Option<String>,
    /// The stack's notification topics.
    pub notification_arns: Vec<String>,
    /// The stack's tags (unchanged by the batch).
    pub tags: Vec<(String, String)>,
    /// When it was saved.
    pub saved_at: String,
}

/// A batch id: the time it started and a short random part, safe in keys and tokens.
pub fn new_batch_id(now_compact: &str, random: u32) -> String {
    format!("{now_compact}-{:06x}", random & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PLAN_SCHEMA_VERSION, SkipCode};

    fn manifest() -> BatchManifest {
        BatchManifest {
            schema_version: STATE_SCHEMA_VERSION,
            batch_id: "b1".into(),
            execution: "cli".into(),
            created_at: "2026-11-26T00:00:00Z".into(),
            secrets: vec![Secret {
                name: "prod/db".into(),
                arn: "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf".into(),
                version_id: Some("v2".into()),
                owner: None,
            }],
            strategy: StrategyChoice::Auto,
            plan: Plan {
                schema_version: PLAN_SCHEMA_VERSION,
                secrets: vec![],
                stacks: vec![],
                skipped: vec![],
            },
            notes: vec![],
        }
    }

    fn state(name: &str, outcome: Option<Outcome>) -> StackState {
        StackState {
            stack_name: name.into(),
            stack_id: format!("id-{name}"),
            strategy: Some(Strategy::Recreate),
            resources: vec!["Fn".into()],
            phase: Phase::Restore,
            outcome,
            reason: outcome.map(|o| format!("{o:?}")),
            failed_resources: vec![],
            started_at: None,
            finished_at: None,
            attempt: 1,
            update_issued_at: None,
        }
    }

    #[test]
    fn the_report_puts_degraded_first_with_the_restore_command() {
        let states = [
            state("a", Some(Outcome::Refreshed)),
            state("b", Some(Outcome::Degraded)),
            state("c", Some(Outcome::Failed)),
            StackState::skipped_at_plan(&SkippedStack {
                stack_name: "d".into(),
                stack_id: "id-d".into(),
                code: SkipCode::OptedOut,
                reason: "opted out".into(),
                references: vec![],
            }),
        ];
        let report = build_report(&manifest(), &states, Some("2026-11-26T00:05:00Z"));
        let order: Vec<(&str, Outcome)> = report
            .stacks
            .iter()
            .map(|s| (s.stack_name.as_str(), s.outcome))
            .collect();
        assert_eq!(
            order,
            [
                ("b", Outcome::Degraded),
                ("c", Outcome::Failed),
                ("a", Outcome::Refreshed),
                ("d", Outcome::Skipped)
            ]
        );
        assert_eq!(
            report.totals,
            Totals {
                refreshed: 1,
                failed: 1,
                skipped: 1,
                degraded: 1
            }
        );
        assert_eq!(
            report.stacks[0].restore_command.as_deref(),
            Some("cascade restore --stack b --batch b1")
        );
        assert!(report.stacks[1].restore_command.is_none());
        assert_eq!(report.secrets[0].version_id.as_deref(), Some("v2"));
    }

    #[test]
    fn an_unfinished_stack_is_reported_with_how_to_resume() {
        let report = build_report(&manifest(), &[state("a", None)], None);
        assert!(
            report.stacks[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("cascade run --resume b1")
        );
    }

    #[test]
    fn retry_starts_a_new_attempt() {
        let mut s = state("a", Some(Outcome::Failed));
        s.retry();
        assert_eq!((s.outcome, s.phase, s.attempt), (None, Phase::Begin, 2));
    }

    #[test]
    fn states_round_trip_through_json() {
        let s = state("a", Some(Outcome::Degraded));
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<StackState>(&text).unwrap(), s);
        let m = manifest();
        assert_eq!(
            serde_json::from_str::<BatchManifest>(&serde_json::to_string(&m).unwrap()).unwrap(),
            m
        );
    }

    #[test]
    fn batch_ids_are_safe_in_keys() {
        let id = new_batch_id("20261126T000000Z", 0xabcdef12);
        assert_eq!(id, "20261126T000000Z-cdef12");
        assert!(keys::state(&id, "app").starts_with(&keys::states_prefix(&id)));
    }
}
