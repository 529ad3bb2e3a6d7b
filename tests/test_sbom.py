"""`make sbom` (scripts/sbom.py): a CycloneDX 1.5 SBOM of the module's crates.

The SBOM is written for the module `make build` made and validated against CycloneDX's own
1.5 JSON schema (cyclonedx-python-lib's strict validator); its crate list is compared with
`cargo tree -e normal --target wasm32-wasip1 -p bedrock-guard-plugin` (an independent walk of
the same graph, by cargo itself), its checksums with Cargo.lock, its module hash with the file.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import WASM_PATH
from tests.harness.envoy import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "sbom.py"


@pytest.fixture(scope="module")
def sbom(tmp_path_factory) -> dict:
    assert WASM_PATH.is_file(), "run `make build` first"
    out = tmp_path_factory.mktemp("sbom") / "bom.json"
    subprocess.run([sys.executable, str(SCRIPT), "--module", str(WASM_PATH), "--out", str(out)],
                   cwd=REPO_ROOT, check=True, capture_output=True, timeout=120)
    return json.loads(out.read_text())


def cargo_tree(*edges: str) -> set[tuple[str, str]]:
    out = subprocess.run(
        ["cargo", "tree", "-e", ",".join(edges), "--target", "wasm32-wasip1",
         "-p", "bedrock-guard-plugin", "--prefix", "none", "--locked"],
        cwd=REPO_ROOT, check=True, capture_output=True, text=True, timeout=120).stdout
    found = set()
    for line in out.splitlines():
        m = re.match(r"^(\S+) v(\S+)", line)
        assert m, line
        found.add((m.group(1), m.group(2)))
    return found


def test_valid_against_the_cyclonedx_1_5_schema(sbom):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    validator = JsonStrictValidator(SchemaVersion.V1_5)
    assert validator.validate_str(json.dumps(sbom)) is None
    # Control: the validator rejects a field outside the schema.
    broken = json.loads(json.dumps(sbom))
    broken["components"][0]["scope"] = "linked"
    assert validator.validate_str(json.dumps(broken)) is not None


def test_shape(sbom):
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.5"
    assert sbom["version"] == 1
    for c in sbom["components"]:
        assert c["type"] == "library"
        assert c["purl"] == f"pkg:cargo/{c['name']}@{c['version']}" == c["bom-ref"]
        assert [lic.keys() for lic in c["licenses"]] == [{"expression"}], c["name"]
        assert c.get("scope", "required") in ("required", "excluded")
    refs = [c["bom-ref"] for c in sbom["components"]]
    assert len(refs) == len(set(refs)), "bom-refs are unique"
    # Every dependency edge points at a listed component.
    known = set(refs) | {sbom["metadata"]["component"]["bom-ref"]}
    for d in sbom["dependencies"]:
        assert d["ref"] in known and set(d["dependsOn"]) <= known, d


def test_the_module_is_the_metadata_component(sbom):
    module = sbom["metadata"]["component"]
    assert module["type"] == "application" and module["name"] == "bedrock_guard.wasm"
    assert module["hashes"] == [{"alg": "SHA-256",
                                 "content": hashlib.sha256(WASM_PATH.read_bytes()).hexdigest()}]
    [root] = [d for d in sbom["dependencies"] if d["ref"] == module["bom-ref"]]
    assert root["dependsOn"] == ["pkg:cargo/bedrock-guard-plugin@0.1.0"]


def test_lists_exactly_the_plugins_wasm_dependency_graph(sbom):
    listed = {(c["name"], c["version"]) for c in sbom["components"]}
    assert listed == cargo_tree("normal")
    # Not the CLI, not a dev or build dependency.
    names = {n for n, _ in listed}
    assert "bedrock-guard-cli" not in names
    assert "base64" in names  # control: a normal dependency of the engine
    assert not names & {"proptest", "wasm-bindgen-test", "criterion"}


def test_the_graph_is_resolved_for_the_plugin_not_the_workspace(sbom):
    # The engine's `signing` feature (the CLI's, not the plugin's) pulls in crates the module
    # never has: Cargo's workspace-wide resolution (`cargo metadata`) lists them, the plugin's
    # own does not, and neither does the SBOM.
    names = {c["name"] for c in sbom["components"]}
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform",
         "wasm32-wasip1"], cwd=REPO_ROOT, check=True, capture_output=True, text=True,
        timeout=120).stdout)
    workspace = {p["name"] for p in meta["packages"]}
    signing_only = {"hkdf", "pem-rfc7468"}
    assert signing_only <= workspace, "control: the workspace graph holds them"
    assert not names & signing_only, names & signing_only
    assert {"rsa", "p256", "ed25519-dalek"} <= names, "control: the verifiers' crates are listed"


def test_build_time_only_crates_are_marked_excluded(sbom):
    excluded = {c["name"] for c in sbom["components"] if c.get("scope") == "excluded"}
    linked = {n for n, _ in cargo_tree("normal", "no-proc-macro")}
    assert {"serde_derive", "syn", "proc-macro2"} <= excluded
    assert {c["name"] for c in sbom["components"]} - excluded == linked


def test_checksums_are_cargo_locks(sbom):
    lock = {(p["name"], p["version"]): p.get("checksum")
            for p in tomllib.loads((REPO_ROOT / "Cargo.lock").read_text())["package"]}
    for c in sbom["components"]:
        expected = lock[(c["name"], c["version"])]
        if expected is None:  # the workspace's own path crates
            assert "hashes" not in c and c["name"].startswith("bedrock-guard-"), c["name"]
        else:
            assert c["hashes"] == [{"alg": "SHA-256", "content": expected}], c["name"]
    assert sum("hashes" in c for c in sbom["components"]) >= len(sbom["components"]) - 2


def test_licenses_are_the_crates_own(sbom):
    by_name = {c["name"]: c["licenses"][0]["expression"] for c in sbom["components"]}
    assert by_name["proxy-wasm"] == "Apache-2.0"
    assert by_name["bedrock-guard-policies"] == "Apache-2.0"
