//! template.yaml as CloudFormation reads it: YAML with its short tags in their JSON form, and the
//! `AWS::LanguageExtensions` loops stamped out, for the tests that check the template or read from it.

use serde_json::{json, Map, Value};

/// A template in CloudFormation's JSON form: `!Ref X` is `{"Ref": "X"}`, `!GetAtt A.B` is
/// `{"Fn::GetAtt": ["A", "B"]}`, any other `!Tag v` is `{"Fn::Tag": v}`.
pub fn parse(yaml: &str) -> Value {
    let value: serde_norway::Value = serde_norway::from_str(yaml).expect("the template is YAML");
    to_json(value)
}

fn to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                json!(u)
            } else if let Some(i) = n.as_i64() {
                json!(i)
            } else {
                json!(n.as_f64())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_norway::to_string(&other).expect("a key prints").trim_end().to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let inner = to_json(tagged.value);
            match (tag, inner) {
                ("Ref" | "Condition", inner) => json!({ tag: inner }),
                ("GetAtt", Value::String(path)) => {
                    let (resource, attribute) = path.split_once('.').unwrap_or((path.as_str(), ""));
                    json!({ "Fn::GetAtt": [resource, attribute] })
                }
                (tag, inner) => json!({ format!("Fn::{tag}"): inner }),
            }
        }
    }
}

/// The template as CloudFormation sees it after the `AWS::LanguageExtensions` transform: each
/// `Fn::ForEach::*` in Conditions, Resources and Outputs stamped out once per item, and the intrinsics the loop
/// leaves literal (`${Task}`, `!Ref Task`, `!FindInMap` of literals, `!Sub` with nothing left to substitute,
/// `!Select` of a literal index) resolved.
pub fn expand(mut t: Value) -> Value {
    let mappings = t.get("Mappings").cloned().unwrap_or(Value::Null);
    for section in ["Conditions", "Resources", "Outputs"] {
        let Some(entries) = t.get_mut(section).and_then(Value::as_object_mut) else { continue };
        let loops: Vec<String> = entries.keys().filter(|k| k.starts_with("Fn::ForEach::")).cloned().collect();
        for key in loops {
            let looped = entries.remove(&key).expect("listed above");
            let (identifier, items, fragment) = (&looped[0], &looped[1], &looped[2]);
            let identifier = identifier.as_str().expect("a loop's identifier is a string");
            for item in items.as_array().expect("a loop's collection is a literal list") {
                let item = item.as_str().expect("a loop's items are strings");
                let stamped = resolve(&substitute(fragment, identifier, item), &mappings);
                entries.extend(stamped.as_object().expect("a loop's fragment is a map").clone());
            }
        }
    }
    t
}

/// The loop's fragment with `${identifier}` and `!Ref identifier` replaced by the item, keys included.
fn substitute(v: &Value, identifier: &str, item: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace(&format!("${{{identifier}}}"), item)),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, identifier, item)).collect()),
        Value::Object(map) if map.len() == 1 && map.get("Ref") == Some(&json!(identifier)) => json!(item),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.replace(&format!("${{{identifier}}}"), item), substitute(v, identifier, item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `!FindInMap` of literals, `!Sub` whose string has nothing left to substitute, and `!Select` of a literal
/// index in a literal list, as their values.
fn resolve(v: &Value, mappings: &Value) -> Value {
    let v = match v {
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, mappings)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve(v, mappings))).collect()),
        other => return other.clone(),
    };
    if let Some([map, key, field]) = v.get("Fn::FindInMap").and_then(Value::as_array).map(Vec::as_slice) {
        if let (Some(map), Some(key), Some(field)) = (map.as_str(), key.as_str(), field.as_str()) {
            return mappings[map][key][field].clone();
        }
    }
    if let Some([index, Value::Array(items)]) = v.get("Fn::Select").and_then(Value::as_array).map(Vec::as_slice) {
        let index = index.as_u64().or_else(|| index.as_str().and_then(|i| i.parse().ok()));
        if let Some(item) = index.and_then(|i| items.get(usize::try_from(i).ok()?)) {
            return item.clone();
        }
    }
    let sub = match v.get("Fn::Sub") {
        Some(Value::String(s)) => Some((s.clone(), Map::new())),
        Some(Value::Array(pair)) => pair[0].as_str().zip(pair[1].as_object()).map(|(s, m)| (s.to_string(), m.clone())),
        _ => None,
    };
    if let Some((mut text, vars)) = sub {
        for (name, value) in &vars {
            if let Some(value) = value.as_str() {
                text = text.replace(&format!("${{{name}}}"), value);
            }
        }
        if !text.contains("${") {
            return Value::String(text);
        }
    }
    v
}

/// The repository's template.yaml, expanded.
pub fn real() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    expand(parse(&std::fs::read_to_string(path).expect("template.yaml is readable")))
}
