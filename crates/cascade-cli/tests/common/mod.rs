//! Running the built `cascade` binary as a person would, against a local stack: shared by
//! the CLI's end-to-end tests.

use std::path::Path;
use std::process::Stdio;

use cascade_tests::LocalStack;

/// What one `cascade` invocation did.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Both outputs, for searching.
    pub fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `cascade ARGS` with the local stack's environment (as `eval "$(infra/local/up)"` sets
/// it) and `extra_env`.
pub async fn cascade(local: &LocalStack, args: &[&str], extra_env: &[(&str, &str)]) -> Ran {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cascade"));
    command.args(args);
    ran(command, local, extra_env).await
}

/// A command line exactly as printed (a report's restore command), run by `sh` with the
/// built `cascade` first on PATH and the local stack's environment, as a person would paste
/// it into a shell where `eval "$(infra/local/up)"` was run.
pub async fn printed(local: &LocalStack, line: &str) -> Ran {
    let bin = Path::new(env!("CARGO_BIN_EXE_cascade")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = tokio::process::Command::new("sh");
    command.arg("-c").arg(line).env("PATH", path);
    ran(command, local, &[]).await
}

/// Runs `command` with nothing of the machine's own Cascade or AWS settings, the local
/// stack's environment and `extra_env`.
async fn ran(
    mut command: tokio::process::Command,
    local: &LocalStack,
    extra_env: &[(&str, &str)],
) -> Ran {
    command.stdin(Stdio::null());
    for name in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_DEFAULT_REGION",
        "AWS_SESSION_TOKEN",
        "CASCADE_BUCKET",
        "CASCADE_STATE_DIR",
        "CASCADE_SLACK_WEBHOOK_SECRET",
        "CASCADE_STACK_NAME",
        "CASCADE_QUEUE_URL",
        "CASCADE_LOG",
    ] {
        command.env_remove(name);
    }
    for (k, v) in local.env() {
        command.env(k, v);
    }
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let out = command.output().await.expect("cascade runs");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
