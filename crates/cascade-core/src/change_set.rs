//! CloudFormation's own verdict before every update (issue 8, item 1).
//!
//! Every update goes through a change set: CloudFormation computes what the update would
//! do to each resource, and [`verdict`] compares that with what the plan means the update
//! to do ([`Intent`]). The update is executed only when the change set does nothing else;
//! otherwise it is refused, with a reason naming each offending resource. Pure: the AWS
//! side creates, waits for, reads, executes or deletes the change set.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Value, json};

use crate::plan::StackPlan;
use crate::refresh::{PLACEHOLDER_ID, UpdateStep};
use crate::stateful::removal_hazard;

/// What a change set does to one resource (`ResourceChange.Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Creates it.
    Add,
    /// Updates it (in place, or by replacing it: see [`Replacement`]).
    Modify,
    /// Deletes it.
    Remove,
    /// Imports an existing resource.
    Import,
    /// CloudFormation cannot tell in advance (also any action this code does not know).
    Dynamic,
}

impl Action {
    /// Reads `ResourceChange.Action`; an unknown action counts as [`Action::Dynamic`].
    pub fn parse(text: &str) -> Self {
        match text {
            "Add" => Action::Add,
            "Modify" => Action::Modify,
            "Remove" => Action::Remove,
            "Import" => Action::Import,
            _ => Action::Dynamic,
        }
    }
}

/// Whether a Modify replaces the resource (`ResourceChange.Replacement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// It is replaced: a new one is created and the old one deleted.
    True,
    /// It is updated in place.
    False,
    /// It may be replaced, depending on values known only during the update.
    Conditional,
}

impl Replacement {
    /// Reads `ResourceChange.Replacement`; an unknown value counts as
    /// [`Replacement::Conditional`].
    pub fn parse(text: &str) -> Self {
        match text {
            "True" => Replacement::True,
            "False" => Replacement::False,
            _ => Replacement::Conditional,
        }
    }

    /// Whether the resource is, or may be, replaced.
    pub fn may_replace(self) -> bool {
        self != Replacement::False
    }
}

impl fmt::Display for Replacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Replacement::True => "True",
            Replacement::False => "False",
            Replacement::Conditional => "Conditional",
        })
    }
}

/// One `ResourceChange` of a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChange {
    /// The resource's logical id.
    pub logical_id: String,
    /// Its type, when CloudFormation gave it.
    pub resource_type: Option<String>,
    /// What the change does.
    pub action: Action,
    /// For a Modify: whether it replaces the resource (none when not given, which counts
    /// as [`Replacement::Conditional`]).
    pub replacement: Option<Replacement>,
    /// Which attributes change (`Properties`, `Metadata`, `Tags`, ...).
    pub scope: Vec<String>,
}

/// What the plan means one update to do: which logical ids it may remove, add and modify.
/// Anything else in the change set is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intent {
    /// The update, for the reasons.
    pub step: Option<UpdateStep>,
    /// The resources it may remove.
    pub may_remove: BTreeSet<String>,
    /// The resources it may add.
    pub may_add: BTreeSet<String>,
    /// The resources it may modify in place.
    pub may_modify: BTreeSet<String>,
}

impl Intent {
    /// What `step` of `plan` means to do: `recreate`'s removal removes only the closure
    /// (and adds the placeholder when nothing would be left) and modifies only the
    /// resources it pins; `pin` modifies only the plan's resources; the restore adds the
    /// closure back (and removes the placeholder), and may modify the pinned resources
    /// (putting the original back unpins them).
    pub fn for_update(plan: &StackPlan, step: UpdateStep) -> Self {
        let ids = |ids: &[String]| ids.iter().cloned().collect::<BTreeSet<_>>();
        let placeholder = || {
            plan.needs_placeholder
                .then(|| PLACEHOLDER_ID.to_string())
                .into_iter()
                .collect::<BTreeSet<_>>()
        };
        let mut intent = Intent {
            step: Some(step),
            ..Intent::default()
        };
        match step {
            UpdateStep::Remove => {
                intent.may_remove = ids(&plan.closure);
                intent.may_add = placeholder();
                intent.may_modify = plan.pinned_resources();
            }
            UpdateStep::Pin => intent.may_modify = ids(&plan.resources),
            UpdateStep::Restore => {
                intent.may_add = ids(&plan.closure);
                intent.may_remove = placeholder();
                intent.may_modify = plan.pinned_resources();
            }
        }
        intent
    }
}

