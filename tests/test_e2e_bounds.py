"""End to end: every bound a user sees, at its number and one past it (issue 14, item 3).

docs/operations.md, "Bounds", lists each bound with its number, what happens at it, the stat to
watch and the test that proves it; the pure ones are unit tests in the crate where the bound
lives, these are the ones seen through a real Envoy:

* the body limit (`limits.max_body_bytes`): a body of exactly that many bytes is decided and
  forwarded, one byte more is the guard's 413 `body_too_large` and nothing leaves, with
  Content-Length and with chunked bodies;
* the alert queue (`alerts.queue_capacity`): with the sink holding the POST, exactly N events
  are held, each refusal after that is dropped and counted in `bedrock_guard.alerts_dropped`,
  and no request waits;
* the event-stream reader: a frame of exactly the reader's largest size passes and the
  stream's usage is read after it; one byte larger and the reader stops (counted in
  `bedrock_guard.stream_malformed_frames` and the audit record's `streamErrors`), while the
  client still gets every byte;
* the JWKS fetch rate: a flood of unknown-kid tokens makes one worker fetch at most once per
  `UNKNOWN_KID_MIN_INTERVAL` (5 s of the VM's whole-second clock: never two fetches within 4 s);
* Envoy's overload manager as shipped (envoy/overload/overload_manager.yaml, in every
  envoy/*.yaml), rendered from envoy/demo.yaml with its numbers lowered: connection N+1 is
  closed on accept and counted (`downstream_global_cx_overflow`) while the first N are served;
  a heap bound below Envoy's heap makes Envoy answer 503 "envoy overloaded" itself, before the
  guard or the upstream sees anything.

Every Envoy here runs one worker (`concurrency=1`), so per-worker bounds are that worker's.
"""

from __future__ import annotations

import json
import socket
import struct
import time
import zlib
from pathlib import Path

import pytest
import yaml

from tests.conftest import BEDROCK_HOST, DEMO_BUNDLE
from tests.harness import rawhttp
from tests.harness.alert_sink import AlertSink, sink_cluster
from tests.harness.assertions import assert_mock_saw_nothing, assert_raw_refusal, single_forwarded
from tests.harness.audit_log import AuditLog
from tests.harness.awsreq import sign, to_http11, wire_parts
from tests.harness.envoy import REPO_ROOT, free_port, render_config
from tests.harness.jwks_server import JwksServer, add_static_cluster
from tests.harness.mock_bedrock import MockBedrock, _Reply
from tests.harness.stack import WASM_PATH, envoy_stack
from tests.harness.tokens import SigningKey, claims

# The numbers under test (docs/operations.md, "Bounds").
MAX_BODY = 8192                      # this bundle's limits.max_body_bytes
ALERT_CAPACITY = 5                   # this bundle's alerts.queue_capacity
UNKNOWN_KID_MIN_INTERVAL = 5         # plugin/src/identity.rs
MAX_HEADERS_BYTES = 128 * 1024       # policies/src/eventstream.rs
MAX_PAYLOAD_BYTES = 24 * 1024 * 1024
MAX_FRAME_BYTES = 12 + MAX_HEADERS_BYTES + MAX_PAYLOAD_BYTES + 4
CONNECTION_LIMIT = 5                 # the shipped 1024, lowered

OVERLOAD = yaml.safe_load((REPO_ROOT / "envoy" / "overload" / "overload_manager.yaml").read_text())

CHAT = "/openai/v1/chat/completions"
CHAT_MODEL = "openai.gpt-oss-20b-1:0"           # allowed by the demo bundle
CLAUDE_TARGET = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
CLAUDE_STREAM = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
DENIED_TARGET = "/model/meta.llama3-8b-instruct-v1%3A0/converse"
CONVERSE_BODY = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode()


# -- requests ----------------------------------------------------------------------------------

def signed(target: str, body: bytes, *, chunked: bool = False,
           extra: list[tuple[str, str]] = ()) -> tuple[bytes, list[bytes]]:
    """A botocore-signed POST for `target`: (head, body parts on the wire)."""
    _, headers, _ = wire_parts(sign("POST", f"http://{BEDROCK_HOST}{target}", body,
                                    {"Content-Type": "application/json"}))
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    headers.append(("Transfer-Encoding", "chunked") if chunked
                   else ("Content-Length", str(len(body))))
    headers += [*extra, ("Connection", "close")]
    head = to_http11("POST", target.encode(), headers)
    if not chunked:
        return head, [body]
    half = len(body) // 2
    return head, [b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:])] + [b"0\r\n\r\n"]


