//! Deploys `template.yaml` to the local AWS stack as `sam deploy` deploys it to AWS:
//!
//! 1. the artifacts go to an S3 bucket and the template is packaged to point at them
//!    (what `sam package` does: each function's `CodeUri` and the state machine's
//!    `DefinitionUri` become S3 locations);
//! 2. a CREATE change set of the packaged template, with its `Transform:
//!    AWS::Serverless-2016-10-31` and CAPABILITY_AUTO_EXPAND, is created and executed;
//!    CloudFormation (moto's, with the launcher applying the pinned SAM transform where
//!    AWS would) creates every resource: queues, rules, alarm, bucket and policies, log
//!    groups, roles, functions, the state machine with its substitutions;
//! 3. what was deployed is read from the stack's outputs.
//!
//! The functions' code is a placeholder archive unless [`DeployOptions::code`] names the
//! `sam build` artifact: the launcher forwards every invoke to the local Lambda server,
//! which runs the real handler in-process with the function's deployed Handler,
//! environment and role credentials (see `lambda_server`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use aws_config::SdkConfig;
use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, StackStatus};
use cascade_core::template::read_template;
use cascade_lambda::Function;
use serde_json::{Value, json};

use crate::workspace_root;

/// The stack name (samconfig.toml's `stack_name`).
pub const STACK_NAME: &str = "secret-cascade";
/// The bucket the artifacts are uploaded to (`sam deploy --resolve-s3` makes one like it).
pub const ARTIFACT_BUCKET: &str = "secret-cascade-artifacts";
/// An empty ZIP archive (only its end-of-central-directory record): the functions' code
/// when no `sam build` artifact is given. Nothing runs it; see the module comment.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Logical ids of template.yaml that the tests read.
pub mod logical {
    /// The FIFO ticket queue.
    pub const TICKET_QUEUE: &str = "TicketQueue";
    /// Its dead-letter queue.
    pub const DEAD_LETTER_QUEUE: &str = "TicketDeadLetterQueue";
    /// The rule turning `Secret Label Updated` events into tickets.
    pub const LABEL_RULE: &str = "SecretLabelUpdatedRule";
    /// The state machine.
    pub const STATE_MACHINE: &str = "StateMachine";
    /// The report bucket.
    pub const BUCKET: &str = "ReportBucket";
    /// The functions, by the function their Handler selects.
    pub const FUNCTIONS: [(&str, cascade_lambda::Function); 5] = [
        ("GatekeeperFunction", cascade_lambda::Function::Gatekeeper),
        ("DiscoverFunction", cascade_lambda::Function::Discover),
        ("RefreshFunction", cascade_lambda::Function::Refresh),
        ("ReportFunction", cascade_lambda::Function::Report),
        ("NotifyFunction", cascade_lambda::Function::Notify),
    ];
}

/// What was deployed, from the stack's outputs.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The stack's id.
    pub stack_id: String,
    /// The ticket queue's URL.
    pub queue_url: String,
    /// The dead-letter queue's URL.
    pub dead_letter_url: String,
    /// The state machine's ARN.
    pub state_machine_arn: String,
    /// The report bucket.
    pub bucket: String,
    /// The label rule's name.
    pub rule_name: String,
    /// Each function's deployed name.
    pub functions: Vec<(Function, String)>,
}

impl Deployment {
    /// The deployed name of `function`.
    pub fn function_name(&self, function: Function) -> &str {
        self.functions
            .iter()
            .find(|(f, _)| *f == function)
            .map(|(_, name)| name.as_str())
            .expect("every function is deployed")
    }
}

/// Options of a deployment: template parameters and what is deployed.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// `SlackWebhookSecretArn`: the secret holding the Slack webhook URL.
    pub slack_webhook_secret: Option<String>,
    /// `PollSeconds`: seconds between two looks at an updating stack (0: the default).
    pub poll_seconds: u32,
    /// The template to deploy instead of template.yaml (long form), e.g. one with an
    /// action removed from a role ([`without_action`]).
    pub template: Option<Value>,
    /// The `sam build` artifact directory of the functions' code (holding `bootstrap`),
    /// zipped and uploaded as `sam package` does; without it, a placeholder archive.
    pub code: Option<PathBuf>,
}

