//! What discovery knows about one stack, and the tags and statuses that govern it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::secret::Arn;

/// Tag that opts a stack out when its value is `true`.
pub const TAG_IGNORE: &str = "cascade:ignore";
/// Tag that chooses the strategy for a stack: `auto`, `recreate` or `pin`.
pub const TAG_STRATEGY: &str = "cascade:strategy";
/// Tag listing secrets (names or ARNs, separated by commas or spaces) that the stack's
/// resources read at run time.
pub const TAG_SECRETS: &str = "cascade:secrets";
/// Tag listing the logical ids to refresh for the secrets in [`TAG_SECRETS`].
pub const TAG_RESOURCES: &str = "cascade:resources";

/// Whether CloudFormation accepts an update of a stack in `status`.
pub fn status_allows_update(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE"
            | "UPDATE_COMPLETE"
            | "UPDATE_ROLLBACK_COMPLETE"
            | "IMPORT_COMPLETE"
            | "IMPORT_ROLLBACK_COMPLETE"
    )
}

/// The value DescribeStacks shows for a `NoEcho` parameter.
pub const MASKED_VALUE: &str = "****";

/// One stack as read from CloudFormation (or, offline, a template file on disk).
#[derive(Debug, Clone, PartialEq)]
pub struct StackInfo {
    /// The stack's name.
    pub name: String,
    /// The stack's id (its ARN).
    pub id: String,
    /// Its status, e.g. `UPDATE_COMPLETE`.
    pub status: String,
    /// Parameter values as DescribeStacks gives them (`****` for NoEcho parameters);
    /// offline, the values given on the command line.
    pub parameters: BTreeMap<String, String>,
    /// The stack's tags.
    pub tags: BTreeMap<String, String>,
    /// The parent stack's id, for a nested stack.
    pub parent_id: Option<String>,
    /// The root stack's id, for a nested stack.
    pub root_id: Option<String>,
    /// The stack policy body (JSON), when the stack has one.
    pub stack_policy: Option<String>,
    /// The Original-stage template in long-form JSON, or why it could not be read.
    pub template: Result<Value, String>,
    /// Physical ids known for the stack's resources (given by hand for offline planning,
    /// `--resource`): `Ref` to one of them evaluates to its id. The account's own secrets
    /// are recognised by their tags instead ([`crate::secret::SecretOwner`]).
    pub physical_ids: BTreeMap<String, String>,
}

impl StackInfo {
    /// A stack known only by its template (offline planning).
    pub fn from_template(name: &str, id: &str, template: Value) -> Self {
        StackInfo {
            name: name.to_string(),
            id: id.to_string(),
            status: "CREATE_COMPLETE".to_string(),
            parameters: BTreeMap::new(),
            tags: BTreeMap::new(),
            parent_id: None,
            root_id: None,
            stack_policy: None,
            template: Ok(template),
            physical_ids: BTreeMap::new(),
        }
    }

    /// Whether CloudFormation accepts an update in the stack's current status.
    pub fn is_updatable(&self) -> bool {
        status_allows_update(&self.status)
    }

    /// The value of a tag, trimmed.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(|v| v.trim())
    }

    /// Whether the stack opts out with `cascade:ignore=true`.
    pub fn opts_out(&self) -> bool {
        self.tag(TAG_IGNORE)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Region, account and partition from the stack id, when it is an ARN.
    pub fn region_account_partition(&self) -> Option<(&str, &str, &str)> {
        Arn::parse(&self.id).map(|a| (a.region, a.account, a.partition))
    }
}

/// Whether the template declares parameter `name` `NoEcho` (its value is never shown, and
/// never saved or printed by Secret Cascade).
pub fn is_no_echo(template: &Value, name: &str) -> bool {
    template
        .get("Parameters")
        .and_then(|p| p.get(name))
        .and_then(|d| d.get("NoEcho"))
        .is_some_and(|v| match v {
            Value::Bool(b) => *b,
            Value::String(s) => s.eq_ignore_ascii_case("true"),
            _ => false,
        })
}

/// The parameters the template declares `NoEcho`.
pub fn no_echo_parameters(template: &Value) -> BTreeSet<String> {
    template
        .get("Parameters")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, _)| name)
        .filter(|name| is_no_echo(template, name))
        .cloned()
        .collect()
}

/// Splits a tag list value (`a, b c`) into its items.
pub fn tag_list(value: &str) -> Vec<&str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists_split_on_commas_and_spaces() {
        assert_eq!(tag_list(" a, b  c,,d "), ["a", "b", "c", "d"]);
        assert!(tag_list(" , ").is_empty());
    }

    #[test]
    fn updatable_statuses_and_opt_out() {
        let mut s = StackInfo::from_template("s", "id", serde_json::json!({}));
        assert!(s.is_updatable());
        s.status = "UPDATE_IN_PROGRESS".into();
        assert!(!s.is_updatable());
        assert!(!s.opts_out());
        s.tags.insert(TAG_IGNORE.into(), " TRUE ".into());
        assert!(s.opts_out());
        s.tags.insert(TAG_IGNORE.into(), "false".into());
        assert!(!s.opts_out());
    }

    #[test]
    fn region_and_account_come_from_the_stack_id() {
        let s = StackInfo::from_template(
            "s",
            "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/0b1c",
            serde_json::json!({}),
        );
        assert_eq!(
            s.region_account_partition(),
            Some(("eu-west-1", "123456789012", "aws"))
        );
    }
}