def send(port: int, target: str, body: bytes, *, chunked: bool = False,
         extra: list[tuple[str, str]] = (), timeout: float = 10.0) -> rawhttp.RawResponse:
    head, parts = signed(target, body, chunked=chunked, extra=extra)
    return rawhttp.exchange(port, head, chunks=parts, timeout=timeout)


def chat_of_len(n: int) -> bytes:
    """A ChatCompletions body of exactly `n` bytes."""
    base = json.dumps({"model": CHAT_MODEL, "messages": [{"role": "user", "content": ""}]})
    body = base.replace('"content": ""', '"content": "' + "x" * (n - len(base)) + '"').encode()
    assert len(body) == n
    return body


def stat(proc, suffix: str) -> int:
    return sum(v for k, v in proc.stats().items() if k.endswith(suffix))


def bedrock_requests(proc) -> int:
    """Requests Envoy started towards its upstream clusters."""
    return sum(v for k, v in proc.stats().items()
               if k.startswith("cluster.") and k.endswith(".upstream_rq_total"))


def wait_for(predicate, timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    assert predicate(), f"not within {timeout}s: {what}"


# -- event-stream frames at the reader's limit ---------------------------------------------------

def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _str_header(name: str, value: bytes) -> bytes:
    n = name.encode()
    return struct.pack(">B", len(n)) + n + struct.pack(">BH", 7, len(value)) + value


def big_frame(payload_len: int) -> bytes:
    """An `event` frame whose headers are exactly MAX_HEADERS_BYTES (padded with unknown
    headers) and whose payload is `payload_len` bytes: MAX_PAYLOAD_BYTES makes a frame of exactly
    MAX_FRAME_BYTES, the largest the reader accepts."""
    headers = (_str_header(":event-type", b"messageStart")
               + _str_header(":content-type", b"application/json")
               + _str_header(":message-type", b"event"))
    n = 0
    while len(headers) < MAX_HEADERS_BYTES:
        room = MAX_HEADERS_BYTES - len(headers)
        name = f"x-fill-{n:02}"
        overhead = 1 + len(name) + 3
        value = room - overhead if room - overhead <= 60000 else min(60000, room - 2 * overhead)
        headers += _str_header(name, b"f" * value)
        n += 1
    assert len(headers) == MAX_HEADERS_BYTES
    total = 12 + len(headers) + payload_len + 4
    prelude = struct.pack(">II", total, len(headers))
    head = prelude + struct.pack(">I", _crc(prelude))
    crc = zlib.crc32(head + headers)
    payload = b" " * payload_len
    crc = zlib.crc32(payload, crc) & 0xFFFFFFFF
    return b"".join([head, headers, payload, struct.pack(">I", crc)])


class LeadingFrameMock(MockBedrock):
    """The mock Bedrock, whose ConverseStream answers start with `lead` (then the usual events,
    the `metadata` one with the usage last), sent in 64 KiB chunks."""

    lead = b""

    def _op_ConverseStream(self, rec):
        reply = super()._op_ConverseStream(rec)
        stream = self.lead + b"".join(reply.chunks)
        rec.extra["stream_len"] = len(stream)
        return _Reply(reply.status, reply.headers,
                      chunks=[stream[i:i + 65536] for i in range(0, len(stream), 65536)])


# -- the stacks ----------------------------------------------------------------------------------

def overloaded_demo(work: Path, pki_dir: Path, upstream: int, bundle: dict | None = None,
                    **numbers) -> tuple[Path, int, int]:
    """envoy/demo.yaml rendered as every end-to-end test renders it (so with the shipped
    overload_manager), then the given numbers of that block changed."""
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, upstream, pki_dir, WASM_PATH, bundle, out_dir=work)
    doc = yaml.safe_load(cfg.read_text())
    assert doc["overload_manager"] == OVERLOAD, "envoy/demo.yaml lost the shipped overload manager"
    for monitor in doc["overload_manager"]["resource_monitors"]:
        for key, value in numbers.items():
            if key in monitor["typed_config"]:
                monitor["typed_config"][key] = value
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    return cfg, admin, listener


