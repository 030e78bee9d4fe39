//! Secret Cascade's Lambda functions. One binary serves all five (`gatekeeper`,
//! `discover`, `refresh`, `report`, `notify`): its `main` reads which from the function's
//! `Handler` ([`Function::from_handler`]) and calls [`serve`], which sets up logging, builds the function's
//! [`FunctionContext`] once per container and hands each event to [`handle`]; the work is
//! done in cascade-core and cascade-aws.
//!
//! - [`config`]: one configuration type per function ([`GatekeeperConfig`],
//!   [`DiscoverConfig`], [`RefreshConfig`], [`ReportConfig`], [`NotifyConfig`]), read from
//!   the environment and checked at start-up: a missing or invalid variable is an init
//!   error naming it.
//! - [`handlers`]: one module per function, each taking its typed event and its
//!   [`Context`] and returning a typed result; [`handle`] reads the raw JSON event into
//!   the function's event type, the only place JSON is untyped.
//! - [`error`]: errors carry stable names ([`ErrorKind`]) in the Lambda error type, so the
//!   state machine can Retry or Catch on them.
//!
//! - [`logging`]: JSON lines when Lambda's log format is JSON (`AWS_LAMBDA_LOG_FORMAT`), at
//!   the level `AWS_LAMBDA_LOG_LEVEL` gives, else `RUST_LOG`, else `info`.

pub mod config;
pub mod error;
pub mod handlers;
pub mod logging;

pub use config::{
    DiscoverConfig, FromEnv, Function, FunctionConfig, GatekeeperConfig, NotifyConfig,
    RefreshConfig, ReportConfig, UnknownHandler,
};
pub use error::{ErrorKind, HandlerError};
pub use handlers::{Context, FunctionContext, Response, handle};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

/// Runs one function under the Lambda runtime. A missing or invalid environment
/// variable is an init error naming it.
pub async fn serve(function: Function) -> Result<(), lambda_runtime::Error> {
    logging::init();
    let context = FunctionContext::from_env(function).await.map_err(|e| {
        tracing::error!(function = function.name(), error = %e, "cannot start");
        e
    })?;
    let context = &context;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(context, event.payload).await
    }))
    .await
}
