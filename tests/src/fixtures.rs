//! Seeds a local stack from a fixture directory: secrets first, then stacks, one at a time
//! in manifest order (exporters before importers), with their parameters, tags and stack
//! policies. Used by the end-to-end tests and by the demo (`seed` binary).
//!
//! A fixture directory holds templates (YAML or JSON) and a manifest, `stacks.json`:
//!
//! ```json
//! {
//!   "changed_secrets": ["prod/db"],
//!   "secrets": [{"name": "prod/db", "value": "{\"password\":\"dummy\"}"}],
//!   "stacks": [{
//!     "name": "app", "template": "app.yaml", "intent": "why this stack exists",
//!     "parameters": {"DbSecretArn": "@@arn:prod/db@@"}, "tags": {"team": "x"},
//!     "stack_policy": {"Statement": [...]},
//!     "create": "stack | change-set | fails",
//!     "failed_update_template": "app-update.yaml"
//!   }]
//! }
//! ```
//!
//! In templates, parameter values and tag values, `@@arn:NAME@@` becomes the full ARN of
//! the secret `NAME` created from the manifest and `@@partial-arn:NAME@@` its ARN without
//! the random suffix (neither is known before the secret exists).
//!
//! `create` says how the stack comes to be: `stack` (CreateStack, the default), `change-set`
//! (a CREATE change set that is never executed: the stack stays REVIEW_IN_PROGRESS) or
//! `fails` (a template whose creation fails: the stack is left in a status that does not
//! allow updates). `failed_update_template` is a template for an UpdateStack that the local
//! stack's launcher rolls back (it must contain the launcher's failure marker,
//! `MotoSimulateUpdateFailure`), leaving the stack UPDATE_ROLLBACK_COMPLETE.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_cloudformation::Client as CloudFormation;
use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Tag};
use aws_sdk_secretsmanager::Client as SecretsManager;
use cascade_core::secret::Secret;
use serde::Deserialize;

/// The manifest's file name inside a fixture directory.
pub const MANIFEST: &str = "stacks.json";

/// The marker that makes the local stack's launcher roll an update back.
pub const FAILURE_MARKER: &str = "MotoSimulateUpdateFailure";

/// How long to wait for a stack operation to leave its `*_IN_PROGRESS` status.
const WAIT: Duration = Duration::from_secs(60);

/// The fixture directory of the end-to-end plan test and of the demo.
pub fn plan_dir() -> PathBuf {
    crate::workspace_root().join("tests/fixtures/plan")
}

/// A fixture directory's `stacks.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// What the fixture is for.
    #[serde(default)]
    pub description: String,
    /// The secrets whose change the fixture is about (the batch).
    #[serde(default)]
    pub changed_secrets: Vec<String>,
    /// Secrets to create before any stack.
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    /// Stacks to create, in order.
    pub stacks: Vec<StackSpec>,
}

/// A secret to create.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// Its name.
    pub name: String,
    /// Its (dummy) secret string.
    pub value: String,
    /// Why it exists (changed, look-alike, unrelated, ...); becomes its description.
    #[serde(default)]
    pub intent: String,
}

/// A stack to create.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    /// The stack's name.
    pub name: String,
    /// The template file, relative to the fixture directory.
    pub template: String,
    /// What the stack shows (for people reading the fixture).
    #[serde(default)]
    pub intent: String,
    /// Parameter values.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Stack tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The stack policy (a JSON document).
    #[serde(default)]
    pub stack_policy: Option<serde_json::Value>,
    /// How the stack is created.
    #[serde(default)]
    pub create: CreateMode,
    /// A template for an update that fails and rolls back, applied after the creation.
    #[serde(default)]
    pub failed_update_template: Option<String>,
}

/// How a fixture stack comes to be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CreateMode {
    /// CreateStack; the stack must end CREATE_COMPLETE.
    #[default]
    Stack,
    /// CreateChangeSet of type CREATE, never executed: REVIEW_IN_PROGRESS.
    ChangeSet,
    /// CreateStack of a template whose creation fails.
    Fails,
}

