"""End to end: `bedrock-guard report --html` on the audit log of a real run, rendered by headless
Chromium, shows that log's numbers (issue 11 item 5).

Traffic from two access keys goes through Envoy and the filter (demo bundle with a dry-run deny
rule): allowed Converse, ConverseStream and InvokeModel calls (the latter two carry token
counts), dry-run denials that are let through, and refusals for two reasons. The access log
(Envoy's stdout, audit lines and nothing else) is handed to the CLI as is; the page it writes
is loaded by Chromium (`--dump-dom`, no network: the page has no script and a CSP that fetches
nothing), and the numbers in the rendered DOM (totals, callers, models, refusal reasons, tokens
per caller and model per UTC hour) are compared with the same numbers computed here, in
Python, from the parsed audit records.

Chromium is the Debian package (`make e2e` installs it when missing); run as root it needs
`--no-sandbox`.

`reconcile` is covered by the CLI's own tests (cli/tests/cli/reconcile.rs) on CloudTrail
fixtures. Here, `test_reconcile_on_the_run` builds a gzip CloudTrail file from the records'
`upstreamRequestId` (Bedrock's `x-amzn-RequestId`, which the mock sends and the filter records)
plus one call that never went through the guard, and checks the join finds every forwarded
call and exactly that one bypass.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tempfile
from collections import defaultdict
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import DEMO_BUNDLE, REGION, WASM_PATH
from tests.harness.audit_log import AuditStack, boto_client, dry_run_variant
from tests.harness.sigv4 import DEFAULT_CREDENTIALS

BUNDLE = dry_run_variant(json.loads(DEMO_BUNDLE.read_text()), name="report-e2e", revision="3")
ALLOWED = "anthropic.claude-3-5-sonnet-20240620-v1:0"  # rule claude-and-titan
DRY_RUN = "amazon.titan-text-express-v1"  # dry-run deny rule titan-dry-run: let through
NOT_ALLOWED = "meta.llama3-8b-instruct-v1:0"  # model_not_allowed
DENIED = "anthropic.claude-opus-4-20250514-v1:0"  # deny rule no-opus: model_denied
KEYS = list(DEFAULT_CREDENTIALS)  # two access keys: two callers
INVOKE_BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                          "messages": [{"role": "user", "content": "Say hello."}]}).encode()
MESSAGES = [{"role": "user", "content": [{"text": "Say hello."}]}]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium is not installed: `make e2e` installs the Debian package `chromium`",
                pytrace=False)


def render_dom(page: Path) -> str:
    """The DOM Chromium builds from `page`, serialised (headless, no network, throwaway profile)."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        args = [chromium_binary(), "--headless", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
                "--dump-dom", page.resolve().as_uri()]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
    assert "<html" in proc.stdout, proc.stdout[:500] + proc.stderr[-2000:]
    return proc.stdout


