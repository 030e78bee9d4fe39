//! What a person sees when AWS cannot be used: the `cascade` binary run for each failure
//! it can meet (no credentials, no region, an endpoint that does not answer, access denied,
//! throttled beyond the retries, a secret or stack that does not exist). Each is one or two
//! lines on stderr naming the thing and the next step, exit code 1, no SDK debug dump and no
//! warning from the credential chain; the details are under `CASCADE_LOG=debug`.
//!
//! The failures come from real components: a clean environment with no credentials or
//! region, a closed port on 127.0.0.1, and the local stack (moto, started by the harness)
//! with IAM enforced or with the launcher's injected throttling (patch m).

use std::path::PathBuf;
use std::process::Stdio;

use cascade_tests::{LocalStack, LocalStackOptions};

/// What one run printed.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stderr: String,
}

/// A port on 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An empty home directory: no ~/.aws files.
fn empty_home() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cascade-errors-home-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `cascade ARGS` in an environment holding only `env` (and PATH, HOME): nothing of the
/// machine's AWS configuration leaks in. The instance metadata endpoint is a closed local
/// port, so the credential chain fails fast, and warns, as it does off EC2.
async fn cascade(args: &[&str], env: &[(&str, String)]) -> Ran {
    let imds = format!("http://127.0.0.1:{}", closed_port());
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cascade"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", empty_home())
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds)
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().await.expect("cascade runs");
    Ran {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One or two lines, the first `error: ...`; exit 1; nothing of the SDK's debug output or
/// the credential chain's warnings.
fn assert_short(ran: &Ran) {
    eprint!("{}", ran.stderr);
    assert_eq!(ran.code, Some(1), "{ran:#?}");
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert!((1..=2).contains(&lines.len()), "one or two lines: {ran:#?}");
    assert!(lines[0].starts_with("error: "), "{ran:#?}");
    for dump in [
        "DispatchFailure",
        "ConnectorError",
        "Response {",
        "SdkBody",
        "WARN",
        "IMDS",
    ] {
        assert!(!ran.stderr.contains(dump), "`{dump}` printed: {ran:#?}");
    }
}

fn credentials() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
    ]
}

#[tokio::test]
async fn no_credentials_says_how_to_get_some() {
    let ran = cascade(
        &["plan", "--secret", "prod/db"],
        &[("AWS_REGION", "eu-west-1".into())],
    )
    .await;
    assert_short(&ran);
    assert!(ran.stderr.contains("no AWS credentials"), "{ran:#?}");
    assert!(
        ran.stderr.contains("AWS_PROFILE") && ran.stderr.contains("infra/local/up"),
        "{ran:#?}"
    );

    // The details are there for whoever asks.
    let debug = cascade(
        &["plan", "--secret", "prod/db"],
        &[
            ("AWS_REGION", "eu-west-1".into()),
            ("CASCADE_LOG", "debug".into()),
        ],
    )
    .await;
    assert_eq!(debug.code, Some(1));
    assert!(
        debug.stderr.contains("DispatchFailure") || debug.stderr.contains("CredentialsNotLoaded"),
        "{debug:#?}"
    );
}

/// A profile whose credentials come from the instance metadata service, off EC2: the
/// credential chain warns about each provider it tried. At the default level those
/// warnings stay out (they do show at `CASCADE_LOG=warn`, so this can fail).
#[tokio::test]
async fn the_credential_chain_does_not_warn_at_the_default_level() {
    let config = std::env::temp_dir().join(format!("cascade-errors-config-{}", std::process::id()));
    std::fs::write(
        &config,
        "[default]\nregion = eu-west-1\nrole_arn = arn:aws:iam::123456789012:role/ops\ncredential_source = Ec2InstanceMetadata\n",
    )
    .unwrap();
    let env = [("AWS_CONFIG_FILE", config.display().to_string())];
    let ran = cascade(&["plan", "--secret", "prod/db"], &env).await;
    assert_short(&ran);
    assert!(ran.stderr.contains("no AWS credentials"), "{ran:#?}");
    let mut loud = env.to_vec();
    loud.push(("CASCADE_LOG", "warn".into()));
    let loud = cascade(&["plan", "--secret", "prod/db"], &loud).await;
    assert!(
        loud.stderr.contains("WARN") && loud.stderr.contains("aws_config"),
        "{loud:#?}"
    );
}

