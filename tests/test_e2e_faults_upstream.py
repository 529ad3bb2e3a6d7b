"""Issue 14, upstream faults end to end through Envoy: resets, early closes, stalls, timeouts,
and clients that go away in the middle of a body.

One Envoy (the demo config, route timeout cut to `ROUTE_TIMEOUT_S` = 1 s) in front of
`FaultMock` (`tests/harness/upstream_faults.py`: the SigV4-verifying mock Bedrock, each request
choosing a fault by a magic string in its body). Every test mixes the faulty requests with
healthy ones and with requests the policy refuses (carrying the same fault marker), then closes
the books with `tests/harness/ledger.py`: exactly one audit record per request (no `-` line),
the stats' `requests` family and `requests_total` grown by exactly what the records say, the
VM's memory under its bound, and Envoy's RSS grown by at most `RSS_GROWTH_BOUND`. Each test
also checks every client's answer against the policy and that the mock never saw a refused
request.

* **A stream cut by the upstream** (ConverseStream: TCP RST after 2 complete event frames;
  InvokeModelWithResponseStream: FIN in the middle of the third frame). The client gets the
  frames sent before the cut, then an error; the record says `allow`, `status` and
  `upstreamStatus` 200 (the answer had started), `streamErrors` 0 for a cut between frames and
  1 for a cut inside one (`stream_malformed_frames` counts it), `streamExceptions` 0, no tokens
  (the usage event never came).
* **An upstream that answers too slowly** (headers after 2 s, past the 1 s route timeout):
  Envoy answers 504; the record says `allow`, `status` 504 and `upstreamStatus` null (the
  upstream never answered), and no `upstream_responses` class is counted: a timeout is never a
  2xx. A stream that stalls after its first frames is cut by the same timeout: 200 with the
  frames so far, as above. Envoy's own `downstream_rq_5xx` and `upstream_rq_timeout` agree.
* **An upstream that resets before answering**, after the whole request (Converse) or in the
  middle of a large request body (a 600 KB Anthropic InvokeModel, a ChatCompletions whose model
  is in the body): Envoy answers 503; the record says `allow`, `status` 503, `upstreamStatus`
  null. The refused twin (a model no rule allows, a large body with the same marker) is refused
  403 before anything leaves.
* **A client that goes away in the middle of its body** (a raw socket sends the head and half
  of a Content-Length body, then closes). A body-carried request (ChatCompletions) was never
  decided: it is recorded and counted as refused, `body_unparseable` with no status, never as
  allowed, and nothing reaches the mock. A request decided on its head (InvokeModel, the model
  in the path) keeps its decision: allowed ones were already on their way (`status` null, no
  answer), denied ones were refused at once (403).

The RSS bound: a few dozen requests, some carrying 600 KB bodies, through a warm Envoy whose
buffers are already allocated. 16 MiB is about 30 such bodies held at once, far more than the
per-connection buffer limit (2 MiB) times the concurrency here; a leak of a body (or a
stream's buffers) per faulty request would exceed it within a few bursts.
"""

from __future__ import annotations

import collections
import http.client
import json
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY, SECRET_KEY
from tests.harness import awsreq
from tests.harness.audit_log import AuditStack, boto_client
from tests.harness.envoy import walk
from tests.harness.ledger import close_books, parse_records, settled_stats
from tests.harness.mock_bedrock import REPLY_PIECES
from tests.harness.stack import WASM_PATH
from tests.harness.upstream_faults import (CLOSE_MID_FRAME, FRAMES_BEFORE_CUT, RESET_BEFORE_HEADERS,
                                           RESET_IN_BODY, RESET_MID_STREAM, SLOW, STALL_MID_STREAM,
                                           FaultMock)

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"  # demo rule claude-and-titan: allowed
DENIED = "anthropic.claude-opus-4-20250514-v1:0"  # demo rule no-opus: model_denied
CHAT_MODEL = "openai.gpt-oss-20b-1:0"  # allowed for ChatCompletions
UNLISTED = "meta.llama3-8b-instruct-v1:0"  # no rule allows it: model_not_allowed
ROUTE_TIMEOUT_S = 1.0
RSS_GROWTH_BOUND = 16 * 1024 * 1024
BIG = 600_000  # bytes of prompt in a "large body" request (under the demo's 1 MiB limit)
WORKERS = 8
# Events of the mock's complete ConverseStream / InvokeModelWithResponseStream answers.
FULL_STREAM = {"ConverseStream": 4 + len(REPLY_PIECES), "InvokeModelWithResponseStream":
               2 + len(REPLY_PIECES)}


