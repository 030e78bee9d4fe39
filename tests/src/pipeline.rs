//! The whole local pipeline, brought up in one call: the local Lambda server (the real
//! handlers), a local stack forwarding Lambda invokes to it with IAM enforced, and
//! template.yaml deployed to it through the SAM transform (`deploy`). Used by the pipeline
//! tests, the mocked state machine tests, the demo and the pipeline benchmark.

use std::path::PathBuf;

use anyhow::Context as _;
use aws_config::SdkConfig;
use cascade_aws::Clients;
use cascade_lambda::Function;
use serde_json::{Value, json};

use crate::deploy::{self, DeployOptions, Deployment};
use crate::lambda_server::LambdaServer;
use crate::{LocalStack, LocalStackOptions};

/// A running local pipeline.
pub struct LocalPipeline {
    /// The local Lambda server.
    pub lambda: LambdaServer,
    /// The local stack.
    pub local: LocalStack,
    /// SDK configuration for the local stack (the local administrator: everything but the
    /// deployed functions and the state machine, which act with their own roles).
    pub config: SdkConfig,
    /// Secret Cascade's clients for the local stack, as the local administrator.
    pub clients: Clients,
    /// What was deployed.
    pub deployment: Deployment,
}

/// How to bring up a local pipeline.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Step Functions mock config file.
    pub sfn_mock_config: Option<PathBuf>,
    /// The Slack webhook URL: stored in a secret (`secret-cascade/slack`) before the
    /// deployment, whose ARN becomes the `SlackWebhookSecretArn` parameter.
    pub slack_webhook_url: Option<String>,
    /// The deployment's options (the Slack secret is filled in from `slack_webhook_url`).
    pub deploy: DeployOptions,
    /// Leave IAM unenforced (moto's default). The pipeline enforces it unless told.
    pub without_iam_enforcement: bool,
    /// A `sam build` output directory: deploy it with `sam deploy` itself instead of
    /// packaging template.yaml here.
    pub sam_build: Option<PathBuf>,
    /// Requests the local stack answers as unavailable (see `LocalStackOptions`).
    pub unavailable: Option<String>,
    /// Requests the local stack answers as throttled (see `LocalStackOptions`).
    pub throttle: Option<String>,
}

impl PipelineOptions {
    /// A pipeline that posts to the Slack webhook `url` and looks at an update every
    /// second (`PollSeconds` 1).
    pub fn notifying(url: &str) -> Self {
        PipelineOptions {
            slack_webhook_url: Some(url.to_string()),
            deploy: DeployOptions {
                poll_seconds: 1,
                ..DeployOptions::default()
            },
            ..PipelineOptions::default()
        }
    }
}

impl LocalPipeline {
    /// Starts the Lambda server and a local stack, then deploys template.yaml.
    pub async fn start(options: PipelineOptions) -> anyhow::Result<Self> {
        let lambda = LambdaServer::start().await?;
        let stack_options = LocalStackOptions {
            lambda_forward_url: Some(lambda.url.clone()),
            sfn_mock_config: options.sfn_mock_config.clone(),
            iam_enforcement: !options.without_iam_enforcement,
            unavailable: options.unavailable.clone(),
            throttle: options.throttle.clone(),
        };
        let local =
            tokio::task::spawn_blocking(move || LocalStack::start_with(&stack_options)).await??;
        let config = local.sdk_config().await;
        let clients = local.clients().await;
        let mut deploy_options = options.deploy.clone();
        if let Some(url) = &options.slack_webhook_url {
            let secret = clients
                .secrets
                .create_secret()
                .name("secret-cascade/slack")
                .secret_string(json!({ "webhook_url": url }).to_string())
                .send()
                .await
                .context("cannot create the Slack webhook secret")?;
            deploy_options.slack_webhook_secret = secret.arn().map(str::to_string);
        }
        let deployment = match &options.sam_build {
            Some(dir) => deploy::sam_deploy(&config, &local.endpoint, dir, &deploy_options).await,
            None => deploy::deploy(&config, &deploy_options).await,
        };
        let deployment = deployment
            .map_err(|e| e.context(format!("the local stack's log ends:\n{}", local.log_tail())))?;
        Ok(LocalPipeline {
            lambda,
            local,
            config,
            clients,
            deployment,
        })
    }

