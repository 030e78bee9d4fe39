//! Errors of the AWS side, each naming the thing that failed and what to do.

use std::fmt::Debug;

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
    /// Wraps an SDK error with the name of the operation that failed.
    pub fn call<E>(operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        AwsError::Call {
            operation,
            message: aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        }
    }
}
