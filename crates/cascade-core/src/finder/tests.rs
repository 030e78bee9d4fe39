use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::*;
use crate::eval::Pseudo;
use crate::secret::SecretOwner;

const DB_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/app/1234";

fn db() -> Secret {
    let mut s = Secret::from_arn(DB_ARN).unwrap();
    s.version_id = Some("v-current".into());
    s
}

fn api() -> Secret {
    Secret::from_arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-QwErTy")
        .unwrap()
}

fn stack(template: Value) -> StackInfo {
    let mut s = StackInfo::from_template("app", STACK_ID, template);
    s.tags = BTreeMap::new();
    s
}

fn find_with(
    stack: &StackInfo,
    params: &[(&str, &str)],
    exports: &[(&str, &str)],
    secrets: &[Secret],
) -> Vec<Reference> {
    let template = stack.template.clone().unwrap();
    let exports: HashMap<String, String> = exports
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let given: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let pseudo = Pseudo {
        region: Some("us-east-1".into()),
        account_id: Some("123456789012".into()),
        partition: Some("aws".into()),
        stack_name: Some(stack.name.clone()),
        stack_id: Some(stack.id.clone()),
    };
    let mut scope = Scope::new(&template, &given, pseudo, &exports);
    for s in secrets {
        if let Some(o) = s.owner.as_ref().filter(|o| o.stack_id == stack.id) {
            scope = scope.with_resource_ref(&o.logical_id, &s.arn);
        }
    }
    find_references(&scope, stack, secrets)
}

fn find(template: Value) -> Vec<Reference> {
    find_with(&stack(template), &[], &[], &[db()])
}

fn in_property(value: Value) -> Value {
    json!({"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Password": value}}}})
}

fn only(refs: Vec<Reference>) -> Reference {
    assert_eq!(refs.len(), 1, "{refs:#?}");
    refs.into_iter().next().unwrap()
}

#[test]
fn plain_dynamic_reference_by_name_full_arn_and_partial_arn() {
    for id in [
        "db",
        DB_ARN,
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
    ] {
        let r = only(find(in_property(json!(format!(
            "{{{{resolve:secretsmanager:{id}:SecretString:password}}}}"
        )))));
        assert_eq!(r.path, "Resources.Fn.Properties.Password");
        assert_eq!(r.resource.as_deref(), Some("Fn"));
        assert_eq!(r.form, Form::DynamicReference);
        assert_eq!(r.disposition, Disposition::Refresh);
        assert_eq!(r.targets, ["Fn"]);
        assert_eq!(r.secret, "db");
    }
}

#[test]
fn look_alikes_never_match() {
    for id in [
        "db-replica",
        "app/db/extra",
        "DB",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-replica-AbCdEf",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-XyZ123",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
    ] {
        let refs = find(in_property(json!(format!(
            "{{{{resolve:secretsmanager:{id}}}}}"
        ))));
        assert!(refs.is_empty(), "{id}: {refs:?}");
    }
    assert!(find(in_property(json!("{{resolve:ssm:db}}"))).is_empty());
    assert!(find(in_property(json!("db"))).is_empty());
}

#[test]
fn sub_in_both_forms_with_parameters_and_pseudo_parameters() {
    let template = json!({
        "Parameters": {"Name": {"Type": "String"}},
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "A": {"Fn::Sub": "{{resolve:secretsmanager:${Name}:SecretString:password}}"},
            "B": {"Fn::Sub": ["{{resolve:secretsmanager:arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${N}}}", {"N": {"Ref": "Name"}}]}
        }}}
    });
    let refs = find_with(&stack(template), &[("Name", "db")], &[], &[db()]);
    assert_eq!(refs.len(), 2, "{refs:#?}");
    assert!(
        refs.iter()
            .all(|r| r.form == Form::DynamicReferenceSub && r.disposition == Disposition::Refresh)
    );
    assert_eq!(refs[0].path, "Resources.Fn.Properties.A");
    assert_eq!(
        refs[0].text.as_deref(),
        Some("{{resolve:secretsmanager:db:SecretString:password}}")
    );
    assert_eq!(refs[1].path, "Resources.Fn.Properties.B");
}

