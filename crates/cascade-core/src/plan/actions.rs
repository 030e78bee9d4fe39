//! What happens to each resource of a stack: the least disruptive safe action per resource
//! (`auto`), or the one strategy asked for.
//!
//! - `pin`: a dynamic reference in an updatable property is rewritten to name the new
//!   version; CloudFormation updates the resource in place.
//! - `restart`: an ECS service runs a task definition that reads the secret by `ValueFrom`:
//!   a new deployment refreshes it, the template does not change.
//! - `recreate`: only what nothing else can refresh (a parameter, an imported export, a
//!   resource listed by tag, a dynamic reference in a task definition, which only a new
//!   revision resolves again), and only when removing it and what depends on it is safe.
//! - `report`: the rest (create-only, possible, pinned by the author, outside properties),
//!   with the reasons.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::create_only::is_create_only_at;
use crate::eval::resource_type;
use crate::finder::{Disposition, Form, Reference};
use crate::graph::DependencyGraph;
use crate::stack_policy::{StackPolicy, UpdateAction};

/// What the plan does with one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Its dynamic references are rewritten to name the new version (updated in place).
    Pin,
    /// An ECS service restarted by a new deployment (nothing removed, template unchanged).
    Restart,
    /// Removed and added back (it, or what it depends on, cannot be refreshed otherwise).
    Recreate,
    /// Only reported: nothing Secret Cascade may do refreshes it (the reason says why).
    Report,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Pin => "pin",
            Action::Restart => "restart",
            Action::Recreate => "recreate",
            Action::Report => "report",
        })
    }
}

/// The action for one resource of a stack, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAction {
    /// The resource's logical id.
    pub logical_id: String,
    /// Its type, e.g. `AWS::RDS::DBInstance` (empty when the template does not say).
    pub resource_type: String,
    /// What is done with it.
    pub action: Action,
    /// Why, for people.
    pub reason: String,
}

/// Per-resource actions, before the stack's strategy is decided.
#[derive(Debug, Default)]
pub(super) struct Actions {
    /// Why each root cannot be refreshed otherwise, in order.
    pub root_reasons: Vec<String>,
    /// Everything removed and added back: the roots and their dependants.
    pub closure: BTreeSet<String>,
    /// The resources refreshed for their own references (pinned, or recreated as roots
    /// or in the closure) and the services restarted.
    pub resources: BTreeSet<String>,
    /// One entry per resource with a reference or an action, by logical id.
    pub list: Vec<ResourceAction>,
}

impl Actions {
    /// The distinct actions that change something (not `report`).
    pub fn kinds(&self) -> BTreeSet<Action> {
        self.list
            .iter()
            .map(|a| a.action)
            .filter(|a| *a != Action::Report)
            .collect()
    }
}

/// Why a refreshed reference cannot be pinned, if it cannot.
pub(super) fn unpinnable(template: &Value, r: &Reference) -> Option<String> {
    if !r.form.is_dynamic_reference() {
        let article = match r.form {
            Form::ImportValue | Form::EcsValueFrom => "an",
            _ => "a",
        };
        return Some(format!(
            "{} is {article} {} reference, not a dynamic reference",
            r.path, r.form
        ));
    }
    let kind = r
        .resource
        .as_deref()
        .and_then(|id| resource_type(template, id))?;
    is_create_only_at(kind, &r.pointer).then(|| {
        format!(
            "{} is in a create-only property of {kind}: pinning it would replace the resource",
            r.path
        )
    })
}

/// What `auto` does: pin what can be pinned, restart ECS consumers, recreate the rest
/// (the caller checks the closure is safe).
pub(super) fn auto(
    template: &Value,
    references: &[Reference],
    policy: Option<&StackPolicy>,
) -> Actions {
    let mut why_recreate: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pins = BTreeSet::new();
    for (id, refs) in refreshed_by_target(references) {
        let mut why: Vec<String> = refs
            .iter()
            .filter_map(|r| unpinnable(template, r))
            .collect();
        let kind = resource_type(template, &id).unwrap_or("");
        if policy.is_some_and(|p| !p.allows(UpdateAction::Modify, &id, kind)) {
            why.push(format!("the stack policy denies Update:Modify on {id}"));
        }
        if why.is_empty() {
            pins.insert(id);
        } else {
            why_recreate.insert(id, dedup(why));
        }
    }
    let restarts: BTreeSet<String> = references
        .iter()
        .filter(|r| r.disposition == Disposition::Restart)
        .flat_map(|r| r.targets.iter().cloned())
        .collect();
    build(template, references, pins, why_recreate, restarts)
}

