//! Planning one template file with no AWS call (`cascade plan --template`): what the
//! account would tell the planner is given by hand ([`OfflineStack`]: the stack's name,
//! region and account, parameter values, exports, the physical ids of its resources), and,
//! when no secret is named, the [`Inventory`] of every Secrets Manager reference in the
//! template, grouped by secret, with what Secret Cascade would do when that secret changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dynref;
use crate::ecs::parse_value_from;
use crate::eval::{HOLE, Trace, resource_type};
use crate::finder::{Disposition, Reference};
use crate::plan::{
    Plan, PlanOptions, ResourceAction, SkipCode, Strategy, StrategyChoice, plan_account, scope_for,
};
use crate::secret::{Arn, Secret, secret_name};
use crate::stack::StackInfo;

/// The type of a secret a template creates.
pub const SECRET_TYPE: &str = "AWS::SecretsManager::Secret";

/// The suffix of the ARN made up for a secret the template names only by name (a real
/// ARN's suffix is 6 letters or digits, so this one never names a real secret).
const SYNTHETIC_SUFFIX: &str = "-??????";

/// What the account would say about the stack a template file is planned as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfflineStack {
    /// The stack's name (`AWS::StackName`).
    pub stack_name: String,
    /// `AWS::Region`; by default the first secret's, else `us-east-1`.
    pub region: Option<String>,
    /// `AWS::AccountId`; by default the first secret's, else `000000000000`.
    pub account: Option<String>,
    /// Parameter values; others take their `Default`.
    pub parameters: BTreeMap<String, String>,
    /// Exports, name → value, as ListExports gives them.
    pub exports: HashMap<String, String>,
    /// Physical ids of the stack's resources, logical id → physical id (the ARN of a secret
    /// the stack creates, ...).
    pub resources: BTreeMap<String, String>,
}

/// Why an offline plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfflineError {
    /// `--resource` names a logical id the template does not have.
    #[error("--resource {0}: the template has no resource {0} (logical ids are case-sensitive)")]
    UnknownResource(String),
    /// `--account` is not a 12-digit account id.
    #[error("--account {0}: an AWS account id is 12 digits")]
    BadAccount(String),
    /// `--region` is empty or not a region name.
    #[error("--region {0:?}: not a region name (e.g. eu-west-1)")]
    BadRegion(String),
}

