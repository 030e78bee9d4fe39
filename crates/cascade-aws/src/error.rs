//! Errors of the AWS side, each naming the thing that failed and what to do.
//!
//! An SDK error is classified once, when it is wrapped ([`AwsError::call`]), into an
//! [`ErrorKind`] taken from the SDK's error variant, the service's error code and the HTTP
//! status. Callers decide on the kind, never on the text. The one exception is
//! CloudFormation, which answers several distinct situations with the same
//! `ValidationError` code; its three well-known messages are read here, and only here.

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What kind of failure a call met: what a caller may do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// AWS throttled the call beyond the SDK's retries: try again later.
    Throttled,
    /// The service could not be reached or answered in time, or failed itself (timeouts,
    /// connection errors, HTTP 5xx): try again.
    Unavailable,
    /// The thing asked for does not exist.
    NotFound,
    /// The credentials are invalid or not allowed to do this.
    AccessDenied,
    /// No credentials could be found (the credential chain gave none).
    NoCredentials,
    /// CloudFormation's "No updates are to be performed": the stack already says this.
    NoUpdates,
    /// The request was refused as invalid (a validation error): retrying will not help.
    Validation,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Whether trying the same call again later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Unavailable)
    }

    /// The kind of a service error from its code, message and HTTP status.
    pub fn classify(code: Option<&str>, message: Option<&str>, status: Option<u16>) -> Self {
        const THROTTLED: &[&str] = &[
            "Throttling",
            "ThrottlingException",
            "ThrottledException",
            "TooManyRequestsException",
            "RequestLimitExceeded",
            "RequestThrottled",
            "RequestThrottledException",
            "SlowDown",
            "ProvisionedThroughputExceededException",
            "PriorRequestNotComplete",
            "BandwidthLimitExceeded",
            "LimitExceededException",
        ];
        const ACCESS_DENIED: &[&str] = &[
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "InvalidAccessKeyId",
            "ExpiredToken",
            "ExpiredTokenException",
            "SignatureDoesNotMatch",
            "AuthFailure",
            "MissingAuthenticationToken",
        ];
        const NOT_FOUND: &[&str] = &[
            "ResourceNotFoundException",
            "NotFound",
            "NoSuchKey",
            "NoSuchBucket",
            "StackNotFoundException",
            "ChangeSetNotFound",
            "ChangeSetNotFoundException",
            "ExecutionDoesNotExist",
            "StateMachineDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
            "ServiceNotFoundException",
            "ClusterNotFoundException",
        ];
        const VALIDATION: &[&str] = &[
            "ValidationError",
            "ValidationException",
            "InvalidParameterValue",
            "InvalidParameterValueException",
            "InvalidParameterException",
            "InvalidParameterCombination",
            "InvalidRequestException",
            "InvalidInput",
            "InvalidArn",
            "InvalidDefinition",
            "InvalidName",
            "InvalidExecutionInput",
            "MissingParameter",
            "InsufficientCapabilitiesException",
            "TokenAlreadyExistsException",
            "AlreadyExistsException",
            "ExecutionAlreadyExists",
            "InvalidChangeSetStatus",
            "InvalidChangeSetStatusException",
        ];
        let in_list = |list: &[&str]| code.is_some_and(|c| list.contains(&c));
        if in_list(THROTTLED) || status == Some(429) {
            return ErrorKind::Throttled;
        }
        if in_list(ACCESS_DENIED) || status == Some(403) {
            return ErrorKind::AccessDenied;
        }
        if in_list(NOT_FOUND) {
            return ErrorKind::NotFound;
        }
        if code == Some("ValidationError") {
            // CloudFormation gives these their own meaning but no code of their own.
            let message = message.unwrap_or_default();
            if message.contains("No updates are to be performed") {
                return ErrorKind::NoUpdates;
            }
            if message.contains("does not exist") || message.contains("is not imported by any") {
                return ErrorKind::NotFound;
            }
        }
        if in_list(VALIDATION) {
            return ErrorKind::Validation;
        }
        match (code, status) {
            (Some("InternalFailure" | "InternalError" | "ServiceUnavailable"), _) => {
                ErrorKind::Unavailable
            }
            (_, Some(s)) if s >= 500 => ErrorKind::Unavailable,
            (_, Some(404)) => ErrorKind::NotFound,
            (_, Some(400)) if code.is_none() => ErrorKind::Validation,
            _ => ErrorKind::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotFound => "not found",
            ErrorKind::AccessDenied => "access denied",
            ErrorKind::NoCredentials => "no credentials",
            ErrorKind::NoUpdates => "no updates",
            ErrorKind::Validation => "validation",
            ErrorKind::Other => "other",
        })
    }
}

/// The source of a failed call, kept for `CASCADE_LOG=debug` and error chains.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

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
        /// What kind of failure it is.
        kind: ErrorKind,
        /// The service's error code, when it sent one.
        code: Option<String>,
        /// What the service or the transport said, in a few words.
        message: String,
        /// The SDK's error, with every detail. Not an error `source`: error chains stop at
        /// the few words above (the details are logged at debug level when it is wrapped).
        details: Option<Source>,
    },
}

