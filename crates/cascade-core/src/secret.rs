//! What a secret is called: its name, its full ARN and its ARN without the random suffix.
//!
//! CloudFormation dynamic references, parameters and exports may name a secret by any of
//! the three. Matching is exact: a secret named `db` never matches `db-replica`,
//! `app/db/extra` or the ARN of another secret.

use serde::{Deserialize, Serialize};

use crate::glob::{self, Wildcards};

/// The staging label of a secret's current value (and the version stage a dynamic
/// reference resolves when it names none).
pub const AWSCURRENT: &str = "AWSCURRENT";

/// A secret whose new value must reach the stacks that use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    /// The secret's name, e.g. `prod/db`.
    pub name: String,
    /// The full ARN, ending in `-` and six random characters.
    pub arn: String,
    /// The id of the version that carries `AWSCURRENT`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The stack and logical id that created the secret (from its `aws:cloudformation:*`
    /// tags), so that `Ref` to that resource inside its own stack can be recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<SecretOwner>,
}

/// The CloudFormation resource that owns a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretOwner {
    /// The owning stack's id (its ARN).
    pub stack_id: String,
    /// The secret's logical id in that stack.
    pub logical_id: String,
}

/// Why a string is not a usable secret ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The string is not `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`.
    #[error(
        "`{0}` is not a Secrets Manager secret ARN (expected arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX)"
    )]
    NotASecretArn(String),
}

/// The parts of an ARN: `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub partition: &'a str,
    /// The service namespace, e.g. `secretsmanager`.
    pub service: &'a str,
    /// The region, e.g. `us-east-1`.
    pub region: &'a str,
    /// The 12-digit account id.
    pub account: &'a str,
    /// Everything after the account, e.g. `secret:prod/db-AbCdEf`.
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits an ARN into its parts; `None` when the text is not an ARN.
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let arn = Arn {
            partition: parts.next()?,
            service: parts.next()?,
            region: parts.next()?,
            account: parts.next()?,
            resource: parts.next()?,
        };
        (!arn.partition.is_empty() && !arn.service.is_empty()).then_some(arn)
    }
}

/// Length of the random suffix Secrets Manager appends to a secret's ARN (`-` excluded).
const ARN_SUFFIX_LEN: usize = 6;

impl Secret {
    /// A secret known only by its full ARN (offline planning): the name is the ARN's
    /// resource part without `secret:` and without the `-XXXXXX` suffix.
    pub fn from_arn(arn: &str) -> Result<Self, SecretError> {
        let not_secret = || SecretError::NotASecretArn(arn.to_string());
        let parsed = Arn::parse(arn).ok_or_else(not_secret)?;
        let with_suffix = parsed
            .resource
            .strip_prefix("secret:")
            .filter(|_| parsed.service == "secretsmanager")
            .ok_or_else(not_secret)?;
        let name = strip_arn_suffix(with_suffix).ok_or_else(not_secret)?;
        Ok(Secret {
            name: name.to_string(),
            arn: arn.to_string(),
            version_id: None,
            owner: None,
        })
    }

    /// The ARN without the random suffix (a "partial ARN"), accepted wherever the secret
    /// can be named.
    pub fn partial_arn(&self) -> String {
        match Arn::parse(&self.arn) {
            Some(a) => format!(
                "arn:{}:{}:{}:{}:secret:{}",
                a.partition, a.service, a.region, a.account, self.name
            ),
            None => self.arn.clone(),
        }
    }

    /// The region and account of the secret, from its ARN.
    pub fn region_and_account(&self) -> Option<(&str, &str)> {
        Arn::parse(&self.arn).map(|a| (a.region, a.account))
    }

    /// The partition of the secret's ARN (`aws` when it cannot be read).
    pub fn partition(&self) -> &str {
        Arn::parse(&self.arn).map_or("aws", |a| a.partition)
    }

    /// Every identifier that names this secret: name, full ARN, partial ARN.
    pub fn identifiers(&self) -> [String; 3] {
        [self.name.clone(), self.arn.clone(), self.partial_arn()]
    }

    /// Whether `id` names this secret exactly (name, full ARN or partial ARN).
    pub fn is_named_by(&self, id: &str) -> bool {
        id == self.name || id == self.arn || id == self.partial_arn()
    }

