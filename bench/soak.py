"""`make soak`: one Envoy with the guard under mixed traffic for a long time (default 30 minutes).

One Envoy (`envoy/demo.yaml` as the end-to-end tests render it: the shipped listener, filter,
upstream TLS and audit access log; `--concurrency 2`, the access log in its own file) with a second
listener that is a copy of the first whose bundle adds an `identity` block: provider `soak`, keys
from a local JWKS server (`remote_jwks`, refreshed every 30 s) and the demo's Claude/Titan rule
restricted to group `ml`. Both listeners send to one mock Bedrock (`tests/harness/mock_bedrock.py`:
TLS, every SigV4 signature verified) whose ConverseStream answers carry `SOAK_STREAM_FRAMES`
content deltas, cut into 128-byte chunks.

Worker threads send a fixed mix (`MIX`) at `SOAK_RPS` requests per second in all: boto3 for
Converse, ConverseStream, InvokeModel and InvokeModelWithResponseStream, raw SigV4-signed HTTP for
the body-carried ChatCompletions; allowed requests, refused ones (a denied model, an unlisted
model, an unlisted model in a body, and on the identity listener a missing token, a tampered
token, a token of the wrong group) and, on the identity listener, a freshly minted token per
request. Each answer is checked against what its kind must get: the status, for a refusal the
`x-bedrock-guard-reason`, for an allowed answer its content (every stream frame). Anything else
is *unexpected*, counted per kind with examples.

Every `SOAK_SAMPLE_SECONDS` (10) the sampler reads Envoy's VmRSS (/proc/PID/status) and, from
admin /stats, `server.memory_allocated`, `server.memory_heap_size` and
`bedrock_guard.wasm_memory_bytes`. The first `SOAK_WARMUP_SECONDS` (300) are warm-up; growth is
the largest sample after warm-up less the first sample after warm-up, and a least-squares slope
over the same samples is reported per hour.

At the end the access log's lines are counted (records, `-` lines, lines that are not a strict
audit record) and compared with the requests sent, and the records' decisions per reason with
what the mix expects; the upstream must have seen exactly the allowed requests, each signature
valid. The run passes when RSS growth is at most 2 MiB, no answer was unexpected, and there are
as many audit records as requests (no `-`, no invalid line, decisions as expected). It prints a
table, writes `bench/soak-results.json` (or `SOAK_OUT`) and exits 1 when a criterion fails.
The work directory (rendered config, Envoy's application and access logs; under `SOAK_WORK_DIR`,
else the system's temporary directory) is removed after a pass unless `SOAK_KEEP` is set, and
kept after a failure.

    SOAK_SECONDS=1800 SOAK_WARMUP_SECONDS=300 SOAK_RPS=60 .venv/bin/python bench/soak.py
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# An application's own AWS configuration must not reach the clients: cleared before botocore
# is imported (as tests/conftest.py does).
from tests.harness.isolation import isolate  # noqa: E402

isolate()

import yaml  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from tests.harness import eventstream, rawhttp  # noqa: E402
from tests.harness.audit_log import NO_RECORD, parse_line  # noqa: E402
from tests.harness.awsreq import sign, to_http11, wire_parts  # noqa: E402
from tests.harness.clients import BEDROCK_HOST, bedrock_client  # noqa: E402
from tests.harness.envoy import (  # noqa: E402
    EnvoyError, envoy_binary, free_port, render_config, wasm_plugin_config,
)
from tests.harness.jwks_server import JwksServer, add_static_cluster  # noqa: E402
from tests.harness.mock_bedrock import (  # noqa: E402
    REPLY_TEXT, MockBedrock, RecordedRequest, _Reply, _split,
)
from tests.harness.pki import ensure_pki  # noqa: E402
from tests.harness.stack import WASM_PATH, envoy_process  # noqa: E402
from tests.harness.tokens import SigningKey, claims, with_payload  # noqa: E402

RESULTS = ROOT / "bench" / "soak-results.json"
DEMO_BUNDLE = ROOT / "policies" / "examples" / "demo.json"
GROWTH_LIMIT_BYTES = 2 * 1024 * 1024  # issue 14: Envoy's memory flat after warm-up, <= 2 MiB

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
TITAN = "amazon.titan-text-express-v1"
CHAT_MODEL = "openai.gpt-oss-20b-1:0"
OPUS = "anthropic.claude-opus-4-1-20250805-v1:0"  # the demo's deny rule `no-opus`
UNLISTED = "meta.llama3-70b-instruct-v1:0"  # no allow rule names it
CHAT = "/openai/v1/chat/completions"
IDENTITY_HEADER = "x-workload-identity"
ISSUER = "https://soak.idp.test"
AUDIENCE = "bedrock-egress"
JWKS_PATH = "/.well-known/jwks.json"
REASON_HEADER = "x-bedrock-guard-reason"
MESSAGES = [{"role": "user", "content": [{"text": "Say hello."}]}]
STREAM_CHUNK_BYTES = 128
SAMPLED_STATS = ("server.memory_allocated", "server.memory_heap_size",
                 "bedrock_guard.wasm_memory_bytes")
MAX_EXAMPLES = 10
# policies/src/identity/cache.rs DEFAULT_CACHE_CAPACITY: verified tokens kept per VM.
TOKEN_CACHE_CAPACITY = 1024
ENVOY_WORKERS = 2  # envoy_process's --concurrency: one guard VM per worker
# The kinds that carry a valid, freshly minted token (each a new cache entry).
FRESH_VALID_TOKENS = ("identity_converse", "identity_stream", "identity_wrong_group")


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix: what it is, how often, and what it must get."""
    name: str
    weight: int
    listener: str  # "plain" (demo bundle) or "identity" (the bundle with an identity block)
    status: int
    reason: str  # the audit record's reason (and the refusal's x-bedrock-guard-reason)


