//! The real state machine (statemachine.asl.json, deployed by `deploy()`) driven through
//! its control-flow paths with Step Functions Local-style mocked responses
//! (tests/fixtures/sfn/mock-config.json, `StartExecution` on `<arn>#<TestCase>`). States a
//! test case does not mock run for real: their Lambda invokes reach the real handlers in
//! the local Lambda server, which records them, so "no invocation" proves that an unmocked
//! state (RecordFailure, mostly) was never entered.
//!
//! What moto (5.2.5) shows of a DISTRIBUTED map, found by running it and reading
//! moto/stepfunctions/parser/asl/component/state/exec/state_map/iteration/:
//! - the mock test case IS applied inside the iterations (each iteration runs in an inner
//!   frame of the execution's environment, which carries the test case along), by state
//!   name (`Begin`, `PollUpdate`, ...), and every iteration starts at retry count 0, so
//!   every iteration gets response "0" of a state's mock;
//! - the parent history shows only MapStateEntered, MapStateStarted, MapRunStarted,
//!   MapRunSucceeded (or MapRunFailed), MapStateSucceeded, MapStateExited: the iterations'
//!   own events go to a throw-away event manager (in AWS each iteration is a child
//!   execution with its own history, which moto does not create either);
//! - ListMapRuns / DescribeMapRun work: itemCounts tell how many iterations succeeded or
//!   failed.
//!
//! So the cases whose point lies inside the map (HappyPath, FailingStack, Degraded) run
//! twice: on the real (DISTRIBUTED) machine, asserting the parent history, the map run's
//! counts and the output; and on an INLINE twin of it (the same definition with only
//! `ProcessorConfig` changed to `{"Mode": "INLINE"}`, deployed as
//! `secret-cascade-cascade-inline` with the same test cases), whose history holds
//! every iteration's states, asserting which states each iteration went through. The
//! other cases run on the real machine only.
//!
//! What mocks cannot express: a mocked response is chosen by retry count only, so every
//! iteration (every stack) gets the same one. "Only the middle stack fails" and "poll
//! twice, the second look completes" (a response by call number) cannot be written as
//! mocks. The first is covered with the real handlers by pipeline_e2e (a stack whose
//! restore fails in moto, among stacks that refresh) and, for the error's way from the
//! Catch to the handler, by `a_caught_error_reaches_the_real_record_failure_handler` here;
//! a mocked poll that answered "wait" would loop for ever.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType, MapRunStatus};
use cascade_core::intake::{ExecutionInput, RunOptions, Ticket, TicketSource};
use cascade_core::plan::StrategyChoice;
use cascade_lambda::Function;
use cascade_tests::deploy::{self, DeployOptions};
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
use cascade_tests::{ACCOUNT, workspace_root};
use serde_json::{Value, json};

/// The batch every mocked Discover returns (a gatekeeper batch id: 16 hex digits).
const BATCH: &str = "3f9c1a7b2d4e6f80";
/// The stacks DiscoverThreeStacks returns, in order.
const THREE_STACKS: [&str; 3] = [
    "prod-orders-api-service",
    "prod-billing-worker-queue",
    "prod-reporting-etl-nightly",
];
/// The state machine name of the INLINE twin (its test cases are in the mock config too).
const INLINE_NAME: &str = "secret-cascade-cascade-inline";

/// The states of one iteration of a recreated stack whose updates complete at the first
/// look (mocked: Begin "wait", PollUpdate "finish", Finish "wait", PollRestore "done").
const RECREATE_PATH: [&str; 11] = [
    "Begin",
    "AfterBegin",
    "WaitForUpdate",
    "PollUpdate",
    "AfterPollUpdate",
    "Finish",
    "AfterFinish",
    "WaitForRestore",
    "PollRestore",
    "AfterPollRestore",
    "StackDone",
];

fn mock_config_path() -> std::path::PathBuf {
    workspace_root().join("tests/fixtures/sfn/mock-config.json")
}

