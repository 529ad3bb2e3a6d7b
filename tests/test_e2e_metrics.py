"""End to end: the stats the filter defines, read from Envoy's admin `/stats` and
`/stats/prometheus` after a known mix of traffic.

Envoy 1.40 names a wasm-defined stat `wasmcustom.<name>` in `/stats` and `<name>` (dots and
dashes as `_`, no `envoy_` prefix) in `/stats/prometheus`, where the demo config's
`stats_config.stats_tags` (envoy/observability/stats_tags.yaml) turn the labelled families into
labels: `bedrock_guard.requests.operation.Converse.model.other.decision.deny.reason.model_denied.rule.no-opus.group.none`
becomes `bedrock_guard_requests{operation="Converse",model="other",...}`. Each worker has its own VM, and
same-named stats are one stat in Envoy's store: the test spreads requests over both workers
(`--concurrency 2`) and checks the totals.

The module's Envoy sets `stats_flush_on_admin: true` (bootstrap, this test only): histograms are
merged from the workers on a stats flush, which otherwise happens every 5 s.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import Counter
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY, BEDROCK_HOST, DEMO_BUNDLE, SECRET_KEY, WASM_PATH
from tests.harness import rawhttp
from tests.harness.audit_log import (
    NO_RECORD, SERVER_ERROR, THROTTLE, AuditStack, boto_client, bundle_digest, dry_run_variant,
)
from tests.harness.awsreq import sign, to_http11, wire_parts
from tests.harness.mock_bedrock import cache_tokens_for, usage_for

BUNDLE = dry_run_variant(json.loads(DEMO_BUNDLE.read_text()), name="metrics-e2e", revision="317")
DIGEST = bundle_digest(BUNDLE)
LITERAL = "anthropic.claude-3-5-sonnet-20240620-v1:0"  # named literally: its own label
LITERAL_LABEL = "anthropic_claude-3-5-sonnet-20240620-v1_0"
WILDCARD = f"anthropic.claude-sonnet-4-zq{secrets.token_hex(6)}-v1:0"  # allowed via a wildcard
DENIED = "meta.llama3-8b-instruct-v1:0"
OPUS = "anthropic.claude-opus-4-20250514-v1:0"
DRY_RUN = "amazon.titan-text-express-v1"
DRY_RUN_LABEL = "amazon_titan-text-express-v1"
INVOKE_BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                          "messages": [{"role": "user", "content": "Say hello."}]}).encode()
P = "bedrock_guard"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, pki_dir):
    s = AuditStack(tmp_path_factory.mktemp("metrics"), pki_dir, WASM_PATH, BUNDLE,
                   bootstrap={"stats_flush_on_admin": True})
    s.start()  # fails the test, with Envoy's log, if Envoy or the module is missing or broken
    yield s
    s.stop()


@pytest.fixture
def live(stack):
    if not stack.envoy.alive():
        pytest.fail("Envoy died during the run:\n" + stack.app_log_tail(), pytrace=False)
    stack.mock.reset()
    return stack


# -- reading stats -----------------------------------------------------------------------------

def custom(stack) -> dict[str, int]:
    """The filter's counters and gauges from `/stats`, without the `wasmcustom.` prefix."""
    return {k[len("wasmcustom."):]: v for k, v in stack.envoy.stats(r"^wasmcustom\.").items()}


def series_key(name: str, labels: dict[str, str]) -> str:
    """One spelling per series: the name, then its labels sorted."""
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def prometheus(stack) -> dict[str, float]:
    status, body = stack.envoy.admin("GET", "/stats/prometheus")
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            name, _, rest = series.partition("{")
            labels = dict(re.findall(r'(\w+)="([^"]*)"', rest))
            out[series_key(name, labels)] = float(value)
    return out


def prom_name(stat: str) -> str:
    """The Prometheus series of a `/stats` name of ours (without `wasmcustom.`): a labelled
    family's `.<label>.<value>` pairs become labels (the shipped stats_tags)."""
    m = re.fullmatch(rf"{P}\.(requests|tokens|upstream_responses|upstream_throttled|cache_tokens)"
                     rf"\.(.+)", stat)
    if m:
        parts = m.group(2).split(".")
        labels = dict(zip(parts[::2], parts[1::2]))
        assert len(parts) % 2 == 0 and len(labels) * 2 == len(parts), stat
        return series_key(f"{P}_{m.group(1)}", labels)
    return re.sub(r"[^A-Za-z0-9_]", "_", stat)


