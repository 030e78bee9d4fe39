//! Evaluates the intrinsic functions that build strings in a template, with the stack's own
//! parameter values, pseudo parameters, mappings, conditions and the account's exports.
//!
//! What cannot be known before deployment (`Fn::GetAtt`, a `NoEcho` parameter, an unknown
//! export, ...) becomes a *hole*: a [`HOLE`] character in the text, with the reason kept
//! beside it. A secret id with a hole in it is a *possible* reference, never dropped.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

/// Stands in the evaluated text for a value that could not be evaluated. A private-use
/// character: it never occurs in a secret's name or ARN.
pub const HOLE: char = '\u{E000}';

/// An evaluated string: literal text with [`HOLE`]s, and one reason per hole, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text {
    /// The text, with a [`HOLE`] where a value is unknown.
    pub text: String,
    /// Why each hole is unknown, in the order the holes appear.
    pub holes: Vec<String>,
}

impl Text {
    /// Literal text with no holes.
    pub fn literal(text: impl Into<String>) -> Self {
        Text {
            text: text.into(),
            holes: Vec::new(),
        }
    }

    /// A single hole.
    pub fn hole(reason: impl Into<String>) -> Self {
        Text {
            text: HOLE.to_string(),
            holes: vec![reason.into()],
        }
    }

    /// Whether every part of the text is known.
    pub fn is_known(&self) -> bool {
        self.holes.is_empty()
    }

    fn push(&mut self, other: Text) {
        self.text.push_str(&other.text);
        self.holes.extend(other.holes);
    }

    /// The reasons for the holes inside `text[range]`.
    pub fn holes_in(&self, range: std::ops::Range<usize>) -> Vec<String> {
        let before = self.text[..range.start].matches(HOLE).count();
        let inside = self.text[range].matches(HOLE).count();
        self.holes[before..before + inside].to_vec()
    }
}

/// The value of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eval {
    /// A string (possibly with holes).
    Text(Text),
    /// A list of values.
    List(Vec<Eval>),
    /// Nothing at all (`AWS::NoValue`).
    Nothing,
    /// A value of another kind (a mapping), or unknown.
    Unknown(String),
}

impl Eval {
    /// The value as text: a list or unknown value becomes a hole.
    pub fn into_text(self) -> Text {
        match self {
            Eval::Text(t) => t,
            Eval::Nothing => Text::default(),
            Eval::List(_) => Text::hole("a list where a string was expected"),
            Eval::Unknown(reason) => Text::hole(reason),
        }
    }
}

/// A parameter's value as the evaluator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// A known value (lists are split on commas when a list is needed).
    Known(String),
    /// Unknown, with the reason (NoEcho, no value given, ...).
    Unknown(String),
}

/// The pseudo parameters of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pseudo {
    /// `AWS::Region`.
    pub region: Option<String>,
    /// `AWS::AccountId`.
    pub account_id: Option<String>,
    /// `AWS::Partition`.
    pub partition: Option<String>,
    /// `AWS::StackName`.
    pub stack_name: Option<String>,
    /// `AWS::StackId`.
    pub stack_id: Option<String>,
}

impl Pseudo {
    fn get(&self, name: &str) -> Option<Eval> {
        let known = |v: &Option<String>, what: &str| match v {
            Some(v) => Eval::Text(Text::literal(v.clone())),
            None => Eval::Unknown(format!("{what} is not known here")),
        };
        Some(match name {
            "AWS::Region" => known(&self.region, name),
            "AWS::AccountId" => known(&self.account_id, name),
            "AWS::Partition" => known(&self.partition, name),
            "AWS::StackName" => known(&self.stack_name, name),
            "AWS::StackId" => known(&self.stack_id, name),
            "AWS::URLSuffix" => Eval::Text(Text::literal(
                if self.partition.as_deref() == Some("aws-cn") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                },
            )),
            "AWS::NoValue" => Eval::Nothing,
            "AWS::NotificationARNs" => Eval::Unknown("AWS::NotificationARNs".into()),
            _ => return None,
        })
    }
}

/// What an evaluation touched: the parameters it read and the exports it imported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Names of the parameters read.
    pub parameters: BTreeSet<String>,
    /// Names of the exports imported (known names only).
    pub imports: BTreeSet<String>,
}

