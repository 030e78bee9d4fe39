//! Slack Block Kit message of a report, for an incoming webhook: the totals, the secrets,
//! where the full report is, then the stacks that need attention: degraded, failed, then
//! the pinned versions that need attention (references to a version Secrets Manager
//! deprecated or deleted), then the stacks whose change set CloudFormation's verdict
//! refused (untouched, still on the old value, each named with what the change set would
//! have done).
//!
//! The message always stays inside Slack's limits: stacks that do not fit in
//! [`MAX_BLOCKS`] are summed up in a last block (the pinned versions keep their block),
//! and long texts are cut with "…".

use serde_json::{Value, json};

use super::markdown::{attention_summary, normalised, totals_summary};
use super::{Outcome, Report, StackReport};
use crate::pins::Attention;

/// Most blocks Slack accepts in one message.
pub const MAX_BLOCKS: usize = 50;
/// Most characters Slack accepts in a section's text (and in the top-level `text`).
pub const MAX_SECTION_CHARS: usize = 3000;
/// Most characters Slack accepts in a header block.
pub const MAX_HEADER_CHARS: usize = 150;

/// Longest stack reason shown, so that failed resources still fit beside it.
const MAX_REASON_CHARS: usize = 1500;
/// Longest failed-resource reason shown.
const MAX_RESOURCE_REASON_CHARS: usize = 300;
/// Longest restore command block shown; longer ones are left to the report.
const MAX_COMMAND_CHARS: usize = 1000;

/// Builds the webhook payload for `report`: Block Kit `blocks` plus a plain `text`
/// fallback. `report_location` says where the full report is (an `s3://` URI or a path).
///
/// Only names, versions, counts, reasons and restore commands are rendered; user-provided
/// text is escaped for mrkdwn (`&`, `<`, `>`).
pub fn slack_message(report: &Report, report_location: Option<&str>) -> Value {
    let report = normalised(report);
    let mut blocks = vec![
        header(&report),
        secrets_section(&report),
        location_context(&report, report_location),
    ];
    let attention: Vec<&StackReport> = report
        .stacks
        .iter()
        .filter(|s| needs_attention(s))
        .collect();
    let pins = (!report.attention.is_empty()).then(|| pins_section(&report.attention));
    let room = MAX_BLOCKS - blocks.len() - usize::from(pins.is_some());
    let shown = if attention.len() <= room {
        attention.len()
    } else {
        room - 1
    };
    // Degraded and failed first (report order), then the pins, then the refused stacks.
    let urgent = attention[..shown]
        .iter()
        .take_while(|s| matches!(s.outcome, Outcome::Degraded | Outcome::Failed))
        .count();
    blocks.extend(attention[..urgent].iter().map(|s| stack_section(s)));
    blocks.extend(pins);
    blocks.extend(attention[urgent..shown].iter().map(|s| stack_section(s)));
    if shown < attention.len() {
        blocks.push(section(format!(
            "… and {} more stacks that need attention: see the report",
            attention.len() - shown
        )));
    }
    json!({
        "text": fallback_text(&report, &attention, report_location),
        "blocks": blocks,
    })
}

/// Longest reason shown per pinned version.
const MAX_PIN_REASON_CHARS: usize = 600;

/// One section listing every pinned version that needs attention (the last lines counted
/// in "… and N more" when they do not fit).
fn pins_section(pins: &[Attention]) -> Value {
    let mut lines = vec![format!(
        ":hourglass_flowing_sand: *Pinned versions that need attention* ({}): the batch left \
         them as they are; until they change, the stack cannot be updated (for ECS, new \
         tasks cannot start)",
        pins.len()
    )];
    lines.extend(pins.iter().map(|p| {
        format!(
            "• `{}` `{}`: `{}` version `{}` *{}* (pinned by {}): {}",
            escape(&p.stack_name),
            escape(&p.path),
            escape(&p.secret),
            escape(&p.version_id),
            p.status,
            match p.pinned_by {
                crate::pins::PinnedBy::Author => "the author",
                crate::pins::PinnedBy::SecretCascade => "Secret Cascade",
            },
            clip(&escape(&p.reason), MAX_PIN_REASON_CHARS)
        )
    }));
    section(fit_lines(&lines, "pinned versions"))
}

/// Degraded and failed stacks, and stacks left on the old value because their change set
/// was refused.
fn needs_attention(stack: &StackReport) -> bool {
    match stack.outcome {
        Outcome::Degraded | Outcome::Failed => true,
        Outcome::Skipped => !stack.refused.is_empty(),
        Outcome::Refreshed => false,
    }
}

