//! How an ECS service's new deployment reads while it rolls out: the restart of a service
//! whose tasks read a secret when they start (DESIGN.md §2, `restart`).

use std::fmt;

/// What DescribeServices shows of one deployment of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentView<'a> {
    /// The deployment's id (`ecs-svc/...`).
    pub id: &'a str,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: &'a str,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`, when the service reports rollout states.
    pub rollout_state: Option<&'a str>,
    /// ECS's reason for the rollout state.
    pub rollout_reason: Option<&'a str>,
}

/// How far a restart's deployment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Tasks of the new deployment are still starting.
    InProgress,
    /// The new deployment is running: the service reads the new value.
    Completed,
    /// The deployment failed (the circuit breaker stopped it, or it was rolled back or
    /// replaced): ECS's reason.
    Failed(String),
    /// The service is gone (deleted, or draining).
    Gone,
}

impl fmt::Display for Rollout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rollout::InProgress => f.write_str("in progress"),
            Rollout::Completed => f.write_str("completed"),
            Rollout::Failed(reason) => write!(f, "failed: {reason}"),
            Rollout::Gone => f.write_str("the service is gone"),
        }
    }
}

/// Reads the rollout of deployment `deployment_id` from a service's status (`ACTIVE`,
/// `DRAINING`, `INACTIVE`; `None` when the service was not found) and deployments.
pub fn rollout_of(
    deployment_id: &str,
    service_status: Option<&str>,
    deployments: &[DeploymentView<'_>],
) -> Rollout {
    if !matches!(service_status, Some("ACTIVE")) {
        return Rollout::Gone;
    }
    let Some(ours) = deployments.iter().find(|d| d.id == deployment_id) else {
        let primary = deployments
            .iter()
            .find(|d| d.status == "PRIMARY")
            .map_or("none", |d| d.id);
        return Rollout::Failed(format!(
            "deployment {deployment_id} is no longer listed (rolled back or replaced; the primary deployment is {primary})"
        ));
    };
    let reason = || ours.rollout_reason.unwrap_or("no reason given").to_string();
    match ours.rollout_state {
        Some("COMPLETED") => Rollout::Completed,
        Some("FAILED") => Rollout::Failed(reason()),
        Some(_) => Rollout::InProgress,
        // No rollout states (an external deployment controller): done once it is the
        // only deployment left.
        None if ours.status == "PRIMARY" && deployments.len() == 1 => Rollout::Completed,
        None if ours.status == "INACTIVE" => Rollout::Failed(format!(
            "deployment {deployment_id} became inactive before it completed"
        )),
        None => Rollout::InProgress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d<'a>(id: &'a str, status: &'a str, state: Option<&'a str>) -> DeploymentView<'a> {
        DeploymentView {
            id,
            status,
            rollout_state: state,
            rollout_reason: state.map(|_| "ECS deployment circuit breaker: tasks failed to start."),
        }
    }

    #[test]
    fn a_rollout_reads_from_its_own_deployment() {
        let new = d("ecs-svc/2", "PRIMARY", Some("IN_PROGRESS"));
        let old = d("ecs-svc/1", "ACTIVE", Some("COMPLETED"));
        assert_eq!(
            rollout_of("ecs-svc/2", Some("ACTIVE"), &[new, old]),
            Rollout::InProgress
        );
        let done = d("ecs-svc/2", "PRIMARY", Some("COMPLETED"));
        assert_eq!(
            rollout_of("ecs-svc/2", Some("ACTIVE"), &[done]),
            Rollout::Completed
        );
        let failed = d("ecs-svc/2", "PRIMARY", Some("FAILED"));
        assert_eq!(
            rollout_of("ecs-svc/2", Some("ACTIVE"), &[failed, old]),
            Rollout::Failed("ECS deployment circuit breaker: tasks failed to start.".into())
        );
    }

    #[test]
    fn a_vanished_deployment_or_service_is_not_a_success() {
        let rolled_back = d("ecs-svc/3", "PRIMARY", Some("IN_PROGRESS"));
        let Rollout::Failed(reason) = rollout_of("ecs-svc/2", Some("ACTIVE"), &[rolled_back])
        else {
            panic!("a missing deployment must fail");
        };
        assert!(reason.contains("ecs-svc/3"), "{reason}");
        assert_eq!(rollout_of("ecs-svc/2", None, &[]), Rollout::Gone);
        assert_eq!(
            rollout_of("ecs-svc/2", Some("DRAINING"), &[]),
            Rollout::Gone
        );
        let external = d("ecs-svc/2", "PRIMARY", None);
        assert_eq!(
            rollout_of("ecs-svc/2", Some("ACTIVE"), &[external]),
            Rollout::Completed
        );
    }
}