def _stack(tmp_path_factory, name: str, pki_dir: Path, upstream: int, bundle: dict,
           sink: AlertSink | None = None, **overload):
    """One worker, the demo config with `bundle` (and `overload` numbers), the access log
    (audit records) in a file."""
    work = tmp_path_factory.mktemp(name)
    cfg, admin, listener = overloaded_demo(work, pki_dir, upstream, bundle, **overload)
    if sink is not None:
        doc = yaml.safe_load(cfg.read_text())
        doc["static_resources"]["clusters"].append(sink_cluster(sink.port))
        cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    return envoy_stack(cfg, admin, listener, work, split_logs=True, concurrency=1), \
        AuditLog(work / "envoy-stdout.log")


@pytest.fixture(scope="module")
def limits_env(tmp_path_factory, pki_dir):
    """The demo bundle with limits.max_body_bytes MAX_BODY, in front of a mock that can lead
    streams with a frame of any size; Envoy's connection limit lowered to CONNECTION_LIMIT (the
    other tests use one connection at a time)."""
    mock = LeadingFrameMock(pki_dir=pki_dir).start()
    bundle = json.loads(Path(DEMO_BUNDLE).read_text())
    bundle["limits"] = {"max_body_bytes": MAX_BODY}
    stack, audit = _stack(tmp_path_factory, "bounds-limits", pki_dir, mock.port, bundle,
                          max_active_downstream_connections=CONNECTION_LIMIT)
    try:
        with stack as proc:
            yield proc, mock, audit
    finally:
        mock.stop()


@pytest.fixture
def limits(limits_env):
    proc, mock, audit = limits_env
    if not proc.alive():
        pytest.fail("Envoy died during the run:\n" + proc.log_tail(), pytrace=False)
    mock.reset()
    mock.lead = b""
    return proc, mock, audit


@pytest.fixture
def alerting(tmp_path_factory, pki_dir, mock_server):
    """The demo bundle with deny alerts (queue_capacity ALERT_CAPACITY, flushed every second)
    to a sink that holds every POST until released."""
    sink = AlertSink()
    sink.mode = "hold"
    bundle = json.loads(Path(DEMO_BUNDLE).read_text())
    bundle["alerts"] = {"cluster": "deny_sink", "path": "/events",
                        "flush_interval_seconds": 1, "queue_capacity": ALERT_CAPACITY}
    stack, audit = _stack(tmp_path_factory, "bounds-alerts", pki_dir, mock_server.port, bundle,
                          sink)
    try:
        with stack as proc:
            yield proc, sink, audit
    finally:
        sink.stop()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_of_exactly_max_body_bytes_is_forwarded_and_one_byte_more_is_413(limits, chunked):
    proc, mock, audit = limits
    at = chat_of_len(MAX_BODY)
    since = audit.mark()
    resp = send(proc.listener_port, CHAT, at, chunked=chunked)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert single_forwarded(mock).body == at
    (record,) = audit.take(1, since)
    assert (record["decision"], record["status"]) == ("allow", 200)

    mock.reset()
    before = bedrock_requests(proc)
    since = audit.mark()
    resp = send(proc.listener_port, CHAT, chat_of_len(MAX_BODY + 1), chunked=chunked)
    assert_raw_refusal(resp, "body_too_large", status=413)
    assert_mock_saw_nothing(mock)
    assert bedrock_requests(proc) == before, "the oversized request reached the upstream"
    (record,) = audit.take(1, since)
    assert (record["decision"], record["reason"], record["status"]) == \
        ("deny", "body_too_large", 413)


def test_the_alert_queue_holds_exactly_its_capacity_then_drops_and_counts(alerting):
    proc, sink, audit = alerting
    port = proc.listener_port
    assert stat(proc, "bedrock_guard.alerts_dropped") == 0
    sent_before = len(sink.events())
    since = audit.mark()
    for _ in range(ALERT_CAPACITY):
        assert send(port, DENIED_TARGET, b"{}").status == 403
    # The sink receives the first batch and holds it unanswered: in flight, still held.
    wait_for(lambda: len(sink.events()) > sent_before, what="the first POST reaches the sink")
    assert stat(proc, "bedrock_guard.alerts_dropped") == 0, "N events are held"
    for i in range(1, 4):
        started = time.monotonic()
        assert send(port, DENIED_TARGET, b"{}").status == 403
        assert time.monotonic() - started < 1.0, "a refusal waited for the sink"
        wait_for(lambda: stat(proc, "bedrock_guard.alerts_dropped") == i,
                 what=f"alerts_dropped == {i}")
    # Every refusal was still decided and audited; only its alert was dropped.
    assert len(audit.take(ALERT_CAPACITY + 3, since)) == ALERT_CAPACITY + 3
    # Once the sink answers, the held events are delivered and there is room again.
    sink.release()
    wait_for(lambda: stat(proc, "bedrock_guard.alerts_sent") == ALERT_CAPACITY, timeout=8,
             what="the held events delivered")
    assert send(port, DENIED_TARGET, b"{}").status == 403
    wait_for(lambda: stat(proc, "bedrock_guard.alerts_sent") == ALERT_CAPACITY + 1, timeout=8,
             what="a new event delivered")
    assert stat(proc, "bedrock_guard.alerts_dropped") == 3
    assert len(sink.events()) == sent_before + ALERT_CAPACITY + 1