/// template.yaml, read into long-form JSON.
pub fn template() -> anyhow::Result<Value> {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    read_template(&text).map_err(|e| anyhow::anyhow!("template.yaml: {e}"))
}

/// statemachine.asl.json's path.
pub fn state_machine_path() -> PathBuf {
    workspace_root().join("statemachine.asl.json")
}

fn resource<'t>(template: &'t Value, id: &str) -> anyhow::Result<&'t Value> {
    template
        .pointer(&format!("/Resources/{id}"))
        .with_context(|| format!("template.yaml has no resource {id}"))
}

/// The state machine's name as deployed under [`STACK_NAME`] (template.yaml names it,
/// so that its role can name its child executions).
pub fn state_machine_name(template: &Value) -> anyhow::Result<String> {
    let name = resource(template, logical::STATE_MACHINE)?
        .pointer("/Properties/Name/Fn::Sub")
        .and_then(Value::as_str)
        .context("StateMachine's Name is not a !Sub")?;
    Ok(name.replace("${AWS::StackName}", STACK_NAME))
}

/// The template as `sam package` leaves it: every function's code (its own `CodeUri` or
/// the Globals one) and the state machine's definition at the given S3 locations.
pub fn package(mut template: Value, code_key: &str, definition_key: &str) -> Value {
    let code_uri = json!(format!("s3://{ARTIFACT_BUCKET}/{code_key}"));
    if let Some(globals) = template.pointer_mut("/Globals/Function/CodeUri") {
        *globals = code_uri.clone();
    }
    if let Some(resources) = template.get_mut("Resources").and_then(Value::as_object_mut) {
        for body in resources.values_mut() {
            let kind = body
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(properties) = body.get_mut("Properties").and_then(Value::as_object_mut) else {
                continue;
            };
            match kind.as_str() {
                "AWS::Serverless::Function" if properties.contains_key("CodeUri") => {
                    properties.insert("CodeUri".into(), code_uri.clone());
                }
                "AWS::Serverless::StateMachine" if properties.contains_key("DefinitionUri") => {
                    properties.insert(
                        "DefinitionUri".into(),
                        json!({"Bucket": ARTIFACT_BUCKET, "Key": definition_key}),
                    );
                }
                _ => {}
            }
        }
    }
    template
}

/// `template` with `action` taken out of the inline policies of resource `logical_id` (a
/// function or the state machine). An error when no statement of it grants that action, so
/// a test built on it cannot pass by removing nothing.
pub fn without_action(
    mut template: Value,
    logical_id: &str,
    action: &str,
) -> anyhow::Result<Value> {
    let policies = template
        .pointer_mut(&format!("/Resources/{logical_id}/Properties/Policies"))
        .and_then(Value::as_array_mut)
        .with_context(|| format!("{logical_id} has no Policies"))?;
    let mut removed = 0;
    for policy in policies.iter_mut() {
        let Some(statements) = policy.get_mut("Statement").and_then(Value::as_array_mut) else {
            continue;
        };
        for statement in statements.iter_mut() {
            match statement.get_mut("Action") {
                Some(Value::Array(actions)) => {
                    let before = actions.len();
                    actions.retain(|a| a.as_str() != Some(action));
                    removed += before - actions.len();
                }
                Some(Value::String(one)) if one == action => {
                    statement["Action"] = json!([]);
                    removed += 1;
                }
                _ => {}
            }
        }
        statements.retain(|s| s.get("Action") != Some(&json!([])));
    }
    if removed == 0 {
        bail!("no policy statement of {logical_id} grants {action}");
    }
    Ok(template)
}

