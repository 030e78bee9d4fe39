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

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::plan::{Plan, StackPlan, StrategyChoice};
use crate::refresh::StackState;
use crate::report::{REPORT_SCHEMA_VERSION, Report, ReportSecret, Totals};
use crate::restore::RestoreTarget;
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
    /// When it started.
    pub created_at: Timestamp,
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

impl BatchManifest {
    /// A new batch's manifest, created `at`.
    pub fn new(
        batch_id: impl Into<String>,
        execution: impl Into<String>,
        at: Timestamp,
        secrets: Vec<Secret>,
        strategy: StrategyChoice,
        plan: Plan,
    ) -> Self {
        BatchManifest {
            schema_version: STATE_SCHEMA_VERSION,
            batch_id: batch_id.into(),
            execution: execution.into(),
            created_at: at,
            secrets,
            strategy,
            plan,
            notes: Vec::new(),
        }
    }

    /// The manifest of a batch whose own was never written (its discovery failed): no
    /// secrets, nothing planned, so that its report can still say what happened.
    pub fn missing(
        batch_id: impl Into<String>,
        execution: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        BatchManifest::new(
            batch_id,
            execution,
            at,
            Vec::new(),
            StrategyChoice::Auto,
            Plan::empty(Vec::new()),
        )
    }

    /// The manifest as one stack's steps need it: the batch, its secrets and that stack's
    /// plan alone (what Discover saves beside the manifest, [`keys::stack_manifest`], so
    /// that a step reads a few hundred bytes, not the plan of every stack of the batch).
    /// `None` when the stack is not in the plan.
    pub fn for_stack(&self, stack: &str) -> Option<BatchManifest> {
        let planned = self.plan.stacks.iter().find(|p| p.stack_name == stack)?;
        Some(self.with_plan_of(planned))
    }

    /// Every planned stack's [`BatchManifest::for_stack`], in plan order.
    pub fn stack_manifests(&self) -> impl Iterator<Item = BatchManifest> + '_ {
        self.plan.stacks.iter().map(|p| self.with_plan_of(p))
    }

    fn with_plan_of(&self, planned: &StackPlan) -> BatchManifest {
        BatchManifest {
            schema_version: self.schema_version,
            batch_id: self.batch_id.clone(),
            execution: self.execution.clone(),
            created_at: self.created_at,
            secrets: self.secrets.clone(),
            strategy: self.strategy,
            plan: Plan {
                schema_version: self.plan.schema_version,
                secrets: self.plan.secrets.clone(),
                stacks: vec![planned.clone()],
                skipped: Vec::new(),
                attention: Vec::new(),
                notes: Vec::new(),
            },
            notes: Vec::new(),
        }
    }

    /// The initial state of every stack: planned ones to refresh, then those skipped.
    pub fn initial_states(&self) -> Vec<StackState> {
        self.plan
            .stacks
            .iter()
            .map(StackState::planned)
            .chain(self.plan.skipped.iter().map(StackState::skipped_at_plan))
            .collect()
    }
}

