//! `cascade report [BATCH|latest] [--format md|json]`.

use std::process::ExitCode;

use anyhow::Context;
use cascade_aws::refresh::{RefreshSettings, Refresher};
use cascade_aws::{AwsOptions, Clients};
use cascade_core::batch::{build_report, keys};

use crate::cli::{ReportArgs, ReportFormat};
use crate::commands::{refresher, store};

/// Prints a batch's report from the state store.
pub async fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let refresher = if args.state.bucket.is_some() {
        refresher(&args.aws, &args.state, RefreshSettings::default()).await?
    } else {
        // A local state directory: no AWS call, so no region needed.
        let clients = Clients::load(&AwsOptions::from(&args.aws)).await;
        Refresher {
            store: store(&clients, &args.state),
            clients,
            settings: RefreshSettings::default(),
        }
    };
    let batch = if args.batch == "latest" {
        refresher.batches().latest().await?.with_context(|| {
            format!(
                "no batch in {}: run `cascade run` first",
                refresher.store.location("")
            )
        })?
    } else {
        args.batch.clone()
    };
    let key = match args.format {
        ReportFormat::Json => keys::report_json(&batch),
        ReportFormat::Md => keys::report_markdown(&batch),
    };
    let body = match refresher.store.get(&key).await? {
        Some(body) => body,
        None => {
            // Never saved (S3 was unavailable at the end of the batch, or the run was cut
            // short): built from the stacks' saved states, and saved now.
            let manifest = refresher.batches().find_manifest(&batch).await?.with_context(|| {
                format!(
                    "batch {batch} has no report at {}: check the id, or resume it with `cascade run --resume {batch}`",
                    refresher.store.location(&key)
                )
            })?;
            let states = refresher.batches().states(&manifest).await?;
            let report = build_report(&manifest, &states, None, &refresher.restore_target());
            let location = refresher.batches().write_report(&report).await?;
            eprintln!(
                "batch {batch} had no saved report: built from its stacks' states and saved at {location}"
            );
            refresher.store.get(&key).await?.unwrap_or_default()
        }
    };
    print!("{}", String::from_utf8_lossy(&body));
    Ok(ExitCode::SUCCESS)
}
