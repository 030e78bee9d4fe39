//! The one binary of every Secret Cascade Lambda function: the function it serves is the
//! function's `Handler` setting, which Lambda passes as `_HANDLER` (`gatekeeper`,
//! `discover`, `refresh`, `report` or `notify`); see [`cascade_lambda::serve`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let handler = std::env::var("_HANDLER").ok();
    let function = cascade_lambda::Function::from_handler(handler.as_deref())?;
    cascade_lambda::serve(function).await
}