HISTOGRAMS = (f"{P}_latency_ms", f"{P}_invocation_latency_ms", f"{P}_time_to_first_token_ms")


def histogram_counts(stack, before: dict, expect_total: int, timeout: float = 3.0) -> dict:
    """The sample counts the per-model histograms gained since `before` (a `latency()`
    snapshot), once they add up to `expect_total` (workers' histograms merge asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        stack.envoy.admin("GET", "/stats?filter=wasmcustom")  # flushes (stats_flush_on_admin)
        time.sleep(0.05)
        got = {k: v for k, v in delta(prometheus(stack), before).items()
               if k.startswith(HISTOGRAMS[1:]) and re.search(r"_count\b", k)}
        if sum(got.values()) >= expect_total or time.monotonic() > deadline:
            return got


def latency(stack, expect_count: int | None = None, timeout: float = 3.0) -> dict[str, float]:
    """`bedrock_guard_latency_ms` buckets, sum and count, after the workers' histograms have
    been merged (each admin request flushes; the merge completes asynchronously)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        stack.envoy.admin("GET", "/stats?filter=wasmcustom")  # flushes (stats_flush_on_admin)
        time.sleep(0.05)
        series = {k: v for k, v in prometheus(stack).items() if k.startswith(HISTOGRAMS)}
        count = series.get(f"{P}_latency_ms_count", 0)
        settled = series == last and (expect_count is None or count >= expect_count)
        if settled or time.monotonic() > deadline:
            return series
        last = series


def worker_connections(stack) -> dict[str, int]:
    port = stack.envoy.listener_port
    return {k: v for k, v in stack.envoy.stats(rf"^listener\.127\.0\.0\.1_{port}\.worker_").items()
            if k.endswith(".downstream_cx_total")}


def delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


# -- traffic -----------------------------------------------------------------------------------

def _messages(text="Say hello."):
    return [{"role": "user", "content": [{"text": text}]}]


class Traffic:
    """Sends requests, each on a fresh client (so a fresh connection, so both workers get
    some), and writes down the stats each one must move."""

    def __init__(self, stack):
        self.stack = stack
        self.expect: Counter = Counter()
        self.sent = 0

    def _count(self, op, model_label, verdict, reason, rule):
        self.sent += 1
        self.expect[f"{P}.requests_total"] += 1
        self.expect[f"{P}.requests.operation.{op}.model.{model_label}.decision.{verdict}"
                    f".reason.{reason}.rule.{rule}.group.none"] += 1
        if verdict == "dry_run_deny":
            self.expect[f"{P}.dry_run_denials"] += 1

    def _upstream(self, status, model_label):
        self.expect[f"{P}.upstream_responses.class.{status // 100}xx.model.{model_label}"] += 1
        if status == 429:
            self.expect[f"{P}.upstream_throttled.model.{model_label}"] += 1

    def client(self):
        return boto_client(self.stack, ACCESS_KEY, SECRET_KEY)[0]

    def converse(self, model, label, verdict="allow", reason="allowed", rule="claude-and-titan",
                 text="Say hello.", upstream=200, cache_point=False):
        c = self.client()
        messages = _messages(text)
        if cache_point:
            messages[0]["content"].append({"cachePoint": {"type": "default"}})
        if verdict == "deny" or upstream != 200:
            with pytest.raises(ClientError):
                c.converse(modelId=model, messages=messages)
        else:
            c.converse(modelId=model, messages=messages)
        self._count("Converse", label, verdict, reason, rule)
        if verdict != "deny":
            self._upstream(upstream, label)

    def streamed(self, op):
        c = self.client()
        if op == "ConverseStream":
            list(c.converse_stream(modelId=LITERAL, messages=_messages())["stream"])
        elif op == "InvokeModelWithResponseStream":
            list(c.invoke_model_with_response_stream(
                modelId=LITERAL, body=INVOKE_BODY, contentType="application/json")["body"])
        else:
            c.invoke_model(modelId=LITERAL, body=INVOKE_BODY,
                           contentType="application/json")["body"].read()
        self._count(op, LITERAL_LABEL, "allow", "allowed", "claude-and-titan")
        self._upstream(200, LITERAL_LABEL)


