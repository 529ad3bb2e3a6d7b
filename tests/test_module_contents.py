"""The released module carries nothing bench-only.

`bench-trace` (plugin/src/trace.rs) counts host calls and logs a `bedrock-guard trace:` line per
request; only `make bench` builds it. The module `make build` ships must not contain it, and the
feature must stay out of the plugin's default features. The marker is read from the trace
module's source, so the check follows it if the text changes.
"""

from __future__ import annotations

import json
import re
import subprocess

from tests.conftest import WASM_PATH
from tests.harness.envoy import REPO_ROOT

TRACE_SOURCE = REPO_ROOT / "plugin" / "src" / "trace.rs"


def trace_marker() -> bytes:
    found = re.search(r'"(bedrock-guard trace:)', TRACE_SOURCE.read_text())
    assert found, "plugin/src/trace.rs no longer logs `bedrock-guard trace:` lines"
    return found.group(1).encode()


def test_the_shipped_module_has_no_bench_trace():
    module = WASM_PATH.read_bytes()
    assert module.startswith(b"\0asm")
    assert b"bedrock-guard:" in module, "control: the module's own log prefix is found"
    assert trace_marker() not in module


def test_bench_trace_is_not_a_default_feature():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"], cwd=REPO_ROOT,
        capture_output=True, text=True, check=True, timeout=120).stdout)
    [plugin] = [p for p in meta["packages"] if p["name"] == "bedrock-guard-plugin"]
    assert "bench-trace" in plugin["features"]
    assert "bench-trace" not in plugin["features"].get("default", [])
