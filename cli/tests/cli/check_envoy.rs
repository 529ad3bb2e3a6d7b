//! `bedrock-guard check-envoy`: one fixture per finding (`tests/cli/check_envoy/`), each
//! triggering exactly its finding at its path; every shipped Envoy config is clean; the config
//! dump shapes (admin `/config_dump`, egctl's protojson wrapper, ECDS, RDS, TypedStruct).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::*;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/check_envoy")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const GUARD: &str = "listener[egress]/filter_chain[0]/hcm/http_filters[0:bedrock_guard]";
const HCM: &str = "listener[egress]/filter_chain[0]/hcm";
const ROUTE: &str =
    "listener[egress]/filter_chain[0]/hcm/route_config[bedrock]/virtual_host[bedrock]/route[0]";

/// (fixture, severity, code, path); a fixture of this table triggers exactly that finding.
fn expected() -> Vec<(&'static str, &'static str, &'static str, String)> {
    let routed = format!("{ROUTE}/cluster[bedrock_vpce]");
    vec![
        ("guard-missing", "error", "guard-missing", "listeners".into()),
        (
            "guard-missing-bypass",
            "error",
            "guard-missing",
            "listener[unguarded]/filter_chain[0]/hcm/route_config[bedrock]/virtual_host[bedrock]/route[0]".into(),
        ),
        (
            "guard-not-first",
            "error",
            "guard-not-first",
            format!("{HCM}/http_filters[1:bedrock_guard]"),
        ),
        (
            "guard-fail-open",
            "error",
            "guard-fail-open",
            format!("{GUARD}/failure_policy"),
        ),
        ("guard-config-unseen", "warning", "guard-config-unseen", GUARD.into()),
        ("body-not-held", "warning", "body-not-held", GUARD.into()),
        (
            "body-not-held-buffer-only",
            "warning",
            "body-not-held",
            GUARD.into(),
        ),
        (
            "body-headers-leave",
            "error",
            "body-headers-leave",
            format!("{GUARD}/vm_config/environment_variables/key_values/BEDROCK_GUARD_HOLD_BODY"),
        ),
        (
            "hold-body-invalid",
            "error",
            "hold-body-invalid",
            format!("{GUARD}/vm_config/environment_variables/key_values/BEDROCK_GUARD_HOLD_BODY"),
        ),
        ("bundle-invalid", "error", "bundle-invalid", GUARD.into()),
        (
            "bundle-copies-differ",
            "error",
            "bundle-copies-differ",
            "listener[egress_b]/filter_chain[0]/hcm/http_filters[0:bedrock_guard]".into(),
        ),
        ("normalize-path", "error", "normalize-path", format!("{HCM}/normalize_path")),
        ("merge-slashes", "error", "merge-slashes", format!("{HCM}/merge_slashes")),
        (
            "escaped-slashes",
            "error",
            "escaped-slashes",
            format!("{HCM}/path_with_escaped_slashes_action"),
        ),
        (
            "escaped-slashes-unset",
            "warning",
            "escaped-slashes-unset",
            format!("{HCM}/path_with_escaped_slashes_action"),
        ),
        ("upgrade-configs", "error", "upgrade-configs", format!("{HCM}/upgrade_configs")),
        ("cluster-not-pinned", "error", "cluster-not-pinned", routed.clone()),
        ("cluster-not-pinned-static", "error", "cluster-not-pinned", routed.clone()),
        ("cluster-not-pinned-original-dst", "error", "cluster-not-pinned", routed.clone()),
        ("cluster-not-pinned-dfp", "error", "cluster-not-pinned", routed.clone()),
        ("cluster-endpoints-unseen", "warning", "cluster-endpoints-unseen", routed),
        ("upstream-tls-missing", "error", "upstream-tls-missing", "cluster[bedrock_vpce]".into()),
        (
            "upstream-tls-version",
            "error",
            "upstream-tls-version",
            "cluster[bedrock_vpce]/transport_socket/common_tls_context/tls_params/tls_minimum_protocol_version".into(),
        ),
        (
            "upstream-cert-unverified",
            "error",
            "upstream-cert-unverified",
            "cluster[bedrock_vpce]/transport_socket/common_tls_context".into(),
        ),
        (
            "upstream-san-unchecked",
            "error",
            "upstream-san-unchecked",
            "cluster[bedrock_vpce]/transport_socket/common_tls_context".into(),
        ),
        (
            "upstream-sni-from-request",
            "warning",
            "upstream-sni-from-request",
            "cluster[bedrock_vpce]".into(),
        ),
        ("audit-log-missing", "error", "audit-log-missing", format!("{HCM}/access_log")),
        (
            "overload-unbounded",
            "warning",
            "overload-unbounded",
            "overload_manager".into(),
        ),
        (
            "routes-unseen",
            "warning",
            "routes-unseen",
            "listener[egress]/filter_chain[0]/hcm/rds[bedrock]".into(),
        ),
        (
            "egctl-all",
            "error",
            "merge-slashes",
            "pod[envoy-gateway-system/envoy-bedrock-egress-7d9f]/listener[egress]/filter_chain[0]/hcm/merge_slashes".into(),
        ),
    ]
}