    /// Whether some identifier of this secret fits `pattern`, in which every
    /// [`crate::eval::HOLE`] character stands for any text (a value that could not be
    /// evaluated).
    pub fn could_be_named_by(&self, pattern: &str) -> bool {
        self.identifiers()
            .iter()
            .any(|id| glob::matches(pattern, id, Wildcards::any_run(crate::eval::HOLE)))
    }
}

/// The secret's name, whichever way `id` names it: a full ARN loses its prefix and random
/// suffix, a partial ARN its prefix, a name stays as it is.
pub fn secret_name(id: &str) -> &str {
    let Some(arn) = Arn::parse(id).filter(|a| a.service == "secretsmanager") else {
        return id;
    };
    let Some(with_suffix) = arn.resource.strip_prefix("secret:") else {
        return id;
    };
    match Secret::from_arn(id) {
        Ok(secret) => &with_suffix[..secret.name.len()],
        Err(_) => with_suffix,
    }
}

/// `prod/db-AbCdEf` → `prod/db`; `None` when there is no `-XXXXXX` suffix.
fn strip_arn_suffix(name_with_suffix: &str) -> Option<&str> {
    let (name, suffix) = name_with_suffix.rsplit_once('-')?;
    let valid = suffix.len() == ARN_SUFFIX_LEN && suffix.chars().all(|c| c.is_ascii_alphanumeric());
    (valid && !name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::HOLE;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";

    fn db() -> Secret {
        Secret::from_arn(ARN).unwrap()
    }

    #[test]
    fn name_comes_from_the_arn_without_its_suffix() {
        let s = db();
        assert_eq!(s.name, "db");
        assert_eq!(
            s.partial_arn(),
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"
        );
        let nested =
            Secret::from_arn("arn:aws:secretsmanager:eu-west-1:1:secret:app/db-prod-x1Y2z3")
                .unwrap();
        assert_eq!(nested.name, "app/db-prod");
    }

    #[test]
    fn from_arn_rejects_other_arns() {
        for bad in [
            "db",
            "arn:aws:ssm:us-east-1:1:parameter/db-AbCdEf",
            "arn:aws:secretsmanager:us-east-1:1:secret:db",
            "arn:aws:secretsmanager:us-east-1:1:secret:-AbCdEf",
        ] {
            assert!(Secret::from_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_name_full_and_partial_arn_exactly() {
        let s = db();
        assert!(s.is_named_by("db"));
        assert!(s.is_named_by(ARN));
        assert!(s.is_named_by("arn:aws:secretsmanager:us-east-1:123456789012:secret:db"));
        for other in [
            "db-replica",
            "app/db/extra",
            "DB",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-replica-QwErTy",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-ZzZzZz",
            "arn:aws:secretsmanager:us-west-2:123456789012:secret:db",
            "arn:aws:secretsmanager:us-east-1:999999999999:secret:db",
        ] {
            assert!(!s.is_named_by(other), "{other}");
        }
    }

    #[test]
    fn patterns_with_holes_match_only_compatible_identifiers() {
        let s = db();
        let any_name = format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{HOLE}");
        assert!(s.could_be_named_by(&any_name));
        assert!(s.could_be_named_by(&HOLE.to_string()));
        assert!(s.could_be_named_by(&format!("d{HOLE}")));
        assert!(!s.could_be_named_by(&format!("prod/{HOLE}")));
        assert!(!s.could_be_named_by(&format!("arn:aws:secretsmanager:eu-west-1:{HOLE}")));
        assert!(!s.could_be_named_by("db-replica"));
    }

    #[test]
    fn secret_names_from_any_identifier() {
        const ARN: &str = "arn:aws:secretsmanager:us-west-2:012345678901:secret:mySecret-a1b2c3";
        assert_eq!(secret_name(ARN), "mySecret");
        assert_eq!(
            secret_name("arn:aws:secretsmanager:us-west-2:012345678901:secret:prod/db"),
            "prod/db"
        );
        assert_eq!(secret_name("prod/db"), "prod/db");
        assert_eq!(secret_name("arn:aws:s3:::bucket"), "arn:aws:s3:::bucket");
    }
}
