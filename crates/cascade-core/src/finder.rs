//! Finds every reference to the changed secrets in one stack (DESIGN.md §3): dynamic
//! references written plainly or built with `Fn::Sub` / `Fn::Join`, parameters and exports
//! holding a secret's name or ARN, and the `cascade:secrets` tag.
//!
//! Each reference says where it is, how it is written and what to do with it: refresh it,
//! restart the ECS services that read it at run time ([`crate::ecs`]), or only report it
//! (pinned by the user, in a create-only property ([`crate::create_only`]), outside
//! resource properties, or a *possible* reference whose secret id could not be evaluated).
//! A reference inside a resource always names that resource, whatever its disposition.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::create_only::{self, Replacement};
use crate::dynref::{self, DynamicReference};
use crate::ecs;
use crate::eval::{HOLE, ParamValue, Scope, Text, Trace, resource_type, single_entry};
use crate::secret::AWSCURRENT;
use crate::secret::Secret;
use crate::stack::{StackInfo, TAG_RESOURCES, TAG_SECRETS, tag_list};

/// Top-level `Metadata` key under which Secret Cascade records the references it pinned.
pub const PIN_METADATA_KEY: &str = "SecretCascade";

/// How a reference is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// `{{resolve:secretsmanager:...}}` in a plain string.
    DynamicReference,
    /// A dynamic reference built by `Fn::Sub`.
    DynamicReferenceSub,
    /// A dynamic reference built by `Fn::Join`.
    DynamicReferenceJoin,
    /// A parameter whose value names the secret, used here.
    Parameter,
    /// `Fn::ImportValue` of an export whose value names the secret.
    ImportValue,
    /// The stack tag `cascade:secrets`.
    Tag,
    /// A macro whose input mentions the secret: what it produces cannot be told.
    Macro,
    /// An ECS task definition's `Secrets[].ValueFrom` or
    /// `LogConfiguration.SecretOptions[].ValueFrom` naming the secret (however the value
    /// is written): ECS reads the secret when a task starts.
    EcsValueFrom,
}

impl Form {
    /// Whether the reference is a dynamic reference that `pin` can rewrite.
    pub fn is_dynamic_reference(self) -> bool {
        matches!(
            self,
            Form::DynamicReference | Form::DynamicReferenceSub | Form::DynamicReferenceJoin
        )
    }
}

impl std::fmt::Display for Form {
    /// The name the plan JSON uses, e.g. `ecs-value-from`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Form::DynamicReference => "dynamic-reference",
            Form::DynamicReferenceSub => "dynamic-reference-sub",
            Form::DynamicReferenceJoin => "dynamic-reference-join",
            Form::Parameter => "parameter",
            Form::ImportValue => "import-value",
            Form::Tag => "tag",
            Form::Macro => "macro",
            Form::EcsValueFrom => "ecs-value-from",
        })
    }
}

/// What to do with a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// The resource holding it must be refreshed.
    Refresh,
    /// The user pinned it to a version or stage: reported, not refreshed.
    Pinned,
    /// Secret Cascade pinned it to the current version already: nothing to do.
    Current,
    /// Outside resource properties (Outputs, Conditions, Metadata, ...): reported only.
    Reported,
    /// The secret id could not be evaluated and could be this secret: reported only.
    Possible,
    /// In a create-only property of its resource (or a conditionally create-only one):
    /// changing it would replace the resource, so it is reported, never rewritten.
    CreateOnly,
    /// Read at run time by ECS tasks: the services running them are restarted (a new
    /// deployment); the template does not change. `targets` are those services.
    Restart,
}

impl std::fmt::Display for Disposition {
    /// The name the plan JSON uses, e.g. `create-only`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Disposition::Refresh => "refresh",
            Disposition::Pinned => "pinned",
            Disposition::Current => "current",
            Disposition::Reported => "reported",
            Disposition::Possible => "possible",
            Disposition::CreateOnly => "create-only",
            Disposition::Restart => "restart",
        })
    }
}