fn header(report: &Report) -> Value {
    let icon = if report.totals.degraded > 0 {
        ":rotating_light:"
    } else if report.totals.failed > 0 {
        ":x:"
    } else if report.stacks.iter().any(needs_attention) || !report.attention.is_empty() {
        ":warning:"
    } else {
        ":white_check_mark:"
    };
    let mut text = format!("{icon} Secret Cascade: {}", totals_summary(&report.totals));
    if let Some(pins) = attention_summary(&report.attention) {
        text.push_str(&format!(" · {pins}"));
    }
    json!({
        "type": "header",
        "text": {"type": "plain_text", "text": clip(&text, MAX_HEADER_CHARS), "emoji": true},
    })
}

fn secrets_section(report: &Report) -> Value {
    let mut lines = vec!["*Changed secrets*".to_string()];
    if report.secrets.is_empty() {
        lines.push("none".into());
    }
    lines.extend(report.secrets.iter().map(|s| {
        let version = s
            .version_id
            .as_deref()
            .map_or("unknown".into(), |v| format!("`{}`", escape(v)));
        format!("• `{}` version {version}", escape(&s.name))
    }));
    lines.extend(report.notes.iter().map(|n| format!("_{}_", escape(n))));
    section(fit_lines(&lines, "secrets"))
}

fn location_context(report: &Report, report_location: Option<&str>) -> Value {
    let location = report_location.map_or("not stored".into(), |l| format!("`{}`", escape(l)));
    let text = format!("Report: {location} · batch `{}`", escape(&report.batch_id));
    json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(&text, MAX_SECTION_CHARS)}],
    })
}

fn stack_section(stack: &StackReport) -> Value {
    let name = escape(&stack.stack_name);
    let phase = stack.phase.as_str();
    let strategy = stack
        .strategy
        .map_or(String::new(), |s| format!(", strategy {s}"));
    let reason = stack.reason.as_deref().map_or("not recorded".into(), |r| {
        clip(&escape(r), MAX_REASON_CHARS)
    });
    let mut lines = Vec::new();
    let what = if stack.outcome == Outcome::Skipped {
        lines.push(format!(
            ":no_entry: *Refused: `{name}`* (phase {phase}{strategy}): CloudFormation's change \
             set would have done what the plan does not mean, so it was deleted unexecuted; \
             the stack is untouched and still uses the old value"
        ));
        lines.extend(
            stack
                .refused
                .iter()
                .map(|p| format!("• {}", clip(&escape(p), MAX_RESOURCE_REASON_CHARS))),
        );
        "refused changes"
    } else if stack.outcome == Outcome::Degraded {
        lines.push(format!(
            ":rotating_light: *Degraded: `{name}`* (phase {phase}{strategy}): resources were \
             removed and could not be put back"
        ));
        lines.push(format!("*Reason:* {reason}"));
        lines.push(restore_text(stack.restore_command.as_deref()));
        "details"
    } else {
        lines.push(format!(
            ":x: *Failed: `{name}`* (phase {phase}{strategy}): rolled back, the stack is intact"
        ));
        lines.push(format!("*Reason:* {reason}"));
        lines.extend(stack.failed_resources.iter().map(|r| {
            let kind = r
                .resource_type
                .as_deref()
                .map_or(String::new(), |t| format!(" ({})", escape(t)));
            let why = r.reason.as_deref().map_or(String::new(), |why| {
                format!(": {}", clip(&escape(why), MAX_RESOURCE_REASON_CHARS))
            });
            format!(
                "• `{}`{kind} {}{why}",
                escape(&r.logical_id),
                escape(&r.status)
            )
        }));
        "failed resources"
    };
    section(fit_lines(&lines, what))
}

fn restore_text(command: Option<&str>) -> String {
    match command {
        Some(command) => {
            let block = format!("```{}```", escape(command));
            if block.chars().count() <= MAX_COMMAND_CHARS {
                format!("*Restore with:*\n{block}")
            } else {
                "*Restore with:* the command in the report (too long for Slack)".into()
            }
        }
        None => "*Restore:* no restore command was recorded".into(),
    }
}

