//! Strict reading of policy bundles (issue 9): a `null` anywhere is an error under its field
//! path, a member name written with a backslash escape is refused, and so is a duplicate member
//! name at any depth. Every way a bundle enters holds this: `parse_bundle` /
//! `CompiledPolicy::from_json` (what the plugin compiles), the plugin configuration and its
//! signed envelope (`signing::parse_plugin_config`); every CLI command, JSON and YAML, in
//! `cli/tests/cli/strict_input.rs`.

use policies::signing::parse_plugin_config;
use policies::{parse_bundle, BundleError, CompiledPolicy};
use serde_json::{json, Value};

use crate::strict_bundle_support::{base, text, with_escaped_name};

/// Every way the engine takes a bundle: it must refuse `json`, and all of them alike.
fn refused_everywhere(json: &str) -> BundleError {
    let direct = parse_bundle(json.as_bytes()).expect_err("parse_bundle accepted it");
    let compiled = CompiledPolicy::from_json(json.as_bytes()).expect_err("from_json accepted it");
    assert_eq!(direct, compiled);
    // The plugin: the configuration as Envoy hands it, bare and in the signed envelope.
    assert!(
        parse_plugin_config(json.as_bytes()).is_err(),
        "the plugin configuration accepted it"
    );
    let wrapped = format!(r#"{{"bundle": {json}, "signature": "x..y"}}"#);
    let e = parse_plugin_config(wrapped.as_bytes()).expect_err("the envelope accepted it");
    assert!(!e.to_string().is_empty());
    direct
}

/// Set `pointer` (a JSON pointer) of the base bundle to `null`; the bundle must be refused
/// everywhere with exactly one error, at `path`.
fn assert_null_refused_at(pointer: &str, path: &str) {
    let mut v = base();
    *v.pointer_mut(pointer)
        .expect("pointer exists in the base bundle") = Value::Null;
    let e = refused_everywhere(&text(&v));
    let errors = e.field_errors();
    assert_eq!(errors.len(), 1, "{e}");
    assert_eq!(errors[0].path, path, "{e}");
    assert!(
        errors[0].message.starts_with("null is not allowed; "),
        "{}",
        errors[0].message
    );
    assert!(e.has_path(path));
}

#[test]
fn the_base_bundle_is_valid() {
    CompiledPolicy::from_json(text(&base()).as_bytes()).expect("base bundle compiles");
    parse_plugin_config(text(&base()).as_bytes()).expect("plugin configuration opens");
}

// ---------------------------------------------------------------- null, at every depth

#[test]
fn null_top_level_fields_are_refused_by_path() {
    assert_null_refused_at("/mode", "mode");
    assert_null_refused_at("/metadata", "metadata");
    assert_null_refused_at("/identity", "identity");
    assert_null_refused_at("/endpoints", "endpoints");
    assert_null_refused_at("/rules", "rules");
    // `accounts: null` used to read as "omitted" (any account), the widest meaning.
    assert_null_refused_at("/accounts", "accounts");
}

#[test]
fn null_profile_geographies_is_refused_with_the_documented_message() {
    let mut v = base();
    v["network"]["profile_geographies"] = Value::Null;
    let e = refused_everywhere(&text(&v));
    assert_eq!(
        e.to_string(),
        "network.profile_geographies: null is not allowed; omit the field or give a value"
    );
    assert_null_refused_at("/network", "network");
}

#[test]
fn null_rule_members_are_refused_by_path() {
    // `principals: null` would have read as "anyone".
    assert_null_refused_at("/rules/0/principals", "rules[0].principals");
    // `models: null` on a deny rule would have read as "no model list".
    assert_null_refused_at("/rules/1/models", "rules[1].models");
    assert_null_refused_at("/rules/0/operations", "rules[0].operations");
    assert_null_refused_at("/rules/0/id", "rules[0].id");
    assert_null_refused_at("/rules/0/principals/groups", "rules[0].principals.groups");
}

#[test]
fn null_inside_identity_providers_is_refused_by_path() {
    assert_null_refused_at(
        "/identity/providers/0/issuer",
        "identity.providers[0].issuer",
    );
    assert_null_refused_at("/identity/providers/0/jwks", "identity.providers[0].jwks");
    assert_null_refused_at(
        "/identity/providers/0/jwks/keys/0/use",
        "identity.providers[0].jwks.keys[0].use",
    );
    assert_null_refused_at("/identity/providers/0", "identity.providers[0]");
}

#[test]
fn null_inside_a_claims_map_is_refused_by_path() {
    assert_null_refused_at(
        "/rules/0/principals/claims/team",
        "rules[0].principals.claims.team",
    );
    assert_null_refused_at(
        "/rules/0/principals/claims/team/0",
        "rules[0].principals.claims.team[0]",
    );
}

#[test]
fn null_inside_an_array_is_refused_by_path() {
    assert_null_refused_at("/rules/0/models/1", "rules[0].models[1]");
    assert_null_refused_at("/accounts/0", "accounts[0]");
    assert_null_refused_at(
        "/network/profile_geographies/0",
        "network.profile_geographies[0]",
    );
    assert_null_refused_at("/rules/1", "rules[1]");
    let mut v = base();
    v["rules"][0]["models"][0] = Value::Null;
    let e = refused_everywhere(&text(&v));
    assert_eq!(
        e.to_string(),
        "rules[0].models[0]: null is not allowed; remove the element or give a value"
    );
}

#[test]
fn null_in_a_field_the_engine_does_not_know_is_still_a_null_error() {
    // The null check runs before the shape check: it names the path either way.
    let mut v = base();
    v["limits"] = json!({ "max_body_bytes": null });
    v["alerts"] = Value::Null;
    let e = refused_everywhere(&text(&v));
    let paths: Vec<&str> = e.field_errors().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["alerts", "limits.max_body_bytes"], "{e}");
}

