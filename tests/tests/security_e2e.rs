//! Security (issue 12, part 5), on the deployed pipeline (template.yaml on the local stack,
//! the real handlers behind the local Lambda server, IAM enforced):
//!
//! - a secret whose two values are unique canaries goes through the whole serverless path
//!   (a pinned stack, a recreated one, a pin + recreate + restart one, and one whose update
//!   fails), then the values are searched for, raw and encoded (JSON-escaped, base64 at
//!   every alignment, hex), in the handlers' logs, the Lambda invocations and errors, the
//!   executions' inputs, outputs and full histories (the parent's, and each iteration's
//!   through the INLINE twin, moto keeping no child executions), the map runs, every
//!   version of every object of the application's bucket (reports JSON and Markdown
//!   included), every Slack message, the stacks' templates and events, and the local
//!   stack's own log;
//! - the deployed bucket and queues are private and encrypted, and template.yaml says so;
//! - the Slack webhook URL comes from its secret only, and when Slack fails (500s,
//!   connection refused, no answer) its secret part is in no log line, error, report,
//!   history or Slack-failure note;
//! - every AWS call each function makes (counted per function by the clients'
//!   `CallCounter`) is granted to its role, and every action a role is granted is called by
//!   this run or listed below with the reason it is not.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use cascade_aws::slack::{RetryPolicy, SlackClient, SlackDelivery};
use cascade_tests::deploy::{self, iam_rows};
use cascade_tests::log_capture::{self, LogCapture};
use cascade_tests::pipeline::{LocalPipeline, PipelineOptions};
use cascade_tests::slack_sink::{Reply, SlackSink, status};
use serde_json::{Value, json};

/// What the handlers log at: template.yaml's `ApplicationLogLevel: INFO`, and Secret
/// Cascade's own crates at debug (more than Lambda shows, so a leak at debug shows too).
const LOG_DIRECTIVES: &str = "info,cascade_aws=debug,cascade_lambda=debug,cascade_core=debug";

const SECRET: &str = "security/db";

fn captured_logs() -> LogCapture {
    log_capture::install(LOG_DIRECTIVES).expect("the test process's subscriber")
}

/// A string no run writes by chance.
fn unique(label: &str) -> String {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{label}{random:016x}Zq")
}

// ------------------------------------------------------------------ finding a value

/// Standard base64 (RFC 4648, padded); `url_safe` with `-` and `_`.
fn base64(bytes: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What a value looks like wherever it could be written: as is; JSON-escaped once and
/// twice (a value inside a JSON string inside JSON, as Step Functions' payloads are); in
/// base64 (standard and URL-safe) wherever it starts in the encoded bytes (the characters
/// that depend on the value's bytes alone); in hex.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string()];
    let once = serde_json::to_string(value).expect("a string");
    let once = once[1..once.len() - 1].to_string();
    let twice = serde_json::to_string(&once).expect("a string");
    forms.push(twice[1..twice.len() - 1].to_string());
    forms.push(once);
    for url_safe in [false, true] {
        for offset in 0..3 {
            let mut bytes = vec![b'x'; offset];
            bytes.extend_from_slice(value.as_bytes());
            let encoded = base64(&bytes, url_safe);
            let start = if offset == 0 { 0 } else { 4 };
            let end = encoded.len().saturating_sub(4);
            if end > start + 8 {
                forms.push(encoded[start..end].to_string());
            }
        }
    }
    forms.push(value.bytes().map(|b| format!("{b:02x}")).collect());
    forms.push(value.bytes().map(|b| format!("{b:02X}")).collect());
    forms.sort();
    forms.dedup();
    forms
}

/// Each place (name, text) where one of `values` shows, in any of its [`forms`].
fn leaks(values: &[String], places: &[(String, String)]) -> Vec<String> {
    let needles: Vec<(String, String)> = values
        .iter()
        .flat_map(|v| forms(v).into_iter().map(move |f| (v.clone(), f)))
        .collect();
    let mut found = Vec::new();
    for (place, text) in places {
        for (value, needle) in &needles {
            if let Some(at) = text.find(needle.as_str()) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(80)
                    .map_or(0, |(i, _)| i);
                let to = (at + needle.len() + 80).min(text.len());
                let to = (to..=text.len())
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(text.len());
                found.push(format!(
                    "{place}: `{value}` as `{needle}` in …{}…",
                    &text[from..to]
                ));
            }
        }
    }
    found
}

/// The search finds a value in each form it claims to (so that a clean result means
/// something).
#[test]
fn the_search_finds_a_value_in_every_form() {
    let token = unique("canary");
    let value = json!({"username": "admin", "password": token}).to_string();
    let values = vec![token.clone(), value.clone()];
    assert!(leaks(&values, &[("clean".into(), "nothing here".into())]).is_empty());
    let cases = [
        ("raw", format!("log line {token} end")),
        (
            "json",
            json!({"input": json!({"v": value}).to_string()}).to_string(),
        ),
        ("b64-0", base64(value.as_bytes(), false)),
        ("b64-1", base64(format!("a{value}").as_bytes(), false)),
        ("b64-2", base64(format!("ab{token}cd").as_bytes(), false)),
        ("b64url", base64(format!("abc{value}").as_bytes(), true)),
        (
            "hex",
            token
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ),
    ];
    for (name, text) in cases {
        let found = leaks(&values, &[(name.to_string(), text.clone())]);
        assert!(!found.is_empty(), "{name} not found in {text}");
    }
    assert_eq!(base64(b"Man", false), "TWFu");
    assert_eq!(base64(b"Ma", false), "TWE=");
    assert_eq!(base64(b"\xfb\xff", true), "-_8=");
}

