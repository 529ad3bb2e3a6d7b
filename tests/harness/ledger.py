"""The books every fault test closes: requests sent, audit records written, stats counted.

Issue 14 asks the same four things of every injected fault: every request is decided (nothing
fails open), there is exactly one audit record per request (resets included), the stats agree
with the records, and memory stays bounded. `close_books` checks the last three from what a test
collected; the first is the test's own (it knows which answers were allowed).

* `records` are the audit lines of the run, parsed (`AuditLog.take(sent, since)` already fails
  on a missing or an extra line, and on a `-` line when `allow_unrecorded` is 0).
* The stats are Envoy's admin `/stats` (`EnvoyProcess.stats`), read before and after the run so
  a module-scoped stack can be shared: `bedrock_guard.requests_total` and the labelled
  `bedrock_guard.requests.….decision.D.reason.R.…` family must have grown by exactly what the
  records say, per (decision, reason).
* `settled_stats(proc, before, n)` reads the "after" stats once `requests_total` has grown by
  `n` and the labelled family has stopped moving (Envoy may count a request's `on_log` a moment
  after its access-log line is written), or after `timeout`, whichever comes first.
* Memory: the VM's linear memory (`bedrock_guard.wasm_memory_bytes`, refreshed every second by
  the root context's tick) must stay under `WASM_MEMORY_BOUND`, the bound docs/operations.md
  states for a VM under load.
"""

from __future__ import annotations

import collections
import re
import time

from .audit_log import NO_RECORD, parse_line

# docs/operations.md "Bounds": one VM's linear memory under load (issue 12's target, met by
# `make bench-scale`: 2.75 MiB with 1,000 open streams).
WASM_MEMORY_BOUND = 8 * 1024 * 1024

_FAMILY = re.compile(r"^bedrock_guard\.requests\.operation\.[^.]+\.model\..+?"
                     r"\.decision\.(allow|deny|dry_run_deny)\.reason\.([a-z_]+)\.rule\..+\.group\..+$")


# Envoy 1.40 lists a Wasm module's own stats under `wasmcustom.` in the admin `/stats` output.
_WASM_PREFIX = "wasmcustom."


def plain(stats: dict[str, int]) -> dict[str, int]:
    """`stats` with the `wasmcustom.` prefix Envoy puts on the module's stats removed, so
    `bedrock_guard.…` names read the same whichever way Envoy lists them."""
    return {(k[len(_WASM_PREFIX):] if k.startswith(_WASM_PREFIX) else k): v
            for k, v in stats.items()}


def decisions_in_stats(stats: dict[str, int]) -> collections.Counter:
    """The labelled `requests` family summed per (decision, reason)."""
    out: collections.Counter = collections.Counter()
    for name, value in plain(stats).items():
        found = _FAMILY.match(name)
        if found:
            out[(found.group(1), found.group(2))] += value
    return out


def decisions_in_records(records: list[dict]) -> collections.Counter:
    """The audit records counted per (decision, reason), in the stats' spelling."""
    out: collections.Counter = collections.Counter()
    for rec in records:
        decision = rec["decision"]
        if decision == "deny" and rec.get("mode") == "dry-run":
            decision = "dry_run_deny"  # let through; the stats count it apart
        out[(decision, rec["reason"])] += 1
    return out


def parse_records(lines: list[str]) -> list[dict]:
    """Audit lines to records; a `-` line (no decision recorded) fails here."""
    assert NO_RECORD not in lines, (
        f"{lines.count(NO_RECORD)} request(s) left no audit record (`-`)")
    return [parse_line(line) for line in lines]


def close_books(records: list[dict], before: dict[str, int], after: dict[str, int],
                sent: int | None = None) -> None:
    """One record per request, unique request ids, stats grown by exactly what the records say,
    and the VM's memory under its bound."""
    if sent is not None:
        assert len(records) == sent, f"{sent} requests sent, {len(records)} audit records"
    ids = [r["requestID"] for r in records]
    dupes = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert not dupes, f"request ids recorded more than once: {dupes[:5]}"
    before, after = plain(before), plain(after)
    grown = decisions_in_stats(after)
    grown.subtract(decisions_in_stats(before))
    grown = +grown  # drop zero entries
    assert grown == decisions_in_records(records), (
        f"stats grew by {dict(grown)}, the audit records say {dict(decisions_in_records(records))}")
    total = after.get("bedrock_guard.requests_total", 0) - before.get("bedrock_guard.requests_total", 0)
    assert total == len(records), f"requests_total grew by {total}, {len(records)} records"
    memory = after.get("bedrock_guard.wasm_memory_bytes")
    assert memory is not None, "bedrock_guard.wasm_memory_bytes is not reported"
    assert 0 < memory <= WASM_MEMORY_BOUND, (
        f"wasm memory {memory} bytes, bound {WASM_MEMORY_BOUND}")


def settled_stats(proc, before: dict[str, int], n: int, timeout: float = 3.0) -> dict[str, int]:
    """`proc.stats()` once `requests_total` has grown by `n` since `before` and the labelled
    family has stopped moving (two equal reads 50 ms apart), or after `timeout`."""
    deadline = time.monotonic() + timeout
    key = "bedrock_guard.requests_total"
    start = plain(before).get(key, 0)
    last = None
    while True:
        now = proc.stats()
        family = decisions_in_stats(now)
        if plain(now).get(key, 0) - start >= n and family == last:
            return now
        if time.monotonic() >= deadline:
            return now
        last = family
        time.sleep(0.05)
