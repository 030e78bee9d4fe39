//! Which resource properties CloudFormation cannot change in place.
//!
//! A change to a create-only property makes CloudFormation replace the resource (create a
//! new one, delete the old): for a database that is the data gone. The table comes from
//! the resource provider schemas (`createOnlyProperties`, `conditionalCreateOnlyProperties`)
//! shipped by the pinned cfn-lint, generated into `data/create_only.json` by
//! `infra/tools/gen-create-only` (`--check` in `infra/tools/lint` fails when it is stale).
//!
//! Property paths are CloudFormation property names below `Properties`, e.g.
//! `["VpcConfig", "SubnetIds", "0"]`; in the table `*` stands for any array item. SAM types
//! (`AWS::Serverless::*`) and custom resources have no schema here: nothing is create-only.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// How CloudFormation carries out a change to a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// Always by replacing the resource (`createOnlyProperties`).
    Always,
    /// Depending on the change, by replacing it (`conditionalCreateOnlyProperties`;
    /// a change set says `Replacement: Conditional`).
    Conditional,
}

/// The generated table, as committed.
#[derive(Deserialize)]
struct Table {
    source: String,
    create_only: HashMap<String, Vec<String>>,
    conditional: HashMap<String, Vec<String>>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    // Build-time data checked by this module's tests and by `gen-create-only --check`.
    serde_json::from_str(include_str!("../data/create_only.json"))
        .expect("data/create_only.json is the generator's valid JSON")
});

/// Where the table comes from, e.g. `cfn-lint 1.58.0 (resource schemas 2026-10-20T22:11:15Z)`.
pub fn source() -> &'static str {
    &TABLE.source
}

/// The create-only property paths of `resource_type` (`/`-joined, `*` for array items),
/// sorted; empty for an unknown type.
pub fn create_only_properties(resource_type: &str) -> &'static [String] {
    TABLE
        .create_only
        .get(resource_type)
        .map_or(&[], Vec::as_slice)
}

/// The conditionally create-only property paths of `resource_type`, in the same form.
pub fn conditional_create_only_properties(resource_type: &str) -> &'static [String] {
    TABLE
        .conditional
        .get(resource_type)
        .map_or(&[], Vec::as_slice)
}

/// Whether changing the value at `property_path` (below `Properties`) would replace a
/// `resource_type`: `Some` when the path is at or below a create-only property. `Fn::If`
/// steps (`"Fn::If", "1"`) are looked through, as the value is either branch.
pub fn replacement(resource_type: &str, property_path: &[&str]) -> Option<Replacement> {
    let path = without_conditions(property_path);
    let covers = |paths: &[String]| paths.iter().any(|p| is_within(&path, p));
    if covers(create_only_properties(resource_type)) {
        Some(Replacement::Always)
    } else if covers(conditional_create_only_properties(resource_type)) {
        Some(Replacement::Conditional)
    } else {
        None
    }
}

/// Whether a value at `property_path` lies in a property whose change would, or may,
/// replace the resource: such a reference must never be rewritten in place.
pub fn is_create_only(resource_type: &str, property_path: &[&str]) -> bool {
    replacement(resource_type, property_path).is_some()
}

/// [`is_create_only`] for an RFC 6901 pointer into the template, e.g.
/// `/Resources/Db/Properties/MasterUsername`; false outside a resource's `Properties`.
pub fn is_create_only_at(resource_type: &str, pointer: &str) -> bool {
    let steps: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    match steps.as_slice() {
        [resources, _, properties, rest @ ..]
            if resources == "Resources" && properties == "Properties" && !rest.is_empty() =>
        {
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            is_create_only(resource_type, &rest)
        }
        _ => false,
    }
}

/// The path without its `Fn::If` steps and their branch indices.
fn without_conditions<'a>(path: &[&'a str]) -> Vec<&'a str> {
    let mut kept = Vec::with_capacity(path.len());
    let mut steps = path.iter();
    while let Some(&step) = steps.next() {
        if step == "Fn::If" {
            steps.next();
        } else {
            kept.push(step);
        }
    }
    kept
}

