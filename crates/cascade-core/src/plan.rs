//! Refresh planning: for each stack that depends on a changed secret, which resources to
//! refresh and with which strategy, or why the stack is skipped (DESIGN.md §2 and §3).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::eval::{Pseudo, Scope, Trace};
use crate::finder::{Disposition, Reference, find_references};
use crate::graph::{DependencyGraph, outputs_naming, resource_ids};
use crate::secret::Secret;
use crate::stack::{StackInfo, TAG_STRATEGY};
use crate::stack_policy::{StackPolicy, UpdateAction};
use crate::stateful::removal_hazard;

/// Version of the plan's JSON shape.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// How a stack is refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Remove the affected resources (and their dependants), then add them back.
    Recreate,
    /// Rewrite each dynamic reference to name the new version id, in place.
    Pin,
}

/// The strategy asked for: one of the two, or `auto` to choose per stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyChoice {
    /// `recreate` where it is safe, `pin` where only pin is, otherwise skip.
    #[default]
    Auto,
    /// Always recreate (skip where unsafe).
    Recreate,
    /// Always pin (skip where impossible).
    Pin,
}

impl FromStr for StrategyChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "recreate" => Ok(Self::Recreate),
            "pin" => Ok(Self::Pin),
            other => Err(format!(
                "unknown strategy `{other}`: expected auto, recreate or pin"
            )),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Recreate => "recreate",
            Strategy::Pin => "pin",
        })
    }
}

/// Why a stack is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipCode {
    /// Tagged `cascade:ignore=true`.
    OptedOut,
    /// A nested stack: refreshed through its root (not yet supported).
    NestedStack,
    /// Its status does not allow an update.
    NotUpdatable,
    /// Its template could not be read.
    TemplateUnreadable,
    /// Its only references are pinned by the user.
    PinnedOnly,
    /// Already pinned by Secret Cascade to the current version.
    UpToDate,
    /// Its only references could not be evaluated.
    PossibleReference,
    /// Its only references are outside resource properties.
    ReportedOnly,
    /// The `cascade:strategy` tag has a value that is not a strategy.
    InvalidStrategyTag,
    /// Its stack policy cannot be read.
    StackPolicyUnreadable,
    /// No strategy can refresh it safely (the reason says why).
    Unsafe,
}

/// A stack to refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackPlan {
    /// The stack's name.
    pub stack_name: String,
    /// The stack's id.
    pub stack_id: String,
    /// How it is refreshed.
    pub strategy: Strategy,
    /// The names of the changed secrets it uses.
    pub secrets: Vec<String>,
    /// The resources whose properties reference a changed secret.
    pub resources: Vec<String>,
    /// For `recreate`: every resource removed and added back (`resources` plus their
    /// dependants). Empty for `pin`.
    pub closure: Vec<String>,
    /// For `recreate`: the outputs removed with the closure.
    pub outputs: Vec<String>,
    /// For `recreate`: whether no resource would be left, so a placeholder is added.
    pub needs_placeholder: bool,
    /// Every reference found, refreshed or only reported.
    pub references: Vec<Reference>,
    /// Digest of the template the plan was made from: a stack changed since is skipped.
    pub template_digest: String,
    /// Why this strategy, and anything else worth knowing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A stack that depends (or may depend) on a changed secret but is not refreshed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedStack {
    /// The stack's name.
    pub stack_name: String,
    /// The stack's id.
    pub stack_id: String,
    /// Why, as a stable code.
    pub code: SkipCode,
    /// Why, for people.
    pub reason: String,
    /// The references found.
    pub references: Vec<Reference>,
}

/// The plan for a batch of changed secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Version of this JSON shape.
    pub schema_version: u32,
    /// The changed secrets.
    pub secrets: Vec<Secret>,
    /// The stacks to refresh, by name.
    pub stacks: Vec<StackPlan>,
    /// The stacks not refreshed, by name, with the reason.
    pub skipped: Vec<SkippedStack>,
}

