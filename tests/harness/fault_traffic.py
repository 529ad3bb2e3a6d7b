"""Traffic for the fault tests (issue 14): signed requests on fresh connections, each answer
classified, each one matched with its audit record, and Envoy's memory read around a burst.

    burst = Burst(envoy, audit)                   # stats, RSS and the audit log's mark, now
    r = burst.send(CLAUDE, token=tok)             # one signed Converse; returns a Sent
    r.outcome                                     # "allowed" or the refusal's "reason: detail"
    records = burst.close()                       # books closed (ledger.close_books), RSS bound

`Burst.close` takes exactly one audit record per request sent (by `x-request-id`), checks that
each record says what the answer said (an allowed answer has an `allow` record with status 200, a
refusal a `deny` record with the refusal's reason and status), closes the books with the
stats, and checks Envoy's resident memory grew by at most `RSS_GROWTH_BOUND`.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass

from . import rawhttp
from .audit_log import AuditLog
from .awsreq import sign, to_http11, wire_parts
from .clients import BEDROCK_HOST
from .envoy import EnvoyProcess
from .ledger import close_books, parse_records, plain
from .mock_bedrock import REPLY_TEXT

CONVERSE = {"messages": [{"role": "user", "content": [{"text": "Say hello."}]}],
            "inferenceConfig": {"maxTokens": 16}}
CONVERSE_BODY = json.dumps(CONVERSE).encode()

# Envoy's resident memory may grow by at most this much over one fault's burst (a few hundred
# requests). Why 16 MiB: a request's own state is a few KiB (buffers, the audit record, a
# token cache entry of well under 1 KiB) and is freed when it ends, so a few hundred requests
# that leak nothing grow RSS by allocator slack and first-touch pages only (a few MiB measured
# on 1.40); a leak of even 64 KiB per request, or a JWKS/alert queue that kept every failed
# answer or event, would show as tens of MiB. The VM's own heap is bounded separately
# (ledger.WASM_MEMORY_BOUND).
RSS_GROWTH_BOUND = 16 * 1024 * 1024

_seq = itertools.count(1)


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` (VmRSS of /proc/PID/status), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def request_id(tag: str) -> str:
    """A unique request id Envoy keeps as `x-request-id` (letters, digits and `-`)."""
    tag = "".join(c if c.isascii() and c.isalnum() else "-" for c in tag)
    return f"{tag}-{next(_seq):05d}-{uuid.uuid4().hex[:12]}"


def model_path(model: str, operation: str = "converse") -> str:
    return "/model/" + model.replace(":", "%3A") + "/" + operation


def signed_converse(port: int, model: str, rid: str,
                    unsigned_headers: list[tuple[str, str]] = (),
                    timeout: float = 10.0) -> rawhttp.RawResponse:
    """One SigV4-signed Converse for `model` on a fresh connection (so Envoy's workers share
    the load), `x-request-id: rid`, plus `unsigned_headers` added after signing (the way a
    sidecar adds an identity token)."""
    target = model_path(model)
    url = f"http://{BEDROCK_HOST}{target}"
    _, headers, _ = wire_parts(sign("POST", url, CONVERSE_BODY,
                                    {"Content-Type": "application/json"}))
    headers = headers + list(unsigned_headers) + [("x-request-id", rid), ("Connection", "close")]
    data = to_http11("POST", target.encode(), headers, CONVERSE_BODY)
    return rawhttp.exchange(port, data, timeout=timeout)


def outcome_of(resp: rawhttp.RawResponse) -> str:
    """`allowed` (the mock's answer), or the guard's refusal as `reason` / `reason: detail`.
    Anything else (another status, a refusal not shaped like AWS's) fails."""
    if resp.status == 200:
        doc = json.loads(resp.body)
        assert doc["output"]["message"]["content"][0]["text"] == REPLY_TEXT, doc
        return "allowed"
    assert resp.status == 403, (resp.status, resp.body[:300])
    assert resp.header("x-amzn-errortype") == "AccessDeniedException", resp.headers
    msg = json.loads(resp.body)["message"]
    assert msg.startswith("bedrock-guard: "), msg
    reason = resp.header("x-bedrock-guard-reason")
    out = msg[len("bedrock-guard: "):]
    assert out.split(":")[0] == reason, (reason, msg)
    return out


@dataclass
class Sent:
    rid: str
    model: str
    outcome: str
    seconds: float  # how long the answer took
    at: float = 0.0  # time.time() when it was sent
    label: str = ""  # what the test sent (e.g. "valid", "expired")

    @property
    def reason(self) -> str:
        return "allowed" if self.outcome == "allowed" else self.outcome.split(":")[0]


def settled_stats(envoy: EnvoyProcess, before: dict[str, int], n: int,
                  timeout: float = 3.0) -> dict[str, int]:
    """Envoy's stats once `requests_total` has grown by `n` since `before` (Envoy may count a
    request's `on_log` a moment after its access-log line), or after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        after = envoy.stats()
        grown = (plain(after).get("bedrock_guard.requests_total", 0)
                 - plain(before).get("bedrock_guard.requests_total", 0))
        if grown >= n or time.monotonic() > deadline:
            return after
        time.sleep(0.05)


class Burst:
    """One fault's traffic and its books."""

    def __init__(self, envoy: EnvoyProcess, audit: AuditLog, tag: str = "fault"):
        self.envoy = envoy
        self.audit = audit
        self.tag = tag
        self.sent: list[Sent] = []
        self.stats_before = envoy.stats()
        self.mark = audit.mark()
        self.rss_before = rss_bytes(envoy.proc.pid)

    def send(self, model: str, token: str | None = None, *, label: str = "",
             header: str = "x-workload-identity") -> Sent:
        rid = request_id(self.tag)
        extra = [(header, token)] if token is not None else []
        at = time.time()
        start = time.monotonic()
        resp = signed_converse(self.envoy.listener_port, model, rid, extra)
        sent = Sent(rid, model, outcome_of(resp), time.monotonic() - start, at, label)
        self.sent.append(sent)
        return sent

    def allowed(self) -> list[Sent]:
        return [s for s in self.sent if s.outcome == "allowed"]

    def close(self, mock=None) -> list[dict]:
        """The audit records of this burst, after every book is closed (see the module doc).
        With `mock` (the MockBedrock behind Envoy): it received each allowed request exactly
        once and not one refused request."""
        n = len(self.sent)
        records = parse_records(self.audit.take_raw(n, self.mark, timeout=10))
        after = settled_stats(self.envoy, self.stats_before, n)
        close_books(records, self.stats_before, after, sent=n)
        by_id = {r["requestID"]: r for r in records}
        for s in self.sent:
            rec = by_id.get(s.rid)
            assert rec is not None, f"no audit record carries request id {s.rid}"
            if s.outcome == "allowed":
                assert (rec["decision"], rec["reason"], rec["status"]) == ("allow", "allowed", 200), rec
            else:
                assert (rec["decision"], rec["reason"], rec["status"]) == ("deny", s.reason, 403), \
                    (s, rec)
                assert rec["upstreamStatus"] is None, rec
        if mock is not None:
            mine = {s.rid for s in self.sent}
            seen = [v for rec in mock.requests for v in rec.header_values("x-request-id")
                    if v in mine]
            allowed = sorted(s.rid for s in self.allowed())
            assert sorted(seen) == allowed, (
                f"the upstream saw {len(seen)} of this burst's requests, {len(allowed)} were "
                f"allowed; refused ones that reached it: "
                f"{sorted(set(seen) - set(allowed))[:5]}")
        grown = rss_bytes(self.envoy.proc.pid) - self.rss_before
        assert grown <= RSS_GROWTH_BOUND, (
            f"Envoy's RSS grew by {grown / 2**20:.1f} MiB over {n} requests "
            f"(bound {RSS_GROWTH_BOUND / 2**20:.0f} MiB)")
        return records

    def latencies(self) -> list[float]:
        return sorted(s.seconds for s in self.sent)


def median(values: list[float]) -> float:
    v = sorted(values)
    return v[len(v) // 2] if v else 0.0

