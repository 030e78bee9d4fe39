//! Secrets Manager dynamic references:
//! `{{resolve:secretsmanager:SECRET_ID[:SecretString[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]]]}}`.
//!
//! SECRET_ID is a name or an ARN; an ARN has colons of its own, so it is read as its seven
//! colon-separated parts before the optional fields.

use serde::{Deserialize, Serialize};

use crate::secret::AWSCURRENT;

/// The text that opens a Secrets Manager dynamic reference.
pub const PREFIX: &str = "{{resolve:secretsmanager:";
const SUFFIX: &str = "}}";

/// One dynamic reference found in a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicReference {
    /// The secret's name or ARN as written.
    pub secret_id: String,
    /// The JSON key inside the secret string, when one is named.
    pub json_key: Option<String>,
    /// The version stage, when one is named (`AWSCURRENT` is the default).
    pub version_stage: Option<String>,
    /// The version id, when the reference is pinned to one.
    pub version_id: Option<String>,
    /// Byte offset of `{{` in the scanned text.
    pub start: usize,
    /// Byte offset just past `}}` in the scanned text.
    pub end: usize,
}

impl DynamicReference {
    /// Whether the reference names a version other than whatever is current: a version id,
    /// or a stage other than `AWSCURRENT`.
    pub fn is_pinned(&self) -> bool {
        self.version_id.is_some()
            || self
                .version_stage
                .as_deref()
                .is_some_and(|stage| stage != AWSCURRENT)
    }

    /// The same reference pinned to `version_id` (any stage dropped: the two exclude each
    /// other).
    pub fn pinned_to(&self, version_id: &str) -> String {
        format!(
            "{PREFIX}{}:SecretString:{}::{version_id}{SUFFIX}",
            self.secret_id,
            self.json_key.as_deref().unwrap_or("")
        )
    }
}

/// The reference as CloudFormation reads it: the fields it names, in their places, and no
/// trailing empty ones. A field that ends in `}` is followed by its `:` (an empty next
/// field), or its `}` would run into the closing `}}` and end the reference one character
/// early.
impl std::fmt::Display for DynamicReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let optional = [&self.json_key, &self.version_stage, &self.version_id];
        let named = optional.iter().rposition(|field| field.is_some());
        let mut last = self.secret_id.as_str();
        write!(f, "{PREFIX}{}", self.secret_id)?;
        if let Some(named) = named {
            f.write_str(":SecretString")?;
            last = "SecretString";
            for field in &optional[..=named] {
                last = field.as_deref().unwrap_or("");
                write!(f, ":{last}")?;
            }
        }
        if last.ends_with('}') {
            f.write_str(":")?;
        }
        f.write_str(SUFFIX)
    }
}

/// Every Secrets Manager dynamic reference in `text`, in order. Unterminated references
/// (no closing `}}`) are not references and are left out.
pub fn find_all(text: &str) -> Vec<DynamicReference> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find(PREFIX) {
        let start = from + offset;
        let body_start = start + PREFIX.len();
        let Some(body_len) = text[body_start..].find(SUFFIX) else {
            break;
        };
        let end = body_start + body_len + SUFFIX.len();
        found.push(parse_body(
            &text[body_start..body_start + body_len],
            start,
            end,
        ));
        from = end;
    }
    found
}

