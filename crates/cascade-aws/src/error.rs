//! Errors of the AWS side, each naming the thing that failed and what to do.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An error talking to AWS.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The secret does not exist (or is not visible with these credentials).
    #[error(
        "secret `{0}` was not found in Secrets Manager: check the name or ARN, the region and the credentials"
    )]
    SecretNotFound(String),
    /// The secret exists but is scheduled for deletion.
    #[error("secret `{0}` is scheduled for deletion: restore it before refreshing stacks")]
    SecretDeleted(String),
    /// A call failed.
    #[error("{operation} failed: {message}")]
    Call {
        /// The API operation, e.g. `cloudformation:GetTemplate`.
        operation: &'static str,
        /// What the service or the transport said.
        message: String,
    },
}

impl AwsError {
    /// Wraps an SDK error with the name of the operation that failed, in a few words:
    /// the service's error code and message, or the HTTP status when it sent neither,
    /// or what went wrong on the way (timeout, connection, ...).
    pub fn call<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let message = match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            (None, _) => match &err {
                SdkError::ServiceError(context) => format!(
                    "the service answered HTTP {} without an error code",
                    context.raw().status().as_u16()
                ),
                other => aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
            },
        };
        AwsError::Call { operation, message }
    }
}