fn fallback_text(report: &Report, attention: &[&StackReport], location: Option<&str>) -> String {
    let mut text = format!(
        "Secret Cascade batch {}: {}.",
        escape(&report.batch_id),
        totals_summary(&report.totals)
    );
    let names = |outcome: Outcome| -> Vec<String> {
        attention
            .iter()
            .filter(|s| s.outcome == outcome)
            .map(|s| escape(&s.stack_name))
            .collect()
    };
    let degraded = names(Outcome::Degraded);
    if !degraded.is_empty() {
        text.push_str(&format!(" Restore needed: {}.", degraded.join(", ")));
    }
    let failed = names(Outcome::Failed);
    if !failed.is_empty() {
        text.push_str(&format!(" Failed: {}.", failed.join(", ")));
    }
    if !report.attention.is_empty() {
        let mut stacks: Vec<String> = report
            .attention
            .iter()
            .map(|a| escape(&a.stack_name))
            .collect();
        stacks.dedup();
        text.push_str(&format!(
            " Pinned versions that need attention: {}.",
            stacks.join(", ")
        ));
    }
    let refused = names(Outcome::Skipped);
    if !refused.is_empty() {
        text.push_str(&format!(
            " Change set refused, left on the old value: {}.",
            refused.join(", ")
        ));
    }
    if let Some(location) = location {
        text.push_str(&format!(" Report: {}", escape(location)));
    }
    clip(&text, MAX_SECTION_CHARS)
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// Joins `lines` into at most [`MAX_SECTION_CHARS`] characters: lines that do not fit are
/// counted in a last "… and N more" line.
fn fit_lines(lines: &[String], what: &str) -> String {
    let all = lines.join("\n");
    if all.chars().count() <= MAX_SECTION_CHARS {
        return all;
    }
    // Reserve room for the longest possible "more" line.
    let reserve = format!("\n… and {} more {what}: see the report", lines.len()).len();
    let budget = MAX_SECTION_CHARS - reserve;
    let mut out = String::new();
    let mut used = 0;
    let mut kept = 0;
    for line in lines {
        let cost = line.chars().count() + usize::from(kept > 0);
        if used + cost > budget {
            break;
        }
        if kept > 0 {
            out.push('\n');
        }
        out.push_str(line);
        used += cost;
        kept += 1;
    }
    if kept == 0 {
        // Even the first line is too long: cut it.
        out = clip(&lines[0], budget);
        kept = 1;
    }
    out.push_str(&format!(
        "\n… and {} more {what}: see the report",
        lines.len() - kept
    ));
    out
}

/// A message as a person reads it in Slack, as plain text: the header, each section and
/// context in order (mrkdwn marks and emoji names kept, escapes undone), sections apart by a
/// blank line. For terminals (`make demo`) and logs that show what the team was told.
pub fn message_as_text(message: &Value) -> String {
    let unescape = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let mut parts = Vec::new();
    for block in message["blocks"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("header") | Some("section") => {
                if let Some(text) = block["text"]["text"].as_str() {
                    parts.push(unescape(text));
                }
            }
            Some("context") => {
                let texts: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["text"].as_str().map(unescape))
                    .collect();
                parts.push(texts.join("  "));
            }
            Some("divider") => parts.push("────".into()),
            _ => {}
        }
    }
    if parts.is_empty() {
        parts.extend(message["text"].as_str().map(unescape));
    }
    parts.join("\n\n")
}

