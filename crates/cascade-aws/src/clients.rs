//! SDK clients built once from the usual AWS configuration chain, with the overrides a
//! command line or a local stack needs.

use std::sync::OnceLock;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::calls::CallCounter;

/// Where and how to reach AWS. Empty fields fall back to the standard chain
/// (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, config files, instance roles).
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Region override.
    pub region: Option<String>,
    /// Endpoint override (the local stack: `http://127.0.0.1:4566`).
    pub endpoint_url: Option<String>,
    /// Named profile override.
    pub profile: Option<String>,
    /// Attempts per call, throttling included (adaptive retry).
    pub max_attempts: Option<u32>,
}

/// The one HTTPS client (hyper, rustls with ring) every SDK configuration uses: one
/// connection pool per process, and no second TLS stack.
pub fn https_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                .build_https()
        })
        .clone()
}

/// Makes ring the process's rustls crypto provider, for clients (reqwest) that take the
/// process default. Idempotent.
pub fn install_crypto_provider() {
    // Err only when a provider is already installed: that one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The standard configuration chain with the one HTTPS client; callers add overrides.
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https_client())
}

/// Loads the SDK configuration: standard chain, overrides, adaptive retry for throttling.
pub async fn load_config(options: &AwsOptions) -> SdkConfig {
    let mut loader = config_loader()
        .retry_config(RetryConfig::adaptive().with_max_attempts(options.max_attempts.unwrap_or(8)));
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint.clone());
    }
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile.clone());
    }
    loader.load().await
}

/// The clients Secret Cascade uses, built once and shared.
#[derive(Debug, Clone)]
pub struct Clients {
    /// CloudFormation.
    pub cloudformation: aws_sdk_cloudformation::Client,
    /// Secrets Manager.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// S3 (state, large templates, reports).
    pub s3: aws_sdk_s3::Client,
    /// SQS (the ticket queue).
    pub sqs: aws_sdk_sqs::Client,
    /// Step Functions.
    pub sfn: aws_sdk_sfn::Client,
    /// ECS (restarting the services that read a secret when their tasks start).
    pub ecs: aws_sdk_ecs::Client,
    /// Counts every call these clients make.
    pub calls: CallCounter,
    /// Where discovery keeps the templates it read (none: every template is read from
    /// CloudFormation).
    pub templates: Option<crate::template_cache::TemplateCache>,
}

impl Clients {
    /// Builds the clients from an SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        let calls = CallCounter::default();
        let cloudformation = aws_sdk_cloudformation::Client::from_conf(
            aws_sdk_cloudformation::config::Builder::from(config)
                .interceptor(calls.clone())
                .build(),
        );
        let secrets = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(config)
                .interceptor(calls.clone())
                .build(),
        );
        // Path-style addressing where an endpoint is overridden (the local stack).
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(config)
                .force_path_style(config.endpoint_url().is_some())
                .interceptor(calls.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(config)
                .interceptor(calls.clone())
                .build(),
        );
        let sfn = aws_sdk_sfn::Client::from_conf(
            aws_sdk_sfn::config::Builder::from(config)
                .interceptor(calls.clone())
                .build(),
        );
        let ecs = aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(config)
                .interceptor(calls.clone())
                .build(),
        );
        Clients {
            cloudformation,
            secrets,
            s3,
            sqs,
            sfn,
            ecs,
            calls,
            templates: None,
        }
    }

    /// The same clients, with discovery keeping its templates in `cache`.
    pub fn with_template_cache(mut self, cache: crate::template_cache::TemplateCache) -> Self {
        self.templates = Some(cache);
        self
    }

    /// Loads the configuration and builds the clients.
    pub async fn load(options: &AwsOptions) -> Self {
        Self::new(&load_config(options).await)
    }

    /// The region the clients talk to, if one is configured.
    pub fn region(&self) -> Option<String> {
        self.cloudformation.config().region().map(|r| r.to_string())
    }
}
