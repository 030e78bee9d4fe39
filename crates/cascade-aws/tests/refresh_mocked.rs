//! What moto cannot produce, with SDK-level mocks (aws-smithy-mocks): moto completes every
//! update at once (so IN_PROGRESS is never seen), creates change sets at once and never
//! pages their changes, and answers ListImports with HTTP 500 (so an export imported
//! elsewhere can only be shown this way). Everything else is tested
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
    let mut state = StackState::new("app", "id", Some(Strategy::Recreate), vec!["Fn".into()]);
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

/// The function takes the secret's name from a parameter: only recreate refreshes it.
const TEMPLATE: &str = r#"{"Parameters": {"Name": {"Type": "String", "Default": "prod/db"}},
 "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"P": {"Ref": "Name"}}}},
 "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Fn", "Arn"]}, "Export": {"Name": "app-FnArn"}}}}"#;

fn secret() -> Secret {
    Secret::from_arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf").unwrap()
}

/// Discovery rules for one stack `app` exporting `app-FnArn`, then `imports`: the strategy
/// planned, or `None` when the stack is skipped.
async fn plan_with_imports(imports: aws_smithy_mocks::Rule) -> Option<Strategy> {
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
    plan.stacks.first().map(|p| p.strategy)
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
    // Recreate is the only way to refresh it, and it is not safe: skipped.
    assert_eq!(plan_with_imports(imported).await, None);
}

#[tokio::test]
async fn a_failing_list_imports_falls_back_to_the_templates() {
    let broken = mock!(Client::list_imports).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from("<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>"),
        )
    });
    assert_eq!(plan_with_imports(broken).await, Some(Strategy::Recreate));
}

/// A template the reader cannot parse (one CloudFormation took, e.g. written by a tool with
/// another YAML reader) skips its stack: named, with where and why, and no call that would
/// change it (issue 12, part 4). A mock: the local stack cannot hold a template it cannot
/// parse itself.
#[tokio::test]
async fn a_template_that_cannot_be_parsed_skips_its_stack_with_the_position() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateComplete));
    let template = mock!(Client::get_template).then_output(|| {
        GetTemplateOutput::builder()
            .template_body("Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties: {P: [prod/db\n")
            .build()
    });
    let exports = mock!(Client::list_exports).then_output(|| ListExportsOutput::builder().build());
    let policy =
        mock!(Client::get_stack_policy).then_output(|| GetStackPolicyOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &template, &exports, &policy]
    );
    let r = refresher(client, PollPolicy::default());
    let plan = plan_secrets(&r.clients, &[secret()], StrategyChoice::Auto, 4)
        .await
        .unwrap();
    assert!(plan.stacks.is_empty(), "{:?}", plan.stacks);
    assert_eq!(plan.skipped.len(), 1, "{:?}", plan.skipped);
    let skipped = &plan.skipped[0];
    assert_eq!(
        skipped.code,
        cascade_core::plan::SkipCode::TemplateUnreadable
    );
    assert!(
        skipped.reason.starts_with(
            "its template could not be read: the template is not valid: line 5, column "
        ),
        "{}",
        skipped.reason
    );
}

// ------------------------------------------------------------------ change sets

use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
use aws_sdk_cloudformation::operation::delete_change_set::DeleteChangeSetOutput;
use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
use aws_sdk_cloudformation::operation::execute_change_set::ExecuteChangeSetOutput;
use aws_sdk_cloudformation::types::{
    Change, ChangeAction, ChangeSetStatus, ExecutionStatus, ResourceChange,
};
use cascade_core::batch::{STATE_SCHEMA_VERSION, SavedOriginal};
use cascade_core::plan::StackPlan;

const CHANGE_SET: &str = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/cs/1";
const NOT_FOUND: &str = "<ErrorResponse><Error><Type>Sender</Type><Code>ChangeSetNotFound</Code><Message>ChangeSet [x] does not exist</Message></Error></ErrorResponse>";