/// The execution input the gatekeeper would write for one `Secret Label Updated` ticket.
fn gatekeeper_input(batch_id: &str) -> String {
    let ticket = Ticket {
        secret_id: "prod/db".into(),
        secret_arn: Some(format!(
            "arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-AbCdEf"
        )),
        version_id: Some("a1b2c3d4-5678-90ab-cdef-EXAMPLE22222".into()),
        source: TicketSource::LabelUpdated,
        event_id: "7e2a3c1d-95b4-4f0e-8c36-0d2f1b9a6e47".into(),
        at: Some("2026-03-02T09:14:27Z".parse().unwrap()),
        actor: None,
        stacks: None,
    };
    ExecutionInput {
        batch_id: batch_id.into(),
        tickets: vec![ticket],
        secrets: vec!["prod/db".into()],
        stacks: None,
        options: RunOptions {
            strategy: StrategyChoice::Auto,
            poll_seconds: 1,
        },
    }
    .to_json()
}

/// A local stack with the real and the INLINE state machines, and the Lambda server (every
/// function's real handler) behind it.
struct Harness {
    pipeline: LocalPipeline,
    sfn: aws_sdk_sfn::Client,
    inline_arn: String,
}

impl Harness {
    async fn start() -> Harness {
        let pipeline = LocalPipeline::start(PipelineOptions {
            sfn_mock_config: Some(mock_config_path()),
            deploy: DeployOptions {
                poll_seconds: 1,
                ..DeployOptions::default()
            },
            ..PipelineOptions::default()
        })
        .await
        .unwrap();
        let sfn = aws_sdk_sfn::Client::new(&pipeline.config);
        // The map reads its stacks from the object a mocked Discover names.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&pipeline.config)
                .force_path_style(true)
                .build(),
        );
        for (key, stacks) in [
            ("batches/mocked-three/map-items.json", &THREE_STACKS[..]),
            ("batches/mocked-one/map-items.json", &THREE_STACKS[..1]),
        ] {
            s3.put_object()
                .bucket(&pipeline.deployment.bucket)
                .key(key)
                .body(serde_json::to_vec(stacks).unwrap().into())
                .send()
                .await
                .unwrap();
        }
        let inline_arn = pipeline.deploy_inline_twin(INLINE_NAME).await.unwrap();
        Harness {
            pipeline,
            sfn,
            inline_arn,
        }
    }

    /// Runs test case `case` on the real (DISTRIBUTED) machine.
    async fn run(&self, case: &str) -> Run {
        self.run_on(
            &self.pipeline.deployment.state_machine_arn.clone(),
            case,
            BATCH,
        )
        .await
    }

    /// Runs test case `case` on the INLINE twin.
    async fn run_inline(&self, case: &str) -> Run {
        self.run_on(&self.inline_arn.clone(), case, BATCH).await
    }

    async fn run_on(&self, state_machine_arn: &str, case: &str, batch_id: &str) -> Run {
        let started = Instant::now();
        let execution_arn = self
            .sfn
            .start_execution()
            .state_machine_arn(format!("{state_machine_arn}#{case}"))
            .name(format!("cascade-{batch_id}"))
            .input(gatekeeper_input(batch_id))
            .send()
            .await
            .unwrap_or_else(|e| panic!("StartExecution {case}: {e:?}"))
            .execution_arn()
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        let execution = loop {
            let out = self
                .sfn
                .describe_execution()
                .execution_arn(&execution_arn)
                .send()
                .await
                .unwrap();
            if *out.status() != ExecutionStatus::Running {
                break out;
            }
            assert!(
                Instant::now() < deadline,
                "{case}: still running after 60 s: {}",
                self.pipeline.local.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut events = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .sfn
                .get_execution_history()
                .execution_arn(&execution_arn)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            events.extend(page.events().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut map_runs = Vec::new();
        for run in self
            .sfn
            .list_map_runs()
            .execution_arn(&execution_arn)
            .send()
            .await
            .unwrap()
            .map_runs()
        {
            let described = self
                .sfn
                .describe_map_run()
                .map_run_arn(run.map_run_arn())
                .send()
                .await
                .unwrap();
            let counts = described.item_counts().expect("a map run has item counts");
            map_runs.push(MapRun {
                status: described.status().clone(),
                total: counts.total(),
                succeeded: counts.succeeded(),
                failed: counts.failed(),
            });
        }
        let run = Run {
            case: case.to_string(),
            status: execution.status().clone(),
            output: execution
                .output()
                .map(|o| serde_json::from_str(o).expect("the output is JSON"))
                .unwrap_or(Value::Null),
            events,
            map_runs,
            took: started.elapsed(),
        };
        if run.status != ExecutionStatus::Succeeded {
            eprintln!("{case}: {:?} {:?}", execution.error(), execution.cause());
            run.dump();
        }
        run
    }

    /// Every invocation of a function the real handlers got.
    fn invocations(&self, function: Function) -> Vec<Value> {
        self.pipeline
            .lambda
            .invocations
            .read()
            .unwrap()
            .iter()
            .filter(|(f, _)| *f == function)
            .map(|(_, payload)| payload.clone())
            .collect()
    }

    fn real_invocations(&self) -> usize {
        self.pipeline.lambda.invocations.read().unwrap().len()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct MapRun {
    status: MapRunStatus,
    total: i64,
    succeeded: i64,
    failed: i64,
}

/// One finished execution.
struct Run {
    case: String,
    status: ExecutionStatus,
    output: Value,
    events: Vec<HistoryEvent>,
    map_runs: Vec<MapRun>,
    took: Duration,
}

/// An event and the state it belongs to (the last state entered; None before the first).
struct Located<'a> {
    state: Option<&'a str>,
    event: &'a HistoryEvent,
}

impl Run {
    fn dump(&self) {
        for e in &self.events {
            eprintln!(
                "  {:>3} {:?} {}",
                e.id(),
                e.r#type(),
                e.state_entered_event_details()
                    .map(|d| d.name())
                    .unwrap_or_default()
            );
        }
    }

    fn located(&self) -> Vec<Located<'_>> {
        let mut state = None;
        self.events
            .iter()
            .map(|event| {
                if let Some(details) = event.state_entered_event_details() {
                    state = Some(details.name());
                }
                Located { state, event }
            })
            .collect()
    }

    /// The states entered, in order.
    fn entered(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| e.state_entered_event_details().map(|d| d.name()))
            .collect()
    }

    /// States entered outside any map iteration (the parent's own path).
    fn top_level_entered(&self) -> Vec<&str> {
        let mut depth = 0;
        let mut names = Vec::new();
        for e in &self.events {
            match e.r#type() {
                HistoryEventType::MapIterationStarted => depth += 1,
                HistoryEventType::MapIterationSucceeded
                | HistoryEventType::MapIterationFailed
                | HistoryEventType::MapIterationAborted => depth -= 1,
                _ => {
                    if let (0, Some(d)) = (depth, e.state_entered_event_details()) {
                        names.push(d.name());
                    }
                }
            }
        }
        names
    }

    /// For each map iteration, in the order they started: its index and the states it
    /// entered. Panics when two iterations overlap (MaxConcurrency is 1).
    fn iterations(&self) -> Vec<(i32, Vec<&str>)> {
        let mut done = Vec::new();
        let mut current: Option<(i32, Vec<&str>)> = None;
        for e in &self.events {
            if let Some(d) = e.map_iteration_started_event_details() {
                assert!(
                    current.is_none(),
                    "{}: iteration {} started while {:?} ran",
                    self.case,
                    d.index(),
                    current.as_ref().map(|c| c.0)
                );
                current = Some((d.index(), Vec::new()));
            } else if matches!(
                e.r#type(),
                HistoryEventType::MapIterationSucceeded
                    | HistoryEventType::MapIterationFailed
                    | HistoryEventType::MapIterationAborted
            ) {
                done.push(current.take().expect("an iteration ends after it starts"));
            } else if let (Some(c), Some(d)) = (current.as_mut(), e.state_entered_event_details()) {
                c.1.push(d.name());
            }
        }
        assert!(current.is_none(), "{}: an iteration never ended", self.case);
        done
    }

    fn count(&self, kind: HistoryEventType) -> usize {
        self.events.iter().filter(|e| *e.r#type() == kind).count()
    }

    /// Events of a type that belong to a state.
    fn count_in(&self, state: &str, kind: HistoryEventType) -> usize {
        self.located()
            .iter()
            .filter(|l| l.state == Some(state) && *l.event.r#type() == kind)
            .count()
    }

    /// The errors of the TaskFailed events of a state, in order.
    fn task_errors(&self, state: &str) -> Vec<String> {
        self.located()
            .iter()
            .filter(|l| l.state == Some(state))
            .filter_map(|l| l.event.task_failed_event_details())
            .map(|d| d.error().unwrap_or_default().to_string())
            .collect()
    }

    fn assert_succeeded(&self) {
        assert_eq!(
            self.status,
            ExecutionStatus::Succeeded,
            "{}: {:#}",
            self.case,
            self.output
        );
        assert_eq!(self.count(HistoryEventType::ExecutionSucceeded), 1);
    }

    /// The parent side of a DISTRIBUTED map that ran and finished.
    fn assert_map_ran(&self, items: i64) {
        for kind in [
            HistoryEventType::MapStateEntered,
            HistoryEventType::MapStateStarted,
            HistoryEventType::MapRunStarted,
            HistoryEventType::MapRunSucceeded,
            HistoryEventType::MapStateSucceeded,
            HistoryEventType::MapStateExited,
        ] {
            assert_eq!(self.count(kind.clone()), 1, "{}: one {kind:?}", self.case);
        }
        assert_eq!(self.count(HistoryEventType::MapRunFailed), 0);
        // No iteration event in the parent: in AWS they are child executions; moto drops them.
        assert_eq!(self.count(HistoryEventType::MapIterationStarted), 0);
        assert_eq!(
            self.map_runs,
            vec![MapRun {
                status: MapRunStatus::Succeeded,
                total: items,
                succeeded: items,
                failed: 0,
            }],
            "{}: every iteration succeeded (its errors were caught inside it)",
            self.case
        );
    }
}

/// The same test cases for the real machine and its INLINE twin.
#[test]
fn the_inline_twin_has_the_same_test_cases_as_the_real_machine() {
    let text = std::fs::read_to_string(mock_config_path()).unwrap();
    let config: Value = serde_json::from_str(&text).unwrap();
    let machines = &config["StateMachines"];
    let name = deploy::state_machine_name(&deploy::template().unwrap()).unwrap();
    let real = &machines[name.as_str()]["TestCases"];
    assert!(real.is_object(), "the real machine has test cases");
    assert_eq!(real, &machines[INLINE_NAME]["TestCases"]);
    // Every response named exists, and every state named is a state of the definition.
    let definition = std::fs::read_to_string(deploy::state_machine_path()).unwrap();
    for (case, states) in real.as_object().unwrap() {
        for (state, response) in states.as_object().unwrap() {
            assert!(
                definition.contains(&format!("\"{state}\": {{")),
                "{case}: no state {state}"
            );
            let response = response.as_str().unwrap();
            assert!(
                config["MockedResponses"][response].is_object(),
                "{case}: no response {response}"
            );
        }
    }
}

/// Discover gives three stacks; each goes begin → wait → poll ("finish") → finish → wait →
/// poll ("done"); Report and Notify are mocked. RecordFailure is NOT mocked: any iteration
/// that failed would have called the real refresh handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_refreshes_every_stack_then_reports_and_notifies() {
    let h = Harness::start().await;
    let run = h.run("HappyPath").await;
    run.assert_succeeded();
    assert_eq!(
        run.entered(),
        ["Discover", "RefreshEachStack", "Report", "Notify", "Done"]
    );
    run.assert_map_ran(3);
    assert_eq!(run.count(HistoryEventType::TaskFailed), 0);
    assert_eq!(run.output["discovery"]["stack_count"], 3);
    assert_eq!(run.output["report"]["totals"]["refreshed"], 3);
    assert_eq!(
        run.output["report"]["report_key"],
        format!("reports/{BATCH}/report.json")
    );
    assert_eq!(run.output["notify"], json!({"delivered": true}));
    assert!(run.output.get("error").is_none(), "the map did not stop");
    assert_eq!(h.real_invocations(), 0, "RecordFailure never entered");

    let inline = h.run_inline("HappyPath").await;
    inline.assert_succeeded();
    let iterations = inline.iterations();
    assert_eq!(
        iterations.iter().map(|i| i.0).collect::<Vec<_>>(),
        [0, 1, 2],
        "one stack at a time, in discovery order"
    );
    for (index, states) in &iterations {
        assert_eq!(states, &RECREATE_PATH, "iteration {index}");
    }
    assert_eq!(
        inline.top_level_entered(),
        [
            "Discover",
            "LoadMapItems",
            "RefreshEachStack",
            "Report",
            "Notify",
            "Done"
        ],
        "the twin reads the map's items in a state of its own"
    );
    assert_eq!(h.real_invocations(), 0);
}

/// Begin throws StackUpdateFailed (not retried) for every stack: each iteration is caught
/// into RecordFailure (mocked) → StackDone, so the map run still succeeds and Report runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stack_is_recorded_and_the_map_goes_on() {
    let h = Harness::start().await;
    let run = h.run("FailingStack").await;
    run.assert_succeeded();
    assert_eq!(
        run.entered(),
        ["Discover", "RefreshEachStack", "Report", "Notify", "Done"]
    );
    run.assert_map_ran(3);
    assert!(run.output.get("error").is_none(), "the map did not stop");
    assert_eq!(run.output["report"]["totals"]["failed"], 3);
    assert_eq!(h.real_invocations(), 0);

    let inline = h.run_inline("FailingStack").await;
    inline.assert_succeeded();
    let iterations = inline.iterations();
    assert_eq!(iterations.len(), 3);
    for (index, states) in &iterations {
        assert_eq!(
            states,
            &["Begin", "RecordFailure", "StackDone"],
            "iteration {index}"
        );
    }
    assert_eq!(
        inline.task_errors("Begin"),
        [
            "StackUpdateFailed",
            "StackUpdateFailed",
            "StackUpdateFailed"
        ]
    );
    assert_eq!(
        inline.count_in("Begin", HistoryEventType::TaskScheduled),
        3,
        "StackUpdateFailed is not retried"
    );
    assert_eq!(
        inline.count_in("RecordFailure", HistoryEventType::TaskSucceeded),
        3
    );
    let mut twin = run.entered();
    twin.insert(1, "LoadMapItems");
    assert_eq!(inline.top_level_entered(), twin);
}