/// The fixtures with nothing to report.
const CLEAN: &[&str] = &["clean", "clean-buffer"];

/// `check-envoy --json FILE` run in `dir`: (exit status, findings).
fn check_in(dir: &Path, file: &Path) -> (i32, Vec<Value>, String) {
    let out = run_in(
        dir,
        &["check-envoy", "--json", &file.to_string_lossy()],
        None,
    );
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", file.display(), out.all()));
    let findings = v["findings"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        v["errors"].as_u64().unwrap() + v["warnings"].as_u64().unwrap(),
        findings.len() as u64
    );
    (out.code, findings, out.all())
}

fn fixture(name: &str) -> PathBuf {
    let dir = fixtures_dir();
    for ext in ["yaml", "json"] {
        let p = dir.join(format!("{name}.{ext}"));
        if p.is_file() {
            return p;
        }
    }
    panic!("no fixture {name}.yaml or {name}.json in {}", dir.display());
}

#[test]
fn each_fixture_triggers_exactly_its_finding_at_its_path() {
    let s = Scratch::new("check-envoy");
    for (name, severity, code, path) in expected() {
        let (status, findings, all) = check_in(&s.dir, &fixture(name));
        assert_eq!(findings.len(), 1, "{name}: {all}");
        let f = &findings[0];
        assert_eq!(f["code"], code, "{name}: {all}");
        assert_eq!(f["severity"], severity, "{name}: {all}");
        assert_eq!(f["path"], path.as_str(), "{name}: {all}");
        assert!(!f["message"].as_str().unwrap().is_empty());
        let want = if severity == "error" { 1 } else { 0 };
        assert_eq!(status, want, "{name}: exit status, {all}");
    }
    for name in CLEAN {
        let (status, findings, all) = check_in(&s.dir, &fixture(name));
        assert_eq!((status, findings.len()), (0, 0), "{name}: {all}");
    }
}

#[test]
fn every_fixture_file_is_in_the_table_and_every_code_is_documented() {
    let table = expected();
    let mut files = 0;
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        files += 1;
        assert!(
            table.iter().any(|(n, ..)| *n == stem) || CLEAN.contains(&stem.as_str()),
            "fixture {} has no expectation in check_envoy.rs",
            path.display()
        );
    }
    assert_eq!(files, table.len() + CLEAN.len());
    let docs = std::fs::read_to_string(repo_root().join("docs/cli.md")).unwrap();
    for (_, severity, code, _) in &table {
        let row = docs
            .lines()
            .find(|l| l.starts_with(&format!("| `{code}` |")))
            .unwrap_or_else(|| panic!("docs/cli.md has no table row for `{code}`"));
        assert!(
            row.contains(&format!("| {severity} |")),
            "docs/cli.md row for {code} does not say {severity}: {row}"
        );
    }
}

