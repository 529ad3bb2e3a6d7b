"""End to end: a real Prometheus (Debian's `prometheus`, `make prometheus-tools`) scrapes a real
Envoy with the filter, and every panel of `envoy/observability/dashboard.json` returns the
numbers the traffic sent.

The Envoy runs the demo config (so the shipped `stats_config.stats_tags`), a bundle with an
identity provider whose keys come from a local JWKS server, rules that name principal groups,
and deny alerts to a cluster that does not exist (so every alert batch fails: `alerts_failed`).
Prometheus runs on loopback with a temp config and data dir, scraping the admin port's
`/stats/prometheus` every second.

The same traffic is sent twice: the first round creates every series, the second is measured.
Each panel's query is read from the dashboard JSON (so the test and the dashboard cannot
drift); Grafana's `$__range` and `$__rate_interval` become the window between a scrape after
round one and a scrape after round two, and the query is evaluated at the second scrape's
timestamp. A counter's `increase()` over a window that starts and ends on samples is then
exact (no extrapolation), and `rate()` times the window is the count.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY, DEMO_BUNDLE, SECRET_KEY, WASM_PATH
from tests.harness.audit_log import SERVER_ERROR, THROTTLE, ScriptedMock, boto_client
from tests.harness.envoy import REPO_ROOT, free_port, render_config
from tests.harness.jwks_server import JwksServer, add_static_cluster
from tests.harness.mock_bedrock import cache_tokens_for, usage_for
from tests.harness.stack import envoy_stack
from tests.harness.tokens import SigningKey, claims

OBS = REPO_ROOT / "envoy" / "observability"
DASHBOARD = json.loads((OBS / "dashboard.json").read_text())
RULES = yaml.safe_load((OBS / "rules.yaml").read_text())
ISSUER = "https://idp.metrics.example"
AUDIENCE = "bedrock-egress"
KEY = SigningKey.ec("metrics-ec-1")
REVISION = 317

LITERAL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
LITERAL_LABEL = "anthropic_claude-3-5-sonnet-20240620-v1_0"
LLAMA = "meta.llama3-8b-instruct-v1:0"
LLAMA_LABEL = "meta_llama3-8b-instruct-v1_0"
OPUS = "anthropic.claude-opus-4-20250514-v1:0"
TITAN = "amazon.titan-text-express-v1"
TITAN_LABEL = "amazon_titan-text-express-v1"
INVOKE_BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                          "messages": [{"role": "user", "content": "Say hello."}]}).encode()


def bundle() -> dict:
    b = json.loads(DEMO_BUNDLE.read_text())
    b["metadata"] = {"name": "prometheus-e2e", "revision": str(REVISION)}
    b["identity"] = {"providers": [{
        "name": "corp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
        "remote_jwks": {"cluster": "idp_jwks", "path": "/jwks.json"}}]}
    b["alerts"] = {"cluster": "no_such_alert_sink", "path": "/events", "batch_size": 100,
                   "flush_interval_seconds": 1}
    b["rules"] += [
        {"id": "team-a-llama", "effect": "allow", "models": [LLAMA], "operations": ["Converse"],
         "principals": {"groups": ["team-a"]}},
        {"id": "contractors-no-llama", "effect": "deny", "models": [LLAMA],
         "principals": {"groups": ["contractors"]}},
        {"id": "titan-dry-run", "effect": "deny", "mode": "dry-run", "models": [TITAN]},
    ]
    return b


# -- Prometheus --------------------------------------------------------------------------------

class Prometheus:
    def __init__(self, work: Path, target: str):
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("no prometheus binary: run `make prometheus-tools` (Debian's prometheus)",
                        pytrace=False)
        self.port = free_port()
        cfg = work / "prometheus.yml"
        cfg.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms",
                       "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "envoy", "metrics_path": "/stats/prometheus",
                                "static_configs": [{"targets": [target]}]}]}))
        self.log = (work / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.tsdb.path={work / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("prometheus did not start:\n"
                            + (work / "prometheus.log").read_text()[-3000:], pytrace=False)
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)["result"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def scrape_after(self, wall: float, timeout: float = 20.0) -> float:
        """The timestamp (s) of the first scrape that started after `wall` (time.time())."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.query("bedrock_guard_requests_total[30s]")
            stamps = [float(t) for row in rows for t, _ in row["values"]]
            later = [t for t in stamps if t > wall]
            if later:
                return min(later)
            time.sleep(0.25)
        pytest.fail(f"no scrape after {wall} within {timeout} s", pytrace=False)


