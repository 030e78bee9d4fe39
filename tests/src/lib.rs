//! Test support for Secret Cascade's end-to-end tests: a local AWS stack (the project's
//! moto launcher, `infra/local/launcher.py`) started on a free port of 127.0.0.1 by the
//! test itself and stopped when dropped, plus fixtures to seed it.
//!
//! The launcher also watches the test process (`CASCADE_PARENT_PID`) and exits on its own
//! when the test process dies, so no server outlives a test run.

pub mod bench;
pub mod deploy;
pub mod fixtures;
pub mod lambda_server;
pub mod log_capture;
pub mod pipeline;
pub mod slack_sink;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_config::{Region, SdkConfig};
use cascade_aws::Clients;

/// The region every local test uses.
pub const REGION: &str = "us-east-1";
/// The account moto uses.
pub const ACCOUNT: &str = "123456789012";

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// A running local AWS stack. Stopped when dropped.
pub struct LocalStack {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Where the server's output goes.
    pub log: PathBuf,
}

/// How to start a local stack.
#[derive(Debug, Clone, Default)]
pub struct LocalStackOptions {
    /// Base URL of the Lambda Invoke stand-in that Lambda invokes are forwarded to.
    pub lambda_forward_url: Option<String>,
    /// Step Functions mock config file.
    pub sfn_mock_config: Option<PathBuf>,
    /// Enforce IAM from the first request (the launcher's `CASCADE_IAM_ENFORCEMENT`): the
    /// test credentials are the local administrator's, deployed functions act with their
    /// roles' credentials.
    pub iam_enforcement: bool,
    /// Requests answered as throttled (the launcher's `CASCADE_THROTTLE`:
    /// `service:Action[=N],...`).
    pub throttle: Option<String>,
    /// Requests answered as unavailable, HTTP 503 (the launcher's `CASCADE_UNAVAILABLE`:
    /// `service:Action[@path][=N],...`).
    pub unavailable: Option<String>,
}

impl LocalStack {
    /// Starts a fresh local stack with default options.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(&LocalStackOptions::default())
    }

    /// Starts a fresh local stack (bootstrapping the Python environment if needed) and
    /// waits until it answers.
    pub fn start_with(options: &LocalStackOptions) -> anyhow::Result<Self> {
        let root = workspace_root();
        let local = root.join("infra/local");
        let python = local.join(".venv/bin/python");
        let status = Command::new(local.join("bootstrap"))
            .stdout(Stdio::null())
            .status()
            .context("cannot run infra/local/bootstrap")?;
        if !status.success() || !python.exists() {
            bail!("infra/local/bootstrap failed: run it by hand to see why");
        }
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let log = std::env::temp_dir()
                .join(format!("cascade-moto-{}-{port}.log", std::process::id()));
            let log_file = std::fs::File::create(&log)?;
            let mut command = Command::new(&python);
            command
                .arg(local.join("launcher.py"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("CASCADE_PARENT_PID", std::process::id().to_string())
                .stdin(Stdio::null())
                .stdout(log_file.try_clone()?)
                .stderr(log_file);
            if let Some(url) = &options.lambda_forward_url {
                command.env("LAMBDA_FORWARD_URL", url);
            }
            if let Some(path) = &options.sfn_mock_config {
                command.env("SFN_MOCK_CONFIG", path);
            }
            if options.iam_enforcement {
                command.env("CASCADE_IAM_ENFORCEMENT", "1");
            }
            if let Some(rules) = &options.throttle {
                command.env("CASCADE_THROTTLE", rules);
            }
            if let Some(rules) = &options.unavailable {
                command.env("CASCADE_UNAVAILABLE", rules);
            }
            let child = command.spawn().context("cannot start the moto launcher")?;
            let mut stack = LocalStack {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                log,
            };
            match stack.wait_until_ready(port) {
                Ok(()) => return Ok(stack),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("the local stack did not start")))
    }

    fn wait_until_ready(&mut self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("the launcher exited with {status}: {}", self.log_tail());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the launcher did not answer within 60 s: {}",
            self.log_tail()
        )
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The SDK configuration for this stack (region us-east-1, test credentials).
    pub async fn sdk_config(&self) -> SdkConfig {
        cascade_aws::clients::config_loader()
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "local-stack",
            ))
            .load()
            .await
    }

    /// Secret Cascade's clients for this stack.
    pub async fn clients(&self) -> Clients {
        Clients::new(&self.sdk_config().await)
    }

    /// Environment variables that point a child process (the `cascade` binary) here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("CASCADE_KEEP_LOCAL_LOG").is_some() {
            eprintln!("the local stack's log is kept: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How many updates of `stack` completed: its stack-level `UPDATE_COMPLETE` events
/// (recreate makes 2, pin 1), to prove no stack is updated twice.
pub async fn update_completes(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> anyhow::Result<usize> {
    let mut pages = cfn
        .describe_stack_events()
        .stack_name(stack)
        .into_paginator()
        .send();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        count += page?
            .stack_events()
            .iter()
            .filter(|e| {
                e.logical_resource_id() == Some(stack)
                    && e.resource_status().map(|s| s.as_str()) == Some("UPDATE_COMPLETE")
            })
            .count();
    }
    Ok(count)
}
