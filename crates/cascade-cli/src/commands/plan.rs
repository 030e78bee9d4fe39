//! `cascade plan`: against the account, or offline for one template file.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cascade_aws::discovery::plan_secrets;
use cascade_aws::secrets::resolve_secrets;
use cascade_aws::{AwsOptions, Clients};
use cascade_core::plan::{Plan, PlanOptions, plan_account};
use cascade_core::secret::Secret;
use cascade_core::stack::StackInfo;
use cascade_core::template::read_template;

use crate::cli::{Format, PlanArgs};
use crate::render;

/// Runs `cascade plan`.
pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let plan = match &args.template {
        Some(file) => {
            let text = tokio::fs::read_to_string(file)
                .await
                .with_context(|| format!("cannot read {}", file.display()))?;
            plan_template_file(file, &text, &args)?
        }
        None => {
            let clients = Clients::load(&AwsOptions::from(&args.aws)).await;
            let secrets = resolve_secrets(&clients, &args.secrets).await?;
            plan_secrets(
                &clients,
                &secrets,
                args.strategy.into(),
                usize::from(args.concurrency),
            )
            .await?
        }
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        Format::Table => print!("{}", render::plan_table(&plan)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Plans one template file with no AWS call: the stack is named after the file.
fn plan_template_file(file: &std::path::Path, text: &str, args: &PlanArgs) -> anyhow::Result<Plan> {
    let template = read_template(text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let secrets = args
        .secret_arns
        .iter()
        .map(|arn| Secret::from_arn(arn))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = secrets.first() else {
        bail!("give at least one --secret-arn");
    };
    let (region, account) = first
        .region_and_account()
        .unwrap_or(("us-east-1", "000000000000"));
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "template".into());
    let id = format!(
        "arn:{}:cloudformation:{region}:{account}:stack/{name}/offline",
        first.partition()
    );
    let mut stack = StackInfo::from_template(&name, &id, template);
    stack.parameters = args.parameters.iter().cloned().collect();
    let options = PlanOptions {
        strategy: args.strategy.into(),
        exports: HashMap::new(),
        importers: Default::default(),
    };
    Ok(plan_account(&[stack], &secrets, &options))
}
