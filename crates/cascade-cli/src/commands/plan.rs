//! `cascade plan`: against the account, or offline for one template file (a plan for the
//! secrets given, or the inventory of every Secrets Manager reference in it).

use std::process::ExitCode;

use anyhow::Context;
use cascade_aws::discovery::plan_secrets;
use cascade_aws::secrets::resolve_secrets;
use cascade_core::offline::OfflineStack;
use cascade_core::secret::Secret;
use cascade_core::template::read_template;
use serde::Serialize;

use crate::cli::{Format, PlanArgs};
use crate::render;

/// Runs `cascade plan`.
pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let Some(file) = &args.template else {
        let offline_only = [
            ("--secret-arn", !args.secret_arns.is_empty()),
            ("--parameter", !args.parameters.is_empty()),
            ("--export", !args.exports.is_empty()),
            ("--resource", !args.resources.is_empty()),
            ("--stack-name", args.stack_name.is_some()),
            ("--account", args.account.is_some()),
        ];
        if let Some((flag, _)) = offline_only.iter().find(|(_, given)| *given) {
            anyhow::bail!(
                "{flag} is only for planning a template file offline: add --template FILE (against the account, the account says it)"
            );
        }
        let clients = crate::commands::with_template_cache(
            crate::commands::clients(&args.aws).await?,
            &args.cache,
        );
        let secrets = resolve_secrets(&clients, &args.secrets).await?;
        let plan = plan_secrets(
            &clients,
            &secrets,
            args.strategy.into(),
            usize::from(args.concurrency),
        )
        .await?;
        print(&args, &plan, || render::plan_table(&plan))?;
        return Ok(ExitCode::SUCCESS);
    };
    let text = tokio::fs::read_to_string(file)
        .await
        .with_context(|| format!("cannot read {}", file.display()))?;
    let template = read_template(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let stack = offline_stack(file, &args);
    if args.secret_arns.is_empty() {
        let inventory = stack
            .inventory(&template, args.strategy.into())
            .with_context(|| format!("cannot list the references of {}", file.display()))?;
        print(&args, &inventory, || render::inventory_table(&inventory))?;
    } else {
        let secrets = args
            .secret_arns
            .iter()
            .map(|arn| Secret::from_arn(arn))
            .collect::<Result<Vec<_>, _>>()?;
        let plan = stack
            .plan(&template, &secrets, args.strategy.into())
            .with_context(|| format!("cannot plan {}", file.display()))?;
        print(&args, &plan, || render::plan_table(&plan))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The stack a template file is planned as: named after the file unless `--stack-name`
/// says otherwise, with what the flags say the account would show.
fn offline_stack(file: &std::path::Path, args: &PlanArgs) -> OfflineStack {
    let stack_name = args.stack_name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "template".into())
    });
    OfflineStack {
        stack_name,
        region: args.aws.region.clone(),
        account: args.account.clone(),
        parameters: args.parameters.iter().cloned().collect(),
        exports: args.exports.iter().cloned().collect(),
        resources: args.resources.iter().cloned().collect(),
    }
}

fn print<T: Serialize>(
    args: &PlanArgs,
    value: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Table => print!("{}", table()),
    }
    Ok(())
}
