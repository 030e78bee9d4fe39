//! The `report` Lambda function (see `cascade_lambda::handlers::report`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cascade_lambda::serve(cascade_lambda::Function::Report).await
}