#[test]
fn every_null_is_reported_together() {
    let mut v = base();
    v["accounts"] = Value::Null;
    v["network"]["profile_geographies"] = Value::Null;
    v["rules"][0]["principals"] = Value::Null;
    v["rules"][1]["models"] = Value::Null;
    let e = refused_everywhere(&text(&v));
    let mut paths: Vec<&str> = e.field_errors().iter().map(|f| f.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "accounts",
            "network.profile_geographies",
            "rules[0].principals",
            "rules[1].models"
        ]
    );
}

#[test]
fn an_empty_list_still_means_none_and_omitting_still_means_the_default() {
    let mut v = base();
    v["network"]["profile_geographies"] = json!([]);
    CompiledPolicy::from_json(text(&v).as_bytes()).expect("[] is valid");
    v["network"]
        .as_object_mut()
        .unwrap()
        .remove("profile_geographies");
    v.as_object_mut().unwrap().remove("accounts");
    CompiledPolicy::from_json(text(&v).as_bytes()).expect("omitted is valid");
}

#[test]
fn a_null_document_is_refused() {
    assert!(parse_bundle(b"null").is_err());
    assert!(parse_plugin_config(b"null").is_err());
}

// ---------------------------------------------------------------- escaped member names

fn assert_escape_refused(name: &str, escaped: &str, path: &str) {
    let json = with_escaped_name(name, escaped);
    let e = refused_everywhere(&json);
    let BundleError::Json { line, message, .. } = &e else {
        panic!("expected a JSON error for {escaped}, got {e}");
    };
    assert!(*line > 1, "{e}");
    assert_eq!(
        message,
        &format!(
            "{path}: the member name is written with a backslash escape; write member names as plain text"
        ),
    );
}

#[test]
fn escaped_top_level_names_are_refused() {
    assert_escape_refused("mode", r"m\u006fde", "mode");
    assert_escape_refused("rules", r"rul\u0065s", "rules");
    assert_escape_refused("accounts", r"\u0061ccounts", "accounts");
}

#[test]
fn escaped_nested_names_are_refused() {
    assert_escape_refused(
        "profile_geographies",
        r"profile\u005fgeographies",
        "network.profile_geographies",
    );
    assert_escape_refused("effect", r"e\u0066fect", "rules[0].effect");
    assert_escape_refused("issuer", r"issu\u0065r", "identity.providers[0].issuer");
    assert_escape_refused("kty", r"k\u0074y", "identity.providers[0].jwks.keys[0].kty");
}

#[test]
fn escaped_names_in_a_claims_map_are_refused() {
    assert_escape_refused("team", r"t\u0065am", "rules[0].principals.claims.team");
    // Any backslash, even one that decodes to the same character.
    let mut v = base();
    v["rules"][0]["principals"]["claims"] = json!({ "org/team": ["ml"] });
    let t = text(&v);
    CompiledPolicy::from_json(t.as_bytes()).expect("a plain claim name with a slash is fine");
    let e = refused_everywhere(&t.replace(r#""org/team""#, r#""org\/team""#));
    assert!(
        e.to_string().contains("rules[0].principals.claims.org/team: the member name is written with a backslash escape"),
        "{e}"
    );
}

#[test]
fn escapes_in_string_values_are_fine() {
    let json = text(&base()).replacen(r#""name": "corp-idp""#, r#""name": "corp\u002didp""#, 1);
    assert!(json.contains(r"corp\u002didp"));
    let p = CompiledPolicy::from_json(json.as_bytes()).expect("escapes in values are allowed");
    assert_eq!(p.rule_count(), 2);
    parse_plugin_config(json.as_bytes()).expect("and the plugin opens it");
}

// ---------------------------------------------------------------- duplicate names at any depth

#[test]
fn duplicate_member_names_are_refused_at_any_depth() {
    let t = text(&base());
    // Inside an inline JWK: a serde_json map would keep the last one.
    let dup_jwk = t.replacen(r#""kid": "k1","#, r#""kid": "k1", "kid": "k2","#, 1);
    assert_ne!(dup_jwk, t);
    let e = refused_everywhere(&dup_jwk);
    assert!(
        e.to_string()
            .contains(r#"duplicate member name "kid" in identity.providers[0].jwks.keys[0]"#),
        "{e}"
    );
    // In a claims map, and spelled once plainly and once with an escape.
    let dup_claim = t.replacen(r#""team": ["#, r#""team": ["x"], "t\u0065am": ["#, 1);
    assert_ne!(dup_claim, t);
    refused_everywhere(&dup_claim);
    let dup_top = t.replacen(
        r#""mode": "enforce","#,
        r#""mode": "enforce", "mode": "dry-run","#,
        1,
    );
    assert_ne!(dup_top, t);
    refused_everywhere(&dup_top);
}

// ---------------------------------------------------------------- shipped examples

#[test]
fn every_shipped_example_bundle_still_loads_everywhere() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples directory") {
        let path = entry.expect("entry").path();
        let name = path.to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with(".cases.json") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("readable");
        CompiledPolicy::from_json(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let config = parse_plugin_config(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        CompiledPolicy::from_json(&config.canonical).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
    }
    assert!(seen >= 2, "found {seen} example bundles");
}