impl Plan {
    /// A plan with nothing in it (no secret resolved, nothing to refresh).
    pub fn empty(secrets: Vec<Secret>) -> Self {
        Plan {
            schema_version: PLAN_SCHEMA_VERSION,
            secrets,
            stacks: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Keeps only the named stacks, to refresh or skipped (no names keeps every stack),
    /// and returns the names that are in neither list, in the order given: a stack that
    /// does not depend on the secrets, or does not exist.
    pub fn keep_stacks(&mut self, names: &[String]) -> Vec<String> {
        if names.is_empty() {
            return Vec::new();
        }
        let unknown = names
            .iter()
            .filter(|name| {
                !self.stacks.iter().any(|s| &s.stack_name == *name)
                    && !self.skipped.iter().any(|s| &s.stack_name == *name)
            })
            .cloned()
            .collect();
        self.stacks.retain(|s| names.contains(&s.stack_name));
        self.skipped.retain(|s| names.contains(&s.stack_name));
        unknown
    }
}

/// What planning needs to know beyond the stacks themselves.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// The strategy asked for (the `cascade:strategy` tag of a stack overrides it).
    pub strategy: StrategyChoice,
    /// The account's exports: name → value.
    pub exports: HashMap<String, String>,
    /// Importers known from elsewhere (ListImports): export name → stack names. Imports
    /// found in the planned stacks' own templates are added to these.
    pub importers: BTreeMap<String, BTreeSet<String>>,
}

/// The outcome of planning one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackOutcome {
    /// Refresh it.
    Refresh(StackPlan),
    /// Skip it.
    Skip(SkippedStack),
}

/// Plans every stack of an account for a batch of secrets. Stacks with no reference to
/// any of them are left out.
pub fn plan_account(stacks: &[StackInfo], secrets: &[Secret], options: &PlanOptions) -> Plan {
    // First pass: references and imports of every stack (imports decide whether an
    // export may be removed, whichever stack imports it).
    let analysed: Vec<(&StackInfo, Option<Analysis>)> = stacks
        .iter()
        .map(|s| (s, analyse(s, secrets, &options.exports)))
        .collect();
    let mut importers = options.importers.clone();
    for (stack, analysis) in &analysed {
        for name in analysis.iter().flat_map(|a| &a.imports) {
            importers
                .entry(name.clone())
                .or_default()
                .insert(stack.name.clone());
        }
    }
    let names_by_id: HashMap<&str, &str> = stacks
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();

    let mut plan = Plan {
        schema_version: PLAN_SCHEMA_VERSION,
        secrets: secrets.to_vec(),
        stacks: Vec::new(),
        skipped: Vec::new(),
    };
    for (stack, analysis) in analysed {
        let outcome = match analysis {
            None => Some(skip(
                stack,
                SkipCode::TemplateUnreadable,
                format!(
                    "its template could not be read: {}",
                    stack.template.as_ref().err().map_or("", String::as_str)
                ),
                Vec::new(),
            )),
            Some(a) => decide(stack, a, options, &importers, &names_by_id),
        };
        match outcome {
            Some(StackOutcome::Refresh(p)) => plan.stacks.push(p),
            Some(StackOutcome::Skip(s)) => plan.skipped.push(s),
            None => {}
        }
    }
    plan.stacks.sort_by(|a, b| a.stack_name.cmp(&b.stack_name));
    plan.skipped.sort_by(|a, b| a.stack_name.cmp(&b.stack_name));
    plan
}

/// What the first pass learns about a stack.
struct Analysis {
    references: Vec<Reference>,
    imports: BTreeSet<String>,
    export_names: HashMap<String, Option<String>>,
}