// ------------------------------------------------------------------ the scenario

/// What one batch through the deployed pipeline left, for the tests below.
struct Scenario {
    /// The secret's two values (JSON strings) and the canaries in them.
    values: Vec<String>,
    /// The Slack webhook URL's secret part.
    webhook_token: String,
    /// Everything the run wrote, logged, returned or sent, by where.
    places: Vec<(String, String)>,
    /// The batch's report.
    report: Value,
    /// The AWS calls each function made.
    calls: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// The deployed bucket's and queues' security settings.
    deployed: Deployed,
}

#[derive(Debug)]
struct Deployed {
    bucket_policy: Value,
    /// From the deployed template (moto does not apply it).
    versioning: Option<String>,
    encryption: Vec<String>,
    /// From the deployed template (moto does not apply it).
    public_access_block: Vec<Option<bool>>,
    /// Queue URL and its SqsManagedSseEnabled / KmsMasterKeyId.
    queues: Vec<(String, Option<String>, Option<String>)>,
}

fn scenario() -> &'static Scenario {
    static SCENARIO: OnceLock<Result<Scenario, String>> = OnceLock::new();
    let result = SCENARIO.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime
            .block_on(run_scenario())
            .map_err(|e| format!("{e:#}"))
    });
    match result {
        Ok(scenario) => scenario,
        Err(e) => panic!("the scenario did not run: {e}"),
    }
}

fn pinned_template(stack: &str, failing: bool) -> String {
    let marker = if failing {
        "    Metadata:\n      Note: MotoSimulateUpdateFailure\n"
    } else {
        ""
    };
    format!(
        "Resources:\n  Password:\n    Type: AWS::SSM::Parameter\n{marker}    Properties:\n      Name: /{stack}/password\n      Type: String\n      Value: '{{{{resolve:secretsmanager:{SECRET}:SecretString:password}}}}'\n"
    )
}

const RECREATED: &str = "Resources:
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
  Service:
    Type: AWS::AppRunner::Service
    Properties:
      Secret: '{{resolve:secretsmanager:security/db:SecretString:password}}'
Outputs:
  HandleId:
    Value: security-recreated-handle-value
    Export:
      Name: security-recreated-handle
";

async fn history(sfn: &aws_sdk_sfn::Client, arn: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    let mut token = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(arn)
            .set_next_token(token)
            .send()
            .await?;
        for event in page.events() {
            text.push_str(&format!("{event:?}\n"));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(text);
        }
    }
}

async fn execution_texts(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    label: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let described = sfn.describe_execution().execution_arn(arn).send().await?;
    let mut places = vec![
        (
            format!("{label}: input"),
            described.input().unwrap_or_default().to_string(),
        ),
        (
            format!("{label}: output"),
            described.output().unwrap_or_default().to_string(),
        ),
        (format!("{label}: described"), format!("{described:?}")),
        (format!("{label}: history"), history(sfn, arn).await?),
    ];
    for run in sfn
        .list_map_runs()
        .execution_arn(arn)
        .send()
        .await?
        .map_runs()
    {
        let described = sfn
            .describe_map_run()
            .map_run_arn(run.map_run_arn())
            .send()
            .await?;
        places.push((format!("{label}: map run"), format!("{described:?}")));
        // AWS lists a map run's child executions here (moto keeps none; the INLINE twin
        // shows what each iteration did).
        let children = sfn
            .list_executions()
            .map_run_arn(run.map_run_arn())
            .send()
            .await;
        if let Ok(children) = children {
            for child in children.executions() {
                places.push((
                    format!("{label}: child {}", child.name()),
                    history(sfn, child.execution_arn()).await?,
                ));
            }
        }
    }
    Ok(places)
}