@pytest.mark.parametrize("over", [False, True], ids=["at-the-limit", "one-byte-over"])
def test_a_stream_frame_at_the_readers_limit_passes_and_one_byte_more_stops_the_reader(limits,
                                                                                     over):
    proc, mock, audit = limits
    lead = big_frame(MAX_PAYLOAD_BYTES + (1 if over else 0))
    assert len(lead) == MAX_FRAME_BYTES + (1 if over else 0)
    mock.lead = lead
    malformed = stat(proc, "bedrock_guard.stream_malformed_frames")
    since = audit.mark()
    resp = send(proc.listener_port, CLAUDE_STREAM, CONVERSE_BODY, timeout=30)
    assert resp.status == 200, (resp.status, resp.body[:300])
    rec = single_forwarded(mock)
    # The answer passes through unchanged either way.
    assert len(resp.body) == rec.extra["stream_len"] and resp.body.startswith(lead[:4096])
    (record,) = audit.take(1, since)
    assert record["decision"] == "allow"
    if over:
        assert (record["streamErrors"], record["inputTokens"]) == (1, None), record
        wait_for(lambda: stat(proc, "bedrock_guard.stream_malformed_frames") == malformed + 1,
                 what="stream_malformed_frames counted")
    else:
        assert record["streamErrors"] == 0, record
        assert (record["inputTokens"], record["outputTokens"]) == \
            (rec.input_tokens, rec.output_tokens), "usage after the big frame is read"
        assert stat(proc, "bedrock_guard.stream_malformed_frames") == malformed


# -- the JWKS fetch rate ---------------------------------------------------------------------------

ISSUER = "https://flood.idp.test"
AUDIENCE = "bedrock-egress"
JWKS_PATH = "/.well-known/jwks.json"
KEY = SigningKey.ec("flood-known")


@pytest.fixture(scope="module")
def jwks_env(tmp_path_factory, pki_dir, mock_server):
    server = JwksServer(JWKS_PATH).start()
    server.set_keys([KEY.jwk()])
    bundle = json.loads(Path(DEMO_BUNDLE).read_text())
    bundle["identity"] = {"header": "x-workload-identity", "providers": [{
        "name": "flood", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
        # No scheduled refresh falls inside the test: only unknown kids make it fetch.
        "remote_jwks": {"cluster": "idp_jwks", "path": JWKS_PATH,
                        "refresh_seconds": 3600, "max_stale_seconds": 7200}}]}
    work = tmp_path_factory.mktemp("bounds-jwks")
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, mock_server.port, pki_dir, WASM_PATH, bundle,
                        out_dir=work)
    add_static_cluster(cfg, "idp_jwks", server.port)
    try:
        with envoy_stack(cfg, admin, listener, work, concurrency=1) as proc:
            yield proc, server
    finally:
        server.stop()


