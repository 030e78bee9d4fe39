//! Secrets outside the application's own account and region. Secret Cascade refreshes the
//! stacks of the account and region it is deployed in; a ticket naming a secret by the ARN
//! of another partition, account or region (a manual ticket, or an event forwarded from
//! another account's bus) is skipped with this reason, before any call: asking Secrets
//! Manager about it would be denied or not found, and no stack here names it by that ARN.

/// A ticket's secret outside the application's partition, account or region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "secret `{secret}` is in {what} {theirs}, not {ours}: Secret Cascade refreshes the \
     stacks of the account and region it is deployed in; deploy it in {what} {theirs} for \
     the stacks there"
)]
pub struct ForeignSecret {
    /// The secret's ARN, as the ticket wrote it.
    pub secret: String,
    /// Which part differs: `partition`, `account` or `region`.
    pub what: &'static str,
    /// That part of the secret's ARN.
    pub theirs: String,
    /// That part of the application's.
    pub ours: String,
}

/// `secret_id` when it is an ARN of another partition, account or region than `home` (an
/// ARN of the application: its execution's, its function's). `None` for a name (Secrets
/// Manager looks names up in the caller's own account and region), an ARN of the same
/// place, or a `home` that is no ARN (nothing to compare with).
pub fn foreign_secret(secret_id: &str, home: &str) -> Option<ForeignSecret> {
    let place = |arn: &str| -> Option<[String; 3]> {
        let mut parts = arn.split(':');
        (parts.next()? == "arn").then_some(())?;
        let partition = parts.next()?.to_string();
        let _service = parts.next()?;
        let region = parts.next()?.to_string();
        let account = parts.next()?.to_string();
        Some([partition, account, region])
    };
    let theirs = place(secret_id)?;
    let ours = place(home)?;
    ["partition", "account", "region"]
        .into_iter()
        .zip(theirs.into_iter().zip(ours))
        .find(|(_, (theirs, ours))| theirs != ours)
        .map(|(what, (theirs, ours))| ForeignSecret {
            secret: secret_id.to_string(),
            what,
            theirs,
            ours,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &str = "arn:aws:states:us-east-1:123456789012:execution:cascade:b-1";

    #[test]
    fn arns_of_another_partition_account_or_region_are_named() {
        for (secret, what, theirs, ours) in [
            (
                "arn:aws-cn:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
                "partition",
                "aws-cn",
                "aws",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:999999999999:secret:db-AbCdEf",
                "account",
                "999999999999",
                "123456789012",
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
                "region",
                "eu-west-1",
                "us-east-1",
            ),
        ] {
            let foreign = foreign_secret(secret, HOME).expect(secret);
            assert_eq!(
                (foreign.what, foreign.theirs.as_str(), foreign.ours.as_str()),
                (what, theirs, ours)
            );
            let message = foreign.to_string();
            assert!(
                message.contains(&format!("`{secret}` is in {what} {theirs}, not {ours}")),
                "{message}"
            );
            assert!(message.contains("deploy it in"), "{message}");
        }
    }

    #[test]
    fn names_arns_of_this_place_and_homes_that_are_no_arn_pass() {
        for secret in [
            "prod/db",
            "arn",
            "",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
        ] {
            assert_eq!(foreign_secret(secret, HOME), None, "{secret}");
        }
        let other = "arn:aws:secretsmanager:eu-west-1:999999999999:secret:db";
        assert_eq!(foreign_secret(other, "local-execution"), None);
        assert_eq!(foreign_secret(other, ""), None);
    }
}