async fn wait(sfn: &aws_sdk_sfn::Client, arn: &str) -> anyhow::Result<ExecutionStatus> {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let out = sfn.describe_execution().execution_arn(arn).send().await?;
        if *out.status() != ExecutionStatus::Running {
            return Ok(out.status().clone());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{arn} still runs after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every version of every object in the bucket (delete markers listed), by key.
async fn bucket_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut places = Vec::new();
    let mut key_marker = None;
    let mut version_marker = None;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await?;
        for version in page.versions() {
            let key = version.key().unwrap_or_default();
            let object = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.version_id().map(str::to_string))
                .send()
                .await?;
            let metadata = format!("{:?}", object.metadata());
            let body = object.body.collect().await?.into_bytes();
            places.push((
                format!("s3://{bucket}/{key} ({:?})", version.version_id()),
                format!("{metadata}\n{}", String::from_utf8_lossy(&body)),
            ));
        }
        for marker in page.delete_markers() {
            places.push((
                format!("s3://{bucket} delete marker"),
                format!("{marker:?}"),
            ));
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
    Ok(places)
}

async fn deployed_settings(pipeline: &LocalPipeline) -> anyhow::Result<Deployed> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&pipeline.config)
            .force_path_style(true)
            .build(),
    );
    let bucket = &pipeline.deployment.bucket;
    let policy = s3.get_bucket_policy().bucket(bucket).send().await?;

    let encryption = s3.get_bucket_encryption().bucket(bucket).send().await?;
    // moto's CloudFormation applies a bucket's BucketEncryption only (not its versioning
    // or public access block): those are read from the template the stack was deployed
    // with.
    let deployed = pipeline
        .clients
        .cloudformation
        .get_template()
        .stack_name(&pipeline.deployment.stack_id)
        .send()
        .await?;
    let deployed = cascade_core::template::read_template(deployed.template_body().unwrap_or(""))
        .map_err(|e| anyhow::anyhow!("the deployed template: {e}"))?;
    let (_, bucket_resource) = resources_of_type(&deployed, "AWS::S3::Bucket")
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no bucket deployed"))?;
    let properties = bucket_resource["Properties"].clone();
    let sqs = aws_sdk_sqs::Client::new(&pipeline.config);
    let mut queues = Vec::new();
    for url in [
        &pipeline.deployment.queue_url,
        &pipeline.deployment.dead_letter_url,
    ] {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::All)
            .send()
            .await?;
        let get = |name: A| attributes.attributes().and_then(|a| a.get(&name)).cloned();
        queues.push((
            url.clone(),
            get(A::SqsManagedSseEnabled),
            get(A::KmsMasterKeyId),
        ));
    }
    Ok(Deployed {
        bucket_policy: serde_json::from_str(policy.policy().unwrap_or("null"))?,
        encryption: encryption
            .server_side_encryption_configuration()
            .map(|c| {
                c.rules()
                    .iter()
                    .filter_map(|r| r.apply_server_side_encryption_by_default())
                    .map(|d| d.sse_algorithm().as_str().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        public_access_block: [
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        ]
        .iter()
        .map(|flag| properties["PublicAccessBlockConfiguration"][flag].as_bool())
        .collect(),
        versioning: properties["VersioningConfiguration"]["Status"]
            .as_str()
            .map(str::to_string),
        queues,
    })
}

async fn run_scenario() -> anyhow::Result<Scenario> {
    let logs = captured_logs();
    let sink = SlackSink::start().await?;
    let webhook_token = sink.path.rsplit('/').next().unwrap_or_default().to_string();
    let pipeline = LocalPipeline::start(PipelineOptions::notifying(&sink.url)).await?;
    let clients = &pipeline.clients;
    let cfn = &clients.cloudformation;
    let canaries = [unique("CanaryOne"), unique("CanaryTwo")];
    let values: Vec<String> = canaries
        .iter()
        .map(|c| json!({"username": "admin", "password": c}).to_string())
        .collect();
    let secret = clients
        .secrets
        .create_secret()
        .name(SECRET)
        .secret_string(&values[0])
        .send()
        .await?;
    let secret_arn = secret.arn().unwrap_or_default().to_string();
    let first_version = secret.version_id().unwrap_or_default().to_string();
    let recreate = aws_sdk_cloudformation::types::Tag::builder()
        .key("cascade:strategy")
        .value("recreate")
        .build();
    cfn.create_stack()
        .stack_name("pinned")
        .template_body(pinned_template("pinned", false))
        .send()
        .await?;
    cfn.create_stack()
        .stack_name("failing")
        .template_body(pinned_template("failing", true))
        .send()
        .await?;
    // Pinned by its author to the first version: reported, not refreshed (its versions
    // are listed to see whether the pin aged out).
    cfn.create_stack()
        .stack_name("author-pinned")
        .template_body(
            pinned_template("author-pinned", false)
                .replace(":password}}", &format!(":password::{first_version}}}}}")),
        )
        .send()
        .await?;
    cfn.create_stack()
        .stack_name("recreated")
        .template_body(RECREATED)
        .tags(recreate)
        .send()
        .await?;
    let orders = cascade_tests::fixtures::mixed_actions_template("orders", SECRET, &secret_arn);
    cfn.create_stack()
        .stack_name("orders")
        .template_body(orders.to_string())
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("DbSecretArn")
                .parameter_value(&secret_arn)
                .build(),
        )
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityNamedIam)
        .send()
        .await?;

    pipeline.change_secret(SECRET, &values[1]).await?;
    let (execution, report) = pipeline.run_batch().await?;
    let report = report.ok_or_else(|| anyhow::anyhow!("no report: {execution:?}"))?;
    let sfn = aws_sdk_sfn::Client::new(&pipeline.config);
    let parent = execution.execution_arn().to_string();

    // The same batch's input through the INLINE twin, whose history holds each iteration's
    // states (in AWS, each a child execution's history).
    let twin = pipeline
        .deploy_inline_twin("secret-cascade-cascade-inline")
        .await?;
    let mut input: Value = serde_json::from_str(execution.input().unwrap_or("{}"))?;
    input["batch_id"] = json!("security-inline-twin");
    let twin_execution = sfn
        .start_execution()
        .state_machine_arn(&twin)
        .name("security-inline-twin")
        .input(input.to_string())
        .send()
        .await?
        .execution_arn()
        .to_string();
    wait(&sfn, &twin_execution).await?;

    let mut places = Vec::new();
    places.extend(execution_texts(&sfn, &parent, "execution").await?);
    places.extend(execution_texts(&sfn, &twin_execution, "inline twin").await?);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&pipeline.config)
            .force_path_style(true)
            .build(),
    );
    let objects = bucket_objects(&s3, &pipeline.deployment.bucket).await?;
    anyhow::ensure!(
        objects.iter().any(|(k, _)| k.contains("report.md"))
            && objects.iter().any(|(k, _)| k.contains("report.json"))
            && objects.iter().any(|(k, _)| k.contains("/batches/")),
        "the bucket holds the reports and the batch state: {:?}",
        objects.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    places.extend(objects);
    for (i, body) in sink.bodies().into_iter().enumerate() {
        places.push((format!("Slack message {i}"), body));
    }
    anyhow::ensure!(!sink.bodies().is_empty(), "Slack got no message");
    for stack in ["pinned", "failing", "recreated", "orders", "author-pinned"] {
        let template = cfn.get_template().stack_name(stack).send().await?;
        places.push((
            format!("stack {stack}: template"),
            template.template_body().unwrap_or_default().to_string(),
        ));
        let events = cfn.describe_stack_events().stack_name(stack).send().await?;
        places.push((format!("stack {stack}: events"), format!("{events:?}")));
    }
    let lambda = &pipeline.lambda;
    places.push((
        "Lambda invocations".into(),
        format!("{:?}", lambda.invocations.read().expect("not poisoned")),
    ));
    places.push((
        "handler errors".into(),
        format!("{:?}", lambda.errors.read().expect("not poisoned")),
    ));
    places.push((
        "the local stack's log".into(),
        std::fs::read_to_string(&pipeline.local.log).unwrap_or_default(),
    ));
    let deployed = deployed_settings(&pipeline).await?;
    let calls = lambda.calls();
    // Last, so that every handler's lines are in.
    let logs = logs.text();
    anyhow::ensure!(
        logs.contains("Slack message delivered"),
        "the handlers' logs are captured"
    );
    places.push(("handler logs".into(), logs));

    let mut all_values = values.clone();
    all_values.extend(canaries);
    Ok(Scenario {
        values: all_values,
        webhook_token,
        places,
        report,
        calls,
        deployed,
    })
}