# -- the stack ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory, pki_dir):
    work = tmp_path_factory.mktemp("prometheus")
    jwks = JwksServer("/jwks.json").start()
    jwks.set_keys([KEY.jwk()])
    mock = ScriptedMock(pki_dir=pki_dir).start()
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, mock.port, pki_dir, WASM_PATH, bundle(), out_dir=work)
    add_static_cluster(cfg, "idp_jwks", jwks.port)
    doc = yaml.safe_load(cfg.read_text())
    doc["stats_flush_on_admin"] = True  # each scrape merges the workers' histograms
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        with envoy_stack(cfg, admin, listener, work, split_logs=True) as envoy:
            prom = Prometheus(work, f"127.0.0.1:{admin}")
            try:
                yield envoy, mock, jwks, prom
            finally:
                prom.stop()
    finally:
        mock.stop()
        jwks.stop()


def token(groups: list[str]) -> str:
    return KEY.mint(claims(ISSUER, AUDIENCE, "svc-" + "-".join(groups or ["none"]),
                           groups=groups))


class Round:
    """One round of traffic, each request with what every labelled series must count."""

    def __init__(self, envoy):
        self.envoy = envoy  # boto_client reads `.envoy.listener_port`
        self.requests: Counter = Counter()  # (operation, model, decision, reason, rule, group)
        self.upstream: Counter = Counter()  # class
        self.throttled: Counter = Counter()  # model
        self.alerted = 0  # refusals, dry-run ones too: each a deny alert (all fail: no sink)

    def client(self, groups):
        headers = {"x-workload-identity": token(groups)} if groups is not None else None
        return boto_client(self, ACCESS_KEY, SECRET_KEY, unsigned_headers=headers)[0]

    def send(self, groups, op, model, label, decision, reason, rule, group, text="Say hello.",
             upstream="2xx", cache_point=False):
        c = self.client(groups)
        messages = [{"role": "user", "content": [{"text": text}]}]
        if cache_point:
            messages[0]["content"].append({"cachePoint": {"type": "default"}})
        call = {
            "Converse": lambda: c.converse(modelId=model, messages=messages),
            "ConverseStream": lambda: list(
                c.converse_stream(modelId=model, messages=messages)["stream"]),
            "InvokeModel": lambda: c.invoke_model(modelId=model, body=INVOKE_BODY,
                                                  contentType="application/json")["body"].read(),
        }[op]
        if decision == "deny" or upstream != "2xx":
            with pytest.raises(ClientError):
                call()
        else:
            call()
        self.requests[(op, label, decision, reason, rule, group)] += 1
        if decision != "allow":
            self.alerted += 1
        if decision != "deny":
            self.upstream[upstream] += 1
            if text == THROTTLE:
                self.throttled[label] += 1

    def run(self):
        team_a, contractors, misc = ["team-a"], ["contractors", "team-a"], ["misc"]
        for _ in range(2):
            self.send(team_a, "Converse", LITERAL, LITERAL_LABEL, "allow", "allowed",
                      "claude-and-titan", "team-a")
        self.send(team_a, "InvokeModel", LITERAL, LITERAL_LABEL, "allow", "allowed",
                  "claude-and-titan", "team-a")
        self.send(team_a, "ConverseStream", LITERAL, LITERAL_LABEL, "allow", "allowed",
                  "claude-and-titan", "team-a")
        self.send(team_a, "Converse", LITERAL, LITERAL_LABEL, "allow", "allowed",
                  "claude-and-titan", "team-a", cache_point=True)
        self.send(team_a, "Converse", LLAMA, LLAMA_LABEL, "allow", "allowed", "team-a-llama",
                  "team-a")
        # The caller's first group the bundle names: contractors.
        self.send(contractors, "Converse", LLAMA, LLAMA_LABEL, "deny", "model_denied",
                  "contractors-no-llama", "contractors")
        self.send(misc, "Converse", LLAMA, LLAMA_LABEL, "deny", "model_not_allowed", "none",
                  "other")
        for _ in range(2):
            self.send(misc, "Converse", OPUS, "other", "deny", "model_denied", "no-opus", "other")
        self.send(team_a, "Converse", TITAN, TITAN_LABEL, "dry_run_deny", "model_denied",
                  "titan-dry-run", "team-a")
        self.send(team_a, "Converse", LITERAL, LITERAL_LABEL, "allow", "allowed",
                  "claude-and-titan", "team-a", text=THROTTLE, upstream="4xx")
        self.send(misc, "Converse", LITERAL, LITERAL_LABEL, "allow", "allowed",
                  "claude-and-titan", "other", text=SERVER_ERROR, upstream="5xx")
        self.send(None, "Converse", LITERAL, LITERAL_LABEL, "deny", "identity_missing", "none",
                  "none")


