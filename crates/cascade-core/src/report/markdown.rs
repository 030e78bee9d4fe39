//! Markdown rendering of a report, for people: the stacks that need a restore first, then
//! every stack in one table (degraded and failed first), then the pinned versions that need
//! attention, then the details of each failure.

use super::{FailedResource, Outcome, Report, ReportSecret, StackReport, Totals};
use crate::pins::Attention;

/// Renders `report` as a Markdown document.
///
/// Stacks appear in report order (degraded, failed, refreshed, skipped; by name within
/// each) and the totals are counted from the stacks, whatever `report` holds, so the same
/// report always renders to the same text. Only the fields shown are rendered: stack ids,
/// secret ARNs and per-stack times stay in the JSON.
pub fn render_markdown(report: &Report) -> String {
    let report = normalised(report);
    let mut lines = vec![
        format!("# Secret Cascade report: batch {}", code(&report.batch_id)),
        String::new(),
        format!(
            "**{}**{} — secrets: {}",
            totals_summary(&report.totals),
            attention_summary(&report.attention).map_or(String::new(), |a| format!(" · **{a}**")),
            secrets_summary(&report.secrets)
        ),
        String::new(),
        format!("- Execution: {}", code(&report.execution)),
        format!("- Started: {}", text(&report.started_at)),
        format!(
            "- Finished: {}",
            report
                .finished_at
                .as_deref()
                .map_or("not finished".into(), text)
        ),
    ];
    if !report.notes.is_empty() {
        lines.push(String::new());
        lines.extend(report.notes.iter().map(|n| format!("> {}", text(n))));
    }
    let degraded: Vec<&StackReport> = report.with_outcome(Outcome::Degraded).collect();
    if !degraded.is_empty() {
        lines.extend(degraded_section(&degraded));
    }
    lines.extend(stacks_section(&report.stacks));
    if !report.attention.is_empty() {
        lines.extend(attention_section(&report.attention));
    }
    lines.extend(change_sets_section(&report.stacks));
    let failures: Vec<&StackReport> = report
        .stacks
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Degraded | Outcome::Failed))
        .collect();
    if !failures.is_empty() {
        lines.extend(failures_section(&failures));
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn degraded_section(stacks: &[&StackReport]) -> Vec<String> {
    let mut lines = vec![
        String::new(),
        "## ⚠️ Degraded stacks: restore needed".into(),
        String::new(),
        "Resources of these stacks were removed and could not be put back. Run each \
         stack's restore command to bring back its original template."
            .into(),
    ];
    for stack in stacks {
        lines.push(String::new());
        lines.push(format!("### {}", code(&stack.stack_name)));
        lines.push(String::new());
        lines.push(format!(
            "Phase: {}. Reason: {}",
            stack.phase,
            stack.reason.as_deref().map_or("not recorded".into(), text)
        ));
        lines.push(String::new());
        match &stack.restore_command {
            Some(command) => lines.push(fenced("sh", command)),
            None => lines.push("No restore command was recorded for this stack.".into()),
        }
    }
    lines
}

fn stacks_section(stacks: &[StackReport]) -> Vec<String> {
    let mut lines = vec![String::new(), "## Stacks".into(), String::new()];
    if stacks.is_empty() {
        lines.push("No stack depends on the changed secrets.".into());
        return lines;
    }
    lines.push("| Stack | Outcome | Strategy | Resources | Phase | Reason |".into());
    lines.push("| --- | --- | --- | --- | --- | --- |".into());
    for stack in stacks {
        let resources = if stack.resources.is_empty() {
            "—".to_string()
        } else {
            let ids: Vec<String> = stack.resources.iter().map(|r| code(r)).collect();
            ids.join(", ")
        };
        lines.push(row(&[
            code(&stack.stack_name),
            stack.outcome.as_str().into(),
            stack.strategy.map_or("—".into(), |s| s.to_string()),
            resources,
            stack.phase.as_str().into(),
            stack.reason.as_deref().map_or("—".into(), text),
        ]));
    }
    lines
}

/// The references pinned to a deprecated or deleted version: a person has to change them.
fn attention_section(attention: &[Attention]) -> Vec<String> {
    let mut lines = vec![
        String::new(),
        "## ⏳ Pinned versions that need attention".into(),
        String::new(),
        "These references name a version that Secrets Manager deprecated (it has no staging \
         label and will be deleted) or deleted. The batch leaves them as they are; until they \
         change, the stack cannot be updated (for ECS, new tasks cannot start)."
            .into(),
        String::new(),
        "| Stack | Where | Secret | Version | Status | Pinned by | What to do |".into(),
        "| --- | --- | --- | --- | --- | --- | --- |".into(),
    ];
    for a in attention {
        lines.push(row(&[
            code(&a.stack_name),
            code(&a.path),
            code(&a.secret),
            code(&a.version_id),
            a.status.to_string(),
            a.pinned_by.to_string(),
            text(&a.reason),
        ]));
    }
    lines
}

/// "2 pinned versions need attention", or nothing when none does.
pub(super) fn attention_summary(attention: &[Attention]) -> Option<String> {
    match attention.len() {
        0 => None,
        1 => Some("1 pinned version needs attention".into()),
        n => Some(format!("{n} pinned versions need attention")),
    }
}

/// One line per stack that had change sets executed, listing their ids (to open in the
/// console); nothing when none had.
fn change_sets_section(stacks: &[StackReport]) -> Vec<String> {
    let with: Vec<&StackReport> = stacks
        .iter()
        .filter(|s| !s.change_sets.is_empty())
        .collect();
    if with.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![String::new(), "## Change sets".into(), String::new()];
    for stack in with {
        let ids: Vec<String> = stack.change_sets.iter().map(|c| code(c)).collect();
        lines.push(format!("- {}: {}", code(&stack.stack_name), ids.join(", ")));
    }
    lines
}

fn failures_section(stacks: &[&StackReport]) -> Vec<String> {
    let mut lines = vec![String::new(), "## Failures".into()];
    for stack in stacks {
        lines.push(String::new());
        lines.push(format!(
            "### {} — {} in phase {}",
            code(&stack.stack_name),
            stack.outcome,
            stack.phase
        ));
        lines.push(String::new());
        lines.push(format!(
            "Reason: {}",
            stack.reason.as_deref().map_or("not recorded".into(), text)
        ));
        lines.push(String::new());
        if stack.failed_resources.is_empty() {
            lines.push("CloudFormation reported no failed resource.".into());
            continue;
        }
        lines.push("| Logical id | Type | Status | Reason |".into());
        lines.push("| --- | --- | --- | --- |".into());
        lines.extend(stack.failed_resources.iter().map(failed_resource_row));
    }
    lines
}

fn failed_resource_row(resource: &FailedResource) -> String {
    row(&[
        code(&resource.logical_id),
        resource.resource_type.as_deref().map_or("—".into(), code),
        code(&resource.status),
        resource.reason.as_deref().map_or("—".into(), text),
    ])
}

/// A copy of `report` in report order, with totals counted from its stacks.
pub(super) fn normalised(report: &Report) -> Report {
    let mut report = report.clone();
    report.normalise();
    report
}

/// "1 degraded, 2 failed, 3 refreshed": the non-zero counts, in report order.
pub(super) fn totals_summary(totals: &Totals) -> String {
    let counts = [
        (totals.degraded, "degraded"),
        (totals.failed, "failed"),
        (totals.refreshed, "refreshed"),
        (totals.skipped, "skipped"),
    ];
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, label)| format!("{n} {label}"))
        .collect();
    if parts.is_empty() {
        "no dependent stacks".into()
    } else {
        parts.join(", ")
    }
}