// ------------------------------------------------------------------ 1. the canary

#[test]
fn a_secret_value_appears_nowhere_on_the_serverless_path() {
    let scenario = scenario();
    let outcomes: BTreeMap<String, String> = scenario.report["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .map(|s| {
            (
                s["stack_name"].as_str().unwrap_or_default().to_string(),
                s["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(outcomes["pinned"], "refreshed", "{outcomes:?}");
    assert_eq!(outcomes["recreated"], "refreshed", "{outcomes:?}");
    assert_eq!(outcomes["orders"], "refreshed", "{outcomes:?}");
    assert_eq!(outcomes["failing"], "failed", "{outcomes:?}");
    let searched: BTreeSet<&str> = scenario
        .places
        .iter()
        .map(|(p, _)| p.split(':').next().unwrap_or(p))
        .collect();
    let found = leaks(&scenario.values, &scenario.places);
    assert!(
        found.is_empty(),
        "the secret's value leaked:\n{}",
        found.join("\n")
    );
    // The places searched are there and not empty.
    for (place, text) in &scenario.places {
        if place.contains("history") || place == "handler logs" || place.contains("report") {
            assert!(!text.is_empty(), "{place} is empty");
        }
    }
    assert!(searched.len() > 10, "{searched:?}");
}

// ------------------------------------------------------------------ 2. nothing public

#[test]
fn the_deployed_bucket_and_queues_are_private_and_encrypted() {
    let deployed = &scenario().deployed;
    let statements = deployed.bucket_policy["Statement"]
        .as_array()
        .expect("a bucket policy");
    assert!(
        statements.iter().any(denies_insecure_transport_on_bucket),
        "{:#}",
        deployed.bucket_policy
    );
    assert_eq!(deployed.versioning.as_deref(), Some("Enabled"));
    assert!(
        deployed
            .encryption
            .iter()
            .any(|a| a == "AES256" || a.starts_with("aws:kms")),
        "{deployed:?}"
    );
    assert_eq!(deployed.public_access_block, vec![Some(true); 4]);
    assert_eq!(deployed.queues.len(), 2);
    for (url, sse, kms) in &deployed.queues {
        assert!(
            sse.as_deref() == Some("true") || kms.is_some(),
            "{url} is not encrypted: {deployed:?}"
        );
    }
}

/// A `Deny` of `s3:*` to everyone on the bucket and its objects when
/// `aws:SecureTransport` is false (as deployed: resources are ARNs; in the template,
/// intrinsics).
fn denies_insecure_transport_on_bucket(statement: &Value) -> bool {
    let resources = match &statement["Resource"] {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    let text: Vec<String> = resources.iter().map(Value::to_string).collect();
    statement["Effect"] == "Deny"
        && (statement["Principal"] == "*" || statement["Principal"]["AWS"] == "*")
        && (statement["Action"] == "s3:*" || statement["Action"] == json!(["s3:*"]))
        && statement["Condition"]["Bool"]["aws:SecureTransport"]
            .as_str()
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        && text.iter().any(|r| r.contains("/*"))
        && text.iter().any(|r| !r.contains("/*"))
}

fn resources_of_type<'t>(template: &'t Value, kind: &str) -> Vec<(&'t String, &'t Value)> {
    template["Resources"]
        .as_object()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

/// template.yaml: the bucket denies non-TLS requests, is versioned, encrypted and closed
/// to the public; every queue is encrypted and denies non-TLS requests; every log group
/// has a retention; the state machine logs no execution data (inputs and outputs) and the
/// functions log at INFO at most (the SDK's debug and trace levels write requests and
/// answers, GetSecretValue's included).
#[test]
fn the_template_writes_nothing_public_or_unencrypted() {
    let template = deploy::template().unwrap();
    let buckets = resources_of_type(&template, "AWS::S3::Bucket");
    assert_eq!(buckets.len(), 1, "one bucket");
    for (id, bucket) in buckets {
        let p = &bucket["Properties"];
        assert_eq!(p["VersioningConfiguration"]["Status"], "Enabled", "{id}");
        let sse = &p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            ["SSEAlgorithm"];
        assert!(sse == "AES256" || sse == "aws:kms", "{id}: {sse}");
        for flag in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            assert_eq!(
                p["PublicAccessBlockConfiguration"][flag], true,
                "{id} {flag}"
            );
        }
        assert_eq!(
            p["OwnershipControls"]["Rules"][0]["ObjectOwnership"], "BucketOwnerEnforced",
            "{id}: no ACLs"
        );
        let policies: Vec<_> = resources_of_type(&template, "AWS::S3::BucketPolicy")
            .into_iter()
            .filter(|(_, policy)| policy["Properties"]["Bucket"] == json!({"Ref": id}))
            .collect();
        assert_eq!(policies.len(), 1, "{id} has one policy");
        let statements = policies[0].1["Properties"]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap();
        assert!(
            statements.iter().any(denies_insecure_transport_on_bucket),
            "{statements:#?}"
        );
        assert!(
            statements.iter().all(|s| s["Effect"] == "Deny"),
            "the bucket policy allows nothing to anyone: {statements:#?}"
        );
    }
    let queues = resources_of_type(&template, "AWS::SQS::Queue");
    assert_eq!(
        queues.len(),
        2,
        "the ticket queue and its dead-letter queue"
    );
    for (id, queue) in &queues {
        let p = &queue["Properties"];
        assert!(
            p["SqsManagedSseEnabled"] == true || !p["KmsMasterKeyId"].is_null(),
            "{id} is not encrypted"
        );
        let denied = resources_of_type(&template, "AWS::SQS::QueuePolicy")
            .into_iter()
            .filter(|(_, policy)| {
                policy["Properties"]["Queues"]
                    .as_array()
                    .is_some_and(|q| q.contains(&json!({"Ref": id})))
            })
            .flat_map(|(_, policy)| {
                policy["Properties"]["PolicyDocument"]["Statement"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .any(|s| {
                s["Effect"] == "Deny"
                    && s["Action"] == "sqs:*"
                    && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
            });
        assert!(denied, "{id}'s policy does not deny non-TLS requests");
    }
    for (id, group) in resources_of_type(&template, "AWS::Logs::LogGroup") {
        assert!(
            !group["Properties"]["RetentionInDays"].is_null(),
            "{id} keeps its logs forever"
        );
    }
    let machine = &template["Resources"]["StateMachine"]["Properties"];
    assert_eq!(machine["Logging"]["IncludeExecutionData"], false);
    assert!(
        ["ERROR", "FATAL", "OFF"].contains(&machine["Logging"]["Level"].as_str().unwrap()),
        "{}",
        machine["Logging"]
    );
    let logging = &template["Globals"]["Function"]["LoggingConfig"];
    assert_eq!(logging["LogFormat"], "JSON");
    let level = logging["ApplicationLogLevel"].as_str().unwrap();
    assert!(
        ["INFO", "WARN", "ERROR", "FATAL"].contains(&level),
        "{level}"
    );
    for (id, function) in resources_of_type(&template, "AWS::Serverless::Function") {
        let own = &function["Properties"]["LoggingConfig"]["ApplicationLogLevel"];
        assert!(
            own.is_null() || ["INFO", "WARN", "ERROR", "FATAL"].contains(&own.as_str().unwrap()),
            "{id}: {own}"
        );
    }
}

// ------------------------------------------------------------------ 3. the webhook URL

/// The webhook URL reaches the notify function only through its secret: the template
/// passes the secret's ARN (a parameter that accepts ARNs only), no function's
/// environment holds a URL, and the URL never shows in what the run wrote.
#[test]
fn the_webhook_url_comes_from_its_secret_only() {
    let template = deploy::template().unwrap();
    let parameter = &template["Parameters"]["SlackWebhookSecretArn"];
    assert_eq!(parameter["Type"], "String");
    let pattern = parameter["AllowedPattern"].as_str().unwrap();
    assert!(
        pattern.starts_with("^$|^arn:aws[a-z-]*:secretsmanager:"),
        "{pattern}"
    );
    let parameters = template["Parameters"].as_object().unwrap();
    assert!(
        parameters
            .keys()
            .all(|k| !k.to_ascii_lowercase().contains("url")),
        "no parameter takes a URL: {:?}",
        parameters.keys()
    );
    for (id, function) in resources_of_type(&template, "AWS::Serverless::Function") {
        let variables = function["Properties"]["Environment"]["Variables"]
            .as_object()
            .unwrap();
        for (name, value) in variables {
            let text = value.to_string();
            assert!(
                !name.to_ascii_uppercase().contains("URL") || name == "CASCADE_QUEUE_URL",
                "{id}: {name}"
            );
            assert!(!text.contains("http"), "{id}: {name} = {text}");
            assert!(!text.contains("hooks.slack.com"), "{id}: {name} = {text}");
        }
    }
    let notify = &template["Resources"]["NotifyFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        notify["CASCADE_SLACK_WEBHOOK_SECRET_ARN"],
        json!({"Ref": "SlackWebhookSecretArn"})
    );
    // The delivered run: its secret part is nowhere but at the sink.
    let scenario = scenario();
    let found = leaks(
        std::slice::from_ref(&scenario.webhook_token),
        &scenario.places,
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        timeout: Duration::from_millis(300),
        max_retry_after: Duration::from_millis(100),
        backoff: Duration::from_millis(10),
    }
}

/// The Slack client, failing every way it can (500, a closed port, no answer): the URL's
/// secret part is in no reason and no log line.
#[tokio::test]
async fn a_failing_slack_hears_no_url_in_reasons_or_logs() {
    let logs = captured_logs();
    let client = SlackClient::new(quick_policy()).unwrap();
    let message = json!({"text": "hello"});
    let mut reasons = Vec::new();
    let mut tokens = Vec::new();

    let failing = SlackSink::scripted(vec![status(500), status(503)]).await;
    tokens.push(failing.path.rsplit('/').next().unwrap().to_string());
    reasons.push(client.post_message(&failing.url, &message).await);

    let hanging = SlackSink::scripted(vec![Reply::Hang, Reply::Hang]).await;
    tokens.push(hanging.path.rsplit('/').next().unwrap().to_string());
    reasons.push(client.post_message(&hanging.url, &message).await);

    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let token = unique("ClosedPortToken");
    let url = format!("http://{closed}/services/T0CASCADE/B0CASCADE/{token}");
    tokens.push(token);
    reasons.push(client.post_message(&url, &message).await);

    let mut places = Vec::new();
    for (i, delivery) in reasons.iter().enumerate() {
        let SlackDelivery::GaveUp { reason, .. } = delivery else {
            panic!("delivered: {delivery:?}");
        };
        places.push((format!("reason {i}"), reason.clone()));
    }
    let text = logs.text();
    for what in ["Slack answered 503", "no answer within", "request failed"] {
        assert!(
            places.iter().any(|(_, r)| r.contains(what)),
            "{what}: {places:?}"
        );
        assert!(text.contains(what), "the log tells {what}: {text}");
    }
    places.push(("logs".into(), text));
    let found = leaks(&tokens, &places);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Through the deployed pipeline: Slack answers 500 to every attempt, then (the secret
/// moved to a closed port, same secret part) refuses the connection. The notify step fails
/// with `NotificationFailed`, caught by the state machine; the URL's secret part is in no
/// log line, handler error, history, object of the bucket, report or Slack message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_slack_keeps_the_webhook_url_out_of_the_pipeline() {
    let logs = captured_logs();
    let sink = SlackSink::scripted(vec![status(500); 8]).await;
    let token = sink.path.rsplit('/').next().unwrap().to_string();
    let pipeline = LocalPipeline::start(PipelineOptions::notifying(&sink.url))
        .await
        .unwrap();
    let sfn = aws_sdk_sfn::Client::new(&pipeline.config);
    let mut places = Vec::new();
    pipeline
        .clients
        .secrets
        .create_secret()
        .name("security/webhook-500")
        .secret_string(r#"{"token":"first"}"#)
        .send()
        .await
        .unwrap();
    pipeline
        .clients
        .cloudformation
        .create_stack()
        .stack_name("webhook-500")
        .template_body(
            "Resources:\n  Token:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: /webhook-500/token\n      Type: String\n      Value: '{{resolve:secretsmanager:security/webhook-500:SecretString:token}}'\n",
        )
        .send()
        .await
        .unwrap();
    pipeline
        .change_secret("security/webhook-500", r#"{"token":"second"}"#)
        .await
        .unwrap();
    let (execution, report) = pipeline.run_batch().await.unwrap();
    assert!(report.is_some_and(|r| r.is_object()), "a report");
    places.extend(
        execution_texts(&sfn, execution.execution_arn(), "500s")
            .await
            .unwrap(),
    );
    let first = execution.execution_arn().to_string();
    assert_eq!(sink.received().len(), 4, "four attempts");

    // The same secret part behind a closed port.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let refused = format!("http://{closed}{}", sink.path);
    pipeline
        .clients
        .secrets
        .put_secret_value()
        .secret_id("secret-cascade/slack")
        .secret_string(json!({ "webhook_url": refused }).to_string())
        .send()
        .await
        .unwrap();
    pipeline
        .change_secret("security/webhook-500", r#"{"token":"third"}"#)
        .await
        .unwrap();
    let tick = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
    let outcome = pipeline
        .invoke(cascade_lambda::Function::Gatekeeper, &tick)
        .await
        .unwrap();
    assert!(
        outcome["outcome"].as_str().unwrap().starts_with("Started"),
        "{outcome}"
    );
    let listed = sfn
        .list_executions()
        .state_machine_arn(&pipeline.deployment.state_machine_arn)
        .send()
        .await
        .unwrap();
    let second = listed
        .executions()
        .iter()
        .map(|e| e.execution_arn().to_string())
        .find(|arn| *arn != first)
        .expect("a second execution");
    wait(&sfn, &second).await.unwrap();
    places.extend(execution_texts(&sfn, &second, "refused").await.unwrap());
    assert_eq!(sink.received().len(), 4, "nothing reached the closed port");

    let errors = pipeline.lambda.errors.read().unwrap().clone();
    let notify_errors: Vec<_> = errors
        .iter()
        .filter(|(f, kind, _)| {
            *f == cascade_lambda::Function::Notify && kind == "NotificationFailed"
        })
        .collect();
    assert_eq!(notify_errors.len(), 2, "{errors:?}");
    assert!(
        notify_errors[0].2.contains("Slack answered 500"),
        "{errors:?}"
    );
    assert!(notify_errors[1].2.contains("request failed"), "{errors:?}");
    places.push(("handler errors".into(), format!("{errors:?}")));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&pipeline.config)
            .force_path_style(true)
            .build(),
    );
    places.extend(
        bucket_objects(&s3, &pipeline.deployment.bucket)
            .await
            .unwrap(),
    );
    for (i, body) in sink.bodies().into_iter().enumerate() {
        places.push((format!("Slack message {i}"), body));
    }
    places.push((
        "Lambda invocations".into(),
        format!("{:?}", pipeline.lambda.invocations.read().unwrap()),
    ));
    places.push((
        "the local stack's log".into(),
        std::fs::read_to_string(&pipeline.local.log).unwrap_or_default(),
    ));
    let text = logs.text();
    assert!(text.contains("Slack delivery abandoned"), "logs captured");
    places.push(("handler logs".into(), text));
    let found = leaks(&[token], &places);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

// ------------------------------------------------------------------ 4. actions vs calls

/// The IAM action an SDK call (`service:Operation`, as `CallCounter` names it) needs.
fn iam_action(call: &str) -> String {
    let (service, operation) = call.split_once(':').expect("service:Operation");
    let service = match service {
        "sfn" => "states",
        "secrets manager" => "secretsmanager",
        other => other,
    };
    let operation = match (service, operation) {
        ("s3", "ListObjectsV2" | "ListObjects") => "ListBucket",
        ("s3", "HeadObject") => "GetObject",
        ("s3", "ListObjectVersions") => "ListBucketVersions",
        // A batch call is authorised as the action it batches.
        ("sqs", "DeleteMessageBatch") => "DeleteMessage",
        ("sqs", "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility",
        ("sqs", "SendMessageBatch") => "SendMessage",
        (_, op) => op,
    };
    format!("{service}:{operation}")
}

/// Granted actions this run does not call, and why.
const NOT_CALLED: &[(&str, &str, &str)] = &[
    (
        "gatekeeper",
        "sqs:ChangeMessageVisibility",
        "gives tickets back when StartExecution fails (the fault tests in crates/cascade-aws/tests/gatekeeper.rs)",
    ),
    (
        "gatekeeper",
        "states:DescribeExecution",
        "only for tickets that come back after a crash, to see whether their execution started (the gatekeeper's crash tests)",
    ),
    (
        "refresh",
        "cloudformation:DeleteChangeSet",
        "only when a change set would do what the plan did not intend and is refused (refresh_e2e)",
    ),
    (
        "gatekeeper",
        "s3:GetObject",
        "reads an event's hand-over marker when it exists already: the same event delivered twice (the gatekeeper's redelivery tests)",
    ),
    (
        "discover",
        "s3:ListBucket",
        "not called: without it S3 answers GetObject of a missing key with 403 AccessDenied, with it 404 NoSuchKey, which the store reads as absent (a template not cached yet, a batch's state not written yet)",
    ),
    (
        "refresh",
        "s3:ListBucket",
        "not called: GetObject of a missing key answers 404 (absent) instead of 403 only with it",
    ),
    (
        "report",
        "s3:ListBucket",
        "not called: GetObject of a missing key answers 404 (absent) instead of 403 only with it",
    ),
    (
        "refresh",
        "iam:PassRole",
        "not an SDK call: CloudFormation checks it when a change set names ExecutionRoleArn (empty here)",
    ),
];

/// What the state machine's role needs for its definition: each Task's integration, the
/// distributed map's child executions, its log delivery and (when on) X-Ray. Step
/// Functions makes these calls, not Secret Cascade's code: they are read from the
/// definition and template.yaml's Logging and Tracing.
fn state_machine_actions(template: &Value) -> BTreeSet<String> {
    let definition: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy::state_machine_path()).unwrap())
            .unwrap();
    let mut actions = BTreeSet::new();
    fn walk(value: &Value, actions: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(resource)) = map.get("Resource") {
                    let integration = resource.trim_start_matches("arn:aws:states:::");
                    let integration = integration.trim_start_matches("aws-sdk:");
                    let integration = integration.split('.').next().unwrap_or(integration);
                    let action = match integration {
                        "lambda:invoke" => "lambda:InvokeFunction".to_string(),
                        other => {
                            let (service, op) = other.split_once(':').unwrap_or((other, ""));
                            let mut op = op.to_string();
                            if let Some(first) = op.get(..1) {
                                op = first.to_ascii_uppercase() + &op[1..];
                            }
                            format!("{service}:{op}")
                        }
                    };
                    actions.insert(action);
                }
                if map.get("Mode").and_then(Value::as_str) == Some("DISTRIBUTED") {
                    for action in [
                        "states:StartExecution",
                        "states:DescribeExecution",
                        "states:StopExecution",
                    ] {
                        actions.insert(action.to_string());
                    }
                }
                map.values().for_each(|v| walk(v, actions));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, actions)),
            _ => {}
        }
    }
    walk(&definition, &mut actions);
    let machine = &template["Resources"]["StateMachine"]["Properties"];
    if !machine["Logging"]["Destinations"].is_null() {
        // What Step Functions' log delivery to CloudWatch Logs needs (AWS's list).
        for action in [
            "logs:CreateLogDelivery",
            "logs:GetLogDelivery",
            "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
            "logs:DescribeLogGroups",
        ] {
            actions.insert(action.to_string());
        }
    }
    actions
}

#[test]
fn each_function_calls_only_what_its_role_grants_and_uses_what_it_is_granted() {
    let scenario = scenario();
    let template = deploy::template().unwrap();
    let rows = iam_rows(&template).unwrap();
    // As deployed here: a Slack webhook, no execution role, no tracing.
    let deployed =
        |sid: &str| !sid.contains("(if HasExecutionRole)") && !sid.contains("(if TracingEnabled)");
    let mut granted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut grantable: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in &rows {
        let into = grantable.entry(row.principal.clone()).or_default();
        into.extend(row.actions.iter().cloned());
        if deployed(&row.sid) {
            granted
                .entry(row.principal.clone())
                .or_default()
                .extend(row.actions.iter().cloned());
        }
    }
    let mut problems = Vec::new();
    let mut called: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (function, calls) in &scenario.calls {
        for call in calls.keys() {
            let action = iam_action(call);
            if !granted.get(*function).is_some_and(|g| g.contains(&action)) {
                problems.push(format!("{function} calls {call} ({action}), not granted"));
            }
            called
                .entry(function.to_string())
                .or_default()
                .insert(action);
        }
    }
    for function in ["gatekeeper", "discover", "refresh", "report", "notify"] {
        assert!(
            called.get(function).is_some_and(|c| !c.is_empty()),
            "{function} was measured: {:?}",
            scenario.calls
        );
    }
    for (principal, actions) in &grantable {
        if principal == "state machine" {
            continue;
        }
        for action in actions {
            let used = called.get(principal).is_some_and(|c| c.contains(action));
            let excused = NOT_CALLED
                .iter()
                .any(|(p, a, _)| p == principal && a == action);
            if !used && !excused {
                problems.push(format!(
                    "{principal} is granted {action}, which no call of this run needs: remove it or say why in NOT_CALLED"
                ));
            }
            if used && excused {
                problems.push(format!(
                    "{principal} calls {action}: take it out of NOT_CALLED"
                ));
            }
        }
    }
    for (principal, action, _) in NOT_CALLED {
        if !grantable
            .get(*principal)
            .is_some_and(|g| g.contains(*action))
        {
            problems.push(format!(
                "NOT_CALLED lists {principal} {action}, which is not granted"
            ));
        }
    }
    // The state machine's role against its definition.
    let needed = state_machine_actions(&template);
    let machine = grantable.get("state machine").cloned().unwrap_or_default();
    for action in &needed {
        if !machine.contains(action) {
            problems.push(format!("the state machine needs {action}, not granted"));
        }
    }
    let tracing: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.principal == "state machine" && r.sid.contains("(if TracingEnabled)"))
        .flat_map(|r| r.actions.iter().map(String::as_str))
        .collect();
    for action in &machine {
        if !needed.contains(action) && !tracing.contains(action.as_str()) {
            problems.push(format!(
                "the state machine is granted {action}, which its definition does not need"
            ));
        }
    }
    assert!(
        tracing.iter().all(|a| a.starts_with("xray:")),
        "{tracing:?}"
    );
    assert!(
        problems.is_empty(),
        "{}\n\ncalls measured: {:#?}",
        problems.join("\n"),
        scenario.calls
    );
}
