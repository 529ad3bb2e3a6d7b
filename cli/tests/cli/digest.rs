//! `bedrock-guard digest`: sha256 of the canonical form, stable across formatting and formats.

use crate::support::*;

fn digest_of(s: &Scratch, name: &str, text: &str) -> String {
    let f = s.write(name, text);
    let out = s.run(&["digest", &f]);
    assert_eq!(out.code, 0, "{}", out.all());
    out.stdout.trim().to_string()
}

#[test]
fn digest_is_sha256_hex() {
    let s = Scratch::new("digest");
    let d = digest_of(&s, "demo.json", &demo_text());
    assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
    assert!(d[7..]
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}

#[test]
fn digest_ignores_key_order_and_whitespace() {
    let s = Scratch::new("digest-order");
    let original = digest_of(&s, "a.json", &demo_text());
    let value: serde_json::Value = serde_json::from_str(&demo_text()).unwrap();
    let compact = digest_of(&s, "b.json", &value.to_string());
    // Reverse every object's member order.
    fn reverse(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Object(m) => {
                let members: Vec<String> = m
                    .iter()
                    .rev()
                    .map(|(k, v)| {
                        format!(
                            "\n   {} :\t{}",
                            serde_json::Value::from(k.as_str()),
                            reverse(v)
                        )
                    })
                    .collect();
                format!("{{{}}}", members.join(","))
            }
            serde_json::Value::Array(a) => {
                format!(
                    "[ {} ]",
                    a.iter().map(reverse).collect::<Vec<_>>().join(" , ")
                )
            }
            other => other.to_string(),
        }
    }
    let reordered = digest_of(&s, "c.json", &reverse(&value));
    assert_eq!(original, compact);
    assert_eq!(original, reordered);
}

#[test]
fn yaml_and_json_have_the_same_digest() {
    let s = Scratch::new("digest-yaml");
    assert_eq!(
        digest_of(&s, "demo.json", &demo_text()),
        digest_of(&s, "demo.yaml", DEMO_YAML)
    );
}

#[test]
fn a_changed_value_changes_the_digest() {
    let s = Scratch::new("digest-change");
    let changed = demo_text().replace("\"revision\": \"1\"", "\"revision\": \"2\"");
    assert_ne!(
        digest_of(&s, "a.json", &demo_text()),
        digest_of(&s, "b.json", &changed)
    );
}

#[test]
fn digest_matches_the_library() {
    let s = Scratch::new("digest-lib");
    let text = demo_text();
    assert_eq!(
        digest_of(&s, "demo.json", &text),
        policies::canonical::digest(text.as_bytes()).unwrap()
    );
}

#[test]
fn digest_refuses_non_integers() {
    let s = Scratch::new("digest-float");
    let f = s.write("f.json", "{\"limits\": {\"max_body_bytes\": 1e6}}");
    let out = s.run(&["digest", &f]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            "f.json:1:33: error: number 1000000 is written with a fraction or an exponent"
        ),
        "{}",
        out.all()
    );
}
