//! Discovery benchmark: starts its own local AWS stack, creates N stacks (default 1,000;
//! one in ten depends on the secret), then times `cascade plan`'s discovery and planning
//! and counts the API calls per operation.
//!
//! Run: `cargo run --release -p cascade-tests --bin bench-discovery [-- STACKS [CONCURRENCY]]`.

use std::time::Instant;

use anyhow::Context;
use cascade_aws::discovery::plan_secrets;
use cascade_aws::secrets::resolve_secrets;
use cascade_core::plan::StrategyChoice;
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

    let clients = local.clients().await;
    let secrets = resolve_secrets(&clients, &["prod/db".to_string()]).await?;
    let before = clients.calls.snapshot();
    let started = Instant::now();
    let plan = plan_secrets(&clients, &secrets, StrategyChoice::Auto, concurrency).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let after = clients.calls.snapshot();

    println!("discovery + planning of {count} stacks (concurrency {concurrency}):");
    println!("  wall time        {elapsed:.3} s");
    println!("  stacks/second    {:.0}", count as f64 / elapsed);
    println!(
        "  dependents       {} to refresh, {} skipped",
        plan.stacks.len(),
        plan.skipped.len()
    );
    println!("  API calls by operation (per stack):");
    let mut total = 0;
    for (op, n) in &after {
        let n = n - before.get(op).copied().unwrap_or(0);
        if n > 0 {
            total += n;
            println!("    {op:<40} {n:>6}  ({:.3})", n as f64 / count as f64);
        }
    }
    println!(
        "    {:<40} {total:>6}  ({:.3})",
        "total",
        total as f64 / count as f64
    );
    Ok(())
}