/// A degraded stack (its restore failed: the refresh handler decides it and answers "done")
/// goes the normal way, not through RecordFailure; the report carries the count.
/// Control flow only: the decision itself is the handler's (unit tests, pipeline_e2e).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_stack_ends_normally_and_is_reported() {
    let h = Harness::start().await;
    let run = h.run("Degraded").await;
    run.assert_succeeded();
    run.assert_map_ran(1);
    assert_eq!(
        run.output["report"]["totals"],
        json!({"refreshed": 0, "failed": 0, "skipped": 0, "degraded": 1})
    );
    assert_eq!(run.output["notify"]["delivered"], true);
    // RecordFailure is not mocked in this case: entering it would have invoked the handler.
    assert_eq!(h.real_invocations(), 0, "RecordFailure never entered");

    let inline = h.run_inline("Degraded").await;
    inline.assert_succeeded();
    let iterations = inline.iterations();
    assert_eq!(iterations.len(), 1);
    assert_eq!(iterations[0].1, RECREATE_PATH);
    assert!(!inline.entered().contains(&"RecordFailure"));
    assert_eq!(inline.count(HistoryEventType::TaskFailed), 0);
}

/// Notify throws NotificationFailed (not in its Retry list): caught into the NotifyFailed
/// Pass, and the execution still succeeds with the report in its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_notification_does_not_fail_the_run() {
    let h = Harness::start().await;
    let run = h.run("NotifyFails").await;
    run.assert_succeeded();
    assert_eq!(
        run.entered(),
        [
            "Discover",
            "RefreshEachStack",
            "Report",
            "Notify",
            "NotifyFailed",
            "Done"
        ]
    );
    assert_eq!(run.task_errors("Notify"), ["NotificationFailed"]);
    assert_eq!(
        run.count_in("Notify", HistoryEventType::TaskScheduled),
        1,
        "not retried"
    );
    assert_eq!(run.count(HistoryEventType::PassStateEntered), 1);
    assert_eq!(run.output["notify_error"]["Error"], "NotificationFailed");
    assert!(
        run.output["notify_error"]["Cause"]
            .as_str()
            .unwrap()
            .contains("the report is saved")
    );
    assert!(run.output.get("notify").is_none());
    assert_eq!(run.output["report"]["totals"]["refreshed"], 1);
    assert_eq!(h.real_invocations(), 0);
}

