//! Deploys to the local AWS stack what `template.yaml` creates: the ticket queue and its
//! dead-letter queue, the EventBridge rule, the report bucket, and the state machine from
//! the real `statemachine.asl.json` with its substitutions. Everything is read from
//! `template.yaml` itself (logical ids, the rule's event pattern, queue settings,
//! substitutions), so this mirror cannot drift from the template unnoticed.
//!
//! The Lambda functions are not created: the launcher forwards every invoke to the local
//! Lambda server by function name.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use aws_config::SdkConfig;
use cascade_core::template::read_template;
use cascade_lambda::{Function, FunctionConfig, FunctionContext};
use serde_json::Value;

use crate::{ACCOUNT, REGION, workspace_root};

/// Prefix of every local name (the stack name a `sam deploy` would use).
pub const STACK_NAME: &str = "secret-cascade";

/// Logical ids of template.yaml that the local deployment creates, and of the functions.
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
    /// The functions, by the binary they run.
    pub const FUNCTIONS: [(&str, cascade_lambda::Function); 5] = [
        ("GatekeeperFunction", cascade_lambda::Function::Gatekeeper),
        ("DiscoverFunction", cascade_lambda::Function::Discover),
        ("RefreshFunction", cascade_lambda::Function::Refresh),
        ("ReportFunction", cascade_lambda::Function::Report),
        ("NotifyFunction", cascade_lambda::Function::Notify),
    ];
}

/// What was deployed.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The ticket queue's URL.
    pub queue_url: String,
    /// The dead-letter queue's URL.
    pub dead_letter_url: String,
    /// The state machine's ARN.
    pub state_machine_arn: String,
    /// The report bucket.
    pub bucket: String,
    /// The rule's name.
    pub rule_name: String,
}

/// Options of a local deployment.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// The secret holding the Slack webhook URL (the NotifyFunction's configuration).
    pub slack_webhook_secret: Option<String>,
    /// Seconds between two looks at an updating stack (the gatekeeper's PollSeconds).
    pub poll_seconds: u32,
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

/// The local name of a resource: `secret-cascade-<LogicalId>` (FIFO queues end in `.fifo`).
pub fn local_name(id: &str) -> String {
    format!("{STACK_NAME}-{id}")
}

/// The ARN a function has locally, `...:function:secret-cascade-<binary>`; the launcher
/// forwards its invokes by name and the local Lambda server runs that binary's handler.
pub fn function_arn(logical_id: &str) -> String {
    let binary = logical::FUNCTIONS
        .iter()
        .find(|(id, _)| *id == logical_id)
        .map_or(logical_id, |(_, function)| function.name());
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{binary}")
}

/// The state machine definition with its DefinitionSubstitutions from template.yaml.
pub fn state_machine_definition(template: &Value) -> anyhow::Result<String> {
    let mut definition = std::fs::read_to_string(state_machine_path())?;
    let substitutions = resource(template, logical::STATE_MACHINE)?
        .pointer("/Properties/DefinitionSubstitutions")
        .and_then(Value::as_object)
        .context("StateMachine has no DefinitionSubstitutions")?;
    for (name, value) in substitutions {
        let target = value
            .pointer("/Fn::GetAtt/0")
            .and_then(Value::as_str)
            .with_context(|| format!("substitution {name} is not a !GetAtt of a function"))?;
        definition = definition.replace(&format!("${{{name}}}"), &function_arn(target));
    }
    if let Some(left) = definition.find("${") {
        bail!(
            "statemachine.asl.json has a placeholder without a substitution near: {}",
            &definition[left..(left + 40).min(definition.len())]
        );
    }
    Ok(definition)
}