#[test]
fn the_text_output_is_one_line_per_finding_and_a_count() {
    let out = run(&["check-envoy", &fixture("merge-slashes").to_string_lossy()]);
    assert_eq!(out.code, 1, "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "error  {HCM}/merge_slashes  merge-slashes: slash merging rewrites the path the \
             client signed (set merge_slashes: false)"
        )
    );
    assert!(
        lines[1].ends_with(": 1 error, 0 warnings"),
        "{}",
        out.stdout
    );
    let warned = run(&["check-envoy", &fixture("body-not-held").to_string_lossy()]);
    assert_eq!(warned.code, 0, "warnings alone pass: {}", warned.all());
    assert!(warned.stdout.starts_with("warning  "), "{}", warned.stdout);
}

#[test]
fn unreadable_or_unrecognised_input_exits_2_naming_the_file() {
    let s = Scratch::new("check-envoy-bad");
    let f = s.write("bundle.json", &demo_text());
    let out = s.run(&["check-envoy", &f]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("bundle.json: not an Envoy bootstrap"),
        "{}",
        out.stderr
    );
    let out = s.run(&["check-envoy", "missing.yaml"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("missing.yaml"), "{}", out.stderr);
    let f = s.write("broken.yaml", "static_resources: [\n");
    let out = s.run(&["check-envoy", &f]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("broken.yaml: not valid YAML"),
        "{}",
        out.stderr
    );
}

/// Every shipped Envoy configuration (`envoy/*.yaml`, globbed so new ones are covered) is
/// clean: no errors and no warnings. The ECDS ones read the guard's configuration from the
/// file `bedrock-guard ecds` writes (as `make validate` does), relative to the working
/// directory, as Envoy reads it.
#[test]
fn every_shipped_envoy_config_is_clean() {
    let s = Scratch::new("check-envoy-shipped");
    let made = s.run(&[
        "ecds",
        &example("demo.json").to_string_lossy(),
        "--out-dir",
        ".build/ecds",
    ]);
    assert_eq!(made.code, 0, "{}", made.all());
    let mut checked = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(repo_root().join("envoy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let (status, findings, all) = check_in(&s.dir, &path);
        assert_eq!(
            (status, findings.len()),
            (0, 0),
            "{}: {all}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} shipped configs found");
}

/// Without the ECDS file, the hot-reload config's guard cannot be checked: a warning, not a
/// silent pass.
#[test]
fn an_ecds_guard_whose_file_is_missing_is_reported() {
    let s = Scratch::new("check-envoy-ecds-missing");
    let (status, findings, all) = check_in(&s.dir, &repo_root().join("envoy/hot-reload.yaml"));
    assert_eq!(status, 0, "{all}");
    assert_eq!(findings.len(), 1, "{all}");
    assert_eq!(findings[0]["code"], "guard-config-unseen");
}

#[test]
fn overload_unbounded_names_what_the_overload_manager_lacks() {
    let s = Scratch::new("check-envoy-overload");
    let clean = std::fs::read_to_string(fixture("clean")).unwrap();
    // Only the connection limit (the block ends with its actions): the heap bound is reported.
    let (no_actions, _) = clean.split_once("\n  actions:\n").unwrap();
    let f = s.write("no-heap.yaml", &format!("{no_actions}\n"));
    let (status, findings, all) = check_in(&s.dir, Path::new(&f));
    assert_eq!((status, findings.len()), (0, 1), "{all}");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(message.contains("no heap bound"), "{message}");
    assert!(!message.contains("no connection limit"), "{message}");
    // Only the heap bound: the connection limit is reported.
    let monitor = "  - name: envoy.resource_monitors.global_downstream_max_connections\n    typed_config:\n      \"@type\": type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig\n      max_active_downstream_connections: 1024\n";
    assert!(clean.contains(monitor));
    let f = s.write("no-cx.yaml", &clean.replace(monitor, ""));
    let (_, findings, all) = check_in(&s.dir, Path::new(&f));
    assert_eq!(findings.len(), 1, "{all}");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(message.contains("no connection limit"), "{message}");
    assert!(!message.contains("no heap bound"), "{message}");
}
