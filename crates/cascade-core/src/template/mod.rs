//! Reads CloudFormation templates, JSON or YAML, into one long-form JSON value.
//!
//! YAML short forms become their long forms (`!Ref x` → `{"Ref": "x"}`, `!Sub s` →
//! `{"Fn::Sub": "s"}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`), and scalars mean what
//! CloudFormation and cfn-flip make of them (YAML 1.1: `Yes` is `true`, `2010-09-09` is a
//! string). Key order is kept. The reader is as lenient as CloudFormation and gives what
//! cfn-flip gives (flow collections with under-indented lines, duplicate keys last-wins,
//! byte order marks, CRLF); `infra/tools/real-templates` checks it on real public
//! templates. Malformed input is an error with a 1-based line and column, never a panic.
//! The details and the reasons for each choice are in `yaml.rs` (tags, anchors, duplicate
//! keys, leniency) and `scalar.rs` (what each plain scalar means).

mod json;
mod scalar;
mod yaml;

use serde_json::Value;

/// The deepest nesting of sequences and mappings a template may have, the top-level
/// mapping being level 1: serde_json's own limit for JSON, and so the YAML reader's too,
/// so that every template read prints as JSON and reads back (saved originals, refresh
/// templates). Deeper is the error "sequences and mappings nest deeper than 127 levels".
pub const MAX_NESTING: usize = 127;

/// Why a template could not be read, and where (1-based line and column).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("line {line}, column {column}: {message}")]
pub struct TemplateError {
    /// Line of the problem, from 1.
    pub line: usize,
    /// Column of the problem, in characters, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads a template (JSON or YAML, detected from the text) into its long-form JSON value.
///
/// Text whose first non-blank character is `{` is read as JSON; should that fail, it is
/// tried as YAML (a flow mapping), as cfn-flip does, and the JSON error is reported if both
/// fail. Anything else is YAML. The top level must be a mapping.
///
/// # Errors
/// A [`TemplateError`] with the line, the column and the reason: malformed JSON or YAML,
/// a bad short-form tag, a character YAML does not allow, several YAML documents, a
/// non-mapping top level.
pub fn read_template(text: &str) -> Result<Value, TemplateError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        json::load(text).or_else(|json_error| yaml::load(text).map_err(|_| json_error))
    } else {
        yaml::load(text)
    }
}

/// Pretty JSON text of a template value (2-space indent, trailing newline).
#[must_use]
pub fn to_json_pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value)
        .expect("a serde_json::Value with string keys always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> Value {
        read_template(text).unwrap_or_else(|e| panic!("{e}\n--- input:\n{text}"))
    }

    /// The value of key `v` in a one-line YAML mapping `v: ...`.
    fn v(yaml: &str) -> Value {
        read(&format!("v: {yaml}\n"))["v"].clone()
    }

    fn fails(text: &str) -> TemplateError {
        match read_template(text) {
            Ok(value) => panic!("expected an error, got {value}\n--- input:\n{text}"),
            Err(e) => e,
        }
    }

    const SAMPLE: &str = r#"AWSTemplateFormatVersion: 2010-09-09
Description: >-
  A sample: a database whose password comes from Secrets Manager.
Parameters:
  Env:
    Type: String
    AllowedValues: [dev, prod]
    Default: dev
  UseVpc:
    Type: String
    Default: Yes
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
Mappings:
  Sizes:
    dev: {Instance: db.t3.micro, Storage: 20}
    prod: {Instance: db.r6g.large, Storage: 100}
Resources:
  Secret:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: !Sub "${AWS::StackName}-db"
      GenerateSecretString:
        SecretStringTemplate: '{"username": "admin"}'
        GenerateStringKey: password
        PasswordLength: 32
        ExcludeCharacters: "\"@/\\"
  Database:
    Type: AWS::RDS::DBInstance
    DeletionPolicy: Snapshot
    Properties:
      DBInstanceClass: !FindInMap [Sizes, !Ref Env, Instance]
      AllocatedStorage: !FindInMap
        - Sizes
        - !Ref Env
        - Storage
      MasterUsername: !Sub '{{resolve:secretsmanager:${Secret}:SecretString:username}}'
      MasterUserPassword: !Join
        - ''
        - - '{{resolve:secretsmanager:'
          - !Ref Secret
          - ':SecretString:password}}'
      MultiAZ: !If [IsProd, true, false]
      VPCSecurityGroups: !If
        - IsProd
        - [!GetAtt Sg.GroupId]
        - !Ref "AWS::NoValue"
      Tags:
        - Key: Port
          Value: 5432
        - {Key: Ratio, Value: 0.5}
  Sg:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: db
      SecurityGroupIngress:
        - IpProtocol: tcp
          FromPort: 5432
          ToPort: 5432
          CidrIp: !Select [0, !Cidr [10.0.0.0/16, 4, 8]]
      UserData: !Base64
        Fn::Sub: |
          #!/bin/bash
          echo ${Env}
Outputs:
  Endpoint:
    Value: !GetAtt Database.Endpoint.Address
    Export:
      Name: !Sub ${AWS::StackName}-endpoint
