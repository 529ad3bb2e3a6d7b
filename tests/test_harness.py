"""The test PKI and the Envoy config renderer (no Envoy started here), and the rule that Envoy
and boto3 clients are made by one factory each."""

import json
import re
import socket
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from tests.harness.envoy import (
    DEMO_CONFIG, embedded_bundle, free_port, render_config, wasm_plugin_config,
)
from tests.harness.ledger import close_books
from tests.harness.pki import SERVER_DNS_NAMES, ensure_pki


def test_pki_is_generated_once_and_chains_to_its_ca(tmp_path):
    d = ensure_pki(tmp_path / "pki")
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    assert set(before) == {"ca.pem", "ca-key.pem", "server.pem", "server-key.pem"}
    ensure_pki(d)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before  # idempotent
    ca = x509.load_pem_x509_certificate(before["ca.pem"])
    srv = x509.load_pem_x509_certificate(before["server.pem"])
    srv.verify_directly_issued_by(ca)
    san = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == set(SERVER_DNS_NAMES)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert (d / "server-key.pem").stat().st_mode & 0o077 == 0


def test_pki_replaces_a_broken_set(tmp_path):
    d = ensure_pki(tmp_path)
    (d / "server.pem").write_text("garbage")
    ensure_pki(d)
    x509.load_pem_x509_certificate((d / "server.pem").read_bytes())


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_render_config_rewrites_only_what_a_run_owns(tmp_path):
    bundle = {"apiVersion": "bedrock-guard/v1", "kind": "PolicyBundle", "marker": 1}
    out = render_config(11000, 11001, 11002, tmp_path / "pki", tmp_path / "x.wasm", bundle,
                        out_dir=tmp_path)
    cfg = yaml.safe_load(out.read_text())
    original = yaml.safe_load(DEMO_CONFIG.read_text())
    assert cfg["admin"]["address"]["socket_address"] == {"address": "127.0.0.1",
                                                         "port_value": 11001}
    (listener,) = cfg["static_resources"]["listeners"]
    assert listener["address"]["socket_address"]["port_value"] == 11000
    (cluster,) = cfg["static_resources"]["clusters"]
    ep = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert ep["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 11002}
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == str(
        (tmp_path / "pki" / "ca.pem").resolve())
    assert tls["sni"] == "bedrock-runtime.us-east-1.amazonaws.com"
    plugin = wasm_plugin_config(cfg)
    assert plugin["vm_config"]["code"]["local"]["filename"] == str((tmp_path / "x.wasm").resolve())
    assert json.loads(plugin["configuration"]["value"]) == bundle
    assert embedded_bundle(out) == bundle
    # Everything else is as shipped: put the rewritten values back and compare whole trees.
    cfg["admin"] = original["admin"]
    listener["address"] = original["static_resources"]["listeners"][0]["address"]
    cluster["load_assignment"] = original["static_resources"]["clusters"][0]["load_assignment"]
    tls["common_tls_context"]["validation_context"]["trusted_ca"] = (
        original["static_resources"]["clusters"][0]["transport_socket"]["typed_config"]
        ["common_tls_context"]["validation_context"]["trusted_ca"])
    orig_plugin = wasm_plugin_config(original)
    plugin["vm_config"]["code"] = orig_plugin["vm_config"]["code"]
    plugin["configuration"] = orig_plugin["configuration"]
    assert cfg == original


def test_render_config_keeps_the_shipped_bundle_when_none_given(tmp_path):
    out = render_config(1, 2, 3, tmp_path, tmp_path / "x.wasm", None, out_dir=tmp_path)
    assert embedded_bundle(out) == embedded_bundle(DEMO_CONFIG)


# -- one way to start things: the factories of tests/harness --------------------------------------

TESTS = Path(__file__).resolve().parent
FACTORY_ONLY = {
    # pattern: the files allowed to contain it (relative to tests/)
    r"\bEnvoyProcess\(": {"harness/envoy.py", "harness/stack.py", "test_harness.py"},
    r"\bboto3\s*\.\s*client\(": {"harness/clients.py"},
    r"^\s*(?:import\s+boto3\b|from\s+boto3\b)": {"harness/clients.py"},
}


def test_envoy_and_boto3_clients_are_made_by_the_harness_factories_only():
    """Envoy is started through `harness/stack.py` (`envoy_stack`) and boto3 clients are made by
    `harness/clients.py` (`bedrock_client`), so every end-to-end file gets the same binary, log
    files, teardown and retry policy. Elsewhere, use those."""
    files = sorted([*TESTS.glob("*.py"), *(TESTS / "harness").glob("*.py")])
    assert (TESTS / "harness" / "stack.py") in files and (TESTS / "conftest.py") in files
    found: dict[str, set[str]] = {pattern: set() for pattern in FACTORY_ONLY}
    stray = []
    for path in files:
        rel = path.relative_to(TESTS).as_posix()
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for pattern, allowed in FACTORY_ONLY.items():
                if re.search(pattern, line):
                    found[pattern].add(rel)
                    if rel not in allowed:
                        stray.append(f"tests/{rel}:{n}: {line.strip()}")
    assert not stray, ("start Envoy with tests/harness/stack.py (envoy_stack / envoy_process) and "
                       "make boto3 clients with tests/harness/clients.py (bedrock_client):\n"
                       + "\n".join(stray))
    # The factories themselves are where the guard expects them (it is not looking at nothing).
    assert "harness/stack.py" in found[r"\bEnvoyProcess\("], found
    assert found[r"\bboto3\s*\.\s*client\("] == {"harness/clients.py"}, found


def test_ledger_reads_stats_as_envoy_lists_them():
    """`ledger.close_books` compares the audit records with the stats whether Envoy lists the
    module's stats as `bedrock_guard.…` or (1.40's `/stats`) `wasmcustom.bedrock_guard.…`, and
    still fails when they disagree."""
    family = ("bedrock_guard.requests.operation.Converse.model.other.decision.deny"
              ".reason.model_not_allowed.rule.none.group.none")
    records = [{"requestID": f"r{i}", "decision": "deny", "reason": "model_not_allowed",
                "mode": "enforce"} for i in range(3)]
    for prefix in ("", "wasmcustom."):
        before = {prefix + family: 4, prefix + "bedrock_guard.requests_total": 10,
                  prefix + "bedrock_guard.wasm_memory_bytes": 1 << 20}
        after = {**before, prefix + family: 7, prefix + "bedrock_guard.requests_total": 13}
        close_books(records, before, after, sent=3)
        with pytest.raises(AssertionError, match="stats grew by"):
            close_books(records, before, {**after, prefix + family: 6}, sent=3)
