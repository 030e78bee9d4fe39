//! The Lambda error type: a stable name the state machine can Retry or Catch on, and a
//! message for people. Messages never hold a secret value.

use cascade_aws::AwsError;
use cascade_aws::error::ErrorKind as AwsKind;
use cascade_aws::gatekeeper::GateError;
use cascade_aws::refresh::StepError;
use cascade_aws::run::RunError;
use cascade_aws::store::StoreError;

/// The stable error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The event is not what the function expects.
    InvalidInput,
    /// The function's configuration (environment) is missing or wrong.
    ConfigurationError,
    /// AWS throttled a call beyond the SDK's retries: retry later.
    Throttled,
    /// The function's role is not allowed to make a call.
    AccessDenied,
    /// A call to AWS failed otherwise.
    AwsCallFailed,
    /// The state store (S3) could not be read or written: retry.
    StoreUnavailable,
    /// No such batch, or no saved original of a stack, in the state store.
    BatchNotFound,
    /// A stack's template cannot be read.
    TemplateUnreadable,
    /// CloudFormation refused or did not finish putting a stack's original back.
    StackUpdateFailed,
    /// The Slack message could not be sent.
    NotificationFailed,
}

impl ErrorKind {
    /// The name Step Functions sees as the error.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::ConfigurationError => "ConfigurationError",
            ErrorKind::Throttled => "Throttled",
            ErrorKind::AccessDenied => "AccessDenied",
            ErrorKind::AwsCallFailed => "AwsCallFailed",
            ErrorKind::StoreUnavailable => "StoreUnavailable",
            ErrorKind::BatchNotFound => "BatchNotFound",
            ErrorKind::TemplateUnreadable => "TemplateUnreadable",
            ErrorKind::StackUpdateFailed => "StackUpdateFailed",
            ErrorKind::NotificationFailed => "NotificationFailed",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
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

/// The name for an AWS failure of a kind.
fn aws_kind(kind: AwsKind) -> ErrorKind {
    match kind {
        AwsKind::Throttled => ErrorKind::Throttled,
        AwsKind::AccessDenied => ErrorKind::AccessDenied,
        _ => ErrorKind::AwsCallFailed,
    }
}

impl From<AwsError> for HandlerError {
    fn from(e: AwsError) -> Self {
        HandlerError::new(aws_kind(e.kind()), e.to_string())
    }
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownBatch(_) => {
                HandlerError::new(ErrorKind::BatchNotFound, e.to_string())
            }
            _ => HandlerError::new(ErrorKind::StoreUnavailable, e.to_string()),
        }
    }
}

impl From<StepError> for HandlerError {
    fn from(e: StepError) -> Self {
        let kind = match e {
            StepError::Store(e) => return e.into(),
            StepError::Aws(e) => return e.into(),
            StepError::NoSavedOriginal { .. } => ErrorKind::BatchNotFound,
            StepError::TemplateUnreadable { .. } => ErrorKind::TemplateUnreadable,
            StepError::RestoreRejected { .. } | StepError::RestoreUnfinished { .. } => {
                ErrorKind::StackUpdateFailed
            }
        };
        HandlerError::new(kind, e.to_string())
    }
}

impl From<RunError> for HandlerError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Step { source, .. } => source.into(),
            RunError::Store(e) => e.into(),
        }
    }
}

impl From<GateError> for HandlerError {
    /// The gatekeeper's failures keep the kind of the AWS error behind them (a throttled
    /// call stays `Throttled`), with the step in the message.
    fn from(e: GateError) -> Self {
        HandlerError::new(aws_kind(e.cause().kind()), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_errors_keep_their_kind() {
        let e: HandlerError = AwsError::other(
            "cloudformation:UpdateStack",
            AwsKind::Throttled,
            "Throttling: Rate exceeded",
        )
        .into();
        assert_eq!(e.kind, ErrorKind::Throttled);
        let d: lambda_runtime::Diagnostic = e.into();
        assert_eq!(d.error_type, "Throttled");
        let e: HandlerError = AwsError::SecretNotFound("x".into()).into();
        assert_eq!(e.kind, ErrorKind::AwsCallFailed);
        let e: HandlerError =
            AwsError::other("s3:PutObject", AwsKind::AccessDenied, "AccessDenied: no").into();
        assert_eq!(e.kind, ErrorKind::AccessDenied);
    }

    #[test]
    fn the_gatekeeper_keeps_the_throttled_signal() {
        let e: HandlerError = GateError::Receive {
            queue_url: "q".into(),
            cause: AwsError::other("sqs:ReceiveMessage", AwsKind::Throttled, "slow down"),
        }
        .into();
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert!(e.message.contains("cannot receive tickets from q"), "{e}");
    }

    #[test]
    fn step_errors_say_what_they_are() {
        let e: HandlerError = StepError::TemplateUnreadable {
            stack_name: "app".into(),
            reason: "line 3: bad indentation".into(),
        }
        .into();
        assert_eq!(e.kind, ErrorKind::TemplateUnreadable);
        let e: HandlerError = StoreError::UnknownBatch("b1".into()).into();
        assert_eq!(e.kind, ErrorKind::BatchNotFound);
    }
}