#[tokio::test]
async fn no_region_says_how_to_set_one() {
    let ran = cascade(&["plan", "--secret", "prod/db"], &credentials()).await;
    assert_short(&ran);
    assert!(
        ran.stderr.contains("no AWS region is set") && ran.stderr.contains("AWS_REGION"),
        "{ran:#?}"
    );
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_is_named() {
    let mut env = credentials();
    env.push(("AWS_REGION", "us-east-1".into()));
    env.push((
        "AWS_ENDPOINT_URL",
        format!("http://127.0.0.1:{}", closed_port()),
    ));
    env.push(("AWS_MAX_ATTEMPTS", "2".into()));
    let ran = cascade(&["plan", "--secret", "prod/db"], &env).await;
    assert_short(&ran);
    assert!(
        ran.stderr
            .contains("secretsmanager:DescribeSecret failed: cannot connect"),
        "{ran:#?}"
    );
    assert!(ran.stderr.contains("Connection refused"), "{ran:#?}");
    assert!(ran.stderr.contains("AWS_ENDPOINT_URL"), "{ran:#?}");
}

/// The environment of a local stack, as `eval "$(infra/local/up)"` sets it.
fn local_env(local: &LocalStack) -> Vec<(&'static str, String)> {
    local.env()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_or_stack_is_named() {
    let local = tokio::task::spawn_blocking(LocalStack::start)
        .await
        .unwrap()
        .unwrap();
    let ran = cascade(&["plan", "--secret", "prod/nope"], &local_env(&local)).await;
    assert_short(&ran);
    assert!(
        ran.stderr.contains("secret `prod/nope` was not found"),
        "{ran:#?}"
    );
    assert_eq!(ran.stderr.lines().count(), 1, "its own next step: {ran:#?}");

    let clients = local.clients().await;
    clients
        .secrets
        .create_secret()
        .name("prod/db")
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    let ran = cascade(
        &[
            "run",
            "--secret",
            "prod/db",
            "--stack",
            "no-such-stack",
            "--yes",
        ],
        &local_env(&local),
    )
    .await;
    assert_short(&ran);
    assert!(ran.stderr.contains("no-such-stack"), "{ran:#?}");
}

/// An IAM user allowed nothing, with an access key.
const READER: &str = "Resources:
  Reader:
    Type: AWS::IAM::User
    Properties:
      UserName: reader
  Key:
    Type: AWS::IAM::AccessKey
    Properties:
      UserName: !Ref Reader
Outputs:
  KeyId:
    Value: !Ref Key
  Secret:
    Value: !GetAtt Key.SecretAccessKey
";

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_names_the_action() {
    let local = tokio::task::spawn_blocking(|| {
        LocalStack::start_with(&LocalStackOptions {
            iam_enforcement: true,
            ..LocalStackOptions::default()
        })
    })
    .await
    .unwrap()
    .unwrap();
    // A user with no policy at all and its access key, created by the local administrator
    // (through CloudFormation: the key comes back as the stack's outputs).
    let cfn = local.clients().await.cloudformation;
    cfn.create_stack()
        .stack_name("reader")
        .template_body(READER)
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityNamedIam)
        .send()
        .await
        .unwrap();
    let stacks = cfn
        .describe_stacks()
        .stack_name("reader")
        .send()
        .await
        .unwrap();
    let output = |key: &str| {
        stacks.stacks()[0]
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .unwrap_or_else(|| panic!("output {key}: {stacks:?}"))
            .to_string()
    };
    let mut env = local_env(&local);
    env.retain(|(k, _)| *k != "AWS_ACCESS_KEY_ID" && *k != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_ACCESS_KEY_ID", output("KeyId")));
    env.push(("AWS_SECRET_ACCESS_KEY", output("Secret")));
    let ran = cascade(&["plan", "--secret", "prod/db"], &env).await;
    assert_short(&ran);
    assert!(
        ran.stderr.contains("secretsmanager:DescribeSecret failed")
            && ran.stderr.contains("AccessDenied"),
        "{ran:#?}"
    );
    assert!(ran.stderr.contains("reader"), "names who: {ran:#?}");
    assert!(ran.stderr.contains("grant that action"), "{ran:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_beyond_the_retries_says_try_again() {
    let local = tokio::task::spawn_blocking(|| {
        LocalStack::start_with(&LocalStackOptions {
            throttle: Some("secretsmanager:DescribeSecret".into()),
            ..LocalStackOptions::default()
        })
    })
    .await
    .unwrap()
    .unwrap();
    let mut env = local_env(&local);
    env.push(("AWS_MAX_ATTEMPTS", "2".into()));
    let ran = cascade(&["plan", "--secret", "prod/db"], &env).await;
    assert_short(&ran);
    assert!(
        ran.stderr
            .contains("secretsmanager:DescribeSecret failed: ThrottlingException"),
        "{ran:#?}"
    );
    assert!(ran.stderr.contains("try again"), "{ran:#?}");
}