/// Deploys the template to the local stack as `sam deploy` does (see the module comment)
/// and returns what was deployed.
pub async fn deploy(config: &SdkConfig, options: &DeployOptions) -> anyhow::Result<Deployment> {
    let template = match &options.template {
        Some(template) => template.clone(),
        None => template()?,
    };
    let s3 = aws_sdk_s3::Client::new(config);
    let cfn = aws_sdk_cloudformation::Client::new(config);

    // `sam package`: the artifacts to S3, the template pointing at them.
    s3.create_bucket().bucket(ARTIFACT_BUCKET).send().await?;
    let code = match &options.code {
        Some(dir) => zip_artifact(dir)?,
        None => EMPTY_ZIP.to_vec(),
    };
    let (code_key, definition_key) = ("cascade-lambda.zip", "statemachine.asl.json");
    s3.put_object()
        .bucket(ARTIFACT_BUCKET)
        .key(code_key)
        .body(code.into())
        .send()
        .await?;
    s3.put_object()
        .bucket(ARTIFACT_BUCKET)
        .key(definition_key)
        .body(std::fs::read(state_machine_path())?.into())
        .send()
        .await?;
    let packaged = package(template, code_key, definition_key);

    // `sam deploy`: a CREATE change set through the transform, executed.
    let mut parameters = Vec::new();
    if let Some(secret) = &options.slack_webhook_secret {
        parameters.push(("SlackWebhookSecretArn", secret.clone()));
    }
    if options.poll_seconds > 0 {
        parameters.push(("PollSeconds", options.poll_seconds.to_string()));
    }
    let created = cfn
        .create_change_set()
        .stack_name(STACK_NAME)
        .change_set_name(format!("{STACK_NAME}-deploy"))
        .change_set_type(ChangeSetType::Create)
        .template_body(packaged.to_string())
        .set_parameters(Some(
            parameters
                .into_iter()
                .map(|(k, v)| {
                    Parameter::builder()
                        .parameter_key(k)
                        .parameter_value(v)
                        .build()
                })
                .collect(),
        ))
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .capabilities(Capability::CapabilityAutoExpand)
        .send()
        .await
        .map_err(|e| {
            let body = e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            anyhow::anyhow!("CreateChangeSet of the template (through the SAM transform): {body}")
        })?;
    let change_set = created.id().context("no change set id")?;
    cfn.execute_change_set()
        .change_set_name(change_set)
        .send()
        .await?;
    read_deployment(config).await
}

