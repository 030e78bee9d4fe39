//! The handlers: each parses its event, calls cascade-core / cascade-aws, and returns a
//! small JSON payload (large data stays in S3; payloads carry the batch id).

pub mod discover;
pub mod gatekeeper;
pub mod notify;
pub mod refresh;
pub mod report;

use cascade_aws::refresh::{PollPolicy, RefreshSettings, Refresher};
use cascade_aws::store::Store;
use cascade_aws::{AwsOptions, Clients};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{Config, Function};
use crate::error::{ErrorKind, HandlerError};

/// What a function builds once per container: its configuration and AWS clients.
#[derive(Debug, Clone)]
pub struct Context {
    /// The configuration.
    pub config: Config,
    /// The AWS clients.
    pub clients: Clients,
}

impl Context {
    /// Reads the configuration from the environment and builds the clients.
    pub async fn from_env(function: Function) -> Result<Self, HandlerError> {
        let config = Config::from_env(function)?;
        Ok(Context::new(
            config,
            Clients::load(&AwsOptions::default()).await,
        ))
    }

    /// A context from a configuration and clients (the local Lambda server builds these).
    pub fn new(config: Config, clients: Clients) -> Self {
        Context { config, clients }
    }

    /// The refresh steps over the state bucket.
    pub fn refresher(&self) -> Result<Refresher, HandlerError> {
        let bucket = self.config.bucket.clone().ok_or_else(|| {
            HandlerError::new(ErrorKind::ConfigurationError, "CASCADE_BUCKET is not set")
        })?;
        Ok(Refresher {
            clients: self.clients.clone(),
            store: Store::S3 {
                client: self.clients.s3.clone(),
                bucket,
                prefix: String::new(),
            },
            settings: RefreshSettings {
                poll: PollPolicy {
                    max_wait: self.config.max_wait,
                    ..PollPolicy::default()
                },
                execution_role_arn: self.config.execution_role_arn.clone(),
            },
        })
    }
}

/// Handles one event for the context's function.
pub async fn handle(context: &Context, payload: Value) -> Result<Value, HandlerError> {
    match context.config.function {
        Function::Gatekeeper => gatekeeper::handle(context, payload).await,
        Function::Discover => discover::handle(context, parse(payload)?).await,
        Function::Refresh => refresh::handle(context, parse(payload)?).await,
        Function::Report => report::handle(context, parse(payload)?).await,
        Function::Notify => notify::handle(context, parse(payload)?).await,
    }
}

/// Reads an event into its type; a bad event is `InvalidInput` naming what is wrong.
fn parse<T: DeserializeOwned>(payload: Value) -> Result<T, HandlerError> {
    serde_json::from_value(payload).map_err(|e| {
        HandlerError::new(
            ErrorKind::InvalidInput,
            format!("the event is not valid: {e}"),
        )
    })
}