/// What [`seed`] created.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    /// The ARN of every secret created, by name.
    pub secrets: BTreeMap<String, String>,
    /// The manifest's changed secrets (the batch).
    pub changed_secrets: Vec<String>,
    /// Every stack created, in creation order.
    pub stacks: Vec<SeededStack>,
}

impl Seeded {
    /// The id of a created stack.
    pub fn stack_id(&self, name: &str) -> Option<&str> {
        self.stacks
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.id.as_str())
    }
}

/// A stack [`seed`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededStack {
    /// Its name.
    pub name: String,
    /// Its id (ARN).
    pub id: String,
    /// Its status once seeded.
    pub status: String,
    /// The template file it was created from.
    pub template: String,
    /// The template text it was created from, placeholders replaced (what GetTemplate
    /// returns for it; a failed update leaves it unchanged).
    pub template_body: String,
}

/// Reads and checks a fixture directory's manifest.
pub fn load_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the fixture manifest {}", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid fixture manifest", path.display()))?;
    let mut seen = std::collections::BTreeSet::new();
    for stack in &manifest.stacks {
        if !seen.insert(stack.name.as_str()) {
            bail!("{}: stack {} is listed twice", path.display(), stack.name);
        }
        if stack.create == CreateMode::ChangeSet
            && (stack.stack_policy.is_some() || stack.failed_update_template.is_some())
        {
            bail!(
                "{}: stack {} is created as a change set that is never executed: it can have no stack policy and no update",
                path.display(),
                stack.name
            );
        }
    }
    for name in &manifest.changed_secrets {
        if !manifest.secrets.iter().any(|s| &s.name == name) {
            bail!(
                "{}: changed secret {name} is not among the secrets to create",
                path.display()
            );
        }
    }
    Ok(manifest)
}

/// Seeds the account behind `config` from the fixture directory `dir`: creates its secrets,
/// then its stacks in order, and returns what it created.
pub async fn seed(config: &SdkConfig, dir: &Path) -> anyhow::Result<Seeded> {
    seed_with_progress(config, dir, |_| {}).await
}

