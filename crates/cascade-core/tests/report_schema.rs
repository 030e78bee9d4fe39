//! The report's JSON, as serde produces it, against its published schema
//! (`schema/report.schema.json`), and the schema against the model.

use cascade_core::finder::Form;
use cascade_core::pins::{Attention, PinStatus, PinnedBy};
use cascade_core::plan::Strategy;
use cascade_core::report::{
    FailedResource, Outcome, Phase, REPORT_SCHEMA_VERSION, Report, ReportSecret, StackReport,
    Totals,
};
use jsonschema::Validator;
use serde_json::{Value, json};

const SCHEMA: &str = include_str!("../schema/report.schema.json");

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("the schema is JSON")
}

fn validator() -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema())
        .expect("the schema compiles")
}

/// Validates `instance`, failing with every error and its path.
fn assert_valid(instance: &Value) {
    let validator = validator();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{instance:#}");
}

/// The paths of the errors `instance` has.
fn error_paths(instance: &Value) -> Vec<String> {
    let validator = validator();
    validator
        .iter_errors(instance)
        .map(|e| e.instance_path.to_string())
        .collect()
}

fn stack(name: &str, outcome: Outcome, phase: Phase, strategy: Option<Strategy>) -> StackReport {
    StackReport {
        stack_name: name.into(),
        stack_id: format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/0a1b"),
        strategy,
        resources: vec!["Function".into(), "Alias".into()],
        outcome,
        phase,
        reason: None,
        failed_resources: vec![],
        started_at: Some("2024-05-01T10:00:01Z".into()),
        finished_at: Some("2024-05-01T10:02:30.5+02:00".into()),
        restore_command: None,
        change_sets: vec![],
        refused: vec![],
    }
}

/// One stack of each outcome, every phase, both strategies and none.
fn representative() -> Report {
    let mut degraded = stack(
        "api",
        Outcome::Degraded,
        Phase::Restore,
        Some(Strategy::Recreate),
    );
    degraded.reason = Some("the restoring update failed".into());
    degraded.change_sets = vec![
        "arn:aws:cloudformation:us-east-1:123456789012:changeSet/cascade-b-1-remove-1-api/0a1b"
            .into(),
    ];
    degraded.restore_command = Some("cascade restore --batch b-1 --stack api".into());
    degraded.failed_resources = vec![FailedResource {
        logical_id: "Function".into(),
        resource_type: Some("AWS::Lambda::Function".into()),
        status: "CREATE_FAILED".into(),
        reason: Some("Resource handler returned message: rate exceeded".into()),
    }];
    let mut failed = stack(
        "billing",
        Outcome::Failed,
        Phase::Remove,
        Some(Strategy::Recreate),
    );
    failed.reason = Some("update rolled back".into());
    failed.failed_resources = vec![FailedResource {
        logical_id: "Queue".into(),
        resource_type: None,
        status: "UPDATE_FAILED".into(),
        reason: None,
    }];
    let mut pin_failed = stack("cache", Outcome::Failed, Phase::Pin, Some(Strategy::Pin));
    pin_failed.reason = Some("update rolled back".into());
    let mut begin_failed = stack("dns", Outcome::Failed, Phase::Begin, Some(Strategy::Pin));
    begin_failed.reason = Some("UpdateStack: access denied".into());
    let mut skipped = stack("legacy", Outcome::Skipped, Phase::Plan, None);
    skipped.reason = Some("the stack opts out by tag".into());
    skipped.resources = vec![];
    skipped.started_at = None;
    skipped.finished_at = None;
    let mut refused = stack(
        "orders-db",
        Outcome::Skipped,
        Phase::Begin,
        Some(Strategy::Pin),
    );
    refused.refused =
        vec!["replace Db (AWS::RDS::DBInstance, Replacement True): Db holds state".into()];
    refused.reason = Some(cascade_core::change_set::refusal_reason(&refused.refused));
    let mut report = Report {
        schema_version: REPORT_SCHEMA_VERSION,
        batch_id: "b-20240501-0a1b2c".into(),
        execution: "arn:aws:states:us-east-1:123456789012:execution:cascade:b-20240501-0a1b2c"
            .into(),
        secrets: vec![
            ReportSecret {
                name: "prod/db".into(),
                arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf".into(),
                version_id: Some("3c7b2e0f-0000-4000-8000-000000000001".into()),
            },
            ReportSecret {
                name: "prod/api-key".into(),
                arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-key-GhIjKl"
                    .into(),
                version_id: None,
            },
        ],
        started_at: "2024-05-01T10:00:00Z".into(),
        finished_at: Some("2024-05-01T10:05:00Z".into()),
        totals: Totals::default(),
        stacks: vec![
            stack("web", Outcome::Refreshed, Phase::Done, Some(Strategy::Pin)),
            skipped,
            refused,
            failed,
            pin_failed,
            begin_failed,
            degraded,
        ],
        attention: vec![
            Attention {
                stack_name: "legacy".into(),
                stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/legacy/0a1b".into(),
                resource: Some("Importer".into()),
                path: "Resources.Importer.Properties.Environment.Variables.DB_PASSWORD".into(),
                secret: "prod/db".into(),
                version_id: "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE".into(),
                form: Form::DynamicReference,
                pinned_by: PinnedBy::Author,
                status: PinStatus::Deleted,
                reason: "pinned by the stack's author: version EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE of prod/db no longer exists: ...".into(),
            },
            Attention {
                stack_name: "tasks".into(),
                stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/tasks/0a1b".into(),
                resource: None,
                path: "Outputs.Old.Value".into(),
                secret: "prod/api-key".into(),
                version_id: "3c7b2e0f-0000-4000-8000-000000000000".into(),
                form: Form::EcsValueFrom,
                pinned_by: PinnedBy::SecretCascade,
                status: PinStatus::Deprecated,
                reason: "version ... has no staging label any more: ...".into(),
            },
        ],
        notes: vec![
            "secret prod/gone no longer exists: skipped".into(),
            cascade_core::pins::unchecked_note("prod/api-key", "secretsmanager:ListSecretVersionIds failed: ThrottlingException: Rate exceeded"),
        ],
    };
    report.normalise();
    report
}

#[test]
fn schema_is_a_valid_draft_2020_12_schema() {
    jsonschema::draft202012::meta::validate(&schema()).expect("valid against the meta-schema");
}

#[test]
fn representative_report_is_valid_and_round_trips() {
    let report = representative();
    let json = serde_json::to_value(&report).unwrap();
    assert_valid(&json);
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn empty_report_is_valid() {
    let report = Report {
        schema_version: REPORT_SCHEMA_VERSION,
        batch_id: "b-empty".into(),
        execution: "cli".into(),
        secrets: vec![],
        started_at: "2024-05-01T10:00:00Z".into(),
        finished_at: None,
        totals: Totals::default(),
        stacks: vec![],
        attention: vec![],
        notes: vec![],
    };
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["finished_at"], Value::Null);
    assert!(json.get("attention").is_none(), "left out when empty");
    assert_valid(&json);
}

/// A report written before `attention` existed still reads, with none.
#[test]
fn a_report_without_attention_still_reads() {
    let mut json = serde_json::to_value(representative()).unwrap();
    json.as_object_mut().unwrap().remove("attention");
    assert_valid(&json);
    let report: Report = serde_json::from_value(json).unwrap();
    assert!(report.attention.is_empty());
}

#[test]
fn unicode_report_is_valid() {
    let mut report = representative();
    report.batch_id = "b-ünïcødé-批次".into();
    report.secrets[0].name = "prod/データベース".into();
    report.stacks[0].reason = Some("Zugriff verweigert — 拒否されました 🚫\nzweite Zeile".into());
    report.stacks[1].failed_resources[0].reason = Some("«résumé» \u{0}\u{7f}".into());
    assert_valid(&serde_json::to_value(&report).unwrap());
}

#[test]
fn unknown_outcome_is_rejected() {
    let mut json = serde_json::to_value(representative()).unwrap();
    json["stacks"][0]["outcome"] = json!("exploded");
    assert_eq!(error_paths(&json), ["/stacks/0/outcome"]);
}

#[test]
fn other_contract_breaks_are_rejected() {
    type Break = fn(&mut Value);
    let breaks: [(&str, Break); 14] = [
        ("/schema_version", |j| j["schema_version"] = json!(2)),
        ("/stacks/0/phase", |j| {
            j["stacks"][0]["phase"] = json!("Done")
        }),
        ("/stacks/0/strategy", |j| {
            j["stacks"][0]["strategy"] = json!("auto")
        }),
        ("/totals", |j| {
            j["totals"].as_object_mut().unwrap().remove("degraded");
        }),
        ("/totals/failed", |j| j["totals"]["failed"] = json!(-1)),
        ("/stacks/0", |j| {
            j["stacks"][0].as_object_mut().unwrap().remove("reason");
        }),
        ("/secrets/0", |j| {
            j["secrets"][0]["value"] = json!("hunter2")
        }),
        ("/stacks/0/failed_resources/0/reason", |j| {
            j["stacks"][0]["failed_resources"][0]["reason"] = Value::Null
        }),
        ("/started_at", |j| j["started_at"] = json!("yesterday")),
        ("/attention/0/status", |j| {
            j["attention"][0]["status"] = json!("expired")
        }),
        ("/attention/0/pinned_by", |j| {
            j["attention"][0]["pinned_by"] = json!("someone")
        }),
        ("/attention/0", |j| {
            j["attention"][0]
                .as_object_mut()
                .unwrap()
                .remove("version_id");
        }),
        ("/attention/0", |j| {
            j["attention"][0]["value"] = json!("hunter2")
        }),
        ("/attention/1/form", |j| {
            j["attention"][1]["form"] = json!("ecs")
        }),
    ];
    for (path, break_it) in breaks {
        let mut json = serde_json::to_value(representative()).unwrap();
        break_it(&mut json);
        assert_eq!(error_paths(&json), [path], "breaking {path}");
    }
}

/// The schema's enums hold exactly the model's values, as serde writes them.
#[test]
fn schema_enums_match_the_model() {
    fn outcome(o: Outcome) -> Outcome {
        // A new variant fails to compile here: add it to the list and the schema.
        match o {
            Outcome::Degraded | Outcome::Failed | Outcome::Refreshed | Outcome::Skipped => o,
        }
    }
    fn phase(p: Phase) -> Phase {
        match p {
            Phase::Plan | Phase::Begin | Phase::Remove | Phase::Restore | Phase::Pin => p,
            Phase::Restart | Phase::Done => p,
        }
    }
    fn strategy(s: Strategy) -> Strategy {
        match s {
            Strategy::Recreate | Strategy::Pin | Strategy::Restart => s,
        }
    }
    let outcomes = [
        Outcome::Degraded,
        Outcome::Failed,
        Outcome::Refreshed,
        Outcome::Skipped,
    ]
    .map(outcome);
    let phases = [
        Phase::Plan,
        Phase::Begin,
        Phase::Remove,
        Phase::Restore,
        Phase::Pin,
        Phase::Restart,
        Phase::Done,
    ]
    .map(phase);
    let strategies = [Strategy::Recreate, Strategy::Pin, Strategy::Restart].map(strategy);
    fn form(f: Form) -> Form {
        match f {
            Form::DynamicReference | Form::DynamicReferenceSub | Form::DynamicReferenceJoin => f,
            Form::Parameter | Form::ImportValue | Form::Tag | Form::Macro | Form::EcsValueFrom => f,
        }
    }
    fn status(s: PinStatus) -> PinStatus {
        match s {
            PinStatus::Deprecated | PinStatus::Deleted => s,
        }
    }
    fn pinned_by(p: PinnedBy) -> PinnedBy {
        match p {
            PinnedBy::Author | PinnedBy::SecretCascade => p,
        }
    }
    let forms = [
        Form::DynamicReference,
        Form::DynamicReferenceSub,
        Form::DynamicReferenceJoin,
        Form::Parameter,
        Form::ImportValue,
        Form::Tag,
        Form::Macro,
        Form::EcsValueFrom,
    ]
    .map(form);
    let statuses = [PinStatus::Deprecated, PinStatus::Deleted].map(status);
    let pinners = [PinnedBy::Author, PinnedBy::SecretCascade].map(pinned_by);

    let schema = schema();
    let enum_of = |name: &str| schema["$defs"][name]["enum"].as_array().unwrap().clone();
    assert_eq!(
        enum_of("outcome"),
        outcomes
            .iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        enum_of("phase"),
        phases
            .iter()
            .map(|p| serde_json::to_value(p).unwrap())
            .collect::<Vec<_>>()
    );
    let mut expected: Vec<Value> = strategies
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
    expected.push(Value::Null);
    assert_eq!(enum_of("strategy"), expected);
    let values = |items: &[serde_json::Value]| items.to_vec();
    assert_eq!(
        enum_of("form"),
        values(&forms.map(|f| serde_json::to_value(f).unwrap()))
    );
    assert_eq!(
        enum_of("pin_status"),
        values(&statuses.map(|s| serde_json::to_value(s).unwrap()))
    );
    assert_eq!(
        enum_of("pinned_by"),
        values(&pinners.map(|p| serde_json::to_value(p).unwrap()))
    );
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        json!(REPORT_SCHEMA_VERSION)
    );
}