fn secrets_summary(secrets: &[ReportSecret]) -> String {
    if secrets.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = secrets
        .iter()
        .map(|s| match &s.version_id {
            Some(version) => format!("{} (version {})", code(&s.name), code(version)),
            None => format!("{} (version unknown)", code(&s.name)),
        })
        .collect();
    parts.join(", ")
}

/// A table row; `|` inside cells is escaped (GFM honours `\|` inside code spans too).
fn row(cells: &[String]) -> String {
    let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
    format!("| {} |", cells.join(" | "))
}

/// Free text on one line: HTML-significant characters escaped, line breaks as `<br>`.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// An inline code span that survives backticks in `s`; line breaks become spaces.
fn code(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    let fence = "`".repeat(longest_backtick_run(&s) + 1);
    if s.starts_with('`') || s.ends_with('`') {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// A fenced code block that survives backticks in `body`.
fn fenced(language: &str, body: &str) -> String {
    let fence = "`".repeat((longest_backtick_run(body) + 1).max(3));
    format!("{fence}{language}\n{body}\n{fence}")
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pins::{PinStatus, PinnedBy};
    use crate::report::samples::{self, pinned, stack};
    use crate::report::{FailedResource, Phase};

    #[test]
    fn pinned_versions_that_need_attention_follow_the_stacks_and_the_summary_counts_them() {
        let mut r = sample();
        r.attention = vec![
            pinned("old-pins", PinStatus::Deleted, PinnedBy::Author),
            pinned("aged", PinStatus::Deprecated, PinnedBy::Author),
        ];
        let md = render_markdown(&r);
        assert!(
            md.contains("**1 degraded, 1 failed, 1 refreshed, 1 skipped** · **2 pinned versions need attention** — secrets:"),
            "{md}"
        );
        let degraded = md.find("## ⚠️ Degraded stacks").unwrap();
        let table = md.find("## Stacks").unwrap();
        let attention = md
            .find("## ⏳ Pinned versions that need attention")
            .expect("attention section");
        let failures = md.find("## Failures").unwrap();
        assert!(
            degraded < table && table < attention && attention < failures,
            "{md}"
        );
        // By stack name, every cell escaped.
        let aged = md.find("| `aged` |").unwrap();
        let old = md.find("| `old-pins` |").unwrap();
        assert!(aged < old, "{md}");
        assert!(md.contains(
            "| `aged` | `Resources.Fn.Properties.Environment.Variables.KEY` | `prod/db` | `v-0` | deprecated | author | version v-0 of prod/db is deprecated \\| pin &lt;another&gt; |"
        ), "{md}");
        assert!(!render_markdown(&sample()).contains("need attention"));
    }

    fn report(stacks: Vec<StackReport>) -> Report {
        samples::report("b-20240501-abc", stacks)
    }

    fn sample() -> Report {
        let mut degraded = stack("api", Outcome::Degraded);
        degraded.phase = Phase::Restore;
        degraded.reason = Some("restore update failed".into());
        degraded.restore_command =
            Some("cascade restore --batch b-20240501-abc --stack api".into());
        let mut failed = stack("billing", Outcome::Failed);
        failed.phase = Phase::Remove;
        failed.reason = Some("update rolled back".into());
        failed.failed_resources = vec![FailedResource {
            logical_id: "Queue".into(),
            resource_type: Some("AWS::SQS::Queue".into()),
            status: "UPDATE_FAILED".into(),
            reason: Some("Resource handler returned message: denied".into()),
        }];
        let mut skipped = stack("legacy", Outcome::Skipped);
        skipped.strategy = None;
        skipped.phase = Phase::Plan;
        skipped.reason = Some("stack opts out by tag".into());
        // Deliberately out of order and with stale totals: rendering must not care.
        report(vec![
            skipped,
            stack("web", Outcome::Refreshed),
            failed,
            degraded,
        ])
    }

    #[test]
    fn degraded_stacks_come_first_with_their_restore_command() {
        let md = render_markdown(&sample());
        let degraded = md.find("## ⚠️ Degraded stacks").expect("degraded section");
        let table = md.find("## Stacks").expect("table");
        let failures = md.find("## Failures").expect("failures");
        assert!(degraded < table && table < failures);
        assert!(md.contains("```sh\ncascade restore --batch b-20240501-abc --stack api\n```"));
    }

    #[test]
    fn each_stack_with_change_sets_gets_one_line_listing_them() {
        assert!(!render_markdown(&sample()).contains("## Change sets"));
        let mut web = stack("web", Outcome::Refreshed);
        web.change_sets = vec!["arn:cs/remove".into(), "arn:cs/restore".into()];
        let md = render_markdown(&report(vec![web, stack("zed", Outcome::Refreshed)]));
        let section = md.find("## Change sets").expect("change sets section");
        assert!(md.find("## Stacks").unwrap() < section);
        assert!(
            md.contains("\n- `web`: `arn:cs/remove`, `arn:cs/restore`\n"),
            "{md}"
        );
        assert!(!md.contains("- `zed`"), "{md}");
    }

    #[test]
    fn table_rows_follow_report_order() {
        let md = render_markdown(&sample());
        let positions: Vec<usize> = ["| `api` |", "| `billing` |", "| `web` |", "| `legacy` |"]
            .iter()
            .map(|row| md.find(row).unwrap_or_else(|| panic!("{row} missing")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{md}");
        assert!(
            md.contains("| `legacy` | skipped | — | `Function` | plan | stack opts out by tag |")
        );
    }

    #[test]
    fn summary_counts_the_stacks() {
        let md = render_markdown(&sample());
        assert!(md.contains(
            "**1 degraded, 1 failed, 1 refreshed, 1 skipped** — secrets: `prod/db` (version `v-2`)"
        ));
        assert!(md.starts_with("# Secret Cascade report: batch `b-20240501-abc`\n"));
    }

    #[test]
    fn failures_list_each_failed_resource() {
        let md = render_markdown(&sample());
        let failures = &md[md.find("## Failures").unwrap()..];
        assert!(failures.contains("### `api` — degraded in phase restore"));
        assert!(failures.contains("### `billing` — failed in phase remove"));
        assert!(failures.contains(
            "| `Queue` | `AWS::SQS::Queue` | `UPDATE_FAILED` | Resource handler returned message: denied |"
        ));
        assert!(!failures.contains("`web`") && !failures.contains("`legacy`"));
    }

    #[test]
    fn cells_escape_pipes_newlines_and_html() {
        let mut failed = stack("s1", Outcome::Failed);
        failed.reason = Some("a | b\nc\r\nd <script> & e".into());
        let md = render_markdown(&report(vec![failed]));
        let row = md.lines().find(|l| l.starts_with("| `s1` |")).unwrap();
        assert_eq!(
            row,
            "| `s1` | failed | recreate | `Function` | done | a \\| b<br>c<br>d &lt;script&gt; &amp; e |"
        );
        assert!(!md.contains("<script>"));
        // Every table row has exactly the columns of its header.
        for line in md.lines().filter(|l| l.starts_with("| `s1` |")) {
            assert_eq!(line.replace("\\|", "").matches('|').count(), 7, "{line}");
        }
    }

    #[test]
    fn backticks_do_not_break_code() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(fenced("sh", "echo ```"), "````sh\necho ```\n````");
    }

    #[test]
    fn empty_report_renders() {
        let mut empty = report(vec![]);
        empty.secrets.clear();
        empty.finished_at = None;
        let md = render_markdown(&empty);
        assert!(md.contains("**no dependent stacks** — secrets: none"));
        assert!(md.contains("No stack depends on the changed secrets."));
        assert!(md.contains("- Finished: not finished"));
        assert!(!md.contains("Degraded") && !md.contains("## Failures"));
    }

    #[test]
    fn degraded_without_command_says_so() {
        let md = render_markdown(&report(vec![stack("s", Outcome::Degraded)]));
        assert!(md.contains("No restore command was recorded for this stack."));
    }

    #[test]
    fn output_is_deterministic_and_independent_of_input_order() {
        let a = sample();
        let mut b = sample();
        b.stacks.reverse();
        assert_eq!(render_markdown(&a), render_markdown(&b));
    }

    #[test]
    fn unicode_is_kept() {
        let mut s = stack("s", Outcome::Failed);
        s.reason = Some("Zugriff verweigert — 拒否されました 🚫".into());
        let md = render_markdown(&report(vec![s]));
        assert!(md.contains("Zugriff verweigert — 拒否されました 🚫"));
    }

    #[test]
    fn fields_not_meant_for_people_stay_out() {
        const CANARY: &str = "CANARY-7f3a";
        let mut r = sample();
        r.secrets[0].arn = CANARY.into();
        for s in &mut r.stacks {
            s.stack_id = CANARY.into();
            s.started_at = Some(CANARY.into());
            s.finished_at = Some(CANARY.into());
        }
        let md = render_markdown(&r);
        assert!(!md.contains(CANARY), "{md}");
    }
}
