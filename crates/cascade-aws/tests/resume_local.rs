//! A run that dies between issuing an update and saving the stack's new phase: the next
//! run must recognise its own update instead of skipping the stack or updating it again.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use cascade_aws::discovery::plan_secrets;
use cascade_aws::refresh::{PollPolicy, RefreshSettings, Refresher};
use cascade_aws::run::{Quiet, run_batch};
use cascade_aws::secrets::resolve_secrets;
use cascade_aws::store::Store;
use cascade_core::batch::keys;
use cascade_core::plan::StrategyChoice;
use cascade_core::refresh::StackState;
use cascade_core::report::{Outcome, Phase};
use cascade_tests::{LocalStack, update_completes};

const APP: &str = "Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: '{{resolve:secretsmanager:prod/db:SecretString:password}}'
  Keep:
    Type: AWS::CloudFormation::WaitConditionHandle
";

#[tokio::test]
async fn a_begin_that_died_before_saving_is_recognised_on_resume() {
    let local = LocalStack::start().unwrap();
    let config = local.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    sm.create_secret()
        .name("prod/db")
        .secret_string("{\"password\":\"p\"}")
        .send()
        .await
        .unwrap();
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    cfn.create_stack()
        .stack_name("app")
        .template_body(APP)
        .send()
        .await
        .unwrap();
    let original = cfn
        .get_template()
        .stack_name("app")
        .send()
        .await
        .unwrap()
        .template_body()
        .unwrap()
        .to_string();

    let clients = local.clients().await;
    let dir = std::env::temp_dir().join(format!("cascade-resume-{}", std::process::id()));
    let refresher = Refresher {
        clients: clients.clone(),
        store: Store::Local(dir.clone()),
        settings: RefreshSettings {
            poll: PollPolicy {
                initial: Duration::from_millis(10),
                max: Duration::from_millis(50),
                max_wait: Duration::from_secs(30),
            },
            execution_role_arn: None,
        },
    };
    let secrets = resolve_secrets(&clients, &["prod/db".to_string()])
        .await
        .unwrap();
    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Auto, 4)
        .await
        .unwrap();
    let manifest = refresher
        .batches()
        .start("b-crash", "cli", &secrets, StrategyChoice::Auto, plan)
        .await
        .unwrap();

    // begin issues the removal and saves phase Remove ...
    let mut state = StackState::planned(&manifest.plan.stacks[0]);
    refresher
        .begin(&manifest, &manifest.plan.stacks[0].clone(), &mut state)
        .await
        .unwrap();
    assert_eq!(state.phase, Phase::Remove);
    // ... but pretend the process died before that save: the store still says Begin.
    let before_crash = StackState::planned(&manifest.plan.stacks[0]);
    refresher
        .store
        .put_json(&keys::state("b-crash", "app"), &before_crash)
        .await
        .unwrap();
    assert_eq!(
        update_completes(&cfn, "app").await.unwrap(),
        1,
        "the removal happened"
    );

    let manifest = refresher.batches().manifest("b-crash").await.unwrap();
    let summary = run_batch(
        &refresher,
        manifest,
        &Quiet,
        &Arc::new(AtomicBool::new(false)),
    )
    .await
    .unwrap();
    assert_eq!(
        summary.report.stacks[0].outcome,
        Outcome::Refreshed,
        "{:?}",
        summary.report.stacks[0].reason
    );
    assert_eq!(
        update_completes(&cfn, "app").await.unwrap(),
        2,
        "removal once, restore once: no second removal"
    );
    let now = cfn
        .get_template()
        .stack_name("app")
        .send()
        .await
        .unwrap()
        .template_body()
        .unwrap()
        .to_string();
    assert_eq!(
        now, original,
        "the original template is back, byte for byte"
    );
    let resources = cfn
        .list_stack_resources()
        .stack_name("app")
        .send()
        .await
        .unwrap();
    assert!(
        resources
            .stack_resource_summaries()
            .iter()
            .any(|r| r.logical_resource_id() == Some("Topic"))
    );
    let _ = std::fs::remove_dir_all(dir);
}