/// Whether `path` is at or below the table's `pattern` (`/`-joined, `*` matches one step).
fn is_within(path: &[&str], pattern: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    path.len() >= pattern.len()
        && pattern
            .iter()
            .zip(path)
            .all(|(want, have)| *want == "*" || want == have)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_names_its_source() {
        assert!(source().starts_with("cfn-lint "), "{}", source());
        assert!(
            TABLE.create_only.len() > 1000,
            "{}",
            TABLE.create_only.len()
        );
        assert!(TABLE.create_only.values().all(|paths| !paths.is_empty()));
        assert!(TABLE.conditional.values().all(|paths| !paths.is_empty()));
    }

    #[test]
    fn rds_instance_username_is_create_only_and_password_is_not() {
        let t = "AWS::RDS::DBInstance";
        assert_eq!(
            replacement(t, &["MasterUsername"]),
            Some(Replacement::Always)
        );
        assert!(
            create_only_properties(t)
                .iter()
                .any(|p| p == "DBInstanceIdentifier")
        );
        assert!(!is_create_only(t, &["MasterUserPassword"]));
        assert!(!is_create_only(t, &["MasterUserSecret", "SecretArn"]));
    }

    #[test]
    fn rds_cluster_username_may_replace_it() {
        // The schema lists it as conditionally create-only (replaced unless restored from
        // a source or a snapshot): still never to be rewritten in place.
        let t = "AWS::RDS::DBCluster";
        assert_eq!(
            replacement(t, &["MasterUsername"]),
            Some(Replacement::Conditional)
        );
        assert!(is_create_only(t, &["MasterUsername"]));
        assert!(!is_create_only(t, &["MasterUserPassword"]));
    }

    #[test]
    fn docdb_and_redshift_usernames_are_create_only() {
        for t in ["AWS::DocDB::DBCluster", "AWS::Redshift::Cluster"] {
            assert_eq!(
                replacement(t, &["MasterUsername"]),
                Some(Replacement::Always),
                "{t}"
            );
            assert!(!is_create_only(t, &["MasterUserPassword"]), "{t}");
        }
    }

    #[test]
    fn a_task_definition_is_replaced_by_any_container_change() {
        // Every TaskDefinition change makes a new revision: the whole ContainerDefinitions
        // list is create-only, secrets by ARN included.
        let t = "AWS::ECS::TaskDefinition";
        let value_from = ["ContainerDefinitions", "0", "Secrets", "1", "ValueFrom"];
        assert_eq!(replacement(t, &value_from), Some(Replacement::Always));
        assert!(is_create_only(
            t,
            &["ContainerDefinitions", "0", "Environment", "0", "Value"]
        ));
        assert!(!is_create_only(t, &["Tags", "0", "Value"]));
    }

    #[test]
    fn runtime_consumers_are_updated_in_place() {
        let env = ["Environment", "Variables", "DB_PASSWORD"];
        assert!(!is_create_only("AWS::Lambda::Function", &env));
        assert!(is_create_only("AWS::Lambda::Function", &["FunctionName"]));
        assert!(!is_create_only("AWS::SSM::Parameter", &["Value"]));
        assert!(is_create_only("AWS::SSM::Parameter", &["Name"]));
        assert!(!is_create_only("AWS::ECS::Service", &["TaskDefinition"]));
    }

    #[test]
    fn nested_paths_match_at_or_below_and_star_matches_any_item() {
        let t = "AWS::MSK::Replicator";
        let arn = ["ReplicationInfoList", "3", "SourceKafkaClusterArn"];
        assert!(is_create_only(t, &arn));
        assert!(!is_create_only(
            t,
            &["ReplicationInfoList", "3", "TopicReplication", "Topics"]
        ));
        assert!(
            !is_create_only(t, &["ReplicationInfoList"]),
            "above, not at or below"
        );
        let t = "AWS::Batch::ComputeEnvironment";
        assert!(is_create_only(t, &["ComputeResources", "Subnets", "0"]));
        assert!(!is_create_only(t, &["ComputeResources", "MaxvCpus"]));
    }

    #[test]
    fn conditions_are_looked_through() {
        let t = "AWS::RDS::DBInstance";
        assert!(is_create_only(t, &["MasterUsername", "Fn::If", "1"]));
        let t = "AWS::Batch::ComputeEnvironment";
        assert!(is_create_only(
            t,
            &["ComputeResources", "Fn::If", "2", "Subnets", "0"]
        ));
    }

    #[test]
    fn unknown_types_and_odd_paths_have_nothing_create_only() {
        assert!(create_only_properties("Custom::Thing").is_empty());
        assert!(create_only_properties("AWS::Serverless::Function").is_empty());
        assert!(!is_create_only("Custom::Thing", &["MasterUsername"]));
        assert!(!is_create_only("AWS::RDS::DBInstance", &[]));
        assert!(!is_create_only("AWS::RDS::DBInstance", &["Fn::If"]));
        assert!(!is_create_only("", &[""]));
    }

    #[test]
    fn pointers_are_read_below_properties_only() {
        let t = "AWS::RDS::DBInstance";
        assert!(is_create_only_at(
            t,
            "/Resources/Db/Properties/MasterUsername"
        ));
        assert!(!is_create_only_at(
            t,
            "/Resources/Db/Properties/MasterUserPassword"
        ));
        assert!(!is_create_only_at(
            t,
            "/Resources/Db/Metadata/MasterUsername"
        ));
        assert!(!is_create_only_at(t, "/Outputs/MasterUsername/Value"));
        assert!(!is_create_only_at(t, "/Resources/Db/Properties"));
        assert!(!is_create_only_at(t, ""));
        let t = "AWS::ECS::TaskDefinition";
        assert!(is_create_only_at(
            t,
            "/Resources/Task/Properties/ContainerDefinitions/0/Secrets/0/ValueFrom"
        ));
    }
}