#[test]
fn join_from_parameters() {
    let template = json!({
        "Parameters": {"Env": {"Type": "String", "Default": "prod"}},
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Env": {"Variables": {"P": {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": "Env"}, "/api:SecretString:key}}"]]}}}
        }}}
    });
    let r = only(find_with(&stack(template), &[], &[], &[db(), api()]));
    assert_eq!(r.secret, "prod/api");
    assert_eq!(r.form, Form::DynamicReferenceJoin);
    assert_eq!(r.path, "Resources.Fn.Properties.Env.Variables.P");
}

#[test]
fn pinned_references_are_reported_not_refreshed() {
    let r = only(find(in_property(json!(
        "{{resolve:secretsmanager:db:SecretString:password::v-old}}"
    ))));
    assert_eq!(r.disposition, Disposition::Pinned);
    assert!(r.targets.is_empty());
    assert!(r.detail.unwrap().contains("v-old"));
    let r = only(find(in_property(json!(
        "{{resolve:secretsmanager:db:SecretString:password:AWSPREVIOUS}}"
    ))));
    assert_eq!(r.disposition, Disposition::Pinned);
    let r = only(find(in_property(json!(
        "{{resolve:secretsmanager:db:SecretString:password:AWSCURRENT}}"
    ))));
    assert_eq!(r.disposition, Disposition::Refresh);
}

#[test]
fn pins_recorded_by_secret_cascade_stay_refreshable() {
    let mut template = in_property(json!(
        "{{resolve:secretsmanager:db:SecretString:password::v-old}}"
    ));
    template["Metadata"] = json!({PIN_METADATA_KEY: {"Pins": [
        {"Path": "Resources.Fn.Properties.Password", "SecretArn": DB_ARN, "VersionId": "v-old"}
    ]}});
    let r = only(find(template.clone()));
    assert_eq!(r.disposition, Disposition::Refresh);
    assert_eq!(r.targets, ["Fn"]);

    template["Resources"]["Fn"]["Properties"]["Password"] =
        json!("{{resolve:secretsmanager:db:SecretString:password::v-current}}");
    template["Metadata"][PIN_METADATA_KEY]["Pins"][0]["VersionId"] = json!("v-current");
    assert_eq!(only(find(template)).disposition, Disposition::Current);
}

#[test]
fn outputs_conditions_and_metadata_are_reported_only() {
    let template = json!({
        "Metadata": {"Note": "{{resolve:secretsmanager:db}}"},
        "Conditions": {"C": {"Fn::Equals": ["{{resolve:secretsmanager:db}}", "x"]}},
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function",
            "Metadata": {"M": "{{resolve:secretsmanager:db}}"}}},
        "Outputs": {"O": {"Value": {"Fn::Sub": "{{resolve:secretsmanager:db}}"}}}
    });
    let refs = find(template);
    assert_eq!(refs.len(), 4);
    assert!(
        refs.iter()
            .all(|r| r.disposition == Disposition::Reported && r.targets.is_empty()),
        "{refs:#?}"
    );
    let paths: Vec<&str> = refs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Metadata.Note",
            "Conditions.C.Fn::Equals[0]",
            "Resources.Fn.Metadata.M",
            "Outputs.O.Value"
        ]
    );
    assert!(
        refs[2]
            .detail
            .as_deref()
            .unwrap()
            .contains("Metadata of resource Fn")
    );
    assert_eq!(refs[2].resource.as_deref(), Some("Fn"));
}

#[test]
fn parameters_naming_the_secret_and_the_resources_using_them() {
    let template = json!({
        "Parameters": {"SecretArn": {"Type": "String"}, "Other": {"Type": "String"}},
        "Resources": {
            "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
                "ContainerDefinitions": [{"Secrets": [{"Name": "P", "ValueFrom": {"Ref": "SecretArn"}}]}]}},
            "Policy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
                "Doc": {"Fn::Sub": "${SecretArn}*"}}},
            "Unrelated": {"Type": "AWS::SNS::Topic", "Properties": {"N": {"Ref": "Other"}}}
        },
        "Outputs": {"A": {"Value": {"Ref": "SecretArn"}}}
    });
    let refs = find_with(
        &stack(template),
        &[("SecretArn", DB_ARN), ("Other", "db-replica")],
        &[],
        &[db()],
    );
    let summary: Vec<(&str, Form, Disposition)> = refs
        .iter()
        .map(|r| (r.path.as_str(), r.form, r.disposition))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "Resources.Task.Properties.ContainerDefinitions[0].Secrets[0].ValueFrom",
                Form::EcsValueFrom,
                Disposition::Reported
            ),
            (
                "Resources.Policy.Properties.Doc",
                Form::Parameter,
                Disposition::Refresh
            ),
            ("Outputs.A.Value", Form::Parameter, Disposition::Reported),
        ]
    );
}

