//! Which resources hold state that removing them would destroy.
//!
//! The recreate strategy removes resources and adds them back; for these that would lose
//! data (or an identity others rely on), so recreate never touches them.

use serde_json::Value;

/// Resource types that hold data, keys or identities that a delete would destroy.
pub const STATEFUL_TYPES: &[&str] = &[
    "AWS::Backup::BackupVault",
    "AWS::Cassandra::Keyspace",
    "AWS::Cassandra::Table",
    "AWS::CodeCommit::Repository",
    "AWS::Cognito::IdentityPool",
    "AWS::Cognito::UserPool",
    "AWS::DocDB::DBCluster",
    "AWS::DocDB::DBInstance",
    "AWS::DynamoDB::GlobalTable",
    "AWS::DynamoDB::Table",
    "AWS::EC2::EIP",
    "AWS::EC2::Volume",
    "AWS::ECR::Repository",
    "AWS::EFS::FileSystem",
    "AWS::ElastiCache::CacheCluster",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ElastiCache::ServerlessCache",
    "AWS::Elasticsearch::Domain",
    "AWS::FSx::FileSystem",
    "AWS::Kinesis::Stream",
    "AWS::KMS::Key",
    "AWS::Lightsail::Database",
    "AWS::MemoryDB::Cluster",
    "AWS::MSK::Cluster",
    "AWS::Neptune::DBCluster",
    "AWS::Neptune::DBInstance",
    "AWS::OpenSearchService::Domain",
    "AWS::QLDB::Ledger",
    "AWS::RDS::DBCluster",
    "AWS::RDS::DBInstance",
    "AWS::RDS::GlobalCluster",
    "AWS::Redshift::Cluster",
    "AWS::RedshiftServerless::Namespace",
    "AWS::Route53::HostedZone",
    "AWS::S3::Bucket",
    "AWS::S3Express::DirectoryBucket",
    "AWS::SecretsManager::Secret",
    "AWS::Serverless::SimpleTable",
    "AWS::SQS::Queue",
    "AWS::Timestream::Database",
    "AWS::Timestream::Table",
];

/// Why removing a resource would lose something, or `None` when it is safe to remove.
pub fn removal_hazard(logical_id: &str, resource: &Value) -> Option<String> {
    let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
    if logical_id.starts_with("Fn::ForEach::") {
        return Some(format!(
            "{logical_id} generates resources with Fn::ForEach: what it would remove cannot be told"
        ));
    }
    if let Some(p @ ("Retain" | "RetainExceptOnCreate" | "Snapshot")) =
        resource.get("DeletionPolicy").and_then(Value::as_str)
    {
        return Some(format!("{logical_id} has DeletionPolicy {p}"));
    }
    if STATEFUL_TYPES.contains(&kind) {
        return Some(format!("{logical_id} ({kind}) holds state"));
    }
    if kind == "AWS::Logs::LogGroup" && resource.pointer("/Properties/RetentionInDays").is_some() {
        return Some(format!(
            "{logical_id} ({kind}) keeps logs with a retention period"
        ));
    }
    if kind == "AWS::CloudFormation::Stack" || kind == "AWS::Serverless::Application" {
        return Some(format!(
            "{logical_id} ({kind}) is a nested stack: removing it deletes everything in it"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stateful_types_retain_and_snapshot_are_hazards() {
        assert!(removal_hazard("Db", &json!({"Type": "AWS::RDS::DBInstance"})).is_some());
        assert!(removal_hazard("T", &json!({"Type": "AWS::DynamoDB::Table"})).is_some());
        let kept = json!({"Type": "AWS::Lambda::Function", "DeletionPolicy": "Retain"});
        assert!(removal_hazard("F", &kept).unwrap().contains("Retain"));
        let snap = json!({"Type": "AWS::Lambda::Function", "DeletionPolicy": "Snapshot"});
        assert!(removal_hazard("F", &snap).unwrap().contains("Snapshot"));
        let nested = json!({"Type": "AWS::CloudFormation::Stack"});
        assert!(
            removal_hazard("N", &nested)
                .unwrap()
                .contains("nested stack")
        );
        assert!(removal_hazard("Fn::ForEach::Topics", &json!([])).is_some());
    }

    #[test]
    fn log_groups_only_with_retention() {
        let plain = json!({"Type": "AWS::Logs::LogGroup"});
        assert!(removal_hazard("L", &plain).is_none());
        let kept = json!({"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}});
        assert!(removal_hazard("L", &kept).is_some());
    }

    #[test]
    fn stateless_resources_are_safe() {
        for kind in [
            "AWS::Lambda::Function",
            "AWS::ECS::TaskDefinition",
            "AWS::IAM::Role",
        ] {
            let r = json!({"Type": kind, "DeletionPolicy": "Delete"});
            assert!(removal_hazard("X", &r).is_none(), "{kind}");
        }
    }
}