fn change_set_page(
    status: ChangeSetStatus,
    changes: &[(&str, ChangeAction)],
    next: Option<&str>,
) -> DescribeChangeSetOutput {
    let execution = if status == ChangeSetStatus::CreateComplete {
        ExecutionStatus::Available
    } else {
        ExecutionStatus::Unavailable
    };
    let mut out = DescribeChangeSetOutput::builder()
        .change_set_id(CHANGE_SET)
        .status(status)
        .execution_status(execution)
        .set_next_token(next.map(str::to_string));
    for (id, action) in changes {
        out = out.changes(
            Change::builder()
                .resource_change(
                    ResourceChange::builder()
                        .logical_resource_id(*id)
                        .resource_type("AWS::Lambda::Function")
                        .action(action.clone())
                        .build(),
                )
                .build(),
        );
    }
    out.build()
}

/// The restore of a recreate whose closure is `Fn` and `Alias`, after its removal.
async fn restore_with(
    batch: &'static str,
    second_page: (&'static str, ChangeAction),
) -> (StackState, [usize; 4]) {
    let describe = mock!(Client::describe_change_set)
        .sequence()
        .http_status(400, Some(NOT_FOUND.into()))
        .output(|| change_set_page(ChangeSetStatus::CreatePending, &[], None))
        .output(|| change_set_page(ChangeSetStatus::CreateInProgress, &[], None))
        .output(|| {
            change_set_page(
                ChangeSetStatus::CreateComplete,
                &[("Fn", ChangeAction::Add)],
                Some("page-2"),
            )
        })
        .output(move || {
            change_set_page(
                ChangeSetStatus::CreateComplete,
                std::slice::from_ref(&second_page),
                None,
            )
        })
        .build();
    let create = mock!(Client::create_change_set)
        .match_requests(|r| {
            r.change_set_type() == Some(&aws_sdk_cloudformation::types::ChangeSetType::Update)
                && r.change_set_name()
                    == Some(
                        cascade_core::refresh::change_set_name(
                            batch,
                            "app",
                            UpdateStep::Restore,
                            1,
                        )
                        .as_str(),
                    )
        })
        .then_output(|| CreateChangeSetOutput::builder().id(CHANGE_SET).build());
    let execute = mock!(Client::execute_change_set)
        .match_requests(|r| {
            r.change_set_name() == Some(CHANGE_SET)
                && r.client_request_token()
                    == Some(
                        cascade_core::refresh::client_request_token(batch, UpdateStep::Restore, 1)
                            .as_str(),
                    )
        })
        .then_output(|| ExecuteChangeSetOutput::builder().build());
    let delete =
        mock!(Client::delete_change_set).then_output(|| DeleteChangeSetOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &create, &execute, &delete]
    );
    let r = refresher(client, fast(Duration::from_secs(30)));
    let original = r#"{"Resources": {"Fn": {"Type": "AWS::Lambda::Function"}, "Alias": {"Type": "AWS::Lambda::Alias"}, "Role": {"Type": "AWS::IAM::Role"}}}"#;
    let state = finish_after_removal(&r, batch, original).await;
    let calls = [
        describe.num_calls(),
        create.num_calls(),
        execute.num_calls(),
        delete.num_calls(),
    ];
    (state, calls)
}

