"""End to end: the audit record Envoy's access log writes for each request (one JSON line on
stdout from `%FILTER_STATE(wasm.bedrock_guard_audit:PLAIN)%`).

* golden records: the stable fields of allowed, refused, dry-run, streamed, InvokeModel and
  upstream-error requests (with the upstream's status and address), and exactly one line per
  request;
* canary: secrets and markers planted in every place a request (or its answer) can carry them
  never show up in any output of the run (audit lines, Envoy's log, refusal bodies, stats), while
  each one provably travelled through the proxy;
* injection: header, path and body values shaped to break the JSON line leave every line a
  strict JSON object with the verdict unchanged.

The module runs its own mock and Envoy (demo config, the demo bundle renamed and given a
dry-run rule), so nothing else writes to its access log.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY, BEDROCK_HOST, DEMO_BUNDLE, REGION, SECRET_KEY, WASM_PATH
from tests.harness import rawhttp
from tests.harness.audit_log import (
    ECHO, NO_RECORD, SERVER_ERROR, THROTTLE, AuditStack, boto_client, bundle_digest,
    dry_run_variant, parse_event_time, parse_line,
)
from tests.harness.awsreq import sign, to_http11, wire_parts
from tests.harness.mock_bedrock import REPLY_TEXT, usage_for
from tests.harness.sigv4 import DEFAULT_CREDENTIALS

BUNDLE = dry_run_variant(json.loads(DEMO_BUNDLE.read_text()))
DIGEST = bundle_digest(BUNDLE)
LITERAL = "anthropic.claude-3-5-sonnet-20240620-v1:0"  # allowed by rule claude-and-titan
LITERAL_ENC = quote(LITERAL, safe="")
DENIED = "meta.llama3-8b-instruct-v1:0"  # no rule allows it
OPUS = "anthropic.claude-opus-4-20250514-v1:0"  # deny rule no-opus
DRY_RUN = "amazon.titan-text-express-v1"  # allowed, but deny rule titan-dry-run (dry-run)
INVOKE_BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                          "messages": [{"role": "user", "content": "Say hello."}]}).encode()


def _marker(tag: str) -> str:
    return f"ZQ{tag}{secrets.token_hex(8).upper()}"


# -- canary secrets (fresh each run, fake; uppercase so they survive any case folding search) ---

M = {tag: _marker(tag) for tag in (
    "SESSIONTOKEN", "BEARERSHORT", "BEARERSHORTINNER", "ABSK", "JWT", "JWTCLAIM", "CUSTOM",
    "USERAGENT", "QUERY", "PROMPT", "COMPLETION")}
# BEARERSHORTINNER travels only base64-encoded inside the short-term key: it can show up in an
# output only if something decoded the key and logged what it found.
CANARY_AKID = "ASIAZQCANARY" + secrets.token_hex(4).upper()
CANARY_SECRET = base64.b64encode(secrets.token_bytes(30)).decode()
CANARY_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE" + M["SESSIONTOKEN"] + "//////////wEaCXVzLWVhc3QtMSJH"
_PRESIGNED = (
    "bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential={CANARY_AKID}%2F20250101%2Fus-east-1%2Fbedrock%2Faws4_request"
    "&X-Amz-Date=20250101T000000Z&X-Amz-Expires=43200"
    f"&X-Amz-Security-Token={M['BEARERSHORTINNER']}"
    f"&X-Amz-Signature={secrets.token_hex(32)}&X-Amz-SignedHeaders=host&Version=1")
SHORT_KEY_B64 = base64.b64encode(_PRESIGNED.encode()).decode()
SHORT_KEY = "bedrock-api-key-" + SHORT_KEY_B64 + M["BEARERSHORT"]
LONG_KEY_B64 = base64.b64encode(
    f"BedrockAPIKey-zq-at-123456789012:{secrets.token_hex(20)}".encode()).decode()
LONG_KEY = "ABSK" + LONG_KEY_B64 + M["ABSK"]
_JWT_HEAD = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"RS256","typ":"JWT"}
_JWT_BODY = base64.urlsafe_b64encode(json.dumps(
    {"iss": "https://oidc.example.test", "sub": "system:serviceaccount:zq:app",
     "aud": "bedrock-guard", "exp": 4102444800, "n": M["JWTCLAIM"]}).encode()).decode().rstrip("=")
JWT = f"{_JWT_HEAD}.{_JWT_BODY}.{M['JWT']}"

CREDENTIALS = dict(DEFAULT_CREDENTIALS)
CREDENTIALS[CANARY_AKID] = (CANARY_SECRET, CANARY_TOKEN)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, pki_dir):
    s = AuditStack(tmp_path_factory.mktemp("audit"), pki_dir, WASM_PATH, BUNDLE,
                   credentials=CREDENTIALS)
    s.start()  # fails the test, with Envoy's log, if Envoy or the module is missing or broken
    s.mock.completion_marker = M["COMPLETION"]
    yield s
    s.stop()


@pytest.fixture
def live(stack):
    if not stack.envoy.alive():
        pytest.fail("Envoy died during the run:\n" + stack.app_log_tail(), pytrace=False)
    stack.mock.reset()
    return stack


def _client(stack, **kw):
    return boto_client(stack, ACCESS_KEY, SECRET_KEY, **kw)


def _messages(text="Say hello."):
    return [{"role": "user", "content": [{"text": text}]}]


# -- golden records ----------------------------------------------------------------------------

COMMON = {
    "eventVersion": "1.0", "eventSource": "bedrock-guard", "awsRegion": REGION,
    "sourceIPAddress": "127.0.0.1", "userIdentity": None, "accessKeyId": ACCESS_KEY,
    "credentialType": "sigv4", "endpoint": BEDROCK_HOST, "vpcEndpointId": None,
    "mode": "enforce", "bundleName": "audit-e2e", "bundleRevision": "42", "bundleDigest": DIGEST,
    "bundleKeyId": None,
    "inputTokens": None, "outputTokens": None, "streamErrors": None, "streamExceptions": None,
    "streamExceptionType": None,
}


def _allowed(op, model, rule="claude-and-titan", **over):
    return {**COMMON, "eventName": op, "requestParameters": {"modelId": model},
            "decision": "allow", "reason": "allowed", "detail": None, "ruleId": rule,
            "status": 200, "upstreamStatus": 200, **over}


def _refused(op, model, reason, rule=None, **over):
    return {**COMMON, "eventName": op, "requestParameters": {"modelId": model},
            "decision": "deny", "reason": reason, "ruleId": rule, "status": 403,
            "upstreamStatus": None, "upstreamAddress": None, "upstreamRequestId": None,
            **over}


def _upstream(stack) -> str:
    """`upstreamAddress` of an answer from the stack's mock: Envoy's `upstream.address`."""
    return f"{stack.mock.host}:{stack.mock.port}"


def _assert_fields(rec: dict, want: dict) -> None:
    diff = {k: {"got": rec.get(k), "want": v} for k, v in want.items() if rec.get(k) != v}
    assert not diff, "audit record differs:\n" + json.dumps(diff, indent=1) + "\n" + json.dumps(rec)


def _assert_time_and_latency(rec: dict, t0: float, t1: float) -> None:
    when = parse_event_time(rec["eventTime"]).timestamp()
    assert t0 - 1 <= when <= t1 + 1, (rec["eventTime"], t0, t1)
    lat = rec["latencyMs"]
    assert isinstance(lat, int) and not isinstance(lat, bool), rec
    assert 0 <= lat <= (t1 - t0) * 1000 + 50, (lat, t1 - t0)


def _converse(c, model, text="Say hello."):
    r = c.converse(modelId=model, messages=_messages(text))
    assert r["output"]["message"]["content"][0]["text"].startswith(REPLY_TEXT)
    u = r["usage"]  # read by the filter from the JSON body as it passed
    return r["ResponseMetadata"]["HTTPHeaders"], (u["inputTokens"], u["outputTokens"])


def _converse_stream(c, model):
    r = c.converse_stream(modelId=model, messages=_messages())
    events = list(r["stream"])
    u = events[-1]["metadata"]["usage"]
    return r["ResponseMetadata"]["HTTPHeaders"], (u["inputTokens"], u["outputTokens"])


def _invoke(c, model):
    r = c.invoke_model(modelId=model, body=INVOKE_BODY, contentType="application/json",
                       accept="application/json")
    r["body"].read()
    h = r["ResponseMetadata"]["HTTPHeaders"]
    return h, (int(h["x-amzn-bedrock-input-token-count"]),
               int(h["x-amzn-bedrock-output-token-count"]))


def _invoke_stream(c, model):
    r = c.invoke_model_with_response_stream(modelId=model, body=INVOKE_BODY,
                                            contentType="application/json",
                                            accept="application/json")
    chunks = [json.loads(e["chunk"]["bytes"]) for e in r["body"]]
    m = chunks[-1]["amazon-bedrock-invocationMetrics"]
    return r["ResponseMetadata"]["HTTPHeaders"], (m["inputTokenCount"], m["outputTokenCount"])


# (id, call, expected record, tokens: None | "mock")
FORWARDED = [
    # Converse's usage is in its JSON body (no token-count headers): read as it passes.
    ("converse-allowed", lambda c: _converse(c, LITERAL), _allowed("Converse", LITERAL), "mock"),
    ("converse-dry-run-deny", lambda c: _converse(c, DRY_RUN),
     _allowed("Converse", DRY_RUN, rule="titan-dry-run", decision="deny", reason="model_denied",
              mode="dry-run", detail="denied by rule titan-dry-run"), "mock"),
    ("converse-stream", lambda c: _converse_stream(c, LITERAL),
     _allowed("ConverseStream", LITERAL, streamErrors=0, streamExceptions=0), "mock"),
    ("invoke-with-response-stream", lambda c: _invoke_stream(c, LITERAL),
     _allowed("InvokeModelWithResponseStream", LITERAL, streamErrors=0, streamExceptions=0),
     "mock"),
    ("invoke-model", lambda c: _invoke(c, LITERAL), _allowed("InvokeModel", LITERAL), "mock"),
]


@pytest.mark.parametrize("call,want,tokens", [c[1:] for c in FORWARDED],
                         ids=[c[0] for c in FORWARDED])
def test_golden_record_of_a_forwarded_request(live, call, want, tokens):
    client, _ = _client(live)
    mark = live.audit.mark()
    t0 = time.time()
    headers, seen_tokens = call(client)
    t1 = time.time()
    [rec] = live.audit.take(1, since=mark)
    [up] = live.mock.wait_for_requests(1)
    assert len(live.mock.requests) == 1
    if tokens == "mock":
        n, m = usage_for(up.body_len)
        assert seen_tokens == (n, m)
        want = {**want, "inputTokens": n, "outputTokens": m}
    # Bedrock's own request id (CloudTrail's `requestID`) next to Envoy's.
    _assert_fields(rec, {**want, "upstreamAddress": _upstream(live),
                         "upstreamRequestId": up.request_id})
    _assert_time_and_latency(rec, t0, t1)
    # The record's id is the one Envoy sent upstream with the request (for correlation).
    assert up.header_values("x-request-id") == [rec["requestID"]], (up.headers, rec)
    assert headers.get("x-amzn-requestid") == up.request_id


REFUSALS = [
    ("model-not-allowed", DENIED, "model_not_allowed", None),
    ("model-denied-by-rule", OPUS, "model_denied", "no-opus"),
]


@pytest.mark.parametrize("model,reason,rule", [c[1:] for c in REFUSALS],
                         ids=[c[0] for c in REFUSALS])
def test_golden_record_of_a_refusal(live, model, reason, rule):
    client, _ = _client(live)
    mark = live.audit.mark()
    t0 = time.time()
    with pytest.raises(ClientError) as e:
        client.converse(modelId=model, messages=_messages())
    t1 = time.time()
    [rec] = live.audit.take(1, since=mark)
    resp = e.value.response
    assert resp["Error"]["Code"] == "AccessDeniedException"
    assert resp["Error"]["Message"].startswith(f"bedrock-guard: {reason}:")
    _assert_fields(rec, _refused("Converse", model, reason, rule))
    assert isinstance(rec["detail"], str) and rec["detail"], rec
    _assert_time_and_latency(rec, t0, t1)
    assert rec["requestID"] == resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert not live.mock.requests


@pytest.mark.parametrize("magic,status,code", [(THROTTLE, 429, "ThrottlingException"),
                                               (SERVER_ERROR, 500, "InternalServerException")],
                         ids=["429-throttled", "500-server-error"])
def test_golden_record_of_an_upstream_error(live, magic, status, code):
    client, _ = _client(live)
    mark = live.audit.mark()
    t0 = time.time()
    with pytest.raises(ClientError) as e:
        client.converse(modelId=LITERAL, messages=_messages(f"please {magic}"))
    t1 = time.time()
    [rec] = live.audit.take(1, since=mark)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert e.value.response["Error"]["Code"] == code
    [up] = live.mock.requests
    _assert_fields(rec, _allowed("Converse", LITERAL, status=status, upstreamStatus=status,
                                 upstreamAddress=_upstream(live),
                                 upstreamRequestId=up.request_id))
    _assert_time_and_latency(rec, t0, t1)
    assert up.header_values("x-request-id") == [rec["requestID"]]


def test_bundle_digest_is_the_canonical_sha256(live):
    client, _ = _client(live)
    mark = live.audit.mark()
    _converse(client, LITERAL)
    [rec] = live.audit.take(1, since=mark)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", rec["bundleDigest"]), rec["bundleDigest"]
    assert rec["bundleDigest"] == DIGEST
    assert DIGEST != bundle_digest(json.loads(DEMO_BUNDLE.read_text()))


def test_one_line_per_request_over_a_burst(live):
    """Twelve requests of every kind, on three connections: twelve lines, no more."""
    clients = [_client(live)[0] for _ in range(3)]
    mark = live.audit.mark()
    calls = [lambda c: _converse(c, LITERAL), lambda c: _converse_stream(c, LITERAL),
             lambda c: _invoke_stream(c, LITERAL), lambda c: _converse(c, DENIED)]
    for c in clients:
        for call in calls:
            try:
                call(c)
            except ClientError:
                pass
    recs = live.audit.take(12, since=mark)
    assert sorted(r["decision"] for r in recs) == ["allow"] * 9 + ["deny"] * 3
    assert len({r["requestID"] for r in recs}) == 12


# -- canary ------------------------------------------------------------------------------------

def _raw(stack, target: str, extra=(), drop=(), body=b'{"messages":[{"role":"user","content":'
         b'[{"text":"hi"}]}]}'):
    url = f"http://{BEDROCK_HOST}{target}"
    _, headers, _ = wire_parts(sign("POST", url, body, {"Content-Type": "application/json"}))
    headers = [h for h in headers if h[0].lower() not in drop] + list(extra)
    data = to_http11("POST", target.encode(), headers + [("Connection", "close")], body)
    return data, rawhttp.exchange(stack.envoy.listener_port, data, timeout=5)


def _find(haystack: str, needle: str) -> int:
    return haystack.lower().find(needle.lower())


def test_canary_secrets_appear_in_no_output(live):
    stack = live
    mark = stack.audit.mark()
    # The custom header is signed; the identity header is added after signing, as Envoy's
    # credential injector would (the filter refuses a signed identity header).
    extra = {"x-canary-note": M["CUSTOM"]}
    unsigned = {"x-workload-identity": JWT}
    received_errors: list[str] = []  # refusal heads and bodies, and a success's head
    n_requests = 0

    # boto3 with session credentials whose token carries a marker, an identity-looking header,
    # a custom header and a user agent with markers; prompts with a marker; the mock puts
    # another marker in the completion.
    c, sent = boto_client(stack, CANARY_AKID, CANARY_SECRET, CANARY_TOKEN, extra_headers=extra,
                          unsigned_headers=unsigned, user_agent_extra=M["USERAGENT"])
    prompt = f"Remember {M['PROMPT']} {ECHO}"
    r = c.converse(modelId=LITERAL, messages=_messages(prompt))
    n_requests += 1
    completion = r["output"]["message"]["content"][0]["text"]
    received_errors.append(json.dumps(r["ResponseMetadata"]))
    r = c.converse_stream(modelId=LITERAL, messages=_messages(prompt))
    list(r["stream"])
    n_requests += 1
    r = c.invoke_model(modelId=LITERAL, contentType="application/json", body=json.dumps(
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8,
         "messages": [{"role": "user", "content": prompt}]}).encode())
    r["body"].read()
    n_requests += 1
    with pytest.raises(ClientError) as e:
        c.converse(modelId=DENIED, messages=_messages(prompt))
    n_requests += 1
    received_errors.append(json.dumps(e.value.response, default=str))
    # Plain long-term credentials too (more real signatures).
    c2, sent2 = _client(stack, extra_headers=extra, unsigned_headers=unsigned)
    c2.converse(modelId=LITERAL, messages=_messages(prompt))
    n_requests += 1

    # Raw: bearer API keys (refused by the demo bundle) and a presigned-style query (refused).
    raw_sent = []
    for name, value in (("Authorization", "Bearer " + SHORT_KEY),
                        ("Authorization", "Bearer " + LONG_KEY), ("x-api-key", LONG_KEY)):
        extra_h = [(name, value), ("x-canary-note", M["CUSTOM"]), ("x-workload-identity", JWT)]
        data, resp = _raw(stack, f"/model/{LITERAL_ENC}/converse", extra=extra_h,
                          drop=("authorization", "x-amz-date", "x-amz-content-sha256"))
        raw_sent.append(data)
        received_errors.append(repr((resp.status, resp.headers, resp.body)))
        assert resp.status == 403, resp
        n_requests += 1
    data, resp = _raw(stack, f"/model/{LITERAL_ENC}/converse?X-Amz-Signature={M['QUERY']}"
                      f"&X-Amz-Security-Token={M['SESSIONTOKEN']}")
    raw_sent.append(data)
    received_errors.append(repr((resp.status, resp.headers, resp.body)))
    assert resp.status == 403, resp
    n_requests += 1

    records = stack.audit.take(n_requests, since=mark)

    # --- proof that every secret really went through the proxy -------------------------------
    ups = stack.mock.requests
    assert len(ups) == 4, [u.summary() for u in ups]
    assert all(u.signature_ok for u in ups), [u.signature_error for u in ups]
    signatures = [re.search(r"Signature=([0-9a-f]{64})", r.headers["Authorization"].decode()
                            if isinstance(r.headers["Authorization"], bytes)
                            else r.headers["Authorization"]).group(1)
                  for r in sent.requests + sent2.requests]
    assert len(signatures) == 5
    up_auth = " ".join(v for u in ups for v in u.header_values("authorization"))
    forwarded_sigs = [s for s in signatures if s in up_auth]
    assert len(forwarded_sigs) == 4, "the four allowed requests' signatures reached Bedrock"
    up_text = "\n".join(repr(u.headers) + u.body.decode("latin-1") for u in ups)
    for tag in ("SESSIONTOKEN", "JWT", "CUSTOM", "USERAGENT", "PROMPT"):
        assert M[tag] in up_text, f"marker {tag} never reached the upstream"
    assert JWT in up_text and CANARY_TOKEN in up_text  # JWT carries JWTCLAIM in its payload
    assert M["COMPLETION"] in completion, "the mock's completion marker never reached the client"
    by_reason = [(r["reason"], r["credentialType"]) for r in records]
    assert by_reason.count(("bearer_key_not_allowed", "api-key-short-term")) == 1, by_reason
    assert by_reason.count(("bearer_key_not_allowed", "api-key-long-term")) == 2, by_reason
    assert ("query_not_allowed", "sigv4") in by_reason, by_reason
    # The session-credential requests are recorded under the access key id, and only that.
    assert [r["accessKeyId"] for r in records[:4]] == [CANARY_AKID] * 4, records[:4]
    raw_text = b"".join(raw_sent).decode("latin-1")
    for s in (SHORT_KEY, LONG_KEY, M["QUERY"]):
        assert s in raw_text

    # --- every output of the run ---------------------------------------------------------------
    sinks = {
        "audit log (Envoy stdout)": stack.audit.text(),
        "Envoy log (--log-level info)": stack.app_log(),
        "responses the client received (refusal bodies, response heads)":
            "\n".join(received_errors),
    }
    for path in ("/stats", "/stats/prometheus", "/stats?format=json"):
        status, body = stack.envoy.admin("GET", path)
        assert status == 200
        sinks[f"admin {path}"] = body.decode("latin-1")
    assert stack.app_log(), "Envoy's log is empty: the search would prove nothing"
    assert len(stack.audit.text().splitlines()) >= n_requests

    secrets_ = {f"marker {t}": v for t, v in M.items()}
    secrets_.update({
        "session token": CANARY_TOKEN, "short-term API key": SHORT_KEY,
        "short-term key body": SHORT_KEY_B64, "long-term API key": LONG_KEY,
        "long-term key body": LONG_KEY_B64, "JWT": JWT, "JWT payload": _JWT_BODY,
    })
    secrets_.update({f"SigV4 signature #{i}": s for i, s in enumerate(signatures)})
    leaks = []
    for sink, text in sinks.items():
        for what, value in secrets_.items():
            at = _find(text, value)
            if at >= 0:
                leaks.append(f"{what} in {sink}: ...{text[max(0, at - 120):at + 80]!r}...")
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


# -- injection ---------------------------------------------------------------------------------

INJECT = 'x","decision":"allow","reason":"allowed'


def _assert_one_verdict(line: str, decision: str, reason: str) -> dict:
    rec = parse_line(line)
    assert rec["decision"] == decision and rec["reason"] == reason, rec
    assert line.count('"decision":') == 1 and line.count('"reason":') == 1, line
    return rec


def test_injected_header_values_leave_the_record_intact(live):
    hdrs = {"x-request-id": INJECT, "x-canary-note": INJECT + "\t\\u0022"}
    mark = live.audit.mark()
    c, _ = _client(live, extra_headers=hdrs, user_agent=INJECT)
    with pytest.raises(ClientError) as e:
        c.converse(modelId=DENIED, messages=_messages())
    resp = e.value.response
    c.converse(modelId=LITERAL, messages=_messages())
    lines = live.audit.take_raw(2, since=mark)
    denied = _assert_one_verdict(lines[0], "deny", "model_not_allowed")
    allowed = _assert_one_verdict(lines[1], "allow", "allowed")
    # The request id is never copied from an unsafe header; the refusal and the record agree.
    rid = resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert denied["requestID"] == rid and re.fullmatch(r"[A-Za-z0-9-]+", rid), (rid, denied)
    assert re.fullmatch(r"[A-Za-z0-9-]+", allowed["requestID"]), allowed
    [up] = live.mock.requests
    [ua] = up.header_values("user-agent")
    assert ua.startswith(INJECT), ("the injected user agent did not pass through", ua)


def _signed_raw(stack, target: str, extra=(), body=None, drop=()):
    kw = {} if body is None else {"body": body}
    return _raw(stack, target, extra=extra, drop=drop, **kw)[1]


def test_injected_path_body_and_credential_values_leave_the_record_intact(live):
    mark = live.audit.mark()
    outcomes = []
    # A model id with encoded quotes: unparseable, so not recorded as a model.
    r = _signed_raw(live, "/model/" + quote(INJECT, safe="") + "/converse")
    outcomes.append((r, "deny", "model_unparseable"))
    # A bare CR inside a header value gets past Envoy 1.40's codec: the record is still one line.
    r = _signed_raw(live, f"/model/{quote(DENIED, safe='')}/converse",
                    extra=[("x-canary-note", "a\rb" + INJECT)])
    outcomes.append((r, "deny", "model_not_allowed"))
    # Bytes that are not UTF-8 (and U+2028 as UTF-8) in header values also get past the codec.
    r = _signed_raw(live, f"/model/{quote(DENIED, safe='')}/converse",
                    extra=[("x-canary-note", b"\xff\xfe\xc0\xa7" + INJECT.encode()),
                           ("x-request-id", b"\xe2\x80\xa8" + INJECT.encode())])
    outcomes.append((r, "deny", "model_not_allowed"))
    # A body-carried model id (StartAsyncInvoke) with quotes, a newline and U+2028.
    body = json.dumps({"modelId": INJECT + "\n\u2028", "modelInput": {},
                       "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/o/"}}}).encode()
    r = _signed_raw(live, "/async-invoke", body=body)
    outcomes.append((r, "deny", "model_unparseable"))
    # A SigV4 Authorization whose access key id carries the injection.
    auth = (f"AWS4-HMAC-SHA256 Credential=AKIA{INJECT}/20250101/us-east-1/bedrock/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}")
    r = _signed_raw(live, f"/model/{LITERAL_ENC}/converse", extra=[("Authorization", auth)],
                    drop=("authorization",))
    outcomes.append((r, "deny", None))
    lines = live.audit.take_raw(len(outcomes), since=mark)
    for line, (resp, decision, reason) in zip(lines, outcomes):
        assert resp.status == 403, (resp.status, resp.body)
        got_reason = json.loads(resp.body)["message"].split(":")[1].strip()
        rec = _assert_one_verdict(line, decision, reason or got_reason)
        assert rec["requestID"] == resp.header("x-amzn-requestid"), (rec, resp.headers)
        if rec["requestParameters"] is not None:
            assert re.fullmatch(r"[A-Za-z0-9._:/-]+", rec["requestParameters"]["modelId"]), rec
        assert rec["accessKeyId"] in (None, ACCESS_KEY), rec
    assert not live.mock.requests


@pytest.mark.parametrize("extra,host", [
    ([("x-canary-note", b"a\x01b")], None),
    ([], BEDROCK_HOST + '","decision":"allow'),
], ids=["control-byte", "quoted-host"])
def test_values_envoy_refuses_itself_leave_a_dash_not_a_record(live, extra, host):
    """What Envoy's codec refuses never reaches the filter: the access log prints `-` (no
    filter state) for it, never a half-written record."""
    target = f"/model/{LITERAL_ENC}/converse"
    url = f"http://{BEDROCK_HOST}{target}"
    body = b'{"messages":[]}'
    _, headers, _ = wire_parts(sign("POST", url, body, {"Content-Type": "application/json"}))
    if host:
        headers = [("Host", host) if k == "Host" else (k, v) for k, v in headers]
    mark = live.audit.mark()
    resp = rawhttp.exchange(live.envoy.listener_port,
                            to_http11("POST", target.encode(), headers + extra, body), timeout=5)
    assert resp.status == 400 and resp.header("x-bedrock-guard-reason") is None, resp
    assert live.audit.take_raw(1, since=mark) == [NO_RECORD]
    assert not live.mock.requests


def test_every_line_of_the_run_is_a_record_or_a_dash(stack):
    """Runs last: the whole access log, every line either a strict record or `-`."""
    lines = stack.audit.lines()
    assert len(lines) >= 20, len(lines)
    for line in lines:
        if line != NO_RECORD:
            parse_line(line)
