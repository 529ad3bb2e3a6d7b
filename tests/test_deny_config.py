"""deny.toml (`make deny`, cargo-deny) passes on the tree and is not vacuous: with one licence
the graph uses taken out of the allow list, or crates.io taken out of the allowed registries,
or a wildcard version requirement, the same check fails on it. cargo-deny comes from
`make deny` (installed from crates.io when missing), which `make test` runs first."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness.envoy import REPO_ROOT

DENY = REPO_ROOT / "deny.toml"


def cargo_deny(*check: str, config: Path = DENY, cwd: Path = REPO_ROOT):
    if shutil.which("cargo-deny") is None:
        pytest.fail("cargo-deny is not installed: run `make deny` (it installs it)", pytrace=False)
    return subprocess.run(["cargo", "deny", "--locked", "--config", str(config),
                           "check", "--hide-inclusion-graph", *check],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_tree_passes():
    done = cargo_deny("licenses", "bans", "sources")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bans ok, licenses ok, sources ok" in done.stdout + done.stderr


def test_a_licence_left_out_of_the_allow_list_is_refused(tmp_path):
    config = tmp_path / "deny.toml"
    text = DENY.read_text()
    assert '    "ISC",\n' in text
    config.write_text(text.replace('    "ISC",\n', ""))
    done = cargo_deny("licenses", config=config)
    assert done.returncode != 0
    # simple_asn1 (a dependency of jsonwebtoken) is ISC only.
    assert "rejected: license is not explicitly allowed" in done.stderr, done.stderr[-2000:]
    assert "simple_asn1" in done.stderr


def test_a_registry_other_than_the_allowed_ones_is_refused(tmp_path):
    config = tmp_path / "deny.toml"
    text = DENY.read_text()
    allowed = 'allow-registry = ["https://github.com/rust-lang/crates.io-index"]'
    assert allowed in text
    config.write_text(text.replace(allowed, 'allow-registry = ["https://example.invalid/index"]'))
    done = cargo_deny("sources", config=config)
    assert done.returncode != 0
    assert "source not explicitly allowed" in done.stderr, done.stderr[-2000:]


def test_a_wildcard_version_is_refused(tmp_path):
    """A copy of the workspace whose engine asks for `serde = "*"`."""
    copy = tmp_path / "ws"
    for rel in ("Cargo.toml", "Cargo.lock", "deny.toml"):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, copy / rel)
    for member in ("policies", "plugin", "cli", "bench/floor"):
        shutil.copytree(REPO_ROOT / member, copy / member,
                        ignore=shutil.ignore_patterns("target", "fuzz"))
    manifest = copy / "policies" / "Cargo.toml"
    text = manifest.read_text()
    assert "serde.workspace = true" in text
    manifest.write_text(text.replace("serde.workspace = true",
                                     'serde = { version = "*", features = ["derive"] }'))
    done = cargo_deny("bans", config=copy / "deny.toml", cwd=copy)
    assert done.returncode != 0
    assert "wildcard" in done.stderr, done.stderr[-2000:]
