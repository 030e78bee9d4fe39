//! The handlers: each takes its typed event and its function's [`Context`], calls
//! cascade-core / cascade-aws, and returns a small typed result (large data stays in S3;
//! results carry the batch id). [`handle`] is the edge where raw JSON comes in, from the
//! Lambda runtime or the local Invoke server.

pub mod discover;
pub mod gatekeeper;
pub mod notify;
pub mod refresh;
pub mod report;

use cascade_aws::refresh::Refresher;
use cascade_aws::slack::{RetryPolicy, SlackClient};
use cascade_aws::store::Store;
use cascade_aws::{AwsOptions, Clients};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{
    DiscoverConfig, Function, FunctionConfig, GatekeeperConfig, NotifyConfig, RefreshConfig,
    ReportConfig, StateBucket,
};
use crate::error::{ErrorKind, HandlerError};

/// What one function builds once per container: its configuration, checked, and the AWS
/// clients.
#[derive(Debug, Clone)]
pub struct Context<C> {
    /// The configuration.
    pub config: C,
    /// The AWS clients.
    pub clients: Clients,
}

impl<C> Context<C> {
    /// A context from a configuration and clients.
    pub fn new(config: C, clients: Clients) -> Self {
        Context { config, clients }
    }
}

impl<C: StateBucket> Context<C> {
    /// The state store: the configured bucket, at its root.
    pub fn store(&self) -> Store {
        Store::s3(self.clients.s3.clone(), self.config.bucket())
    }

    /// The refresh steps over the state bucket.
    pub fn refresher(&self) -> Refresher {
        Refresher {
            clients: self.clients.clone(),
            store: self.store(),
            settings: self.config.refresh_settings(),
        }
    }
}

/// Any one function, ready to handle events: its context, and for `notify` the one Slack
/// client of the process.
#[derive(Debug, Clone)]
pub enum FunctionContext {
    /// `gatekeeper`.
    Gatekeeper(Context<GatekeeperConfig>),
    /// `discover`.
    Discover(Context<DiscoverConfig>),
    /// `refresh`.
    Refresh(Context<RefreshConfig>),
    /// `report`.
    Report(Context<ReportConfig>),
    /// `notify`.
    Notify(Context<NotifyConfig>, SlackClient),
}

impl FunctionContext {
    /// Reads the configuration of `function` from the environment and builds the clients.
    pub async fn from_env(function: Function) -> Result<Self, HandlerError> {
        let config = FunctionConfig::from_env(function)?;
        FunctionContext::new(config, Clients::load(&AwsOptions::default()).await)
    }

    /// A function's context from its configuration and clients (the local Lambda server
    /// builds these). Fails only when no HTTP client for Slack can be built.
    pub fn new(config: FunctionConfig, clients: Clients) -> Result<Self, HandlerError> {
        Ok(match config {
            FunctionConfig::Gatekeeper(c) => Self::Gatekeeper(Context::new(c, clients)),
            FunctionConfig::Discover(c) => Self::Discover(Context::new(c, clients)),
            FunctionConfig::Refresh(c) => Self::Refresh(Context::new(c, clients)),
            FunctionConfig::Report(c) => Self::Report(Context::new(c, clients)),
            FunctionConfig::Notify(c) => {
                let slack = SlackClient::new(RetryPolicy::default())
                    .map_err(|e| HandlerError::new(ErrorKind::ConfigurationError, e.to_string()))?;
                Self::Notify(Context::new(c, clients), slack)
            }
        })
    }

    /// The function.
    pub fn function(&self) -> Function {
        match self {
            Self::Gatekeeper(_) => Function::Gatekeeper,
            Self::Discover(_) => Function::Discover,
            Self::Refresh(_) => Function::Refresh,
            Self::Report(_) => Function::Report,
            Self::Notify(..) => Function::Notify,
        }
    }
}

/// What a function returns; written as the result's own JSON (no tag).
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// `gatekeeper`'s.
    Gatekeeper(gatekeeper::GatekeeperResult),
    /// `discover`'s.
    Discover(discover::DiscoverResult),
    /// `refresh`'s.
    Refresh(refresh::StepResult),
    /// `report`'s.
    Report(report::ReportResult),
    /// `notify`'s.
    Notify(notify::NotifyResult),
}

/// Handles one raw event for the context's function: reads it into the function's event
/// type (a bad event is `InvalidInput`) and runs the handler.
pub async fn handle(context: &FunctionContext, payload: Value) -> Result<Response, HandlerError> {
    Ok(match context {
        FunctionContext::Gatekeeper(c) => Response::Gatekeeper(gatekeeper::handle(c).await?),
        FunctionContext::Discover(c) => {
            Response::Discover(discover::handle(c, parse(payload)?).await?)
        }
        FunctionContext::Refresh(c) => {
            Response::Refresh(refresh::handle(c, parse(payload)?).await?)
        }
        FunctionContext::Report(c) => Response::Report(report::handle(c, parse(payload)?).await?),
        FunctionContext::Notify(c, slack) => {
            Response::Notify(notify::handle(c, slack, parse(payload)?).await?)
        }
    })
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