/// Everything an expression of one stack can refer to.
pub struct Scope<'a> {
    template: &'a Value,
    parameters: HashMap<String, ParamValue>,
    pseudo: Pseudo,
    exports: &'a HashMap<String, String>,
    /// Known `Ref` values of resources (secrets created by this stack).
    resource_refs: HashMap<String, String>,
    conditions: RefCell<HashMap<String, Option<bool>>>,
}

impl<'a> Scope<'a> {
    /// A scope over `template` with the given parameter values (missing ones take the
    /// template's `Default`), pseudo parameters and the account's exports.
    pub fn new(
        template: &'a Value,
        given: &std::collections::BTreeMap<String, String>,
        pseudo: Pseudo,
        exports: &'a HashMap<String, String>,
    ) -> Self {
        let mut parameters = HashMap::new();
        if let Some(declared) = template.get("Parameters").and_then(Value::as_object) {
            for (name, decl) in declared {
                let no_echo = crate::stack::is_no_echo(template, name);
                let value = match given.get(name) {
                    Some(v) if no_echo && v == crate::stack::MASKED_VALUE => ParamValue::Unknown(
                        format!("parameter {name} is NoEcho: its value cannot be read"),
                    ),
                    Some(v) => ParamValue::Known(v.clone()),
                    None => match decl.get("Default").and_then(scalar_string) {
                        Some(d) => ParamValue::Known(d),
                        None => ParamValue::Unknown(format!("parameter {name} has no value")),
                    },
                };
                parameters.insert(name.clone(), value);
            }
        }
        Scope {
            template,
            parameters,
            pseudo,
            exports,
            resource_refs: HashMap::new(),
            conditions: RefCell::new(HashMap::new()),
        }
    }

    /// Declares the value `Ref` gives for a resource of this stack.
    pub fn with_resource_ref(mut self, logical_id: &str, value: &str) -> Self {
        self.resource_refs
            .insert(logical_id.to_string(), value.to_string());
        self
    }