fn parse_body(body: &str, start: usize, end: usize) -> DynamicReference {
    // An ARN id spans seven colon-separated fields: arn:partition:service:region:account:secret:name.
    // Its service is what tells it from a secret named `arn` (names have no colons): the
    // fuzz target `dynref` found `{{resolve:secretsmanager:arn:SecretString:k}}` read as an
    // ARN, and so the pins of that secret not read back as pins.
    let is_arn = body.starts_with("arn:") && body.split(':').nth(2) == Some("secretsmanager");
    let id_fields = if is_arn { 7 } else { 1 };
    let mut fields = body.splitn(id_fields + 4, ':');
    let secret_id = (0..id_fields)
        .filter_map(|_| fields.next())
        .collect::<Vec<_>>()
        .join(":");
    let _secret_string = fields.next();
    let mut optional = || fields.next().filter(|f| !f.is_empty()).map(str::to_string);
    let json_key = optional();
    let version_stage = optional();
    let version_id = optional();
    DynamicReference {
        secret_id,
        json_key,
        version_stage,
        version_id,
        start,
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> DynamicReference {
        let all = find_all(text);
        assert_eq!(all.len(), 1, "{text}");
        all.into_iter().next().unwrap()
    }

    #[test]
    fn reads_a_name_with_every_field() {
        let r = one("{{resolve:secretsmanager:prod/db:SecretString:password:AWSPREVIOUS:v-1}}");
        assert_eq!(r.secret_id, "prod/db");
        assert_eq!(r.json_key.as_deref(), Some("password"));
        assert_eq!(r.version_stage.as_deref(), Some("AWSPREVIOUS"));
        assert_eq!(r.version_id.as_deref(), Some("v-1"));
        assert!(r.is_pinned());
    }

    #[test]
    fn reads_a_bare_name_and_an_arn() {
        let r = one("{{resolve:secretsmanager:db}}");
        assert_eq!(r.secret_id, "db");
        assert_eq!(r.json_key, None);
        assert!(!r.is_pinned());
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
        let r = one(&format!(
            "{{{{resolve:secretsmanager:{arn}:SecretString:password}}}}"
        ));
        assert_eq!(r.secret_id, arn);
        assert_eq!(r.json_key.as_deref(), Some("password"));
    }

    #[test]
    fn current_stage_is_not_a_pin_but_a_version_id_is() {
        assert!(!one("{{resolve:secretsmanager:db:SecretString:k:AWSCURRENT}}").is_pinned());
        assert!(one("{{resolve:secretsmanager:db:SecretString:k::abc}}").is_pinned());
        assert!(one("{{resolve:secretsmanager:db:SecretString::AWSPENDING}}").is_pinned());
    }

    #[test]
    fn finds_several_in_one_string_with_offsets() {
        let text =
            "u={{resolve:secretsmanager:a:SecretString:user}};p={{resolve:secretsmanager:b}}";
        let all = find_all(text);
        assert_eq!(all.len(), 2);
        assert_eq!(
            &text[all[0].start..all[0].end],
            "{{resolve:secretsmanager:a:SecretString:user}}"
        );
        assert_eq!(all[1].secret_id, "b");
    }

    #[test]
    fn ignores_other_services_and_unterminated_references() {
        assert!(find_all("{{resolve:ssm:db}} {{resolve:ssm-secure:db}}").is_empty());
        assert!(find_all("{{resolve:secretsmanager:db").is_empty());
    }

    #[test]
    fn a_secret_named_arn_is_a_name_not_an_arn() {
        let r = one("{{resolve:secretsmanager:arn:SecretString:password}}");
        assert_eq!(r.secret_id, "arn");
        assert_eq!(r.json_key.as_deref(), Some("password"));
        let pinned = one(&r.pinned_to("v2"));
        assert_eq!(pinned.secret_id, "arn");
        assert_eq!(pinned.version_id.as_deref(), Some("v2"));
        assert_eq!(one("{{resolve:secretsmanager:arn}}").secret_id, "arn");
        // An ARN of another service is no secret's ARN either: its first field is the id.
        assert_eq!(
            one("{{resolve:secretsmanager:arn:aws:ssm:us-east-1:1:parameter/p}}").secret_id,
            "arn"
        );
    }

    #[test]
    fn what_parses_prints_back_and_parses_the_same() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
        for (body, printed) in [
            ("db", "db"),
            ("db:SecretString", "db"),
            ("db:SecretString:password", "db:SecretString:password"),
            ("db:SecretString:::v1", "db:SecretString:::v1"),
            (
                "db:SecretString::AWSPREVIOUS:",
                "db:SecretString::AWSPREVIOUS",
            ),
            ("db:SecretString:k:s:v:extra", "db:SecretString:k:s:v:extra"),
            // A last field ending in `}` keeps a `:` after it, or it would close early.
            ("db:SecretString:k}:", "db:SecretString:k}:"),
            ("x}:", "x}:"),
            (
                &format!("{arn}:SecretString:k"),
                &format!("{arn}:SecretString:k"),
            ),
            ("", ""),
        ] {
            let r = one(&format!("{PREFIX}{body}}}}}"));
            assert_eq!(r.to_string(), format!("{PREFIX}{printed}}}}}"), "{body}");
            let again = one(&r.to_string());
            assert_eq!(
                (
                    again.secret_id,
                    again.json_key,
                    again.version_stage,
                    again.version_id
                ),
                (r.secret_id, r.json_key, r.version_stage, r.version_id),
                "{body}"
            );
        }
    }

    #[test]
    fn pinned_to_names_the_version_and_keeps_the_key() {
        let r = one("{{resolve:secretsmanager:db:SecretString:password:AWSCURRENT}}");
        assert_eq!(
            r.pinned_to("v2"),
            "{{resolve:secretsmanager:db:SecretString:password::v2}}"
        );
        assert_eq!(one(&r.pinned_to("v2")).version_id.as_deref(), Some("v2"));
    }
}
