"""The test PKI and the Envoy config renderer (no Envoy started here)."""

import json
import socket

import yaml
from cryptography import x509

from tests.harness.envoy import (
    DEMO_CONFIG, embedded_bundle, free_port, render_config, wasm_plugin_config,
)
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
