//! Restarting an ECS service whose tasks read a secret when they start: a new deployment
//! (UpdateService with `forceNewDeployment`), then its rollout, read with
//! `cascade_core::refresh::rollout_of`. Nothing is removed and no template changes.

use cascade_core::refresh::{DeploymentView, Rollout, rollout_of};

use crate::clients::Clients;
use crate::error::AwsError;

/// An ECS service, as UpdateService and DescribeServices name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    /// The cluster's name or ARN.
    pub cluster: String,
    /// The service's name or ARN.
    pub service: String,
}

impl ServiceRef {
    /// The service from its CloudFormation physical id (the service ARN,
    /// `arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME`); an ARN of the old form, without
    /// the cluster, needs `cluster`, as does a bare name.
    pub fn from_physical_id(physical_id: &str, cluster: Option<&str>) -> Option<Self> {
        let path = physical_id
            .strip_prefix("arn:")
            .and_then(|rest| rest.split_once(":service/"))
            .map(|(_, path)| path);
        match (path.and_then(|p| p.split_once('/')), cluster) {
            (Some((from_arn, _)), _) => Some(ServiceRef {
                cluster: from_arn.to_string(),
                service: physical_id.to_string(),
            }),
            (None, Some(cluster)) if !physical_id.is_empty() => Some(ServiceRef {
                cluster: cluster.to_string(),
                service: physical_id.to_string(),
            }),
            (None, _) => None,
        }
    }
}

/// Starts a new deployment of the service (its tasks start again and read the secret's
/// current value); returns the new deployment's id.
pub async fn force_new_deployment(
    clients: &Clients,
    service: &ServiceRef,
) -> Result<String, AwsError> {
    let out = clients
        .ecs
        .update_service()
        .cluster(&service.cluster)
        .service(&service.service)
        .force_new_deployment(true)
        .send()
        .await
        .map_err(|e| AwsError::call("ecs:UpdateService", e))?;
    let primary = out
        .service()
        .into_iter()
        .flat_map(|s| s.deployments())
        .find(|d| d.status() == Some("PRIMARY"))
        .and_then(|d| d.id());
    primary.map(str::to_string).ok_or_else(|| {
        AwsError::other(
            "ecs:UpdateService",
            crate::error::ErrorKind::Other,
            format!(
                "UpdateService answered without a primary deployment for {}",
                service.service
            ),
        )
    })
}

/// One look at the rollout of deployment `deployment_id` of the service.
pub async fn rollout(
    clients: &Clients,
    service: &ServiceRef,
    deployment_id: &str,
) -> Result<Rollout, AwsError> {
    let out = clients
        .ecs
        .describe_services()
        .cluster(&service.cluster)
        .services(&service.service)
        .send()
        .await
        .map_err(|e| AwsError::call("ecs:DescribeServices", e))?;
    let Some(found) = out.services().first() else {
        return Ok(Rollout::Gone);
    };
    let deployments: Vec<DeploymentView<'_>> = found
        .deployments()
        .iter()
        .map(|d| DeploymentView {
            id: d.id().unwrap_or_default(),
            status: d.status().unwrap_or_default(),
            rollout_state: d.rollout_state().map(|s| s.as_str()),
            rollout_reason: d.rollout_state_reason(),
        })
        .collect();
    Ok(rollout_of(deployment_id, found.status(), &deployments))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_named_from_their_physical_ids() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:service/prod/api";
        assert_eq!(
            ServiceRef::from_physical_id(arn, None),
            Some(ServiceRef {
                cluster: "prod".into(),
                service: arn.into()
            })
        );
        let old = "arn:aws:ecs:us-east-1:123456789012:service/api";
        assert_eq!(ServiceRef::from_physical_id(old, None), None);
        assert_eq!(
            ServiceRef::from_physical_id(old, Some("prod")).map(|s| s.cluster),
            Some("prod".into())
        );
        assert_eq!(ServiceRef::from_physical_id("", Some("prod")), None);
    }
}
