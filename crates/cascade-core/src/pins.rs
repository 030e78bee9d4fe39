//! Pins that age out (issue 12): references pinned to a version id of a changed secret that
//! Secrets Manager has deprecated or deleted.
//!
//! Secrets Manager keeps a version only while it has a staging label (`AWSCURRENT`,
//! `AWSPREVIOUS`, `AWSPENDING` or one of the user's); once a secret has many versions (about
//! 100: frequent rotation gets there in days) it deletes the unlabelled ones. A template
//! pinned to a deleted version cannot be resolved by CloudFormation any more, so the stack
//! cannot be updated at all, by anyone, until the reference changes; an ECS `ValueFrom`
//! pinned to one makes new tasks fail to start.
//!
//! [`attention`] lists, from a plan and the versions of each secret (as
//! `ListSecretVersionIds` with `IncludeDeprecated` gives them), every such reference with
//! what to do. A pin Secret Cascade wrote itself and re-pins in this batch is not listed:
//! the batch moves it to the new version.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::dynref;
use crate::ecs;
use crate::finder::{Disposition, Form, Reference};
use crate::plan::{Action, Plan, StackPlan};
use crate::secret::Secret;

/// The versions of one secret: version id → its staging labels (none: deprecated).
pub type SecretVersions = BTreeMap<String, Vec<String>>;

/// What became of the version a reference is pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinStatus {
    /// It has no staging label any more: Secrets Manager will delete it.
    Deprecated,
    /// It no longer exists: the reference cannot be resolved.
    Deleted,
}

impl std::fmt::Display for PinStatus {
    /// The name the JSON uses: `deprecated` or `deleted`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PinStatus::Deprecated => "deprecated",
            PinStatus::Deleted => "deleted",
        })
    }
}

/// Who pinned the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinnedBy {
    /// The stack's author (not recorded in `Metadata.SecretCascade.Pins`).
    Author,
    /// Secret Cascade (recorded in `Metadata.SecretCascade.Pins`).
    SecretCascade,
}

impl std::fmt::Display for PinnedBy {
    /// The name the JSON uses: `author` or `secret-cascade`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PinnedBy::Author => "author",
            PinnedBy::SecretCascade => "secret-cascade",
        })
    }
}

/// A reference pinned to a version of a changed secret that is deprecated or deleted: a
/// person has to change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    /// The stack's name.
    pub stack_name: String,
    /// The stack's id.
    pub stack_id: String,
    /// The logical id of the resource holding the reference, or null outside `Resources`.
    pub resource: Option<String>,
    /// Where the reference is, e.g. `Resources.Fn.Properties.Environment.Variables.KEY`.
    pub path: String,
    /// The secret's name.
    pub secret: String,
    /// The version id the reference names.
    pub version_id: String,
    /// How the reference is written (`dynamic-reference`, `ecs-value-from`, ...).
    pub form: Form,
    /// Who pinned it.
    pub pinned_by: PinnedBy,
    /// Deprecated (will be deleted) or deleted.
    pub status: PinStatus,
    /// One line: what is wrong and what to do.
    pub reason: String,
}

/// A reference that names a version id of a changed secret and that this batch leaves
/// as it is.
struct Candidate<'p> {
    stack_name: &'p str,
    stack_id: &'p str,
    /// Why the stack is skipped (its skip code), when it is.
    skipped: Option<String>,
    reference: &'p Reference,
    version_id: String,
    pinned_by: PinnedBy,
}

/// The changed secrets whose versions [`attention`] needs: those a reference that stays as
/// it is names a version id of. The others need no call.
pub fn secrets_to_check(plan: &Plan) -> Vec<&Secret> {
    let wanted: BTreeSet<&str> = candidates(plan)
        .iter()
        .map(|c| c.reference.secret.as_str())
        .collect();
    plan.secrets
        .iter()
        .filter(|s| wanted.contains(s.name.as_str()))
        .collect()
}

/// Every reference of `plan` pinned to a version of a changed secret that is deprecated or
/// deleted, by stack name then path. `versions` holds each secret's versions by secret
/// name; a secret missing from it (its versions could not be listed) is not checked.
pub fn attention(plan: &Plan, versions: &BTreeMap<String, SecretVersions>) -> Vec<Attention> {
    let mut found: Vec<Attention> = Vec::new();
    for c in candidates(plan) {
        let Some(known) = versions.get(&c.reference.secret) else {
            continue;
        };
        let status = match known.get(&c.version_id) {
            Some(labels) if !labels.is_empty() => continue,
            Some(_) => PinStatus::Deprecated,
            None => PinStatus::Deleted,
        };
        let current = plan
            .secrets
            .iter()
            .find(|s| s.name == c.reference.secret)
            .and_then(|s| s.version_id.as_deref());
        let item = Attention {
            stack_name: c.stack_name.to_string(),
            stack_id: c.stack_id.to_string(),
            resource: c.reference.resource.clone(),
            path: c.reference.path.clone(),
            secret: c.reference.secret.clone(),
            version_id: c.version_id.clone(),
            form: c.reference.form,
            pinned_by: c.pinned_by,
            status,
            reason: reason(&c, status, current),
        };
        if !found.contains(&item) {
            found.push(item);
        }
    }
    found.sort_by(|a, b| {
        (&a.stack_name, &a.path, &a.secret, &a.version_id).cmp(&(
            &b.stack_name,
            &b.path,
            &b.secret,
            &b.version_id,
        ))
    });
    found
}

