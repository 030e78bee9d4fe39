//! A local server speaking the Lambda Invoke API
//! (`POST /2015-03-31/functions/{name}/invocations`) that runs Secret Cascade's real
//! handlers in-process. The local AWS stack forwards Lambda invokes to it (the launcher's
//! `LAMBDA_FORWARD_URL`), so the real state machine runs the real handlers.
//!
//! For a function deployed from template.yaml, the launcher sends what Lambda gives the
//! function's process: its Handler (`X-Cascade-Handler`) and its environment
//! (`X-Cascade-Environment`: the variables the template sets, and credentials of the
//! function's own execution role). The handler then runs as in Lambda: the function chosen
//! by its Handler, its configuration read from that environment, its AWS calls made with
//! its role's credentials (so the local stack's IAM enforcement applies to them).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cascade_lambda::{Function, FunctionContext, handle};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The handlers' contexts, by function; filled once the deployment exists.
pub type Contexts = Arc<RwLock<HashMap<Function, FunctionContext>>>;

/// A running Lambda stand-in.
pub struct LambdaServer {
    /// `http://127.0.0.1:PORT`: the launcher's `LAMBDA_FORWARD_URL`.
    pub url: String,
    /// The contexts the handlers run with.
    pub contexts: Contexts,
    /// Every invocation: function and payload, in order.
    pub invocations: Arc<RwLock<Vec<(Function, Value)>>>,
    /// Every error a handler returned: function, error name and message, in order.
    pub errors: Arc<RwLock<Vec<(Function, String, String)>>>,
    /// The contexts built for deployed functions, by environment (see [`LambdaServer::calls`]).
    deployed: Arc<RwLock<HashMap<String, FunctionContext>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    contexts: Contexts,
    /// Contexts built from a deployed function's environment, by that environment.
    deployed: Arc<RwLock<HashMap<String, FunctionContext>>>,
    invocations: Arc<RwLock<Vec<(Function, Value)>>>,
    errors: Arc<RwLock<Vec<(Function, String, String)>>>,
}

impl LambdaServer {
    /// Starts the server on a free port of 127.0.0.1 (contexts are set later with
    /// [`LambdaServer::set_context`]).
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Shared {
            contexts: Arc::new(RwLock::new(HashMap::new())),
            deployed: Arc::new(RwLock::new(HashMap::new())),
            invocations: Arc::new(RwLock::new(Vec::new())),
            errors: Arc::new(RwLock::new(Vec::new())),
        };
        let app = Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(LambdaServer {
            url,
            contexts: shared.contexts,
            invocations: shared.invocations,
            errors: shared.errors,
            deployed: shared.deployed,
            task,
        })
    }

    /// Sets the context a function runs with.
    pub fn set_context(&self, context: FunctionContext) {
        let function = context.function();
        self.contexts
            .write()
            .expect("not poisoned")
            .insert(function, context);
    }

    /// The AWS calls each deployed function made (`service:Operation`, counted by the
    /// clients' `CallCounter`), summed over its contexts.
    pub fn calls(&self) -> BTreeMap<&'static str, BTreeMap<String, u64>> {
        let mut calls: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
        for context in self.deployed.read().expect("not poisoned").values() {
            let clients = match context {
                FunctionContext::Gatekeeper(c) => &c.clients,
                FunctionContext::Discover(c) => &c.clients,
                FunctionContext::Refresh(c) => &c.clients,
                FunctionContext::Report(c) => &c.clients,
                FunctionContext::Notify(c, _) => &c.clients,
            };
            let function = calls.entry(context.function().name()).or_default();
            for (call, n) in clients.calls.snapshot() {
                *function.entry(call).or_default() += n;
            }
        }
        calls
    }

    /// How many times a function was invoked.
    pub fn count(&self, function: Function) -> usize {
        self.invocations
            .read()
            .expect("not poisoned")
            .iter()
            .filter(|(f, _)| *f == function)
            .count()
    }
}

impl Drop for LambdaServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One invocation, in the Invoke API's shape: the function's result as the body, or its
/// error as `{"errorType", "errorMessage"}` with `X-Amz-Function-Error: Unhandled`.
async fn invoke(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |key: &str| headers.get(key).and_then(|v| v.to_str().ok());
    let (function, context) = match (header("X-Cascade-Handler"), header("X-Cascade-Environment")) {
        (Some(handler), Some(environment)) => {
            let function = match Function::from_handler(Some(handler)) {
                Ok(function) => function,
                Err(e) => return function_error("UnknownHandler", &e.to_string()),
            };
            match deployed_context(&shared, function, environment).await {
                Ok(context) => (function, Some(context)),
                Err(e) => return function_error("ConfigurationError", &format!("{e:#}")),
            }
        }
        _ => {
            let Some(function) = Function::from_deployed_name(&name) else {
                return (StatusCode::NOT_FOUND, format!("no function {name}")).into_response();
            };
            let context = shared
                .contexts
                .read()
                .expect("not poisoned")
                .get(&function)
                .cloned();
            (function, context)
        }
    };
    let payload: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    shared
        .invocations
        .write()
        .expect("not poisoned")
        .push((function, payload.clone()));
    let Some(context) = context else {
        return function_error(
            "ConfigurationError",
            &format!("no context for {}", function.name()),
        );
    };
    match handle(&context, payload).await {
        Ok(result) => (StatusCode::OK, axum::Json(result)).into_response(),
        Err(e) => {
            shared.errors.write().expect("not poisoned").push((
                function,
                e.kind.name().to_string(),
                e.message.clone(),
            ));
            function_error(e.kind.name(), &e.message)
        }
    }
}

fn function_error(kind: &str, message: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "X-Amz-Function-Error",
        HeaderValue::from_static("Unhandled"),
    );
    (
        StatusCode::OK,
        headers,
        axum::Json(json!({"errorType": kind, "errorMessage": message})),
    )
        .into_response()
}

/// The context of a deployed function: its configuration read from the environment Lambda
/// gives it (as `cascade-lambda` reads it at start), and clients with the region, endpoint
/// and role credentials of that environment. Built once per environment.
async fn deployed_context(
    shared: &Shared,
    function: Function,
    environment: &str,
) -> anyhow::Result<FunctionContext> {
    if let Some(context) = shared
        .deployed
        .read()
        .expect("not poisoned")
        .get(environment)
    {
        return Ok(context.clone());
    }
    let env: HashMap<String, String> = serde_json::from_str(environment)?;
    let var = |key: &str| {
        env.get(key)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the function's environment has no {key}"))
    };
    let credentials = aws_sdk_cloudformation::config::Credentials::new(
        var("AWS_ACCESS_KEY_ID")?,
        var("AWS_SECRET_ACCESS_KEY")?,
        env.get("AWS_SESSION_TOKEN").cloned(),
        None,
        "lambda-execution-role",
    );
    let config = cascade_aws::clients::config_loader()
        .region(aws_config::Region::new(var("AWS_REGION")?))
        .endpoint_url(var("AWS_ENDPOINT_URL")?)
        .credentials_provider(credentials)
        .load()
        .await;
    let function_config =
        cascade_lambda::FunctionConfig::from_lookup(function, |k| env.get(k).cloned())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let context = FunctionContext::new(function_config, cascade_aws::Clients::new(&config))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    shared
        .deployed
        .write()
        .expect("not poisoned")
        .insert(environment.to_string(), context.clone());
    Ok(context)
}