def _route_timeout(doc: dict) -> None:
    routes = [n["route"] for n in walk(doc) if isinstance(n.get("route"), dict)
              and "cluster" in n["route"]]
    assert routes, "no route in the demo config"
    for route in routes:
        route["timeout"] = f"{ROUTE_TIMEOUT_S:g}s"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, pki_dir):
    s = AuditStack(tmp_path_factory.mktemp("faults-upstream"), pki_dir, WASM_PATH, None,
                   mock_class=FaultMock, edit_config=_route_timeout).start()
    assert s.mock.slow_seconds > ROUTE_TIMEOUT_S + 0.5
    yield s
    s.stop()


# -- clients -------------------------------------------------------------------------------

_local = threading.local()


def _client(stack):
    if getattr(_local, "port", None) != stack.envoy.listener_port:
        _local.client, _ = boto_client(stack, ACCESS_KEY, SECRET_KEY)
        _local.port = stack.envoy.listener_port
    return _local.client


def _messages(text: str) -> list:
    return [{"role": "user", "content": [{"text": text}]}]


def _anthropic(text: str) -> str:
    return json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                       "messages": [{"role": "user", "content": text}]})


def _chat(model: str, text: str) -> str:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}]})


def _refusal_or_status(e: ClientError) -> tuple:
    meta = e.response["ResponseMetadata"]
    reason = meta["HTTPHeaders"].get("x-bedrock-guard-reason")
    if reason:
        assert meta["HTTPStatusCode"] == 403 and e.response["Error"]["Code"] == \
            "AccessDeniedException", e.response
        assert e.response["Error"]["Message"].startswith(f"bedrock-guard: {reason}"), e.response
        return ("refused", reason)
    return ("status", meta["HTTPStatusCode"])


def chat_completions(stack, model: str, text: str) -> tuple:
    """ChatCompletions (no boto3 operation: its model is in the body), SigV4-signed by
    botocore's signer, over a plain HTTP/1.1 connection to Envoy."""
    prepared = awsreq.sign("POST", f"http://{awsreq.HOST}/openai/v1/chat/completions",
                           _chat(model, text).encode(), {"content-type": "application/json"})
    target, headers, body = awsreq.wire_parts(prepared)
    conn = http.client.HTTPConnection("127.0.0.1", stack.envoy.listener_port, timeout=10)
    try:
        conn.putrequest("POST", target.decode(), skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        payload = resp.read()
    finally:
        conn.close()
    reason = resp.getheader("x-bedrock-guard-reason")
    if reason:
        assert resp.status == 403 and json.loads(payload)["message"].startswith(
            f"bedrock-guard: {reason}"), (resp.status, payload[:200])
        return ("refused", reason)
    if resp.status == 200:
        assert json.loads(payload)["choices"][0]["message"]["content"] == "".join(REPLY_PIECES)
        return ("ok", None)
    return ("status", resp.status)


def call(stack, op: str, model: str, text: str) -> tuple:
    """One request through Envoy: `("ok", events or None)`, `("cut", events so far, error)`,
    `("refused", reason)` or `("status", http status)`."""
    c = _client(stack)
    events: list[str] = []
    try:
        if op == "Converse":
            r = c.converse(modelId=model, messages=_messages(text))
            assert r["output"]["message"]["content"][0]["text"] == "".join(REPLY_PIECES)
            return ("ok", None)
        if op == "InvokeModel":
            c.invoke_model(modelId=model, body=_anthropic(text))
            return ("ok", None)
        if op == "ChatCompletions":
            return chat_completions(stack, model, text)
        if op == "ConverseStream":
            stream = c.converse_stream(modelId=model, messages=_messages(text))["stream"]
        else:
            stream = c.invoke_model_with_response_stream(modelId=model,
                                                         body=_anthropic(text))["body"]
        for event in stream:
            events.append(next(iter(event)))
        return ("ok", len(events))
    except ClientError as e:
        return _refusal_or_status(e)
    except Exception as e:  # noqa: BLE001 - a cut stream surfaces as a botocore/urllib3 error
        return ("cut", len(events), type(e).__name__)


def run_plan(stack, plan: list[tuple[str, str, str]]) -> list[tuple]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(lambda p: call(stack, *p), plan))


