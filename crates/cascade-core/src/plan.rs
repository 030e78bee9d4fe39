//! Refresh planning: for each stack that depends on a changed secret, what happens to each
//! resource ([`actions`]: pin, restart, recreate or report), the strategy of the template
//! updates, or why the stack is skipped (DESIGN.md §2 and §3).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::eval::{Pseudo, Scope, Trace};
use crate::finder::{Disposition, Form, Reference, find_references};
use crate::graph::{outputs_naming, resource_ids};
use crate::pins::Attention;
use crate::secret::Secret;
use crate::stack::{StackInfo, TAG_STRATEGY};
use crate::stack_policy::{StackPolicy, UpdateAction};
use crate::stateful::removal_hazard;

mod actions;

use actions::Actions;
pub use actions::{Action, ResourceAction};

/// Version of the plan's JSON shape.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// What a stack's template updates do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Remove the affected resources (and their dependants), then add them back; the
    /// resources the plan pins (`pin` actions) are pinned by the removal update and stay
    /// pinned when the others are added back.
    Recreate,
    /// Rewrite each dynamic reference to name the new version id, in place.
    Pin,
    /// No template update: restart the ECS services that read the secret when their tasks
    /// start (a new deployment each).
    Restart,
}

/// The strategy asked for: one of the two for every stack, or `auto` to choose per resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyChoice {
    /// Per resource, the least disruptive safe action ([`Action`]): pin dynamic references
    /// in updatable properties, restart ECS consumers, recreate only what nothing else
    /// refreshes and only where that is safe; otherwise skip.
    #[default]
    Auto,
    /// Always recreate every resource to refresh (skip where unsafe).
    Recreate,
    /// Always pin (skip where any reference to refresh is not a pinnable dynamic reference).
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

impl fmt::Display for StrategyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StrategyChoice::Auto => "auto",
            StrategyChoice::Recreate => "recreate",
            StrategyChoice::Pin => "pin",
        })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Recreate => "recreate",
            Strategy::Pin => "pin",
            Strategy::Restart => "restart",
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
    /// Written by earlier versions, which could not pin and recreate in one stack (or
    /// recreate and restart); no longer produced, still read from old batches.
    ActionNotYetSupported,
}

impl fmt::Display for SkipCode {
    /// The code as the plan's JSON writes it, e.g. `opted-out`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_value(self) {
            Ok(Value::String(code)) => f.write_str(&code),
            _ => Err(fmt::Error),
        }
    }
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
    /// What happens to each resource with a reference or in the closure: `pin`,
    /// `restart`, `recreate` or `report`, with the reason. `strategy` says what the
    /// template updates do.
    #[serde(default)]
    pub actions: Vec<ResourceAction>,
    /// Every reference found, refreshed or only reported.
    pub references: Vec<Reference>,
    /// Digest of the template the plan was made from: a stack changed since is skipped.
    pub template_digest: String,
    /// Why this strategy, and anything else worth knowing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl StackPlan {
    /// The resources whose dynamic references the plan pins (`pin` actions): the whole
    /// update of a `pin` stack, and part of the removal update of a `recreate` one.
    pub fn pinned_resources(&self) -> BTreeSet<String> {
        self.actions
            .iter()
            .filter(|a| a.action == Action::Pin)
            .map(|a| a.logical_id.clone())
            .collect()
    }
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
    /// References pinned to a version of a changed secret that Secrets Manager deprecated
    /// (it will delete it) or deleted, which this batch leaves as they are: a person has to
    /// change them ([`crate::pins`]). Filled in against the account; empty offline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attention: Vec<Attention>,
    /// What concerns the plan as a whole, e.g. the versions of a secret that could not be
    /// listed (its pins were not checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Plan {
    /// A plan with nothing in it (no secret resolved, nothing to refresh).
    pub fn empty(secrets: Vec<Secret>) -> Self {
        Plan {
            schema_version: PLAN_SCHEMA_VERSION,
            secrets,
            stacks: Vec::new(),
            skipped: Vec::new(),
            attention: Vec::new(),
            notes: Vec::new(),
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
        self.attention.retain(|a| names.contains(&a.stack_name));
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

    let mut plan = Plan::empty(secrets.to_vec());
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
    for (logical_id, physical_id) in &stack.physical_ids {
        scope = scope.with_resource_ref(logical_id, physical_id);
    }
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
    StackOutcome::Skip(skipped_stack(stack, code, reason, references))
}

fn skipped_stack(
    stack: &StackInfo,
    code: SkipCode,
    reason: String,
    references: Vec<Reference>,
) -> SkippedStack {
    SkippedStack {
        stack_name: stack.name.clone(),
        stack_id: stack.id.clone(),
        code,
        reason,
        references,
    }
}

/// Why a stack is skipped: the code and the reason.
type Skip = (SkipCode, String);

/// The plan of one stack with references to the changed secrets (`None` without any): its
/// refresh, or why it is skipped.
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
    let decided =
        refreshable(stack, &references, options, names_by_id).and_then(|(choice, policy)| {
            let template = stack
                .template
                .as_ref()
                .expect("analysed stacks have a template");
            let checks = Checks {
                stack,
                template,
                export_names: &export_names,
                importers,
                policy: policy.as_ref(),
            };
            let acted = safe_actions(&checks, &references, choice)?;
            Ok((template, acted))
        });
    Some(match decided {
        Ok((template, acted)) => refresh_or_skip(stack, template, references, acted),
        Err((code, reason)) => skip(stack, code, reason, references),
    })
}

