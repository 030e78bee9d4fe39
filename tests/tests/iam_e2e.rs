//! Least privilege, proven by running it: the application deployed from template.yaml
//! (through the SAM transform) on a local stack that enforces IAM, each function acting with
//! the credentials of its own deployed role. One action taken out of one role must show as
//! an access denied that names the action and the role, on the stack it stopped, with the
//! stack left as it was. (The whole pipeline passing under the same enforcement, with the
//! template as written, is pipeline_e2e.)

use cascade_tests::deploy::{self, DeployOptions};
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};

/// A stack that pins its reference (an SSM parameter's value: updated in place).
const API: &str = "Resources:
  Token:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /team/api/token
      Type: String
      Value: '{{resolve:secretsmanager:team/api:SecretString:token}}'
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_action_is_an_access_denied_naming_the_action_and_the_role() {
    let action = "cloudformation:CreateChangeSet";
    let template =
        deploy::without_action(deploy::template().unwrap(), "RefreshFunction", action).unwrap();
    let pipeline = LocalPipeline::start(PipelineOptions {
        deploy: DeployOptions {
            poll_seconds: 1,
            template: Some(template),
            ..DeployOptions::default()
        },
        ..PipelineOptions::default()
    })
    .await
    .unwrap();
    let clients = &pipeline.clients;
    let secret = clients
        .secrets
        .create_secret()
        .name("team/api")
        .secret_string(r#"{"token":"first"}"#)
        .send()
        .await
        .unwrap();
    let cfn = &clients.cloudformation;
    cfn.create_stack()
        .stack_name("api")
        .template_body(API)
        .send()
        .await
        .unwrap();
    let template_of = |name: &'static str| async move {
        cfn.get_template()
            .stack_name(name)
            .send()
            .await
            .unwrap()
            .template_body()
            .unwrap()
            .to_string()
    };
    let before = template_of("api").await;
    let version = clients
        .secrets
        .put_secret_value()
        .secret_id("team/api")
        .secret_string(r#"{"token":"second"}"#)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    pipeline
        .secret_label_updated("team/api", secret.arn().unwrap(), &version)
        .await
        .unwrap();

    let (execution, report) = pipeline.run_batch().await.unwrap();
    let report = report.expect("the batch wrote its report");
    assert_eq!(report["totals"]["failed"], 1, "{execution:?}\n{report:#}");
    let line = report["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack_name"] == "api")
        .expect("api in the report");
    assert_eq!(line["outcome"], "failed", "{line:#}");
    let reason = line.to_string();
    assert!(reason.contains("access denied"), "{line:#}");
    assert!(reason.contains(action), "the action is named: {line:#}");
    let role = cfn
        .describe_stack_resource()
        .stack_name(deploy::STACK_NAME)
        .logical_resource_id("RefreshFunctionRole")
        .send()
        .await
        .unwrap()
        .stack_resource_detail()
        .and_then(|r| r.physical_resource_id())
        .unwrap()
        .to_string();
    assert!(
        reason.contains(&format!("assumed-role/{role}/")),
        "the role is named ({role}): {line:#}"
    );
    // Nothing was sent to CloudFormation for it: the stack is as it was.
    assert_eq!(template_of("api").await, before);
}
