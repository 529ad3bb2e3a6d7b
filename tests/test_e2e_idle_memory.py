"""The shipped `memory_allocator_manager` block gives V8's compile-time memory back, for real.

V8 compiles the whole guard module when it loads; the allocator keeps what the compiler used and
freed unless Envoy asks it to return free memory (envoy/overload/memory_allocator_manager.yaml,
carried by every shipped bootstrap). This runs the demo config as shipped, with the guard, and
reads Envoy's `/memory`: memory is returned to the system (`pageheap_unmapped` above 0) within a
few seconds of start, and the free page heap it holds is smaller than without the block. The
control is the same config with the block taken out: nothing is ever returned. The bootstrap
overrides shipped for Istio (envoy/istio/stats-bootstrap.yaml) and Envoy Gateway
(envoy/envoy-gateway/envoyproxy-stats.yaml) carry the same block: each is merged here into the
demo config without its block and without its stats tags (as a control plane's bootstrap would
be), with Envoy's own `--config-yaml` merge, and memory is returned. The resident-memory
figures themselves are `make bench`'s ("idle after start"), not a test's: they depend on the
machine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

import pytest

from tests.harness.envoy import free_port, render_config
from tests.harness.stack import WASM_PATH, envoy_stack

ALLOCATOR = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "envoy" / "overload"
     / "memory_allocator_manager.yaml").read_text())
ENVOY_DIR = Path(__file__).resolve().parent.parent / "envoy"
# What each platform's shipped manifest merges into the bootstrap its control plane generates.
OVERRIDES = {
    "istio": lambda: json.loads(yaml.safe_load(
        (ENVOY_DIR / "istio" / "stats-bootstrap.yaml").read_text())["data"]["custom_bootstrap.json"]),
    "envoy-gateway": lambda: yaml.safe_load(yaml.safe_load(
        (ENVOY_DIR / "envoy-gateway" / "envoyproxy-stats.yaml").read_text())["spec"]["bootstrap"]["value"]),
}
SETTLE_SECONDS = 4.0  # the release runs every second; the VMs are up before Envoy is ready


def demo(work: Path, pki_dir: Path, upstream: int, *, release: bool,
         stats_tags: bool = True) -> tuple[Path, int, int]:
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, upstream, pki_dir, WASM_PATH, None, out_dir=work)
    doc = yaml.safe_load(cfg.read_text())
    assert doc["memory_allocator_manager"] == ALLOCATOR, "envoy/demo.yaml lost the shipped block"
    if not release:
        del doc["memory_allocator_manager"]
    if not stats_tags:
        del doc["stats_config"]["stats_tags"]
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    return cfg, admin, listener


def memory_after_settling(proc) -> dict[str, int]:
    """Envoy's `/memory` (tcmalloc's figures) once the VMs are up and the release has had time."""
    loaded = proc.stats().get("wasmcustom.bedrock_guard.bundles_loaded", 0)
    assert loaded >= 1, "control: the guard is up with its bundle"
    time.sleep(SETTLE_SECONDS)
    status, body = proc.admin("GET", "/memory")
    assert status == 200, body
    return {k: int(v) for k, v in json.loads(body).items()}


def test_the_shipped_block_returns_free_memory_and_without_it_none_is(tmp_path, pki_dir, mock):
    figures = {}
    for release in (True, False):
        work = tmp_path / f"release-{release}"
        work.mkdir()
        cfg, admin, listener = demo(work, pki_dir, mock.port, release=release)
        with envoy_stack(cfg, admin, listener, work, concurrency=1) as proc:
            figures[release] = memory_after_settling(proc)
    shipped, without = figures[True], figures[False]
    assert without["pageheap_unmapped"] == 0, f"control: nothing returned without the block {without}"
    assert shipped["pageheap_unmapped"] > 1 << 20, f"the shipped block returned nothing: {shipped}"
    assert shipped["pageheap_free"] < without["pageheap_free"], (shipped, without)
    # What the application uses is the same either way: only free memory is returned.
    assert abs(shipped["allocated"] - without["allocated"]) < 4 << 20, (shipped, without)


@pytest.mark.parametrize("platform", sorted(OVERRIDES))
def test_the_platform_override_brings_the_block(tmp_path, pki_dir, mock, platform):
    override = OVERRIDES[platform]()
    assert override["memory_allocator_manager"] == ALLOCATOR
    cfg, admin, listener = demo(tmp_path, pki_dir, mock.port, release=False, stats_tags=False)
    with envoy_stack(cfg, admin, listener, tmp_path, concurrency=1,
                     extra_args=["--config-yaml", json.dumps(override)]) as proc:
        merged = memory_after_settling(proc)
    assert merged["pageheap_unmapped"] > 1 << 20, f"{platform}: nothing returned {merged}"