impl OfflineStack {
    /// The stack as the planner sees it: its id is an ARN with the region, account and
    /// partition (so pseudo parameters evaluate), its parameters and physical ids as given.
    pub fn stack_info(
        &self,
        template: &Value,
        secrets: &[Secret],
    ) -> Result<StackInfo, OfflineError> {
        let resources = template.get("Resources").and_then(Value::as_object);
        if let Some(missing) = self
            .resources
            .keys()
            .find(|id| !resources.is_some_and(|r| r.contains_key(*id)))
        {
            return Err(OfflineError::UnknownResource(missing.clone()));
        }
        if let Some(account) = &self.account
            && !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(OfflineError::BadAccount(account.clone()));
        }
        if let Some(region) = &self.region
            && (region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(OfflineError::BadRegion(region.clone()));
        }
        let first = secrets.first();
        let from_secret = first.and_then(Secret::region_and_account);
        let region = self
            .region
            .as_deref()
            .or(from_secret.map(|(r, _)| r))
            .unwrap_or("us-east-1");
        let account = self
            .account
            .as_deref()
            .or(from_secret.map(|(_, a)| a))
            .unwrap_or("000000000000");
        let partition = first.map_or("aws", Secret::partition);
        let id = format!(
            "arn:{partition}:cloudformation:{region}:{account}:stack/{}/offline",
            self.stack_name
        );
        let mut stack = StackInfo::from_template(&self.stack_name, &id, template.clone());
        stack.parameters = self.parameters.clone();
        stack.physical_ids = self.resources.clone();
        Ok(stack)
    }

    /// The plan of this one stack for `secrets`, as `cascade plan` makes it for the
    /// account.
    pub fn plan(
        &self,
        template: &Value,
        secrets: &[Secret],
        strategy: StrategyChoice,
    ) -> Result<Plan, OfflineError> {
        let stack = self.stack_info(template, secrets)?;
        Ok(plan_account(&[stack], secrets, &self.options(strategy)))
    }

    fn options(&self, strategy: StrategyChoice) -> PlanOptions {
        PlanOptions {
            strategy,
            exports: self.exports.clone(),
            importers: Default::default(),
        }
    }

    /// Every Secrets Manager reference of `template`, grouped by secret.
    pub fn inventory(
        &self,
        template: &Value,
        strategy: StrategyChoice,
    ) -> Result<Inventory, OfflineError> {
        let bare = self.stack_info(template, &[])?;
        let (region, account, partition) = bare
            .region_account_partition()
            .map(|(r, a, p)| (r.to_string(), a.to_string(), p.to_string()))
            .unwrap_or_default();
        let synthetic = |name: &str| Secret {
            name: name.to_string(),
            arn: format!(
                "arn:{partition}:secretsmanager:{region}:{account}:secret:{name}{SYNTHETIC_SUFFIX}"
            ),
            version_id: None,
            owner: None,
        };
        // The secrets the stack creates: named by their physical id when given, else by
        // their `Name`, else by their logical id; `Ref` to them evaluates to that.
        let mut stack = bare.clone();
        let mut created: BTreeMap<String, String> = BTreeMap::new();
        let mut found: BTreeMap<String, Secret> = BTreeMap::new();
        for (logical_id, _) in template
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(id, _)| resource_type(template, id) == Some(SECRET_TYPE))
        {
            let scope = scope_for(&bare, template, &[], &self.exports);
            let declared = template
                .pointer(&format!(
                    "/Resources/{}/Properties/Name",
                    pointer_escape(logical_id)
                ))
                .map(|n| scope.eval(n, &mut Trace::default()).into_text())
                .filter(|t| t.is_known())
                .map(|t| t.text);
            let secret = match self.resources.get(logical_id) {
                Some(physical) => {
                    Secret::from_arn(physical).unwrap_or_else(|_| synthetic(secret_name(physical)))
                }
                None => synthetic(declared.as_deref().unwrap_or(logical_id)),
            };
            stack
                .physical_ids
                .entry(logical_id.clone())
                .or_insert_with(|| secret.arn.clone());
            created.insert(secret.name.clone(), logical_id.clone());
            found.entry(secret.name.clone()).or_insert(secret);
        }
        // Every other secret a value of the template names.
        let scope = scope_for(&stack, template, &[], &self.exports);
        let mut unresolved = Vec::new();
        let mut ids = BTreeSet::new();
        collect(template, &scope, "", &mut ids, &mut unresolved);
        for id in ids {
            if found.values().any(|s| s.is_named_by(&id)) {
                continue;
            }
            match Secret::from_arn(&id) {
                // A full ARN says more than a name: it replaces a made-up one.
                Ok(full) => {
                    let entry = found
                        .entry(full.name.clone())
                        .or_insert_with(|| full.clone());
                    if entry.arn.ends_with(SYNTHETIC_SUFFIX) {
                        *entry = full;
                    }
                }
                Err(_) => {
                    let name = secret_name(&id);
                    found.entry(name.to_string()).or_insert_with(|| {
                        let mut made_up = synthetic(name);
                        if let Some(arn) = Arn::parse(&id) {
                            made_up.arn = format!(
                                "arn:{}:secretsmanager:{}:{}:secret:{name}{SYNTHETIC_SUFFIX}",
                                arn.partition, arn.region, arn.account
                            );
                        }
                        made_up
                    });
                }
            }
        }
        let options = self.options(strategy);
        let secrets: Vec<Secret> = found.values().cloned().collect();
        let all = plan_account(std::slice::from_ref(&stack), &secrets, &options);
        let mut references: BTreeMap<String, Vec<Reference>> = BTreeMap::new();
        for r in all
            .stacks
            .iter()
            .flat_map(|p| &p.references)
            .chain(all.skipped.iter().flat_map(|s| &s.references))
            // A reference that could be to any secret is listed once, as unresolved.
            .filter(|r| r.disposition != Disposition::Possible)
        {
            references
                .entry(r.secret.clone())
                .or_default()
                .push(r.clone());
        }
        let groups = found
            .into_values()
            .map(|secret| {
                let plan = plan_account(
                    std::slice::from_ref(&stack),
                    std::slice::from_ref(&secret),
                    &options,
                );
                let when_it_changes = match (plan.stacks.first(), plan.skipped.first()) {
                    (Some(p), _) => WhenItChanges::Refreshed {
                        strategy: p.strategy,
                        actions: p.actions.clone(),
                    },
                    (None, Some(s)) => WhenItChanges::Skipped {
                        code: s.code,
                        reason: s.reason.clone(),
                    },
                    (None, None) => WhenItChanges::NotUsed,
                };
                SecretUse {
                    created_by: created.get(&secret.name).cloned(),
                    references: references.remove(&secret.name).unwrap_or_default(),
                    arn: (!secret.arn.ends_with(SYNTHETIC_SUFFIX)).then(|| secret.arn.clone()),
                    secret: secret.name,
                    when_it_changes,
                }
            })
            .filter(|u| u.created_by.is_some() || !u.references.is_empty())
            .collect();
        Ok(Inventory {
            stack_name: self.stack_name.clone(),
            secrets: groups,
            unresolved,
        })
    }
}

