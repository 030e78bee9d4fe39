//! Planning benchmarks: one template with 600 resources (dependants chained on the
//! resources that resolve the secret), read from YAML and planned in-process.
//!
//! Run: `cargo bench -p cascade-core --bench planning`.

use std::fmt::Write;
use std::hint::black_box;

use cascade_core::plan::{PlanOptions, plan_account};
use cascade_core::secret::Secret;
use cascade_core::stack::StackInfo;
use cascade_core::template::read_template;
use criterion::{Criterion, criterion_group, criterion_main};

const RESOURCES: usize = 600;

/// A YAML template of `RESOURCES` resources: every tenth function resolves the secret
/// (plain, !Sub or !Join), each function has an alias and a permission depending on it,
/// and every function has an output.
fn big_template() -> String {
    let mut y = String::from(
        "AWSTemplateFormatVersion: '2010-09-09'\nParameters:\n  SecretName:\n    Type: String\n    Default: prod/db\nResources:\n",
    );
    let functions = RESOURCES / 3;
    for i in 0..functions {
        let env = match i % 30 {
            0 => "'{{resolve:secretsmanager:prod/db:SecretString:password}}'".to_string(),
            10 => {
                "!Sub '{{resolve:secretsmanager:${SecretName}:SecretString:password}}'".to_string()
            }
            20 => {
                "!Join ['', ['{{resolve:secretsmanager:', !Ref SecretName, ':SecretString:user}}']]"
                    .to_string()
            }
            _ => format!("plain-{i}"),
        };
        write!(
            y,
            "  Fn{i}:\n    Type: AWS::Lambda::Function\n    Properties:\n      Role: !GetAtt Role.Arn\n      Environment:\n        Variables:\n          VALUE: {env}\n          NAME: !Sub '${{AWS::StackName}}-{i}'\n  Alias{i}:\n    Type: AWS::Lambda::Alias\n    Properties:\n      FunctionName: !Ref Fn{i}\n  Perm{i}:\n    Type: AWS::Lambda::Permission\n    DependsOn: Alias{i}\n    Properties:\n      FunctionName: !GetAtt [Fn{i}, Arn]\n"
        )
        .unwrap();
    }
    y.push_str("  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      Path: /\nOutputs:\n");
    for i in 0..functions {
        writeln!(y, "  Fn{i}Arn:\n    Value: !GetAtt Fn{i}.Arn").unwrap();
    }
    y
}

fn planning(c: &mut Criterion) {
    let yaml = big_template();
    let template = read_template(&yaml).expect("the generated template reads");
    let resources = template["Resources"].as_object().unwrap().len();
    assert!(resources >= 500, "{resources} resources");
    let secret =
        Secret::from_arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf")
            .unwrap();
    let stack = StackInfo::from_template(
        "big",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/big/1",
        template,
    );
    let options = PlanOptions::default();
    let plan = plan_account(
        std::slice::from_ref(&stack),
        std::slice::from_ref(&secret),
        &options,
    );
    assert_eq!(plan.stacks.len(), 1);
    eprintln!(
        "template: {} bytes of YAML, {resources} resources; plan: {} resources to refresh, closure of {}",
        yaml.len(),
        plan.stacks[0].resources.len(),
        plan.stacks[0].closure.len()
    );

    c.bench_function("read_template/601_resources_yaml", |b| {
        b.iter(|| read_template(black_box(&yaml)).unwrap())
    });
    c.bench_function("plan/601_resources", |b| {
        b.iter(|| {
            plan_account(
                black_box(std::slice::from_ref(&stack)),
                std::slice::from_ref(&secret),
                &options,
            )
        })
    });
}

criterion_group!(benches, planning);
criterion_main!(benches);
