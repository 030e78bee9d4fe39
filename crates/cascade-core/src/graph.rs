//! What depends on what inside a template: `Ref`, `Fn::GetAtt`, `Fn::Sub` and `DependsOn`
//! between resources, and the outputs that name resources.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::eval::{SubPart, single_entry, sub_parts};

/// The resources of a template and, for each, the resources it depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyGraph {
    depends_on: BTreeMap<String, BTreeSet<String>>,
}

impl DependencyGraph {
    /// Builds the graph of a long-form template.
    pub fn of(template: &Value) -> Self {
        let resources = resource_ids(template);
        let depends_on = template
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(id, body)| {
                let mut deps = names_referenced(body, &resources);
                if let Some(explicit) = body.get("DependsOn") {
                    let explicit = match explicit {
                        Value::String(s) => vec![s.as_str()],
                        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                        _ => Vec::new(),
                    };
                    deps.extend(
                        explicit
                            .into_iter()
                            .filter(|d| resources.contains(*d))
                            .map(str::to_string),
                    );
                }
                deps.remove(id);
                (id.clone(), deps)
            })
            .collect();
        DependencyGraph { depends_on }
    }

    /// The logical ids of every resource.
    pub fn resources(&self) -> impl Iterator<Item = &String> {
        self.depends_on.keys()
    }

    /// The resources that `id` depends on directly.
    pub fn dependencies_of(&self, id: &str) -> Option<&BTreeSet<String>> {
        self.depends_on.get(id)
    }

    /// `roots` and every resource that depends on one of them, directly or through others:
    /// what must go when `roots` are removed.
    pub fn dependants_closure(&self, roots: &BTreeSet<String>) -> BTreeSet<String> {
        let mut closure: BTreeSet<String> = roots
            .iter()
            .filter(|r| self.depends_on.contains_key(*r))
            .cloned()
            .collect();
        loop {
            let before = closure.len();
            for (id, deps) in &self.depends_on {
                if !closure.contains(id) && deps.iter().any(|d| closure.contains(d)) {
                    closure.insert(id.clone());
                }
            }
            if closure.len() == before {
                return closure;
            }
        }
    }
}

/// The logical ids of a template's resources.
pub fn resource_ids(template: &Value) -> BTreeSet<String> {
    template
        .get("Resources")
        .and_then(Value::as_object)
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default()
}

/// The outputs that name any of `resources` (by `Ref`, `Fn::GetAtt` or `Fn::Sub`).
pub fn outputs_naming(template: &Value, resources: &BTreeSet<String>) -> Vec<String> {
    template
        .get("Outputs")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, body)| !names_referenced(body, resources).is_empty())
        .map(|(name, _)| name.clone())
        .collect()
}

/// The names among `candidates` that `node` refers to through `Ref`, `Fn::GetAtt` or
/// `Fn::Sub` variables (variables of the `Fn::Sub` mapping form shadow them).
pub fn names_referenced(node: &Value, candidates: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    collect(node, candidates, &mut found);
    found
}

fn collect(node: &Value, candidates: &BTreeSet<String>, found: &mut BTreeSet<String>) {
    match node {
        Value::Array(items) => items.iter().for_each(|i| collect(i, candidates, found)),
        Value::Object(map) => {
            if let Some((function, arg)) = single_entry(map) {
                match function {
                    "Ref" => {
                        if let Some(name) = arg.as_str() {
                            insert_if(name, candidates, found);
                        }
                    }
                    "Fn::GetAtt" => {
                        let target = match arg {
                            Value::String(s) => s.split('.').next(),
                            Value::Array(items) => items.first().and_then(Value::as_str),
                            _ => None,
                        };
                        if let Some(target) = target {
                            insert_if(target, candidates, found);
                        }
                    }
                    "Fn::Sub" => {
                        let (pattern, vars) = match arg {
                            Value::String(s) => (Some(s.as_str()), None),
                            Value::Array(items) => (
                                items.first().and_then(Value::as_str),
                                items.get(1).and_then(Value::as_object),
                            ),
                            _ => (None, None),
                        };
                        for part in pattern.map(sub_parts).unwrap_or_default() {
                            if let SubPart::Variable(name) = part {
                                if vars.is_some_and(|v| v.contains_key(name)) {
                                    continue;
                                }
                                let target = name.split('.').next().unwrap_or(name);
                                insert_if(target, candidates, found);
                            }
                        }
                    }
                    _ => {}
                }
            }
            map.values().for_each(|v| collect(v, candidates, found));
        }
        _ => {}
    }
}

fn insert_if(name: &str, candidates: &BTreeSet<String>, found: &mut BTreeSet<String>) {
    if candidates.contains(name) {
        found.insert(name.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn template() -> Value {
        json!({
            "Resources": {
                "Db": {"Type": "AWS::RDS::DBInstance"},
                "Fn": {"Type": "AWS::Lambda::Function",
                       "Properties": {"Env": {"Fn::Sub": "${Db.Endpoint.Address}:${Port}"}}},
                "Alias": {"Type": "AWS::Lambda::Alias", "Properties": {"FunctionName": {"Ref": "Fn"}}},
                "Perm": {"Type": "AWS::Lambda::Permission",
                         "Properties": {"FunctionName": {"Fn::GetAtt": ["Alias", "Arn"]}}},
                "After": {"Type": "AWS::SNS::Topic", "DependsOn": ["Perm"]},
                "Shadow": {"Type": "AWS::SNS::Topic",
                           "Properties": {"N": {"Fn::Sub": ["${Db}", {"Db": "x"}]}}},
                "Alone": {"Type": "AWS::SNS::Topic", "DependsOn": "Missing"}
            },
            "Outputs": {
                "FnArn": {"Value": {"Fn::GetAtt": "Fn.Arn"}},
                "Other": {"Value": {"Ref": "Alone"}},
                "Plain": {"Value": "x"}
            }
        })
    }

    #[test]
    fn edges_come_from_ref_getatt_sub_and_depends_on() {
        let g = DependencyGraph::of(&template());
        assert_eq!(g.dependencies_of("Fn").unwrap(), &set(&["Db"]));
        assert_eq!(g.dependencies_of("Alias").unwrap(), &set(&["Fn"]));
        assert_eq!(g.dependencies_of("Perm").unwrap(), &set(&["Alias"]));
        assert_eq!(g.dependencies_of("After").unwrap(), &set(&["Perm"]));
        assert!(g.dependencies_of("Shadow").unwrap().is_empty());
        assert!(g.dependencies_of("Alone").unwrap().is_empty());
    }

    #[test]
    fn closure_is_transitive_over_dependants_only() {
        let g = DependencyGraph::of(&template());
        assert_eq!(
            g.dependants_closure(&set(&["Fn"])),
            set(&["Fn", "Alias", "Perm", "After"])
        );
        assert_eq!(g.dependants_closure(&set(&["After"])), set(&["After"]));
        assert!(g.dependants_closure(&set(&["Nope"])).is_empty());
    }

    #[test]
    fn outputs_naming_the_closure() {
        let t = template();
        assert_eq!(outputs_naming(&t, &set(&["Fn", "Alias"])), ["FnArn"]);
        assert_eq!(outputs_naming(&t, &set(&["Alone"])), ["Other"]);
    }
}