/// What `recreate` does: every resource to refresh (and every task definition an ECS
/// service reads the secret through) is removed and added back.
pub(super) fn recreate_all(template: &Value, references: &[Reference]) -> Actions {
    let mut roots: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, refs) in refreshed_by_target(references) {
        let why = refs
            .iter()
            .map(|r| format!("{} ({} reference)", r.path, r.form))
            .collect();
        roots.insert(id, dedup(why));
    }
    for r in references
        .iter()
        .filter(|r| r.disposition == Disposition::Restart)
    {
        if let Some(task) = &r.resource {
            roots
                .entry(task.clone())
                .or_default()
                .push(format!("{} (read by ECS when a task starts)", r.path));
        }
    }
    build(
        template,
        references,
        BTreeSet::new(),
        roots,
        BTreeSet::new(),
    )
}

/// What `pin` does: every resource to refresh is pinned (the caller checks they can be).
pub(super) fn pin_all(template: &Value, references: &[Reference]) -> Actions {
    let pins = refreshed_by_target(references).into_keys().collect();
    build(template, references, pins, BTreeMap::new(), BTreeSet::new())
}

/// Why `pin` cannot refresh the stack: references it cannot rewrite, resources the stack
/// policy does not let it modify.
pub(super) fn pin_blockers(
    template: &Value,
    references: &[Reference],
    policy: Option<&StackPolicy>,
) -> Vec<String> {
    let mut blockers: Vec<String> = references
        .iter()
        .filter(|r| matches!(r.disposition, Disposition::Refresh | Disposition::Restart))
        .filter_map(|r| unpinnable(template, r))
        .collect();
    if let Some(policy) = policy {
        for id in refreshed_by_target(references).into_keys() {
            let kind = resource_type(template, &id).unwrap_or("");
            if !policy.allows(UpdateAction::Modify, &id, kind) {
                blockers.push(format!("the stack policy denies Update:Modify on {id}"));
            }
        }
    }
    blockers
}

/// The refreshed references of each resource they make the planner refresh.
fn refreshed_by_target(references: &[Reference]) -> BTreeMap<String, Vec<&Reference>> {
    let mut by_target: BTreeMap<String, Vec<&Reference>> = BTreeMap::new();
    for r in references
        .iter()
        .filter(|r| r.disposition == Disposition::Refresh)
    {
        for target in &r.targets {
            by_target.entry(target.clone()).or_default().push(r);
        }
    }
    by_target
}