/// Discover is throttled once (Lambda.TooManyRequestsException, retried after up to 2 s of
/// full jitter), then answers: one state entry, two attempts, and the run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_discover_is_retried() {
    let h = Harness::start().await;
    let run = h.run("ThrottledRetry").await;
    run.assert_succeeded();
    assert_eq!(
        run.entered(),
        ["Discover", "RefreshEachStack", "Report", "Notify", "Done"]
    );
    assert_eq!(run.count_in("Discover", HistoryEventType::TaskScheduled), 2);
    assert_eq!(
        run.task_errors("Discover"),
        ["Lambda.TooManyRequestsException"]
    );
    assert_eq!(run.count_in("Discover", HistoryEventType::TaskSucceeded), 1);
    // The retry happened inside the state: Scheduled, Started, Failed, Scheduled, Started,
    // Succeeded, then the state exits once.
    let discover: Vec<HistoryEventType> = run
        .located()
        .iter()
        .filter(|l| l.state == Some("Discover"))
        .map(|l| l.event.r#type().clone())
        .collect();
    assert_eq!(
        discover,
        [
            HistoryEventType::TaskStateEntered,
            HistoryEventType::TaskScheduled,
            HistoryEventType::TaskStarted,
            HistoryEventType::TaskFailed,
            HistoryEventType::TaskScheduled,
            HistoryEventType::TaskStarted,
            HistoryEventType::TaskSucceeded,
            HistoryEventType::TaskStateExited,
        ]
    );
    run.assert_map_ran(1);
    assert!(run.took < Duration::from_secs(10), "took {:?}", run.took);
    assert_eq!(h.real_invocations(), 0);
}