/// The report of a batch from its manifest and the states of its stacks; a degraded
/// stack's line carries the restore command for the batch's state at `restore`.
pub fn build_report(
    manifest: &BatchManifest,
    states: &[StackState],
    finished_at: Option<Timestamp>,
    restore: &RestoreTarget,
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
        started_at: manifest.created_at.to_string(),
        finished_at: finished_at.map(|at| at.to_string()),
        totals: Totals::default(),
        stacks: states
            .iter()
            .map(|s| {
                s.to_report(
                    &manifest.batch_id,
                    Some(restore.command(&manifest.batch_id, &s.stack_name)),
                )
            })
            .collect(),
        attention: manifest.plan.attention.clone(),
        notes: manifest
            .notes
            .iter()
            .chain(&manifest.plan.notes)
            .cloned()
            .collect(),
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
    /// The stacks to refresh, in order, as a JSON array of names: what the state machine's
    /// map reads (its `ItemReader`), so no payload carries the list.
    pub fn map_items(batch: &str) -> String {
        format!("batches/{batch}/map-items.json")
    }
    /// One planned stack's slice of the manifest ([`super::BatchManifest::for_stack`]):
    /// what its steps read.
    pub fn stack_manifest(batch: &str, stack: &str) -> String {
        format!("batches/{batch}/plans/{stack}.json")
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
    pub fn template(batch: &str, stack: &str, step: crate::refresh::UpdateStep) -> String {
        format!(
            "batches/{batch}/templates/{stack}-{}.json",
            step.template_name()
        )
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

/// A batch id: the time it started (`20261126T010203Z`) and a short random part, safe in
/// keys and tokens.
pub fn new_batch_id(at: Timestamp, random: u32) -> String {
    format!(
        "{}-{:06x}",
        at.strftime("%Y%m%dT%H%M%SZ"),
        random & 0xff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PLAN_SCHEMA_VERSION, SkipCode, SkippedStack, Strategy};
    use crate::report::{Outcome, Phase};

    fn manifest() -> BatchManifest {
        BatchManifest {
            schema_version: STATE_SCHEMA_VERSION,
            batch_id: "b1".into(),
            execution: "cli".into(),
            created_at: "2026-11-26T00:00:00Z".parse().unwrap(),
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
                attention: vec![],
                notes: vec![],
            },
            notes: vec![],
        }
    }

    fn state(name: &str, outcome: Option<Outcome>) -> StackState {
        StackState {
            phase: Phase::Restore,
            outcome,
            reason: outcome.map(|o| o.to_string()),
            ..StackState::new(
                name,
                format!("id-{name}"),
                Some(Strategy::Recreate),
                vec!["Fn".into()],
            )
        }
    }

    fn planned(name: &str) -> StackPlan {
        StackPlan {
            stack_name: name.into(),
            stack_id: format!("id-{name}"),
            strategy: Strategy::Pin,
            secrets: vec!["prod/db".into()],
            resources: vec!["Fn".into()],
            closure: vec![],
            outputs: vec![],
            needs_placeholder: false,
            actions: vec![],
            references: vec![],
            template_digest: format!("digest-{name}"),
            notes: vec![],
        }
    }

    #[test]
    fn a_stacks_slice_of_the_manifest_holds_the_batch_and_that_stack_alone() {
        let mut whole = manifest();
        whole.plan.stacks = (0..3).map(|i| planned(&format!("s{i}"))).collect();
        whole.plan.notes = vec!["a note of the whole plan".into()];
        whole.notes = vec!["a note of the batch".into()];
        let slice = whole.for_stack("s1").unwrap();
        assert_eq!(slice.plan.stacks, [planned("s1")]);
        assert_eq!(
            (&slice.batch_id, &slice.secrets, slice.strategy),
            (&whole.batch_id, &whole.secrets, whole.strategy)
        );
        assert!(slice.plan.notes.is_empty() && slice.notes.is_empty());
        assert_eq!(whole.for_stack("nope"), None);
        let slices: Vec<BatchManifest> = whole.stack_manifests().collect();
        assert_eq!(slices.len(), 3);
        assert_eq!(slices[2], whole.for_stack("s2").unwrap());
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
        let report = build_report(
            &manifest(),
            &states,
            Some("2026-11-26T00:05:00Z".parse().unwrap()),
            &RestoreTarget::default_directory(),
        );
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
        let report = build_report(
            &manifest(),
            &[state("a", None)],
            None,
            &RestoreTarget::default_directory(),
        );
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
        let id = new_batch_id("2026-11-26T00:00:00Z".parse().unwrap(), 0xabcdef12);
        assert_eq!(id, "20261126T000000Z-cdef12");
        for at in ["2026-11-26T01:02:03.456Z", "2026-11-26T01:02:03Z"] {
            assert!(new_batch_id(at.parse().unwrap(), 1).starts_with("20261126T010203Z-"));
        }
        assert!(keys::state(&id, "app").starts_with(&keys::states_prefix(&id)));
    }
}
