//! The templates the refresh updates send (DESIGN.md §2): the original without the
//! affected resources (`recreate`), or with each matching dynamic reference pinned to the
//! new version (`pin`).

use std::collections::BTreeSet;
use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::dynref;
use crate::finder::{Disposition, PIN_METADATA_KEY, own_pins};
use crate::plan::{StackPlan, scope_for};
use crate::secret::Secret;
use crate::stack::StackInfo;

/// Logical id of the placeholder added when removing the affected resources would leave
/// none (a template needs at least one resource).
pub const PLACEHOLDER_ID: &str = "SecretCascadePlaceholder";

/// The largest template CloudFormation takes inline (`TemplateBody`); larger ones go
/// through S3 (`TemplateURL`).
pub const MAX_TEMPLATE_BODY_BYTES: usize = 51_200;

/// The largest template CloudFormation takes at all (through S3, `TemplateURL`): 1 MB.
pub const MAX_TEMPLATE_BYTES: usize = 1_000_000;

/// Whether CloudFormation can take `body` as a template, checked before anything is sent:
/// a template at the limit grows when pins are written into it or when YAML is sent as
/// JSON.
///
/// # Errors
/// [`RefreshError::TooLarge`] over [`MAX_TEMPLATE_BYTES`].
pub fn check_template_size(body: &str) -> Result<(), RefreshError> {
    if body.len() > MAX_TEMPLATE_BYTES {
        Err(RefreshError::TooLarge { bytes: body.len() })
    } else {
        Ok(())
    }
}

/// Why a refresh template could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The template of an update is over CloudFormation's 1 MB limit.
    #[error(
        "the template of this update is {bytes} bytes, over CloudFormation's limit of \
         {MAX_TEMPLATE_BYTES} bytes (1 MB, through S3): make the stack's template smaller \
         (nested stacks; code and policies kept out of line), or refresh the stack by hand"
    )]
    TooLarge {
        /// The template's size.
        bytes: usize,
    },
    /// The secret's current version id is not known, so nothing can be pinned to it.
    #[error("the current version id of secret {0} is not known: cannot pin")]
    NoVersion(String),
    /// The reference is not where the plan says.
    #[error("no template node at {0}: the template changed since the plan")]
    Missing(String),
    /// A reference in a shape pin cannot rewrite.
    #[error("cannot pin the reference at {path}: {why}")]
    Unpinnable {
        /// Where.
        path: String,
        /// Why.
        why: String,
    },
}

/// A reference Secret Cascade pinned, recorded in the template's Metadata so that the
/// next change of the secret refreshes it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Where, e.g. `Resources.Db.Properties.MasterUserPassword`.
    pub path: String,
    /// The secret's ARN.
    pub secret_arn: String,
    /// The version pinned.
    pub version_id: String,
}

/// The template of the first `recreate` update: the original without the plan's closure
/// and the outputs naming it; a placeholder when no resource would be left.
pub fn removal_template(original: &Value, plan: &StackPlan) -> Value {
    let mut template = original.clone();
    if let Some(resources) = template.get_mut("Resources").and_then(Value::as_object_mut) {
        for id in &plan.closure {
            resources.remove(id);
        }
        if resources.is_empty() {
            resources.insert(
                PLACEHOLDER_ID.to_string(),
                json!({"Type": "AWS::CloudFormation::WaitConditionHandle"}),
            );
        }
    }
    if let Some(outputs) = template.get_mut("Outputs").and_then(Value::as_object_mut) {
        for name in &plan.outputs {
            outputs.remove(name);
        }
        if outputs.is_empty() {
            template.as_object_mut().map(|t| t.remove("Outputs"));
        }
    }
    template
}

/// The template of a `pin` update: every dynamic reference of the plan to a changed secret
/// names that secret's current version id, and the pins are recorded under
/// `Metadata.SecretCascade.Pins`. `Fn::Join` references become the equivalent `Fn::Sub`.
/// A reference its author pinned (to a version id Secret Cascade did not write, or to a
/// stage other than `AWSCURRENT`) is left as written, even inside a string that holds a
/// reference to pin.
pub fn pinned_template(
    stack: &StackInfo,
    plan: &StackPlan,
    secrets: &[Secret],
    exports: &HashMap<String, String>,
) -> Result<(Value, Vec<Pin>), RefreshError> {
    pin_references(stack, plan, secrets, exports, Rewriting::All)
}

/// The template that restores a `recreate` plan that pins nothing: the original, with only
/// the references Secret Cascade pinned itself (recorded under
/// `Metadata.SecretCascade.Pins`) moved to the changed secret's current version; every
/// other reference as written. Without such a pin, the original itself and no pin: the
/// resources it adds back would otherwise come back pinned to the old version, and the
/// next change would find them there again.
pub fn repinned_template(
    stack: &StackInfo,
    plan: &StackPlan,
    secrets: &[Secret],
    exports: &HashMap<String, String>,
) -> Result<(Value, Vec<Pin>), RefreshError> {
    let original = stack
        .template
        .as_ref()
        .map_err(|_| RefreshError::Missing("the template".into()))?;
    if own_pins(original).is_empty() {
        return Ok((original.clone(), Vec::new()));
    }
    pin_references(stack, plan, secrets, exports, Rewriting::OwnPinsOnly)
}