/// [`seed`], calling `created` after each stack.
pub async fn seed_with_progress(
    config: &SdkConfig,
    dir: &Path,
    mut created: impl FnMut(&SeededStack),
) -> anyhow::Result<Seeded> {
    let manifest = load_manifest(dir)?;
    let secrets_client = SecretsManager::new(config);
    // No retries: a retried CreateStack after a server error would only report that the
    // stack already exists, hiding the first error.
    let cloudformation = CloudFormation::from_conf(
        aws_sdk_cloudformation::config::Builder::from(config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let mut seeded = Seeded {
        changed_secrets: manifest.changed_secrets.clone(),
        ..Seeded::default()
    };
    for secret in &manifest.secrets {
        let out = secrets_client
            .create_secret()
            .name(&secret.name)
            .secret_string(&secret.value)
            .description(format!("Secret Cascade fixture: {}", secret.intent))
            .send()
            .await
            .with_context(|| format!("secret {}: CreateSecret failed", secret.name))?;
        let arn = out
            .arn()
            .with_context(|| format!("secret {}: CreateSecret returned no ARN", secret.name))?;
        seeded.secrets.insert(secret.name.clone(), arn.to_string());
    }
    for spec in &manifest.stacks {
        let stack = create_stack(&cloudformation, dir, spec, &seeded.secrets)
            .await
            .with_context(|| format!("stack {} (template {})", spec.name, spec.template))?;
        created(&stack);
        seeded.stacks.push(stack);
    }
    Ok(seeded)
}

async fn create_stack(
    cfn: &CloudFormation,
    dir: &Path,
    spec: &StackSpec,
    secrets: &BTreeMap<String, String>,
) -> anyhow::Result<SeededStack> {
    let body = read_template(dir, &spec.template, secrets)?;
    let parameters = spec
        .parameters
        .iter()
        .map(|(key, value)| {
            Ok(Parameter::builder()
                .parameter_key(key)
                .parameter_value(substitute(value, secrets)?)
                .build())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tags = spec
        .tags
        .iter()
        .map(|(key, value)| {
            Ok(Tag::builder()
                .key(key)
                .value(substitute(value, secrets)?)
                .build())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let policy = spec
        .stack_policy
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let capabilities = [
        Capability::CapabilityIam,
        Capability::CapabilityNamedIam,
        Capability::CapabilityAutoExpand,
    ];

    let status = match spec.create {
        CreateMode::ChangeSet => {
            cfn.create_change_set()
                .stack_name(&spec.name)
                .change_set_name("initial")
                .change_set_type(ChangeSetType::Create)
                .template_body(&body)
                .set_parameters(Some(parameters.clone()))
                .set_tags(Some(tags))
                .set_capabilities(Some(capabilities.to_vec()))
                .send()
                .await
                .context("CreateChangeSet failed")?;
            let status = stack_status(cfn, &spec.name).await?.1;
            if status != "REVIEW_IN_PROGRESS" {
                bail!(
                    "a stack created by an unexecuted change set should be REVIEW_IN_PROGRESS, not {status}"
                );
            }
            status
        }
        CreateMode::Stack | CreateMode::Fails => {
            let result = cfn
                .create_stack()
                .stack_name(&spec.name)
                .template_body(&body)
                .set_parameters(Some(parameters.clone()))
                .set_tags(Some(tags))
                .set_capabilities(Some(capabilities.to_vec()))
                .set_stack_policy_body(policy)
                .send()
                .await;
            match (spec.create, result) {
                (CreateMode::Stack, Err(e)) => {
                    let status = e.raw_response().map(|r| r.status().as_u16());
                    let hint = match status {
                        Some(code) if code >= 500 => format!(
                            " (HTTP {code}: the local stack crashed on this template, most likely a resource type, property or attribute moto does not support; its log says which)"
                        ),
                        _ => String::new(),
                    };
                    return Err(anyhow::Error::new(e).context(format!("CreateStack failed{hint}")));
                }
                (CreateMode::Stack, Ok(_)) => {
                    let status = wait_for(cfn, &spec.name).await?;
                    if status != "CREATE_COMPLETE" {
                        bail!("CreateStack ended {status}, not CREATE_COMPLETE");
                    }
                    status
                }
                (_, result) => {
                    // Meant to fail: AWS fails asynchronously (ROLLBACK_COMPLETE), moto
                    // fails the call itself and leaves the stack CREATE_IN_PROGRESS.
                    let status = match &result {
                        Ok(_) => wait_for(cfn, &spec.name).await?,
                        Err(_) => {
                            stack_status(cfn, &spec.name)
                                .await
                                .with_context(|| {
                                    format!(
                                        "the failed creation left no stack ({:?})",
                                        result.err()
                                    )
                                })?
                                .1
                        }
                    };
                    if matches!(status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE") {
                        bail!("the stack was meant to fail its creation but is {status}");
                    }
                    status
                }
            }
        }
    };

    let status = match &spec.failed_update_template {
        None => status,
        Some(file) => {
            let update = read_template(dir, file, secrets)?;
            if !update.contains(FAILURE_MARKER) {
                bail!("{file} must contain {FAILURE_MARKER} for its update to fail");
            }
            cfn.update_stack()
                .stack_name(&spec.name)
                .template_body(update)
                .set_parameters(Some(parameters))
                .set_capabilities(Some(capabilities.to_vec()))
                .send()
                .await
                .context("UpdateStack (meant to roll back) failed")?;
            let status = wait_for(cfn, &spec.name).await?;
            if status != "UPDATE_ROLLBACK_COMPLETE" {
                bail!(
                    "the update with {file} should have rolled back but the stack is {status} (is the local stack's launcher serving, with its failure marker?)"
                );
            }
            status
        }
    };
    let (id, _) = stack_status(cfn, &spec.name).await?;
    Ok(SeededStack {
        name: spec.name.clone(),
        id,
        status,
        template: spec.template.clone(),
        template_body: body,
    })
}

/// The stack's id and status.
async fn stack_status(cfn: &CloudFormation, name: &str) -> anyhow::Result<(String, String)> {
    let out = cfn
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .context("DescribeStacks failed")?;
    let stack = out
        .stacks()
        .first()
        .context("DescribeStacks returned no stack")?;
    Ok((
        stack.stack_id().unwrap_or_default().to_string(),
        stack
            .stack_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
    ))
}

/// Waits until the stack's status no longer ends in `_IN_PROGRESS`, and returns it.
async fn wait_for(cfn: &CloudFormation, name: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, status) = stack_status(cfn, name).await?;
        if !status.ends_with("_IN_PROGRESS") {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!("still {status} after {} s", WAIT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn read_template(
    dir: &Path,
    file: &str,
    secrets: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read template {}", path.display()))?;
    substitute(&text, secrets).with_context(|| format!("template {}", path.display()))
}

/// Replaces `@@arn:NAME@@` and `@@partial-arn:NAME@@` with the ARNs of created secrets.
pub fn substitute(text: &str, secrets: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("@@") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("@@").with_context(|| {
            format!(
                "unclosed placeholder @@{}",
                after.lines().next().unwrap_or("")
            )
        })?;
        let placeholder = &after[..close];
        let (kind, name) = placeholder
            .split_once(':')
            .with_context(|| format!("placeholder @@{placeholder}@@ is not KIND:NAME"))?;
        let arn = secrets.get(name).with_context(|| {
            format!("placeholder @@{placeholder}@@ names no secret of the manifest")
        })?;
        match kind {
            "arn" => out.push_str(arn),
            "partial-arn" => out.push_str(&Secret::from_arn(arn)?.partial_arn()),
            other => bail!(
                "placeholder @@{placeholder}@@: unknown kind {other} (expected arn or partial-arn)"
            ),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The resources of an ECS service taking `secret_arn`'s `password` by ARN
/// (`Secrets[].ValueFrom`), as most containers get secrets: a cluster `{name}-cluster`, a
/// task definition and a service `{name}-svc` running it. `mode` is the value of the
/// container's `MODE` variable: the launcher's marker `cascade-test:fail-deployment` there
/// makes its deployments fail (the circuit breaker).
pub fn ecs_service_resources(name: &str, secret_arn: &str, mode: &str) -> serde_json::Value {
    serde_json::json!({
        "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": format!("{name}-cluster")}},
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
            "Family": format!("{name}-task"),
            "ContainerDefinitions": [{
                "Name": "app", "Image": "public.ecr.aws/nginx/nginx:latest", "Memory": 128,
                "Secrets": [{"Name": "DB_PASSWORD", "ValueFrom": format!("{secret_arn}:password::")}],
                "Environment": [{"Name": "MODE", "Value": mode}]
            }]
        }},
        "Service": {"Type": "AWS::ECS::Service", "Properties": {
            "Cluster": {"Ref": "Cluster"}, "ServiceName": format!("{name}-svc"),
            "TaskDefinition": {"Ref": "Task"}, "DesiredCount": 2
        }}
    })
}

/// A stack whose resources need all three actions: an SSM parameter resolving
/// `secret_name`'s password (pin), an IAM policy scoped to the secret through the
/// parameter `DbSecretArn` (only recreate refreshes it), and the ECS service of
/// [`ecs_service_resources`] taking it by ARN (restart). Create it with `DbSecretArn` set
/// to `secret_arn` and CAPABILITY_NAMED_IAM.
pub fn mixed_actions_template(
    name: &str,
    secret_name: &str,
    secret_arn: &str,
) -> serde_json::Value {
    let mut resources = ecs_service_resources(name, secret_arn, "normal");
    let map = resources.as_object_mut().expect("an object");
    map.insert(
        "PasswordParameter".into(),
        serde_json::json!({"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": format!("/{name}/db-password"), "Type": "String",
            "Value": format!("{{{{resolve:secretsmanager:{secret_name}:SecretString:password}}}}")
        }}),
    );
    map.insert(
        "TaskRole".into(),
        serde_json::json!({"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": format!("{name}-task"),
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole"}]}
        }}),
    );
    map.insert(
        "ReadSecretPolicy".into(),
        serde_json::json!({"Type": "AWS::IAM::Policy", "Properties": {
            "PolicyName": "read-db-secret", "Roles": [{"Ref": "TaskRole"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "DbSecretArn"}}]}
        }}),
    );
    serde_json::json!({
        "Parameters": {"DbSecretArn": {"Type": "String"}},
        "Resources": resources
    })
}

/// A template of one SSM parameter, `/{name}/password`, whose value is `reference` (a
/// dynamic reference), with `extra` template text (say, `Metadata`) after it.
pub fn parameter_template(name: &str, reference: &str, extra: &str) -> String {
    format!(
        "Resources:\n  Param:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /{name}/password\n      Type: String\n      Value: '{reference}'\n{extra}"
    )
}

/// Creates the stack `name` of [`parameter_template`], tagged with `tags`.
pub async fn create_parameter_stack(
    cfn: &CloudFormation,
    name: &str,
    reference: &str,
    extra: &str,
    tags: &[(&str, &str)],
) -> anyhow::Result<()> {
    cfn.create_stack()
        .stack_name(name)
        .template_body(parameter_template(name, reference, extra))
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .send()
        .await
        .with_context(|| format!("CreateStack {name}"))?;
    Ok(())
}

/// The stack's template now, as CloudFormation gives it.
pub async fn stack_template(cfn: &CloudFormation, name: &str) -> anyhow::Result<String> {
    let out = cfn
        .get_template()
        .stack_name(name)
        .send()
        .await
        .with_context(|| format!("GetTemplate {name}"))?;
    Ok(out.template_body().unwrap_or_default().to_string())
}

/// The logical ids of the stack's resources, sorted.
pub async fn stack_resource_ids(cfn: &CloudFormation, name: &str) -> anyhow::Result<Vec<String>> {
    let out = cfn
        .list_stack_resources()
        .stack_name(name)
        .send()
        .await
        .with_context(|| format!("ListStackResources {name}"))?;
    let mut ids: Vec<String> = out
        .stack_resource_summaries()
        .iter()
        .filter_map(|r| r.logical_resource_id())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_arns() {
        let secrets = BTreeMap::from([(
            "prod/db".to_string(),
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf".to_string(),
        )]);
        assert_eq!(
            substitute("a @@arn:prod/db@@ b @@partial-arn:prod/db@@", &secrets).unwrap(),
            "a arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf b arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db"
        );
        assert!(substitute("@@arn:nope@@", &secrets).is_err());
        assert!(substitute("@@arn:prod/db", &secrets).is_err());
        assert!(substitute("@@sideways:prod/db@@", &secrets).is_err());
        assert_eq!(
            substitute("no placeholder", &secrets).unwrap(),
            "no placeholder"
        );
    }

    #[test]
    fn the_plan_manifest_is_valid_and_its_templates_exist() {
        let dir = plan_dir();
        let manifest = load_manifest(&dir).unwrap();
        assert!(
            manifest.stacks.len() >= 40,
            "{} stacks",
            manifest.stacks.len()
        );
        for stack in &manifest.stacks {
            for file in std::iter::once(&stack.template).chain(&stack.failed_update_template) {
                assert!(
                    dir.join(file).is_file(),
                    "{}: {file} is missing",
                    stack.name
                );
            }
        }
    }
}