MIX = (
    Kind("converse", 3, "plain", 200, "allowed"),
    Kind("converse_stream", 3, "plain", 200, "allowed"),
    Kind("invoke", 1, "plain", 200, "allowed"),
    Kind("invoke_stream", 1, "plain", 200, "allowed"),
    Kind("chat_body", 2, "plain", 200, "allowed"),
    Kind("chat_body_unlisted", 1, "plain", 403, "model_not_allowed"),
    Kind("denied_model", 1, "plain", 403, "model_denied"),
    Kind("unlisted_model", 1, "plain", 403, "model_not_allowed"),
    Kind("identity_converse", 3, "identity", 200, "allowed"),
    Kind("identity_stream", 1, "identity", 200, "allowed"),
    Kind("identity_missing_token", 1, "identity", 403, "identity_missing"),
    Kind("identity_bad_token", 1, "identity", 403, "identity_invalid"),
    Kind("identity_wrong_group", 1, "identity", 403, "model_not_allowed"),
)
KINDS = {k.name: k for k in MIX}


# ------------------------------------------------------------------------------------ upstream

class SoakMock(MockBedrock):
    """The mock Bedrock with long ConverseStream answers, keeping counts instead of every
    request (a 30-minute run would otherwise hold ~100,000 recorded bodies)."""

    def __init__(self, *args, frames: int, **kwargs):
        super().__init__(*args, stream_chunk_size=STREAM_CHUNK_BYTES, **kwargs)
        self.frames = frames
        self.counts: collections.Counter = collections.Counter()

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.counts["forwarded"] += 1
            self.counts["bad_signature"] += not rec.signature_ok
            self.counts[f"op:{rec.operation}"] += 1

    def _op_ConverseStream(self, rec: RecordedRequest) -> _Reply:
        n, m = self._tokens(rec)
        events = [("messageStart", {"role": "assistant"})]
        events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f"t{i:04d} "}})
                   for i in range(self.frames)]
        events += [("contentBlockStop", {"contentBlockIndex": 0}),
                   ("messageStop", {"stopReason": "end_turn"}),
                   ("metadata", {"usage": {"inputTokens": n, "outputTokens": m,
                                           "totalTokens": n + m}, "metrics": {"latencyMs": 12}})]
        stream = b"".join(eventstream.encode_event(t, json.dumps(p).encode()) for t, p in events)
        return _Reply(200, [("Content-Type", "application/vnd.amazon.eventstream")],
                      chunks=_split(stream, self.stream_chunk_size))