/// The note of a batch whose versions of `secret` could not be listed: its pins were not
/// checked. `error` says what failed (never a value: only the call and AWS's answer).
pub fn unchecked_note(secret: &str, error: &str) -> String {
    format!(
        "the versions of secret {secret} could not be listed ({error}): references pinned to one of its version ids were not checked for versions Secrets Manager deprecated or deleted"
    )
}

/// The version id a reference names, when it names one that is known (a reference built
/// from a value that could not be evaluated, or hidden because it comes from a `NoEcho`
/// parameter, names none that can be checked).
pub fn pinned_version(reference: &Reference) -> Option<String> {
    let text = reference.text.as_deref()?;
    let version = if reference.form.is_dynamic_reference() {
        dynref::find_all(text).into_iter().next()?.version_id
    } else if reference.form == Form::EcsValueFrom {
        ecs::parse_value_from(text.trim()).version_id
    } else {
        None
    }?;
    // `${?}` marks what could not be evaluated (its `}` may end the reference early).
    (!version.contains("${?") && !version.is_empty()).then_some(version)
}

/// The references naming a version id that this batch leaves as they are.
fn candidates(plan: &Plan) -> Vec<Candidate<'_>> {
    let mut out = Vec::new();
    for stack in &plan.stacks {
        for reference in &stack.references {
            if let Some(c) = candidate(&stack.stack_name, &stack.stack_id, None, reference)
                && !(c.pinned_by == PinnedBy::SecretCascade && repinned(stack, reference))
            {
                out.push(c);
            }
        }
    }
    for stack in &plan.skipped {
        for reference in &stack.references {
            out.extend(candidate(
                &stack.stack_name,
                &stack.stack_id,
                Some(stack.code.to_string()),
                reference,
            ));
        }
    }
    out
}

fn candidate<'p>(
    stack_name: &'p str,
    stack_id: &'p str,
    skipped: Option<String>,
    reference: &'p Reference,
) -> Option<Candidate<'p>> {
    let pinned_by = match reference.disposition {
        // Pinned to the current version: labelled AWSCURRENT, nothing can age out.
        Disposition::Current | Disposition::Possible => return None,
        Disposition::Pinned => PinnedBy::Author,
        // The finder keeps a version id as refreshable only when Secret Cascade wrote it
        // (its own pins, recorded in the template's Metadata); a reference of another form
        // naming a version id is the author's.
        _ if reference.form.is_dynamic_reference() => PinnedBy::SecretCascade,
        _ => PinnedBy::Author,
    };
    Some(Candidate {
        stack_name,
        stack_id,
        skipped,
        reference,
        version_id: pinned_version(reference)?,
        pinned_by,
    })
}

/// Whether the batch rewrites this reference of a refreshed stack: it is refreshed and its
/// resource (or, for SAM `Globals`, a resource it applies to) is pinned or recreated (the
/// restore re-pins Secret Cascade's own pins).
fn repinned(stack: &StackPlan, reference: &Reference) -> bool {
    reference.disposition == Disposition::Refresh
        && reference
            .resource
            .iter()
            .chain(&reference.targets)
            .any(|id| {
                stack.actions.iter().any(|a| {
                    &a.logical_id == id && matches!(a.action, Action::Pin | Action::Recreate)
                })
            })
}

/// One line: what is wrong with the pin and what to do.
fn reason(c: &Candidate<'_>, status: PinStatus, current: Option<&str>) -> String {
    let r = c.reference;
    let (secret, version) = (&r.secret, &c.version_id);
    let labelled = match current {
        Some(v) => format!("a version that exists ({v} is AWSCURRENT)"),
        None => "a version that exists".to_string(),
    };
    if r.form == Form::EcsValueFrom {
        let task = r.resource.as_deref().unwrap_or("the task definition");
        return match status {
            PinStatus::Deprecated => format!(
                "ECS reads version {version} of {secret} when a task of {task} starts: it has no staging label any more, so Secrets Manager will delete it and new tasks will fail to start; point ValueFrom at {labelled} or drop the version id to follow AWSCURRENT"
            ),
            PinStatus::Deleted => format!(
                "version {version} of {secret} no longer exists: new tasks of {task} cannot read it and fail to start; point ValueFrom at {labelled} or drop the version id to follow AWSCURRENT"
            ),
        };
    }
    let what = match status {
        PinStatus::Deprecated => format!(
            "version {version} of {secret} has no staging label any more: Secrets Manager will delete it, and then the stack cannot be updated at all until this reference changes"
        ),
        PinStatus::Deleted => format!(
            "version {version} of {secret} no longer exists: CloudFormation cannot resolve this reference, so the stack cannot be updated at all until it changes"
        ),
    };
    match c.pinned_by {
        PinnedBy::Author => format!(
            "pinned by the stack's author: {what}; pin {labelled} or drop the version id to follow AWSCURRENT"
        ),
        PinnedBy::SecretCascade => {
            let why = match &c.skipped {
                Some(code) => format!("the stack is skipped ({code})"),
                None => "its resource is not refreshed".to_string(),
            };
            format!(
                "pinned by Secret Cascade, and this batch does not re-pin it because {why}: {what}; fix that and run `cascade run --secret {secret} --stack {}` to re-pin it, or pin {labelled} by hand",
                c.stack_name
            )
        }
    }
}

#[cfg(test)]
mod tests;
