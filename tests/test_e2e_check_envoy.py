"""`bedrock-guard check-envoy` on a live Envoy's `/config_dump` (issue 10, item 2).

A real Envoy runs the guard: `envoy/demo.yaml` (the filter inline) and `envoy/hot-reload.yaml`
(the filter's configuration through ECDS, written by `bedrock-guard ecds`), each as shipped
apart from ports, paths and CA. Their admin `/config_dump?include_eds` is clean. The same dump
without its `EcdsConfigDump` section is reported as a guard whose configuration cannot be seen
(so the clean answer came from reading the ECDS resource, not from overlooking the filter). A
live Envoy with `merge_slashes: true` on the guarded listener is reported, with the finding's
path, and the command exits 1.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.harness import ecds
from tests.harness.envoy import REPO_ROOT, free_port, render_config
from tests.harness.stack import WASM_PATH, envoy_stack

DEMO_BUNDLE = REPO_ROOT / "policies" / "examples" / "demo.json"


def live_dump(config: Path, admin: int, listener: int, work: Path) -> dict:
    """Start Envoy on `config` and return its `/config_dump?include_eds`."""
    with envoy_stack(config, admin, listener, work) as proc:
        status, body = proc.admin("GET", "/config_dump?include_eds")
    assert status == 200, body[:500]
    return json.loads(body)


def check(cli: Path, dump: dict, work: Path, name: str) -> tuple[int, list[dict]]:
    path = work / name
    path.write_text(json.dumps(dump))
    proc = subprocess.run([str(cli), "check-envoy", "--json", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    return proc.returncode, out["findings"]


def guard_configs(dump: dict) -> list[dict]:
    found = []

    def walk(n):
        if isinstance(n, dict):
            if n.get("root_id") == "bedrock_guard":
                found.append(n)
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)
    walk(dump)
    return found


def test_a_live_demo_envoy_is_clean(cli, pki_dir, tmp_path):
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, free_port(), pki_dir, WASM_PATH, None, out_dir=tmp_path)
    dump = live_dump(cfg, admin, listener, tmp_path)
    listeners = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")]
    assert len(guard_configs(listeners)) == 1, "the live listener does not hold the inline guard"
    status, findings = check(cli, dump, tmp_path, "demo-dump.json")
    assert (status, findings) == (0, [])


def test_a_live_ecds_envoy_is_clean_and_its_ecds_section_is_what_was_checked(cli, pki_dir,
                                                                              tmp_path):
    ecds_dir = tmp_path / "ecds"
    made = subprocess.run([str(cli), "ecds", str(DEMO_BUNDLE), "--out-dir", str(ecds_dir),
                           "--wasm", str(WASM_PATH)], capture_output=True, text=True)
    assert made.returncode == 0, made.stdout + made.stderr
    listener, admin = free_port(), free_port()
    cfg = ecds.render(tmp_path, pki_dir, listener, admin, free_port(), ecds_dir)
    dump = live_dump(cfg, admin, listener, tmp_path)
    types = [c["@type"].rsplit(".", 1)[-1] for c in dump["configs"]]
    assert "EcdsConfigDump" in types, types
    status, findings = check(cli, dump, tmp_path, "ecds-dump.json")
    assert (status, findings) == (0, [])

    without = {"configs": [c for c in dump["configs"]
                           if not c["@type"].endswith("EcdsConfigDump")]}
    status, findings = check(cli, without, tmp_path, "no-ecds-dump.json")
    assert status == 0
    assert [(f["severity"], f["code"], f["path"]) for f in findings] == [
        ("warning", "guard-config-unseen",
         "listener[egress_http]/filter_chain[0]/hcm/http_filters[0:bedrock_guard]")]


def test_a_live_envoy_that_merges_slashes_is_reported_with_its_path(cli, pki_dir, tmp_path):
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, free_port(), pki_dir, WASM_PATH, None, out_dir=tmp_path)
    doc = yaml.safe_load(cfg.read_text())
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    hcm["typed_config"]["merge_slashes"] = True
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    dump = live_dump(cfg, admin, listener, tmp_path)
    status, findings = check(cli, dump, tmp_path, "merge-dump.json")
    assert status == 1
    assert [(f["severity"], f["code"], f["path"]) for f in findings] == [
        ("error", "merge-slashes", "listener[egress_http]/filter_chain[0]/hcm/merge_slashes")]