# ------------------------------------------------------------------------------------ config

def identity_bundle(jwks_cluster: str) -> dict:
    """The demo bundle with provider `soak` (remote JWKS) and its Claude/Titan rule for group
    `ml` only."""
    bundle = json.loads(DEMO_BUNDLE.read_text())
    bundle["metadata"]["name"] = "demo-identity"
    bundle["identity"] = {"header": IDENTITY_HEADER, "providers": [{
        "name": "soak", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
        "leeway_seconds": 5,
        "remote_jwks": {"cluster": jwks_cluster, "path": JWKS_PATH, "refresh_seconds": 30,
                        "max_stale_seconds": 600}}]}
    rules = [r for r in bundle["rules"] if r["id"] == "claude-and-titan"]
    if len(rules) != 1:
        raise SystemExit("policies/examples/demo.json: no rule claude-and-titan to restrict")
    rules[0]["principals"] = {"groups": ["ml"]}
    return bundle


def render(work: Path, pki: Path, upstream: int, jwks_port: int) -> tuple[Path, dict[str, int]]:
    """envoy/demo.yaml rendered as the end-to-end tests do, plus a copy of its listener whose
    filter carries the identity bundle, and the JWKS cluster."""
    ports = {"plain": free_port(), "identity": free_port(), "admin": free_port()}
    bundle = json.loads(DEMO_BUNDLE.read_text())
    path = render_config(ports["plain"], ports["admin"], upstream, pki, WASM_PATH, bundle,
                         out_dir=work)
    add_static_cluster(path, "soak_jwks", jwks_port)
    cfg = yaml.safe_load(path.read_text())
    listeners = cfg["static_resources"]["listeners"]
    second = json.loads(json.dumps(listeners[0]))
    second["name"] = "egress_http_identity"
    second["address"]["socket_address"]["port_value"] = ports["identity"]
    wasm_plugin_config(second)["configuration"]["value"] = json.dumps(
        identity_bundle("soak_jwks"), indent=2)
    listeners.append(second)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path, ports


# ------------------------------------------------------------------------------------ traffic

@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: collections.Counter = field(default_factory=collections.Counter)
    unexpected: collections.Counter = field(default_factory=collections.Counter)
    examples: list = field(default_factory=list)
    latency: dict = field(default_factory=lambda: collections.defaultdict(list))

    def add(self, kind: Kind, problem: str | None, seconds: float) -> None:
        with self.lock:
            self.sent[kind.name] += 1
            lat = self.latency[kind.name]
            if len(lat) < 20000:
                lat.append(seconds)
            if problem is not None:
                self.unexpected[kind.name] += 1
                if len(self.examples) < MAX_EXAMPLES:
                    self.examples.append({"kind": kind.name, "at": round(time.time(), 3),
                                          "problem": problem[:500]})


def check_refusal(kind: Kind, status: int, reason: str | None) -> str | None:
    if status != kind.status or reason != kind.reason:
        return f"got {status} {REASON_HEADER}={reason!r}, expected {kind.status} {kind.reason}"
    return None