/// One reference to a secret in a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The secret's name.
    pub secret: String,
    /// Where it is, e.g. `Resources.Db.Properties.MasterUserPassword`.
    pub path: String,
    /// The logical id of the resource holding it, or null outside `Resources`.
    pub resource: Option<String>,
    /// How it is written.
    pub form: Form,
    /// What to do with it.
    pub disposition: Disposition,
    /// The reference as evaluated, e.g. `{{resolve:secretsmanager:db:SecretString:password}}`
    /// (`${?}` marks what could not be evaluated). Never a secret value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why it is reported rather than refreshed, or other details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The logical ids this reference makes the planner refresh (for `restart`, the
    /// services to restart).
    #[serde(skip)]
    pub targets: Vec<String>,
    /// JSON pointer (RFC 6901) of the node holding it; empty for tag references.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pointer: String,
}

/// Finds every reference to `secrets` in `stack`, whose template is evaluated in `scope`.
pub fn find_references(scope: &Scope, stack: &StackInfo, secrets: &[Secret]) -> Vec<Reference> {
    let template = scope.template();
    let finder = Finder {
        scope,
        secrets,
        own_pins: own_pins(template),
    };
    let mut found = Vec::new();
    let mut path = Vec::new();
    finder.walk(template, &mut path, &mut found);
    found.extend(tag_references(stack, template, secrets));
    found.extend(finder.macro_references(template));
    found
}

