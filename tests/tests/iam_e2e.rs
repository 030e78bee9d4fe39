//! Least privilege, proven by running it: the application deployed from template.yaml
//! (through the SAM transform) on a local stack that enforces IAM, each function acting with
//! the credentials of its own deployed role. One action taken out of one role must show as
//! an access denied that names the action and the role, on the stack it stopped, with the
//! stack left as it was. (The whole pipeline passing under the same enforcement, with the
//! template as written, is pipeline_e2e.)

use cascade_tests::deploy::{self, DeployOptions};
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};

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
    let (before, report) = pipeline
        .one_pinned_stack_batch("team/api", "api")
        .await
        .unwrap();
    assert_eq!(report["totals"]["failed"], 1, "{report:#}");
    let line = report["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack_name"] == "api")
        .expect("api in the report");
    assert_eq!(line["outcome"], "failed", "{line:#}");
    let reason = line["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("access denied"), "{line:#}");
    assert!(
        reason.contains(&format!("not authorized to perform: {action}")),
        "the action is named: {line:#}"
    );
    let cfn = &pipeline.clients.cloudformation;
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
    let now = cfn.get_template().stack_name("api").send().await.unwrap();
    assert_eq!(now.template_body(), Some(before.as_str()));
}