#[test]
fn a_parameter_inside_a_dynamic_reference_counts_once() {
    let template = json!({
        "Parameters": {"Name": {"Type": "String"}},
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "P": {"Fn::Sub": "{{resolve:secretsmanager:${Name}}}"}}}}
    });
    let r = only(find_with(&stack(template), &[("Name", "db")], &[], &[db()]));
    assert_eq!(r.form, Form::DynamicReferenceSub);
}

#[test]
fn import_value_of_an_export_naming_the_secret() {
    let template = json!({
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Arn": {"Fn::ImportValue": {"Fn::Sub": "shared-${AWS::Region}-DbSecret"}},
            "Other": {"Fn::ImportValue": "shared-Other"},
            "Built": {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Fn::ImportValue": "shared-Name"}, "}}"]]}
        }}}
    });
    let refs = find_with(
        &stack(template),
        &[],
        &[
            ("shared-us-east-1-DbSecret", DB_ARN),
            ("shared-Other", "db-replica"),
            ("shared-Name", "db"),
        ],
        &[db()],
    );
    let summary: Vec<(&str, Form)> = refs.iter().map(|r| (r.path.as_str(), r.form)).collect();
    assert_eq!(
        summary,
        [
            ("Resources.Fn.Properties.Arn", Form::ImportValue),
            ("Resources.Fn.Properties.Built", Form::DynamicReferenceJoin),
        ]
    );
}

#[test]
fn the_cascade_secrets_tag_names_resources_to_refresh() {
    let template = json!({"Resources": {"Svc": {"Type": "AWS::ECS::Service"}, "Task": {"Type": "AWS::ECS::TaskDefinition"}}});
    let mut s = stack(template);
    s.tags
        .insert(TAG_SECRETS.into(), format!("other, {DB_ARN}"));
    s.tags.insert(TAG_RESOURCES.into(), "Task, Missing".into());
    let r = only(find_with(&s, &[], &[], &[db()]));
    assert_eq!((r.form, r.disposition), (Form::Tag, Disposition::Refresh));
    assert_eq!(r.targets, ["Task"]);
    assert!(r.detail.unwrap().contains("Missing"));
    assert_eq!(r.resource, None);

    s.tags.remove(TAG_RESOURCES);
    let r = only(find_with(&s, &[], &[], &[db()]));
    assert_eq!(r.disposition, Disposition::Reported);
    assert!(r.detail.unwrap().contains("cascade:resources is missing"));

    s.tags.insert(TAG_SECRETS.into(), "db-replica".into());
    assert!(find_with(&s, &[], &[], &[db()]).is_empty());
}

#[test]
fn unevaluable_secret_ids_are_possible_references() {
    let template = json!({
        "Parameters": {"Hidden": {"Type": "String", "NoEcho": true}},
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "A": {"Fn::Sub": "{{resolve:secretsmanager:${Hidden}:SecretString:password}}"},
            "B": {"Fn::Sub": "{{resolve:secretsmanager:prod/${Hidden}}}"},
            "C": {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Fn::GetAtt": ["X", "Name"]}, "}}"]]}
        }}}
    });
    let refs = find_with(&stack(template), &[("Hidden", "****")], &[], &[db()]);
    let summary: Vec<(&str, Disposition)> = refs
        .iter()
        .map(|r| (r.path.as_str(), r.disposition))
        .collect();
    // B cannot be `db`: its literal prefix rules it out.
    assert_eq!(
        summary,
        [
            ("Resources.Fn.Properties.A", Disposition::Possible),
            ("Resources.Fn.Properties.C", Disposition::Possible)
        ]
    );
    assert!(refs[0].detail.as_deref().unwrap().contains("NoEcho"));
    assert_eq!(
        refs[0].text.as_deref(),
        Some("{{resolve:secretsmanager:${?}:SecretString:password}}")
    );
    assert!(refs[1].detail.as_deref().unwrap().contains("X.Name"));
}

