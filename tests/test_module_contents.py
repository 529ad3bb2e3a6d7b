"""The released module carries nothing bench-only or test-only.

`bench-trace` (plugin/src/trace.rs) counts host calls and logs a `bedrock-guard trace:` line per
request; only `make bench` builds it. `test-panic` (plugin/src/test_panic.rs) panics on a request
carrying a marker header; only tests/test_e2e_fail_closed.py builds it. The module `make build`
ships must contain neither, and both features must stay out of the plugin's default features.
The markers are read from the modules' sources, so the checks follow them if the text changes
(and the fail-closed test checks that its build does contain its marker).
"""

from __future__ import annotations

import json
import re
import subprocess

from tests.conftest import WASM_PATH
from tests.harness.envoy import REPO_ROOT

TRACE_SOURCE = REPO_ROOT / "plugin" / "src" / "trace.rs"
PANIC_SOURCE = REPO_ROOT / "plugin" / "src" / "test_panic.rs"


def trace_marker() -> bytes:
    found = re.search(r'"(bedrock-guard trace:)', TRACE_SOURCE.read_text())
    assert found, "plugin/src/trace.rs no longer logs `bedrock-guard trace:` lines"
    return found.group(1).encode()


def panic_markers() -> list[bytes]:
    text = PANIC_SOURCE.read_text()
    message = re.search(r'panic!\("(bedrock-guard test-panic:[^"]*)"', text)
    header = re.search(r'MARKER_HEADER: &\[u8\] = b"([a-z-]+)"', text)
    assert message and header, "plugin/src/test_panic.rs changed shape: update this check"
    return [message.group(1).encode(), header.group(1).encode()]


def test_the_shipped_module_has_no_bench_trace():
    module = WASM_PATH.read_bytes()
    assert module.startswith(b"\0asm")
    assert b"bedrock-guard:" in module, "control: the module's own log prefix is found"
    assert trace_marker() not in module


def test_the_shipped_module_has_no_test_panic():
    module = WASM_PATH.read_bytes()
    assert b"bedrock-guard:" in module, "control: the module's own log prefix is found"
    for marker in panic_markers():
        assert marker not in module, marker


def test_bench_trace_and_test_panic_are_not_default_features():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"], cwd=REPO_ROOT,
        capture_output=True, text=True, check=True, timeout=120).stdout)
    [plugin] = [p for p in meta["packages"] if p["name"] == "bedrock-guard-plugin"]
    assert "bench-trace" in plugin["features"]
    assert "bench-trace" not in plugin["features"].get("default", [])
    assert "test-panic" in plugin["features"]
    assert "test-panic" not in plugin["features"].get("default", [])