# -- the books ----------------------------------------------------------------------------

def rss_bytes(stack) -> int:
    status = (open(f"/proc/{stack.envoy.proc.pid}/status").read())
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kib) * 1024


class Books:
    """Opened before a burst: audit-log mark, stats, RSS and the mock's request count."""

    def __init__(self, stack):
        self.stack = stack
        self.mark = stack.audit.mark()
        self.before = stack.envoy.stats()
        self.rss = rss_bytes(stack)
        self.seen = len(stack.mock.requests)

    def close(self, sent: int) -> tuple[list[dict], dict[str, int]]:
        records = parse_records(self.stack.audit.take_raw(sent, self.mark, timeout=15))
        after = settled_stats(self.stack.envoy, self.before, len(records))
        close_books(records, self.before, after, sent=sent)
        growth = rss_bytes(self.stack) - self.rss
        assert growth <= RSS_GROWTH_BOUND, f"Envoy's RSS grew by {growth} bytes"
        assert self.stack.envoy.alive()
        return records, after

    def forwarded(self):
        """What reached the mock since the books opened."""
        return self.stack.mock.requests[self.seen:]

    def grew(self, after: dict[str, int], name: str) -> int:
        return after.get(name, 0) - self.before.get(name, 0)

    def grew_family(self, after: dict[str, int], prefix: str) -> int:
        return sum(v - self.before.get(k, 0) for k, v in after.items() if k.startswith(prefix))


def shape(rec: dict) -> tuple:
    """What a record says about a request's fate, for comparing with what was sent."""
    return (rec["eventName"], rec["requestParameters"] and rec["requestParameters"]["modelId"],
            rec["decision"], rec["reason"], rec["status"], rec["upstreamStatus"],
            rec["streamErrors"], rec["inputTokens"] is not None)


def assert_never_forwarded(books: Books, *models: str) -> None:
    time.sleep(0.1)
    for r in books.forwarded():
        for m in models:
            assert m.encode() not in r.raw_target and m.encode() not in r.body, (
                f"a refused request reached the upstream: {r.summary()}")


# -- the tests ----------------------------------------------------------------------------

