//! Sample reports for the renderers' tests (Markdown and Slack).

use crate::finder::Form;
use crate::pins::{Attention, PinStatus, PinnedBy};
use crate::plan::Strategy;
use crate::report::{
    Outcome, Phase, REPORT_SCHEMA_VERSION, Report, ReportSecret, StackReport, Totals,
};

/// A stack recreated to the end with `outcome`, nothing else set.
pub(crate) fn stack(name: &str, outcome: Outcome) -> StackReport {
    StackReport {
        stack_name: name.into(),
        stack_id: format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/1"),
        strategy: Some(Strategy::Recreate),
        resources: vec!["Function".into()],
        outcome,
        phase: Phase::Done,
        reason: None,
        failed_resources: vec![],
        started_at: None,
        finished_at: None,
        restore_command: None,
        change_sets: vec![],
        refused: vec![],
    }
}

/// A finished report of batch `batch_id` for one secret, `prod/db`, over `stacks`.
pub(crate) fn report(batch_id: &str, stacks: Vec<StackReport>) -> Report {
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        batch_id: batch_id.into(),
        execution: "cli".into(),
        secrets: vec![ReportSecret {
            name: "prod/db".into(),
            arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf".into(),
            version_id: Some("v-2".into()),
        }],
        started_at: "2024-05-01T10:00:00Z".into(),
        finished_at: Some("2024-05-01T10:05:00Z".into()),
        totals: Totals::default(),
        stacks,
        attention: vec![],
        notes: vec![],
    }
}

/// A reference of `stack` pinned to version `v-0` of `prod/db`, now `status`; its reason
/// holds characters both renderers escape (`|`, `<`, `>`).
pub(crate) fn pinned(stack: &str, status: PinStatus, pinned_by: PinnedBy) -> Attention {
    Attention {
        stack_name: stack.into(),
        stack_id: format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{stack}/1"),
        resource: Some("Fn".into()),
        path: "Resources.Fn.Properties.Environment.Variables.KEY".into(),
        secret: "prod/db".into(),
        version_id: "v-0".into(),
        form: Form::DynamicReference,
        pinned_by,
        status,
        reason: format!("version v-0 of prod/db is {status} | pin <another>"),
    }
}