/// Discover fails for good (AwsCallFailed is not retried): DiscoveryFailed, then the REAL
/// report and notify handlers (not mocked) write a report that says why, and the run
/// succeeds without entering the map.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_discovery_is_reported_by_the_real_report_handler() {
    let h = Harness::start().await;
    let run = h.run("DiscoveryFails").await;
    run.assert_succeeded();
    assert_eq!(
        run.entered(),
        ["Discover", "DiscoveryFailed", "Report", "Notify", "Done"]
    );
    assert_eq!(run.task_errors("Discover"), ["AwsCallFailed"]);
    assert_eq!(run.count_in("Discover", HistoryEventType::TaskScheduled), 1);
    assert_eq!(run.count(HistoryEventType::MapStateEntered), 0);
    assert!(run.map_runs.is_empty());
    assert_eq!(run.output["discovery"]["batch_id"], Value::Null);
    assert_eq!(run.output["discovery"]["error"]["Error"], "AwsCallFailed");

    // The real handlers ran: Report with the whole state, Notify without a webhook.
    assert_eq!(h.invocations(Function::Report).len(), 1);
    assert_eq!(
        h.invocations(Function::Report)[0]["input"]["discovery"]["error"]["Error"],
        "AwsCallFailed"
    );
    assert_eq!(run.output["notify"], json!({"delivered": false}));
    let key = format!("reports/{BATCH}/report.json");
    assert_eq!(run.output["report"]["report_key"], key.as_str());
    let report = h.pipeline.read_report(&key).await.unwrap();
    assert_eq!(
        report["totals"],
        json!({"refreshed": 0, "failed": 0, "skipped": 0, "degraded": 0})
    );
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Exactly that note: Discover's error is kept under $.discovery, so nothing claims the
    // refresh map stopped.
    assert_eq!(
        notes,
        [
            "discovery failed: AwsCallFailed: cloudformation:ListStacks failed: AccessDenied: not authorized"
        ]
    );
}

