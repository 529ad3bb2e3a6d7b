"""`make soak` (bench/soak.py) kept from rotting: a 20-second run through a real Envoy must pass
and write its results, and the verdict must fail on each criterion it exists for.

The full run (30 minutes) is not part of `make test`; bench/README.md, "Soak", has it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.harness.audit_log import AUDIT_KEYS
from tests.harness.envoy import REPO_ROOT
from tests.harness.stack import require_envoy

SCRIPT = REPO_ROOT / "bench" / "soak.py"
TOP_KEYS = {"date", "envoy_version", "wasm_bytes", "config", "requests", "unexpected", "audit",
            "upstream", "jwks_fetches", "token_cache_fill_seconds", "memory", "work_dir",
            "criteria", "passed"}
CRITERIA = {"rss_growth_after_warmup", "unexpected_status", "audit_records_equal_requests",
            "upstream_saw_exactly_the_allowed"}


@pytest.fixture(scope="module")
def soak():
    spec = importlib.util.spec_from_file_location("soak", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_a_short_soak_passes_and_writes_every_result(tmp_path):
    require_envoy()
    out = tmp_path / "soak-results.json"
    env = {**os.environ, "SOAK_SECONDS": "20", "SOAK_WARMUP_SECONDS": "6",
           "SOAK_SAMPLE_SECONDS": "2", "SOAK_RPS": "40", "SOAK_OUT": str(out),
           "SOAK_WORK_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "soak: PASSED" in proc.stdout
    result = json.loads(out.read_text())
    assert set(result) == TOP_KEYS, sorted(result)
    assert set(result["criteria"]) == CRITERIA and result["passed"] is True
    assert all(c["ok"] for c in result["criteria"].values()), result["criteria"]
    sent = result["requests"]["sent"]
    # 40 requests/s for 20 s, give or take the last answers.
    assert 700 <= sent <= 800, sent
    # Every kind of the mix went out and got what it must.
    by_kind = result["requests"]["by_kind"]
    assert set(by_kind) == set(result["config"]["mix"])
    assert all(row["sent"] > 0 and row["unexpected"] == 0 for row in by_kind.values()), by_kind
    assert result["unexpected"] == {"count": 0, "by_kind": {}, "examples": []}
    # One strict audit record per request, decisions as the mix expects.
    audit = result["audit"]
    assert audit["records"] == audit["lines"] == sent
    assert audit["no_record"] == audit["invalid"] == 0
    assert audit["by_reason"] == result["requests"]["expected_reasons"]
    assert {"allow/allowed", "deny/model_denied", "deny/model_not_allowed",
            "deny/identity_missing", "deny/identity_invalid"} == set(audit["by_reason"])
    assert result["upstream"]["forwarded"] == result["requests"]["allowed"]
    assert result["upstream"]["bad_signature"] == 0
    assert result["jwks_fetches"] >= 1
    assert result["work_dir"] is None  # removed after a pass
    assert result["envoy_version"].startswith("1.")
    # Memory: a sample every 2 s, each with RSS and the three stats.
    samples = result["memory"]["samples"]
    assert len(samples) >= 10, samples
    assert all(s["rss"] > 0 and s["bedrock_guard.wasm_memory_bytes"] > 0
               and s["server.memory_allocated"] > 0 for s in samples), samples
    rss = result["memory"]["rss"]
    assert rss["samples"] >= 7 and 0 <= rss["growth_bytes"] <= 2 * 1024 * 1024, rss


def _result(soak, **over):
    """A result as main() builds it, passing, with `over` applied to its parts."""
    result = {
        "memory": {"rss": {"growth_bytes": 1024}},
        "unexpected": {"count": 0},
        "requests": {"sent": 3, "allowed": 2,
                     "expected_reasons": {"allow/allowed": 2, "deny/model_denied": 1}},
        "audit": {"lines": 3, "records": 3, "no_record": 0, "invalid": 0,
                  "by_reason": {"allow/allowed": 2, "deny/model_denied": 1}},
        "upstream": {"forwarded": 2, "bad_signature": 0},
    }
    for part, values in over.items():
        result[part].update(values)
    return result


def failing(soak, **over) -> set[str]:
    return {name for name, c in soak.criteria(_result(soak, **over)).items() if not c["ok"]}


def test_the_verdict_fails_on_each_criterion(soak):
    assert failing(soak) == set()
    assert failing(soak, memory={"rss": {"growth_bytes": 2 * 1024 * 1024}}) == set()
    assert failing(soak, memory={"rss": {"growth_bytes": 2 * 1024 * 1024 + 1}}) == {
        "rss_growth_after_warmup"}
    # Too few samples after warm-up to measure growth: not a pass.
    assert failing(soak, memory={"rss": {"samples": 1}}) == {"rss_growth_after_warmup"}
    assert failing(soak, unexpected={"count": 1}) == {"unexpected_status"}
    assert failing(soak, audit={"lines": 2, "records": 2}) == {"audit_records_equal_requests"}
    assert failing(soak, audit={"lines": 4, "records": 3, "no_record": 1}) == {
        "audit_records_equal_requests"}
    assert failing(soak, audit={"lines": 4, "records": 3, "invalid": 1}) == {
        "audit_records_equal_requests"}
    assert failing(soak, audit={"by_reason": {"allow/allowed": 3}}) == {
        "audit_records_equal_requests"}
    assert failing(soak, upstream={"forwarded": 3}) == {"upstream_saw_exactly_the_allowed"}
    assert failing(soak, upstream={"bad_signature": 1}) == {"upstream_saw_exactly_the_allowed"}


def test_growth_is_measured_after_warm_up_only(soak):
    mib = 1024 * 1024
    samples = [{"t": 0, "rss": 10 * mib}, {"t": 10, "rss": 100 * mib},  # warm-up: ignored
               {"t": 20, "rss": 50 * mib}, {"t": 30, "rss": 53 * mib},
               {"t": 40, "rss": 51 * mib}, {"t": 50, "rss": None}]
    g = soak.growth(samples, "rss", warmup=20)
    assert g["samples"] == 3 and g["first"] == 50 * mib and g["max"] == 53 * mib
    assert g["growth_bytes"] == 3 * mib and g["last"] == 51 * mib
    # Least squares over (20, 50), (30, 53), (40, 51): 0.05 MiB per second.
    assert g["slope_bytes_per_hour"] == round(0.05 * mib * 3600)
    assert soak.growth(samples, "rss", warmup=45) == {"samples": 0}


def test_audit_lines_are_counted_by_kind(soak):
    record = {k: None for k in AUDIT_KEYS}
    allowed = json.dumps({**record, "decision": "allow", "reason": "allowed"})
    denied = json.dumps({**record, "decision": "deny", "reason": "model_denied"})
    counts = soak.audit_counts([allowed, "-", denied, "{not json", allowed,
                                json.dumps({"decision": "allow"})])
    assert counts["lines"] == 6 and counts["records"] == 3
    assert counts["no_record"] == 1 and counts["invalid"] == 2
    assert counts["by_reason"] == {"allow/allowed": 2, "deny/model_denied": 1}