/// Deploys a `sam build` output directory (its `template.yaml` points at the built
/// artifacts) with `sam deploy` itself, the command users run, pointed at the local stack
/// (`AWS_ENDPOINT_URL`); then reads what was deployed.
pub async fn sam_deploy(
    config: &SdkConfig,
    endpoint: &str,
    build_dir: &Path,
    options: &DeployOptions,
) -> anyhow::Result<Deployment> {
    let template = build_dir.join("template.yaml");
    if !template.exists() {
        bail!(
            "{} does not exist: run `make sam-build` (sam build) first",
            template.display()
        );
    }
    aws_sdk_s3::Client::new(config)
        .create_bucket()
        .bucket(ARTIFACT_BUCKET)
        .send()
        .await?;
    let mut overrides = Vec::new();
    if let Some(secret) = &options.slack_webhook_secret {
        overrides.push(format!("SlackWebhookSecretArn={secret}"));
    }
    if options.poll_seconds > 0 {
        overrides.push(format!("PollSeconds={}", options.poll_seconds));
    }
    // The architecture the artifact was built for (make's ARCH; empty: the default).
    if let Some(architecture) = std::env::var("CASCADE_SAM_ARCHITECTURE")
        .ok()
        .filter(|a| !a.is_empty())
    {
        overrides.push(format!("Architecture={architecture}"));
    }
    let sam = workspace_root().join("infra/tools/.venv/bin/sam");
    let mut command = tokio::process::Command::new(&sam);
    command
        .args(["deploy", "--template-file"])
        .arg(&template)
        .args([
            "--stack-name",
            STACK_NAME,
            "--s3-bucket",
            ARTIFACT_BUCKET,
            "--region",
            crate::REGION,
            "--capabilities",
            "CAPABILITY_IAM",
            "CAPABILITY_NAMED_IAM",
            "CAPABILITY_AUTO_EXPAND",
            "--no-confirm-changeset",
            "--no-fail-on-empty-changeset",
        ])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SAM_CLI_TELEMETRY", "0")
        .current_dir(build_dir);
    if !overrides.is_empty() {
        command.arg("--parameter-overrides").args(&overrides);
    }
    let out = command.output().await.with_context(|| {
        format!(
            "cannot run {} (infra/tools/bootstrap installs it)",
            sam.display()
        )
    })?;
    if !out.status.success() {
        bail!(
            "sam deploy failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    read_deployment(config).await
}

/// What the stack [`STACK_NAME`] deployed, from its outputs; an error unless it is
/// CREATE_COMPLETE or UPDATE_COMPLETE.
pub async fn read_deployment(config: &SdkConfig) -> anyhow::Result<Deployment> {
    let cfn = aws_sdk_cloudformation::Client::new(config);
    let stack = cfn
        .describe_stacks()
        .stack_name(STACK_NAME)
        .send()
        .await?
        .stacks()
        .first()
        .cloned()
        .context("the stack was not created")?;
    if !matches!(
        stack.stack_status(),
        Some(StackStatus::CreateComplete | StackStatus::UpdateComplete)
    ) {
        bail!(
            "the stack ended {:?}: {}",
            stack.stack_status(),
            stack.stack_status_reason().unwrap_or_default()
        );
    }
    let output = |key: &str| -> anyhow::Result<String> {
        stack
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .map(str::to_string)
            .with_context(|| format!("the stack has no output {key}"))
    };
    let rule_name = cfn
        .describe_stack_resource()
        .stack_name(STACK_NAME)
        .logical_resource_id(logical::LABEL_RULE)
        .send()
        .await?
        .stack_resource_detail()
        .and_then(|r| r.physical_resource_id())
        .context("the label rule has no physical id")?
        .to_string();
    let functions = logical::FUNCTIONS
        .iter()
        .map(|(id, function)| Ok((*function, output(&format!("{id}Name"))?)))
        .collect::<anyhow::Result<_>>()?;
    Ok(Deployment {
        stack_id: stack.stack_id().unwrap_or_default().to_string(),
        queue_url: output("TicketQueueUrl")?,
        dead_letter_url: output("TicketDeadLetterQueueUrl")?,
        state_machine_arn: output("StateMachineArn")?,
        bucket: output("ReportBucketName")?,
        rule_name,
        functions,
    })
}

/// The artifact directory zipped, as `sam package` zips a function's `CodeUri` (Python's
/// zipfile, which SAM CLI uses too: `bootstrap` keeps its executable bit).
fn zip_artifact(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let base = std::env::temp_dir().join(format!("cascade-artifact-{}", std::process::id()));
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import shutil, sys; shutil.make_archive(sys.argv[1], 'zip', sys.argv[2])",
        ])
        .arg(&base)
        .arg(dir)
        .status()
        .context("cannot run python3 to zip the artifact")?;
    let archive = base.with_extension("zip");
    if !status.success() {
        bail!("zipping {} failed", dir.display());
    }
    let bytes = std::fs::read(&archive)?;
    let _ = std::fs::remove_file(&archive);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_builds_the_one_binary_and_serves_its_own_handler() {
        let t = template().unwrap();
        for id in [
            logical::TICKET_QUEUE,
            logical::DEAD_LETTER_QUEUE,
            logical::LABEL_RULE,
            logical::STATE_MACHINE,
            logical::BUCKET,
        ] {
            assert!(resource(&t, id).is_ok(), "{id}");
        }
        for (id, function) in logical::FUNCTIONS {
            let body = resource(&t, id).unwrap();
            // One binary for all: built once, the function chosen by its Handler.
            assert_eq!(
                body.pointer("/Metadata/BuildProperties/Binary")
                    .and_then(Value::as_str),
                Some("cascade-lambda"),
                "{id}"
            );
            let handler = body.pointer("/Properties/Handler").and_then(Value::as_str);
            assert_eq!(
                cascade_lambda::Function::from_handler(handler),
                Ok(function),
                "{id} serves {}",
                function.name()
            );
            // The stack's outputs name every function (the deployment reads them).
            assert!(t.pointer(&format!("/Outputs/{id}Name")).is_some(), "{id}");
        }
    }

    /// Every `${Placeholder}` of statemachine.asl.json has a DefinitionSubstitutions entry in
    /// template.yaml, and every entry is used by the definition.
    #[test]
    fn placeholders_and_substitutions_match_both_ways() {
        let definition = std::fs::read_to_string(state_machine_path()).unwrap();
        let mut placeholders = std::collections::BTreeSet::new();
        let mut rest = definition.as_str();
        while let Some(start) = rest.find("${") {
            let end = rest[start..].find('}').expect("closed placeholder") + start;
            placeholders.insert(rest[start + 2..end].to_string());
            rest = &rest[end + 1..];
        }
        let t = template().unwrap();
        let substitutions: std::collections::BTreeSet<String> =
            resource(&t, logical::STATE_MACHINE)
                .unwrap()
                .pointer("/Properties/DefinitionSubstitutions")
                .and_then(Value::as_object)
                .unwrap()
                .keys()
                .cloned()
                .collect();
        assert!(!placeholders.is_empty());
        assert_eq!(placeholders, substitutions);
    }

    #[test]
    fn packaging_points_the_code_and_the_definition_at_s3() {
        let packaged = package(template().unwrap(), "code.zip", "def.json");
        assert_eq!(
            packaged["Globals"]["Function"]["CodeUri"],
            json!(format!("s3://{ARTIFACT_BUCKET}/code.zip"))
        );
        assert_eq!(
            packaged["Resources"]["StateMachine"]["Properties"]["DefinitionUri"],
            json!({"Bucket": ARTIFACT_BUCKET, "Key": "def.json"})
        );
        assert_eq!(
            state_machine_name(&packaged).unwrap(),
            format!("{STACK_NAME}-cascade")
        );
    }

    /// The README's IAM table says exactly what template.yaml grants, statement by
    /// statement (the why column is free text); on a difference, the expected rows are
    /// printed in the table's format.
    #[test]
    fn the_readme_iam_table_is_what_the_template_grants() {
        let expected = iam_rows(&template().unwrap()).unwrap();
        let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
        let documented = readme_iam_rows(&readme).unwrap();
        let show = |rows: &[IamRow]| {
            rows.iter()
                .map(|r| {
                    let tick = |items: &[String]| {
                        items
                            .iter()
                            .map(|i| format!("`{i}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    format!(
                        "| `{}` | {} | {} | {} | ... |",
                        r.principal,
                        r.sid,
                        tick(&r.actions),
                        tick(&r.resources)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            documented,
            expected,
            "README.md's IAM table should be:\n{}",
            show(&expected)
        );
        assert!(expected.len() > 10, "every function's statements are read");
    }

    #[test]
    fn an_action_is_removed_from_one_role_only_when_it_is_granted() {
        let t = template().unwrap();
        let edited = without_action(
            t.clone(),
            "RefreshFunction",
            "cloudformation:CreateChangeSet",
        )
        .unwrap();
        let text = edited["Resources"]["RefreshFunction"].to_string();
        assert!(!text.contains("cloudformation:CreateChangeSet"));
        assert!(text.contains("cloudformation:ExecuteChangeSet"));
        assert!(without_action(t, "ReportFunction", "cloudformation:CreateChangeSet").is_err());
    }
}

/// One statement of a role's inline policy in template.yaml, as the README's IAM table shows
/// it: whose role, its Sid, its actions and its resources (`*`, an ARN pattern, or the
/// intrinsic that gives it, e.g. `!GetAtt TicketQueue.Arn`), and the condition that
/// includes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IamRow {
    /// The function (`gatekeeper`, ...) or `state machine`.
    pub principal: String,
    /// The statement's Sid.
    pub sid: String,
    /// Its actions, as written.
    pub actions: Vec<String>,
    /// Its resources, rendered.
    pub resources: Vec<String>,
}

/// Every inline policy statement of the functions and the state machine in `template`
/// (statements under `!If [Condition, ...]` are included, their Sid followed by
/// ` (if Condition)`).
pub fn iam_rows(template: &Value) -> anyhow::Result<Vec<IamRow>> {
    fn render(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Object(map) => match map.iter().next() {
                Some((k, v)) if k == "Ref" => format!("!Ref {}", render(v)),
                Some((k, Value::Array(parts))) if k == "Fn::GetAtt" => format!(
                    "!GetAtt {}",
                    parts.iter().map(render).collect::<Vec<_>>().join(".")
                ),
                Some((k, v)) if k == "Fn::Sub" => format!("!Sub {}", render(v)),
                _ => value.to_string(),
            },
            other => other.to_string(),
        }
    }
    fn strings(value: Option<&Value>) -> Vec<String> {
        match value {
            Some(Value::Array(items)) => items.iter().map(render).collect(),
            Some(one) => vec![render(one)],
            None => Vec::new(),
        }
    }
    let mut principals: Vec<(String, &str)> = logical::FUNCTIONS
        .iter()
        .map(|(id, function)| (function.name().to_string(), *id))
        .collect();
    principals.push(("state machine".to_string(), logical::STATE_MACHINE));
    let mut rows = Vec::new();
    for (principal, id) in principals {
        let policies = resource(template, id)?
            .pointer("/Properties/Policies")
            .and_then(Value::as_array)
            .with_context(|| format!("{id} has no Policies"))?;
        for policy in policies {
            for statement in policy
                .get("Statement")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (statement, condition) = match statement.pointer("/Fn::If") {
                    Some(Value::Array(branches)) if branches.len() == 3 => (
                        &branches[1],
                        Some(branches[0].as_str().unwrap_or_default().to_string()),
                    ),
                    _ => (statement, None),
                };
                let sid = statement
                    .get("Sid")
                    .and_then(Value::as_str)
                    .with_context(|| format!("a statement of {id} has no Sid"))?;
                rows.push(IamRow {
                    principal: principal.clone(),
                    sid: match condition {
                        Some(c) => format!("{sid} (if {c})"),
                        None => sid.to_string(),
                    },
                    actions: strings(statement.get("Action")),
                    resources: strings(statement.get("Resource")),
                });
            }
        }
    }
    Ok(rows)
}

/// The rows of the README's IAM table (between `<!-- iam-table -->` and
/// `<!-- /iam-table -->`): columns principal, Sid, actions, resources (backquoted,
/// comma-separated), then a free-text why.
pub fn readme_iam_rows(readme: &str) -> anyhow::Result<Vec<IamRow>> {
    let start = readme
        .find("<!-- iam-table -->")
        .context("README.md has no <!-- iam-table --> marker")?;
    let end = readme[start..]
        .find("<!-- /iam-table -->")
        .context("README.md has no <!-- /iam-table --> marker")?
        + start;
    let list = |cell: &str| -> Vec<String> {
        cell.split(", ")
            .map(|item| item.trim().trim_matches('`').to_string())
            .filter(|item| !item.is_empty())
            .collect()
    };
    Ok(readme[start..end]
        .lines()
        .filter(|line| line.starts_with('|') && !line.starts_with("|---"))
        .skip(1) // the header
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells.len() >= 4).then(|| IamRow {
                principal: cells[0].trim_matches('`').to_string(),
                sid: cells[1].to_string(),
                actions: list(cells[2]),
                resources: list(cells[3]),
            })
        })
        .collect())
}
