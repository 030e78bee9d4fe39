//! What moto cannot produce, with SDK-level mocks (aws-smithy-mocks): moto completes every
//! update at once (so IN_PROGRESS is never seen) and answers ListImports with HTTP 500 (so
//! an export imported elsewhere can only be shown this way). Everything else is tested
//! against the local stack.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
use aws_sdk_cloudformation::operation::get_stack_policy::GetStackPolicyOutput;
use aws_sdk_cloudformation::operation::get_template::GetTemplateOutput;
use aws_sdk_cloudformation::operation::list_exports::ListExportsOutput;
use aws_sdk_cloudformation::operation::list_imports::ListImportsOutput;
use aws_sdk_cloudformation::types::{Export, Stack, StackStatus};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use cascade_aws::Clients;
use cascade_aws::calls::CallCounter;
use cascade_aws::discovery::plan_secrets;
use cascade_aws::refresh::{PollPolicy, RefreshSettings, Refresher};
use cascade_aws::store::Store;
use cascade_core::plan::{Strategy, StrategyChoice};
use cascade_core::refresh::StackState;
use cascade_core::refresh::{Look, Observation, Settled, UpdateProgress, UpdateStep};
use cascade_core::report::{Outcome, Phase};
use cascade_core::secret::Secret;

fn stack(status: StackStatus) -> DescribeStacksOutput {
    DescribeStacksOutput::builder()
        .stacks(
            Stack::builder()
                .stack_name("app")
                .stack_id("arn:aws:cloudformation:us-east-1:123456789012:stack/app/1")
                .stack_status(status)
                .creation_time(aws_smithy_types::DateTime::from_secs(0))
                .build(),
        )
        .build()
}

fn refresher(cloudformation: Client, poll: PollPolicy) -> Refresher {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let unused = Clients::new(&config);
    Refresher {
        clients: Clients {
            cloudformation,
            calls: CallCounter::default(),
            ..unused
        },
        store: Store::Local(
            std::env::temp_dir().join(format!("cascade-mocked-{}", std::process::id())),
        ),
        settings: RefreshSettings {
            poll,
            execution_role_arn: None,
        },
    }
}

/// A recreate of `app` whose removal update was issued just now.
fn in_flight() -> StackState {
    let mut state = StackState {
        stack_name: "app".into(),
        stack_id: "id".into(),
        strategy: Some(Strategy::Recreate),
        resources: vec!["Fn".into()],
        phase: Phase::Begin,
        outcome: None,
        reason: None,
        failed_resources: vec![],
        started_at: None,
        finished_at: None,
        attempt: 1,
        update_issued_at: None,
        restore_before_retry: false,
        change_sets: vec![],
    };
    state.update_issued(UpdateStep::Remove, jiff::Timestamp::now());
    state
}

fn fast(max_wait: Duration) -> PollPolicy {
    PollPolicy {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
        max_wait,
    }
}

#[tokio::test]
async fn waiting_looks_again_while_the_update_is_in_progress() {
    let in_progress = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateInProgress))
        .times(2)
        .output(|| stack(StackStatus::UpdateCompleteCleanupInProgress))
        .output(|| stack(StackStatus::UpdateComplete))
        .build();
    let client = mock_client!(aws_sdk_cloudformation, RuleMode::Sequential, [&in_progress]);
    let r = refresher(client, fast(Duration::from_secs(30)));
    let Observation::Looked(look) = r
        .wait(&in_flight(), &Arc::new(AtomicBool::new(false)))
        .await
        .unwrap()
        .unwrap()
    else {
        panic!("gave up")
    };
    assert_eq!(look.progress, UpdateProgress::Complete);
    assert_eq!(look.status, "UPDATE_COMPLETE");
    assert_eq!(in_progress.num_calls(), 4);
}

