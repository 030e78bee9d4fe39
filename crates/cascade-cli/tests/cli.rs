//! The `cascade` binary as people run it: offline commands, and `cascade plan` against a
//! local AWS stack started by the test harness.

use std::path::PathBuf;
use std::process::{Command, Output};

use cascade_tests::LocalStack;
use serde_json::Value;

const DB_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";

fn cascade(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cascade"));
    command
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("cascade runs")
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cascade-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const APP: &str = r#"
AWSTemplateFormatVersion: 2010-09-09
Parameters:
  SecretName: {Type: String, Default: prod/db}
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: !Sub '{{resolve:secretsmanager:${SecretName}:SecretString:password}}'
  Param:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub '/${AWS::StackName}/topic'
      Type: String
      Value: !GetAtt Topic.TopicName
Outputs:
  TopicArn:
    Value: !Ref Topic
"#;

#[test]
fn template_to_json_prints_long_form_json() {
    let file = temp_file("app.yaml", APP);
    let out = cascade(&["template", "to-json", file.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["AWSTemplateFormatVersion"], "2010-09-09");
    assert_eq!(
        json["Resources"]["Param"]["Properties"]["Value"]["Fn::GetAtt"],
        serde_json::json!(["Topic", "TopicName"])
    );
}

#[test]
fn template_to_json_names_file_and_line_of_malformed_input() {
    let file = temp_file("broken.yaml", "Resources:\n  A:\n    Type: [unclosed\n");
    let out = cascade(&["template", "to-json", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.yaml") && stderr.contains("line "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn offline_plan_of_a_template_file() {
    let file = temp_file("app.yaml", APP);
    let out = cascade(
        &[
            "plan",
            "--template",
            file.to_str().unwrap(),
            "--secret-arn",
            DB_ARN,
            "--format",
            "json",
        ],
        &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_string())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stack = &plan["stacks"][0];
    assert_eq!(stack["stack_name"], "app");
    assert_eq!(stack["strategy"], "pin");
    assert_eq!(stack["closure"], serde_json::json!([]));
    assert_eq!(stack["actions"][0]["logical_id"], "Topic");
    assert_eq!(stack["actions"][0]["action"], "pin");
    assert_eq!(
        stack["references"][0]["path"],
        "Resources.Topic.Properties.DisplayName"
    );
    assert_eq!(stack["references"][0]["form"], "dynamic-reference-sub");

    // Recreate when asked for: the topic and what depends on it.
    let out = cascade(
        &[
            "plan",
            "--template",
            file.to_str().unwrap(),
            "--secret-arn",
            DB_ARN,
            "--strategy",
            "recreate",
            "--format",
            "json",
        ],
        &[],
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stack = &plan["stacks"][0];
    assert_eq!(stack["strategy"], "recreate");
    assert_eq!(stack["closure"], serde_json::json!(["Param", "Topic"]));
    assert_eq!(stack["outputs"], serde_json::json!(["TopicArn"]));

    // A parameter given on the command line replaces the Default.
    let out = cascade(
        &[
            "plan",
            "--template",
            file.to_str().unwrap(),
            "--secret-arn",
            DB_ARN,
            "--parameter",
            "SecretName=prod/other",
            "--format",
            "json",
        ],
        &[],
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["stacks"], serde_json::json!([]));

    let out = cascade(
        &[
            "plan",
            "--template",
            file.to_str().unwrap(),
            "--secret-arn",
            "prod/db",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a Secrets Manager secret ARN"));
}

#[tokio::test]
async fn plan_against_the_local_stack() {
    let local = LocalStack::start().expect("local stack");
    let config = local.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    sm.create_secret()
        .name("prod/db")
        .secret_string("{\"password\":\"x\"}")
        .send()
        .await
        .unwrap();
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    cfn.create_stack()
        .stack_name("app")
        .template_body(APP)
        .send()
        .await
        .unwrap();
    cfn.create_stack()
        .stack_name("unrelated")
        .template_body("Resources:\n  T:\n    Type: AWS::SNS::Topic\n")
        .send()
        .await
        .unwrap();

    let env = local.env();
    let out = cascade(&["plan", "--secret", "prod/db", "--format", "json"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["secrets"][0]["name"], "prod/db");
    assert!(plan["secrets"][0]["version_id"].is_string());
    let names: Vec<&str> = plan["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stack_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app"]);

    let out = cascade(&["plan", "--secret", "prod/db"], &env);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("1 stack(s) to refresh") && table.contains("Topic: pin"),
        "{table}"
    );

    let out = cascade(&["plan", "--secret", "prod/missing"], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secret `prod/missing` was not found"),
        "{stderr}"
    );
}