/// What to do with a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It does only what the plan means: execute it.
    Execute,
    /// It does something else: delete it; each entry names a resource and why.
    Refuse(Vec<String>),
}

impl Verdict {
    /// The reason of a refusal, for the stack's outcome; `None` for [`Verdict::Execute`].
    pub fn refusal(&self) -> Option<String> {
        match self {
            Verdict::Execute => None,
            Verdict::Refuse(problems) => Some(refusal_reason(problems)),
        }
    }
}

/// Why a change set was refused, for people, from what it would have done (one entry per
/// resource, as in [`Verdict::Refuse`]).
pub fn refusal_reason(problems: &[String]) -> String {
    format!(
        "CloudFormation's change set was refused and deleted, nothing changed: it would {}",
        problems.join("; ")
    )
}

/// CloudFormation's verdict on an update: [`Verdict::Execute`] when every change is one
/// `intent` means; else [`Verdict::Refuse`] naming each resource the change set would
/// remove or replace (`Replacement` True or Conditional) without the plan meaning to
/// remove it, every stateful resource it would remove or replace (`stateful.rs`'s rules,
/// DeletionPolicy Retain / Snapshot included), and every resource it would add, modify or
/// import that the plan did not name (drift, a transform that renders differently).
/// `template` is the stack's template (its `Resources` give types and DeletionPolicy); a
/// resource missing from it is judged by the type the change gives.
pub fn verdict(intent: &Intent, template: &Value, changes: &[ResourceChange]) -> Verdict {
    let problems: Vec<String> = changes
        .iter()
        .filter_map(|change| problem(intent, template, change))
        .collect();
    if problems.is_empty() {
        Verdict::Execute
    } else {
        Verdict::Refuse(problems)
    }
}

fn problem(intent: &Intent, template: &Value, change: &ResourceChange) -> Option<String> {
    let id = change.logical_id.as_str();
    let kind = change.resource_type.as_deref().unwrap_or("unknown type");
    let hazard = hazard(template, change);
    let unnamed = "which the plan did not name (drift, or a transform that renders differently)";
    let step = intent.step.map_or("update".into(), |s| s.to_string());
    match change.action {
        Action::Remove
            if !intent.may_remove.contains(id)
                && sam_source(template, id, &intent.may_remove).is_none() =>
        {
            Some(format!(
                "remove {id} ({kind}), which the {step} update does not mean to remove"
            ))
        }
        Action::Remove => hazard.map(|h| format!("remove {id} ({kind}): {h}")),
        Action::Add
            if intent.may_add.contains(id)
                || sam_source(template, id, &intent.may_add).is_some() =>
        {
            None
        }
        Action::Add => Some(format!("add {id} ({kind}), {unnamed}")),
        Action::Import => Some(format!(
            "import {id} ({kind}): a refresh never imports resources"
        )),
        Action::Modify | Action::Dynamic => {
            let replacement = change.replacement;
            // Not given counts as "may replace": AWS always gives it for a Modify.
            let replaced = replacement.is_none_or(Replacement::may_replace);
            let shown = replacement.map_or("not given".to_string(), |r| r.to_string());
            if replaced {
                return Some(match hazard {
                    Some(h) => format!("replace {id} ({kind}, Replacement {shown}): {h}"),
                    None => format!(
                        "replace {id} ({kind}, Replacement {shown}), which the {step} update does not mean to remove"
                    ),
                });
            }
            if !intent.may_modify.contains(id) {
                return Some(format!("modify {id} ({kind}), {unnamed}"));
            }
            // Here Replacement is False: a named resource updated in place, whether the
            // action is Modify or Dynamic (decided during the update, but not by
            // replacing it).
            None
        }
    }
}