class Worker:
    """One thread's clients: a boto3 client per listener (the identity one adds the token
    after signing, as a sidecar would) and raw sockets for ChatCompletions."""

    def __init__(self, ports: dict[str, int], key: SigningKey, frames: int):
        self.ports = ports
        self.key = key
        self.frames = frames
        self.token: str | None = None
        self.plain = bedrock_client(ports["plain"], read_timeout=30)
        self.identity = bedrock_client(ports["identity"], read_timeout=30,
                                       hooks=[("before-send.bedrock-runtime.*", self._add_token)])

    def _add_token(self, request, **kwargs):
        if self.token is not None:
            request.headers[IDENTITY_HEADER] = self.token
        return None

    def _mint(self, groups: list[str]) -> str:
        return self.key.mint(claims(ISSUER, AUDIENCE, "svc-soak", groups=groups, lifetime=300))

    def run(self, kind: Kind) -> str | None:
        """Send one request of `kind`; None when it got what it must, else what went wrong."""
        try:
            return self._run(kind)
        except ClientError as e:
            meta = e.response.get("ResponseMetadata", {})
            return check_refusal(kind, meta.get("HTTPStatusCode", 0),
                                 meta.get("HTTPHeaders", {}).get(REASON_HEADER)) \
                or (None if e.response.get("Error", {}).get("Code") == "AccessDeniedException"
                    else f"refusal not parsed as AccessDeniedException: {e.response.get('Error')}")
        except Exception as e:  # a transport error, a timeout, a broken stream: all unexpected
            return f"{type(e).__name__}: {e}"

    def _run(self, kind: Kind) -> str | None:
        name = kind.name
        self.token = None
        client = self.plain
        if kind.listener == "identity":
            client = self.identity
            if name == "identity_bad_token":
                good = claims(ISSUER, AUDIENCE, "svc-soak", groups=["ml"], lifetime=300)
                self.token = with_payload(self.key.mint(good), {**good, "groups": ["admin"]})
            elif name == "identity_wrong_group":
                self.token = self._mint(["web"])
            elif name != "identity_missing_token":
                self.token = self._mint(["ml"])
        if name in ("chat_body", "chat_body_unlisted"):
            return self._chat(kind, CHAT_MODEL if name == "chat_body" else UNLISTED)
        if name in ("converse_stream", "identity_stream"):
            resp = client.converse_stream(modelId=CLAUDE, messages=MESSAGES)
            deltas = 0
            stopped = False
            for event in resp["stream"]:
                deltas += "contentBlockDelta" in event
                stopped = stopped or "metadata" in event
            if deltas != self.frames or not stopped:
                return f"stream ended after {deltas} of {self.frames} deltas (metadata: {stopped})"
            return None
        if name == "invoke":
            resp = client.invoke_model(modelId=CLAUDE, body=json.dumps(
                {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                 "messages": [{"role": "user", "content": "Say hello."}]}))
            doc = json.loads(resp["body"].read())
            return None if doc["content"][0]["text"] == REPLY_TEXT else f"answer {doc!r}"
        if name == "invoke_stream":
            resp = client.invoke_model_with_response_stream(modelId=CLAUDE, body=json.dumps(
                {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                 "messages": [{"role": "user", "content": "Say hello."}]}))
            chunks = [json.loads(e["chunk"]["bytes"]) for e in resp["body"] if "chunk" in e]
            text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
            return None if text == REPLY_TEXT and chunks[-1]["type"] == "message_stop" \
                else f"stream text {text!r}"
        model = {"converse": TITAN, "denied_model": OPUS,
                 "unlisted_model": UNLISTED}.get(name, CLAUDE)
        resp = client.converse(modelId=model, messages=MESSAGES,
                               inferenceConfig={"maxTokens": 64})
        if kind.status != 200:
            return f"got 200, expected {kind.status} {kind.reason}"
        text = resp["output"]["message"]["content"][0]["text"]
        return None if text == REPLY_TEXT else f"answer {text!r}"

    def _chat(self, kind: Kind, model: str) -> str | None:
        body = json.dumps({"model": model, "messages": [
            {"role": "user", "content": "Say hello."}]}).encode()
        _, headers, _ = wire_parts(sign("POST", f"http://{BEDROCK_HOST}{CHAT}", body,
                                        {"Content-Type": "application/json"}))
        data = to_http11("POST", CHAT.encode(), headers + [("Connection", "close")], body)
        resp = rawhttp.exchange(self.ports[kind.listener], data, timeout=30)
        if kind.status != 200:
            return check_refusal(kind, resp.status, resp.header(REASON_HEADER))
        if resp.status != 200:
            return f"got {resp.status} {REASON_HEADER}={resp.header(REASON_HEADER)!r}, expected 200"
        doc = json.loads(resp.body)
        return None if doc["choices"][0]["message"]["content"] == REPLY_TEXT else f"answer {doc!r}"