/// Which of the dynamic references in a node an update rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rewriting {
    /// Every reference to a changed secret but those its author pinned.
    All,
    /// Only those Secret Cascade pinned itself.
    OwnPinsOnly,
}

impl Rewriting {
    /// Whether `found` (a reference to `secret`) is rewritten; `own` are the template's
    /// recorded pins.
    fn rewrites(
        self,
        found: &dynref::DynamicReference,
        secret: &Secret,
        own: &[(String, String)],
    ) -> bool {
        match &found.version_id {
            Some(version) => own
                .iter()
                .any(|(id, pinned)| pinned == version && secret.is_named_by(id)),
            // A stage other than AWSCURRENT: the author's choice.
            None if found.is_pinned() => false,
            None => self == Rewriting::All,
        }
    }
}

fn pin_references(
    stack: &StackInfo,
    plan: &StackPlan,
    secrets: &[Secret],
    exports: &HashMap<String, String>,
    rewriting: Rewriting,
) -> Result<(Value, Vec<Pin>), RefreshError> {
    let original = stack
        .template
        .as_ref()
        .map_err(|_| RefreshError::Missing("the template".into()))?;
    let own = own_pins(original);
    let versions: HashMap<&str, &str> = secrets
        .iter()
        .filter(|s| plan.secrets.contains(&s.name))
        .map(|s| {
            s.version_id
                .as_deref()
                .map(|v| (s.name.as_str(), v))
                .ok_or_else(|| RefreshError::NoVersion(s.name.clone()))
        })
        .collect::<Result<_, _>>()?;
    let scope = scope_for(stack, original, secrets, exports);
    let mut template = original.clone();
    let mut pins = Vec::new();
    let mut done = BTreeSet::new();
    for reference in plan.references.iter().filter(|r| {
        r.disposition == Disposition::Refresh
            && r.form.is_dynamic_reference()
            // A refreshed reference naming a version id is one of Secret Cascade's pins:
            // leave the other nodes untouched (not even an `Fn::Join` made a `Fn::Sub`).
            && (rewriting == Rewriting::All || crate::pins::pinned_version(r).is_some())
    }) {
        if !done.insert(reference.pointer.clone()) {
            continue;
        }
        let node = template
            .pointer_mut(&reference.pointer)
            .ok_or_else(|| RefreshError::Missing(reference.path.clone()))?;
        let rewrite = |found: &dynref::DynamicReference,
                       vars: Option<&Map<String, Value>>|
         -> Option<(&Secret, &str)> {
            let id = found.secret_id.as_str();
            let evaluated = if vars.is_some() || id.contains("${") {
                let sub = match vars {
                    Some(v) => json!([id, v]),
                    None => json!(id),
                };
                scope.eval_sub(&sub, &mut Default::default())
            } else {
                crate::eval::Text::literal(id)
            };
            if !evaluated.is_known() {
                return None;
            }
            secrets
                .iter()
                .find(|s| s.is_named_by(&evaluated.text))
                .filter(|s| rewriting.rewrites(found, s, &own))
                .and_then(|s| versions.get(s.name.as_str()).map(|v| (s, *v)))
        };
        let pinned = pin_node(node, &rewrite).map_err(|why| RefreshError::Unpinnable {
            path: reference.path.clone(),
            why,
        })?;
        pins.extend(pinned.into_iter().map(|(secret, version)| Pin {
            path: reference.path.clone(),
            secret_arn: secret.arn.clone(),
            version_id: version.to_string(),
        }));
    }
    record_pins(&mut template, &pins);
    Ok((template, pins))
}

/// Given a reference found in a node (its fields as written, `${...}` variables intact)
/// and the node's `Fn::Sub` variables, the secret and version to pin it to, if it is
/// rewritten.
type Rewrite<'r, 's> = dyn Fn(&dynref::DynamicReference, Option<&Map<String, Value>>) -> Option<(&'s Secret, &'s str)>
    + 'r;