/// The SAM resource among `named` that `id` was generated from, when the template declares
/// the SAM transform: SAM names what it generates after the resource it expands (a function
/// `Ingest` becomes `Ingest`, `IngestRole`, `IngestTickPermission`, ...), and those ids are
/// not in the template itself. Removing or re-adding `Ingest` removes or re-adds them too.
fn sam_source<'n>(template: &Value, id: &str, named: &'n BTreeSet<String>) -> Option<&'n str> {
    let declares_sam = match template.get("Transform") {
        Some(Value::String(one)) => one == SAM_TRANSFORM,
        Some(Value::Array(many)) => many.iter().any(|t| t == SAM_TRANSFORM),
        _ => false,
    };
    let resources = template.get("Resources")?;
    if !declares_sam || resources.get(id).is_some() {
        return None;
    }
    named
        .iter()
        .filter(|source| id.len() > source.len() && id.starts_with(source.as_str()))
        .filter(|source| {
            resources
                .pointer(&format!("/{source}/Type"))
                .and_then(Value::as_str)
                .is_some_and(|t| t.starts_with("AWS::Serverless::"))
        })
        .max_by_key(|source| source.len())
        .map(String::as_str)
}

/// The SAM transform's name.
const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";

/// Why removing (or replacing) the changed resource would lose something, by its
/// definition in the template, or by the change's type when the template lacks it.
fn hazard(template: &Value, change: &ResourceChange) -> Option<String> {
    let mut definition = template
        .get("Resources")
        .and_then(|r| r.get(&change.logical_id))
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let (Some(map), Some(kind)) = (definition.as_object_mut(), &change.resource_type) {
        map.entry("Type").or_insert_with(|| json!(kind));
    }
    removal_hazard(&change.logical_id, &definition)
}

/// Where a change set is, read from its `Status`, `ExecutionStatus` and `StatusReason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetState {
    /// Still being created: look again.
    Creating,
    /// Created and available: read its changes, then execute or delete it.
    Ready,
    /// Already executed (in progress, complete or failed): the update has started.
    Executed,
    /// It failed because it contains no changes: as "No updates are to be performed".
    NoChanges,
    /// It failed (or can no longer be executed), for the reason given.
    Failed(String),
    /// It is being deleted, or was.
    Deleted,
}

/// Reads a change set's state. The one place CloudFormation's text is read: a change set
/// with nothing to do is `FAILED` with a reason saying so, and no code of its own.
pub fn change_set_state(
    status: &str,
    execution_status: &str,
    status_reason: Option<&str>,
) -> ChangeSetState {
    if matches!(
        execution_status,
        "EXECUTE_IN_PROGRESS" | "EXECUTE_COMPLETE" | "EXECUTE_FAILED"
    ) {
        return ChangeSetState::Executed;
    }
    let reason = status_reason.unwrap_or_default();
    match (status, execution_status) {
        ("CREATE_COMPLETE", "AVAILABLE") => ChangeSetState::Ready,
        ("CREATE_COMPLETE", "OBSOLETE") => ChangeSetState::Failed(
            "the change set is obsolete: the stack was updated since it was created".into(),
        ),
        ("FAILED", _) if is_no_changes(reason) => ChangeSetState::NoChanges,
        ("FAILED", _) => ChangeSetState::Failed(if reason.is_empty() {
            "the change set could not be created (no reason given)".into()
        } else {
            format!("the change set could not be created: {reason}")
        }),
        (s, _) if s.starts_with("DELETE_") => ChangeSetState::Deleted,
        _ => ChangeSetState::Creating,
    }
}

