//! Seeds a local stack (the endpoint in `AWS_ENDPOINT_URL`) with the fixture account of
//! `tests/fixtures/plan`, or of the fixture directory given as the only argument, and
//! prints one line per stack created. Used by `make demo`:
//!
//! ```text
//! AWS_ENDPOINT_URL=http://127.0.0.1:4566 cargo run -q -p cascade-tests --bin seed [DIR]
//! ```
//!
//! The region is `AWS_REGION` (us-east-1 when unset); without credentials in the
//! environment the local stack's test credentials are used. It refuses to run without
//! `AWS_ENDPOINT_URL`, so that it never fills a real account with fixtures.

use std::path::PathBuf;

use anyhow::{Context, bail};
use aws_config::Region;
use cascade_tests::fixtures;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("seed: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(fixtures::plan_dir);
    if args.next().is_some() {
        bail!("usage: seed [FIXTURE_DIR]");
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .context("AWS_ENDPOINT_URL is not set: the seeder only fills a local stack (e.g. http://127.0.0.1:4566)")?;

    let mut loader = cascade_aws::clients::config_loader();
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(Region::new(cascade_tests::REGION));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none()
    {
        loader = loader.credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "local-stack",
        ));
    }
    let config = loader.load().await;

    println!("seeding {endpoint} from {}", dir.display());
    let seeded = fixtures::seed_with_progress(&config, &dir, |stack| {
        println!("{:<24} {:<26} {}", stack.name, stack.status, stack.id);
    })
    .await?;
    println!(
        "{} secrets and {} stacks created; changed secrets of the batch: {}",
        seeded.secrets.len(),
        seeded.stacks.len(),
        seeded.changed_secrets.join(", ")
    );
    Ok(())
}
