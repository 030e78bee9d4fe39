//! The Lambda error type: a stable name the state machine can Retry or Catch on, and a
//! message for people. Messages never hold a secret value.

use cascade_aws::AwsError;
use cascade_aws::refresh::StepError;
use cascade_aws::run::RunError;
use cascade_aws::store::StoreError;

/// The stable error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The event is not what the function expects.
    InvalidInput,
    /// A ticket could not be read.
    InvalidTicket,
    /// The function's configuration (environment) is missing or wrong.
    ConfigurationError,
    /// AWS throttled a call beyond the SDK's retries: retry later.
    Throttled,
    /// A call to AWS failed otherwise.
    AwsCallFailed,
    /// The state store (S3) could not be read or written: retry.
    StoreUnavailable,
    /// No such batch or stack in the state store.
    BatchNotFound,
    /// An update of a stack failed.
    StackUpdateFailed,
    /// A stack cannot be updated in its status.
    StackNotUpdatable,
    /// The Slack message could not be sent.
    NotificationFailed,
}

impl ErrorKind {
    /// The name Step Functions sees as the error.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::InvalidTicket => "InvalidTicket",
            ErrorKind::ConfigurationError => "ConfigurationError",
            ErrorKind::Throttled => "Throttled",
            ErrorKind::AwsCallFailed => "AwsCallFailed",
            ErrorKind::StoreUnavailable => "StoreUnavailable",
            ErrorKind::BatchNotFound => "BatchNotFound",
            ErrorKind::StackUpdateFailed => "StackUpdateFailed",
            ErrorKind::StackNotUpdatable => "StackNotUpdatable",
            ErrorKind::NotificationFailed => "NotificationFailed",
        }
    }
}

/// An error a handler returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.name())]
pub struct HandlerError {
    /// The stable name.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

impl HandlerError {
    /// An error of a kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        HandlerError {
            kind,
            message: message.into(),
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.kind.name().to_string(),
            error_message: e.message,
        }
    }
}

impl From<AwsError> for HandlerError {
    fn from(e: AwsError) -> Self {
        let kind = match &e {
            AwsError::Call { message, .. }
                if message.contains("Throttl") || message.contains("TooManyRequests") =>
            {
                ErrorKind::Throttled
            }
            _ => ErrorKind::AwsCallFailed,
        };
        HandlerError::new(kind, e.to_string())
    }
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        HandlerError::new(ErrorKind::StoreUnavailable, e.to_string())
    }
}

impl From<StepError> for HandlerError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Store(e) => e.into(),
            StepError::Aws(e) => e.into(),
            StepError::Missing(m) => HandlerError::new(ErrorKind::BatchNotFound, m),
        }
    }
}

impl From<RunError> for HandlerError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::UnknownBatch(_) => HandlerError::new(ErrorKind::BatchNotFound, e.to_string()),
            RunError::Step { source, .. } => source.into(),
            RunError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_named_for_retries() {
        let e: HandlerError = AwsError::Call {
            operation: "cloudformation:UpdateStack",
            message: "Throttling: Rate exceeded".into(),
        }
        .into();
        assert_eq!(e.kind, ErrorKind::Throttled);
        let d: lambda_runtime::Diagnostic = e.into();
        assert_eq!(d.error_type, "Throttled");
        let e: HandlerError = AwsError::SecretNotFound("x".into()).into();
        assert_eq!(e.kind, ErrorKind::AwsCallFailed);
    }
}
