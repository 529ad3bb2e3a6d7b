//! The policy reference (`docs/policy.md`) is checked against the bundle schema the CLI prints:
//! every property the schema knows is documented.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

fn property_names(node: &Value, out: &mut BTreeSet<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, sub) in props {
                    out.insert(name.clone());
                    property_names(sub, out);
                }
            }
            for (key, sub) in map {
                if key != "properties" {
                    property_names(sub, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| property_names(i, out)),
        _ => {}
    }
}

#[test]
fn every_schema_property_is_documented_in_the_policy_reference() {
    let out = Command::new(env!("CARGO_BIN_EXE_bedrock-guard"))
        .arg("schema")
        .output()
        .expect("run bedrock-guard schema");
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).expect("schema is JSON");
    let mut names = BTreeSet::new();
    property_names(&schema, &mut names);
    assert!(names.len() > 40, "schema walk found too little: {names:?}");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.md"))
        .expect("docs/policy.md");
    let documented = |name: &str| {
        [
            format!("`{name}"),
            format!(".{name}`"),
            format!(".{name}["),
            format!("{name}."),
        ]
        .iter()
        .any(|needle| doc.contains(needle.as_str()))
    };
    let missing: Vec<&String> = names.iter().filter(|n| !documented(n)).collect();
    assert!(missing.is_empty(), "not in docs/policy.md: {missing:?}");
}