    /// The template this scope evaluates.
    pub fn template(&self) -> &'a Value {
        self.template
    }

    /// A parameter's value, if the parameter is declared.
    pub fn parameter(&self, name: &str) -> Option<&ParamValue> {
        self.parameters.get(name)
    }

    /// Whether a parameter is declared `NoEcho` (its value is never shown).
    pub fn is_no_echo(&self, name: &str) -> bool {
        crate::stack::is_no_echo(self.template, name)
    }

    /// The value of an export of the account.
    pub fn export(&self, name: &str) -> Option<&String> {
        self.exports.get(name)
    }

    /// Names of the declared parameters.
    pub fn parameter_names(&self) -> impl Iterator<Item = &String> {
        self.parameters.keys()
    }

    /// Evaluates an expression.
    pub fn eval(&self, node: &Value, trace: &mut Trace) -> Eval {
        match node {
            Value::String(s) => Eval::Text(Text::literal(s.clone())),
            Value::Number(n) => Eval::Text(Text::literal(n.to_string())),
            Value::Bool(b) => Eval::Text(Text::literal(b.to_string())),
            Value::Null => Eval::Nothing,
            Value::Array(items) => Eval::List(
                items
                    .iter()
                    .map(|i| self.eval(i, trace))
                    .filter(|e| *e != Eval::Nothing)
                    .collect(),
            ),
            Value::Object(map) => match single_entry(map) {
                Some((function, arg)) => self.eval_function(function, arg, trace),
                None => Eval::Unknown("a mapping where a string was expected".into()),
            },
        }
    }

    fn eval_function(&self, function: &str, arg: &Value, trace: &mut Trace) -> Eval {
        match function {
            "Ref" => match arg.as_str() {
                Some(name) => self.eval_ref(name, trace),
                None => Eval::Unknown("Ref to something that is not a name".into()),
            },
            "Fn::Sub" => Eval::Text(self.eval_sub(arg, trace)),
            "Fn::Join" => self.eval_join(arg, trace),
            "Fn::Select" => self.eval_select(arg, trace),
            "Fn::Split" => self.eval_split(arg, trace),
            "Fn::If" => self.eval_if(arg, trace),
            "Fn::FindInMap" => self.eval_find_in_map(arg, trace),
            "Fn::ImportValue" => self.eval_import(arg, trace),
            "Fn::GetAtt" => Eval::Unknown(format!(
                "Fn::GetAtt {} is known only after deployment",
                get_att_name(arg)
            )),
            "Fn::Transform" => Eval::Unknown("the output of a macro (Fn::Transform)".into()),
            other if other.starts_with("Fn::") => {
                Eval::Unknown(format!("{other} is not evaluated"))
            }
            _ => Eval::Unknown("a mapping where a string was expected".into()),
        }
    }

    fn eval_ref(&self, name: &str, trace: &mut Trace) -> Eval {
        if let Some(value) = self.parameters.get(name) {
            trace.parameters.insert(name.to_string());
            return match value {
                ParamValue::Known(v) if is_list_parameter(self.template, name) => Eval::List(
                    v.split(',')
                        .map(|item| Eval::Text(Text::literal(item.trim())))
                        .collect(),
                ),
                ParamValue::Known(v) => Eval::Text(Text::literal(v.clone())),
                ParamValue::Unknown(reason) => Eval::Unknown(reason.clone()),
            };
        }
        if let Some(pseudo) = self.pseudo.get(name) {
            return pseudo;
        }
        if let Some(value) = self.resource_refs.get(name) {
            return Eval::Text(Text::literal(value.clone()));
        }
        match resource_type(self.template, name) {
            // A secret created by this stack that is none of the secrets looked for: its ARN
            // is unknown, but it is certainly none of theirs. `<...>` never names a secret.
            Some("AWS::SecretsManager::Secret") => {
                Eval::Text(Text::literal(format!("<secret {name} of this stack>")))
            }
            Some(_) => Eval::Unknown(format!("Ref {name} is known only after deployment")),
            None => Eval::Unknown(format!("Ref {name} names nothing in the template")),
        }
    }

    /// `Fn::Sub` in string form or `[string, {variables}]` form.
    pub fn eval_sub(&self, arg: &Value, trace: &mut Trace) -> Text {
        let (pattern, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(items) => match (items.first(), items.get(1)) {
                (Some(Value::String(s)), vars) => (s.as_str(), vars.and_then(Value::as_object)),
                _ => return Text::hole("Fn::Sub with a pattern that is not a string"),
            },
            _ => return Text::hole("Fn::Sub with a pattern that is not a string"),
        };
        let mut out = Text::default();
        for part in sub_parts(pattern) {
            match part {
                SubPart::Literal(text) => out.push(Text::literal(text)),
                SubPart::Variable(name) => {
                    let value = match vars.and_then(|v| v.get(name)) {
                        Some(expr) => self.eval(expr, trace),
                        None => match name.split_once('.') {
                            Some(_) if !name.starts_with("AWS::") => {
                                Eval::Unknown(format!("${{{name}}} is known only after deployment"))
                            }
                            _ => self.eval_ref(name, trace),
                        },
                    };
                    out.push(value.into_text());
                }
            }
        }
        out
    }

    fn eval_join(&self, arg: &Value, trace: &mut Trace) -> Eval {
        let Some([delimiter, list]) = pair(arg) else {
            return Eval::Unknown("Fn::Join without [delimiter, list]".into());
        };
        let delimiter = delimiter.as_str().unwrap_or_default();
        match self.eval(list, trace) {
            Eval::List(items) => {
                let mut out = Text::default();
                for (i, item) in items.into_iter().enumerate() {
                    if i > 0 {
                        out.push(Text::literal(delimiter));
                    }
                    out.push(item.into_text());
                }
                Eval::Text(out)
            }
            Eval::Unknown(reason) => Eval::Text(Text::hole(reason)),
            _ => Eval::Unknown("Fn::Join of something that is not a list".into()),
        }
    }

    fn eval_select(&self, arg: &Value, trace: &mut Trace) -> Eval {
        let Some([index, list]) = pair(arg) else {
            return Eval::Unknown("Fn::Select without [index, list]".into());
        };
        let index = match self.eval(index, trace) {
            Eval::Text(t) if t.is_known() => t.text.trim().parse::<usize>().ok(),
            _ => None,
        };
        match (index, self.eval(list, trace)) {
            (Some(i), Eval::List(items)) => items
                .into_iter()
                .nth(i)
                .unwrap_or_else(|| Eval::Unknown("Fn::Select index out of range".into())),
            (_, Eval::Unknown(reason)) => Eval::Unknown(reason),
            _ => Eval::Unknown("Fn::Select that could not be evaluated".into()),
        }
    }

    fn eval_split(&self, arg: &Value, trace: &mut Trace) -> Eval {
        let Some([delimiter, source]) = pair(arg) else {
            return Eval::Unknown("Fn::Split without [delimiter, string]".into());
        };
        let Some(delimiter) = delimiter.as_str().filter(|d| !d.is_empty()) else {
            return Eval::Unknown("Fn::Split with an empty delimiter".into());
        };
        let text = self.eval(source, trace).into_text();
        let mut holes = text.holes.into_iter();
        Eval::List(
            text.text
                .split(delimiter)
                .map(|piece| {
                    let n = piece.matches(HOLE).count();
                    Eval::Text(Text {
                        text: piece.to_string(),
                        holes: holes.by_ref().take(n).collect(),
                    })
                })
                .collect(),
        )
    }

    fn eval_if(&self, arg: &Value, trace: &mut Trace) -> Eval {
        let Some(items) = arg.as_array().filter(|a| a.len() == 3) else {
            return Eval::Unknown("Fn::If without [condition, then, else]".into());
        };
        let name = items[0].as_str().unwrap_or_default();
        match self.condition(name) {
            Some(true) => self.eval(&items[1], trace),
            Some(false) => self.eval(&items[2], trace),
            None => Eval::Unknown(format!("condition {name} could not be evaluated")),
        }
    }

    fn eval_find_in_map(&self, arg: &Value, trace: &mut Trace) -> Eval {
        let Some(keys) = arg.as_array().filter(|a| a.len() >= 3) else {
            return Eval::Unknown("Fn::FindInMap without [map, key, key]".into());
        };
        let mut node = match self.template.get("Mappings") {
            Some(m) => m,
            None => return Eval::Unknown("Fn::FindInMap without Mappings".into()),
        };
        for key in &keys[..3] {
            let key = match self.eval(key, trace) {
                Eval::Text(t) if t.is_known() => t.text,
                _ => return Eval::Unknown("Fn::FindInMap key could not be evaluated".into()),
            };
            match node.get(&key) {
                Some(next) => node = next,
                None => return Eval::Unknown(format!("Fn::FindInMap found no key {key}")),
            }
        }
        match node {
            Value::Array(_) | Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                self.eval(node, trace)
            }
            _ => Eval::Unknown("Fn::FindInMap value is not a string".into()),
        }
    }

    fn eval_import(&self, arg: &Value, trace: &mut Trace) -> Eval {
        let name = self.eval(arg, trace).into_text();
        if !name.is_known() {
            return Eval::Unknown(format!(
                "Fn::ImportValue of an export whose name could not be evaluated ({})",
                name.holes.join("; ")
            ));
        }
        trace.imports.insert(name.text.clone());
        match self.exports.get(&name.text) {
            Some(value) => Eval::Text(Text::literal(value.clone())),
            None => Eval::Unknown(format!("no export named {} in this account", name.text)),
        }
    }

    /// The truth of a named condition, or `None` when it cannot be evaluated.
    pub fn condition(&self, name: &str) -> Option<bool> {
        if let Some(known) = self.conditions.borrow().get(name) {
            return *known;
        }
        // Guard against cycles: a condition under evaluation counts as unknown.
        self.conditions.borrow_mut().insert(name.to_string(), None);
        let body = self.template.get("Conditions").and_then(|c| c.get(name))?;
        let value = self.eval_condition(body);
        self.conditions.borrow_mut().insert(name.to_string(), value);
        value
    }

    fn eval_condition(&self, node: &Value) -> Option<bool> {
        let (function, arg) = single_entry(node.as_object()?)?;
        let args = arg.as_array();
        match function {
            "Condition" => self.condition(arg.as_str()?),
            "Fn::Equals" => {
                let [a, b] = pair(arg)?;
                let mut trace = Trace::default();
                let a = self.eval(a, &mut trace).into_text();
                let b = self.eval(b, &mut trace).into_text();
                (a.is_known() && b.is_known()).then(|| a.text == b.text)
            }
            "Fn::Not" => self.eval_condition(args?.first()?).map(|v| !v),
            "Fn::And" | "Fn::Or" => {
                let values: Vec<Option<bool>> =
                    args?.iter().map(|c| self.eval_condition(c)).collect();
                let decisive = function == "Fn::Or";
                if values.contains(&Some(decisive)) {
                    Some(decisive)
                } else if values.iter().all(Option::is_some) {
                    Some(!decisive)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// A piece of an `Fn::Sub` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubPart<'a> {
    /// Literal text (with `${!x}` already turned into `${x}`).
    Literal(String),
    /// A `${name}` variable.
    Variable(&'a str),
}

/// Splits an `Fn::Sub` pattern into literal text and `${variables}`.
pub fn sub_parts(pattern: &str) -> Vec<SubPart<'_>> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find("${") {
        literal.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find('}') {
            Some(close) if after.starts_with('!') => {
                literal.push_str("${");
                literal.push_str(&after[1..close]);
                literal.push('}');
                rest = &after[close + 1..];
            }
            Some(close) => {
                if !literal.is_empty() {
                    parts.push(SubPart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(SubPart::Variable(after[..close].trim()));
                rest = &after[close + 1..];
            }
            None => {
                literal.push_str("${");
                rest = after;
            }
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(SubPart::Literal(literal));
    }
    parts
}

/// The only entry of a one-key mapping (the shape of every intrinsic function).
pub fn single_entry(map: &Map<String, Value>) -> Option<(&str, &Value)> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some((k, v)), None) => Some((k.as_str(), v)),
        _ => None,
    }
}

fn pair(arg: &Value) -> Option<[&Value; 2]> {
    match arg.as_array()?.as_slice() {
        [a, b] => Some([a, b]),
        _ => None,
    }
}

fn get_att_name(arg: &Value) -> String {
    match arg {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join("."),
        _ => "?".into(),
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(scalar_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

fn is_list_parameter(template: &Value, name: &str) -> bool {
    template
        .pointer(&format!(
            "/Parameters/{}/Type",
            name.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"))
}

/// The `Type` of a resource in a template.
pub fn resource_type<'t>(template: &'t Value, logical_id: &str) -> Option<&'t str> {
    template
        .get("Resources")?
        .get(logical_id)?
        .get("Type")?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn scope_with<'a>(
        template: &'a Value,
        params: &[(&str, &str)],
        exports: &'a HashMap<String, String>,
    ) -> Scope<'a> {
        let given: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Scope::new(
            template,
            &given,
            Pseudo {
                region: Some("us-east-1".into()),
                account_id: Some("123456789012".into()),
                partition: Some("aws".into()),
                stack_name: Some("app".into()),
                stack_id: None,
            },
            exports,
        )
    }

    fn text(scope: &Scope, expr: Value) -> Text {
        scope.eval(&expr, &mut Trace::default()).into_text()
    }

    fn template() -> Value {
        json!({
            "Parameters": {
                "Env": {"Type": "String", "Default": "prod"},
                "Secret": {"Type": "String"},
                "Hidden": {"Type": "String", "NoEcho": true},
                "Names": {"Type": "CommaDelimitedList", "Default": "a,b,c"}
            },
            "Mappings": {"M": {"prod": {"Name": "db"}}},
            "Conditions": {
                "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
                "Either": {"Fn::Or": [{"Condition": "NotProd"}, {"Condition": "IsProd"}]},
                "Unknown": {"Fn::Equals": [{"Ref": "Hidden"}, "x"]},
                "Loop": {"Condition": "Loop"}
            },
            "Resources": {
                "Own": {"Type": "AWS::SecretsManager::Secret"},
                "Q": {"Type": "AWS::SQS::Queue"}
            }
        })
    }

    #[test]
    fn sub_uses_parameters_pseudo_parameters_and_variables() {
        let t = template();
        let ex = HashMap::new();
        let s = scope_with(&t, &[("Secret", "db"), ("Hidden", "****")], &ex);
        assert_eq!(
            text(&s, json!({"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Env}/${Secret}"})).text,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db"
        );
        assert_eq!(
            text(
                &s,
                json!({"Fn::Sub": ["${X}-${!Literal}", {"X": {"Ref": "Env"}}]})
            )
            .text,
            "prod-${Literal}"
        );
        let hidden = text(&s, json!({"Fn::Sub": "a/${Hidden}/${Q.Arn}"}));
        assert_eq!(hidden.text, format!("a/{HOLE}/{HOLE}"));
        assert!(hidden.holes[0].contains("NoEcho"));
        assert!(hidden.holes[1].contains("Q.Arn"));
    }

    #[test]
    fn join_select_split_find_in_map_and_if() {
        let t = template();
        let ex = HashMap::new();
        let s = scope_with(&t, &[("Secret", "db")], &ex);
        assert_eq!(
            text(&s, json!({"Fn::Join": [":", ["a", {"Ref": "Secret"}, 3]]})).text,
            "a:db:3"
        );
        assert_eq!(
            text(&s, json!({"Fn::Select": [1, {"Ref": "Names"}]})).text,
            "b"
        );
        assert_eq!(
            text(
                &s,
                json!({"Fn::Select": ["2", {"Fn::Split": ["/", "x/y/z"]}]})
            )
            .text,
            "z"
        );
        assert_eq!(
            text(&s, json!({"Fn::FindInMap": ["M", {"Ref": "Env"}, "Name"]})).text,
            "db"
        );
        assert_eq!(text(&s, json!({"Fn::If": ["IsProd", "p", "q"]})).text, "p");
        assert_eq!(text(&s, json!({"Fn::If": ["NotProd", "p", "q"]})).text, "q");
        assert!(!text(&s, json!({"Fn::If": ["Unknown", "p", "q"]})).is_known());
    }

    #[test]
    fn conditions_use_three_valued_logic_and_survive_cycles() {
        let t = template();
        let ex = HashMap::new();
        let s = scope_with(&t, &[("Hidden", "****")], &ex);
        assert_eq!(s.condition("IsProd"), Some(true));
        assert_eq!(s.condition("NotProd"), Some(false));
        assert_eq!(s.condition("Either"), Some(true));
        assert_eq!(s.condition("Unknown"), None);
        assert_eq!(s.condition("Loop"), None);
        assert_eq!(s.condition("Missing"), None);
    }

    #[test]
    fn import_value_reads_exports_and_records_them() {
        let t = template();
        let ex = HashMap::from([("net-SecretArn".to_string(), "arn:x".to_string())]);
        let s = scope_with(&t, &[], &ex);
        let mut trace = Trace::default();
        let v = s
            .eval(
                &json!({"Fn::ImportValue": {"Fn::Sub": "net-SecretArn"}}),
                &mut trace,
            )
            .into_text();
        assert_eq!(v.text, "arn:x");
        assert!(trace.imports.contains("net-SecretArn"));
        assert!(!text(&s, json!({"Fn::ImportValue": "missing"})).is_known());
    }

    #[test]
    fn resource_refs_are_holes_except_known_secrets() {
        let t = template();
        let ex = HashMap::new();
        let s = scope_with(&t, &[], &ex);
        assert!(!text(&s, json!({"Ref": "Q"})).is_known());
        let own = text(&s, json!({"Ref": "Own"}));
        assert!(own.is_known() && own.text.starts_with('<'));
        let s = scope_with(&t, &[], &ex).with_resource_ref("Own", "arn:own");
        assert_eq!(text(&s, json!({"Ref": "Own"})).text, "arn:own");
    }

    #[test]
    fn trace_records_parameters_read() {
        let t = template();
        let ex = HashMap::new();
        let s = scope_with(&t, &[("Secret", "db")], &ex);
        let mut trace = Trace::default();
        s.eval(&json!({"Fn::Sub": "${Secret}-${Env}"}), &mut trace);
        assert_eq!(
            trace.parameters.iter().collect::<Vec<_>>(),
            ["Env", "Secret"]
        );
    }

    #[test]
    fn sub_parts_handles_escapes_and_unclosed_variables() {
        assert_eq!(
            sub_parts("a${B}c${!D}${E"),
            vec![
                SubPart::Literal("a".into()),
                SubPart::Variable("B"),
                SubPart::Literal("c${D}${E".into())
            ]
        );
    }

    #[test]
    fn holes_in_a_range() {
        let mut t = Text::literal("a");
        t.push(Text::hole("one"));
        t.push(Text::literal("b"));
        t.push(Text::hole("two"));
        let second = t.text.rfind(HOLE).unwrap();
        assert_eq!(t.holes_in(second..t.text.len()), ["two"]);
        assert_eq!(t.holes_in(0..t.text.len()), ["one", "two"]);
    }
}
