//! The `refresh` Lambda function (see `cascade_lambda::handlers::refresh`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cascade_lambda::serve(cascade_lambda::Function::Refresh).await
}