/// Creates the resources in the local stack.
pub async fn deploy(config: &SdkConfig) -> anyhow::Result<Deployment> {
    let template = template()?;
    let sqs = aws_sdk_sqs::Client::new(config);
    let s3 = aws_sdk_s3::Client::new(config);
    let events = aws_sdk_eventbridge::Client::new(config);
    let sfn = aws_sdk_sfn::Client::new(config);

    // The bucket.
    let bucket = local_name(logical::BUCKET).to_lowercase();
    resource(&template, logical::BUCKET)?;
    s3.create_bucket().bucket(&bucket).send().await?;

    // The queues, with the template's settings.
    let queue = resource(&template, logical::TICKET_QUEUE)?;
    let dlq_name = format!("{}.fifo", local_name(logical::DEAD_LETTER_QUEUE));
    let dead_letter_url = sqs
        .create_queue()
        .queue_name(&dlq_name)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await?
        .queue_url()
        .context("no DLQ URL")?
        .to_string();
    let dlq_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{dlq_name}");
    let max_receive = queue
        .pointer("/Properties/RedrivePolicy/maxReceiveCount")
        .and_then(Value::as_u64)
        .context("TicketQueue has no maxReceiveCount")?;
    let visibility = queue
        .pointer("/Properties/VisibilityTimeout")
        .and_then(Value::as_u64)
        .context("TicketQueue has no VisibilityTimeout")?;
    let queue_name = format!("{}.fifo", local_name(logical::TICKET_QUEUE));
    let mut attributes = BTreeMap::new();
    attributes.insert("FifoQueue", "true".to_string());
    attributes.insert("ContentBasedDeduplication", "true".to_string());
    attributes.insert("VisibilityTimeout", visibility.to_string());
    attributes.insert(
        "RedrivePolicy",
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})
            .to_string(),
    );
    let mut create = sqs.create_queue().queue_name(&queue_name);
    for (k, v) in attributes {
        create = create.attributes(aws_sdk_sqs::types::QueueAttributeName::from(k), v);
    }
    let queue_url = create
        .send()
        .await?
        .queue_url()
        .context("no queue URL")?
        .to_string();
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}");

    // The rule, with the template's event pattern (no name filter: the parameter's default).
    let rule = resource(&template, logical::LABEL_RULE)?;
    let mut pattern = rule
        .pointer("/Properties/EventPattern")
        .cloned()
        .context("SecretLabelUpdatedRule has no EventPattern")?;
    if let Some(detail) = pattern.get_mut("detail").and_then(Value::as_object_mut) {
        detail.retain(|_, v| v.get("Fn::If").is_none());
    }
    let group = rule
        .pointer("/Properties/Targets/0/SqsParameters/MessageGroupId")
        .and_then(Value::as_str)
        .context("SecretLabelUpdatedRule's target has no MessageGroupId")?;
    let rule_name = local_name(logical::LABEL_RULE);
    events
        .put_rule()
        .name(&rule_name)
        .event_pattern(pattern.to_string())
        .send()
        .await?;
    events
        .put_targets()
        .rule(&rule_name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("ticket-queue")
                .arn(&queue_arn)
                .sqs_parameters(
                    aws_sdk_eventbridge::types::SqsParameters::builder()
                        .message_group_id(group)
                        .build(),
                )
                .build()?,
        )
        .send()
        .await?;

    // The state machine, from the real definition.
    let definition = state_machine_definition(&template)?;
    let state_machine_arn = sfn
        .create_state_machine()
        .name(local_name(logical::STATE_MACHINE))
        .definition(definition)
        .role_arn(format!(
            "arn:aws:iam::{ACCOUNT}:role/{}",
            local_name("StateMachineRole")
        ))
        .send()
        .await?
        .state_machine_arn()
        .to_string();

    Ok(Deployment {
        queue_url,
        dead_letter_url,
        state_machine_arn,
        bucket,
        rule_name,
    })
}

/// The context each function runs with in this deployment (what template.yaml's
/// environment variables give them in AWS).
pub fn function_contexts(
    deployment: &Deployment,
    clients: &cascade_aws::Clients,
    options: &DeployOptions,
) -> anyhow::Result<Vec<FunctionContext>> {
    let env = |function: Function| -> BTreeMap<&'static str, String> {
        let mut env = BTreeMap::new();
        env.insert("CASCADE_BUCKET", deployment.bucket.clone());
        if function == Function::Gatekeeper {
            env.insert("CASCADE_QUEUE_URL", deployment.queue_url.clone());
            env.insert(
                "CASCADE_STATE_MACHINE_ARN",
                deployment.state_machine_arn.clone(),
            );
            env.insert(
                "CASCADE_POLL_SECONDS",
                options.poll_seconds.max(1).to_string(),
            );
        }
        if let Some(secret) = &options.slack_webhook_secret {
            env.insert("CASCADE_SLACK_WEBHOOK_SECRET_ARN", secret.clone());
        }
        env
    };
    logical::FUNCTIONS
        .iter()
        .map(|(_, function)| {
            let env = env(*function);
            let config = FunctionConfig::from_lookup(*function, |k| env.get(k).cloned())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            FunctionContext::new(config, clients.clone()).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mirrored_logical_id_is_in_the_template() {
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
    fn the_definition_has_every_placeholder_substituted() {
        let definition = state_machine_definition(&template().unwrap()).unwrap();
        assert!(!definition.contains("${"));
        assert!(definition.contains(&function_arn("RefreshFunction")));
    }
}