#[test]
fn unknown_macros_mentioning_the_secret_are_possible_references() {
    let template = json!({
        "Transform": ["AWS::Serverless-2016-10-31", "Acme::Secrets"],
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "P": {"Fn::Transform": {"Name": "Acme::Inject", "Parameters": {"Secret": "db"}}},
            "Q": {"Fn::Transform": {"Name": "Acme::Inject", "Parameters": {"Secret": "db-replica"}}}
        }}}
    });
    let refs = find(template);
    let paths: Vec<(&str, Form, Disposition)> = refs
        .iter()
        .map(|r| (r.path.as_str(), r.form, r.disposition))
        .collect();
    assert_eq!(
        paths,
        [
            ("Transform", Form::Macro, Disposition::Possible),
            (
                "Resources.Fn.Properties.P.Fn::Transform",
                Form::Macro,
                Disposition::Possible
            ),
        ]
    );
}

#[test]
fn a_secret_created_by_the_stack_matches_through_its_owner_tags() {
    let template = json!({"Resources": {
        "Secret": {"Type": "AWS::SecretsManager::Secret"},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "P": {"Fn::Sub": "{{resolve:secretsmanager:${Secret}::password}}"}}}
    }});
    let s = stack(template);
    assert!(
        find_with(&s, &[], &[], &[db()]).is_empty(),
        "no owner: not this secret, and not a possible one"
    );
    let mut owned = db();
    owned.owner = Some(SecretOwner {
        stack_id: STACK_ID.into(),
        logical_id: "Secret".into(),
    });
    let r = only(find_with(&s, &[], &[], &[owned]));
    assert_eq!(
        (r.form, r.disposition),
        (Form::DynamicReferenceSub, Disposition::Refresh)
    );
}

#[test]
fn sam_globals_refresh_every_function() {
    let template = json!({
        "Transform": "AWS::Serverless-2016-10-31",
        "Globals": {"Function": {"Environment": {"Variables": {"P": "{{resolve:secretsmanager:db}}"}}}},
        "Resources": {
            "A": {"Type": "AWS::Serverless::Function"},
            "B": {"Type": "AWS::Serverless::Function"},
            "T": {"Type": "AWS::SNS::Topic"}
        }
    });
    let r = only(find(template));
    assert_eq!(r.disposition, Disposition::Refresh);
    assert_eq!(r.targets, ["A", "B"]);
    assert_eq!(r.resource, None);
}

#[test]
fn several_secrets_and_several_references_in_one_string() {
    let refs = find_with(
        &stack(in_property(json!(
            "{{resolve:secretsmanager:db:SecretString:u}}/{{resolve:secretsmanager:prod/api}}"
        ))),
        &[],
        &[],
        &[db(), api()],
    );
    let secrets: Vec<&str> = refs.iter().map(|r| r.secret.as_str()).collect();
    assert_eq!(secrets, ["db", "prod/api"]);
}

fn conditional(env: &str) -> Vec<Reference> {
    let template = json!({
        "Parameters": {"Env": {"Type": "String"}, "Hidden": {"Type": "String", "NoEcho": true}},
        "Conditions": {
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "Unknowable": {"Fn::Equals": [{"Ref": "Hidden"}, "x"]}
        },
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
                "P": {"Fn::If": ["IsProd", "{{resolve:secretsmanager:db}}", "{{resolve:secretsmanager:staging/db}}"]},
                "Q": {"Fn::If": ["Unknowable", "{{resolve:secretsmanager:db:SecretString:a}}", "{{resolve:secretsmanager:db:SecretString:b}}"]}
            }},
            "ProdOnly": {"Type": "AWS::SNS::Topic", "Condition": "IsProd", "Properties": {"N": "{{resolve:secretsmanager:db}}"}}
        },
        "Outputs": {"O": {"Condition": "IsProd", "Value": "{{resolve:secretsmanager:db}}"}}
    });
    find_with(
        &stack(template),
        &[("Env", env), ("Hidden", "****")],
        &[],
        &[db()],
    )
}

