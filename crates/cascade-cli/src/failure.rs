//! How a failed command is told to a person: what failed, in one line, and what to do
//! next, in another. The SDK's details are only in the debug log (`CASCADE_LOG=debug`).

use cascade_aws::{AwsError, ErrorKind};

/// No AWS region is configured: nothing can be called.
#[derive(Debug, thiserror::Error)]
#[error("no AWS region is set")]
pub struct NoRegion;

/// The lines to print for `err` (without the `error: ` prefix of the first).
pub fn explain(err: &anyhow::Error) -> Vec<String> {
    // The chain from the outermost context down to the AWS call that failed (its SDK
    // details are not part of it); a wrapper that only repeats its cause is left out.
    let mut links: Vec<String> = Vec::new();
    let mut kind = None;
    for cause in err.chain() {
        let text = cause.to_string();
        if !links.last().is_some_and(|last| last.ends_with(&text)) {
            links.push(text);
        }
        if let Some(aws) = cause.downcast_ref::<AwsError>() {
            // A missing or deleted secret says what to do itself.
            if let AwsError::Call { kind: call, .. } = aws {
                kind = Some(*call);
            }
            break;
        }
        if cause.downcast_ref::<NoRegion>().is_some() {
            return vec![
                "no AWS region is set".into(),
                format!(
                    "set AWS_REGION, pass --region, or use a profile with a region (AWS_PROFILE); {LOCAL}"
                ),
            ];
        }
    }
    let mut lines = vec![links.join(": ")];
    if let Some(hint) = kind.and_then(next_step) {
        lines.push(hint);
    }
    lines
}

/// For the local stack, the one command that sets everything.
const LOCAL: &str = "for the local stack: eval \"$(infra/local/up)\"";

/// What a person can do about a failure of `kind`, when there is something to say.
fn next_step(kind: ErrorKind) -> Option<String> {
    Some(match kind {
        ErrorKind::NoCredentials => format!(
            "set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run `aws sso login`; {LOCAL}"
        ),
        ErrorKind::Unavailable => format!(
            "check the network and the endpoint (AWS_ENDPOINT_URL or --endpoint-url, and the region), then try again; {LOCAL}"
        ),
        ErrorKind::AccessDenied => "grant that action on that resource to the credentials in use (AWS_PROFILE), or use credentials that have it".into(),
        ErrorKind::Throttled => "AWS throttled the calls beyond the retries: try again in a minute, or lower --concurrency".into(),
        ErrorKind::NotFound => "check the name, the region (--region) and the account of the credentials".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_failed_call_is_one_line_and_a_next_step() {
        let err = AwsError::other(
            "cloudformation:DescribeStacks",
            ErrorKind::Throttled,
            "Throttling: Rate exceeded",
        );
        let err = anyhow::Error::new(err).context("cannot list the stacks");
        let lines = explain(&err);
        assert_eq!(
            lines[0],
            "cannot list the stacks: cloudformation:DescribeStacks failed: Throttling: Rate exceeded"
        );
        assert!(lines[1].contains("try again"), "{lines:?}");
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn a_wrapper_repeating_its_cause_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct Wrapper(#[source] AwsError);
        let inner = AwsError::other("s3:GetObject", ErrorKind::AccessDenied, "AccessDenied: no");
        let lines = explain(&anyhow::Error::new(Wrapper(inner)));
        assert_eq!(lines[0], "s3:GetObject failed: AccessDenied: no");
        assert!(lines[1].starts_with("grant that action"));
    }

    #[test]
    fn no_region_says_how_to_set_one() {
        let lines = explain(&anyhow::Error::new(NoRegion).context("cannot plan"));
        assert_eq!(lines[0], "no AWS region is set");
        assert!(lines[1].contains("AWS_REGION") && lines[1].contains("infra/local/up"));
    }

    #[test]
    fn other_errors_are_their_chain() {
        let err = Err::<(), _>(anyhow::anyhow!("inner"))
            .context("outer")
            .unwrap_err();
        assert_eq!(explain(&err), ["outer: inner"]);
    }
}
