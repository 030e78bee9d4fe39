//! Tables for people.

use cascade_core::finder::Disposition;
use cascade_core::plan::Plan;
use cascade_core::report::Report;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

/// The plan as tables: stacks to refresh, then stacks skipped with the reason.
pub fn plan_table(plan: &Plan) -> String {
    let mut out = String::new();
    let secrets: Vec<String> = plan
        .secrets
        .iter()
        .map(|s| match &s.version_id {
            Some(v) => format!("{} (version {v})", s.name),
            None => s.name.clone(),
        })
        .collect();
    out.push_str(&format!("Secrets: {}\n", secrets.join(", ")));
    out.push_str(&format!(
        "{} stack(s) to refresh, {} skipped.\n",
        plan.stacks.len(),
        plan.skipped.len()
    ));
    if !plan.stacks.is_empty() {
        let mut table = new_table([
            "Stack",
            "Strategy",
            "Resources",
            "Removed and re-added",
            "References",
        ]);
        for p in &plan.stacks {
            let refs: Vec<String> = p
                .references
                .iter()
                .map(|r| {
                    let mark = if r.disposition == Disposition::Refresh {
                        ""
                    } else {
                        " (reported)"
                    };
                    format!("{}{mark}", r.path)
                })
                .collect();
            let mut strategy = p.strategy.to_string();
            if !p.notes.is_empty() {
                strategy.push_str(&format!("\n{}", p.notes.join("\n")));
            }
            let mut removed = p.closure.join(", ");
            if !p.outputs.is_empty() {
                removed.push_str(&format!("\noutputs: {}", p.outputs.join(", ")));
            }
            table.add_row([
                p.stack_name.clone(),
                strategy,
                p.resources.join(", "),
                removed,
                refs.join("\n"),
            ]);
        }
        out.push_str(&format!("\nTo refresh\n{table}\n"));
    }
    if !plan.skipped.is_empty() {
        let mut table = new_table(["Stack", "Why skipped"]);
        for s in &plan.skipped {
            table.add_row([s.stack_name.clone(), s.reason.clone()]);
        }
        out.push_str(&format!("\nSkipped\n{table}\n"));
    }
    out
}

fn new_table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(140)
        .set_header(header);
    table
}

/// One line per outcome for the end of a run.
pub fn report_summary(report: &Report, elapsed: std::time::Duration) -> String {
    let t = report.totals;
    let mut out = format!(
        "batch {}: {} refreshed, {} failed, {} degraded, {} skipped in {:.1} s",
        report.batch_id,
        t.refreshed,
        t.failed,
        t.degraded,
        t.skipped,
        elapsed.as_secs_f64()
    );
    for s in &report.stacks {
        if let Some(command) = &s.restore_command {
            out.push_str(&format!(
                "\n  DEGRADED {}: {} -> run: {command}",
                s.stack_name,
                s.reason.as_deref().unwrap_or("")
            ));
        }
    }
    for s in report
        .stacks
        .iter()
        .filter(|s| s.outcome == cascade_core::report::Outcome::Failed)
    {
        out.push_str(&format!(
            "\n  failed {}: {}",
            s.stack_name,
            s.reason.as_deref().unwrap_or("")
        ));
    }
    out
}