#[tokio::test]
async fn waiting_gives_up_after_the_maximum_wait_or_when_cancelled() {
    let forever = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateInProgress))
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_cloudformation, RuleMode::Sequential, [&forever]);
    let r = refresher(client, fast(Duration::from_millis(60)));
    assert_eq!(
        r.wait(&in_flight(), &Arc::new(AtomicBool::new(false)))
            .await
            .unwrap(),
        Some(Observation::GaveUp {
            waited: Duration::from_millis(60)
        })
    );
    assert!(
        forever.num_calls() >= 2,
        "looked {} times",
        forever.num_calls()
    );

    let calls_before = forever.num_calls();
    let r = Refresher {
        settings: RefreshSettings {
            poll: fast(Duration::from_secs(600)),
            ..r.settings.clone()
        },
        ..r
    };
    assert_eq!(
        r.wait(&in_flight(), &Arc::new(AtomicBool::new(true)))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        forever.num_calls(),
        calls_before + 1,
        "a cancelled wait looks once and stops"
    );
}

#[tokio::test]
async fn giving_up_on_an_update_decides_by_phase() {
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::Sequential,
        [&mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateInProgress))]
    );
    let r = refresher(client, fast(Duration::from_millis(60)));
    let mut state = in_flight();
    let gave_up = || Observation::GaveUp {
        waited: Duration::from_millis(60),
    };
    // Still in progress: nothing decided.
    let in_progress = Look::at("UPDATE_IN_PROGRESS", None);
    assert_eq!(
        r.settle("b1", &mut state, Observation::Looked(in_progress))
            .await
            .unwrap(),
        Settled::Waiting
    );
    assert_eq!(state.outcome, None);
    // Gave up while resources may be removed: degraded, with how to go on.
    assert_eq!(
        r.settle("b1", &mut state, gave_up()).await.unwrap(),
        Settled::Concluded(Outcome::Degraded)
    );
    assert_eq!(state.outcome, Some(Outcome::Degraded));
    assert!(
        state
            .reason
            .as_deref()
            .unwrap()
            .contains("cascade run --retry-failed b1")
    );
    // Gave up on a pin: nothing was removed, so failed.
    state.retry();
    state.phase = Phase::Pin;
    r.settle("b1", &mut state, gave_up()).await.unwrap();
    assert_eq!(state.outcome, Some(Outcome::Failed));
}

const TEMPLATE: &str = r#"{"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"P": "{{resolve:secretsmanager:prod/db}}"}}},
 "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Fn", "Arn"]}, "Export": {"Name": "app-FnArn"}}}}"#;

fn secret() -> Secret {
    Secret::from_arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf").unwrap()
}

/// Discovery rules for one stack `app` exporting `app-FnArn`, then `imports`.
async fn plan_with_imports(imports: aws_smithy_mocks::Rule) -> Strategy {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateComplete));
    let template = mock!(Client::get_template)
        .then_output(|| GetTemplateOutput::builder().template_body(TEMPLATE).build());
    let exports = mock!(Client::list_exports).then_output(|| {
        ListExportsOutput::builder()
            .exports(
                Export::builder()
                    .name("app-FnArn")
                    .value("arn:fn")
                    .exporting_stack_id("arn:aws:cloudformation:us-east-1:123456789012:stack/app/1")
                    .build(),
            )
            .build()
    });
    let policy =
        mock!(Client::get_stack_policy).then_output(|| GetStackPolicyOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &template, &exports, &policy, &imports]
    );
    let r = refresher(client, PollPolicy::default());
    let plan = plan_secrets(&r.clients, &[secret()], StrategyChoice::Auto, 4)
        .await
        .unwrap();
    assert_eq!(
        imports.num_calls(),
        1,
        "ListImports asked for the export of the stack to recreate"
    );
    plan.stacks[0].strategy
}

#[tokio::test]
async fn an_export_imported_elsewhere_keeps_recreate_away() {
    let imported = mock!(Client::list_imports)
        .match_requests(|r| r.export_name() == Some("app-FnArn"))
        .then_output(|| {
            ListImportsOutput::builder()
                .imports("consumer-in-another-region-of-the-account")
                .build()
        });
    assert_eq!(plan_with_imports(imported).await, Strategy::Pin);
}

#[tokio::test]
async fn a_failing_list_imports_falls_back_to_the_templates() {
    let broken = mock!(Client::list_imports).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from("<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>"),
        )
    });
    assert_eq!(plan_with_imports(broken).await, Strategy::Recreate);
}