def settle(envoy, want_total: int, want_failed: int, timeout: float = 15.0) -> float:
    """Wait until Envoy has counted every request and every (failed) alert; the wall time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = envoy.stats(r"^wasmcustom\.bedrock_guard\.(requests_total|alerts_failed)$")
        if (s.get("wasmcustom.bedrock_guard.requests_total") == want_total
                and s.get("wasmcustom.bedrock_guard.alerts_failed") == want_failed):
            return time.time()
        time.sleep(0.1)
    pytest.fail(f"Envoy did not reach {want_total} requests / {want_failed} failed alerts: {s}",
                pytrace=False)


# -- reading the dashboard -----------------------------------------------------------------------

def panels() -> dict[str, dict]:
    out = {}
    for p in DASHBOARD["panels"]:
        (target,) = p["targets"]
        out[p["title"]] = {"expr": target["expr"], "instant": target.get("instant", False)}
    return out


def rendered(expr: str, window_ms: int) -> str:
    return (expr.replace("$__rate_interval", f"{window_ms}ms")
            .replace("$__range", f"{window_ms}ms").replace("$instance", ".*"))


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bbedrock_guard_[a-z0-9_]+", expr))


def series(result: list[dict], *labels: str) -> dict:
    """{label values: value} of a query result, zero values left out (a series the first round
    created and the second did not move is 0 over the window)."""
    out = {}
    for row in result:
        key = tuple(row["metric"].get(label, "") for label in labels)
        value = float(row["value"][1])
        if value != 0:
            out[key if len(key) != 1 else key[0]] = value
    return out


def approx(d: dict) -> dict:
    return {k: round(v, 6) for k, v in d.items()}


# -- the test --------------------------------------------------------------------------------------

def test_every_dashboard_panel_returns_what_the_traffic_sent(stack):
    envoy, mock, jwks, prom = stack
    started = time.time()
    # Both workers' VMs fetch the JWKS on start; wait for both before any token is sent.
    deadline = time.monotonic() + 15
    while len(jwks.fetches()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(jwks.fetches()) >= 2, jwks.fetches()

    first = Round(envoy)
    first.run()
    sent = sum(first.requests.values())
    settled = settle(envoy, sent, first.alerted)
    t0 = prom.scrape_after(settled + 1.2)  # histograms merged on the scrape before

    mock.reset()
    second = Round(envoy)
    second.run()
    assert second.requests == first.requests
    settled = settle(envoy, 2 * sent, 2 * first.alerted)
    t1 = prom.scrape_after(settled + 1.2)
    window_ms = round((t1 - t0) * 1000)
    window_s = window_ms / 1000

    def q(title: str, *labels: str) -> dict:
        p = panels()[title]
        got = series(prom.query(rendered(p["expr"], window_ms), at=t1), *labels)
        if not p["instant"]:  # a rate: per second over the window
            got = {k: v * window_s for k, v in got.items()}
        return approx(got)

    def total(by) -> dict:
        out = Counter()
        for key, n in second.requests.items():
            out[by(key)] += n
        return {k: float(v) for k, v in out.items()}

    op_, model_, decision_, reason_, rule_, group_ = range(6)
    assert q("Requests by decision", "decision") == total(lambda k: k[decision_])
    assert q("Refusals by reason", "reason") == {
        r: v for (d, r), v in total(lambda k: (k[decision_], k[reason_])).items() if d == "deny"}
    assert q("Refusals and dry-run refusals by rule", "rule", "decision") == {
        k: v for k, v in total(lambda k: (k[rule_], k[decision_])).items() if k[1] != "allow"}
    assert q("Requests by model and decision", "model", "decision") == total(
        lambda k: (k[model_], k[decision_]))
    assert q("Requests by principal group and decision", "group", "decision") == total(
        lambda k: (k[group_], k[decision_]))

    # Tokens: what the mock reported for the second round (InvokeModel's token-count headers,
    # the stream's metadata event, Converse answers' bodies); every answer was team-a's.
    counted = [u for u in mock.requests if u.status == 200]
    assert {u.operation for u in counted} == {"Converse", "ConverseStream", "InvokeModel"}
    label_of = {LITERAL: LITERAL_LABEL, LLAMA: LLAMA_LABEL, TITAN: TITAN_LABEL}
    by_model, by_group = Counter(), Counter()
    for u in counted:
        for direction, n in zip(("input", "output"), usage_for(u.body_len)):
            by_model[(direction, label_of[u.model_id])] += n
            by_group[(direction, "team-a")] += n
    assert q("Tokens in and out by model", "direction", "model") == {
        k: float(v) for k, v in by_model.items()}
    assert q("Tokens in and out by principal group", "direction", "group") == {
        k: float(v) for k, v in by_group.items()}

    # AWS/Bedrock's names (rules.yaml, bedrock-guard.cloudwatch) over the same window.
    def cw(name: str, *labels: str) -> dict:
        (rule,) = [r for g in RULES["groups"] for r in g["rules"]
                   if r.get("record") == f"bedrock_guard:{name}:rate5m"]
        expr = rule["expr"].replace("[5m]", f"[{window_ms}ms]")
        return approx({k: v * window_s for k, v in
                       series(prom.query(expr, at=t1), *labels).items()})

    answered = Counter(label_of[u.model_id] for u in mock.requests)
    answered[LITERAL_LABEL] -= 1  # the throttle: not an invocation, as in AWS/Bedrock
    assert cw("Invocations", "model") == {k: float(v) for k, v in answered.items()}
    assert cw("InvocationThrottles", "model") == {LITERAL_LABEL: 1.0}
    assert cw("InvocationClientErrors", "model") == {}
    assert cw("InvocationServerErrors", "model") == {LITERAL_LABEL: 1.0}
    assert cw("InputTokenCount", "model") == {
        m: float(v) for (d, m), v in by_model.items() if d == "input"}
    (cached,) = [u for u in counted if b'"cachePoint"' in u.body]
    cache = cache_tokens_for(cached.body_len)
    assert cw("CacheReadInputTokenCount", "model") == {
        LITERAL_LABEL: float(cache["cacheReadInputTokens"])}
    assert cw("CacheWriteInputTokenCount", "model") == {
        LITERAL_LABEL: float(cache["cacheWriteInputTokens"])}

    assert q("Upstream answers by status class", "class") == {
        k: float(v) for k, v in second.upstream.items()}
    assert q("Upstream throttles (429 / ThrottlingException) by model", "model") == {
        LITERAL_LABEL: 1.0}
    # Every request of the round was timed; the p99 is a latency, not a placeholder.
    (p99,) = prom.query(rendered(panels()["Latency p99 (ms, request to end of response)"]["expr"],
                                 window_ms), at=t1)
    assert 0 < float(p99["value"][1]) < 10_000, p99

    # Gauges and the rarer counters.
    (age,) = prom.query(rendered(panels()["JWKS age (oldest provider)"]["expr"], window_ms), at=t1)
    assert 0 <= float(age["value"][1]) <= time.time() - started + 1, age
    revisions = prom.query(rendered(panels()["Bundle revision in force"]["expr"], window_ms), at=t1)
    assert [(r["metric"]["instance"], float(r["value"][1])) for r in revisions] == [
        (f"127.0.0.1:{envoy.admin_port}", float(REVISION))]
    assert q("Deny alerts lost (dropped + failed)") == {(): float(second.alerted)}
    assert q("Rejected bundle pushes") == {}  # exists (checked below) and stayed 0
    assert q("Answers withheld (outside PrivateLink)") == {}

    # Every panel was checked above.
    checked = {"Requests by decision", "Refusals by reason",
               "Refusals and dry-run refusals by rule", "Requests by model and decision",
               "Requests by principal group and decision", "Tokens in and out by model",
               "Tokens in and out by principal group", "Upstream answers by status class",
               "Upstream throttles (429 / ThrottlingException) by model",
               "Latency p99 (ms, request to end of response)", "JWKS age (oldest provider)",
               "Bundle revision in force", "Deny alerts lost (dropped + failed)",
               "Rejected bundle pushes", "Answers withheld (outside PrivateLink)"}
    assert set(panels()) == checked


def test_every_metric_the_dashboard_and_rules_use_is_in_the_scrape(stack):
    envoy, _, _, prom = stack
    prom.scrape_after(time.time())
    scraped = set(prom.api("label/__name__/values"))
    used = set()
    for p in DASHBOARD["panels"]:
        for t in p["targets"]:
            used |= metric_names(t["expr"])
    rules = yaml.safe_load((OBS / "rules.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            used |= metric_names(rule["expr"])
    assert used, "no metric names found"
    assert used <= scraped, sorted(used - scraped)
    # The labelled families carry their labels (the shipped stats_tags at work).
    (row, *_) = prom.query("bedrock_guard_requests")
    assert set(row["metric"]) >= {"operation", "model", "decision", "reason", "rule", "group"}