/// Whether the stack may be refreshed at all (it acts on a reference, does not opt out,
/// is a root stack in an updatable status, with a readable strategy tag and stack
/// policy); if so, the strategy asked for and the policy.
fn refreshable(
    stack: &StackInfo,
    references: &[Reference],
    options: &PlanOptions,
    names_by_id: &HashMap<&str, &str>,
) -> Result<(StrategyChoice, Option<StackPolicy>), Skip> {
    let acts = references
        .iter()
        .any(|r| matches!(r.disposition, Disposition::Refresh | Disposition::Restart));
    if !acts {
        return Err(only_reported(references));
    }
    if stack.opts_out() {
        return Err((
            SkipCode::OptedOut,
            "opted out with tag cascade:ignore=true".into(),
        ));
    }
    if let Some(parent) = &stack.parent_id {
        let root = stack.root_id.as_deref().unwrap_or(parent);
        let root_name = names_by_id.get(root).copied().unwrap_or(root);
        return Err((
            SkipCode::NestedStack,
            format!(
                "nested stack of root stack {root_name}: nested stacks are refreshed through their root, which is not supported yet"
            ),
        ));
    }
    if !stack.is_updatable() {
        return Err((
            SkipCode::NotUpdatable,
            format!("stack status {} does not allow an update", stack.status),
        ));
    }
    let choice = match stack.tag(TAG_STRATEGY) {
        Some(tag) => tag.parse::<StrategyChoice>().map_err(|e| {
            (
                SkipCode::InvalidStrategyTag,
                format!("tag {TAG_STRATEGY}: {e}"),
            )
        })?,
        None => options.strategy,
    };
    let policy = stack
        .stack_policy
        .as_deref()
        .map(StackPolicy::parse)
        .transpose()
        .map_err(|e| (SkipCode::StackPolicyUnreadable, e.to_string()))?;
    Ok((choice, policy))
}

/// Each resource's action under `choice`, when carrying them out is safe.
fn safe_actions(
    checks: &Checks<'_>,
    references: &[Reference],
    choice: StrategyChoice,
) -> Result<Actions, Skip> {
    let unsafe_because = |why: String| (SkipCode::Unsafe, why);
    match choice {
        StrategyChoice::Auto => {
            let acted = actions::auto(checks.template, references, checks.policy);
            let blockers = checks.recreate_blockers(&acted.closure);
            if !blockers.is_empty() {
                return Err(unsafe_because(format!(
                    "recreate is not safe: {}; pin is not possible: {}",
                    blockers.join("; "),
                    acted.root_reasons.join("; ")
                )));
            }
            Ok(acted)
        }
        StrategyChoice::Recreate => {
            let acted = actions::recreate_all(checks.template, references);
            let blockers = checks.recreate_blockers(&acted.closure);
            if !blockers.is_empty() {
                return Err(unsafe_because(format!(
                    "recreate is not safe: {}",
                    blockers.join("; ")
                )));
            }
            Ok(acted)
        }
        StrategyChoice::Pin => {
            let blockers = actions::pin_blockers(checks.template, references, checks.policy);
            if !blockers.is_empty() {
                return Err(unsafe_because(format!(
                    "pin is not possible: {}",
                    blockers.join("; ")
                )));
            }
            Ok(actions::pin_all(checks.template, references))
        }
    }
}