def test_a_stream_cut_by_the_upstream_is_an_error_and_one_true_record(stack):
    plan = ([("ConverseStream", MODEL, RESET_MID_STREAM)] * 8
            + [("InvokeModelWithResponseStream", MODEL, CLOSE_MID_FRAME)] * 8
            + [("ConverseStream", MODEL, "hello")] * 6
            + [("InvokeModelWithResponseStream", MODEL, "hello")] * 4
            + [("ConverseStream", DENIED, RESET_MID_STREAM)] * 4
            + [("InvokeModelWithResponseStream", DENIED, CLOSE_MID_FRAME)] * 4)
    random.Random(14).shuffle(plan)
    books = Books(stack)
    results = run_plan(stack, plan)
    records, after = books.close(len(plan))

    expected = collections.Counter()
    for (op, model, text), got in zip(plan, results):
        if model == DENIED:
            assert got == ("refused", "model_denied"), (op, text, got)
            expected[(op, model, "deny", "model_denied", 403, None, None, False)] += 1
        elif text == "hello":
            assert got == ("ok", FULL_STREAM[op]), (op, got)
            expected[(op, model, "allow", "allowed", 200, 200, 0, True)] += 1
        else:
            # The frames before the cut reached the client (at most: a half frame is not an
            # event), then an error: never a clean end of stream.
            assert got[0] == "cut" and got[1] <= FRAMES_BEFORE_CUT, (op, text, got)
            errors = 1 if text == CLOSE_MID_FRAME else 0
            expected[(op, model, "allow", "allowed", 200, 200, errors, False)] += 1
    assert collections.Counter(shape(r) for r in records) == expected
    for r in records:
        if r["decision"] == "allow":
            assert r["streamExceptions"] == 0 and r["upstreamRequestId"], r
    assert books.grew(after, "wasmcustom.bedrock_guard.stream_malformed_frames") == 8
    assert books.grew_family(after, "wasmcustom.bedrock_guard.upstream_responses.class.2xx") == 26
    assert len(books.forwarded()) == 26
    assert_never_forwarded(books, DENIED)


def test_an_upstream_too_slow_gets_envoys_504_recorded_as_no_upstream_answer(stack):
    plan = ([("Converse", MODEL, SLOW)] * 6
            + [("ConverseStream", MODEL, SLOW)] * 3
            + [("ConverseStream", MODEL, STALL_MID_STREAM)] * 4
            + [("Converse", MODEL, "hello")] * 4
            + [("Converse", DENIED, SLOW)] * 3)
    random.Random(15).shuffle(plan)
    books = Books(stack)
    started = time.monotonic()
    results = run_plan(stack, plan)
    took = time.monotonic() - started
    records, after = books.close(len(plan))

    expected = collections.Counter()
    for (op, model, text), got in zip(plan, results):
        if model == DENIED:
            assert got == ("refused", "model_denied"), got
            expected[(op, model, "deny", "model_denied", 403, None, None, False)] += 1
        elif text == SLOW:
            assert got == ("status", 504), (op, got)
            expected[(op, model, "allow", "allowed", 504, None, None, False)] += 1
        elif text == STALL_MID_STREAM:
            assert got[0] == "cut" and got[1] <= FRAMES_BEFORE_CUT, got
            expected[(op, model, "allow", "allowed", 200, 200, 0, False)] += 1
        else:
            assert got == ("ok", None), got
            expected[(op, model, "allow", "allowed", 200, 200, None, True)] += 1
    assert collections.Counter(shape(r) for r in records) == expected
    for r in records:
        if r["status"] == 504 or r["streamErrors"] == 0:
            # Cut by the route timeout, not by the mock (which holds on for 2 s); the timer and
            # the filter's clock may differ by a few ms.
            assert ROUTE_TIMEOUT_S * 1000 - 50 <= r["latencyMs"] < ROUTE_TIMEOUT_S * 1000 + 800, r
        if r["status"] == 504:
            assert r["upstreamAddress"] is None and r["upstreamRequestId"] is None, r
    # A timeout is never counted as an upstream answer, let alone a 2xx; Envoy agrees.
    assert books.grew_family(after, "wasmcustom.bedrock_guard.upstream_responses.class.5xx") == 0
    assert books.grew_family(after, "wasmcustom.bedrock_guard.upstream_responses.class.2xx") == 8
    assert books.grew(after, "http.egress_http.downstream_rq_5xx") == 9
    assert books.grew(after, "cluster.bedrock_runtime_us_east_1.upstream_rq_timeout") == 13
    assert took < 10, took
    assert_never_forwarded(books, DENIED)