/// Whether a change set's status reason says it has nothing to do.
fn is_no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes")
        || reason.contains("did not contain changes")
        || reason.contains("No updates are to be performed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(
        id: &str,
        kind: &str,
        action: Action,
        replacement: Option<Replacement>,
    ) -> ResourceChange {
        ResourceChange {
            logical_id: id.into(),
            resource_type: Some(kind.into()),
            action,
            replacement,
            scope: vec!["Properties".into()],
        }
    }

    fn intent(step: UpdateStep, remove: &[&str], add: &[&str], modify: &[&str]) -> Intent {
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
        Intent {
            step: Some(step),
            may_remove: set(remove),
            may_add: set(add),
            may_modify: set(modify),
        }
    }

    fn template() -> Value {
        json!({"Resources": {
            "Fn": {"Type": "AWS::Lambda::Function"},
            "Role": {"Type": "AWS::IAM::Role"},
            "Param": {"Type": "AWS::SSM::Parameter"},
            "Db": {"Type": "AWS::RDS::DBInstance"},
            "Kept": {"Type": "AWS::Lambda::Function", "DeletionPolicy": "Retain"},
            "Snap": {"Type": "AWS::EC2::Volume", "DeletionPolicy": "Snapshot"}
        }})
    }

    fn refused(verdict: &Verdict) -> Vec<String> {
        match verdict {
            Verdict::Refuse(problems) => problems.clone(),
            Verdict::Execute => panic!("expected a refusal"),
        }
    }

    #[test]
    fn the_allowed_shapes_are_executed() {
        let t = template();
        let removal = intent(UpdateStep::Remove, &["Fn"], &[PLACEHOLDER_ID], &[]);
        let changes = [
            change("Fn", "AWS::Lambda::Function", Action::Remove, None),
            change(
                PLACEHOLDER_ID,
                "AWS::CloudFormation::WaitConditionHandle",
                Action::Add,
                None,
            ),
        ];
        assert_eq!(verdict(&removal, &t, &changes), Verdict::Execute);
        let restore = intent(UpdateStep::Restore, &[PLACEHOLDER_ID], &["Fn"], &[]);
        let changes = [
            change("Fn", "AWS::Lambda::Function", Action::Add, None),
            change(
                PLACEHOLDER_ID,
                "AWS::CloudFormation::WaitConditionHandle",
                Action::Remove,
                None,
            ),
        ];
        assert_eq!(verdict(&restore, &t, &changes), Verdict::Execute);
        let pin = intent(UpdateStep::Pin, &[], &[], &["Param", "Db"]);
        let changes = [
            change(
                "Param",
                "AWS::SSM::Parameter",
                Action::Modify,
                Some(Replacement::False),
            ),
            change(
                "Db",
                "AWS::RDS::DBInstance",
                Action::Modify,
                Some(Replacement::False),
            ),
        ];
        assert_eq!(verdict(&pin, &t, &changes), Verdict::Execute);
        assert_eq!(verdict(&pin, &t, &[]), Verdict::Execute, "no changes");
        assert_eq!(verdict(&pin, &t, &changes).refusal(), None);
    }

    #[test]
    fn replacing_a_stateful_resource_is_refused_even_when_named() {
        let pin = intent(UpdateStep::Pin, &[], &[], &["Db"]);
        for r in [Replacement::True, Replacement::Conditional] {
            let changes = [change(
                "Db",
                "AWS::RDS::DBInstance",
                Action::Modify,
                Some(r),
            )];
            let problems = refused(&verdict(&pin, &template(), &changes));
            assert_eq!(
                problems,
                [format!(
                    "replace Db (AWS::RDS::DBInstance, Replacement {r}): Db (AWS::RDS::DBInstance) holds state"
                )]
            );
        }
        let reason = verdict(
            &pin,
            &template(),
            &[change(
                "Db",
                "AWS::RDS::DBInstance",
                Action::Modify,
                Some(Replacement::True),
            )],
        )
        .refusal()
        .unwrap();
        assert!(
            reason.contains("refused and deleted, nothing changed"),
            "{reason}"
        );
        assert!(reason.contains("replace Db"), "{reason}");
    }

    #[test]
    fn replacing_a_stateless_resource_the_plan_keeps_is_refused() {
        let pin = intent(UpdateStep::Pin, &[], &[], &["Param"]);
        let changes = [change(
            "Param",
            "AWS::SSM::Parameter",
            Action::Modify,
            Some(Replacement::True),
        )];
        assert_eq!(
            refused(&verdict(&pin, &template(), &changes)),
            [
                "replace Param (AWS::SSM::Parameter, Replacement True), which the pin update does not mean to remove"
            ]
        );
        let unknown = [change("Param", "AWS::SSM::Parameter", Action::Modify, None)];
        assert_eq!(
            refused(&verdict(&pin, &template(), &unknown)),
            [
                "replace Param (AWS::SSM::Parameter, Replacement not given), which the pin update does not mean to remove"
            ],
            "no Replacement given may be a replacement"
        );
    }

    #[test]
    fn what_sam_generates_from_a_removed_function_goes_and_comes_back_with_it() {
        let sam = json!({
            "Transform": "AWS::Serverless-2016-10-31",
            "Resources": {
                "Ingest": {"Type": "AWS::Serverless::Function"},
                "IngestRoleArn": {"Type": "AWS::SSM::Parameter"},
                "Table": {"Type": "AWS::DynamoDB::Table"}
            }
        });
        let removal = intent(UpdateStep::Remove, &["Ingest"], &[], &[]);
        let changes = [
            change("Ingest", "AWS::Lambda::Function", Action::Remove, None),
            change("IngestRole", "AWS::IAM::Role", Action::Remove, None),
            change(
                "IngestTickPermission",
                "AWS::Lambda::Permission",
                Action::Remove,
                None,
            ),
        ];
        assert_eq!(verdict(&removal, &sam, &changes), Verdict::Execute);
        let restore = intent(UpdateStep::Restore, &[], &["Ingest"], &[]);
        let back = changes.clone().map(|mut c| {
            c.action = Action::Add;
            c
        });
        assert_eq!(verdict(&restore, &sam, &back), Verdict::Execute);
        // Not generated: a resource the template declares itself, one named after another
        // resource, and anything at all without the transform.
        for (id, kind) in [
            ("IngestRoleArn", "AWS::SSM::Parameter"),
            ("TableRole", "AWS::IAM::Role"),
        ] {
            let other = [change(id, kind, Action::Remove, None)];
            assert_eq!(refused(&verdict(&removal, &sam, &other)).len(), 1, "{id}");
        }
        let mut plain = sam.clone();
        plain.as_object_mut().unwrap().remove("Transform");
        assert_eq!(refused(&verdict(&removal, &plain, &changes)).len(), 2);
        // A generated resource that holds state is still refused.
        let stateful = [change(
            "IngestTable",
            "AWS::DynamoDB::Table",
            Action::Remove,
            None,
        )];
        assert_eq!(refused(&verdict(&removal, &sam, &stateful)).len(), 1);
    }

    #[test]
    fn removing_what_the_plan_does_not_remove_is_refused() {
        let removal = intent(UpdateStep::Remove, &["Fn"], &[], &[]);
        let changes = [
            change("Fn", "AWS::Lambda::Function", Action::Remove, None),
            change("Role", "AWS::IAM::Role", Action::Remove, None),
        ];
        assert_eq!(
            refused(&verdict(&removal, &template(), &changes)),
            ["remove Role (AWS::IAM::Role), which the remove update does not mean to remove"]
        );
        let pin = intent(UpdateStep::Pin, &[], &[], &["Param"]);
        let changes = [change("Param", "AWS::SSM::Parameter", Action::Remove, None)];
        assert_eq!(
            refused(&verdict(&pin, &template(), &changes)).len(),
            1,
            "pin never removes"
        );
    }

    #[test]
    fn removing_a_stateful_resource_is_refused_even_when_meant() {
        let removal = intent(UpdateStep::Remove, &["Db", "Kept", "Snap"], &[], &[]);
        let changes = [
            change("Db", "AWS::RDS::DBInstance", Action::Remove, None),
            change("Kept", "AWS::Lambda::Function", Action::Remove, None),
            change("Snap", "AWS::EC2::Volume", Action::Remove, None),
            // Not in the template: judged by the change's type.
            change("Gone", "AWS::DynamoDB::Table", Action::Remove, None),
        ];
        let problems = refused(&verdict(&removal, &template(), &changes));
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].ends_with("Db (AWS::RDS::DBInstance) holds state"));
        assert!(problems[1].ends_with("Kept has DeletionPolicy Retain"));
        assert!(problems[2].ends_with("Snap has DeletionPolicy Snapshot"));
        assert!(problems[3].starts_with("remove Gone (AWS::DynamoDB::Table), which"));
        let retained_replacement = [change(
            "Kept",
            "AWS::Lambda::Function",
            Action::Modify,
            Some(Replacement::Conditional),
        )];
        let pin = intent(UpdateStep::Pin, &[], &[], &["Kept"]);
        assert!(
            refused(&verdict(&pin, &template(), &retained_replacement))[0]
                .ends_with("DeletionPolicy Retain")
        );
    }

    #[test]
    fn changes_to_resources_the_plan_did_not_name_are_refused() {
        let restore = intent(UpdateStep::Restore, &[], &["Fn"], &[]);
        let changes = [
            change("Fn", "AWS::Lambda::Function", Action::Add, None),
            change(
                "Role",
                "AWS::IAM::Role",
                Action::Modify,
                Some(Replacement::False),
            ),
            change("Extra", "AWS::SNS::Topic", Action::Add, None),
            change("Old", "AWS::SNS::Topic", Action::Import, None),
        ];
        let problems = refused(&verdict(&restore, &template(), &changes));
        assert_eq!(
            problems,
            [
                "modify Role (AWS::IAM::Role), which the plan did not name (drift, or a transform that renders differently)",
                "add Extra (AWS::SNS::Topic), which the plan did not name (drift, or a transform that renders differently)",
                "import Old (AWS::SNS::Topic): a refresh never imports resources",
            ]
        );
        let pin = intent(UpdateStep::Pin, &[], &[], &["Param"]);
        let added = [change("Fn", "AWS::Lambda::Function", Action::Add, None)];
        assert_eq!(
            refused(&verdict(&pin, &template(), &added)).len(),
            1,
            "pin never adds"
        );
    }

    #[test]
    fn dynamic_changes_are_allowed_only_named_and_in_place() {
        let pin = intent(UpdateStep::Pin, &[], &[], &["Param"]);
        let dynamic = |r| [change("Param", "AWS::SSM::Parameter", Action::Dynamic, r)];
        assert_eq!(
            verdict(&pin, &template(), &dynamic(Some(Replacement::False))),
            Verdict::Execute
        );
        let other = [change(
            "Role",
            "AWS::IAM::Role",
            Action::Dynamic,
            Some(Replacement::False),
        )];
        assert!(refused(&verdict(&pin, &template(), &other))[0].starts_with("modify Role"));
        assert!(
            refused(&verdict(&pin, &template(), &dynamic(None)))[0].starts_with("replace Param")
        );
        assert!(
            refused(&verdict(
                &pin,
                &template(),
                &dynamic(Some(Replacement::Conditional))
            ))[0]
                .starts_with("replace Param")
        );
        assert_eq!(Action::parse("SomethingNew"), Action::Dynamic);
        assert_eq!(Replacement::parse("Maybe"), Replacement::Conditional);
    }

    #[test]
    fn intents_come_from_the_plan() {
        let plan: StackPlan = serde_json::from_value(json!({
            "stack_name": "app", "stack_id": "id", "strategy": "recreate", "secrets": ["s"],
            "resources": ["Fn"], "closure": ["Fn", "Alias"], "outputs": [],
            "needs_placeholder": true, "references": [], "template_digest": "d"
        }))
        .unwrap();
        let removal = Intent::for_update(&plan, UpdateStep::Remove);
        assert_eq!(
            removal.may_remove.iter().collect::<Vec<_>>(),
            ["Alias", "Fn"]
        );
        assert_eq!(removal.may_add.iter().collect::<Vec<_>>(), [PLACEHOLDER_ID]);
        assert!(removal.may_modify.is_empty());
        let restore = Intent::for_update(&plan, UpdateStep::Restore);
        assert_eq!(restore.may_add.iter().collect::<Vec<_>>(), ["Alias", "Fn"]);
        assert_eq!(
            restore.may_remove.iter().collect::<Vec<_>>(),
            [PLACEHOLDER_ID]
        );
        let pin = Intent::for_update(&plan, UpdateStep::Pin);
        assert_eq!(pin.may_modify.iter().collect::<Vec<_>>(), ["Fn"]);
        assert!(pin.may_remove.is_empty() && pin.may_add.is_empty());
    }

    #[test]
    fn a_mixed_removal_may_modify_only_what_it_pins() {
        let plan: StackPlan = serde_json::from_value(json!({
            "stack_name": "app", "stack_id": "id", "strategy": "recreate", "secrets": ["s"],
            "resources": ["Fn", "Param", "Service"], "closure": ["Fn"], "outputs": [],
            "needs_placeholder": false, "references": [], "template_digest": "d",
            "actions": [
                {"logical_id": "Fn", "resource_type": "AWS::Lambda::Function", "action": "recreate", "reason": ""},
                {"logical_id": "Param", "resource_type": "AWS::SSM::Parameter", "action": "pin", "reason": ""},
                {"logical_id": "Service", "resource_type": "AWS::ECS::Service", "action": "restart", "reason": ""}
            ]
        }))
        .unwrap();
        let removal = Intent::for_update(&plan, UpdateStep::Remove);
        assert_eq!(removal.may_modify.iter().collect::<Vec<_>>(), ["Param"]);
        assert_eq!(removal.may_remove.iter().collect::<Vec<_>>(), ["Fn"]);
        let in_place = |id: &str| {
            change(
                id,
                "AWS::SSM::Parameter",
                Action::Modify,
                Some(Replacement::False),
            )
        };
        assert_eq!(
            verdict(&removal, &json!({}), &[in_place("Param")]),
            Verdict::Execute
        );
        // The service is restarted after the updates, never modified by them.
        assert!(
            refused(&verdict(&removal, &json!({}), &[in_place("Service")]))[0]
                .starts_with("modify Service")
        );
        let restore = Intent::for_update(&plan, UpdateStep::Restore);
        assert_eq!(restore.may_modify.iter().collect::<Vec<_>>(), ["Param"]);
        assert_eq!(restore.may_add.iter().collect::<Vec<_>>(), ["Fn"]);
    }

    #[test]
    fn change_set_states_are_read_once() {
        use ChangeSetState::*;
        assert_eq!(
            change_set_state("CREATE_PENDING", "UNAVAILABLE", None),
            Creating
        );
        assert_eq!(
            change_set_state("CREATE_IN_PROGRESS", "UNAVAILABLE", None),
            Creating
        );
        assert_eq!(
            change_set_state("CREATE_COMPLETE", "AVAILABLE", None),
            Ready
        );
        assert_eq!(
            change_set_state("CREATE_COMPLETE", "EXECUTE_COMPLETE", None),
            Executed
        );
        assert_eq!(
            change_set_state("CREATE_COMPLETE", "EXECUTE_IN_PROGRESS", None),
            Executed
        );
        assert_eq!(
            change_set_state("CREATE_COMPLETE", "EXECUTE_FAILED", None),
            Executed
        );
        let moto = "The submitted information didn't contain changes. Submit different information to create a change set.";
        assert_eq!(
            change_set_state("FAILED", "UNAVAILABLE", Some(moto)),
            NoChanges
        );
        assert_eq!(
            change_set_state(
                "FAILED",
                "UNAVAILABLE",
                Some("No updates are to be performed.")
            ),
            NoChanges
        );
        assert_eq!(
            change_set_state("FAILED", "UNAVAILABLE", Some("Template format error")),
            Failed("the change set could not be created: Template format error".into())
        );
        assert!(matches!(change_set_state("FAILED", "", None), Failed(_)));
        assert!(matches!(
            change_set_state("CREATE_COMPLETE", "OBSOLETE", None),
            Failed(_)
        ));
        assert_eq!(change_set_state("DELETE_COMPLETE", "", None), Deleted);
    }
}