def schedule() -> list[Kind]:
    """The mix as a fixed order: every kind `weight` times per cycle, shuffled once (seeded)."""
    cycle = [k for k in MIX for _ in range(k.weight)]
    random.Random(14).shuffle(cycle)
    return cycle


def traffic(workers: list[Worker], rps: float, seconds: float, tally: Tally) -> float:
    """Send the mix from one thread per worker, request n at start + n / rps, until `seconds`
    have passed. Returns the wall time it took (the last answers included)."""
    order = schedule()
    counter = iter(range(10**12))
    lock = threading.Lock()
    start = time.monotonic()
    end = start + seconds

    def loop(worker: Worker) -> None:
        while True:
            with lock:
                n = next(counter)
            at = start + n / rps
            if at >= end:
                return
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            kind = order[n % len(order)]
            t0 = time.monotonic()
            problem = worker.run(kind)
            tally.add(kind, problem, time.monotonic() - t0)

    threads = [threading.Thread(target=loop, args=(w,), name=f"soak-{i}", daemon=True)
               for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - start


# ------------------------------------------------------------------------------------ memory

def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Sampler(threading.Thread):
    """Envoy's VmRSS and memory stats every `interval` seconds, from `start`."""

    def __init__(self, envoy, interval: float, start: float):
        super().__init__(name="soak-sampler", daemon=True)
        self.envoy = envoy
        self.interval = interval
        self.t0 = start
        self.samples: list[dict] = []
        self.errors: list[str] = []
        self._halt = threading.Event()

    def sample(self) -> None:
        t = round(time.monotonic() - self.t0, 2)
        try:
            row = {"t": t, "rss": rss_bytes(self.envoy.proc.pid)}
        except (OSError, RuntimeError) as e:  # Envoy gone: the run reports it as unexpected
            self.errors.append(f"t={t}: VmRSS: {e}")
            return
        try:
            # The module's own metrics are `wasmcustom.bedrock_guard.…` in /stats.
            stats = self.envoy.stats("^(wasmcustom\\.)?("
                                     + "|".join(re.escape(s) for s in SAMPLED_STATS) + ")$")
            row.update({s: stats.get(s, stats.get("wasmcustom." + s)) for s in SAMPLED_STATS})
        except (OSError, EnvoyError) as e:
            self.errors.append(f"t={row['t']}: /stats: {e}")
        self.samples.append(row)

    def run(self) -> None:
        n = 0
        while not self._halt.is_set():
            self.sample()
            n += 1
            self._halt.wait(max(0.0, self.t0 + n * self.interval - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join()


def growth(samples: list[dict], key: str, warmup: float) -> dict:
    """After warm-up: the first sample, the largest, growth = largest - first, and the
    least-squares slope in bytes per hour. Empty when fewer than two samples follow warm-up."""
    post = [(s["t"], s[key]) for s in samples if s["t"] >= warmup and s.get(key) is not None]
    if len(post) < 2:
        return {"samples": len(post)}
    first = post[0][1]
    top = max(v for _, v in post)
    n = len(post)
    mt = sum(t for t, _ in post) / n
    mv = sum(v for _, v in post) / n
    var = sum((t - mt) ** 2 for t, _ in post)
    slope = sum((t - mt) * (v - mv) for t, v in post) / var if var else 0.0
    return {"samples": n, "first": first, "max": top, "last": post[-1][1],
            "growth_bytes": top - first, "slope_bytes_per_hour": round(slope * 3600)}


def cache_fill_seconds(rps: float) -> float:
    """How long the verified-token caches take to fill: every valid token of the mix is fresh
    (a new `jti`), a cache holds TOKEN_CACHE_CAPACITY per VM and stays full from then on (it
    evicts the oldest at capacity), and the workers' VMs share the tokens."""
    fresh = sum(k.weight for k in MIX if k.name in FRESH_VALID_TOKENS) / sum(k.weight for k in MIX)
    return TOKEN_CACHE_CAPACITY * ENVOY_WORKERS / (rps * fresh)


# ------------------------------------------------------------------------------------ audit

def read_audit(path: Path, expected: int, settle: float = 0.5, timeout: float = 20.0) -> list[str]:
    """The access log's complete lines, once `expected` are there and nothing more follows for
    `settle` seconds (or `timeout` passed)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        text = path.read_bytes().decode("latin-1") if path.exists() else ""
        lines = text[:text.rfind("\n") + 1].splitlines() if "\n" in text else []
        if len(lines) != last:
            last, since = len(lines), time.monotonic()
        now = time.monotonic()
        if (len(lines) >= expected and now - since >= settle) or now > deadline:
            return lines
        time.sleep(0.05)


def audit_counts(lines: list[str]) -> dict:
    out = {"lines": len(lines), "records": 0, "no_record": 0, "invalid": 0,
           "by_reason": collections.Counter(), "invalid_examples": []}
    for line in lines:
        if line == NO_RECORD:
            out["no_record"] += 1
            continue
        try:
            rec = parse_line(line)
        except AssertionError as e:
            out["invalid"] += 1
            if len(out["invalid_examples"]) < 3:
                out["invalid_examples"].append(str(e)[:300])
            continue
        out["records"] += 1
        out["by_reason"][f"{rec['decision']}/{rec['reason']}"] += 1
    out["by_reason"] = dict(sorted(out["by_reason"].items()))
    return out


def expected_reasons(sent: dict[str, int]) -> dict[str, int]:
    out: collections.Counter = collections.Counter()
    for name, n in sent.items():
        kind = KINDS[name]
        out[f"{'allow' if kind.status == 200 else 'deny'}/{kind.reason}"] += n
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------------------ verdict

def criteria(result: dict) -> dict:
    """The three criteria of issue 14 item 4 (the audit one with its parts) and the upstream's
    count, each with its value, its limit and whether it holds."""
    rss = result["memory"]["rss"]
    audit = result["audit"]
    sent = result["requests"]["sent"]
    up = result["upstream"]
    measured = "growth_bytes" in rss
    decisions_ok = audit["by_reason"] == result["requests"]["expected_reasons"]
    return {
        "rss_growth_after_warmup": {
            "value": rss.get("growth_bytes"), "limit": GROWTH_LIMIT_BYTES,
            "ok": measured and rss["growth_bytes"] <= GROWTH_LIMIT_BYTES},
        "unexpected_status": {"value": result["unexpected"]["count"], "limit": 0,
                              "ok": result["unexpected"]["count"] == 0},
        "audit_records_equal_requests": {
            "value": {"requests": sent, "records": audit["records"], "lines": audit["lines"],
                      "no_record": audit["no_record"], "invalid": audit["invalid"],
                      "decisions_as_expected": decisions_ok},
            "limit": "records == lines == requests; no `-`; no invalid line; decisions as expected",
            "ok": (audit["records"] == audit["lines"] == sent and audit["no_record"] == 0
                   and audit["invalid"] == 0 and decisions_ok)},
        # Nothing refused reached the upstream and nothing allowed was lost on the way, every
        # signature intact.
        "upstream_saw_exactly_the_allowed": {
            "value": {"forwarded": up["forwarded"], "bad_signature": up["bad_signature"]},
            "limit": {"forwarded": result["requests"]["allowed"], "bad_signature": 0},
            "ok": up["forwarded"] == result["requests"]["allowed"] and up["bad_signature"] == 0},
    }


def mib(n: float | None) -> str:
    return "-" if n is None else f"{n / 1048576:.2f} MiB"


def table(result: dict) -> str:
    req = result["requests"]
    mem = result["memory"]
    out = [f"soak: {result['config']['seconds']} s of mixed traffic at {result['config']['rps']} "
           f"requests/s ({req['achieved_rps']:.1f} achieved), warm-up "
           f"{result['config']['warmup_seconds']} s, {len(mem['samples'])} memory samples",
           "", f"  {'kind':26} {'expect':>22} {'sent':>8} {'unexpected':>10} {'p50 ms':>8} "
               f"{'p99 ms':>8}"]
    for name, row in req["by_kind"].items():
        out.append(f"  {name:26} {row['expect']:>22} {row['sent']:>8} {row['unexpected']:>10} "
                   f"{row['p50_ms']:>8} {row['p99_ms']:>8}")
    out.append(f"  {'total':26} {'':>22} {req['sent']:>8} {result['unexpected']['count']:>10}")
    out += ["", f"  {'memory after warm-up':24} {'first':>12} {'max':>12} {'last':>12} "
                f"{'growth':>12} {'slope/hour':>12}"]
    for key, label in (("rss", "Envoy VmRSS"), ("memory_allocated", "server.memory_allocated"),
                       ("wasm_memory", "wasm_memory_bytes")):
        g = mem[key]
        out.append(f"  {label:24} {mib(g.get('first')):>12} {mib(g.get('max')):>12} "
                   f"{mib(g.get('last')):>12} {mib(g.get('growth_bytes')):>12} "
                   f"{mib(g.get('slope_bytes_per_hour')):>12}")
    a = result["audit"]
    out += ["", f"  audit: {a['lines']} lines, {a['records']} records, {a['no_record']} `-`, "
                f"{a['invalid']} invalid; requests sent {req['sent']}",
            f"  audit decisions: {a['by_reason']}",
            f"  expected:        {req['expected_reasons']}",
            f"  upstream: {result['upstream']['forwarded']} forwarded (allowed requests sent: "
            f"{req['allowed']}), {result['upstream']['bad_signature']} bad signatures", ""]
    for name, c in result["criteria"].items():
        out.append(f"  {'PASS' if c['ok'] else 'FAIL'}  {name}: {c['value']} (limit {c['limit']})")
    for ex in result["unexpected"]["examples"]:
        out.append(f"  unexpected: {ex['kind']}: {ex['problem']}")
    return "\n".join(out)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 1)


# ------------------------------------------------------------------------------------ main

def env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise SystemExit(f"{name}={value!r} is not a number") from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=env_number("SOAK_SECONDS", 1800))
    ap.add_argument("--warmup", type=float, default=env_number("SOAK_WARMUP_SECONDS", 300))
    ap.add_argument("--rps", type=float, default=env_number("SOAK_RPS", 60))
    ap.add_argument("--workers", type=int, default=int(env_number("SOAK_WORKERS", 8)))
    ap.add_argument("--sample-seconds", type=float, default=env_number("SOAK_SAMPLE_SECONDS", 10))
    ap.add_argument("--frames", type=int, default=int(env_number("SOAK_STREAM_FRAMES", 100)),
                    help="content deltas per ConverseStream answer")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("SOAK_OUT") or RESULTS))
    args = ap.parse_args()
    if args.seconds <= args.warmup:
        raise SystemExit(f"--seconds ({args.seconds}) must be longer than the warm-up "
                         f"({args.warmup}): growth is measured after it")
    if args.rps <= 0 or args.workers < 1 or args.sample_seconds <= 0:
        raise SystemExit("--rps and --sample-seconds must be positive, --workers at least 1")
    fill = cache_fill_seconds(args.rps)
    if args.warmup < fill:
        print(f"soak: note: at {args.rps:g} requests/s the verified-token caches fill in about "
              f"{fill:.0f} s, longer than the {args.warmup:g} s warm-up: their growth counts as "
              "growth after warm-up", flush=True)
    binary = envoy_binary()
    if binary is None or not WASM_PATH.is_file():
        raise SystemExit("soak needs the Envoy binary (make setup) and dist/bedrock_guard.wasm "
                         "(make build)")

    parent = os.environ.get("SOAK_WORK_DIR")
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="soak-", dir=parent))
    pki = ensure_pki(ROOT / ".build" / "pki")
    key = SigningKey.ec("soak-1")
    jwks = JwksServer(JWKS_PATH).start()
    jwks.set_keys([key.jwk()])
    mock = SoakMock(pki_dir=pki, frames=args.frames).start()
    cfg, ports = render(work, pki, mock.port, jwks.port)
    envoy = envoy_process(cfg, ports["admin"], ports["plain"], work, split_logs=True,
                          binary=binary, concurrency=ENVOY_WORKERS)
    tally = Tally()
    try:
        try:
            envoy.start(timeout=30)
        except EnvoyError as e:
            raise SystemExit(f"Envoy did not start with {cfg}:\n{e}") from None
        out = subprocess.run([str(binary), "--version"], capture_output=True,
                             text=True).stdout.strip()
        found = re.search(r"version: \S+?/(\S+)", out)  # commit/1.40.0/Clean/RELEASE/BoringSSL
        version = found.group(1) if found else out
        workers = [Worker(ports, key, args.frames) for _ in range(args.workers)]
        print(f"soak: Envoy pid {envoy.proc.pid}, listeners {ports['plain']} (demo bundle) and "
              f"{ports['identity']} (identity), {args.seconds:.0f} s at {args.rps:g} requests/s "
              f"from {args.workers} workers; work dir {work}", flush=True)
        start = time.monotonic()
        sampler = Sampler(envoy, args.sample_seconds, start)
        sampler.start()
        took = traffic(workers, args.rps, args.seconds, tally)
        sampler.stop()
        sampler.sample()  # one after the last answer
        alive = envoy.alive()
        sent_total = sum(tally.sent.values())
        lines = read_audit(envoy.log_path, sent_total)
        jwks_fetches = len(jwks.fetches())
    finally:
        envoy.stop()
        mock.stop()
        jwks.stop()

    sent = dict(sorted(tally.sent.items()))
    unexpected = dict(tally.unexpected)
    examples = list(tally.examples)
    if not alive:
        unexpected["envoy_exited"] = 1
        examples.insert(0, {"kind": "-", "problem": "Envoy exited during the run"})
    by_kind = {}
    for k in MIX:
        lat = tally.latency.get(k.name, [])
        by_kind[k.name] = {"expect": f"{k.status} {k.reason}", "sent": sent.get(k.name, 0),
                           "unexpected": unexpected.get(k.name, 0),
                           "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}
    samples = sampler.samples
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "envoy_version": version,
        "wasm_bytes": WASM_PATH.stat().st_size,
        "config": {"seconds": args.seconds, "warmup_seconds": args.warmup, "rps": args.rps,
                   "workers": args.workers, "sample_seconds": args.sample_seconds,
                   "stream_frames": args.frames, "envoy_concurrency": envoy.concurrency,
                   "mix": {k.name: k.weight for k in MIX}},
        "requests": {"sent": sent_total, "by_kind": by_kind,
                     "allowed": sum(n for name, n in sent.items() if KINDS[name].status == 200),
                     "expected_reasons": expected_reasons(sent),
                     "wall_seconds": round(took, 1),
                     "achieved_rps": sent_total / took if took else 0.0},
        "unexpected": {"count": sum(unexpected.values()), "by_kind": unexpected,
                       "examples": examples},
        "audit": audit_counts(lines),
        "upstream": {"forwarded": mock.counts["forwarded"],
                     "bad_signature": mock.counts["bad_signature"],
                     "by_operation": {k[3:]: v for k, v in sorted(mock.counts.items())
                                      if k.startswith("op:")}},
        "jwks_fetches": jwks_fetches,
        "token_cache_fill_seconds": round(fill),
        "memory": {"rss": growth(samples, "rss", args.warmup),
                   "memory_allocated": growth(samples, "server.memory_allocated", args.warmup),
                   "wasm_memory": growth(samples, "bedrock_guard.wasm_memory_bytes", args.warmup),
                   "sampler_errors": sampler.errors, "samples": samples},
        "work_dir": str(work),
    }
    result["criteria"] = criteria(result)
    result["passed"] = all(c["ok"] for c in result["criteria"].values())
    if result["passed"] and not os.environ.get("SOAK_KEEP"):
        shutil.rmtree(work, ignore_errors=True)  # the access log alone is ~100 MB per 30 min
        result["work_dir"] = None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    kept = f"; Envoy's logs kept in {work}" if result["work_dir"] else ""
    print(f"\nsoak: {'PASSED' if result['passed'] else 'FAILED'}; results in {args.out}{kept}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