    /// Deploys the deployed definition with its map run INLINE (same states, same role),
    /// so that each iteration's states show in the execution history; returns its ARN.
    pub async fn deploy_inline_twin(&self, name: &str) -> anyhow::Result<String> {
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        let deployed = sfn
            .describe_state_machine()
            .state_machine_arn(&self.deployment.state_machine_arn)
            .send()
            .await?;
        let out = sfn
            .create_state_machine()
            .name(name)
            .definition(inline_twin(deployed.definition())?)
            .role_arn(deployed.role_arn())
            .send()
            .await?;
        Ok(out.state_machine_arn().to_string())
    }

    /// Invokes the deployed `function` through the Lambda API, as its schedule or rule
    /// does (the schedule never fires locally), and returns its result; a function error
    /// is an error carrying the function's `errorType` and message.
    pub async fn invoke(&self, function: Function, payload: &Value) -> anyhow::Result<Value> {
        let out = aws_sdk_lambda::Client::new(&self.config)
            .invoke()
            .function_name(self.deployment.function_name(function))
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
            .send()
            .await
            .with_context(|| format!("Invoke {}", function.name()))?;
        let body: Value = out
            .payload()
            .map(|p| serde_json::from_slice(p.as_ref()))
            .transpose()?
            .unwrap_or(Value::Null);
        if let Some(error) = out.function_error() {
            anyhow::bail!("{} failed ({error}): {body}", function.name());
        }
        Ok(body)
    }

