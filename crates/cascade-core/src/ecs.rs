//! ECS tasks as runtime consumers of a secret.
//!
//! A task definition may name a secret in `ContainerDefinitions[].Secrets[].ValueFrom` or
//! `ContainerDefinitions[].LogConfiguration.SecretOptions[].ValueFrom`: ECS reads the value
//! when a task starts, so the template holds only the secret's id and never needs to
//! change. What refreshes the running tasks is a new deployment of every service that runs
//! the task definition (`UpdateService` with `forceNewDeployment`).
//!
//! A `ValueFrom` is the secret's name, full ARN or partial ARN, optionally followed by
//! `:json-key:version-stage:version-id` (each part may be empty).

use serde_json::Value;

use crate::graph::names_referenced;

/// The CloudFormation type of a task definition.
pub const TASK_DEFINITION: &str = "AWS::ECS::TaskDefinition";
/// The CloudFormation type of a service.
pub const SERVICE: &str = "AWS::ECS::Service";

/// Whether `property_path` (the steps below a task definition's `Properties`, `Fn::If`
/// steps removed) is a `ValueFrom` that ECS reads a secret from when a task starts.
pub fn is_value_from_site(property_path: &[&str]) -> bool {
    let index = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match property_path {
        ["ContainerDefinitions", c, "Secrets", s, "ValueFrom"] => index(c) && index(s),
        [
            "ContainerDefinitions",
            c,
            "LogConfiguration",
            "SecretOptions",
            s,
            "ValueFrom",
        ] => index(c) && index(s),
        _ => false,
    }
}

/// A `ValueFrom` naming a Secrets Manager secret, read into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueFrom {
    /// The secret's name, full ARN or partial ARN.
    pub secret_id: String,
    /// The JSON key, when one is named.
    pub json_key: Option<String>,
    /// The version stage, when one is named.
    pub version_stage: Option<String>,
    /// The version id, when one is named.
    pub version_id: Option<String>,
}

/// Reads a `ValueFrom`: an ARN spans seven colon-separated fields (a secret's name has no
/// colon), a name one; the optional JSON key, version stage and version id follow.
pub fn parse_value_from(text: &str) -> ValueFrom {
    let id_fields = if text.starts_with("arn:") { 7 } else { 1 };
    let mut fields = text.splitn(id_fields + 3, ':');
    let secret_id = (0..id_fields)
        .filter_map(|_| fields.next())
        .collect::<Vec<_>>()
        .join(":");
    let mut optional = || fields.next().filter(|f| !f.is_empty()).map(str::to_string);
    ValueFrom {
        secret_id,
        json_key: optional(),
        version_stage: optional(),
        version_id: optional(),
    }
}

/// The services of a template that run a task definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumers {
    /// Services a new deployment (`forceNewDeployment`) restarts.
    pub restartable: Vec<String>,
    /// Services whose deployments another controller makes (`CODE_DEPLOY`, `EXTERNAL`),
    /// with that controller: `forceNewDeployment` does not apply to them.
    pub other_controller: Vec<(String, String)>,
}