/// The scope a stack's expressions are evaluated in: its parameters, its pseudo
/// parameters, the account's exports, and the secrets it created itself.
pub fn scope_for<'a>(
    stack: &'a StackInfo,
    template: &'a Value,
    secrets: &[Secret],
    exports: &'a HashMap<String, String>,
) -> Scope<'a> {
    let mut scope = Scope::new(
        template,
        &stack.parameters,
        pseudo_of(stack, secrets),
        exports,
    );
    for secret in secrets {
        if let Some(owner) = secret.owner.as_ref().filter(|o| o.stack_id == stack.id) {
            scope = scope.with_resource_ref(&owner.logical_id, &secret.arn);
        }
    }
    scope
}

/// A digest of a template's content (SHA-256 of its long-form JSON), to tell whether a
/// stack changed since it was planned.
pub fn template_digest(template: &Value) -> String {
    crate::digest::sha256_hex(template.to_string())
}

fn analyse(
    stack: &StackInfo,
    secrets: &[Secret],
    exports: &HashMap<String, String>,
) -> Option<Analysis> {
    let template = stack.template.as_ref().ok()?;
    let scope = scope_for(stack, template, secrets, exports);
    let references = find_references(&scope, stack, secrets);
    let mut trace = Trace::default();
    let mut export_names = HashMap::new();
    if let Some(outputs) = template.get("Outputs").and_then(Value::as_object) {
        for (name, output) in outputs {
            if let Some(export) = output.pointer("/Export/Name") {
                let text = scope.eval(export, &mut trace).into_text();
                export_names.insert(name.clone(), text.is_known().then_some(text.text));
            }
        }
    }
    let mut imports = BTreeSet::new();
    collect_imports(template, &scope, &mut imports);
    Some(Analysis {
        references,
        imports,
        export_names,
    })
}

/// Pseudo parameters of a stack: from its id, or (offline) from the secrets' ARNs.
fn pseudo_of(stack: &StackInfo, secrets: &[Secret]) -> Pseudo {
    let (region, account, partition) = match stack.region_account_partition() {
        Some((r, a, p)) => (Some(r), Some(a), Some(p)),
        None => match secrets
            .first()
            .and_then(|s| s.region_and_account().map(|ra| (ra, s.partition())))
        {
            Some(((r, a), p)) => (Some(r), Some(a), Some(p)),
            None => (None, None, None),
        },
    };
    Pseudo {
        region: region.map(str::to_string),
        account_id: account.map(str::to_string),
        partition: partition.map(str::to_string),
        stack_name: Some(stack.name.clone()),
        stack_id: Some(stack.id.clone()),
    }
}

