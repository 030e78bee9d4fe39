//! Discovery benchmark: starts its own local AWS stack, creates N stacks (default 1,000;
//! one in ten depends on the secret), then times `cascade plan`'s discovery and planning
//! and counts the API calls per operation: without the template cache, then with the CLI's
//! (a directory) and the Lambda's (a bucket), each cold and warm, then after 5% of the
//! stacks were updated.
//!
//! Run: `cargo run --release -p cascade-tests --bin bench-discovery [-- STACKS [CONCURRENCY]]`.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use cascade_aws::Clients;
use cascade_aws::discovery::plan_secrets;
use cascade_aws::secrets::resolve_secrets;
use cascade_aws::store::Store;
use cascade_aws::template_cache::TemplateCache;
use cascade_core::plan::StrategyChoice;
use cascade_core::secret::Secret;
use cascade_tests::LocalStack;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);

    let local = LocalStack::start()?;
    let config = local.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    sm.create_secret()
        .name("prod/db")
        .secret_string("bench")
        .send()
        .await?;
    let cfn = aws_sdk_cloudformation::Client::new(&config);

    let seeding = Instant::now();
    for i in 0..count {
        let value = if i % 10 == 0 {
            "'{{resolve:secretsmanager:prod/db:SecretString:password}}'".to_string()
        } else {
            format!("plain-{i}")
        };
        let body = format!(
            "Parameters:\n  Env:\n    Type: String\n    Default: prod\nResources:\n  Handle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n  Service:\n    Type: AWS::AppRunner::Service\n    Properties:\n      Name: !Sub '${{Env}}-{i}'\n      Secret: {value}\n"
        );
        cfn.create_stack()
            .stack_name(format!("bench-{i:04}"))
            .template_body(body)
            .send()
            .await
            .with_context(|| format!("creating bench-{i:04}"))?;
    }
    eprintln!(
        "seeded {count} stacks in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    // The CLI's cache (a private directory) and the Lambda's (the bucket), each cold then
    // warm; then warm again after 5% of the stacks were updated.
    let dir = std::env::temp_dir().join(format!("cascade-bench-cache-{}", std::process::id()));
    let disk = TemplateCache::in_directory(dir.clone())?;
    // The bucket cache talks through the counted clients, so its S3 calls are counted too.
    let clients = local.clients().await;
    clients
        .s3
        .create_bucket()
        .bucket("bench-cache")
        .send()
        .await?;
    let bucket = TemplateCache::new(Store::s3(clients.s3.clone(), "bench-cache"));
    let secrets = resolve_secrets(&clients, &["prod/db".to_string()]).await?;
    let mut runs = Vec::new();
    for (what, cache) in [
        ("no cache", None),
        ("disk cache, cold (CLI)", Some(&disk)),
        ("disk cache, warm", Some(&disk)),
        ("bucket cache, cold (Lambda)", Some(&bucket)),
        ("bucket cache, warm", Some(&bucket)),
    ] {
        let planning = match cache {
            Some(cache) => clients.clone().with_template_cache(cache.clone()),
            None => clients.clone(),
        };
        runs.push(measure(what, &planning, &secrets, concurrency, count).await?);
    }
    let updated = count.div_ceil(20);
    for i in 0..updated {
        cfn.update_stack()
            .stack_name(format!("bench-{:04}", i * 20 + 1))
            .template_body(format!(
                "Resources:\n  Handle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n  Again{i}:\n    Type: AWS::CloudFormation::WaitConditionHandle\n"
            ))
            .send()
            .await?;
    }
    let planning = clients.clone().with_template_cache(bucket.clone());
    let label = format!("bucket cache, {updated} stacks updated since");
    runs.push(measure(&label, &planning, &secrets, concurrency, count).await?);
    std::fs::remove_dir_all(&dir).ok();

    println!("discovery + planning of {count} stacks (concurrency {concurrency}):");
    println!(
        "  {:<44} {:>8} {:>9} {:>12} {:>12} {:>11}",
        "run", "wall s", "stacks/s", "GetTemplate", "S3 Get+Put", "calls"
    );
    println!(
        "  {:<44} {:>8} {:>9} {:>12} {:>12} {:>11}",
        "", "", "", "per stack", "per stack", "per stack"
    );
    for run in &runs {
        println!(
            "  {:<44} {:>8.3} {:>9.0} {:>12.3} {:>12.3} {:>11.3}",
            run.what,
            run.seconds,
            count as f64 / run.seconds,
            run.per_stack("cloudformation:GetTemplate"),
            run.per_stack("s3:GetObject") + run.per_stack("s3:PutObject"),
            run.total() as f64 / count as f64,
        );
    }
    let first = &runs[1];
    println!(
        "  dependents       {} to refresh, {} skipped",
        first.to_refresh, first.skipped
    );
    println!("  API calls by operation of the cold disk-cache run (per stack):");
    for (op, n) in &first.calls {
        println!("    {op:<40} {n:>6}  ({:.3})", *n as f64 / count as f64);
    }
    println!(
        "    {:<40} {:>6}  ({:.3})",
        "total",
        first.total(),
        first.total() as f64 / count as f64
    );
    Ok(())
}

/// One discovery and plan: its time and its API calls by operation.
struct Run {
    what: String,
    seconds: f64,
    calls: BTreeMap<String, u64>,
    count: usize,
    to_refresh: usize,
    skipped: usize,
}

impl Run {
    fn per_stack(&self, op: &str) -> f64 {
        self.calls.get(op).copied().unwrap_or(0) as f64 / self.count as f64
    }

    fn total(&self) -> u64 {
        self.calls.values().sum()
    }
}

async fn measure(
    what: &str,
    clients: &Clients,
    secrets: &[Secret],
    concurrency: usize,
    count: usize,
) -> anyhow::Result<Run> {
    let before = clients.calls.snapshot();
    let started = Instant::now();
    let plan = plan_secrets(clients, secrets, StrategyChoice::Auto, concurrency).await?;
    let seconds = started.elapsed().as_secs_f64();
    let after = clients.calls.snapshot();
    let calls = after
        .into_iter()
        .map(|(op, n)| {
            let n = n - before.get(&op).copied().unwrap_or(0);
            (op, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    Ok(Run {
        what: what.to_string(),
        seconds,
        calls,
        count,
        to_refresh: plan.stacks.len(),
        skipped: plan.skipped.len(),
    })
}
