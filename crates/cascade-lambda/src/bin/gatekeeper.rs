//! The `gatekeeper` Lambda function (see `cascade_lambda::handlers::gatekeeper`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cascade_lambda::serve(cascade_lambda::Function::Gatekeeper).await
}