fn collect_imports(node: &Value, scope: &Scope, out: &mut BTreeSet<String>) {
    match node {
        Value::Object(map) => {
            if let Some(arg) = map.get("Fn::ImportValue").filter(|_| map.len() == 1) {
                let name = scope.eval(arg, &mut Trace::default()).into_text();
                if name.is_known() {
                    out.insert(name.text);
                }
            }
            map.values().for_each(|v| collect_imports(v, scope, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_imports(v, scope, out)),
        _ => {}
    }
}

fn skip(
    stack: &StackInfo,
    code: SkipCode,
    reason: String,
    references: Vec<Reference>,
) -> StackOutcome {
    StackOutcome::Skip(SkippedStack {
        stack_name: stack.name.clone(),
        stack_id: stack.id.clone(),
        code,
        reason,
        references,
    })
}

fn decide(
    stack: &StackInfo,
    analysis: Analysis,
    options: &PlanOptions,
    importers: &BTreeMap<String, BTreeSet<String>>,
    names_by_id: &HashMap<&str, &str>,
) -> Option<StackOutcome> {
    let Analysis {
        references,
        export_names,
        ..
    } = analysis;
    if references.is_empty() {
        return None;
    }
    let refresh: Vec<&Reference> = references
        .iter()
        .filter(|r| r.disposition == Disposition::Refresh)
        .collect();
    if refresh.is_empty() {
        let (code, reason) = only_reported(&references);
        return Some(skip(stack, code, reason, references));
    }
    if stack.opts_out() {
        return Some(skip(
            stack,
            SkipCode::OptedOut,
            "opted out with tag cascade:ignore=true".into(),
            references,
        ));
    }
    if let Some(parent) = &stack.parent_id {
        let root = stack.root_id.as_deref().unwrap_or(parent);
        let root_name = names_by_id.get(root).copied().unwrap_or(root);
        return Some(skip(
            stack,
            SkipCode::NestedStack,
            format!(
                "nested stack of root stack {root_name}: nested stacks are refreshed through their root, which is not supported yet"
            ),
            references,
        ));
    }
    if !stack.is_updatable() {
        return Some(skip(
            stack,
            SkipCode::NotUpdatable,
            format!("stack status {} does not allow an update", stack.status),
            references,
        ));
    }
    let choice = match stack.tag(TAG_STRATEGY) {
        Some(tag) => match tag.parse::<StrategyChoice>() {
            Ok(c) => c,
            Err(e) => {
                return Some(skip(
                    stack,
                    SkipCode::InvalidStrategyTag,
                    format!("tag {TAG_STRATEGY}: {e}"),
                    references,
                ));
            }
        },
        None => options.strategy,
    };
    let policy = match stack
        .stack_policy
        .as_deref()
        .map(StackPolicy::parse)
        .transpose()
    {
        Ok(p) => p,
        Err(e) => {
            return Some(skip(
                stack,
                SkipCode::StackPolicyUnreadable,
                e.to_string(),
                references,
            ));
        }
    };

    let template = stack
        .template
        .as_ref()
        .expect("analysed stacks have a template");
    let targets: BTreeSet<String> = refresh
        .iter()
        .flat_map(|r| r.targets.iter().cloned())
        .collect();
    let secrets: BTreeSet<String> = refresh.iter().map(|r| r.secret.clone()).collect();
    let graph = DependencyGraph::of(template);
    let closure = graph.dependants_closure(&targets);
    let outputs = outputs_naming(template, &closure);

    let recreate_blockers = recreate_blockers(
        stack,
        template,
        &closure,
        &outputs,
        &export_names,
        importers,
        policy.as_ref(),
    );
    let pin_blockers = pin_blockers(template, &refresh, &targets, policy.as_ref());

    let (strategy, notes) = match choice {
        StrategyChoice::Recreate if recreate_blockers.is_empty() => (Strategy::Recreate, vec![]),
        StrategyChoice::Pin if pin_blockers.is_empty() => (Strategy::Pin, vec![]),
        StrategyChoice::Auto if recreate_blockers.is_empty() => (Strategy::Recreate, vec![]),
        StrategyChoice::Auto if pin_blockers.is_empty() => (
            Strategy::Pin,
            vec![format!(
                "auto chose pin: recreate would not be safe ({})",
                recreate_blockers.join("; ")
            )],
        ),
        StrategyChoice::Recreate => {
            return Some(skip(
                stack,
                SkipCode::Unsafe,
                format!("recreate is not safe: {}", recreate_blockers.join("; ")),
                references,
            ));
        }
        StrategyChoice::Pin => {
            return Some(skip(
                stack,
                SkipCode::Unsafe,
                format!("pin is not possible: {}", pin_blockers.join("; ")),
                references,
            ));
        }
        StrategyChoice::Auto => {
            return Some(skip(
                stack,
                SkipCode::Unsafe,
                format!(
                    "recreate is not safe: {}; pin is not possible: {}",
                    recreate_blockers.join("; "),
                    pin_blockers.join("; ")
                ),
                references,
            ));
        }
    };
    let recreate = strategy == Strategy::Recreate;
    Some(StackOutcome::Refresh(StackPlan {
        stack_name: stack.name.clone(),
        stack_id: stack.id.clone(),
        strategy,
        secrets: secrets.into_iter().collect(),
        resources: targets.into_iter().collect(),
        needs_placeholder: recreate && closure.len() == resource_ids(template).len(),
        closure: if recreate {
            closure.into_iter().collect()
        } else {
            Vec::new()
        },
        outputs: if recreate { outputs } else { Vec::new() },
        references,
        template_digest: template_digest(template),
        notes,
    }))
}

/// The skip code and reason for a stack whose references are all only reported.
fn only_reported(references: &[Reference]) -> (SkipCode, String) {
    let has = |d: Disposition| references.iter().any(|r| r.disposition == d);
    let code = if has(Disposition::Possible) {
        SkipCode::PossibleReference
    } else if has(Disposition::Pinned) {
        SkipCode::PinnedOnly
    } else if has(Disposition::Current) {
        SkipCode::UpToDate
    } else {
        SkipCode::ReportedOnly
    };
    let details: BTreeSet<String> = references
        .iter()
        .map(|r| format!("{}: {}", r.path, r.detail.as_deref().unwrap_or("reported")))
        .collect();
    let lead = match code {
        SkipCode::PossibleReference => {
            "only possible references, check them by hand or tag the stack"
        }
        SkipCode::PinnedOnly => "every reference is pinned by the stack's author",
        SkipCode::UpToDate => "already pinned to the current version",
        _ => "no reference is in resource properties",
    };
    (
        code,
        format!(
            "{lead} ({})",
            details.into_iter().collect::<Vec<_>>().join("; ")
        ),
    )
}

fn recreate_blockers(
    stack: &StackInfo,
    template: &Value,
    closure: &BTreeSet<String>,
    outputs: &[String],
    export_names: &HashMap<String, Option<String>>,
    importers: &BTreeMap<String, BTreeSet<String>>,
    policy: Option<&StackPolicy>,
) -> Vec<String> {
    let resources = template.get("Resources");
    let mut blockers = Vec::new();
    for id in closure {
        let body = resources.and_then(|r| r.get(id)).unwrap_or(&Value::Null);
        if let Some(hazard) = removal_hazard(id, body) {
            blockers.push(hazard);
        }
        let kind = body.get("Type").and_then(Value::as_str).unwrap_or("");
        if policy.is_some_and(|p| !p.allows(UpdateAction::Delete, id, kind)) {
            blockers.push(format!("the stack policy denies Update:Delete on {id}"));
        }
    }
    for output in outputs {
        match export_names.get(output) {
            Some(Some(export)) => {
                let others: Vec<&String> = importers
                    .get(export)
                    .into_iter()
                    .flatten()
                    .filter(|s| **s != stack.name)
                    .collect();
                if !others.is_empty() {
                    blockers.push(format!(
                        "output {output} exports {export}, imported by {}",
                        others
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            Some(None) => blockers.push(format!(
                "output {output} has an export whose name could not be evaluated"
            )),
            None => {}
        }
    }
    blockers
}

fn pin_blockers(
    template: &Value,
    refresh: &[&Reference],
    targets: &BTreeSet<String>,
    policy: Option<&StackPolicy>,
) -> Vec<String> {
    let mut blockers: Vec<String> = refresh
        .iter()
        .filter(|r| !r.form.is_dynamic_reference())
        .map(|r| {
            let form = serde_json::to_value(r.form).ok();
            let form = form.as_ref().and_then(Value::as_str).unwrap_or("?");
            format!("{} is a {form} reference, not a dynamic reference", r.path)
        })
        .collect();
    if let Some(policy) = policy {
        for id in targets {
            let kind = crate::eval::resource_type(template, id).unwrap_or("");
            if !policy.allows(UpdateAction::Modify, id, kind) {
                blockers.push(format!("the stack policy denies Update:Modify on {id}"));
            }
        }
    }
    blockers
}

#[cfg(test)]
mod tests;
