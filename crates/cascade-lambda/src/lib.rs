//! Secret Cascade's Lambda functions. Each binary (`gatekeeper`, `discover`, `refresh`,
//! `report`, `notify`) only sets up logging, builds its [`Context`] once per container
//! (configuration read and checked from the environment, AWS clients) and hands each event
//! to [`handle`]; the work is done in cascade-core and cascade-aws.
//!
//! Errors carry stable names ([`ErrorKind`]) in the Lambda error type, so the state machine
//! can Retry or Catch on them.

pub mod config;
pub mod error;
pub mod handlers;
pub mod logging;

pub use config::{Config, Function};
pub use error::{ErrorKind, HandlerError};
pub use handlers::{Context, handle};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

/// Runs one function under the Lambda runtime. A missing or invalid environment
/// variable is an init error naming it.
pub async fn serve(function: Function) -> Result<(), lambda_runtime::Error> {
    logging::init();
    let context = Context::from_env(function).await.map_err(|e| {
        tracing::error!(function = function.name(), error = %e, "cannot start");
        e
    })?;
    let context = &context;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(context, event.payload).await
    }))
    .await
}
