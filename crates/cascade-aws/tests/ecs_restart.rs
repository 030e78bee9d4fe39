//! Restarting an ECS service that takes a secret by ARN (`Secrets[].ValueFrom`), against
//! the local stack: the service is named from its CloudFormation physical id, gets a new
//! deployment, and its rollout is read until it completes, or fails with ECS's reason
//! (the launcher's deployment patch, marker `cascade-test:fail-deployment`).

use cascade_aws::ecs::{ServiceRef, force_new_deployment, rollout};
use cascade_core::refresh::Rollout;
use cascade_tests::LocalStack;
use cascade_tests::fixtures::ecs_service_resources;

/// Creates the stack; returns the service as its physical id names it.
async fn service_of_stack(local: &LocalStack, name: &str, marker: &str) -> ServiceRef {
    let config = local.sdk_config().await;
    let secret = aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(format!("{name}/db"))
        .secret_string("{\"password\":\"not-logged\"}")
        .send()
        .await
        .unwrap();
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    cfn.create_stack()
        .stack_name(name)
        .template_body(
            serde_json::json!({"Resources": ecs_service_resources(name, secret.arn().unwrap(), marker)})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let resources = cfn
        .describe_stack_resources()
        .stack_name(name)
        .send()
        .await
        .unwrap();
    let physical = |id: &str| {
        resources
            .stack_resources()
            .iter()
            .find(|r| r.logical_resource_id() == Some(id))
            .and_then(|r| r.physical_resource_id())
            .unwrap_or_default()
            .to_string()
    };
    let cluster = physical("Cluster");
    ServiceRef::from_physical_id(&physical("Service"), Some(&cluster))
        .expect("the service has a physical id")
}

/// The service as DescribeServices shows it now.
async fn described(
    clients: &cascade_aws::Clients,
    service: &ServiceRef,
) -> aws_sdk_ecs::types::Service {
    clients
        .ecs
        .describe_services()
        .cluster(&service.cluster)
        .services(&service.service)
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone()
}

#[tokio::test]
async fn a_restart_is_a_new_deployment_of_the_same_service() {
    let local = LocalStack::start().unwrap();
    let clients = local.clients().await;
    let service = service_of_stack(&local, "orders", "normal").await;
    let before = described(&clients, &service).await;

    let deployment = force_new_deployment(&clients, &service).await.unwrap();
    assert_ne!(
        Some(deployment.as_str()),
        before.deployments()[0].id(),
        "a new deployment"
    );
    assert_eq!(
        rollout(&clients, &service, &deployment).await.unwrap(),
        Rollout::Completed
    );
    let after = described(&clients, &service).await;
    assert_eq!(after.service_arn(), before.service_arn());
    assert_eq!(
        rollout(&clients, &service, "ecs-svc/0000000000000000000")
            .await
            .unwrap(),
        Rollout::Failed(format!(
            "deployment ecs-svc/0000000000000000000 is no longer listed (rolled back or replaced; the primary deployment is {deployment})"
        ))
    );
}

#[tokio::test]
async fn a_failed_deployment_says_why() {
    let local = LocalStack::start().unwrap();
    let clients = local.clients().await;
    let service = service_of_stack(&local, "billing", "cascade-test:fail-deployment").await;
    let deployment = force_new_deployment(&clients, &service).await.unwrap();
    assert_eq!(
        rollout(&clients, &service, &deployment).await.unwrap(),
        Rollout::Failed("ECS deployment circuit breaker: tasks failed to start.".into())
    );
    let gone = ServiceRef {
        cluster: service.cluster.clone(),
        service: "no-such-service".into(),
    };
    let answer = rollout(&clients, &gone, &deployment).await;
    assert!(
        matches!(answer, Ok(Rollout::Gone) | Err(_)),
        "{answer:?}: a missing service is never a success"
    );
}
