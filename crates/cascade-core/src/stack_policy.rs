//! Stack policies: may an update modify, replace or delete a given resource?
//!
//! Semantics as CloudFormation applies them: once a stack has a policy, every update
//! action on every resource is denied unless a statement allows it, and an explicit
//! `Deny` always wins.

use serde_json::Value;

use crate::glob::{self, Wildcards};

/// An update action a stack policy governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateAction {
    /// `Update:Modify`: an in-place update.
    Modify,
    /// `Update:Replace`: an update that replaces the resource.
    Replace,
    /// `Update:Delete`: removing the resource from the template.
    Delete,
}

impl UpdateAction {
    /// The action's name in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateAction::Modify => "Update:Modify",
            UpdateAction::Replace => "Update:Replace",
            UpdateAction::Delete => "Update:Delete",
        }
    }
}

/// A stack policy that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stack policy is not valid JSON: {0}")]
pub struct PolicyError(String);

/// A parsed stack policy.
#[derive(Debug, Clone, PartialEq)]
pub struct StackPolicy {
    statements: Vec<Value>,
}

impl StackPolicy {
    /// Reads a stack policy body.
    pub fn parse(body: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(body).map_err(|e| PolicyError(e.to_string()))?;
        let statements = match value.get("Statement") {
            Some(Value::Array(items)) => items.clone(),
            Some(single @ Value::Object(_)) => vec![single.clone()],
            _ => Vec::new(),
        };
        Ok(StackPolicy { statements })
    }

    /// Whether the policy lets an update perform `action` on the resource `logical_id`
    /// of type `resource_type`.
    pub fn allows(&self, action: UpdateAction, logical_id: &str, resource_type: &str) -> bool {
        let matching = |effect: &str| {
            self.statements.iter().any(|s| {
                s.get("Effect").and_then(Value::as_str) == Some(effect)
                    && statement_matches(s, action, logical_id, resource_type)
            })
        };
        matching("Allow") && !matching("Deny")
    }
}

fn statement_matches(
    statement: &Value,
    action: UpdateAction,
    logical_id: &str,
    resource_type: &str,
) -> bool {
    let action_ok = match (statement.get("Action"), statement.get("NotAction")) {
        (Some(a), _) => any_matches(a, action.as_str()),
        (None, Some(na)) => !any_matches(na, action.as_str()),
        (None, None) => false,
    };
    let resource = format!("LogicalResourceId/{logical_id}");
    let resource_ok = match (statement.get("Resource"), statement.get("NotResource")) {
        (Some(r), _) => any_matches(r, &resource),
        (None, Some(nr)) => !any_matches(nr, &resource),
        (None, None) => false,
    };
    action_ok && resource_ok && condition_matches(statement.get("Condition"), resource_type)
}

/// `Condition: {StringEquals|StringLike: {ResourceType: [...]}}` (the only key stack
/// policies support).
fn condition_matches(condition: Option<&Value>, resource_type: &str) -> bool {
    let Some(condition) = condition.and_then(Value::as_object) else {
        return true;
    };
    condition.iter().all(|(operator, tests)| {
        let Some(types) = tests.get("ResourceType") else {
            return true;
        };
        match operator.as_str() {
            "StringEquals" => values(types).any(|t| t == resource_type),
            "StringLike" => {
                values(types).any(|t| glob::matches(t, resource_type, Wildcards::STAR_QUESTION))
            }
            "StringNotEquals" => values(types).all(|t| t != resource_type),
            "StringNotLike" => {
                values(types).all(|t| !glob::matches(t, resource_type, Wildcards::STAR_QUESTION))
            }
            _ => false,
        }
    })
}

fn values(v: &Value) -> impl Iterator<Item = &str> {
    let items: Vec<&str> = match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    items.into_iter()
}

fn any_matches(patterns: &Value, text: &str) -> bool {
    values(patterns).any(|p| glob::matches(p, text, Wildcards::STAR_QUESTION))
}

#[cfg(test)]
mod tests {
    use super::*;
    use UpdateAction::*;

    fn policy(json: &str) -> StackPolicy {
        StackPolicy::parse(json).unwrap()
    }

    #[test]
    fn the_documented_example_protects_one_resource() {
        let p = policy(
            r#"{"Statement":[
              {"Effect":"Allow","Action":"Update:*","Principal":"*","Resource":"*"},
              {"Effect":"Deny","Action":"Update:*","Principal":"*","Resource":"LogicalResourceId/ProductionDatabase"}]}"#,
        );
        assert!(p.allows(Delete, "App", "AWS::Lambda::Function"));
        assert!(!p.allows(Modify, "ProductionDatabase", "AWS::RDS::DBInstance"));
        assert!(!p.allows(Delete, "ProductionDatabase", "AWS::RDS::DBInstance"));
    }

    #[test]
    fn everything_is_denied_unless_allowed() {
        let p = policy(
            r#"{"Statement":[{"Effect":"Allow","Action":"Update:Modify","Principal":"*","Resource":"*"}]}"#,
        );
        assert!(p.allows(Modify, "App", "AWS::Lambda::Function"));
        assert!(!p.allows(Delete, "App", "AWS::Lambda::Function"));
        assert!(!policy(r#"{"Statement":[]}"#).allows(Modify, "App", "T"));
    }

    #[test]
    fn not_action_not_resource_and_resource_type_conditions() {
        let p = policy(
            r#"{"Statement":[
              {"Effect":"Allow","Action":"Update:*","Principal":"*","Resource":"*"},
              {"Effect":"Deny","NotAction":"Update:Modify","Principal":"*","NotResource":"LogicalResourceId/Web*"},
              {"Effect":"Deny","Action":"Update:Modify","Principal":"*","Resource":"*",
               "Condition":{"StringLike":{"ResourceType":["AWS::RDS::*"]}}}]}"#,
        );
        assert!(p.allows(Delete, "WebFn", "AWS::Lambda::Function"));
        assert!(!p.allows(Delete, "Api", "AWS::Lambda::Function"));
        assert!(p.allows(Modify, "Api", "AWS::Lambda::Function"));
        assert!(!p.allows(Modify, "Db", "AWS::RDS::DBInstance"));
        assert!(p.allows(Modify, "Db", "AWS::DynamoDB::Table"));
    }

    #[test]
    fn single_statement_object_and_wildcards() {
        let p = policy(
            r#"{"Statement":{"Effect":"Allow","Action":"Update:???????","Principal":"*","Resource":"LogicalResourceId/A?"}}"#,
        );
        assert!(p.allows(Replace, "Ab", "T"));
        assert!(!p.allows(Replace, "Abc", "T"));
        assert!(!p.allows(Modify, "Ab", "T"), "Modify has 6 letters");
    }

    #[test]
    fn malformed_policies_are_errors() {
        assert!(StackPolicy::parse("{not json").is_err());
    }
}