class Dom(HTMLParser):
    """What the test reads from the rendered page: the totals (`data-total` → number shown)
    and, per table id, its body rows as {data-col: text shown} plus the row's data attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.totals: dict[str, str] = {}
        self.tables: dict[str, list[dict]] = defaultdict(list)
        self.svg_rects: dict[str, int] = defaultdict(int)
        self._table = None
        self._row = None
        self._cell = None
        self._total = None
        self._in_dd = False
        self._svg = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id")
        elif tag == "tr" and self._table and any(k.startswith("data-") for k in a):
            self._row = {"attrs": {k: v for k, v in a.items() if k.startswith("data-")}}
        elif tag == "td" and self._row is not None and "data-col" in a:
            self._cell = a["data-col"]
            self._row[self._cell] = ""
        elif tag == "div" and "data-total" in a:
            self._total = a["data-total"]
        elif tag == "dd" and self._total:
            self._in_dd = True
            self.totals[self._total] = ""
        elif tag == "svg":
            self._svg = a.get("id")
        elif tag == "rect" and self._svg:
            self.svg_rects[self._svg] += 1

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "dd":
            self._in_dd = False
        elif tag == "div":
            self._total = None
        elif tag == "svg":
            self._svg = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None and self._row is not None:
            self._row[self._cell] += data
        if self._in_dd and self._total:
            self.totals[self._total] += data


# -- the run --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory, pki_dir):
    """Real traffic through Envoy; returns (stack, the parsed records)."""
    stack = AuditStack(tmp_path_factory.mktemp("report"), pki_dir, WASM_PATH, BUNDLE)
    stack.start()
    try:
        clients = [boto_client(stack, k, *DEFAULT_CREDENTIALS[k])[0] for k in KEYS]
        mark = stack.audit.mark()
        sent = 0

        def call(fn, refused=None):
            nonlocal sent
            sent += 1
            if refused is None:
                fn()
                return
            with pytest.raises(ClientError) as e:
                fn()
            assert e.value.response["Error"]["Code"] == "AccessDeniedException", e.value.response

        for i, c in enumerate(clients):
            for _ in range(2 + i):
                call(lambda: c.converse(modelId=ALLOWED, messages=MESSAGES))
            for _ in range(1 + i):
                call(lambda: c.invoke_model(modelId=ALLOWED, body=INVOKE_BODY,
                                            contentType="application/json",
                                            accept="application/json")["body"].read())
            call(lambda: list(c.converse_stream(modelId=ALLOWED, messages=MESSAGES)["stream"]))
            call(lambda: c.converse(modelId=DRY_RUN, messages=MESSAGES))
            for _ in range(1 + 2 * i):
                call(lambda: c.converse(modelId=NOT_ALLOWED, messages=MESSAGES), refused=True)
            call(lambda: c.converse(modelId=DENIED, messages=MESSAGES), refused=True)
        records = stack.audit.take(sent, mark)
        yield stack, records
    finally:
        stack.stop()


def expected(records: list[dict]) -> dict:
    """The report's numbers, computed independently from the parsed records."""
    def caller(r):
        ident = r["userIdentity"]
        if ident and ident.get("subject"):
            return "sub:" + ident["subject"]
        return "key:" + r["accessKeyId"] if r["accessKeyId"] else "(anonymous)"

    def model(r):
        m = (r["requestParameters"] or {}).get("modelId")
        if m is None:
            return "(none)"
        return ",".join(m) if isinstance(m, list) else m

    def hour(r):
        t = datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        return t.strftime("%Y-%m-%dT%H:00Z")

    def blank():
        return {"requests": 0, "allowed": 0, "denied": 0, "inputTokens": 0, "outputTokens": 0}

    totals = {"records": 0, "allowed": 0, "denied": 0, "dryRunDenied": 0, "forwarded": 0,
              "inputTokens": 0, "outputTokens": 0}
    callers, models = defaultdict(blank), defaultdict(blank)
    reasons = defaultdict(lambda: {"denied": 0, "dryRunDenied": 0})
    hourly = defaultdict(lambda: {"requests": 0, "inputTokens": 0, "outputTokens": 0})
    for r in records:
        tin, tout = r["inputTokens"] or 0, r["outputTokens"] or 0
        allowed = r["decision"] == "allow"
        dry = not allowed and r["mode"] == "dry-run"
        totals["records"] += 1
        totals["allowed" if allowed else "denied"] += 1
        totals["dryRunDenied"] += dry
        totals["forwarded"] += r["upstreamStatus"] is not None
        totals["inputTokens"] += tin
        totals["outputTokens"] += tout
        for row in (callers[caller(r)], models[model(r)]):
            row["requests"] += 1
            row["allowed" if allowed else "denied"] += 1
            row["inputTokens"] += tin
            row["outputTokens"] += tout
        if not allowed:
            reasons[r["reason"]]["dryRunDenied" if dry else "denied"] += 1
        h = hourly[(hour(r), caller(r), model(r))]
        h["requests"] += 1
        h["inputTokens"] += tin
        h["outputTokens"] += tout
    return {"totals": totals, "callers": dict(callers), "models": dict(models),
            "reasons": dict(reasons), "hourly": dict(hourly)}