def test_an_upstream_reset_before_answering_or_mid_body_gets_envoys_503(stack):
    big = RESET_IN_BODY + "x" * BIG
    plan = ([("Converse", MODEL, RESET_BEFORE_HEADERS)] * 6
            + [("InvokeModel", MODEL, big)] * 4
            + [("ChatCompletions", CHAT_MODEL, big)] * 4
            + [("ChatCompletions", UNLISTED, big)] * 3
            + [("Converse", DENIED, RESET_BEFORE_HEADERS)] * 2
            + [("Converse", MODEL, "hello")] * 3)
    random.Random(16).shuffle(plan)
    books = Books(stack)
    results = run_plan(stack, plan)
    records, after = books.close(len(plan))

    expected = collections.Counter()
    for (name, model, text), got in zip(plan, results):
        if model in (DENIED, UNLISTED):
            reason = "model_denied" if model == DENIED else "model_not_allowed"
            assert got == ("refused", reason), got
            expected[(name, model, "deny", reason, 403, None, None, False)] += 1
        elif text == "hello":
            assert got == ("ok", None), got
            expected[(name, model, "allow", "allowed", 200, 200, None, True)] += 1
        else:
            assert got == ("status", 503), (name, got)
            expected[(name, model, "allow", "allowed", 503, None, None, False)] += 1
    assert collections.Counter(shape(r) for r in records) == expected
    assert books.grew_family(after, "wasmcustom.bedrock_guard.upstream_responses.class.5xx") == 0
    assert books.grew(after, "http.egress_http.downstream_rq_5xx") == 14
    cut = [r for r in books.forwarded() if r.extra.get("fault") == "reset-in-body"]
    assert len(cut) == 8 and all(r.body_len < BIG for r in cut), [r.summary() for r in cut]
    assert_never_forwarded(books, DENIED, UNLISTED)


def _half_body_then_close(stack, path: str, body: bytes) -> None:
    prepared = awsreq.sign("POST", f"http://{awsreq.HOST}{path}", body,
                           {"content-type": "application/json"})
    target, headers, body = awsreq.wire_parts(prepared)
    raw = awsreq.to_http11("POST", target, headers, body)
    with socket.create_connection(("127.0.0.1", stack.envoy.listener_port), timeout=5) as s:
        s.sendall(raw[:len(raw) - len(body) // 2])
        time.sleep(0.2)  # long enough for Envoy to have read and held (or forwarded) the half


def test_a_client_gone_mid_body_is_never_counted_allowed(stack):
    def invoke(model):
        return (f"/model/{model.replace(':', '%3A')}/invoke",
                _anthropic("y" * 100_000).encode())

    def chat(model):
        return ("/openai/v1/chat/completions", _chat(model, "y" * 100_000).encode())

    plan = ([("ChatCompletions", CHAT_MODEL, chat(CHAT_MODEL))] * 3
            + [("ChatCompletions", UNLISTED, chat(UNLISTED))] * 3
            + [("InvokeModel", MODEL, invoke(MODEL))] * 3
            + [("InvokeModel", DENIED, invoke(DENIED))] * 3)
    books = Books(stack)
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda p: _half_body_then_close(stack, *p[2]), plan))
    records, after = books.close(len(plan))

    expected = collections.Counter()
    for op, model, _ in plan:
        if op == "ChatCompletions":
            # Held for its body, which never completed: never decided, never forwarded.
            expected[(op, None, "deny", "body_unparseable", None, None, None, False)] += 1
        elif model == DENIED:
            expected[(op, model, "deny", "model_denied", 403, None, None, False)] += 1
        else:
            # Decided on its head and on its way when the client left: no answer was sent.
            expected[(op, model, "allow", "allowed", None, None, None, False)] += 1
    assert collections.Counter(shape(r) for r in records) == expected
    for r in records:
        if r["reason"] == "body_unparseable":
            assert "before its body was complete" in r["detail"], r
    assert books.grew_family(
        after, "wasmcustom.bedrock_guard.requests.operation.ChatCompletions.") == 6
    # Only the allowed InvokeModel requests left; never a held ChatCompletions, never a denial.
    for r in books.forwarded():
        assert r.raw_target == invoke(MODEL)[0].encode(), r.summary()
    assert_never_forwarded(books, DENIED, UNLISTED, CHAT_MODEL)