#[test]
fn only_the_branches_and_resources_the_stack_deploys_count() {
    let paths = |refs: Vec<Reference>| refs.into_iter().map(|r| r.path).collect::<Vec<_>>();
    assert_eq!(
        paths(conditional("staging")),
        [
            "Resources.Fn.Properties.Q.Fn::If[1]",
            "Resources.Fn.Properties.Q.Fn::If[2]"
        ],
        "an unknowable condition keeps both branches; IsProd false drops P's first branch, ProdOnly and O"
    );
    assert_eq!(
        paths(conditional("prod")),
        [
            "Resources.Fn.Properties.P.Fn::If[1]",
            "Resources.Fn.Properties.Q.Fn::If[1]",
            "Resources.Fn.Properties.Q.Fn::If[2]",
            "Resources.ProdOnly.Properties.N",
            "Outputs.O.Value"
        ]
    );
}

#[test]
fn an_import_inside_a_longer_sub_names_the_secret() {
    let template = json!({"Resources": {"Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
        "ValueFrom": {"Fn::Sub": ["${Arn}:password::", {"Arn": {"Fn::ImportValue": "shared-DbSecretArn"}}]}
    }}}});
    let r = only(find_with(
        &stack(template),
        &[],
        &[("shared-DbSecretArn", DB_ARN)],
        &[db()],
    ));
    assert_eq!(
        (r.form, r.disposition),
        (Form::ImportValue, Disposition::Refresh)
    );
    assert_eq!(
        r.text.as_deref(),
        Some(format!("{DB_ARN}:password::").as_str())
    );
}

#[test]
fn a_no_echo_value_is_never_shown_even_when_readable() {
    let template = json!({
        "Parameters": {"Name": {"Type": "String", "NoEcho": true}},
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "P": {"Fn::Sub": "{{resolve:secretsmanager:${Name}}}"}}}}
    });
    // Offline, or a backend that does not mask it: the value is known and used ...
    let r = only(find_with(&stack(template), &[("Name", "db")], &[], &[db()]));
    assert_eq!(r.disposition, Disposition::Refresh);
    // ... but not printed.
    assert_eq!(r.text, None);
}

/// A task definition reading `value_from` (a ValueFrom of its first container, or the
/// given node), run by a service, plus whatever `extra` resources.
fn ecs(value_from: Value, extra: Value) -> Value {
    let mut t = json!({"Resources": {
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{
            "Name": "app", "Image": "app:1",
            "Secrets": [{"Name": "DB_PASSWORD", "ValueFrom": value_from}]}]}},
        "Service": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Ref": "Task"}}}
    }});
    if let Some(extra) = extra.as_object() {
        for (k, v) in extra {
            t["Resources"][k] = v.clone();
        }
    }
    t
}

const VALUE_FROM: &str = "Resources.Task.Properties.ContainerDefinitions[0].Secrets[0].ValueFrom";

#[test]
fn an_ecs_value_from_restarts_the_services_running_the_task_definition() {
    let partial = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db";
    for value in [
        json!(DB_ARN),
        json!(format!("{DB_ARN}:password::")),
        json!(format!("{DB_ARN}:password:AWSCURRENT:")),
        json!(partial),
        json!(format!("{partial}:username::")),
        json!("db"),
    ] {
        let r = only(find(ecs(value.clone(), json!({}))));
        assert_eq!(r.path, VALUE_FROM, "{value}");
        assert_eq!(r.resource.as_deref(), Some("Task"));
        assert_eq!(
            (r.form, r.disposition),
            (Form::EcsValueFrom, Disposition::Restart),
            "{value}"
        );
        assert_eq!(r.targets, ["Service"]);
        assert_eq!(r.text.as_deref(), value.as_str());
        assert!(r.detail.unwrap().contains("a new deployment of Service"));
    }
    for other in [
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-replica-AbCdEf:password::",
        "db-replica",
        "arn:aws:ssm:us-east-1:123456789012:parameter/db",
    ] {
        assert!(find(ecs(json!(other), json!({}))).is_empty(), "{other}");
    }
}