/// Rewrites the dynamic references in one node (a string, an `Fn::Sub` or an `Fn::Join`);
/// returns the secrets and versions pinned.
fn pin_node<'s>(
    node: &mut Value,
    rewrite: &Rewrite<'_, 's>,
) -> Result<Vec<(&'s Secret, &'s str)>, String> {
    match node {
        Value::String(text) => {
            let (new, pinned) = pin_text(text, None, rewrite);
            *text = new;
            Ok(pinned)
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("Fn::Sub") => {
            let sub = map.get_mut("Fn::Sub").expect("checked");
            match sub {
                Value::String(pattern) => {
                    let (new, pinned) = pin_text(pattern, None, rewrite);
                    *pattern = new;
                    Ok(pinned)
                }
                Value::Array(items) if matches!(items.first(), Some(Value::String(_))) => {
                    let vars = items.get(1).and_then(Value::as_object).cloned();
                    let Some(Value::String(pattern)) = items.first_mut() else {
                        unreachable!("checked above")
                    };
                    let (new, pinned) = pin_text(pattern, vars.as_ref(), rewrite);
                    *pattern = new;
                    Ok(pinned)
                }
                _ => Err("an Fn::Sub whose pattern is not a string".into()),
            }
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("Fn::Join") => {
            let sub = join_as_sub(&map["Fn::Join"])?;
            *node = sub;
            pin_node(node, rewrite)
        }
        _ => Err("not a string, an Fn::Sub or an Fn::Join".into()),
    }
}

/// Pins the matching references in a string or `Fn::Sub` pattern. `${...}` variables are
/// kept intact (an ARN built with `${AWS::Region}` has colons inside the braces).
fn pin_text<'s>(
    text: &str,
    vars: Option<&Map<String, Value>>,
    rewrite: &Rewrite<'_, 's>,
) -> (String, Vec<(&'s Secret, &'s str)>) {
    let (masked, tokens) = mask_variables(text);
    let mut out = String::new();
    let mut pinned = Vec::new();
    let mut last = 0;
    for reference in dynref::find_all(&masked) {
        let unmasked = |field: &Option<String>| field.as_deref().map(|f| unmask(f, &tokens));
        let found = dynref::DynamicReference {
            secret_id: unmask(&reference.secret_id, &tokens),
            json_key: unmasked(&reference.json_key),
            version_stage: unmasked(&reference.version_stage),
            version_id: unmasked(&reference.version_id),
            ..reference.clone()
        };
        let Some((secret, version)) = rewrite(&found, vars) else {
            continue;
        };
        out.push_str(&masked[last..reference.start]);
        out.push_str(&reference.pinned_to(version));
        last = reference.end;
        pinned.push((secret, version));
    }
    out.push_str(&masked[last..]);
    (unmask(&out, &tokens), pinned)
}

/// First private-use character standing for a masked `${...}` variable.
const MASK_BASE: u32 = 0xE100;

pub(super) fn mask_variables(text: &str) -> (String, Vec<String>) {
    let mut masked = String::new();
    let mut tokens = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("${") {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        masked.push_str(&rest[..open]);
        let token = &rest[open..open + close + 1];
        match char::from_u32(MASK_BASE + tokens.len() as u32) {
            Some(c) if tokens.len() < 0x1000 => {
                masked.push(c);
                tokens.push(token.to_string());
            }
            _ => masked.push_str(token),
        }
        rest = &rest[open + close + 1..];
    }
    masked.push_str(rest);
    (masked, tokens)
}

pub(super) fn unmask(text: &str, tokens: &[String]) -> String {
    text.chars()
        .map(|c| {
            let index = (c as u32).wrapping_sub(MASK_BASE) as usize;
            match tokens.get(index) {
                Some(token) if (c as u32) >= MASK_BASE => token.clone(),
                _ => c.to_string(),
            }
        })
        .collect()
}

/// `Fn::Join [delim, [parts]]` as the equivalent `Fn::Sub [pattern, {vars}]`.
fn join_as_sub(join: &Value) -> Result<Value, String> {
    let (Some(delimiter), Some(parts)) = (
        join.get(0).and_then(Value::as_str),
        join.get(1).and_then(Value::as_array),
    ) else {
        return Err("an Fn::Join whose parts are not a literal list".into());
    };
    let escape = |s: &str| s.replace("${", "${!");
    let mut pattern = String::new();
    let mut vars = Map::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            pattern.push_str(&escape(delimiter));
        }
        match part {
            Value::String(s) => pattern.push_str(&escape(s)),
            other => {
                let name = format!("CascadeJoin{i}");
                pattern.push_str(&format!("${{{name}}}"));
                vars.insert(name, other.clone());
            }
        }
    }
    Ok(if vars.is_empty() {
        json!({"Fn::Sub": pattern})
    } else {
        json!({"Fn::Sub": [pattern, vars]})
    })
}

/// Records `pins` under `Metadata.SecretCascade.Pins`, replacing earlier pins of the same
/// reference.
fn record_pins(template: &mut Value, pins: &[Pin]) {
    if pins.is_empty() {
        return;
    }
    let Some(root) = template.as_object_mut() else {
        return;
    };
    let metadata = root.entry("Metadata").or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    let ours = metadata
        .as_object_mut()
        .expect("made an object")
        .entry(PIN_METADATA_KEY)
        .or_insert_with(|| json!({}));
    if !ours.is_object() {
        *ours = json!({});
    }
    let list = ours
        .as_object_mut()
        .expect("made an object")
        .entry("Pins")
        .or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let list = list.as_array_mut().expect("made an array");
    for pin in pins {
        list.retain(|p| {
            !(p.get("Path").and_then(Value::as_str) == Some(pin.path.as_str())
                && p.get("SecretArn").and_then(Value::as_str) == Some(pin.secret_arn.as_str()))
        });
        list.push(
            json!({"Path": pin.path, "SecretArn": pin.secret_arn, "VersionId": pin.version_id}),
        );
    }
}