fn build(
    template: &Value,
    references: &[Reference],
    mut pins: BTreeSet<String>,
    roots: BTreeMap<String, Vec<String>>,
    mut restarts: BTreeSet<String>,
) -> Actions {
    let graph = DependencyGraph::of(template);
    let root_ids: BTreeSet<String> = roots.keys().cloned().collect();
    let closure = graph.dependants_closure(&root_ids);
    let mut resources: BTreeSet<String> = pins.iter().chain(&root_ids).cloned().collect();
    // What the closure removes and adds back needs no pin or restart of its own.
    pins.retain(|id| !closure.contains(id));
    restarts.retain(|id| !closure.contains(id));
    resources.extend(restarts.iter().cloned());

    let kind_of = |id: &str| resource_type(template, id).unwrap_or("").to_string();
    let mut list = Vec::new();
    for id in &pins {
        list.push(ResourceAction {
            logical_id: id.clone(),
            resource_type: kind_of(id),
            action: Action::Pin,
            reason: pin_reason(references, id),
        });
    }
    for id in &closure {
        let reason = match roots.get(id) {
            Some(why) => format!(
                "only removing and adding it back refreshes it: {}",
                why.join("; ")
            ),
            None => format!(
                "depends on {}: removed and added back with it",
                dependency_path(&graph, id, &closure)
            ),
        };
        list.push(ResourceAction {
            logical_id: id.clone(),
            resource_type: kind_of(id),
            action: Action::Recreate,
            reason,
        });
    }
    for id in &restarts {
        list.push(ResourceAction {
            logical_id: id.clone(),
            resource_type: kind_of(id),
            action: Action::Restart,
            reason: restart_reason(references, id),
        });
    }
    let acted: BTreeSet<&String> = pins.iter().chain(&closure).chain(&restarts).collect();
    let mut reported: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in references {
        if let Some(id) = r
            .resource
            .as_deref()
            .filter(|id| !acted.contains(&id.to_string()))
        {
            // A reference refreshed with its resource, or read by the services restarted,
            // is accounted for by their actions.
            let handled = match r.disposition {
                Disposition::Refresh => r.targets.iter().any(|t| t == id),
                Disposition::Restart => !r.targets.is_empty(),
                _ => false,
            };
            if !handled {
                reported.entry(id).or_default().push(report_line(r));
            }
        }
    }
    for (id, lines) in reported {
        list.push(ResourceAction {
            logical_id: id.to_string(),
            resource_type: kind_of(id),
            action: Action::Report,
            reason: dedup(lines).join("; "),
        });
    }
    list.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
    Actions {
        root_reasons: roots.into_values().flatten().collect(),
        closure,
        resources,
        list,
    }
}

fn pin_reason(references: &[Reference], id: &str) -> String {
    let mut pinned = Vec::new();
    let mut kept = Vec::new();
    for r in references
        .iter()
        .filter(|r| r.resource.as_deref() == Some(id))
    {
        match r.disposition {
            Disposition::Refresh => pinned.push(property_of(r)),
            _ => kept.push(report_line(r)),
        }
    }
    if pinned.is_empty() {
        // Refreshed through SAM Globals: the references are not inside the resource.
        pinned.extend(
            references
                .iter()
                .filter(|r| {
                    r.disposition == Disposition::Refresh && r.targets.iter().any(|t| t == id)
                })
                .map(|r| r.path.clone()),
        );
    }
    let mut reason = format!(
        "{} rewritten to name the new version, updated in place",
        dedup(pinned).join(", ")
    );
    if !kept.is_empty() {
        reason.push_str(&format!("; not rewritten: {}", dedup(kept).join("; ")));
    }
    reason
}

fn restart_reason(references: &[Reference], service: &str) -> String {
    let mut by_task: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in references
        .iter()
        .filter(|r| r.disposition == Disposition::Restart && r.targets.iter().any(|t| t == service))
    {
        by_task
            .entry(r.resource.as_deref().unwrap_or("?"))
            .or_default()
            .push(r.secret.clone());
    }
    let tasks: Vec<String> = by_task
        .into_iter()
        .map(|(task, secrets)| format!("{task}, which reads {}", dedup(secrets).join(", ")))
        .collect();
    format!(
        "runs {} when a task starts (ValueFrom): a new deployment starts tasks that read the new value; nothing is removed, the template does not change",
        tasks.join("; ")
    )
}

/// `Resources.Db.Properties.MasterUserPassword` → `MasterUserPassword`.
fn property_of(r: &Reference) -> String {
    match &r.resource {
        Some(id) => r
            .path
            .strip_prefix(&format!("Resources.{id}.Properties."))
            .unwrap_or(&r.path)
            .to_string(),
        None => r.path.clone(),
    }
}

fn report_line(r: &Reference) -> String {
    match &r.detail {
        Some(detail) => format!("{} ({}): {detail}", property_of(r), r.disposition),
        None => format!("{} ({})", property_of(r), r.disposition),
    }
}

/// The resources removed that `id` depends on directly, for people.
fn dependency_path(graph: &DependencyGraph, id: &str, closure: &BTreeSet<String>) -> String {
    let direct: Vec<&str> = graph
        .dependencies_of(id)
        .into_iter()
        .flatten()
        .filter(|d| closure.contains(*d))
        .map(String::as_str)
        .collect();
    if direct.is_empty() {
        "a resource removed".into()
    } else {
        direct.join(", ")
    }
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}