def test_an_unknown_kid_flood_fetches_at_most_once_per_interval(jwks_env):
    proc, server = jwks_env
    port = proc.listener_port
    wait_for(lambda: server.fetches(mode="ok"), what="the start-up fetch")
    start = min(f.at for f in server.fetches())
    # Each root context (the worker's, and the main thread's, which never sees a request)
    # fetches once at its first 1 s tick; only the worker's fetches again, on unknown kids.
    settle = start + 1.5
    time.sleep(max(0.0, settle - time.monotonic()))
    startup = sorted(f.at for f in server.fetches())
    assert 1 <= len(startup) <= 2, startup
    window = 2 * UNKNOWN_KID_MIN_INTERVAL + 0.5
    sent = 0
    while time.monotonic() < start + window:
        token = KEY.mint(claims(ISSUER, AUDIENCE, "svc"), kid=f"unknown-{sent}")
        resp = send(port, CLAUDE_TARGET, CONVERSE_BODY, extra=[("x-workload-identity", token)])
        assert resp.status == 403, (resp.status, resp.body[:200])
        assert json.loads(resp.body)["message"] == \
            "bedrock-guard: identity_invalid: unknown_key", resp.body
        sent += 1
        time.sleep(0.02)
    time.sleep(0.2)
    flood = sorted(f.at for f in server.fetches() if settle < f.at <= start + window)
    # The worker's own start-up fetch is one of `startup`, none earlier than the first.
    gaps = [round(b - a, 2) for a, b in zip([startup[0], *flood], flood)]
    print(f"\n{sent} unknown kids in {window - 1.5:.1f}s; JWKS fetches at "
          f"{[round(t - start, 2) for t in startup + flood]} s (on-demand gaps {gaps})")
    # The bound: one fetch per 5 s of the VM's whole-second clock, so never two within 4 s of
    # each other (the worker's start-up fetch counts), at most window / 4 of them ...
    assert all(g > UNKNOWN_KID_MIN_INTERVAL - 1 for g in gaps), gaps
    assert len(flood) <= int(window // (UNKNOWN_KID_MIN_INTERVAL - 1)), flood
    # ... and the rate is used: the flood did make the worker look for new keys.
    assert len(flood) >= 1, flood


# -- Envoy's overload manager, as shipped ---------------------------------------------------------

def _request_on(sock: socket.socket, target: str, body: bytes) -> rawhttp.RawResponse:
    _, headers, _ = wire_parts(sign("POST", f"http://{BEDROCK_HOST}{target}", body,
                                    {"Content-Type": "application/json"}))
    sock.sendall(to_http11("POST", target.encode(), headers, body))
    return rawhttp.read_response(sock)


def test_connection_n_plus_one_is_refused_and_counted_while_n_are_served(limits):
    proc, mock, _ = limits
    listener = proc.listener_port
    overflow = f"listener.127.0.0.1_{listener}.downstream_global_cx_overflow"
    before = proc.stats()[overflow]
    conns = [socket.create_connection(("127.0.0.1", listener), timeout=5)
             for _ in range(CONNECTION_LIMIT)]
    try:
        for c in conns:
            assert _request_on(c, CLAUDE_TARGET, CONVERSE_BODY).status == 200
        assert proc.stats()[overflow] == before
        extra = socket.create_connection(("127.0.0.1", listener), timeout=5)
        with extra:
            try:
                extra.sendall(to_http11("GET", b"/", [("Host", BEDROCK_HOST)]))
                got = extra.recv(100)
            except ConnectionError:
                got = b""
        assert got == b"", f"connection {CONNECTION_LIMIT + 1} was served: {got!r}"
        wait_for(lambda: proc.stats()[overflow] == before + 1, what=f"{overflow} counted")
        # The N open connections still work; close one and there is room for a new one.
        assert _request_on(conns[0], CLAUDE_TARGET, CONVERSE_BODY).status == 200
        conns.pop().close()
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", listener), timeout=5) as again:
            assert _request_on(again, CLAUDE_TARGET, CONVERSE_BODY).status == 200
        assert proc.stats()[overflow] == before + 1
        assert len(mock.requests) == CONNECTION_LIMIT + 2
    finally:
        for c in conns:
            c.close()


def test_a_heap_above_the_bound_gets_envoys_503_and_nothing_reaches_the_guard(tmp_path, pki_dir,
                                                                              mock):
    cfg, admin, listener = overloaded_demo(tmp_path, pki_dir, mock.port,
                                           max_heap_size_bytes=1 << 20)
    with envoy_stack(cfg, admin, listener, tmp_path, concurrency=1) as proc:
        active = "overload.envoy.overload_actions.stop_accepting_requests.active"
        wait_for(lambda: proc.stats().get(active) == 1, what=f"{active} == 1")
        assert proc.stats()["overload.envoy.overload_actions.shrink_heap.active"] == 1
        assert proc.stats()["overload.envoy.resource_monitors.fixed_heap.pressure"] > 95
        decided = stat(proc, "bedrock_guard.requests_total")
        for target in (CLAUDE_TARGET, DENIED_TARGET):
            resp = send(listener, target, CONVERSE_BODY)
            assert (resp.status, resp.body) == (503, b"envoy overloaded"), (resp.status, resp.body)
        assert proc.stats()["http.egress_http.downstream_rq_overload_close"] == 2
        assert stat(proc, "bedrock_guard.requests_total") == decided, "the guard saw a request"
        assert_mock_saw_nothing(mock)
