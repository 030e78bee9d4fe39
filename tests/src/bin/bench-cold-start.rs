//! Cold start of the Lambda binary: the time from exec to its first Runtime API request
//! (`GET /2018-06-01/runtime/invocation/next`), with the real binary against a local
//! Runtime API that answers nothing, for each function (its `Handler` as `_HANDLER` and the
//! environment template.yaml gives it). Prints the median and the range of several runs,
//! and the binary's size, raw and zipped; asserts nothing.
//!
//! Run: `cargo build --release -p cascade-lambda && cargo run --release -p cascade-tests
//! --bin bench-cold-start [-- --binary PATH --runs N]` (default binary
//! `target/release/cascade-lambda`, 15 runs). A binary that sends an init error instead
//! (a configuration it rejects) is reported as such, not timed.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cascade_lambda::Function;

struct Args {
    binary: PathBuf,
    runs: usize,
}

fn args() -> anyhow::Result<Args> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut args = Args {
        binary: root.join("target/release/cascade-lambda"),
        runs: 15,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().context("a flag needs a value")?;
        match flag.as_str() {
            "--binary" => args.binary = PathBuf::from(value),
            "--runs" => args.runs = value.parse()?,
            _ => bail!("usage: bench-cold-start [--binary PATH] [--runs N]"),
        }
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(args)
}

/// The environment template.yaml gives `function` (values that parse; nothing is called).
fn environment(function: Function) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "bench".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "bench".to_string()),
        (
            "AWS_LAMBDA_FUNCTION_NAME",
            format!("secret-cascade-{}", function.name()),
        ),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_string()),
        ("CASCADE_BUCKET", "secret-cascade-bench".to_string()),
    ];
    if function == Function::Gatekeeper {
        env.push((
            "CASCADE_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/tickets.fifo".to_string(),
        ));
        env.push((
            "CASCADE_STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:123456789012:stateMachine:secret-cascade".to_string(),
        ));
        env.push(("CASCADE_POLL_SECONDS", "30".to_string()));
    }
    env
}

/// One cold start: exec to the first request's line, or what the binary sent instead.
fn cold_start(binary: &PathBuf, function: Function) -> anyhow::Result<Result<Duration, String>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(environment(function))
        .env("_HANDLER", function.name())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    listener.set_nonblocking(false)?;
    let (mut stream, _) = listener.accept()?;
    let took = started.elapsed();
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = [0u8; 256];
    let n = stream.read(&mut head).unwrap_or(0);
    let request = String::from_utf8_lossy(&head[..n]).to_string();
    let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
    let _ = child.kill();
    let _ = child.wait();
    let line = request.lines().next().unwrap_or_default().to_string();
    Ok(
        if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
            Ok(took)
        } else {
            Err(line)
        },
    )
}

fn zipped_size(binary: &PathBuf) -> anyhow::Result<u64> {
    let dir = std::env::temp_dir().join(format!("cascade-cold-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(binary, dir.join("bootstrap"))?;
    let zip = dir.join("bootstrap.zip");
    let status = Command::new("python3")
        .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED, compresslevel=9); z.write(sys.argv[2], 'bootstrap'); z.close()"])
        .arg(&zip)
        .arg(dir.join("bootstrap"))
        .status()?;
    if !status.success() {
        bail!("could not zip the binary (python3 zipfile)");
    }
    let size = std::fs::metadata(&zip)?.len();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(size)
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let size = std::fs::metadata(&args.binary)
        .with_context(|| format!("{} (build it first)", args.binary.display()))?
        .len();
    println!(
        "binary {}: {:.2} MB, {:.2} MB zipped (what Lambda stores)",
        args.binary.display(),
        size as f64 / 1e6,
        zipped_size(&args.binary)? as f64 / 1e6
    );
    println!(
        "cold start, exec to the first Runtime API request ({} runs each)",
        args.runs
    );
    for function in Function::ALL {
        let mut times = Vec::new();
        for _ in 0..args.runs {
            match cold_start(&args.binary, function)? {
                Ok(took) => times.push(took),
                Err(line) => bail!("{}: the binary sent `{line}` instead", function.name()),
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {:<11} median {:>6.1} ms  (min {:.1}, max {:.1})",
            function.name(),
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
    }
    Ok(())
}