#[test]
fn an_ecs_value_from_built_by_sub_join_import_parameter_or_own_secret() {
    let template = ecs(
        json!({"Ref": "SecretArn"}),
        json!({
            "BySub": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{
                "Secrets": [{"Name": "P", "ValueFrom": {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:db"}}]}]}},
            "ByJoin": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{
                "Secrets": [{"Name": "P", "ValueFrom": {"Fn::Join": [":", [{"Ref": "SecretArn"}, "password", "", ""]]}}]}]}},
            "ByImport": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{
                "Secrets": [{"Name": "P", "ValueFrom": {"Fn::Sub": ["${Arn}:username::", {"Arn": {"Fn::ImportValue": "shared-DbSecretArn"}}]}}]}]}},
            "Own": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{
                "Secrets": [{"Name": "P", "ValueFrom": {"Ref": "DbSecret"}}]}]}},
            "DbSecret": {"Type": "AWS::SecretsManager::Secret"},
            "Services": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Fn::If": ["Always", {"Ref": "BySub"}, {"Ref": "ByJoin"}]}}},
            "ImportService": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Fn::GetAtt": ["ByImport", "TaskDefinitionArn"]}}},
            "OwnService": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Fn::Sub": "${Own}"}}}
        }),
    );
    let mut template = template;
    template["Parameters"] = json!({"SecretArn": {"Type": "String"}});
    let mut owned = db();
    owned.owner = Some(SecretOwner {
        stack_id: STACK_ID.into(),
        logical_id: "DbSecret".into(),
    });
    let refs = find_with(
        &stack(template),
        &[("SecretArn", DB_ARN)],
        &[("shared-DbSecretArn", DB_ARN)],
        &[owned],
    );
    let summary: Vec<(&str, Disposition, Vec<&str>)> = refs
        .iter()
        .map(|r| {
            assert_eq!(r.form, Form::EcsValueFrom, "{r:?}");
            (
                r.resource.as_deref().unwrap(),
                r.disposition,
                r.targets.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Task", Disposition::Restart, vec!["Service"]),
            ("BySub", Disposition::Restart, vec!["Services"]),
            ("ByJoin", Disposition::Restart, vec!["Services"]),
            ("ByImport", Disposition::Restart, vec!["ImportService"]),
            ("Own", Disposition::Restart, vec!["OwnService"]),
        ]
    );
    assert!(
        refs[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("through parameter SecretArn")
    );
    assert_eq!(
        refs[2].text.as_deref(),
        Some(format!("{DB_ARN}:password::").as_str())
    );
    assert!(
        refs[3]
            .detail
            .as_deref()
            .unwrap()
            .contains("through export shared-DbSecretArn")
    );
}

#[test]
fn log_configuration_secret_options_are_read_at_run_time_too() {
    let template = json!({"Resources": {
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [
            {"Name": "sidecar"},
            {"Name": "app", "LogConfiguration": {"LogDriver": "splunk", "SecretOptions": [
                {"Name": "splunk-token", "ValueFrom": format!("{DB_ARN}:token::")}]}}]}},
        "Service": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": {"Ref": "Task"}}}
    }});
    let r = only(find(template));
    assert_eq!(
        r.path,
        "Resources.Task.Properties.ContainerDefinitions[1].LogConfiguration.SecretOptions[0].ValueFrom"
    );
    assert_eq!(
        (r.form, r.disposition),
        (Form::EcsValueFrom, Disposition::Restart)
    );
    assert_eq!(r.targets, ["Service"]);
}