"#;

    #[test]
    fn reads_a_whole_template_into_long_form() {
        let t = read(SAMPLE);
        assert_eq!(t["AWSTemplateFormatVersion"], json!("2010-09-09"));
        assert_eq!(
            t["Description"],
            json!("A sample: a database whose password comes from Secrets Manager.")
        );
        assert_eq!(t["Parameters"]["UseVpc"]["Default"], json!(true));
        assert_eq!(
            t["Conditions"]["IsProd"],
            json!({"Fn::Equals": [{"Ref": "Env"}, "prod"]})
        );
        assert_eq!(
            t["Conditions"]["NotProd"],
            json!({"Fn::Not": [{"Condition": "IsProd"}]})
        );
        assert_eq!(t["Mappings"]["Sizes"]["prod"]["Storage"], json!(100));
        let db = &t["Resources"]["Database"]["Properties"];
        assert_eq!(
            db["DBInstanceClass"],
            json!({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Instance"]})
        );
        assert_eq!(
            db["AllocatedStorage"],
            json!({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Storage"]})
        );
        assert_eq!(
            db["MasterUserPassword"],
            json!({"Fn::Join": ["", [
                "{{resolve:secretsmanager:", {"Ref": "Secret"}, ":SecretString:password}}"
            ]]})
        );
        assert_eq!(db["MultiAZ"], json!({"Fn::If": ["IsProd", true, false]}));
        assert_eq!(
            db["VPCSecurityGroups"],
            json!({"Fn::If": [
                "IsProd",
                [{"Fn::GetAtt": ["Sg", "GroupId"]}],
                {"Ref": "AWS::NoValue"}
            ]})
        );
        assert_eq!(db["Tags"][0]["Value"], json!(5432));
        assert_eq!(db["Tags"][1]["Value"], json!(0.5));
        let sg = &t["Resources"]["Sg"]["Properties"];
        assert_eq!(
            sg["SecurityGroupIngress"][0]["CidrIp"],
            json!({"Fn::Select": [0, {"Fn::Cidr": ["10.0.0.0/16", 4, 8]}]})
        );
        assert_eq!(
            sg["UserData"],
            json!({"Fn::Base64": {"Fn::Sub": "#!/bin/bash\necho ${Env}\n"}})
        );
        assert_eq!(
            t["Resources"]["Secret"]["Properties"]["GenerateSecretString"]["ExcludeCharacters"],
            json!("\"@/\\")
        );
        assert_eq!(
            t["Outputs"]["Endpoint"]["Value"],
            json!({"Fn::GetAtt": ["Database", "Endpoint.Address"]})
        );
    }

    #[test]
    fn keeps_key_order() {
        let t = read("b: 1\na: 2\nc: {z: 1, y: 2}\n");
        let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["b", "a", "c"]);
        let inner: Vec<&String> = t["c"].as_object().unwrap().keys().collect();
        assert_eq!(inner, ["z", "y"]);
    }

    #[test]
    fn ref_and_condition_keep_their_names() {
        assert_eq!(v("!Ref Bucket"), json!({"Ref": "Bucket"}));
        assert_eq!(v("!Ref 'AWS::Region'"), json!({"Ref": "AWS::Region"}));
        assert_eq!(v("!Condition IsProd"), json!({"Condition": "IsProd"}));
    }

    #[test]
    fn tagged_scalars_keep_their_text() {
        // As cfn-flip (construct_scalar): no implicit typing under a function tag.
        assert_eq!(v("!Ref 5"), json!({"Ref": "5"}));
        assert_eq!(v("!Base64 true"), json!({"Fn::Base64": "true"}));
        assert_eq!(v("!GetAZs ''"), json!({"Fn::GetAZs": ""}));
        assert_eq!(v("!Ref"), json!({"Ref": ""}));
    }

    #[test]
    fn every_other_tag_becomes_fn_name() {
        for name in [
            "Sub",
            "Join",
            "Select",
            "Split",
            "If",
            "Equals",
            "And",
            "Or",
            "Not",
            "FindInMap",
            "Base64",
            "Cidr",
            "GetAZs",
            "ImportValue",
            "Transform",
            "ToJsonString",
            "Length",
            "ForEach",
            "ValueOf",
            "Rain::Embed",
        ] {
            assert_eq!(
                v(&format!("!{name} x")),
                json!({format!("Fn::{name}"): "x"})
            );
        }
    }

    #[test]
    fn sub_in_string_and_list_forms() {
        assert_eq!(
            v("!Sub 'arn:${AWS::Partition}:s3:::${B}'"),
            json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${B}"})
        );
        assert_eq!(
            read("v: !Sub\n  - ${A}-${B}\n  - A: !Ref X\n    B: !GetAtt Y.Arn\n")["v"],
            json!({"Fn::Sub": ["${A}-${B}", {"A": {"Ref": "X"}, "B": {"Fn::GetAtt": ["Y", "Arn"]}}]})
        );
    }

    #[test]
    fn function_tags_on_mappings_and_nested_deeply() {
        assert_eq!(
            read("v: !Transform\n  Name: AWS::Include\n  Parameters: {Location: !Ref L}\n")["v"],
            json!({"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": {"Ref": "L"}}}})
        );
        assert_eq!(
            v("!If [c, !Ref A, !Ref \"AWS::NoValue\"]"),
            json!({"Fn::If": ["c", {"Ref": "A"}, {"Ref": "AWS::NoValue"}]})
        );
        assert_eq!(
            v("!And [!Not [!Equals [!Ref A, '']], !Or [!Condition B, !Condition C]]"),
            json!({"Fn::And": [
                {"Fn::Not": [{"Fn::Equals": [{"Ref": "A"}, ""]}]},
                {"Fn::Or": [{"Condition": "B"}, {"Condition": "C"}]}
            ]})
        );
        assert_eq!(
            v("!Select [1, !Split [',', !ImportValue Shared-Subnets]]"),
            json!({"Fn::Select": [1, {"Fn::Split": [",", {"Fn::ImportValue": "Shared-Subnets"}]}]})
        );
        assert_eq!(
            v("!Base64 {Fn::Sub: 'x ${A}'}"),
            json!({"Fn::Base64": {"Fn::Sub": "x ${A}"}})
        );
        assert_eq!(
            read(
                "v: !ForEach\n  - Topics\n  - [a, b]\n  - 'Topic${TopicName}':\n      Type: AWS::SNS::Topic\n"
            )["v"],
            json!({"Fn::ForEach": ["Topics", ["a", "b"], {"Topic${TopicName}": {"Type": "AWS::SNS::Topic"}}]})
        );
        assert_eq!(v("!Length [a, b]"), json!({"Fn::Length": ["a", "b"]}));
        assert_eq!(
            v("!ToJsonString {a: !Ref B}"),
            json!({"Fn::ToJsonString": {"a": {"Ref": "B"}}})
        );
    }

    #[test]
    fn get_att_splits_at_the_first_dot() {
        assert_eq!(v("!GetAtt A.B"), json!({"Fn::GetAtt": ["A", "B"]}));
        assert_eq!(v("!GetAtt A.B.C"), json!({"Fn::GetAtt": ["A", "B.C"]}));
        assert_eq!(
            v("!GetAtt 'Db.Endpoint.Port'"),
            json!({"Fn::GetAtt": ["Db", "Endpoint.Port"]})
        );
    }

    #[test]
    fn get_att_list_form() {
        assert_eq!(v("!GetAtt [A, B]"), json!({"Fn::GetAtt": ["A", "B"]}));
        assert_eq!(v("!GetAtt [A, B.C]"), json!({"Fn::GetAtt": ["A", "B.C"]}));
        // Plain scalars keep their text, as cfn-flip does: no implicit typing.
        assert_eq!(v("!GetAtt [A, 1]"), json!({"Fn::GetAtt": ["A", "1"]}));
        // Tagged scalar items keep only their text, as cfn-flip does (the corpus's
        // Fn::ForEach sample needs it); long-form functions are kept.
        assert_eq!(
            v("!GetAtt [A, !Ref Attr]"),
            json!({"Fn::GetAtt": ["A", "Attr"]})
        );
        assert_eq!(
            v("!GetAtt [!Sub 'B${Id}', !Ref Attr]"),
            json!({"Fn::GetAtt": ["B${Id}", "Attr"]})
        );
        assert_eq!(
            v("!GetAtt [{Fn::Sub: 'B${Id}'}, Arn]"),
            json!({"Fn::GetAtt": [{"Fn::Sub": "B${Id}"}, "Arn"]})
        );
        assert_eq!(
            read("v: !GetAtt\n  - Res\n  - Arn\n")["v"],
            json!({"Fn::GetAtt": ["Res", "Arn"]})
        );
    }

    #[test]
    fn bad_get_att_is_an_error_with_its_position() {
        for (yaml, why) in [
            ("v: !GetAtt ''\n", "Resource.Attribute"),
            ("v: !GetAtt\n", "Resource.Attribute"),
            ("v: !GetAtt NoDot\n", "Resource.Attribute"),
            ("v: !GetAtt A.\n", "Resource.Attribute"),
            ("v: !GetAtt .B\n", "Resource.Attribute"),
            ("v: !GetAtt {A: B}\n", "not a mapping"),
            ("v: !GetAtt [A]\n", "list of two"),
            ("v: !GetAtt [A, B, C]\n", "list of two"),
            ("v: !GetAtt [[A], B]\n", "list of two"),
            ("v: !GetAtt ['', B]\n", "list of two"),
        ] {
            let e = fails(yaml);
            assert_eq!((e.line, e.column), (1, 4), "{yaml:?}: {e}");
            assert!(e.message.contains(why), "{yaml:?}: {e}");
        }
    }

    #[test]
    fn scalars_resolve_as_cloudformation_yaml_1_1() {
        assert_eq!(v("2010-09-09"), json!("2010-09-09"));
        assert_eq!(v("Yes"), json!(true));
        assert_eq!(v("off"), json!(false));
        assert_eq!(v("~"), Value::Null);
        assert_eq!(read("v:\n")["v"], Value::Null);
        assert_eq!(v("80"), json!(80));
        assert_eq!(v("-1"), json!(-1));
        assert_eq!(v("0777"), json!(511));
        assert_eq!(v("0x1F"), json!(31));
        assert_eq!(v("1_000"), json!(1000));
        assert_eq!(v("1.0"), json!(1.0));
        assert_eq!(v(".5"), json!(0.5));
        assert_eq!(v("1e3"), json!("1e3"));
        assert_eq!(v("10.0.0.0/16"), json!("10.0.0.0/16"));
        assert_eq!(v("ami-0abc"), json!("ami-0abc"));
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        assert_eq!(v("'80'"), json!("80"));
        assert_eq!(v("\"true\""), json!("true"));
        assert_eq!(v("'2010-09-09'"), json!("2010-09-09"));
        assert_eq!(v("''"), json!(""));
        assert_eq!(read("v: |\n  123\n")["v"], json!("123\n"));
        assert_eq!(read("v: >-\n  yes\n")["v"], json!("yes"));
    }

    #[test]
    fn block_scalars_at_the_end_of_a_text_without_a_final_line_break() {
        // As PyYAML (and the YAML spec): no line break after the last line, none in the value.
        assert_eq!(read("v: |\n  x")["v"], json!("x"));
        assert_eq!(read("v: |+\n  x")["v"], json!("x"));
        assert_eq!(read("v: |-\n  x")["v"], json!("x"));
        assert_eq!(read("v: >\n  x\n  y")["v"], json!("x y"));
        assert_eq!(
            read("v:\n  - !Sub |\n    x")["v"],
            json!([{"Fn::Sub": "x"}])
        );
        assert_eq!(read("v: |\r\n  x")["v"], json!("x"));
        // A last line of blanks is no content.
        assert_eq!(read("v: |\n  x\n  ")["v"], json!("x\n"));
        assert_eq!(read("v: |+\n  x\n\n  ")["v"], json!("x\n\n"));
        // With the line break, it stays.
        assert_eq!(read("v: |\n  x\n")["v"], json!("x\n"));
        assert_eq!(read("v: |\n  x\nw: 1")["v"], json!("x\n"));
    }

    #[test]
    fn quoted_scalars_continued_without_indentation() {
        // YAML 1.1 readers (PyYAML, CloudFormation) accept these; YAML 1.2 does not.
        let t = read("Description: 'A long\ndescription'\nb: \"x\n\\\"y\\\"\"\n");
        assert_eq!(t["Description"], json!("A long description"));
        assert_eq!(t["b"], json!("x \"y\""));
        assert_eq!(
            read("a:\n  b: [\"x\ny\", 'it''s\n\n z']\n")["a"]["b"],
            json!(["x y", "it's\nz"])
        );
        let e = fails("a: 'x\ny");
        assert_eq!((e.line, e.column), (1, 4), "{e}");
        assert!(e.message.contains("never closed"), "{e}");
    }

    #[test]
    fn standard_tags_keep_their_yaml_meaning() {
        assert_eq!(v("!!str 5"), json!("5"));
        assert_eq!(v("!!str yes"), json!("yes"));
        assert_eq!(v("!!int '7'"), json!(7));
        assert_eq!(v("!!int 0x10"), json!(16));
        assert_eq!(v("!!float 3"), json!(3.0));
        assert_eq!(v("!!bool 'on'"), json!(true));
        assert_eq!(v("!!null ''"), Value::Null);
        assert_eq!(v("!!timestamp 2020-01-01"), json!("2020-01-01"));
        assert_eq!(v("!<tag:yaml.org,2002:str> 9"), json!("9"));
        assert_eq!(v("!!seq [1]"), json!([1]));
        assert_eq!(v("!!map {a: 1}"), json!({"a": 1}));
        // The non-specific tag `!` makes a string.
        assert_eq!(v("! 123"), json!("123"));
        // A verbatim local tag is the same as the short one.
        assert_eq!(v("!<!Ref> X"), json!({"Ref": "X"}));
    }

    #[test]
    fn bad_standard_tags_are_errors() {
        for (yaml, why) in [
            ("v: !!int yes\n", "not a valid !!int"),
            ("v: !!float abc\n", "not a valid !!float"),
            ("v: !!bool maybe\n", "not a valid !!bool"),
            ("v: !!binary aGk=\n", "unsupported tag !!binary"),
            ("v: !!str [a]\n", "cannot be used on a sequence"),
            ("v: !!seq {a: 1}\n", "cannot be used on a mapping"),
            ("v: !!map x\n", "cannot be used on a scalar"),
            ("v: !!set {a: }\n", "cannot be used on a mapping"),
        ] {
            let e = fails(yaml);
            assert_eq!((e.line, e.column), (1, 4), "{yaml:?}: {e}");
            assert!(e.message.contains(why), "{yaml:?}: {e}");
        }
        let e = fails("%TAG !e! tag:example.com,2000:\n---\nv: !e!thing x\n");
        assert_eq!((e.line, e.column), (3, 4), "{e}");
        assert!(
            e.message
                .contains("unsupported tag <tag:example.com,2000:thing>"),
            "{e}"
        );
    }

    #[test]
    fn mapping_keys_are_written_as_json_would() {
        let t = read("1: a\n2.5: b\ntrue: c\n~: d\n'x': e\n");
        let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["1", "2.5", "true", "null", "x"]);
        let e = fails("a: 1\n[b]: 2\n");
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        assert!(e.message.contains("must be a scalar"), "{e}");
        let e = fails("a: 1\n!Ref b: 2\n");
        assert_eq!((e.line, e.column), (2, 1), "{e}");
    }

    #[test]
    fn anchors_and_aliases() {
        let t = read("a: &tags\n  - {Key: k, Value: !Ref V}\nb: *tags\nc: &n 5\nd: *n\n");
        assert_eq!(t["b"], t["a"]);
        assert_eq!(t["b"], json!([{"Key": "k", "Value": {"Ref": "V"}}]));
        assert_eq!(t["d"], json!(5));
        // An anchor on a tagged node names the function.
        assert_eq!(read("a: &r !Ref X\nb: *r\n")["b"], json!({"Ref": "X"}));
    }

    #[test]
    fn merge_keys() {
        let t = read(
            "base: &base {Type: String, Default: a}\n\
             other: &other {MinLength: 1, Default: z}\n\
             p:\n  <<: [*base, *other]\n  Default: b\n\
             q:\n  <<: *base\n",
        );
        assert_eq!(
            t["p"],
            json!({"Default": "b", "Type": "String", "MinLength": 1})
        );
        assert_eq!(t["q"], json!({"Type": "String", "Default": "a"}));
        // A quoted "<<" is an ordinary key.
        assert_eq!(read("'<<': x\n")["<<"], json!("x"));
        let e = fails("a: &a [1]\nb:\n  <<: *a\n");
        assert_eq!((e.line, e.column), (3, 7), "{e}");
        assert!(e.message.contains("merge key"), "{e}");
    }

    #[test]
    fn alias_bombs_and_recursive_aliases_are_errors() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = fails(&bomb);
        assert!(e.message.contains("aliases expand to more than"), "{e}");
        let e = fails("a: &a [1, *a]\n");
        assert_eq!((e.line, e.column), (1, 11), "{e}");
        assert!(e.message.contains("recursive"), "{e}");
    }

    #[test]
    fn duplicate_keys_keep_their_first_place_and_last_value() {
        // As CloudFormation deploys them and cfn-flip reads them.
        let t = read("Resources:\n  A: {Type: X}\n  B: {Type: Y}\n  A: {Type: Z}\n");
        let keys: Vec<&String> = t["Resources"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["A", "B"]);
        assert_eq!(t["Resources"]["A"], json!({"Type": "Z"}));
        assert_eq!(
            read("P:\n  Key: a\n  Value: 1\n  Key: b\n  Value: 2\n")["P"],
            json!({"Key": "b", "Value": 2})
        );
        assert_eq!(read("a: {x: 1, x: 2}\n")["a"], json!({"x": 2}));
        assert_eq!(
            read("{\"a\": 1,\n \"b\": 0, \"a\": 2}"),
            json!({"a": 2, "b": 0})
        );
    }

    #[test]
    fn top_level_must_be_one_mapping() {
        for (text, line) in [
            ("- a\n- b\n", 1),
            ("just text\n", 1),
            ("---\n", 2),
            ("", 1),
            ("# only\n", 2),
            ("--- !Ref\na: b\n", 1),
        ] {
            let e = fails(text);
            assert!(
                e.message.contains("a template must be a mapping"),
                "{text:?}: {e}"
            );
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
        let e = fails("a: 1\n---\nb: 2\n");
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        assert!(e.message.contains("single YAML document"), "{e}");
        // A document end marker alone is fine.
        assert_eq!(read("---\na: 1\n...\n"), json!({"a": 1}));
    }

    #[test]
    fn malformed_yaml_errors_have_positions() {
        let cases = [
            ("a: 'unterminated\nb: 2\n", 1, 4, "quoted scalar"),
            ("a: \"unterminated\n", 1, 4, "quoted scalar"),
            ("a:\n\tb: 1\n", 2, 2, "tabs"),
            ("a: [1, 2\nb: 3\n", 2, 2, "':'"),
            ("a: b: c\n", 1, 5, "mapping values are not allowed"),
            ("a: 1\n  b: 2\n", 2, 4, "mapping values are not allowed"),
            ("a: *nowhere\n", 1, 4, "unknown anchor"),
            ("a: @x\n", 1, 4, "unexpected character"),
            ("a: \"\\q\"\n", 1, 4, "unknown escape"),
        ];
        for (text, line, column, why) in cases {
            let e = fails(text);
            assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
            assert!(e.message.starts_with("invalid YAML: "), "{text:?}: {e}");
            assert!(e.message.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn two_tags_on_one_node_get_a_hint() {
        let e = fails("UserData: !Base64 !Sub 'x'\n");
        assert_eq!((e.line, e.column), (1, 19), "{e}");
        assert!(e.message.contains("only one tag"), "{e}");
        let e = fails("UserData: !Base64\n  !Sub |\n    x\n");
        assert_eq!((e.line, e.column), (2, 3), "{e}");
        assert!(e.message.contains("only one tag"), "{e}");
        // A malformed tag is not two tags.
        let e = fails("a: !Re[f x\n");
        assert!(!e.message.contains("only one tag"), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(read_template(&deep).is_err());
        let deep_block: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let e = fails(&deep_block);
        assert!(
            e.message
                .contains(&format!("nest deeper than {MAX_NESTING}")),
            "{e}"
        );
        let ok = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert!(read_template(&ok).is_ok());
        // Aliases cannot stack depth past the limit either.
        let mut chain = format!("a0: &a0 {}{}\n", "[".repeat(100), "]".repeat(100));
        for i in 1..5 {
            chain.push_str(&format!(
                "a{i}: &a{i} {}*a{}{}\n",
                "[".repeat(100),
                i - 1,
                "]".repeat(100)
            ));
        }
        assert!(fails(&chain).message.contains("nest deeper"));
        let json = format!("{{\"a\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(read_template(&json).is_err());
    }

    /// Found by the fuzz target `template` (crates/cascade-core/fuzz): YAML allowed one
    /// level more than the JSON reader, so the deepest template read could not be read back
    /// from the JSON the project writes of it (saved originals, refresh templates).
    #[test]
    fn the_deepest_template_read_reads_back_from_its_json() {
        let nested = |levels: usize| format!("a: {}{}\n", "[".repeat(levels), "]".repeat(levels));
        // The top-level mapping is one level: `levels` sequences inside it make levels + 1.
        let deepest = read(&nested(MAX_NESTING - 1));
        let printed = to_json_pretty(&deepest);
        assert_eq!(read_template(&printed), Ok(deepest), "{printed}");
        let e = fails(&nested(MAX_NESTING));
        assert!(
            e.message
                .contains(&format!("nest deeper than {MAX_NESTING} levels")),
            "{e}"
        );
        // JSON stops at the same depth, with the same error.
        let json =
            |levels: usize| format!("{{\"a\": {}{}}}", "[".repeat(levels), "]".repeat(levels));
        assert!(read_template(&json(MAX_NESTING - 1)).is_ok());
        let e = read_template(&json(MAX_NESTING)).unwrap_err();
        assert!(
            e.message
                .contains(&format!("nest deeper than {MAX_NESTING} levels")),
            "{e}"
        );
        // Short-form tags count the levels of their long form.
        let tagged = format!(
            "a: {}x{}\n",
            "!If [".repeat(MAX_NESTING / 2 + 1),
            "]".repeat(MAX_NESTING / 2 + 1)
        );
        let e = fails(&tagged);
        assert!(e.message.contains("nest deeper"), "{e}");
    }

    /// Found by the fuzz target `template`: a float read from YAML (correctly rounded) was
    /// printed exactly but read back from JSON one unit in the last place away, so a
    /// template's JSON did not say what its YAML said (serde_json's fast float parsing;
    /// the workspace now enables its `float_roundtrip`).
    #[test]
    fn floats_read_back_exactly_from_their_json() {
        for text in [
            "1.0715660391465826e-75",
            "-1.81996730402717e-179",
            "-1.603964615428183e+143",
            "-9.643915712060552e-234",
            "2.2250738585072014e-308",
            "1.7976931348623157e+308",
            "0.1",
        ] {
            let exact: f64 = text.parse().unwrap();
            let from_yaml = v(text);
            assert_eq!(
                from_yaml.as_f64().map(f64::to_bits),
                Some(exact.to_bits()),
                "{text}"
            );
            let from_json = read(&format!("{{\"v\": {text}}}"))["v"].clone();
            assert_eq!(
                from_json.as_f64().map(f64::to_bits),
                Some(exact.to_bits()),
                "{text}"
            );
            let template = read(&format!("v: {text}\n"));
            assert_eq!(read(&to_json_pretty(&template)), template, "{text}");
        }
        // The fuzzer's own find: an integer too large for 64 bits is read as the nearest
        // float, which must print and read back as itself.
        let template = read("{\n  \"As\":12345678901234560785070\n}");
        let nearest: f64 = "12345678901234560785070".parse().unwrap();
        assert_eq!(template["As"].as_f64(), Some(nearest));
        assert_eq!(read(&to_json_pretty(&template)), template);
    }

    #[test]
    fn truncated_templates_never_panic() {
        for (end, _) in SAMPLE.char_indices() {
            let _ = read_template(&SAMPLE[..end]);
        }
        let json = read(SAMPLE).to_string();
        for (end, _) in json.char_indices() {
            let _ = read_template(&json[..end]);
        }
        // And a few odd bytes spliced in.
        for (at, _) in SAMPLE.char_indices().step_by(23) {
            for junk in [
                "\t", "!", "&", "*", "'", "\"", "[", "{", "}", ":", "- ", "\n  ", "%", "@", "|",
            ] {
                let text = format!("{}{junk}{}", &SAMPLE[..at], &SAMPLE[at..]);
                let _ = read_template(&text);
            }
        }
    }

    #[test]
    fn reads_json_templates() {
        let text = "{\n  \"AWSTemplateFormatVersion\": \"2010-09-09\",\n  \"Resources\": {\"B\": {\"Type\": \"AWS::S3::Bucket\", \"Properties\": {\"N\": 1, \"F\": 1.0, \"Big\": 99999999999999999999}}}\n}\n";
        let t = read(text);
        assert_eq!(t["AWSTemplateFormatVersion"], json!("2010-09-09"));
        assert_eq!(t["Resources"]["B"]["Properties"]["N"], json!(1));
        assert_eq!(t["Resources"]["B"]["Properties"]["F"], json!(1.0));
        assert_eq!(t["Resources"]["B"]["Properties"]["Big"], json!(1e20));
        // Leading blanks and a byte order mark are fine.
        assert_eq!(read("\u{feff}  \n {\"a\": true}"), json!({"a": true}));
    }

    #[test]
    fn json_errors_have_positions() {
        let e = fails("{\n  \"a\": 1,\n  \"b\": [1, 2\n}\n");
        assert_eq!((e.line, e.column), (4, 1), "{e}");
        assert!(e.message.starts_with("invalid JSON: "), "{e}");
        assert!(!e.message.contains("at line"), "{e}");
        let e = fails("{\"a\": \"unterminated}\n");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn brace_text_that_is_yaml_but_not_json_is_read_as_yaml() {
        assert_eq!(
            read("{a: !Ref B, c: 1}"),
            json!({"a": {"Ref": "B"}, "c": 1})
        );
    }

    #[test]
    fn the_same_template_reads_the_same_from_yaml_and_from_its_json() {
        let from_yaml = read(SAMPLE);
        assert_eq!(read(&to_json_pretty(&from_yaml)), from_yaml);
    }

    #[test]
    fn pretty_json_has_two_space_indent_and_a_trailing_newline() {
        let text = to_json_pretty(&read("b: [1, !Ref x]\na: é\n"));
        assert_eq!(
            text,
            "{\n  \"b\": [\n    1,\n    {\n      \"Ref\": \"x\"\n    }\n  ],\n  \"a\": \"é\"\n}\n"
        );
    }

    #[test]
    fn error_display_names_line_and_column() {
        let e = fails("a: 1\nb: x\u{7}\n");
        assert_eq!(
            e.to_string(),
            "line 2, column 5: invalid YAML: the character U+0007 is not allowed in a template \
             (control characters other than tab and line breaks are not)"
        );
    }

    #[test]
    fn flow_collections_may_be_under_indented() {
        // As in PyYAML and CloudFormation: indentation means nothing inside `[...]`/`{...}`.
        let statement = json!({"Effect": "Allow", "Resource": ["arn:a", "arn:b"], "Action": "x"});
        // The closing bracket under its key.
        let t = read(
            "S:\n  - Effect: Allow\n    Resource: [\n      \"arn:a\",\n      \"arn:b\"\n    ]\n    Action: x\n",
        );
        assert_eq!(t["S"][0], statement);
        // Items and bracket left of the key, down to column 1.
        let t = read("S:\n  - Effect: Allow\n    Resource: [\n  arn:a,\narn:b\n]\n    Action: x\n");
        assert_eq!(t["S"][0], statement);
        // A flow mapping, nested collections and tags.
        assert_eq!(
            read("a:\n  b: {\n  x: 1,\n  y: !Ref Z\n  }\n  c: 2\n")["a"],
            json!({"b": {"x": 1, "y": {"Ref": "Z"}}, "c": 2})
        );
        assert_eq!(
            read("a:\n  b: !If [\nC,\n[p, q],\n{x: !Ref Y}\n]\n  c: 2\n")["a"]["b"],
            json!({"Fn::If": ["C", ["p", "q"], {"x": {"Ref": "Y"}}]})
        );
        assert_eq!(
            read("a:\n  - !Join [\n'',\n[p, q]\n]\n")["a"],
            json!([{"Fn::Join": ["", ["p", "q"]]}])
        );
        // Comments, multi-line quoted scalars, several such collections, CRLF line ends.
        assert_eq!(
            read("a:\n  b: [ # one\n# two\n  p, # three\n  q\n  ]\n")["a"]["b"],
            json!(["p", "q"])
        );
        assert_eq!(
            read("a:\n  b: [\n 'it''s\nx', \"y\n  z\"\n ]\n")["a"]["b"],
            json!(["it's x", "y z"])
        );
        let t = read("a:\n  b: [\n p\n ]\n  c: {\n k: v\n }\n");
        assert_eq!(t["a"], json!({"b": ["p"], "c": {"k": "v"}}));
        let t = read("a:\r\n  b: [\r\n    p,\r\n  q\r\n  ]\r\n");
        assert_eq!(t["a"]["b"], json!(["p", "q"]));
    }

    #[test]
    fn tabs_starting_continuation_lines_of_quoted_scalars() {
        // PyYAML folds them away like spaces.
        assert_eq!(read("a:\n  b: 'x\n\ty'\n")["a"]["b"], json!("x y"));
        assert_eq!(read("a:\n  b: \"x\n  \t y\"\n")["a"]["b"], json!("x y"));
        // A tab as block indentation is still an error.
        assert!(fails("a:\n\tb: 1\n").message.contains("tabs"));
    }

    #[test]
    fn comments_right_after_a_token() {
        // PyYAML starts a comment at a `#` wherever a token may start.
        assert_eq!(
            read("a: {b: 1}#c\nd: 'x'# c\n"),
            json!({"a": {"b": 1}, "d": "x"})
        );
        assert_eq!(read("a: [1, 2]#c\n")["a"], json!([1, 2]));
        // Inside a plain scalar it is content.
        assert_eq!(read("a: x#c\n")["a"], json!("x#c"));
    }

    #[test]
    fn surrogate_pair_escapes_make_one_character() {
        assert_eq!(v("\"\\ud83d\\ude00 \\u00e9\\\"\""), json!("😀 é\""));
        assert_eq!(
            v("[\"\\uD83D\\uDE00\", \"x\\uD83D\\uDE00y\\uD83D\\uDE01\"]"),
            json!(["😀", "x😀y😁"])
        );
        // Half a character is an error.
        let e = fails("a: \"\\ud83d x\"\n");
        assert_eq!((e.line, e.column), (1, 4), "{e}");
        assert!(
            e.message.contains("invalid Unicode character escape"),
            "{e}"
        );
    }

    #[test]
    fn many_under_indented_flow_collections() {
        let text: String = (0..100)
            .map(|i| format!("k{i}:\n  - a: [\n  x{i},\n  ]\n"))
            .collect();
        let t = read(&text);
        assert_eq!(t["k99"], json!([{"a": ["x99"]}]));
    }

    #[test]
    fn errors_after_a_re_indented_flow_collection_keep_their_columns() {
        // Line 3 is re-indented to be read; the error on it is at its own column.
        let e = fails("a:\n  b: [\n x, @y\n  ]\n");
        assert_eq!((e.line, e.column), (3, 5), "{e}");
        assert!(e.message.contains("unexpected character"), "{e}");
        // A document marker inside a flow collection ends the document, for every reader.
        let e = fails("a: [\n---\n  ]\n");
        assert_eq!(e.line, 2, "{e}");
        // An unclosed flow collection is still an error.
        let e = fails("a:\n  b: [\n x,\n");
        assert!(e.message.starts_with("invalid YAML: "), "{e}");
    }

    #[test]
    fn byte_order_marks_and_crlf_line_ends() {
        let t = read("\u{feff}a: 1\r\nb: |\r\n  x\r\n  y\r\nc: 'p\r\n  q'\r\n");
        assert_eq!(t, json!({"a": 1, "b": "x\ny\n", "c": "p q"}));
        assert_eq!(read("\u{feff}\r\n{\"a\": 1}\r\n"), json!({"a": 1}));
    }

    #[test]
    fn next_line_characters_are_line_breaks() {
        // YAML 1.1 (PyYAML, cfn-flip): NEL is a line break.
        assert_eq!(v("'x\u{85}y'"), json!("x y"));
        assert_eq!(read("v: |\n  x\u{85}  y\n")["v"], json!("x\ny\n"));
        // Other characters beyond ASCII are content.
        assert_eq!(v("'x\u{a0}\u{2028}é😀'"), json!("x\u{a0}\u{2028}é😀"));
    }

    #[test]
    fn characters_yaml_does_not_allow_are_errors_with_their_position() {
        for (c, code) in [
            ('\u{7}', "U+0007"),
            ('\u{7f}', "U+007F"),
            ('\u{9b}', "U+009B"),
        ] {
            let e = fails(&format!("a: 1\nb: x{c}y\n"));
            assert_eq!((e.line, e.column), (2, 5), "{e}");
            assert!(e.message.contains(code), "{e}");
        }
        // Tab is allowed.
        assert_eq!(read("a: |\n  x\ty\n")["a"], json!("x\ty\n"));
    }

    #[test]
    fn tags_with_odd_spacing() {
        let t = read(
            "a: !Ref   X\nb: !Ref\n  Y\nc:   !GetAtt   R.Arn  \nd: !Sub\n  - x${A}\n  - A: !Ref A\ne: !GetAZs\nf: !Ref X # c\n",
        );
        assert_eq!(t["a"], json!({"Ref": "X"}));
        assert_eq!(t["b"], json!({"Ref": "Y"}));
        assert_eq!(t["c"], json!({"Fn::GetAtt": ["R", "Arn"]}));
        assert_eq!(t["d"], json!({"Fn::Sub": ["x${A}", {"A": {"Ref": "A"}}]}));
        assert_eq!(t["e"], json!({"Fn::GetAZs": ""}));
        assert_eq!(t["f"], json!({"Ref": "X"}));
        assert_eq!(v("[!GetAZs , x]"), json!([{"Fn::GetAZs": ""}, "x"]));
    }

    #[test]
    fn document_markers_directives_and_comments_in_odd_places() {
        assert_eq!(read("--- # the template\na: 1\n"), json!({"a": 1}));
        assert_eq!(read("%YAML 1.1\n---\na: 1\n"), json!({"a": 1}));
        assert_eq!(read("# c\n---\na: 1\n...\n# trailing\n"), json!({"a": 1}));
        let t = read(
            "# top\na: # c1\n  # c2\n  b: # c3\n    c: 1 # c4\n# column 1 inside\n    d: [p, # c5\n      q] # c6\n    e: | # c7\n      x\n    f: p#q\n",
        );
        assert_eq!(
            t["a"]["b"],
            json!({"c": 1, "d": ["p", "q"], "e": "x\n", "f": "p#q"})
        );
    }

    #[test]
    fn very_long_lines() {
        let long = "x".repeat(200_000);
        let t = read(&format!("a: {long}\nb: '{long}'\nc: [{long}, y]\n"));
        assert_eq!(t["a"], json!(long));
        assert_eq!(t["b"], json!(long));
        assert_eq!(t["c"][0], json!(long));
    }

    /// Inline snippets with every lenient construct, for the truncation test.
    const LENIENT: &str = "\u{feff}AWSTemplateFormatVersion: 2010-09-09\r\n\
        Resources:\r\n\
        \x20 Role:\r\n\
        \x20   Properties:\r\n\
        \x20     Statement:\r\n\
        \x20       - Resource: [\r\n\
        \x20     !Sub 'arn:${AWS::Partition}:s3:::b',\r\n\
        \x20     \"x\r\ny\"\r\n\
        \x20       ]\r\n\
        \x20         Action: {\r\n\
        a: [1, 2], # c\r\n\
        b: !GetAtt R.Arn }\r\n\
        \x20     Key: a\r\n\
        \x20     Key: 'b\u{85}c'\r\n";

    #[test]
    fn lenient_snippet_reads_as_cfn_flip_reads_it() {
        let t = read(LENIENT);
        let role = &t["Resources"]["Role"]["Properties"];
        assert_eq!(
            role["Statement"][0]["Resource"],
            json!([{"Fn::Sub": "arn:${AWS::Partition}:s3:::b"}, "x y"])
        );
        assert_eq!(
            role["Statement"][0]["Action"],
            json!({"a": [1, 2], "b": {"Fn::GetAtt": ["R", "Arn"]}})
        );
        assert_eq!(role["Key"], json!("b c"));
    }

    #[test]
    fn truncated_lenient_templates_never_panic_and_truncated_json_is_an_error() {
        for (end, _) in LENIENT.char_indices() {
            let _ = read_template(&LENIENT[..end]);
        }
        // And odd bytes spliced in, which the re-indenting fixes must survive too.
        for (at, _) in LENIENT.char_indices().step_by(7) {
            for junk in [
                "\t", "#", "'", "\"", "\\uD83D", "[", "{", "]", "}", ",", "\n", "\r\n ", "\n---",
            ] {
                let text = format!("{}{junk}{}", &LENIENT[..at], &LENIENT[at..]);
                let _ = read_template(&text);
            }
        }
        let json = to_json_pretty(&read(LENIENT));
        let last_brace = json.rfind('}').unwrap();
        for (end, _) in json.char_indices().take_while(|&(i, _)| i <= last_brace) {
            assert!(
                read_template(&json[..end]).is_err(),
                "a truncated JSON template read: {:?}",
                &json[..end]
            );
        }
    }
}