    /// Sends the `Secret Label Updated` event Secrets Manager sends when `secret` (name)
    /// gets `version` as AWSCURRENT (moto sends none) to the default bus.
    pub async fn secret_label_updated(
        &self,
        secret: &str,
        arn: &str,
        version: &str,
    ) -> anyhow::Result<()> {
        let put = aws_sdk_eventbridge::Client::new(&self.config)
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("aws.secretsmanager")
                    .detail_type("Secret Label Updated")
                    .resources(arn)
                    .detail(
                        json!({"name": secret, "labelUpdated": "AWSCURRENT", "versionId": version})
                            .to_string(),
                    )
                    .build(),
            )
            .send()
            .await?;
        anyhow::ensure!(
            put.failed_entry_count() == 0,
            "the event was not put: {put:?}"
        );
        Ok(())
    }

    /// What someone changing `secret` in the console does: a new value (PutSecretValue),
    /// then the `Secret Label Updated` event Secrets Manager sends. Returns the new version.
    pub async fn change_secret(&self, secret: &str, value: &str) -> anyhow::Result<String> {
        let arn = self
            .clients
            .secrets
            .describe_secret()
            .secret_id(secret)
            .send()
            .await?
            .arn()
            .unwrap_or_default()
            .to_string();
        let version = self
            .clients
            .secrets
            .put_secret_value()
            .secret_id(secret)
            .secret_string(value)
            .send()
            .await?
            .version_id()
            .unwrap_or_default()
            .to_string();
        self.secret_label_updated(secret, &arn, &version).await?;
        Ok(version)
    }

    /// One gatekeeper tick (the deployed function, invoked through Lambda) and the
    /// execution it started, followed to its end: its final description and the batch's
    /// JSON report (`None` when the execution wrote none).
    pub async fn run_batch(
        &self,
    ) -> anyhow::Result<(
        aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
        Option<Value>,
    )> {
        let tick = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
        let outcome = self.invoke(Function::Gatekeeper, &tick).await?;
        let started = outcome["outcome"].as_str().unwrap_or_default();
        anyhow::ensure!(
            started.starts_with("Started"),
            "the gatekeeper started nothing: {outcome}"
        );
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        let listed = sfn
            .list_executions()
            .state_machine_arn(&self.deployment.state_machine_arn)
            .send()
            .await?;
        let arn = listed
            .executions()
            .first()
            .context("no execution")?
            .execution_arn()
            .to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        let execution = loop {
            let out = sfn.describe_execution().execution_arn(&arn).send().await?;
            if *out.status() != aws_sdk_sfn::types::ExecutionStatus::Running {
                break out;
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "{arn} still runs after 300 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        let listed = aws_sdk_s3::Client::new(&self.config)
            .list_objects_v2()
            .bucket(&self.deployment.bucket)
            .prefix("reports/")
            .send()
            .await?;
        let key = listed
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .find(|k| k.ends_with("report.json"))
            .map(str::to_string);
        let report = match key {
            Some(key) => Some(self.read_report(&key).await?),
            None => None,
        };
        Ok((execution, report))
    }

    /// The smallest whole batch: secret `secret` created, a stack `stack` whose SSM
    /// parameter resolves it (pinned in place when it changes), the secret changed, its
    /// event sent, one batch run. Returns the stack's template before the batch and the
    /// batch's report.
    pub async fn one_pinned_stack_batch(
        &self,
        secret: &str,
        stack: &str,
    ) -> anyhow::Result<(String, Value)> {
        self.clients
            .secrets
            .create_secret()
            .name(secret)
            .secret_string(r#"{"token":"first"}"#)
            .send()
            .await?;
        let template = format!(
            "Resources:\n  Token:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /{stack}/token\n      Type: String\n      Value: '{{{{resolve:secretsmanager:{secret}:SecretString:token}}}}'\n"
        );
        let cfn = &self.clients.cloudformation;
        cfn.create_stack()
            .stack_name(stack)
            .template_body(template)
            .send()
            .await?;
        let before = cfn
            .get_template()
            .stack_name(stack)
            .send()
            .await?
            .template_body()
            .unwrap_or_default()
            .to_string();
        self.change_secret(secret, r#"{"token":"second"}"#).await?;
        let (execution, report) = self.run_batch().await?;
        let report = report.with_context(|| format!("no report: {execution:?}"))?;
        Ok((before, report))
    }

    /// The JSON report stored at `key` in the report bucket.
    pub async fn read_report(&self, key: &str) -> anyhow::Result<Value> {
        self.read_json(key).await
    }

    /// The JSON object stored at `key` in the application's bucket (a report, a batch's
    /// map items, ...).
    pub async fn read_json(&self, key: &str) -> anyhow::Result<Value> {
        let object = aws_sdk_s3::Client::new(&self.config)
            .get_object()
            .bucket(&self.deployment.bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("no object {key}"))?;
        let body = object.body.collect().await?.into_bytes();
        Ok(serde_json::from_slice(&body)?)
    }
}

/// The definition with the map's ProcessorConfig Mode INLINE instead of DISTRIBUTED. An
/// INLINE map takes its items from its input, not from an ItemReader: a state before it
/// (`LoadMapItems`) reads the same object with the same role and hands the list over.
pub fn inline_twin(definition: &str) -> anyhow::Result<String> {
    let mut definition: Value = serde_json::from_str(definition)?;
    let config = definition
        .pointer_mut("/States/RefreshEachStack/ItemProcessor/ProcessorConfig")
        .context("RefreshEachStack has no ProcessorConfig")?;
    anyhow::ensure!(
        config["Mode"] == "DISTRIBUTED",
        "the map is not DISTRIBUTED"
    );
    *config = json!({"Mode": "INLINE"});
    let map = definition
        .pointer_mut("/States/RefreshEachStack")
        .and_then(Value::as_object_mut)
        .context("no RefreshEachStack")?;
    let reader = map
        .remove("ItemReader")
        .context("the map has no ItemReader")?;
    map.insert("ItemsPath".into(), json!("$.map_items.stacks"));
    let load = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
        "Parameters": reader["Parameters"],
        "ResultSelector": {"stacks.$": "States.StringToJson($.Body)"},
        "ResultPath": "$.map_items",
        "Next": "RefreshEachStack"
    });
    let discover = definition
        .pointer_mut("/States/Discover")
        .context("no Discover")?;
    anyhow::ensure!(
        discover["Next"] == "RefreshEachStack",
        "Discover is not followed by the map"
    );
    discover["Next"] = json!("LoadMapItems");
    definition["States"]["LoadMapItems"] = load;
    Ok(definition.to_string())
}
