//! The whole serverless path on the local stack: a realistic `Secret Label Updated` event
//! → EventBridge rule → FIFO ticket queue → gatekeeper → the real state machine
//! (statemachine.asl.json in moto's interpreter) → the real handlers (through the local
//! Lambda server) → stacks refreshed in moto → report in S3 → Slack message at a local sink.

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use cascade_core::secret::AWSCURRENT;
use cascade_lambda::Function;
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
use cascade_tests::slack_sink::SlackSink;
use cascade_tests::update_completes;
use serde_json::{Value, json};

const APP: &str = "Resources:
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
  Service:
    Type: AWS::AppRunner::Service
    Properties:
      Secret: '{{resolve:secretsmanager:prod/db:SecretString:password}}'
";

const DATABASE: &str = "Resources:
  Db:
    Type: AWS::RDS::DBInstance
    Properties:
      Engine: postgres
      DBInstanceClass: db.t3.micro
      AllocatedStorage: '20'
      MasterUsername: admin
      MasterUserPassword: '{{resolve:secretsmanager:prod/db:SecretString:password}}'
";

/// Removing `Service` works, but putting it back fails (the marker is only in it).
const BROKEN_RESTORE: &str = "Resources:
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
  Service:
    Type: AWS::AppRunner::Service
    Metadata:
      Note: MotoSimulateUpdateFailure
    Properties:
      Secret: '{{resolve:secretsmanager:prod/db:SecretString:password}}'
";