#[test]
fn ecs_value_froms_pinned_unknown_or_run_by_no_restartable_service_are_reported() {
    let r = only(find(ecs(
        json!(format!("{DB_ARN}:password::v-old")),
        json!({}),
    )));
    assert_eq!(r.disposition, Disposition::Pinned);
    assert!(r.targets.is_empty());
    let r = only(find(ecs(
        json!(format!("{DB_ARN}:password:AWSPREVIOUS:")),
        json!({}),
    )));
    assert_eq!(r.disposition, Disposition::Pinned);

    let r = only(find(ecs(
        json!({"Fn::GetAtt": ["Db", "MasterUserSecret.SecretArn"]}),
        json!({"Db": {"Type": "AWS::RDS::DBInstance"}}),
    )));
    assert_eq!(r.disposition, Disposition::Possible);
    assert!(r.detail.unwrap().contains("Db.MasterUserSecret.SecretArn"));

    let mut lonely = ecs(json!(DB_ARN), json!({}));
    lonely["Resources"]
        .as_object_mut()
        .unwrap()
        .remove("Service");
    let r = only(find(lonely));
    assert_eq!(
        (r.disposition, r.resource.as_deref()),
        (Disposition::Reported, Some("Task"))
    );
    assert!(r.detail.unwrap().contains("no service of this stack"));

    let blue = ecs(
        json!(DB_ARN),
        json!({"Service": {"Type": "AWS::ECS::Service", "Properties": {
        "TaskDefinition": {"Ref": "Task"}, "DeploymentController": {"Type": "CODE_DEPLOY"}}}}),
    );
    let r = only(find(blue));
    assert_eq!(r.disposition, Disposition::Reported);
    assert!(
        r.detail
            .unwrap()
            .contains("Service deploys through its CODE_DEPLOY controller")
    );
}

#[test]
fn a_dynamic_reference_inside_a_value_from_follows_the_usual_rules() {
    let r = only(find(ecs(json!("{{resolve:secretsmanager:db}}"), json!({}))));
    assert_eq!(
        (r.form, r.disposition),
        (Form::DynamicReference, Disposition::Refresh)
    );
    assert_eq!(r.targets, ["Task"]);
}

fn rds(kind: &str) -> Value {
    json!({"Resources": {"Db": {"Type": kind, "Properties": {
        "MasterUsername": "{{resolve:secretsmanager:db:SecretString:username}}",
        "MasterUserPassword": "{{resolve:secretsmanager:db:SecretString:password}}"
    }}}})
}

#[test]
fn a_reference_in_a_create_only_property_is_reported_with_its_resource() {
    let refs = find(rds("AWS::RDS::DBInstance"));
    let summary: Vec<(&str, Disposition)> = refs
        .iter()
        .map(|r| (r.path.as_str(), r.disposition))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "Resources.Db.Properties.MasterUsername",
                Disposition::CreateOnly
            ),
            (
                "Resources.Db.Properties.MasterUserPassword",
                Disposition::Refresh
            ),
        ]
    );
    assert_eq!(refs[0].resource.as_deref(), Some("Db"));
    assert!(refs[0].targets.is_empty());
    assert_eq!(
        refs[0].detail.as_deref(),
        Some(
            "MasterUsername is a create-only property of AWS::RDS::DBInstance: changing it would replace the resource; reported, not refreshed"
        )
    );

    let refs = find(rds("AWS::RDS::DBCluster"));
    assert_eq!(refs[0].disposition, Disposition::CreateOnly);
    assert!(
        refs[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("conditionally create-only")
    );

    // Also through a parameter, and below the property.
    let template = json!({
        "Parameters": {"Name": {"Type": "String", "Default": "db"}},
        "Resources": {"Rule": {"Type": "AWS::SecretsManager::RotationSchedule", "Properties": {
            "SecretId": {"Ref": "Name"}}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": {"Fn::Sub": "x-{{resolve:secretsmanager:db:SecretString:suffix}}"}}}}
    });
    let refs = find(template);
    assert!(
        refs.iter()
            .all(|r| r.disposition == Disposition::CreateOnly),
        "{refs:#?}"
    );
}

#[test]
fn a_dynamic_reference_in_a_task_definition_is_refreshed_by_a_new_revision() {
    let template = json!({"Resources": {
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [{
            "Environment": [{"Name": "P", "Value": "{{resolve:secretsmanager:db:SecretString:password}}"}]}]}}
    }});
    let r = only(find(template));
    assert_eq!(r.disposition, Disposition::Refresh);
    assert_eq!(r.targets, ["Task"]);
    assert!(r.detail.unwrap().contains("never pinned"));
}
