//! `cascade restore --stack NAME --batch ID`: the way out when a run died between removing
//! resources and restoring them.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::bail;
use cascade_aws::refresh::RefreshSettings;
use cascade_core::batch::build_report;
use cascade_core::refresh::UpdateProgress;
use jiff::Timestamp;

use crate::cli::RestoreArgs;
use crate::commands::refresher;

/// Puts the saved original back, waits for it, and records the stack as refreshed in the
/// batch (its resources are back, resolving the current value).
pub async fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let settings = RefreshSettings {
        execution_role_arn: args.execution_role_arn.clone(),
        ..RefreshSettings::default()
    };
    let refresher = refresher(&args.aws, &args.state, settings).await?;
    let batches = refresher.batches();
    let manifest = batches.manifest(&args.batch).await?;
    eprintln!(
        "restoring {} to its original from batch {} ...",
        args.stack, args.batch
    );
    let look = refresher
        .restore(&args.batch, &args.stack, &Arc::new(AtomicBool::new(false)))
        .await?;
    if look.progress != UpdateProgress::Complete {
        bail!(
            "restoring {} ended in {}{}",
            args.stack,
            look.status,
            look.reason.map(|r| format!(": {r}")).unwrap_or_default()
        );
    }
    let mut states = batches.states(&manifest).await?;
    if let Some(state) = states.iter_mut().find(|s| s.stack_name == args.stack) {
        state.restored_by_hand(Timestamp::now());
        refresher.save_state(&args.batch, state).await?;
        let report = build_report(
            &manifest,
            &states,
            Some(Timestamp::now()),
            &refresher.restore_target(),
        );
        batches.write_report(&report).await?;
    }
    println!("{} restored ({})", args.stack, look.status);
    Ok(ExitCode::SUCCESS)
}
