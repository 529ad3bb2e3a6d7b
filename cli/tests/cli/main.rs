//! The command line's integration tests, one test binary (`cargo test -p bedrock-guard-cli --test
//! cli`): each file here is a module, named after the command or the behaviour it covers. They run
//! the built `bedrock-guard` (`CARGO_BIN_EXE_bedrock-guard`) in scratch directories, on the example
//! bundles in `policies/examples/`. One binary instead of one per file keeps linking cheap.

// Shared helpers. `identity_support` (fixture keys, token minting) is the engine's, so the CLI's
// tokens are made exactly as the engine's own identity tests make them.
#[path = "../../../policies/tests/engine/identity_support/mod.rs"]
mod identity_support;
#[path = "../../../policies/tests/engine/strict_bundle_support/mod.rs"]
mod strict_bundle_support;
mod support;

mod anchor;
mod caller;
mod check_envoy;
mod digest;
mod docs_policy_reference;
mod ecds;
mod explain;
mod iam;
mod reconcile;
mod report;
mod schema;
mod signing;
mod strict_input;
mod test_cases;
mod token;
mod validate;

/// Every test file is in this binary: a file in `tests/cli/` without its `mod` line above would
/// silently never run, and a new `tests/*.rs` would be a binary of its own.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let main = include_str!("main.rs");
    let mut files = 0;
    for entry in std::fs::read_dir(root.join("cli")).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && stem != "main" {
            files += 1;
            assert!(
                main.contains(&format!("\nmod {stem};\n")),
                "tests/cli/{stem}.rs has no `mod {stem};` in tests/cli/main.rs"
            );
        }
    }
    assert!(files >= 10, "only {files} test files found");
    let binaries: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    assert!(
        binaries.is_empty(),
        "tests/cli/main.rs is the only test binary: {binaries:?}"
    );
}
