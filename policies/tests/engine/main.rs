//! The engine's integration tests, one test binary (`cargo test -p bedrock-guard-policies --test
//! engine`): each file here is a module, named after the part of the engine it covers. One binary
//! instead of one per file keeps linking cheap on small machines. The command line's tests are in
//! its own crate (`cli/tests/cli/`).
//!
//! `tests/wasm.rs` stays a binary of its own: it is also compiled to wasm32-unknown-unknown and
//! run in Node (`make wasm-tests`). Fixtures are in `tests/fixtures/`, proptest's persisted
//! regressions in `tests/proptest-regressions/` (proptest's default place for a crate root named
//! `main.rs`: `tests/proptest-regressions/<module>.txt`).

// Shared helpers. `eventstream_support` is also used by `tests/wasm.rs`, so it stays beside it;
// `identity_support` is also used by the CLI's tests (`cli/tests/cli/main.rs`).
#[path = "../eventstream_support/mod.rs"]
mod eventstream_support;
mod identity_support;
mod strict_bundle_support;

mod audit_record;
mod audit_redaction;
mod bundle_strict_json;
mod bundle_validation;
mod credentials_parse;
mod destination_authority;
mod engine_decide;
mod engine_evaluation;
mod engine_index;
mod engine_order;
mod engine_props;
mod engine_semantics;
mod engine_trace;
mod eventstream_fixture;
mod eventstream_props;
mod eventstream_reader;
mod identity_cache;
mod identity_jwks;
mod identity_verify;
mod jose_provider;
mod matcher_glob;
mod request_body;
mod request_content_type;
mod request_headers;
mod request_model;
mod request_props;
mod request_route;
mod signing_detached_jws;

/// Every test file is in this binary: a file in `tests/engine/` without its `mod` line above
/// would silently never run, and a new `tests/*.rs` would be a binary of its own again.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let main = include_str!("main.rs");
    let mut files = 0;
    for entry in std::fs::read_dir(root.join("engine")).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && stem != "main" {
            files += 1;
            assert!(
                main.contains(&format!("\nmod {stem};\n")),
                "tests/engine/{stem}.rs has no `mod {stem};` in tests/engine/main.rs"
            );
        }
    }
    assert!(files >= 20, "only {files} test files found");
    let binaries: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    assert_eq!(
        binaries,
        vec![root.join("wasm.rs")],
        "only tests/wasm.rs may be a test binary of its own"
    );
}
