//! Tables for people.

use cascade_core::finder::{Disposition, Reference};
use cascade_core::offline::{Inventory, WhenItChanges};
use cascade_core::pins::Attention;
use cascade_core::plan::{Action, Plan, ResourceAction};
use cascade_core::report::Report;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

/// The plan as tables: the pinned versions that need attention (first: a person has to
/// change them), stacks to refresh (each resource's action, what is removed, every
/// reference), then stacks skipped with the reason (and the actions planned, if any).
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
    for note in &plan.notes {
        out.push_str(&format!("Note: {note}\n"));
    }
    if !plan.attention.is_empty() {
        out.push_str(&format!(
            "\nNeeds attention: {} reference(s) pinned to a version Secrets Manager deprecated \
             (it will delete it) or deleted; this plan leaves them as they are\n{}\n",
            plan.attention.len(),
            attention_table(&plan.attention)
        ));
    }
    if !plan.stacks.is_empty() {
        let mut table = new_table([
            "Stack",
            "Strategy",
            "Actions",
            "Removed and re-added",
            "References",
        ]);
        for p in &plan.stacks {
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
                actions(&p.actions),
                removed,
                references(&p.references),
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

/// The inventory of one template: per secret, each reference (resource, form, path, marked
/// with its disposition) and what a change of the secret would do; then what could not be
/// told offline.
pub fn inventory_table(inventory: &Inventory) -> String {
    let mut out = format!(
        "Stack {}: {} secret(s) referenced, {} reference(s) whose secret is not known.\n",
        inventory.stack_name,
        inventory.secrets.len(),
        inventory.unresolved.len()
    );
    if !inventory.secrets.is_empty() {
        let mut table = new_table([
            "Secret",
            "Resource",
            "Form",
            "References",
            "When it changes",
        ]);
        for secret in &inventory.secrets {
            let mut name = secret.secret.clone();
            if let Some(id) = &secret.created_by {
                name.push_str(&format!("\n(created by this stack: {id})"));
            }
            let resources: Vec<String> = secret
                .references
                .iter()
                .map(|r| {
                    r.resource
                        .clone()
                        .unwrap_or_else(|| "(outside Resources)".into())
                })
                .collect();
            let forms: Vec<String> = secret
                .references
                .iter()
                .map(|r| r.form.to_string())
                .collect();
            let when = match &secret.when_it_changes {
                WhenItChanges::Refreshed { strategy, actions } => {
                    format!("refreshed by {strategy}:\n{}", self::actions(actions))
                }
                WhenItChanges::Skipped { code, reason } => format!("skipped ({code}): {reason}"),
                WhenItChanges::NotUsed => "nothing: no property resolves it through \
                                             CloudFormation (what reads it by ARN at run time \
                                             gets the new value itself)"
                    .into(),
            };
            table.add_row([
                name,
                resources.join("\n"),
                forms.join("\n"),
                references(&secret.references),
                when,
            ]);
        }
        out.push_str(&format!("\n{table}\n"));
    }
    if !inventory.unresolved.is_empty() {
        let mut table = new_table(["Where", "Resource", "Why the secret is not known"]);
        for u in &inventory.unresolved {
            table.add_row([
                u.path.clone(),
                u.resource.clone().unwrap_or_default(),
                u.why.clone(),
            ]);
        }
        out.push_str(&format!(
            "\nNot known offline (give --export, --parameter or --resource)\n{table}\n"
        ));
    }
    out
}

/// One row per pinned version that needs attention: where, which version, what to do.
fn attention_table(attention: &[Attention]) -> Table {
    let mut table = new_table(["Stack", "Where", "Secret", "Version", "Why, and what to do"]);
    for a in attention {
        table.add_row([
            a.stack_name.clone(),
            a.path.clone(),
            a.secret.clone(),
            format!("{}\n{} (pinned by {})", a.version_id, a.status, a.pinned_by),
            a.reason.clone(),
        ]);
    }
    table
}

/// `Db: pin`, one resource a line; the reason under each one that is only reported.
fn actions(actions: &[ResourceAction]) -> String {
    actions
        .iter()
        .map(|a| match a.action {
            Action::Report => format!("{}: report ({})", a.logical_id, a.reason),
            _ => format!("{}: {}", a.logical_id, a.action),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each reference's path, marked with its disposition unless it is refreshed.
fn references(references: &[Reference]) -> String {
    references
        .iter()
        .map(|r| match r.disposition {
            Disposition::Refresh => r.path.clone(),
            Disposition::CreateOnly => {
                format!(
                    "{} (create-only: changing it would replace the resource)",
                    r.path
                )
            }
            Disposition::Restart => format!("{} (read at task start: restart)", r.path),
            Disposition::Pinned => format!("{} (pinned by the author)", r.path),
            Disposition::Current => format!("{} (current)", r.path),
            Disposition::Reported => format!("{} (reported)", r.path),
            Disposition::Possible => format!("{} (possible)", r.path),
        })
        .collect::<Vec<_>>()
        .join("\n")
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
    for a in &report.attention {
        out.push_str(&format!(
            "\n  needs attention {} {} ({} version {}, {}): {}",
            a.stack_name, a.path, a.secret, a.version_id, a.status, a.reason
        ));
    }
    out
}

/// The deployed application's status for people.
pub fn status_text(status: &cascade_aws::status::Status) -> String {
    let mut out = format!(
        "Secret Cascade in stack {} (bucket {})\n",
        status.deployed.stack_name, status.deployed.bucket
    );
    match &status.running {
        None => out.push_str("running: nothing\n"),
        Some(running) => match &running.progress {
            None => out.push_str(&format!(
                "running: {} since {} (discovering)\n",
                running.execution_arn, running.started_at
            )),
            Some(p) => {
                out.push_str(&format!(
                    "running: batch {} for {} since {}\n",
                    p.batch_id,
                    p.secrets.join(", "),
                    running.started_at
                ));
                match &p.current {
                    Some(c) => out.push_str(&format!(
                        "  stack {} of {}: {}, {}{}\n",
                        c.index,
                        p.planned,
                        c.stack_name,
                        c.phase,
                        c.seconds.map(|s| format!(" for {s} s")).unwrap_or_default()
                    )),
                    None => out.push_str(&format!(
                        "  all {} stacks done: writing the report\n",
                        p.planned
                    )),
                }
                out.push_str(&format!("  so far: {}\n", totals_text(&p.totals)));
            }
        },
    }
    out.push_str("recent batches:\n");
    if status.recent.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut table = new_table(["Batch", "Status", "Started", "Stopped", "Totals", "Report"]);
        for r in &status.recent {
            table.add_row([
                r.batch_id
                    .clone()
                    .unwrap_or_else(|| r.execution_name.clone()),
                r.status.clone(),
                r.started_at.clone(),
                r.stopped_at.clone().unwrap_or_default(),
                r.totals.as_ref().map(totals_text).unwrap_or_default(),
                r.report.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&format!("{table}\n"));
    }
    for (r, u) in status
        .recent
        .iter()
        .filter_map(|r| Some((r, r.unfinished.as_ref()?)))
    {
        out.push_str(&format!(
            "{} batch {}{}: execution {}\n",
            r.status,
            r.batch_id.as_deref().unwrap_or("(unknown)"),
            u.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            u.execution_arn
        ));
        match &u.state {
            Some(state) => out.push_str(&format!("  its state: {state}\n")),
            None => out.push_str("  no batch in its input\n"),
        }
        if u.stacks.is_empty() {
            out.push_str("  no stacks saved (it ended before its plan was saved)\n");
        }
        for s in &u.stacks {
            let what = match &s.outcome {
                Some(outcome) => outcome.clone(),
                None => format!("not finished ({})", s.phase),
            };
            out.push_str(&format!(
                "  stack {}: {what}{}\n",
                s.stack_name,
                s.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
        }
    }
    out.push_str(&format!(
        "tickets: {} waiting, {} being taken by a gatekeeper\n",
        status.tickets.waiting, status.tickets.in_flight
    ));
    let dead = &status.dead_letters;
    out.push_str(&match dead.oldest_age_seconds {
        Some(age) if dead.count > 0 => format!(
            "dead letters: {} (oldest {age} s old): `cascade dlq list` says why\n",
            dead.count
        ),
        _ => format!("dead letters: {}\n", dead.count),
    });
    out
}

/// The dead letters as a table (no bodies).
pub fn dead_letters_table(letters: &[cascade_aws::dead_letters::DeadLetter]) -> String {
    if letters.is_empty() {
        return "no dead letters\n".into();
    }
    let mut table = new_table(["Message", "Sent", "Received", "Bytes", "Reading it now"]);
    for l in letters {
        table.add_row([
            l.message_id.clone(),
            l.sent_at.map(|t| t.to_string()).unwrap_or_default(),
            l.receive_count.map(|c| c.to_string()).unwrap_or_default(),
            l.bytes.to_string(),
            l.reading.clone(),
        ]);
    }
    format!("{table}\n")
}

fn totals_text(t: &cascade_core::report::Totals) -> String {
    format!(
        "{} refreshed, {} failed, {} skipped, {} degraded",
        t.refreshed, t.failed, t.skipped, t.degraded
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_core::plan::{PlanOptions, plan_account};
    use cascade_core::secret::Secret;
    use cascade_core::stack::StackInfo;
    use serde_json::json;

    const DB_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";

    fn stack(name: &str, template: serde_json::Value) -> StackInfo {
        StackInfo::from_template(
            name,
            &format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/1"),
            template,
        )
    }

    #[test]
    fn the_table_shows_each_action_and_the_create_only_reports() {
        let db = stack(
            "db",
            json!({"Resources": {"Db": {"Type": "AWS::RDS::DBInstance", "Properties": {
                "MasterUsername": "{{resolve:secretsmanager:db:SecretString:username}}",
                "MasterUserPassword": "{{resolve:secretsmanager:db:SecretString:password}}"}}}}),
        );
        let web = stack(
            "web",
            json!({"Resources": {
                "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [
                    {"Secrets": [{"Name": "P", "ValueFrom": DB_ARN}]}]}},
                "Service": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Ref": "Task"}}}}}),
        );
        let secrets = [Secret::from_arn(DB_ARN).unwrap()];
        let plan = plan_account(&[db, web], &secrets, &PlanOptions::default());
        let table = plan_table(&plan);
        assert!(
            table.contains("2 stack(s) to refresh, 0 skipped."),
            "{table}"
        );
        assert!(table.contains("Db: pin"), "{table}");
        assert!(
            table.contains("Resources.Db.Properties.MasterUsername (create-only"),
            "{table}"
        );
        assert!(table.contains("Service: restart"), "{table}");
    }

    #[test]
    fn the_table_shows_the_pinned_versions_that_need_attention_first() {
        let legacy = stack(
            "legacy",
            json!({"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
                "Environment": {"Variables": {"K": "{{resolve:secretsmanager:db:SecretString:k::v-old}}"}}}}}}),
        );
        let mut secret = Secret::from_arn(DB_ARN).unwrap();
        secret.version_id = Some("v-new".into());
        let mut plan = plan_account(&[legacy], &[secret], &PlanOptions::default());
        let versions = [(
            "db".to_string(),
            [
                ("v-old".to_string(), vec![]),
                ("v-new".to_string(), vec!["AWSCURRENT".to_string()]),
            ]
            .into(),
        )]
        .into();
        plan.attention = cascade_core::pins::attention(&plan, &versions);
        plan.notes
            .push("the versions of secret x could not be listed (...)".into());
        let table = plan_table(&plan);
        let attention = table.find("Needs attention: 1 reference(s)").expect(&table);
        assert!(attention < table.find("Skipped").unwrap(), "{table}");
        assert!(table.contains("Note: the versions of secret x could not be listed"));
        assert!(table.contains("deprecated (pinned by author)"), "{table}");
        assert!(table.contains("pinned by the stack's author"), "{table}");
    }

    #[test]
    fn status_names_a_failed_batch_its_state_and_its_stacks() {
        use cascade_aws::status::{
            DeadLetterSummary, Deployed, QueueDepth, RecentBatch, StackLine, Status,
            UnfinishedBatch,
        };
        let execution_arn = "arn:aws:states:us-east-1:123456789012:execution:sc-cascade:cascade-b1";
        let status = Status {
            deployed: Deployed {
                stack_name: "sc".into(),
                queue_url: "q".into(),
                dead_letter_url: "d".into(),
                state_machine_arn: "sm".into(),
                bucket: "bkt".into(),
            },
            running: None,
            recent: vec![RecentBatch {
                execution_name: "cascade-b1".into(),
                batch_id: Some("b1".into()),
                status: "FAILED".into(),
                started_at: "2026-01-01T00:00:00Z".into(),
                stopped_at: Some("2026-01-01T00:01:00Z".into()),
                totals: None,
                report: None,
                unfinished: Some(UnfinishedBatch {
                    execution_arn: execution_arn.into(),
                    error: Some("ReportNotSaved".into()),
                    state: Some("s3://bkt/batches/b1/".into()),
                    stacks: vec![
                        StackLine {
                            stack_name: "app-a".into(),
                            outcome: Some("failed".into()),
                            phase: "done".into(),
                            reason: Some("changed since the plan".into()),
                        },
                        StackLine {
                            stack_name: "app-b".into(),
                            outcome: None,
                            phase: "waiting".into(),
                            reason: None,
                        },
                    ],
                }),
            }],
            tickets: QueueDepth::default(),
            dead_letters: DeadLetterSummary::default(),
        };
        let text = status_text(&status);
        assert!(
            text.contains(&format!(
                "FAILED batch b1 (ReportNotSaved): execution {execution_arn}\n  its state: s3://bkt/batches/b1/\n  stack app-a: failed: changed since the plan\n  stack app-b: not finished (waiting)\n"
            )),
            "{text}"
        );
    }
}