/// Escapes `&`, `<` and `>` as Slack's mrkdwn requires.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts `s` to at most `max` characters, ending with "…" when cut. Never leaves half an
/// escape (`&amp;`) at the end.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    if let Some(amp) = cut.rfind('&')
        && !cut[amp..].contains(';')
        && cut.len() - amp < "&amp;".len()
    {
        cut.truncate(amp);
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pins::{PinStatus, PinnedBy};
    use crate::plan::Strategy;
    use crate::report::samples::{self, pinned, stack};
    use crate::report::{FailedResource, Phase};

    #[test]
    fn pinned_versions_come_right_after_degraded_and_failed_and_before_refused() {
        let mut refused = stack("orders", Outcome::Skipped);
        refused.refused = vec!["replace Db".into()];
        let mut r = sample();
        r.stacks.push(refused);
        r.attention = vec![
            pinned("aged", PinStatus::Deprecated, PinnedBy::Author),
            pinned("gone", PinStatus::Deleted, PinnedBy::SecretCascade),
        ];
        let message = slack_message(&r, None);
        let texts: Vec<&str> = blocks(&message)
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .collect();
        assert!(
            texts[0].ends_with("2 skipped · 2 pinned versions need attention"),
            "{texts:#?}"
        );
        assert!(
            texts[2].starts_with(":rotating_light: *Degraded: `api`*"),
            "{texts:#?}"
        );
        assert!(
            texts[3].starts_with(":x: *Failed: `billing`*"),
            "{texts:#?}"
        );
        let pins = texts[4];
        assert!(
            pins.starts_with(":hourglass_flowing_sand: *Pinned versions that need attention* (2)"),
            "{texts:#?}"
        );
        assert!(pins.contains(
            "• `aged` `Resources.Fn.Properties.Environment.Variables.KEY`: `prod/db` version `v-0` *deprecated* (pinned by the author): version v-0 of prod/db is deprecated | pin &lt;another&gt;"
        ), "{pins}");
        assert!(
            pins.contains("*deleted* (pinned by Secret Cascade)"),
            "{pins}"
        );
        assert!(
            texts[5].starts_with(":no_entry: *Refused: `orders`*"),
            "{texts:#?}"
        );
        let fallback = message["text"].as_str().unwrap();
        assert!(
            fallback.contains("Failed: billing. Pinned versions that need attention: aged, gone."),
            "{fallback}"
        );
    }

    #[test]
    fn pinned_versions_alone_make_a_warning_and_are_never_cut() {
        let mut r = report(vec![stack("web", Outcome::Refreshed)]);
        r.attention = vec![pinned("aged", PinStatus::Deprecated, PinnedBy::Author)];
        let message = slack_message(&r, None);
        assert!(
            blocks(&message)[0]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with(":warning:")
        );
        // More failed stacks than fit: the pins keep their block.
        let mut r = report(
            (0..80)
                .map(|i| stack(&format!("s{i:02}"), Outcome::Failed))
                .collect(),
        );
        r.attention = (0..200)
            .map(|i| pinned(&format!("p{i:03}"), PinStatus::Deleted, PinnedBy::Author))
            .collect();
        let message = slack_message(&r, None);
        let blocks = blocks(&message);
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let pins = blocks
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .find(|t| t.contains("*Pinned versions that need attention* (200)"))
            .expect("the pins' block");
        assert!(pins.chars().count() <= MAX_SECTION_CHARS);
        assert!(
            pins.contains("more pinned versions: see the report"),
            "{pins}"
        );
        assert!(
            blocks[MAX_BLOCKS - 1]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("more stacks that need attention")
        );
    }

    fn report(stacks: Vec<StackReport>) -> Report {
        samples::report("b-1", stacks)
    }

    fn sample() -> Report {
        let mut degraded = stack("api", Outcome::Degraded);
        degraded.phase = Phase::Restore;
        degraded.reason = Some("restore update failed".into());
        degraded.restore_command = Some("cascade restore --batch b-1 --stack api".into());
        let mut failed = stack("billing", Outcome::Failed);
        failed.phase = Phase::Remove;
        failed.reason = Some("update rolled back".into());
        failed.failed_resources = vec![FailedResource {
            logical_id: "Queue".into(),
            resource_type: Some("AWS::SQS::Queue".into()),
            status: "UPDATE_FAILED".into(),
            reason: Some("denied".into()),
        }];
        report(vec![
            stack("web", Outcome::Refreshed),
            failed,
            stack("legacy", Outcome::Skipped),
            degraded,
        ])
    }

    fn blocks(message: &Value) -> &Vec<Value> {
        message["blocks"].as_array().expect("blocks")
    }

    /// Every text of a message: sections, header, context elements and the fallback.
    fn texts(message: &Value) -> Vec<String> {
        let mut out = vec![message["text"].as_str().unwrap().to_string()];
        for block in blocks(message) {
            if let Some(text) = block["text"]["text"].as_str() {
                out.push(text.to_string());
            }
            for element in block["elements"].as_array().into_iter().flatten() {
                out.push(element["text"].as_str().unwrap().to_string());
            }
        }
        out
    }

    #[test]
    fn degraded_then_failed_after_the_fixed_blocks() {
        let message = slack_message(&sample(), Some("s3://reports/b-1/report.md"));
        let blocks = blocks(&message);
        let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["header", "section", "context", "section", "section"]
        );
        assert_eq!(
            blocks[0]["text"]["text"],
            ":rotating_light: Secret Cascade: 1 degraded, 1 failed, 1 refreshed, 1 skipped"
        );
        let secrets = blocks[1]["text"]["text"].as_str().unwrap();
        assert_eq!(secrets, "*Changed secrets*\n• `prod/db` version `v-2`");
        let context = blocks[2]["elements"][0]["text"].as_str().unwrap();
        assert_eq!(
            context,
            "Report: `s3://reports/b-1/report.md` · batch `b-1`"
        );
        let degraded = blocks[3]["text"]["text"].as_str().unwrap();
        assert!(degraded.starts_with(":rotating_light: *Degraded: `api`*"));
        assert!(degraded.contains("*Reason:* restore update failed"));
        assert!(degraded.contains("```cascade restore --batch b-1 --stack api```"));
        let failed = blocks[4]["text"]["text"].as_str().unwrap();
        assert!(failed.starts_with(":x: *Failed: `billing`* (phase remove, strategy recreate)"));
        assert!(failed.contains("• `Queue` (AWS::SQS::Queue) UPDATE_FAILED: denied"));
    }

    #[test]
    fn a_message_reads_as_text_in_block_order() {
        let mut degraded = stack("api", Outcome::Degraded);
        degraded.restore_command = Some("cascade restore --batch b-1 --stack api".into());
        let message = slack_message(&report(vec![degraded]), Some("s3://b/r.json"));
        let text = message_as_text(&message);
        let header = text.lines().next().unwrap();
        assert!(header.contains("1 degraded"), "{text}");
        assert!(text.contains("s3://b/r.json"), "{text}");
        assert!(
            text.contains("```cascade restore --batch b-1 --stack api```"),
            "{text}"
        );
        assert!(!text.contains("\"type\""), "no JSON: {text}");
        assert_eq!(message_as_text(&json!({"text": "a &lt;b&gt;"})), "a <b>");
    }

    #[test]
    fn fallback_text_summarises() {
        let message = slack_message(&sample(), Some("s3://reports/b-1/report.md"));
        assert_eq!(
            message["text"],
            "Secret Cascade batch b-1: 1 degraded, 1 failed, 1 refreshed, 1 skipped. \
             Restore needed: api. Failed: billing. Report: s3://reports/b-1/report.md"
        );
    }

    #[test]
    fn a_refused_change_set_is_shown_with_each_resource_it_would_have_changed() {
        let mut refused = stack("orders-db", Outcome::Skipped);
        refused.strategy = Some(Strategy::Pin);
        refused.phase = Phase::Begin;
        refused.refused = vec![
            "replace Db (AWS::RDS::DBInstance, Replacement True): Db (AWS::RDS::DBInstance) holds state".into(),
            "modify Role (AWS::IAM::Role), which the plan did not name <drift>".into(),
        ];
        refused.reason = Some(crate::change_set::refusal_reason(&refused.refused));
        // Skipped at planning: not in the message.
        let mut planned_out = stack("legacy", Outcome::Skipped);
        planned_out.reason = Some("stack opts out by tag".into());
        let message = slack_message(
            &report(vec![stack("web", Outcome::Refreshed), planned_out, refused]),
            None,
        );
        let blocks = blocks(&message);
        assert_eq!(blocks.len(), 4, "{message:#}");
        assert_eq!(
            blocks[0]["text"]["text"],
            ":warning: Secret Cascade: 1 refreshed, 2 skipped"
        );
        assert_eq!(
            blocks[3]["text"]["text"],
            ":no_entry: *Refused: `orders-db`* (phase begin, strategy pin): CloudFormation's \
             change set would have done what the plan does not mean, so it was deleted \
             unexecuted; the stack is untouched and still uses the old value\n\
             • replace Db (AWS::RDS::DBInstance, Replacement True): Db (AWS::RDS::DBInstance) holds state\n\
             • modify Role (AWS::IAM::Role), which the plan did not name &lt;drift&gt;"
        );
        assert!(
            message["text"]
                .as_str()
                .unwrap()
                .ends_with("Change set refused, left on the old value: orders-db."),
            "{}",
            message["text"]
        );
    }

    #[test]
    fn all_refreshed_has_no_stack_blocks() {
        let message = slack_message(&report(vec![stack("web", Outcome::Refreshed)]), None);
        let blocks = blocks(&message);
        assert_eq!(blocks.len(), 3);
        assert_eq!(
            blocks[0]["text"]["text"],
            ":white_check_mark: Secret Cascade: 1 refreshed"
        );
        assert_eq!(
            blocks[2]["elements"][0]["text"],
            "Report: not stored · batch `b-1`"
        );
    }

    #[test]
    fn user_text_is_escaped() {
        let mut failed = stack("s", Outcome::Failed);
        failed.reason = Some("<!channel> a & b > c".into());
        let message = slack_message(&report(vec![failed]), Some("/tmp/<x>&.md"));
        let all = texts(&message).join("\n");
        assert!(all.contains("&lt;!channel&gt; a &amp; b &gt; c"));
        assert!(all.contains("/tmp/&lt;x&gt;&amp;.md"));
        assert!(!all.contains("<!channel>"));
    }

    #[test]
    fn stays_inside_slack_limits_with_many_long_failures() {
        let long = "x".repeat(5000);
        let stacks: Vec<StackReport> = (0..120)
            .map(|i| {
                let mut s = stack(&format!("stack-{i:03}"), Outcome::Failed);
                s.reason = Some(long.clone());
                s.failed_resources = (0..30)
                    .map(|j| FailedResource {
                        logical_id: format!("Resource{j}"),
                        resource_type: Some("AWS::Lambda::Function".into()),
                        status: "UPDATE_FAILED".into(),
                        reason: Some(long.clone()),
                    })
                    .collect();
                s
            })
            .collect();
        let mut r = report(stacks);
        r.batch_id = "b".repeat(400);
        let message = slack_message(&r, Some(&"s3://bucket/".repeat(400)));
        let blocks = blocks(&message);
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= MAX_HEADER_CHARS);
        for text in texts(&message) {
            assert!(
                text.chars().count() <= MAX_SECTION_CHARS,
                "{} chars",
                text.len()
            );
        }
        // 3 fixed blocks, 46 stacks, 1 summary block.
        let last = blocks.last().unwrap()["text"]["text"].as_str().unwrap();
        assert_eq!(
            last,
            "… and 74 more stacks that need attention: see the report"
        );
        let shown = blocks
            .iter()
            .filter(|b| {
                b["type"] == "section"
                    && b["text"]["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(":x:"))
            })
            .count();
        assert_eq!(shown, 46);
        let first = blocks[3]["text"]["text"].as_str().unwrap();
        assert!(first.contains('…'));
        assert!(first.ends_with("more failed resources: see the report"));
    }

    #[test]
    fn exactly_full_needs_no_summary_block() {
        let stacks = (0..MAX_BLOCKS - 3)
            .map(|i| stack(&format!("s{i:02}"), Outcome::Failed))
            .collect();
        let message = slack_message(&report(stacks), None);
        let blocks = blocks(&message);
        assert_eq!(blocks.len(), MAX_BLOCKS);
        assert!(
            !blocks.last().unwrap()["text"]["text"]
                .as_str()
                .unwrap()
                .contains("more failed/degraded")
        );
    }

    #[test]
    fn degraded_stacks_win_the_space() {
        let mut stacks: Vec<StackReport> = (0..60)
            .map(|i| stack(&format!("a-failed-{i:02}"), Outcome::Failed))
            .collect();
        stacks.push(stack("z-degraded", Outcome::Degraded));
        let message = slack_message(&report(stacks), None);
        let first = blocks(&message)[3]["text"]["text"].as_str().unwrap();
        assert!(first.contains("*Degraded: `z-degraded`*"));
    }

    #[test]
    fn long_restore_command_is_left_to_the_report() {
        let mut s = stack("s", Outcome::Degraded);
        s.restore_command = Some("cascade restore ".repeat(100));
        let message = slack_message(&report(vec![s]), None);
        let text = blocks(&message)[3]["text"]["text"].as_str().unwrap();
        assert!(text.contains("the command in the report (too long for Slack)"));
    }

    #[test]
    fn clip_never_splits_an_escape() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("a&amp;b", 4), "a…");
        assert_eq!(clip("a&amp;b", 7), "a&amp;b");
        assert_eq!(clip("a&amp;bc", 7), "a&amp;…");
        assert_eq!(clip("ééééé", 3), "éé…");
    }

    #[test]
    fn fields_not_meant_for_slack_stay_out() {
        const CANARY: &str = "CANARY-7f3a";
        let mut r = sample();
        r.execution = CANARY.into();
        r.started_at = CANARY.into();
        r.finished_at = Some(CANARY.into());
        r.secrets[0].arn = CANARY.into();
        for s in &mut r.stacks {
            s.stack_id = CANARY.into();
            s.started_at = Some(CANARY.into());
            s.finished_at = Some(CANARY.into());
            s.resources = vec![CANARY.into()];
        }
        let message = slack_message(&r, None);
        assert!(!message.to_string().contains(CANARY), "{message:#}");
    }

    #[test]
    fn deterministic() {
        let a = sample();
        let mut b = sample();
        b.stacks.reverse();
        assert_eq!(slack_message(&a, None), slack_message(&b, None));
    }
}
