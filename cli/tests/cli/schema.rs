//! `bedrock-guard schema`: the JSON Schema agrees with the real validation.

use crate::support::*;
use serde_json::{json, Map, Value};

fn schema() -> Value {
    let out = run(&["schema"]);
    assert_eq!(out.code, 0, "{}", out.all());
    serde_json::from_str(&out.stdout).unwrap()
}

/// Follow a local `$ref`.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').unwrap();
            resolve(root, root.pointer(pointer).unwrap())
        }
        None => node,
    }
}

/// Every member name used in `instance` must be declared by the schema at that place.
fn check_names(root: &Value, schema: &Value, instance: &Value, path: &str) {
    let schema = resolve(root, schema);
    match instance {
        Value::Object(members) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (name, value) in members {
                let sub = props
                    .and_then(|p| p.get(name))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
                    .unwrap_or_else(|| panic!("{path}.{name} is not in the schema"));
                check_names(root, sub, value, &format!("{path}.{name}"));
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_names(root, item_schema, item, &format!("{path}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

/// A minimal instance of the right shape (not necessarily valid): enough for `parse_bundle`,
/// which checks shape only.
fn minimal(root: &Value, schema: &Value) -> Value {
    let schema = resolve(root, schema);
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        return e[0].clone();
    }
    if let Some(d) = schema.get("default") {
        return d.clone();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let mut m = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                m.insert(name.into(), minimal(root, &schema["properties"][name]));
            }
            Value::Object(m)
        }
        Some("array") => json!([]),
        Some("string") => json!("x"),
        Some("integer") => json!(1),
        Some("boolean") => json!(false),
        other => panic!("no minimal instance for {other:?}: {schema}"),
    }
}

/// Every object schema that says `additionalProperties: false`, with the instance path that
/// reaches it (array steps as `[]`).
fn closed_objects<'a>(
    root: &'a Value,
    schema: &'a Value,
    path: &str,
    out: &mut Vec<(String, &'a Value)>,
) {
    let schema = resolve(root, schema);
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        out.push((path.to_string(), schema));
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let p = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            closed_objects(root, sub, &p, out);
        }
    }
    if let Some(items) = schema.get("items") {
        closed_objects(root, items, &format!("{path}[]"), out);
    }
}

/// Build `{...}` with an object at `path` (array steps become one-element arrays) holding
/// `leaf`.
fn nest(path: &str, leaf: Value) -> Value {
    if path.is_empty() {
        return leaf;
    }
    let (head, rest) = match path.find('.') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (path, ""),
    };
    let inner = nest(rest, leaf);
    let (name, inner) = match head.strip_suffix("[]") {
        Some(name) => (name, json!([inner])),
        None => (head, inner),
    };
    json!({ name: inner })
}

#[test]
fn demo_bundle_uses_only_names_the_schema_declares() {
    let root = schema();
    let demo: Value = serde_json::from_str(&demo_text()).unwrap();
    check_names(&root, &root, &demo, "");
}

#[test]
fn schema_is_draft_2020_12_and_closed_at_the_top() {
    let root = schema();
    assert_eq!(
        root["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(root["additionalProperties"], false);
    assert_eq!(
        root["properties"]["apiVersion"]["const"],
        "bedrock-guard/v1"
    );
    let required: Vec<&str> = root["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for r in ["apiVersion", "kind", "metadata", "endpoints"] {
        assert!(required.contains(&r), "{r}");
    }
    let ops = root["$defs"]["rule"]["properties"]["operations"]["items"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(ops.len(), policies::Operation::ALL.len());
}

#[test]
fn every_top_level_property_is_accepted_by_parse_bundle() {
    let root = schema();
    for (name, sub) in root["properties"].as_object().unwrap() {
        let doc = json!({ name: minimal(&root, sub) });
        let parsed = policies::parse_bundle(doc.to_string().as_bytes());
        assert!(parsed.is_ok(), "{name}: {doc} -> {parsed:?}");
    }
}

#[test]
fn parse_bundle_knows_no_top_level_property_the_schema_lacks() {
    let root = schema();
    let declared: Vec<&String> = root["properties"].as_object().unwrap().keys().collect();
    // serde's unknown-field message lists every field the struct accepts.
    let err = policies::parse_bundle(br#"{"bogus": 1}"#)
        .unwrap_err()
        .to_string();
    let listed = err.split("expected one of ").nth(1).unwrap();
    for field in listed.split(", ") {
        let field = field.trim().trim_matches('`');
        assert!(
            declared.iter().any(|d| d.as_str() == field),
            "{field} is missing from the schema"
        );
    }
}

#[test]
fn an_unknown_top_level_property_is_refused_by_both() {
    let root = schema();
    assert_eq!(root["additionalProperties"], false);
    assert!(root["properties"].get("bogus").is_none());
    let err = policies::parse_bundle(br#"{"bogus": 1}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `bogus`"), "{err}");
}

#[test]
fn every_closed_object_in_the_schema_refuses_unknown_members_in_parse_bundle() {
    let root = schema();
    let mut closed = Vec::new();
    closed_objects(&root, &root, "", &mut closed);
    assert!(closed.len() >= 10, "{}", closed.len());
    for (path, object_schema) in closed {
        let mut object = minimal(&root, object_schema);
        object
            .as_object_mut()
            .unwrap()
            .insert("x-unknown-member".into(), json!(1));
        let doc = nest(&path, object);
        let err = policies::parse_bundle(doc.to_string().as_bytes())
            .expect_err(&format!("{path}: an unknown member was accepted: {doc}"));
        assert!(
            err.to_string().contains("unknown field `x-unknown-member`"),
            "{path}: {err}"
        );
    }
}

#[test]
fn every_declared_member_of_a_closed_object_is_accepted_by_parse_bundle() {
    let root = schema();
    let mut closed = Vec::new();
    closed_objects(&root, &root, "", &mut closed);
    for (path, object_schema) in closed {
        let mut object = minimal(&root, object_schema);
        for (name, sub) in object_schema["properties"].as_object().unwrap() {
            object
                .as_object_mut()
                .unwrap()
                .insert(name.clone(), minimal(&root, sub));
        }
        let doc = nest(&path, object);
        let parsed = policies::parse_bundle(doc.to_string().as_bytes());
        assert!(parsed.is_ok(), "{path}: {doc} -> {parsed:?}");
    }
}