/// The `(secret id, version id)` pairs Secret Cascade recorded as its own pins.
pub fn own_pins(template: &Value) -> Vec<(String, String)> {
    template
        .pointer(&format!("/Metadata/{PIN_METADATA_KEY}/Pins"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|pin| {
            Some((
                pin.get("SecretArn")?.as_str()?.to_string(),
                pin.get("VersionId")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

struct Finder<'s, 'a> {
    scope: &'s Scope<'a>,
    secrets: &'s [Secret],
    own_pins: Vec<(String, String)>,
}

/// A step of a path in the template.
#[derive(Debug, Clone)]
enum Step<'v> {
    Key(&'v str),
    Index(usize),
}

impl Finder<'_, '_> {
    fn walk<'v>(&self, node: &'v Value, path: &mut Vec<Step<'v>>, found: &mut Vec<Reference>) {
        if !is_fn_if(node)
            && let Some(task) = self.value_from_site(path)
            && self.ecs_value_from(node, task, path, found)
        {
            return;
        }
        match node {
            Value::String(s) => {
                let text = Text::literal(s.clone());
                self.dynamic_references(&text, Form::DynamicReference, path, found);
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    self.walk(item, path, found);
                    path.pop();
                }
            }
            Value::Object(map) => {
                if let Some((function, arg)) = single_entry(map) {
                    if function == "Fn::If" {
                        return self.walk_if(arg, path, found);
                    }
                    if self.intrinsic(function, node, path, found) {
                        return;
                    }
                }
                let top_level_entries =
                    matches!(path.as_slice(), [Step::Key("Resources" | "Outputs")]);
                for (key, value) in map {
                    // A resource or output whose condition is false is not deployed.
                    if top_level_entries && self.condition_is_false(value) {
                        continue;
                    }
                    path.push(Step::Key(key));
                    self.walk(value, path, found);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// `Fn::If`: only the branch the stack's condition takes; both when it cannot be told.
    fn walk_if<'v>(&self, arg: &'v Value, path: &mut Vec<Step<'v>>, found: &mut Vec<Reference>) {
        let branches: Vec<usize> = match arg.as_array().filter(|a| a.len() == 3) {
            Some(items) => match items[0].as_str().and_then(|c| self.scope.condition(c)) {
                Some(true) => vec![1],
                Some(false) => vec![2],
                None => vec![1, 2],
            },
            None => Vec::new(),
        };
        path.push(Step::Key("Fn::If"));
        for i in branches {
            path.push(Step::Index(i));
            self.walk(&arg[i], path, found);
            path.pop();
        }
        path.pop();
    }

    /// Whether a resource or output has a `Condition` that is false for this stack.
    fn condition_is_false(&self, entry: &Value) -> bool {
        entry
            .get("Condition")
            .and_then(Value::as_str)
            .is_some_and(|c| self.scope.condition(c) == Some(false))
    }

    /// Handles an intrinsic function; `true` when its arguments need no further walk.
    fn intrinsic(
        &self,
        function: &str,
        node: &Value,
        path: &[Step],
        found: &mut Vec<Reference>,
    ) -> bool {
        let form = match function {
            "Fn::Sub" => Form::DynamicReferenceSub,
            "Fn::Join" => Form::DynamicReferenceJoin,
            "Ref" => {
                let mut trace = Trace::default();
                self.scope.eval(node, &mut trace);
                self.parameter_references(&trace, &BTreeSet::new(), None, path, found);
                return true;
            }
            "Fn::ImportValue" => {
                let mut trace = Trace::default();
                let value = self.scope.eval(node, &mut trace).into_text();
                if value.is_known() {
                    self.import_references(&value.text, &BTreeSet::new(), None, path, found);
                }
                return true;
            }
            _ => return false,
        };
        let mut trace = Trace::default();
        let text = self.scope.eval(node, &mut trace).into_text();
        let first_new = found.len();
        let matched = self.dynamic_references(&text, form, path, found);
        self.parameter_references(&trace, &matched, Some(&text), path, found);
        for name in &trace.imports {
            if let Some(value) = self.scope.export(name) {
                self.import_references(value, &matched, Some(&text), path, found);
            }
        }
        // A NoEcho parameter's value is never shown, even where it could be read.
        let shows_no_echo = trace.parameters.iter().any(|p| {
            self.scope.is_no_echo(p)
                && matches!(self.scope.parameter(p), Some(ParamValue::Known(_)))
        });
        if shows_no_echo {
            for reference in &mut found[first_new..] {
                reference.text = None;
            }
        }
        true
    }

    /// The task definition whose `ValueFrom` `path` points at, if it does.
    fn value_from_site<'p>(&self, path: &'p [Step]) -> Option<&'p str> {
        let Section::ResourceProperties(id) = section(path) else {
            return None;
        };
        if resource_type(self.scope.template(), id) != Some(ecs::TASK_DEFINITION) {
            return None;
        }
        let steps = property_path(path);
        let steps: Vec<&str> = without_conditions(&steps);
        ecs::is_value_from_site(&steps).then_some(id)
    }

    /// Records the secrets an ECS `ValueFrom` names; `false` when the value is no
    /// `ValueFrom` reference (it holds a dynamic reference: the usual rules apply).
    fn ecs_value_from(
        &self,
        node: &Value,
        task: &str,
        path: &[Step],
        found: &mut Vec<Reference>,
    ) -> bool {
        let mut trace = Trace::default();
        let text = self.scope.eval(node, &mut trace).into_text();
        if text.text.contains(dynref::PREFIX) {
            return false;
        }
        let value = ecs::parse_value_from(text.text.trim());
        let template = self.scope.template();
        let consumers =
            ecs::services_running(template, task, |body| !self.condition_is_false(body));
        let shown = (!trace.parameters.iter().any(|p| self.scope.is_no_echo(p)))
            .then(|| text.text.replace(HOLE, "${?}"));
        for secret in self.secrets {
            let (disposition, detail) = if value.secret_id.contains(HOLE) {
                if !secret.could_be_named_by(&value.secret_id) {
                    continue;
                }
                (
                    Disposition::Possible,
                    format!(
                        "possible reference: the secret id could not be evaluated ({})",
                        text.holes.join("; ")
                    ),
                )
            } else if !secret.is_named_by(&value.secret_id) {
                continue;
            } else if let Some(version) = &value.version_id {
                (
                    Disposition::Pinned,
                    format!(
                        "pinned to version id {}: reported, not refreshed",
                        version.replace(HOLE, "${?}")
                    ),
                )
            } else if let Some(stage) = value.version_stage.as_deref().filter(|s| *s != AWSCURRENT)
            {
                (
                    Disposition::Pinned,
                    format!("pinned to version stage {stage}: reported, not refreshed"),
                )
            } else {
                self.restart_disposition(task, &trace, &consumers)
            };
            let mut reference = self.reference(
                secret,
                path,
                Form::EcsValueFrom,
                disposition,
                shown.clone(),
                Some(detail),
            );
            if disposition == Disposition::Restart {
                reference.targets = consumers.restartable.clone();
            }
            found.push(reference);
        }
        true
    }

    /// A `ValueFrom` naming a changed secret: restart the services running the task
    /// definition, or report it when none of them can be restarted.
    fn restart_disposition(
        &self,
        task: &str,
        trace: &Trace,
        consumers: &ecs::Consumers,
    ) -> (Disposition, String) {
        let mut via = String::new();
        if let Some(p) = trace.parameters.iter().next() {
            via = format!(" (through parameter {p})");
        } else if let Some(export) = trace.imports.iter().next() {
            via = format!(" (through export {export})");
        }
        let mut detail = format!("ECS reads the secret when a task of {task} starts{via}");
        let disposition = if consumers.restartable.is_empty() {
            detail.push_str(&format!(
                ": no service of this stack that a new deployment restarts runs {task} (tasks started from now on read the new value); reported"
            ));
            Disposition::Reported
        } else {
            detail.push_str(&format!(
                ": a new deployment of {} refreshes it, the template does not change",
                consumers.restartable.join(", ")
            ));
            Disposition::Restart
        };
        for (service, controller) in &consumers.other_controller {
            detail.push_str(&format!(
                "; {service} deploys through its {controller} controller: start its deployment there"
            ));
        }
        (disposition, detail)
    }

    /// Records the dynamic references in `text`; returns the names of the secrets matched.
    fn dynamic_references(
        &self,
        text: &Text,
        form: Form,
        path: &[Step],
        found: &mut Vec<Reference>,
    ) -> BTreeSet<String> {
        let mut matched = BTreeSet::new();
        if !text.text.contains(dynref::PREFIX) {
            return matched;
        }
        for reference in dynref::find_all(&text.text) {
            let holes = text.holes_in(reference.start..reference.end);
            for secret in self.secrets {
                let (named, possible) = if reference.secret_id.contains(HOLE) {
                    (false, secret.could_be_named_by(&reference.secret_id))
                } else {
                    (secret.is_named_by(&reference.secret_id), false)
                };
                if !named && !possible {
                    continue;
                }
                matched.insert(secret.name.clone());
                let shown = text.text[reference.start..reference.end].replace(HOLE, "${?}");
                let (disposition, detail) = if possible {
                    (
                        Disposition::Possible,
                        Some(format!(
                            "possible reference: the secret id could not be evaluated ({})",
                            holes.join("; ")
                        )),
                    )
                } else {
                    self.dynamic_disposition(secret, &reference)
                };
                found.push(self.reference(secret, path, form, disposition, Some(shown), detail));
            }
        }
        matched
    }

    fn dynamic_disposition(
        &self,
        secret: &Secret,
        reference: &DynamicReference,
    ) -> (Disposition, Option<String>) {
        if let Some(version) = &reference.version_id {
            let ours = self
                .own_pins
                .iter()
                .any(|(id, v)| v == version && secret.is_named_by(id));
            return match (ours, secret.version_id.as_deref() == Some(version)) {
                (true, true) => (
                    Disposition::Current,
                    Some("pinned by Secret Cascade to the current version".into()),
                ),
                (true, false) => (
                    Disposition::Refresh,
                    Some(format!("pinned by Secret Cascade to {version}")),
                ),
                (false, _) => (
                    Disposition::Pinned,
                    Some(format!(
                        "pinned to version id {}: reported, not refreshed",
                        version.replace(HOLE, "${?}")
                    )),
                ),
            };
        }
        match &reference.version_stage {
            Some(stage) if reference.is_pinned() => (
                Disposition::Pinned,
                Some(format!(
                    "pinned to version stage {stage}: reported, not refreshed"
                )),
            ),
            _ => (Disposition::Refresh, None),
        }
    }

    /// Records parameters read by an expression whose value names a secret (unless the
    /// expression already matched that secret as a dynamic reference).
    fn parameter_references(
        &self,
        trace: &Trace,
        already: &BTreeSet<String>,
        text: Option<&Text>,
        path: &[Step],
        found: &mut Vec<Reference>,
    ) {
        for name in &trace.parameters {
            let Some(ParamValue::Known(value)) = self.scope.parameter(name) else {
                continue;
            };
            for secret in self.secrets {
                if already.contains(&secret.name)
                    || !tag_list(value).iter().any(|v| secret.is_named_by(v))
                {
                    continue;
                }
                let shown = text.map(|t| t.text.replace(HOLE, "${?}"));
                let detail = Some(format!("parameter {name} names the secret"));
                let disposition = self.section_disposition(path);
                found.push(self.reference(
                    secret,
                    path,
                    Form::Parameter,
                    disposition,
                    shown,
                    detail,
                ));
            }
        }
    }

    /// Records an imported export whose value names a secret (unless the expression
    /// already matched that secret as a dynamic reference).
    fn import_references(
        &self,
        value: &str,
        already: &BTreeSet<String>,
        text: Option<&Text>,
        path: &[Step],
        found: &mut Vec<Reference>,
    ) {
        for secret in self.secrets {
            if already.contains(&secret.name) || !secret.is_named_by(value.trim()) {
                continue;
            }
            let shown = text.map(|t| t.text.replace(HOLE, "${?}"));
            let detail = Some("an imported export names the secret".to_string());
            let disposition = self.section_disposition(path);
            found.push(self.reference(secret, path, Form::ImportValue, disposition, shown, detail));
        }
    }

    /// Macros (other than AWS's own) whose input mentions a secret: what they produce
    /// cannot be evaluated, so the reference is possible.
    fn macro_references(&self, template: &Value) -> Vec<Reference> {
        let mut found = Vec::new();
        for (path, name, input) in unknown_macros(template) {
            let input = input.to_string();
            for secret in self.secrets {
                if !secret.identifiers().iter().any(|id| mentions(&input, id)) {
                    continue;
                }
                let steps: Vec<Step> = path.iter().map(|k| Step::Key(k)).collect();
                let detail = Some(format!(
                    "possible reference: macro {name} receives the secret's name and its output cannot be evaluated"
                ));
                found.push(self.reference(
                    secret,
                    &steps,
                    Form::Macro,
                    Disposition::Possible,
                    None,
                    detail,
                ));
            }
        }
        found
    }

    /// Refresh inside resource properties (and SAM `Globals`), report elsewhere.
    fn section_disposition(&self, path: &[Step]) -> Disposition {
        match section(path) {
            Section::ResourceProperties(_) | Section::Globals(_) => Disposition::Refresh,
            Section::Other(_) => Disposition::Reported,
        }
    }

    fn reference(
        &self,
        secret: &Secret,
        path: &[Step],
        form: Form,
        mut disposition: Disposition,
        text: Option<String>,
        mut detail: Option<String>,
    ) -> Reference {
        let place = section(path);
        let mut targets = Vec::new();
        match &place {
            Section::ResourceProperties(id) => targets.push(id.to_string()),
            Section::Globals(kind) => {
                targets.extend(resources_of_type(self.scope.template(), kind))
            }
            Section::Other(where_) if disposition == Disposition::Refresh => {
                disposition = Disposition::Reported;
                detail = Some(format!("in {where_}: reported, not refreshed"));
            }
            Section::Other(_) => {}
        }
        if disposition == Disposition::Refresh
            && let Section::ResourceProperties(id) = &place
            && let Some((kind, replacement)) = self.create_only(id, path)
        {
            if kind == ecs::TASK_DEFINITION {
                // A task definition is never updated in place: only a new revision resolves
                // it again, which recreate makes (pin would have CloudFormation replace it).
                if form.is_dynamic_reference() {
                    detail = Some(join_detail(
                        detail,
                        format!(
                            "{} is create-only in {kind}: a new revision is needed, so the task definition is recreated (with the services running it), never pinned",
                            top_property(path)
                        ),
                    ));
                }
            } else {
                disposition = Disposition::CreateOnly;
                detail = Some(join_detail(
                    detail,
                    create_only_detail(path, kind, replacement),
                ));
            }
        }
        if disposition != Disposition::Refresh {
            targets.clear();
        }
        Reference {
            secret: secret.name.clone(),
            path: render_path(path),
            resource: resource_of(path).map(str::to_string),
            form,
            disposition,
            text,
            detail,
            targets,
            pointer: render_pointer(path),
        }
    }
}

impl Finder<'_, '_> {
    /// The resource type and the kind of replacement when `path` (inside resource `id`)
    /// lies in a create-only property of its type.
    fn create_only(&self, id: &str, path: &[Step]) -> Option<(&str, Replacement)> {
        let kind = resource_type(self.scope.template(), id)?;
        let steps = property_path(path);
        let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
        create_only::replacement(kind, &steps).map(|r| (kind, r))
    }
}

/// Why a reference in a create-only property is only reported.
fn create_only_detail(path: &[Step], kind: &str, replacement: Replacement) -> String {
    let steps = property_path(path);
    let property = render_property(&without_conditions(&steps));
    let what = if steps.len() == 1 { "is" } else { "is in" };
    match replacement {
        Replacement::Always => format!(
            "{property} {what} a create-only property of {kind}: changing it would replace the resource; reported, not refreshed"
        ),
        Replacement::Conditional => format!(
            "{property} {what} a conditionally create-only property of {kind}: changing it would replace the resource (Replacement: Conditional); reported, not refreshed"
        ),
    }
}

fn join_detail(detail: Option<String>, more: String) -> String {
    match detail {
        Some(d) => format!("{d}; {more}"),
        None => more,
    }
}

/// The top-level property a path inside `Resources.ID.Properties` is in.
fn top_property(path: &[Step]) -> String {
    property_path(path).into_iter().next().unwrap_or_default()
}

/// The steps below `Resources.ID.Properties`, as strings (indices as digits).
fn property_path(path: &[Step]) -> Vec<String> {
    path.iter()
        .skip(3)
        .map(|step| match step {
            Step::Key(k) => (*k).to_string(),
            Step::Index(i) => i.to_string(),
        })
        .collect()
}

/// The steps without `Fn::If` and the branch index following it.
fn without_conditions(steps: &[String]) -> Vec<&str> {
    let mut kept = Vec::with_capacity(steps.len());
    let mut iter = steps.iter();
    while let Some(step) = iter.next() {
        if step == "Fn::If" {
            iter.next();
        } else {
            kept.push(step.as_str());
        }
    }
    kept
}

/// `MasterUsername`, `ContainerDefinitions[0].Image`.
fn render_property(steps: &[&str]) -> String {
    let mut out = String::new();
    for step in steps {
        if step.bytes().all(|b| b.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{step}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(step);
        }
    }
    out
}

/// Whether a node is an `Fn::If` (walked branch by branch).
fn is_fn_if(node: &Value) -> bool {
    node.as_object()
        .and_then(single_entry)
        .is_some_and(|(f, _)| f == "Fn::If")
}

/// Where in a template a path points.
enum Section<'p> {
    /// Inside `Resources.ID.Properties`.
    ResourceProperties(&'p str),
    /// Inside SAM's `Globals.KIND`: applies to every resource of that kind.
    Globals(&'static str),
    /// Anywhere else, described for people.
    Other(String),
}

fn section<'p>(path: &'p [Step]) -> Section<'p> {
    match path {
        [
            Step::Key("Resources"),
            Step::Key(id),
            Step::Key("Properties"),
            ..,
        ] => Section::ResourceProperties(id),
        [
            Step::Key("Resources"),
            Step::Key(id),
            Step::Key(attribute),
            ..,
        ] => Section::Other(format!("the {attribute} of resource {id}")),
        [Step::Key("Globals"), Step::Key(kind), ..] => match globals_type(kind) {
            Some(t) => Section::Globals(t),
            None => Section::Other(format!("Globals.{kind}")),
        },
        [Step::Key(top), ..] => Section::Other((*top).to_string()),
        _ => Section::Other("the template".into()),
    }
}

fn globals_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Function" => "AWS::Serverless::Function",
        "Api" => "AWS::Serverless::Api",
        "HttpApi" => "AWS::Serverless::HttpApi",
        "SimpleTable" => "AWS::Serverless::SimpleTable",
        "StateMachine" => "AWS::Serverless::StateMachine",
        "LayerVersion" => "AWS::Serverless::LayerVersion",
        _ => return None,
    })
}

fn resources_of_type(template: &Value, kind: &str) -> Vec<String> {
    template
        .get("Resources")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
        .map(|(id, _)| id.clone())
        .collect()
}

fn resource_of<'p>(path: &'p [Step]) -> Option<&'p str> {
    match path {
        [Step::Key("Resources"), Step::Key(id), ..] => Some(id),
        _ => None,
    }
}