def test_stats_after_a_known_mix_of_traffic(live):
    stack = live
    before, prom_before = custom(stack), prometheus(stack)
    hist_before = latency(stack)
    cluster_before = stack.envoy.stats(r"^cluster\.bedrock_runtime_us_east_1\.upstream_rq_\dxx$")
    workers_before = worker_connections(stack)
    assert len(workers_before) == 2, workers_before
    mark = stack.audit.mark()
    t = Traffic(stack)

    # N allowed Converse on a literally named model, on fresh connections until both workers
    # (both VMs) have handled some.
    def both_workers_busy():
        return len(delta(worker_connections(stack), workers_before)) == 2

    n = 0
    while n < 3 or (n < 30 and not both_workers_busy()):
        t.converse(LITERAL, LITERAL_LABEL)
        n += 1
    per_worker = delta(worker_connections(stack), workers_before)
    assert len(per_worker) == 2 and all(v > 0 for v in per_worker.values()), per_worker

    t.converse(WILDCARD, "other")  # allowed by `anthropic.claude-sonnet-4-*`: label `other`
    t.converse(DENIED, "other", "deny", "model_not_allowed", "none")
    t.converse(DENIED, "other", "deny", "model_not_allowed", "none")
    t.converse(OPUS, "other", "deny", "model_denied", "no-opus")
    t.converse(DRY_RUN, DRY_RUN_LABEL, "dry_run_deny", "model_denied", "titan-dry-run")
    t.converse(DRY_RUN, DRY_RUN_LABEL, "dry_run_deny", "model_denied", "titan-dry-run")
    for op in ("ConverseStream", "InvokeModelWithResponseStream", "InvokeModel"):
        t.streamed(op)
    t.converse(LITERAL, LITERAL_LABEL, cache_point=True)
    t.converse(LITERAL, LITERAL_LABEL, text=THROTTLE, upstream=429)
    t.converse(LITERAL, LITERAL_LABEL, text=SERVER_ERROR, upstream=500)

    records = stack.audit.take(t.sent, since=mark)  # also: every request has finished logging

    # Tokens: what the mock reported in token-count headers, in the streams' final events and
    # in Converse answers' bodies (a Converse with a cache point: its cache counts too).
    ups = stack.mock.requests
    counted = [u for u in ups if u.status == 200 and u.operation in
               ("Converse", "InvokeModel", "ConverseStream", "InvokeModelWithResponseStream")]
    assert len(counted) == t.sent - 3 - 2  # all but 3 refusals and the 429 / 500
    tin = sum(usage_for(u.body_len)[0] for u in counted)
    tout = sum(usage_for(u.body_len)[1] for u in counted)
    assert tin == sum(r["inputTokens"] or 0 for r in records)
    assert tout == sum(r["outputTokens"] or 0 for r in records)
    label_of = {LITERAL: LITERAL_LABEL, DRY_RUN: DRY_RUN_LABEL}
    for u in counted:
        n, m = usage_for(u.body_len)
        label = label_of.get(u.model_id, "other")
        t.expect[f"{P}.tokens.direction.input.model.{label}.group.none"] += n
        t.expect[f"{P}.tokens.direction.output.model.{label}.group.none"] += m
    cached = [u for u in counted if b'"cachePoint"' in u.body]
    assert len(cached) == 1
    cache = cache_tokens_for(cached[0].body_len)
    t.expect[f"{P}.cache_tokens.direction.read.model.{LITERAL_LABEL}"] += cache[
        "cacheReadInputTokens"]
    t.expect[f"{P}.cache_tokens.direction.write.model.{LITERAL_LABEL}"] += cache[
        "cacheWriteInputTokens"]

    after = custom(stack)
    got = delta(after, before)
    want = dict(t.expect)
    assert got == want, ("filter stats moved differently from the traffic sent:\n"
                         + json.dumps({k: {"got": got.get(k), "want": want.get(k)}
                                       for k in sorted(set(got) | set(want))
                                       if got.get(k) != want.get(k)}, indent=1))

    # The same numbers under their Prometheus names.
    prom_after = prometheus(stack)
    prom_got = {k: v for k, v in delta(prom_after, prom_before).items()
                if k.startswith(P + "_") and not k.startswith(HISTOGRAMS)}
    assert prom_got == {prom_name(k): float(v) for k, v in want.items()}, prom_got

    # Envoy's own upstream counters agree with the filter's.
    cluster = delta(stack.envoy.stats(r"^cluster\.bedrock_runtime_us_east_1\.upstream_rq_\dxx$"),
                    cluster_before)
    by_class = Counter()
    for k, v in want.items():
        m = re.search(r"\.upstream_responses\.class\.(\dxx)\.", k)
        if m:
            by_class[f"upstream_rq_{m.group(1)}"] += v
    assert {k.rsplit(".", 1)[1]: v for k, v in cluster.items()} == dict(by_class)

    # One latency sample per request, none absurd (every one under 60 s).
    hist = latency(stack, hist_before.get(f"{P}_latency_ms_count", 0) + t.sent)
    h = delta(hist, hist_before)
    assert h.get(f"{P}_latency_ms_count") == t.sent, h
    assert h.get(f'{P}_latency_ms_bucket{{le="60000"}}') == t.sent, h

    # AWS/Bedrock's InvocationLatency and TimeToFirstToken, by model: one latency sample per
    # answer from the upstream that was not a throttle, one time to first token per stream.
    answered = Counter()
    for k, v in want.items():
        m = re.search(r"\.upstream_responses\.class\.\dxx\.model\.(.+)$", k)
        if m:
            answered[m.group(1)] += v
    answered[LITERAL_LABEL] -= 1  # the throttle
    counts = histogram_counts(stack, hist_before, sum(answered.values()) + 2)
    assert counts == {
        **{f'{P}_invocation_latency_ms_count{{model="{k}"}}': float(v)
           for k, v in answered.items()},
        f'{P}_time_to_first_token_ms_count{{model="{LITERAL_LABEL}"}}': 2.0,
    }, counts

    # A model the bundle does not name literally never becomes a stat name.
    suffix = WILDCARD.split("-zq")[1].split("-")[0]
    for path in ("/stats", "/stats/prometheus"):
        assert suffix not in stack.envoy.admin("GET", path)[1].decode()