/// An update whose template is over CloudFormation's 1 MB is refused before any call
/// (no upload, no change set), with the size, the limit and what to do; a restore refused
/// so leaves the stack degraded, with the command that restores it (issue 12, part 4).
#[tokio::test]
async fn an_update_over_the_1_mb_limit_is_refused_before_any_call() {
    let create = mock!(Client::create_change_set)
        .then_output(|| CreateChangeSetOutput::builder().id(CHANGE_SET).build());
    // No change set from an earlier try.
    let describe = mock!(Client::describe_change_set).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(NOT_FOUND),
        )
    });
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&create, &describe]
    );
    let r = refresher(client, fast(Duration::from_secs(30)));
    let batch = "b-too-large";
    let filler = "x".repeat(cascade_core::refresh::MAX_TEMPLATE_BYTES);
    let original = format!(
        r#"{{"Metadata": {{"Filler": "{filler}"}}, "Resources": {{"Fn": {{"Type": "AWS::Lambda::Function"}}, "Alias": {{"Type": "AWS::Lambda::Alias"}}}}}}"#
    );
    let state = finish_after_removal(&r, batch, &original).await;
    assert_eq!(create.num_calls(), 0, "no change set is created");
    assert_eq!(state.outcome, Some(Outcome::Degraded), "{state:?}");
    let reason = state.reason.unwrap();
    assert!(
        reason.contains(&format!(
            "the template of this update is {} bytes, over CloudFormation's limit of 1000000 bytes",
            original.len()
        )),
        "{reason}"
    );
    assert!(
        reason.contains("make the stack's template smaller"),
        "{reason}"
    );
}

/// moto creates a change set at once and never pages its changes: here the change set is
/// pending, then in progress, then complete over two pages, and every page is read.
#[tokio::test]
async fn a_change_set_is_waited_for_and_every_page_of_changes_read() {
    let (state, [describes, creates, executes, deletes]) =
        restore_with("b-cs-paged", ("Alias", ChangeAction::Add)).await;
    assert_eq!(
        (state.phase, state.outcome),
        (Phase::Restore, None),
        "{state:?}"
    );
    assert!(state.update_issued_at.is_some());
    assert_eq!(state.change_sets, [CHANGE_SET]);
    assert_eq!((describes, creates, executes, deletes), (5, 1, 1, 0));
}

/// A change on the second page that the restore does not mean (a modified Role) refuses
/// the change set: deleted, not executed, and the stack degraded (its resources stay
/// removed).
#[tokio::test]
async fn a_change_on_a_later_page_refuses_the_change_set() {
    let (state, [describes, creates, executes, deletes]) =
        restore_with("b-cs-refused", ("Role", ChangeAction::Modify)).await;
    assert_eq!(state.outcome, Some(Outcome::Degraded), "{state:?}");
    let reason = state.reason.unwrap();
    assert!(reason.contains("was refused"), "{reason}");
    assert!(reason.contains("Role"), "{reason}");
    assert!(state.change_sets.is_empty());
    assert_eq!((describes, creates, executes, deletes), (5, 1, 0, 1));
}

/// The restore of stack `app` of `batch` after its removal completed, from the saved
/// `original` (a recreate of `Fn` and `Alias`): the state it leaves.
async fn finish_after_removal(r: &Refresher, batch: &str, original: &str) -> StackState {
    r.batches()
        .save_original(
            batch,
            &SavedOriginal {
                schema_version: STATE_SCHEMA_VERSION,
                stack_id: "id".into(),
                stack_name: "app".into(),
                template_body: original.into(),
                parameters: vec![],
                capabilities: vec![],
                role_arn: None,
                notification_arns: vec![],
                tags: vec![],
                saved_at: "2026-11-26T00:00:00Z".into(),
            },
        )
        .await
        .unwrap();
    let plan: StackPlan = serde_json::from_value(serde_json::json!({
        "stack_name": "app", "stack_id": "id", "strategy": "recreate", "secrets": ["prod/db"],
        "resources": ["Fn"], "closure": ["Fn", "Alias"], "outputs": [],
        "needs_placeholder": false, "references": [], "template_digest": "d"
    }))
    .unwrap();
    let mut state = in_flight();
    state.update_issued_at = None;
    state.phase = Phase::Remove;
    let manifest = cascade_core::batch::BatchManifest::new(
        batch,
        "cli",
        jiff::Timestamp::now(),
        vec![],
        cascade_core::plan::StrategyChoice::Auto,
        cascade_core::plan::Plan::empty(vec![]),
    );
    r.finish(&manifest, &plan, &mut state).await.unwrap();
    state
}
