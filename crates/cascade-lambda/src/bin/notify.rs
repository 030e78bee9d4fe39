//! The `notify` Lambda function (see `cascade_lambda::handlers::notify`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cascade_lambda::serve(cascade_lambda::Function::Notify).await
}