def test_bundle_in_force_gauges_have_fixed_names(live):
    stats = custom(live)
    assert stats[f"{P}.bundle_revision"] == 317
    assert stats[f"{P}.bundle_signed"] == 0  # unsigned, no keys pinned
    assert stats[f"{P}.bundle_anchored"] == 0
    # Every unlabelled stat exists from configuration on (at 0 until its first event), so a
    # Prometheus increase() sees that first event.
    for name in ("bundle_rejected", "alerts_dropped", "alerts_failed", "alerts_retried",
                 "alerts_failed_entries", "upstream_not_privatelink",
                 "destination_quarantined", "stream_malformed_frames", "jwks_age_seconds"):
        assert stats[f"{P}.{name}"] == 0, name
    # The digest is in the audit records and Envoy's log, never in a stat name: each bundle
    # would otherwise start a new series.
    short = DIGEST.removeprefix("sha256:")[:12]
    for path in ("/stats", "/stats/prometheus"):
        text = live.envoy.admin("GET", path)[1].decode()
        assert short not in text and ".digest." not in text and "_digest_" not in text
    prom = prometheus(live)
    assert prom[f"{P}_bundle_revision"] == 317
    assert prom[f"{P}_bundle_signed"] == 0


def test_wasm_memory_gauge_is_the_vms_linear_memory(live):
    """`wasm_memory_bytes`: a VM's linear memory (whole 64 KiB pages), set at configuration
    and from the tick; far below the 8 MiB a VM may use under load (docs/operations.md)."""
    value = custom(live)[f"{P}.wasm_memory_bytes"]
    assert value > 0 and value % 65536 == 0, value
    assert value <= 8 * 2**20, value
    assert prometheus(live)[f"{P}_wasm_memory_bytes"] == value


def test_requests_envoy_refuses_before_the_filter_leave_the_filter_stats_alone(live):
    """A request Envoy's codec refuses (a control byte in a header value) never reaches the
    filter: no decision, no record (`-` in the access log), and no latency sample."""
    before = custom(live)
    hist_before = latency(live)
    mark = live.audit.mark()
    target = f"/model/{quote(LITERAL, safe='')}/converse"
    body = b'{"messages":[]}'
    _, headers, _ = wire_parts(sign("POST", f"http://{BEDROCK_HOST}{target}", body,
                                    {"Content-Type": "application/json"}))
    resp = rawhttp.exchange(live.envoy.listener_port, to_http11(
        "POST", target.encode(), headers + [("x-note", b"a\x01b")], body), timeout=5)
    assert resp.status == 400 and resp.header("x-bedrock-guard-reason") is None, resp
    assert live.audit.take_raw(1, since=mark) == [NO_RECORD]
    assert delta(custom(live), before) == {}
    h = delta(latency(live), hist_before)
    assert h == {}, ("a request the filter never saw was timed (latency = now - 0?): "
                     f"{json.dumps(h)}")