const APP: &str = "Resources:
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
  Service:
    Type: AWS::AppRunner::Service
    Properties:
      Secret: '{{resolve:secretsmanager:prod/db:SecretString:password}}'
";

/// Mixed mocked and real: the REAL Discover plans three seeded stacks, Begin (mocked)
/// throws StackUpdateFailed for each, and the REAL RecordFailure, Report and Notify run.
/// Shows that the error the Catch puts at `$.error` reaches the handler in the shape it
/// reads (Error, and the Lambda error body as Cause), per stack, in discovery order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_error_reaches_the_real_record_failure_handler() {
    let h = Harness::start().await;
    let clients = h.pipeline.clients.clone();
    clients
        .secrets
        .create_secret()
        .name("prod/db")
        .secret_string("{\"password\":\"first\"}")
        .send()
        .await
        .unwrap();
    for name in THREE_STACKS {
        clients
            .cloudformation
            .create_stack()
            .stack_name(name)
            .template_body(APP)
            .send()
            .await
            .unwrap();
    }
    clients
        .secrets
        .put_secret_value()
        .secret_id("prod/db")
        .secret_string("{\"password\":\"second\"}")
        .send()
        .await
        .unwrap();

    let run = h.run("FailingStackRecorded").await;
    run.assert_succeeded();
    run.assert_map_ran(3);
    let items: Vec<String> = serde_json::from_value(
        h.pipeline
            .read_json(run.output["discovery"]["items_key"].as_str().unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    let planned: BTreeSet<&str> = items.iter().map(String::as_str).collect();
    assert_eq!(planned, BTreeSet::from(THREE_STACKS));

    let records = h.invocations(Function::Refresh);
    assert_eq!(
        records
            .iter()
            .map(|r| r["stack"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        items.iter().map(String::as_str).collect::<Vec<_>>(),
        "one record-failure per stack, in discovery order"
    );
    for record in &records {
        assert_eq!(record["action"], "record-failure");
        assert_eq!(record["batch_id"], BATCH);
        assert_eq!(record["error"]["Error"], "StackUpdateFailed");
    }
    assert!(h.pipeline.lambda.errors.read().unwrap().is_empty());
    assert_eq!(
        run.output["report"]["totals"],
        json!({"refreshed": 0, "failed": 3, "skipped": 0, "degraded": 0})
    );

    let report = h
        .pipeline
        .read_report(&format!("reports/{BATCH}/report.json"))
        .await
        .unwrap();
    for stack in report["stacks"].as_array().unwrap() {
        assert_eq!(stack["outcome"], "failed");
        let reason = stack["reason"].as_str().unwrap();
        assert!(
            reason.ends_with(
                "StackUpdateFailed: UpdateStack failed: the stack is UPDATE_ROLLBACK_COMPLETE"
            ),
            "{reason}"
        );
    }
    // Begin was mocked: no stack was touched.
    for name in THREE_STACKS {
        let stack = clients
            .cloudformation
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .unwrap();
        assert_eq!(
            stack.stacks()[0].stack_status().map(|s| s.as_str()),
            Some("CREATE_COMPLETE")
        );
    }
}

/// A throttled Refresh step (Lambda's 429, Lambda.TooManyRequestsException) is retried in
/// its state (backoff with full jitter), then answers: the stack goes on to be refreshed
/// and nothing is recorded as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_refresh_step_is_retried_and_the_stack_refreshed() {
    let h = Harness::start().await;
    let run = h.run_inline("ThrottledStack").await;
    run.assert_succeeded();
    let iterations = run.iterations();
    assert_eq!(iterations.len(), 1);
    assert!(
        !iterations[0].1.contains(&"RecordFailure"),
        "{:?}",
        iterations[0].1
    );
    assert_eq!(
        run.task_errors("Begin"),
        ["Lambda.TooManyRequestsException"]
    );
    assert_eq!(run.count_in("Begin", HistoryEventType::TaskScheduled), 2);
    assert_eq!(run.count_in("Begin", HistoryEventType::TaskSucceeded), 1);
    assert_eq!(run.output["report"]["totals"]["refreshed"], 1);
    assert_eq!(h.real_invocations(), 0);
}

/// A Refresh step whose function timed out (Lambda's `Sandbox.Timedout`, "Task timed out
/// after 900.00 seconds") is not retried: it is caught in its iteration and recorded as that stack's failure, and
/// the map goes on with the next stacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_refresh_step_is_that_stacks_failure_and_the_map_goes_on() {
    let h = Harness::start().await;
    let run = h.run_inline("TimedOutStack").await;
    run.assert_succeeded();
    let iterations = run.iterations();
    assert_eq!(iterations.len(), 3, "the map went on");
    for (index, states) in &iterations {
        assert_eq!(
            states,
            &["Begin", "RecordFailure", "StackDone"],
            "iteration {index}"
        );
    }
    assert_eq!(
        run.task_errors("Begin"),
        ["Sandbox.Timedout", "Sandbox.Timedout", "Sandbox.Timedout"]
    );
    assert_eq!(
        run.count_in("Begin", HistoryEventType::TaskScheduled),
        3,
        "a timeout is not retried"
    );
    assert_eq!(
        run.count_in("RecordFailure", HistoryEventType::TaskSucceeded),
        3
    );
    assert_eq!(run.output["report"]["totals"]["failed"], 3);
}
