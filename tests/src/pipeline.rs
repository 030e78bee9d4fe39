//! The whole local pipeline, brought up in one call: the local Lambda server (the real
//! handlers), a local stack forwarding Lambda invokes to it, and template.yaml's resources
//! deployed to it. Used by the pipeline tests, the mocked state machine tests, the demo and
//! the pipeline benchmark.

use std::path::PathBuf;

use anyhow::Context as _;
use aws_config::SdkConfig;
use cascade_aws::Clients;
use serde_json::{Value, json};

use crate::deploy::{self, DeployOptions, Deployment, function_contexts, local_name};
use crate::lambda_server::LambdaServer;
use crate::{ACCOUNT, LocalStack, LocalStackOptions};

/// A running local pipeline.
pub struct LocalPipeline {
    /// The local Lambda server.
    pub lambda: LambdaServer,
    /// The local stack.
    pub local: LocalStack,
    /// SDK configuration for the local stack.
    pub config: SdkConfig,
    /// Secret Cascade's clients for the local stack.
    pub clients: Clients,
    /// What was deployed.
    pub deployment: Deployment,
}

impl LocalPipeline {
    /// Starts the Lambda server and a local stack (with a Step Functions mock config, if
    /// given) and deploys the application's resources. The functions have no configuration
    /// until [`LocalPipeline::configure`].
    pub async fn start(sfn_mock_config: Option<PathBuf>) -> anyhow::Result<Self> {
        let lambda = LambdaServer::start().await?;
        let options = LocalStackOptions {
            lambda_forward_url: Some(lambda.url.clone()),
            sfn_mock_config,
        };
        let local = tokio::task::spawn_blocking(move || LocalStack::start_with(&options)).await??;
        let config = local.sdk_config().await;
        let clients = local.clients().await;
        let deployment = deploy::deploy(&config).await?;
        Ok(LocalPipeline {
            lambda,
            local,
            config,
            clients,
            deployment,
        })
    }

    /// Gives every function the configuration template.yaml's environment would.
    pub fn configure(&self, options: &DeployOptions) -> anyhow::Result<()> {
        for context in function_contexts(&self.deployment, &self.clients, options)? {
            self.lambda.set_context(context);
        }
        Ok(())
    }

    /// Deploys the real definition with its map run INLINE (same states), so that each
    /// iteration's states show in the execution history; returns its ARN.
    pub async fn deploy_inline_twin(&self, name: &str) -> anyhow::Result<String> {
        let definition = deploy::state_machine_definition(&deploy::template()?)?;
        let out = aws_sdk_sfn::Client::new(&self.config)
            .create_state_machine()
            .name(name)
            .definition(inline_twin(&definition)?)
            .role_arn(format!(
                "arn:aws:iam::{ACCOUNT}:role/{}",
                local_name("StateMachineRole")
            ))
            .send()
            .await?;
        Ok(out.state_machine_arn().to_string())
    }

    /// The JSON report stored at `key` in the report bucket.
    pub async fn read_report(&self, key: &str) -> anyhow::Result<Value> {
        let object = aws_sdk_s3::Client::new(&self.config)
            .get_object()
            .bucket(&self.deployment.bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("no report at {key}"))?;
        let body = object.body.collect().await?.into_bytes();
        Ok(serde_json::from_slice(&body)?)
    }
}

/// The definition with the map's ProcessorConfig Mode INLINE instead of DISTRIBUTED.
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
    Ok(definition.to_string())
}