/// Every Secrets Manager reference of one template, by secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The stack the template was planned as.
    pub stack_name: String,
    /// Each secret the template names or creates, by name.
    pub secrets: Vec<SecretUse>,
    /// Secrets Manager references whose secret could not be told (an import, a parameter
    /// or a resource whose value is not known offline), with why.
    pub unresolved: Vec<Unresolved>,
}

/// One secret of an inventory: where the template uses it, and what a change of it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretUse {
    /// The secret's name.
    pub secret: String,
    /// Its full ARN, when the template or `--resource` gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The logical id of the `AWS::SecretsManager::Secret` that creates it, when this
    /// stack does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Every reference to it, each with its resource, form and disposition.
    pub references: Vec<Reference>,
    /// What Secret Cascade would do when the secret changes.
    pub when_it_changes: WhenItChanges,
}

/// What a change of one secret would make Secret Cascade do with the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum WhenItChanges {
    /// The stack is refreshed: the strategy and each resource's action.
    Refreshed {
        /// How its template updates are made.
        strategy: Strategy,
        /// Each resource's action.
        actions: Vec<ResourceAction>,
    },
    /// The stack is skipped, with the code and reason of the plan.
    Skipped {
        /// Why, as a stable code.
        code: SkipCode,
        /// Why, for people.
        reason: String,
    },
    /// The stack creates the secret, but no property resolves it through CloudFormation
    /// (what reads it by ARN at run time gets the new value by itself).
    NotUsed,
}

/// A Secrets Manager reference whose secret is not known offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unresolved {
    /// Where, e.g. `Resources.Db.Properties.MasterUserPassword`.
    pub path: String,
    /// The resource it is in, when it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Why its secret is not known (the values that could not be evaluated).
    pub why: String,
}

/// Walks `node`: the secret ids that dynamic references and secret ARNs name (evaluated),
/// and the references whose id has unknown parts.
fn collect(
    node: &Value,
    scope: &crate::eval::Scope<'_>,
    path: &str,
    ids: &mut BTreeSet<String>,
    unresolved: &mut Vec<Unresolved>,
) {
    let evaluable = match node {
        Value::String(_) => true,
        Value::Object(map) => {
            map.len() == 1
                && map.keys().all(|k| {
                    matches!(
                        k.as_str(),
                        "Fn::Sub" | "Fn::Join" | "Ref" | "Fn::ImportValue"
                    )
                })
        }
        _ => false,
    };
    let text = evaluable.then(|| scope.eval(node, &mut Trace::default()).into_text());
    // Only a value that mentions Secrets Manager once evaluated can name a secret.
    if let Some(text) = text.filter(|t| t.text.contains("secretsmanager")) {
        let mut named = false;
        for reference in dynref::find_all(&text.text) {
            named = true;
            if reference.secret_id.contains(HOLE) {
                let start = text.text.find(&reference.secret_id).unwrap_or(0);
                let holes = text.holes_in(start..start + reference.secret_id.len());
                unresolved.push(unresolved_at(path, holes));
            } else {
                ids.insert(reference.secret_id);
            }
        }
        if !named && text.text.starts_with("arn:") {
            let id = parse_value_from(&text.text).secret_id;
            if id.contains(HOLE) {
                unresolved.push(unresolved_at(path, text.holes.clone()));
            } else if Arn::parse(&id)
                .is_some_and(|a| a.service == "secretsmanager" && a.resource.starts_with("secret:"))
            {
                ids.insert(id);
            }
        }
        if matches!(node, Value::Object(_)) {
            return;
        }
    }
    match node {
        Value::Object(map) => {
            for (key, child) in map {
                collect(child, scope, &join(path, key), ids, unresolved);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect(child, scope, &format!("{path}[{i}]"), ids, unresolved);
            }
        }
        _ => {}
    }
}

fn unresolved_at(path: &str, holes: Vec<String>) -> Unresolved {
    let resource = path
        .strip_prefix("Resources.")
        .and_then(|rest| rest.split('.').next())
        .map(str::to_string);
    let mut why: Vec<String> = holes;
    why.dedup();
    Unresolved {
        path: path.to_string(),
        resource,
        why: if why.is_empty() {
            "part of the secret's id is not known".into()
        } else {
            why.join("; ")
        },
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests;
