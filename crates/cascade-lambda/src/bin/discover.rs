//! The `discover` Lambda function (see `cascade_lambda::handlers::discover`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cascade_lambda::serve(cascade_lambda::Function::Discover).await
}