def test_html_report_rendered_by_chromium_shows_the_logs_numbers(run, cli, tmp_path):
    stack, records = run
    want = expected(records)
    # The traffic is what it should be, so the comparison below means something.
    assert want["totals"]["dryRunDenied"] == 2 and want["totals"]["denied"] == 8, want["totals"]
    assert want["totals"]["inputTokens"] > 0 and want["totals"]["outputTokens"] > 0
    assert len(want["callers"]) == 2, want["callers"]
    assert want["reasons"] == {"model_not_allowed": {"denied": 4, "dryRunDenied": 0},
                               "model_denied": {"denied": 2, "dryRunDenied": 2}}, want["reasons"]

    page = tmp_path / "report.html"
    proc = subprocess.run([str(cli), "report", str(stack.stdout_path), "--html", str(page)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dom = Dom()
    dom.feed(render_dom(page))

    assert {k: int(v) for k, v in dom.totals.items()} == want["totals"]
    cols = ("requests", "allowed", "denied", "inputTokens", "outputTokens")
    shown_callers = {row["caller"]: {c: int(row[c]) for c in cols}
                     for row in dom.tables["callers-table"]}
    assert shown_callers == want["callers"]
    shown_models = {row["model"]: {c: int(row[c]) for c in cols}
                    for row in dom.tables["models-table"]}
    assert shown_models == want["models"]
    shown_reasons = {row["reason"]: {c: int(row[c]) for c in ("denied", "dryRunDenied")}
                     for row in dom.tables["reasons-table"]}
    assert shown_reasons == want["reasons"]
    shown_hourly = {(row["hour"], row["caller"], row["model"]):
                    {c: int(row[c]) for c in ("requests", "inputTokens", "outputTokens")}
                    for row in dom.tables["hourly-table"]}
    assert shown_hourly == want["hourly"]
    # One bar per caller and per reason, two (input, output) per model and per hour.
    assert dom.svg_rects["callers-chart"] == len(want["callers"])
    assert dom.svg_rects["reasons-chart"] == len(want["reasons"])
    assert dom.svg_rects["models-chart"] == 2 * len(want["models"])
    hours = {k[0] for k in want["hourly"]}
    assert dom.svg_rects["hourly-chart"] == 2 * len(hours)
    # The terminal summary carries the same totals.
    assert (f"allowed {want['totals']['allowed']}, denied {want['totals']['denied']} "
            f"(of which dry-run, let through: {want['totals']['dryRunDenied']})") in proc.stdout


def test_reconcile_on_the_run(run, cli, tmp_path):
    stack, records = run
    forwarded = [r for r in records if r["upstreamStatus"] is not None]
    assert len(forwarded) == 12, len(forwarded)
    # Every record carries Bedrock's request id beside Envoy's (null when never forwarded).
    assert all("upstreamRequestId" in r for r in records)
    assert all(r["upstreamRequestId"] is None for r in records if r["upstreamStatus"] is None)
    # CloudTrail as Bedrock would write it for every request the mock answered,
    # plus one call that did not go through the guard.
    events = []
    for r in forwarded:
        assert r["upstreamRequestId"], r
        events.append({
            "eventVersion": "1.09", "eventSource": "bedrock.amazonaws.com",
            "eventName": r["eventName"], "eventTime": r["eventTime"],
            "awsRegion": REGION, "sourceIPAddress": "127.0.0.1",
            "userIdentity": {"type": "IAMUser", "accessKeyId": r["accessKeyId"]},
            "requestParameters": {"modelId": r["requestParameters"]["modelId"]},
            "requestID": r["upstreamRequestId"], "eventType": "AwsApiCall",
            "managementEvent": True, "eventCategory": "Management"})
    # CloudTrail writes whole seconds; the run may last less than one, so the times keep the
    # audit's milliseconds to leave a window. The bypass falls in the middle of the run.
    bypass = dict(events[len(events) // 2], requestID="bypass-0000", sourceIPAddress="203.0.113.9")
    trail = tmp_path / "trail.json.gz"
    trail.write_bytes(gzip.compress(json.dumps({"Records": events + [bypass]}).encode()))
    proc = subprocess.run([str(cli), "reconcile", "--audit", str(stack.stdout_path),
                           "--cloudtrail", str(trail), "--slack", "0", "--json"],
                          capture_output=True, text=True, timeout=60)
    doc = json.loads(proc.stdout)
    assert doc["matched"] == len(forwarded), doc
    assert [e["requestID"] for e in doc["aroundGuard"]] == ["bypass-0000"], doc
    assert proc.returncode == 1, proc.stderr