/// The `AWS::ECS::Service`s of `template` whose `TaskDefinition` names `task_id` (by `Ref`,
/// `Fn::GetAtt` or `Fn::Sub`), leaving out those `deployed` says are not deployed.
pub fn services_running(
    template: &Value,
    task_id: &str,
    deployed: impl Fn(&Value) -> bool,
) -> Consumers {
    let wanted = [task_id.to_string()].into();
    let mut consumers = Consumers::default();
    let resources = template.get("Resources").and_then(Value::as_object);
    for (id, body) in resources.into_iter().flatten() {
        if body.get("Type").and_then(Value::as_str) != Some(SERVICE) || !deployed(body) {
            continue;
        }
        let Some(task) = body.pointer("/Properties/TaskDefinition") else {
            continue;
        };
        if names_referenced(task, &wanted).is_empty() {
            continue;
        }
        match body
            .pointer("/Properties/DeploymentController/Type")
            .and_then(Value::as_str)
            .filter(|c| !c.eq_ignore_ascii_case("ECS"))
        {
            Some(controller) => consumers
                .other_controller
                .push((id.clone(), controller.to_string())),
            None => consumers.restartable.push(id.clone()),
        }
    }
    consumers.restartable.sort();
    consumers.other_controller.sort();
    consumers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";

    #[test]
    fn value_from_sites_are_the_secrets_and_the_log_secret_options() {
        assert!(is_value_from_site(&[
            "ContainerDefinitions",
            "0",
            "Secrets",
            "2",
            "ValueFrom"
        ]));
        assert!(is_value_from_site(&[
            "ContainerDefinitions",
            "1",
            "LogConfiguration",
            "SecretOptions",
            "0",
            "ValueFrom"
        ]));
        assert!(!is_value_from_site(&[
            "ContainerDefinitions",
            "0",
            "Environment",
            "0",
            "Value"
        ]));
        assert!(!is_value_from_site(&[
            "ContainerDefinitions",
            "x",
            "Secrets",
            "0",
            "ValueFrom"
        ]));
        assert!(!is_value_from_site(&["Secrets", "0", "ValueFrom"]));
    }

    #[test]
    fn value_from_reads_names_and_arns_with_their_suffixes() {
        let v = parse_value_from(ARN);
        assert_eq!(v.secret_id, ARN);
        assert_eq!(
            (v.json_key, v.version_stage, v.version_id),
            (None, None, None)
        );

        let v = parse_value_from(&format!("{ARN}:password:AWSPREVIOUS:v-1"));
        assert_eq!(v.secret_id, ARN);
        assert_eq!(v.json_key.as_deref(), Some("password"));
        assert_eq!(v.version_stage.as_deref(), Some("AWSPREVIOUS"));
        assert_eq!(v.version_id.as_deref(), Some("v-1"));

        let v = parse_value_from(&format!("{ARN}:password::"));
        assert_eq!(v.json_key.as_deref(), Some("password"));
        assert_eq!(v.version_stage, None);

        let v = parse_value_from("prod/db");
        assert_eq!(v.secret_id, "prod/db");
        let v = parse_value_from("prod/db:username::");
        assert_eq!(
            (v.secret_id.as_str(), v.json_key.as_deref()),
            ("prod/db", Some("username"))
        );
        let v = parse_value_from("arn:aws:secretsmanager:us-east-1:1:secret:db::::extra");
        assert_eq!(v.secret_id, "arn:aws:secretsmanager:us-east-1:1:secret:db");
        assert_eq!(v.version_id.as_deref(), Some(":extra"));
        assert_eq!(parse_value_from("").secret_id, "");
    }

    #[test]
    fn services_running_a_task_definition_by_ref_getatt_or_sub() {
        let t = json!({"Resources": {
            "Task": {"Type": TASK_DEFINITION},
            "Other": {"Type": TASK_DEFINITION},
            "ByRef": {"Type": SERVICE, "Properties": {"TaskDefinition": {"Ref": "Task"}}},
            "ByAtt": {"Type": SERVICE, "Properties": {"TaskDefinition": {"Fn::GetAtt": ["Task", "TaskDefinitionArn"]}}},
            "BySub": {"Type": SERVICE, "Properties": {"TaskDefinition": {"Fn::Sub": "${Task}"}}},
            "Blue": {"Type": SERVICE, "Properties": {"TaskDefinition": {"Ref": "Task"},
                "DeploymentController": {"Type": "CODE_DEPLOY"}}},
            "Plain": {"Type": SERVICE, "Properties": {"TaskDefinition": {"Ref": "Task"},
                "DeploymentController": {"Type": "ECS"}}},
            "Elsewhere": {"Type": SERVICE, "Properties": {"TaskDefinition": {"Ref": "Other"}}},
            "Off": {"Type": SERVICE, "Condition": "Never", "Properties": {"TaskDefinition": {"Ref": "Task"}}},
            "NotAService": {"Type": "AWS::Events::Rule", "Properties": {"TaskDefinition": {"Ref": "Task"}}}
        }});
        let c = services_running(&t, "Task", |body| body.get("Condition").is_none());
        assert_eq!(c.restartable, ["ByAtt", "ByRef", "BySub", "Plain"]);
        assert_eq!(
            c.other_controller,
            [("Blue".to_string(), "CODE_DEPLOY".to_string())]
        );
        assert_eq!(services_running(&t, "Nope", |_| true), Consumers::default());
    }
}