/// The stack's plan from its actions; skipped when they name no resource, or when the
/// refresh cannot carry them out yet.
fn refresh_or_skip(
    stack: &StackInfo,
    template: &Value,
    references: Vec<Reference>,
    acted: Actions,
) -> StackOutcome {
    let kinds = acted.kinds();
    if kinds.is_empty() {
        // Refreshed references that name no resource of the template (SAM Globals of a
        // kind the stack has none of).
        let (_, reason) = only_reported(&references);
        return skip(
            stack,
            SkipCode::ReportedOnly,
            format!("no resource to refresh: {reason}"),
            references,
        );
    }
    let strategy = carried_out_by(&kinds);
    let secrets: BTreeSet<String> = references
        .iter()
        .filter(|r| matches!(r.disposition, Disposition::Refresh | Disposition::Restart))
        .map(|r| r.secret.clone())
        .collect();
    let recreate = strategy == Strategy::Recreate;
    StackOutcome::Refresh(StackPlan {
        stack_name: stack.name.clone(),
        stack_id: stack.id.clone(),
        strategy,
        secrets: secrets.into_iter().collect(),
        resources: acted.resources.iter().cloned().collect(),
        needs_placeholder: recreate && acted.closure.len() == resource_ids(template).len(),
        outputs: if recreate {
            outputs_naming(template, &acted.closure)
        } else {
            Vec::new()
        },
        closure: if recreate {
            acted.closure.into_iter().collect()
        } else {
            Vec::new()
        },
        actions: acted.list,
        references,
        template_digest: template_digest(template),
        notes: Vec::new(),
    })
}

/// The strategy that carries out these actions: pins alone (one update), pins then
/// restarts (the services restarted once the pins are in), restarts alone (no update), or
/// any recreate (one update removing the closure and pinning the rest, then the restore,
/// which keeps the pins, then the restarts).
fn carried_out_by(kinds: &BTreeSet<Action>) -> Strategy {
    if kinds.contains(&Action::Recreate) {
        Strategy::Recreate
    } else if kinds.contains(&Action::Pin) {
        Strategy::Pin
    } else {
        Strategy::Restart
    }
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
        _ if has(Disposition::CreateOnly)
            || references.iter().any(|r| r.form == Form::EcsValueFrom) =>
        {
            "no reference can be refreshed"
        }
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

/// What recreate's safety depends on.
struct Checks<'a> {
    stack: &'a StackInfo,
    template: &'a Value,
    export_names: &'a HashMap<String, Option<String>>,
    importers: &'a BTreeMap<String, BTreeSet<String>>,
    policy: Option<&'a StackPolicy>,
}

impl Checks<'_> {
    /// Why removing `closure` (and the outputs naming it) would not be safe.
    fn recreate_blockers(&self, closure: &BTreeSet<String>) -> Vec<String> {
        let resources = self.template.get("Resources");
        let mut blockers = Vec::new();
        for id in closure {
            let body = resources.and_then(|r| r.get(id)).unwrap_or(&Value::Null);
            if let Some(hazard) = removal_hazard(id, body) {
                blockers.push(hazard);
            }
            let kind = body.get("Type").and_then(Value::as_str).unwrap_or("");
            if self
                .policy
                .is_some_and(|p| !p.allows(UpdateAction::Delete, id, kind))
            {
                blockers.push(format!("the stack policy denies Update:Delete on {id}"));
            }
        }
        for output in outputs_naming(self.template, closure) {
            match self.export_names.get(&output) {
                Some(Some(export)) => {
                    let others: Vec<&str> = self
                        .importers
                        .get(export)
                        .into_iter()
                        .flatten()
                        .filter(|s| **s != self.stack.name)
                        .map(String::as_str)
                        .collect();
                    if !others.is_empty() {
                        blockers.push(format!(
                            "output {output} exports {export}, imported by {}",
                            others.join(", ")
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
}

#[cfg(test)]
mod tests;