async fn wait_for_execution(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .unwrap();
        if *out.status() != ExecutionStatus::Running || Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_change_flows_through_the_whole_pipeline() {
    let sink = SlackSink::start().await.unwrap();
    let pipeline = LocalPipeline::start(PipelineOptions::notifying(&sink.url))
        .await
        .unwrap();
    let (config, clients, deployment, lambda) = (
        &pipeline.config,
        &pipeline.clients,
        &pipeline.deployment,
        &pipeline.lambda,
    );

    // The consumers of prod/db.
    let db = clients
        .secrets
        .create_secret()
        .name("prod/db")
        .secret_string("{\"password\":\"first\"}")
        .send()
        .await
        .unwrap();
    let cfn = &clients.cloudformation;
    for (name, body) in [
        ("app", APP),
        ("database", DATABASE),
        ("broken-restore", BROKEN_RESTORE),
    ] {
        let mut create = cfn.create_stack().stack_name(name).template_body(body);
        if name != "database" {
            // These exercise removal and restore; auto would pin their dynamic references.
            create = create.tags(
                aws_sdk_cloudformation::types::Tag::builder()
                    .key("cascade:strategy")
                    .value("recreate")
                    .build(),
            );
        }
        create.send().await.unwrap();
    }
    // A stack needing all three actions through the state machine: an SSM parameter
    // pinned and an IAM policy (scoped through a parameter) removed in one update, the
    // policy restored with the pin kept, then the ECS service taking prod/db by ARN
    // restarted.
    let orders =
        cascade_tests::fixtures::mixed_actions_template("orders", "prod/db", db.arn().unwrap());
    cfn.create_stack()
        .stack_name("orders")
        .template_body(orders.to_string())
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("DbSecretArn")
                .parameter_value(db.arn().unwrap())
                .build(),
        )
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityNamedIam)
        .send()
        .await
        .unwrap();
    let orders_deployments = || async {
        let out = clients
            .ecs
            .describe_services()
            .cluster("orders-cluster")
            .services("orders-svc")
            .send()
            .await
            .unwrap();
        out.services()[0]
            .deployments()
            .iter()
            .filter_map(|d| d.id().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let orders_before = orders_deployments().await;
    let original_app = cfn
        .get_template()
        .stack_name("app")
        .send()
        .await
        .unwrap()
        .template_body()
        .unwrap()
        .to_string();

    // Someone updates the secret; Secrets Manager would emit this event (moto does not).
    let new_version = clients
        .secrets
        .put_secret_value()
        .secret_id("prod/db")
        .secret_string("{\"password\":\"second\"}")
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    let events = aws_sdk_eventbridge::Client::new(config);
    let put = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("aws.secretsmanager")
                .detail_type("Secret Label Updated")
                .resources(db.arn().unwrap())
                .detail(json!({"name": "prod/db", "labelUpdated": AWSCURRENT, "versionId": new_version}).to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_entry_count(), 0);

    // The ticket is in the FIFO queue.
    let sqs = aws_sdk_sqs::Client::new(config);
    let depth = |sqs: aws_sdk_sqs::Client, url: String| async move {
        let out = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        out.attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        depth(sqs.clone(), deployment.queue_url.clone()).await,
        1,
        "the event became one ticket"
    );

    // The schedule never fires locally: invoke the deployed gatekeeper as it would.
    let outcome = pipeline
        .invoke(
            Function::Gatekeeper,
            &json!({"source": "aws.events", "detail-type": "Scheduled Event"}),
        )
        .await
        .unwrap();
    assert!(
        outcome["outcome"].as_str().unwrap().starts_with("Started"),
        "{outcome}"
    );
    let sfn = aws_sdk_sfn::Client::new(config);
    let executions = sfn
        .list_executions()
        .state_machine_arn(&deployment.state_machine_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(executions.executions().len(), 1);
    let execution_arn = executions.executions()[0].execution_arn().to_string();
    let execution = wait_for_execution(&sfn, &execution_arn).await;
    if *execution.status() != ExecutionStatus::Succeeded {
        let history = sfn
            .get_execution_history()
            .execution_arn(&execution_arn)
            .send()
            .await
            .unwrap();
        for event in history.events() {
            eprintln!("{:?}", event.r#type());
        }
        eprintln!("handler errors: {:#?}", lambda.errors.read().unwrap());
    }
    assert_eq!(
        *execution.status(),
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        execution.error(),
        execution.cause()
    );
    assert_eq!(
        depth(sqs.clone(), deployment.queue_url.clone()).await,
        0,
        "the ticket was deleted"
    );

    // The stacks in moto: app removed and re-added (2 updates), back to its exact template;
    // database pinned to the new version (1 update); broken-restore degraded.
    assert_eq!(update_completes(cfn, "app").await.unwrap(), 2);
    let app_now = cfn
        .get_template()
        .stack_name("app")
        .send()
        .await
        .unwrap()
        .template_body()
        .unwrap()
        .to_string();
    assert_eq!(app_now, original_app);
    assert_eq!(update_completes(cfn, "database").await.unwrap(), 1);
    let database_now = cfn
        .get_template()
        .stack_name("database")
        .send()
        .await
        .unwrap()
        .template_body()
        .unwrap()
        .to_string();
    assert!(
        database_now.contains(&format!("::{new_version}}}}}")),
        "{database_now}"
    );

    // The report in S3.
    let s3 = aws_sdk_s3::Client::new(config);
    let listed = s3
        .list_objects_v2()
        .bucket(&deployment.bucket)
        .prefix("reports/")
        .send()
        .await
        .unwrap();
    let json_key = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .find(|k| k.ends_with("report.json"))
        .expect("a JSON report")
        .to_string();
    let report = pipeline.read_report(&json_key).await.unwrap();
    assert_eq!(
        report["totals"],
        json!({"refreshed": 3, "failed": 0, "skipped": 0, "degraded": 1})
    );
    // The mixed stack: pinned and the policy removed, restored, then the service restarted
    // (a new deployment); only the policy was deleted.
    let orders_line = report["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack_name"] == "orders")
        .expect("orders in the report");
    assert_eq!(
        (&orders_line["outcome"], &orders_line["strategy"]),
        (&json!("refreshed"), &json!("recreate")),
        "{orders_line:#}"
    );
    assert_eq!(orders_line["change_sets"].as_array().map(Vec::len), Some(2));
    let orders_after = orders_deployments().await;
    assert!(
        orders_after.iter().all(|d| !orders_before.contains(d)),
        "a new deployment: {orders_after:?} after {orders_before:?}"
    );
    assert_eq!(update_completes(cfn, "orders").await.unwrap(), 2);
    let orders_now: Value = serde_json::from_str(
        cfn.get_template()
            .stack_name("orders")
            .send()
            .await
            .unwrap()
            .template_body()
            .unwrap(),
    )
    .unwrap();
    assert!(
        orders_now["Resources"]["PasswordParameter"]["Properties"]["Value"]
            .as_str()
            .unwrap()
            .ends_with(&format!("::{new_version}}}}}")),
        "{orders_now:#}"
    );
    assert_eq!(
        orders_now["Resources"]["ReadSecretPolicy"],
        orders["Resources"]["ReadSecretPolicy"]
    );
    let deleted: std::collections::BTreeSet<String> = cfn
        .describe_stack_events()
        .stack_name("orders")
        .send()
        .await
        .unwrap()
        .stack_events()
        .iter()
        .filter(|e| {
            e.resource_status()
                .is_some_and(|s| s.as_str() == "DELETE_COMPLETE")
        })
        .filter_map(|e| e.logical_resource_id().map(str::to_string))
        .collect();
    assert_eq!(deleted, ["ReadSecretPolicy".to_string()].into());
    assert_eq!(report["stacks"][0]["stack_name"], "broken-restore");
    assert_eq!(report["stacks"][0]["outcome"], "degraded");
    assert!(
        report["execution"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:states:")
    );
    assert_eq!(report["secrets"][0]["version_id"], new_version.as_str());
    assert!(
        listed
            .contents()
            .iter()
            .any(|o| o.key().is_some_and(|k| k.ends_with("report.md")))
    );

    // Slack got the message.
    let received = sink.bodies();
    assert_eq!(received.len(), 1);
    let message: Value = serde_json::from_str(&received[0]).unwrap();
    let text = message["text"].as_str().unwrap();
    assert!(
        text.contains("1 degraded") && text.contains("3 refreshed"),
        "{text}"
    );

    // Nothing secret anywhere the pipeline wrote or sent.
    for value in ["first", "second"] {
        let needle = format!("\"password\":\"{value}\"");
        assert!(!received[0].contains(&needle));
        assert!(!report.to_string().contains(&needle));
    }
    assert_eq!(lambda.count(Function::Discover), 1);
    assert!(
        lambda.count(Function::Refresh) >= 6,
        "begin, poll, finish, poll per recreated stack"
    );
}

/// Fault: S3 does not take the report (every PutObject under reports/ answers 503, beyond
/// the Report step's retries). What happens: the stack is refreshed all the same; Notify
/// tells Slack anyway, from the batch's saved states, saying first that the report is not
/// saved and how to build it; the execution then fails (`ReportNotSaved`) so that it shows
/// and alarms. What the user sees: the Slack message with the totals and that note.
#[tokio::test]
async fn a_report_s3_will_not_take_is_told_on_slack_and_fails_the_execution() {
    let sink = SlackSink::start().await.unwrap();
    let pipeline = LocalPipeline::start(PipelineOptions {
        unavailable: Some("s3:PutObject@/reports/".into()),
        ..PipelineOptions::notifying(&sink.url)
    })
    .await
    .unwrap();
    let error = pipeline
        .one_pinned_stack_batch("prod/unsaved", "unsaved-report-app")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no report"), "{error}");
    let sfn = aws_sdk_sfn::Client::new(&pipeline.config);
    let execution = sfn
        .list_executions()
        .state_machine_arn(&pipeline.deployment.state_machine_arn)
        .send()
        .await
        .unwrap()
        .executions()[0]
        .clone();
    assert_eq!(execution.status(), &ExecutionStatus::Failed);
    let described = sfn
        .describe_execution()
        .execution_arn(execution.execution_arn())
        .send()
        .await
        .unwrap();
    assert_eq!(described.error(), Some("ReportNotSaved"));

    let bodies = sink.bodies();
    assert_eq!(bodies.len(), 1, "one Slack message: {bodies:?}");
    let message = &bodies[0];
    assert!(message.contains("could not be saved to S3"), "{message}");
    assert!(message.contains("cascade report"), "{message}");
    assert!(message.contains("1 refreshed"), "{message}");
    assert!(
        !message.contains("second"),
        "no secret value in the message"
    );
    // The stack itself was refreshed: pinned to the new version.
    let template = pipeline
        .clients
        .cloudformation
        .get_template()
        .stack_name("unsaved-report-app")
        .send()
        .await
        .unwrap()
        .template_body()
        .unwrap_or_default()
        .to_string();
    assert!(template.contains("::"), "pinned to a version: {template}");
}