fn render_pointer(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            Step::Index(i) => format!("/{i}"),
        })
        .collect()
}

fn render_path(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Macros that AWS runs and whose effect on references is known (they keep or copy the
/// strings they are given).
const KNOWN_MACROS: &[&str] = &[
    "AWS::Serverless-2016-10-31",
    "AWS::LanguageExtensions",
    "AWS::CodeDeployBlueGreen",
    "AWS::SecretsManager-2020-07-23",
    "AWS::SecretsManager-2024-09-16",
];

/// Every macro use not in [`KNOWN_MACROS`]: its path, name and input.
fn unknown_macros(template: &Value) -> Vec<(Vec<String>, String, &Value)> {
    let mut found = Vec::new();
    let names = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|i| {
                    i.as_str()
                        .or_else(|| i.get("Name").and_then(Value::as_str))
                        .map(str::to_string)
                })
                .collect(),
            Value::Object(_) => v
                .get("Name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    };
    if let Some(top) = template.get("Transform") {
        for name in names(top) {
            if !KNOWN_MACROS.contains(&name.as_str()) {
                found.push((vec!["Transform".to_string()], name, template));
            }
        }
    }
    collect_fn_transforms(template, &mut Vec::new(), &mut found);
    found
}

fn collect_fn_transforms<'v>(
    node: &'v Value,
    path: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, String, &'v Value)>,
) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                path.push(key.clone());
                if key == "Fn::Transform" {
                    let name = value.get("Name").and_then(Value::as_str).unwrap_or("?");
                    if !KNOWN_MACROS.contains(&name) {
                        found.push((path.clone(), name.to_string(), value));
                    }
                }
                collect_fn_transforms(value, path, found);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                collect_fn_transforms(item, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Whether `haystack` contains `needle` as a whole secret identifier (not inside a longer
/// name: `db` is not mentioned by `db-replica`).
fn mentions(haystack: &str, needle: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c);
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// References through the `cascade:secrets` / `cascade:resources` tags.
fn tag_references(stack: &StackInfo, template: &Value, secrets: &[Secret]) -> Vec<Reference> {
    let Some(listed) = stack.tag(TAG_SECRETS) else {
        return Vec::new();
    };
    let resources = crate::graph::resource_ids(template);
    let wanted: Vec<&str> = stack.tag(TAG_RESOURCES).map(tag_list).unwrap_or_default();
    let (known, unknown): (Vec<&str>, Vec<&str>) =
        wanted.iter().partition(|id| resources.contains(**id));
    let mut found = Vec::new();
    for secret in secrets {
        if !tag_list(listed).iter().any(|id| secret.is_named_by(id)) {
            continue;
        }
        let (disposition, detail) = if wanted.is_empty() {
            (
                Disposition::Reported,
                Some(format!(
                    "tag {TAG_SECRETS} names the secret but tag {TAG_RESOURCES} is missing: name the logical ids to refresh"
                )),
            )
        } else if known.is_empty() {
            (
                Disposition::Reported,
                Some(format!(
                    "tag {TAG_RESOURCES} names no resource of the template ({})",
                    unknown.join(", ")
                )),
            )
        } else if !unknown.is_empty() {
            (
                Disposition::Refresh,
                Some(format!(
                    "tag {TAG_RESOURCES} names resources the template lacks: {}",
                    unknown.join(", ")
                )),
            )
        } else {
            (Disposition::Refresh, None)
        };
        found.push(Reference {
            secret: secret.name.clone(),
            path: format!("Tags.{TAG_SECRETS}"),
            resource: None,
            form: Form::Tag,
            disposition,
            text: None,
            detail,
            targets: if disposition == Disposition::Refresh {
                known.iter().map(|s| s.to_string()).collect()
            } else {
                Vec::new()
            },
            pointer: String::new(),
        });
    }
    found
}

#[cfg(test)]
mod tests;