impl AwsError {
    /// Wraps an SDK error with the name of the operation that failed, classified by the
    /// SDK's variant and the service's code. The message is a few words: the service's
    /// error code and message, or the HTTP status when it sent neither, or what went wrong
    /// on the way (no credentials, cannot connect, timed out, ...) with its root cause. The
    /// SDK's whole error is logged at debug level (`CASCADE_LOG=debug`).
    pub fn call<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        tracing::debug!(
            operation,
            error = %aws_smithy_types::error::display::DisplayErrorContext(&err),
            "AWS call failed"
        );
        let code = err.code().map(str::to_string);
        let (kind, message) = match &err {
            SdkError::ServiceError(context) => {
                let status = context.raw().status().as_u16();
                let kind = ErrorKind::classify(err.code(), err.message(), Some(status));
                let message = match (err.code(), err.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_string(),
                    (None, _) => {
                        format!("the service answered HTTP {status} without an error code")
                    }
                };
                (kind, message)
            }
            SdkError::TimeoutError(_) => (
                ErrorKind::Unavailable,
                "no answer in time (timed out)".to_string(),
            ),
            SdkError::DispatchFailure(failure) => {
                let root = root_cause(&err);
                if caused_by_credentials(&err) {
                    (
                        ErrorKind::NoCredentials,
                        format!("no AWS credentials: {root}"),
                    )
                } else if failure.is_timeout() {
                    (ErrorKind::Unavailable, format!("timed out: {root}"))
                } else if failure.is_io() {
                    (ErrorKind::Unavailable, format!("cannot connect: {root}"))
                } else {
                    (ErrorKind::Other, root)
                }
            }
            SdkError::ResponseError(context) => (
                if context.raw().status().is_server_error() {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Other
                },
                format!(
                    "unreadable answer (HTTP {}): {}",
                    context.raw().status().as_u16(),
                    root_cause(&err)
                ),
            ),
            _ => (ErrorKind::Other, root_cause(&err)),
        };
        AwsError::Call {
            operation,
            kind,
            code,
            message,
            details: Some(Box::new(err)),
        }
    }

    /// A failure that is not an SDK error (e.g. reading a response body), of a kind.
    pub fn other(operation: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        AwsError::Call {
            operation,
            kind,
            code: None,
            message: message.into(),
            details: None,
        }
    }

    /// What kind of failure this is; a missing or deleted secret is [`ErrorKind::NotFound`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            AwsError::SecretNotFound(_) | AwsError::SecretDeleted(_) => ErrorKind::NotFound,
            AwsError::Call { kind, .. } => *kind,
        }
    }

    /// The operation that failed, when a call did.
    pub fn operation(&self) -> Option<&'static str> {
        match self {
            AwsError::Call { operation, .. } => Some(operation),
            _ => None,
        }
    }
}

/// The innermost cause of an error, in its own words (the outer ones only repeat it
/// with more context: "dispatch failure", "io error", ...).
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// Whether the credential chain's failure is behind an error.
fn caused_by_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_codes_and_statuses() {
        let k = |code: Option<&str>, message: Option<&str>, status| {
            ErrorKind::classify(code, message, Some(status))
        };
        assert_eq!(k(Some("Throttling"), None, 400), ErrorKind::Throttled);
        assert_eq!(
            k(Some("ThrottlingException"), None, 400),
            ErrorKind::Throttled
        );
        assert_eq!(k(None, None, 429), ErrorKind::Throttled);
        assert_eq!(k(Some("AccessDenied"), None, 403), ErrorKind::AccessDenied);
        assert_eq!(k(None, None, 403), ErrorKind::AccessDenied);
        assert_eq!(
            k(Some("ResourceNotFoundException"), None, 400),
            ErrorKind::NotFound
        );
        assert_eq!(k(Some("NoSuchKey"), None, 404), ErrorKind::NotFound);
        assert_eq!(
            k(
                Some("ValidationError"),
                Some("Stack with id app does not exist"),
                400
            ),
            ErrorKind::NotFound
        );
        assert_eq!(
            k(
                Some("ValidationError"),
                Some("No updates are to be performed."),
                400
            ),
            ErrorKind::NoUpdates
        );
        assert_eq!(
            k(Some("ValidationError"), Some("Template format error"), 400),
            ErrorKind::Validation
        );
        assert_eq!(
            k(Some("InternalFailure"), None, 500),
            ErrorKind::Unavailable
        );
        assert_eq!(k(None, None, 503), ErrorKind::Unavailable);
        assert_eq!(k(Some("Weird"), None, 400), ErrorKind::Other);
        assert!(ErrorKind::Throttled.is_retryable() && ErrorKind::Unavailable.is_retryable());
        assert!(!ErrorKind::Validation.is_retryable());
    }

    #[test]
    fn secrets_not_found_are_not_found() {
        assert_eq!(
            AwsError::SecretNotFound("x".into()).kind(),
            ErrorKind::NotFound
        );
        let e = AwsError::other("s3:GetObject", ErrorKind::Unavailable, "body cut short");
        assert_eq!(e.to_string(), "s3:GetObject failed: body cut short");
        assert_eq!(e.operation(), Some("s3:GetObject"));
    }
}
