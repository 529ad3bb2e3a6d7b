"""End to end, raw HTTP/1.1 bytes into Envoy: the encodings and head shapes boto3 never sends.

Each case states who answers: Envoy's own codec (before any filter runs: the status we observe on
Envoy 1.40 with the demo config) or the filter (403/413 in the AWS error shape with a reason
code). Whoever answers, the upstream must see nothing, except for the cases that are allowed on
purpose, which must arrive byte-for-byte with a valid signature.
"""

from __future__ import annotations

import json
import re

import pytest
from botocore.exceptions import ClientError

from tests.conftest import BEDROCK_HOST
from tests.harness import rawhttp
from tests.harness.assertions import (
    assert_client_error_refusal, assert_mock_saw_nothing, assert_raw_refusal, message_reason,
    single_forwarded,
)
from tests.harness.awsreq import sign, to_http11, wire_parts
from tests.harness.mock_bedrock import REPLY_TEXT

M = "anthropic.claude-3-5-sonnet-20240620-v1%3A0"  # allowed by the demo bundle, as boto3 encodes
ARN_ENC = ("arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
           "us.anthropic.claude-3-5-sonnet-20241022-v2%3A0")
CONVERSE_BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
MAX_BODY = 1048576  # limits.max_body_bytes of the demo bundle


def _signed_head(method: str, target: bytes, body: bytes, content_type: str | None,
                 host: str = BEDROCK_HOST) -> list[tuple[str, str]]:
    """Headers of a request botocore signed for this exact target (origin form)."""
    url = f"http://{host}" + target.decode("latin-1")
    hdrs = {"Content-Type": content_type} if content_type else {}
    _, headers, _ = wire_parts(sign(method, url, body, hdrs))
    return headers


def send(port: int, target: bytes | str, *, method: str = "POST", body: bytes = CONVERSE_BODY,
         content_type: str | None = "application/json", extra: list[tuple[str, str | bytes]] = (),
         drop: tuple[str, ...] = (), chunks: list[bytes] | None = None,
         host: str = BEDROCK_HOST) -> rawhttp.RawResponse:
    if isinstance(target, str):
        target = target.encode()
    headers = [h for h in _signed_head(method, target, body, content_type, host)
               if h[0].lower() not in drop]
    data = to_http11(method, target, headers + list(extra) + [("Connection", "close")], body)
    return rawhttp.exchange(port, data, chunks=chunks, timeout=3)


# -- paths ---------------------------------------------------------------------------------------

FILTER_PATH_CASES = [
    # (id, raw target, reason)
    ("double-encoded-colon", "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/invoke",
     "model_unparseable"),
    ("double-encoded-slash", "/model/" + ARN_ENC.replace("%2F", "%252F") + "/converse",
     "model_unparseable"),
    ("dot-segments", "/model/x/../y/invoke", "model_unparseable"),
    ("encoded-dot-segment", "/model/%2E%2E/invoke", "model_unparseable"),
    ("encoded-dot-segment-mixed", f"/model/{M}/.%2e/invoke", "model_unparseable"),
    ("literal-slash-in-arn",
     "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
     "us.anthropic.claude-3-5-sonnet-20241022-v2:0/converse", "operation_unknown"),
    ("semicolon", f"/model/{M};v=1/invoke", "model_unparseable"),
    ("encoded-nul", f"/model/{M}%00/invoke", "model_unparseable"),
    ("encoded-non-ascii", f"/model/{M}%C3%A9/invoke", "model_unparseable"),
    ("encoded-fullwidth-colon", "/model/anthropic.claude-3-5-sonnet-20240620-v1%EF%BC%9A0/invoke",
     "model_unparseable"),
    ("backslash", f"/model/{M}\\x/invoke", "model_unparseable"),
    ("bad-escape", f"/model/{M}%G1/invoke", "model_unparseable"),
    ("encoded-space", f"/model/{M}%20/invoke", "model_unparseable"),
    ("empty-id", "/model//invoke", "model_unparseable"),
    ("leading-double-slash", f"//model/{M}/invoke", "model_unparseable"),
    ("trailing-slash", f"/model/{M}/invoke/", "model_unparseable"),
    ("id-of-2049-chars", "/model/acme." + "a" * 2044 + "/invoke", "model_unparseable"),
    ("uppercase-operation", f"/model/{M}/Invoke", "operation_unknown"),
    ("unknown-operation", f"/model/{M}/invoke-async", "operation_unknown"),
    ("unknown-path", "/v1/chat/completions", "operation_unknown"),
    ("query-on-invoke", f"/model/{M}/invoke?foo=bar", "query_not_allowed"),
    ("presigned-query-on-converse", f"/model/{M}/converse?X-Amz-Signature=" + "0" * 64,
     "query_not_allowed"),
    ("undefined-query-on-list", "/async-invoke?foo=bar", "query_not_allowed"),
]


@pytest.mark.parametrize("target,reason", [c[1:] for c in FILTER_PATH_CASES],
                         ids=[c[0] for c in FILTER_PATH_CASES])
def test_filter_refuses_ambiguous_path(envoy_port, mock, target, reason):
    method = "GET" if target.startswith("/async-invoke") else "POST"
    body = b"" if method == "GET" else CONVERSE_BODY
    resp = send(envoy_port, target, method=method, body=body)
    assert_raw_refusal(resp, reason)
    assert_mock_saw_nothing(mock)


ENVOY_PATH_CASES = [
    # (id, raw target, status Envoy 1.40 answers with before the filter runs)
    ("fragment-in-id", f"/model/{M}#x/invoke".encode(), 400),
    ("fragment-at-end", f"/model/{M}/invoke#x".encode(), 400),
    ("raw-utf8-in-id", f"/model/{M}".encode() + b"\xc3\xa9/invoke", 400),
    ("raw-high-byte-in-id", f"/model/{M}".encode() + b"\x80/invoke", 400),
]


@pytest.mark.parametrize("target,status", [c[1:] for c in ENVOY_PATH_CASES],
                         ids=[c[0] for c in ENVOY_PATH_CASES])
def test_envoy_rejects_unrepresentable_path(envoy_port, mock, target, status):
    resp = send(envoy_port, target)
    assert resp.status == status, (resp.status, resp.body[:200])
    assert not resp.body.startswith(b'{"message":"bedrock-guard'), "filter answered, not Envoy"
    assert_mock_saw_nothing(mock)


@pytest.mark.parametrize("target,model", [
    ("/model/anthropic.claude-3-5-sonnet-20240620-v1%3a0/converse",
     "anthropic.claude-3-5-sonnet-20240620-v1:0"),  # lowercase escape: one decode, same id
    ("/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse",
     "anthropic.claude-3-5-sonnet-20240620-v1:0"),  # raw colon: AWS accepts it too
    (f"/model/{ARN_ENC.replace('%2F', '%2f')}/converse",
     "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
     "us.anthropic.claude-3-5-sonnet-20241022-v2:0"),
], ids=["lowercase-escape", "raw-colon", "lowercase-encoded-slash"])
def test_equivalent_spellings_of_an_allowed_id_pass_unmodified(envoy_port, mock, target, model):
    resp = send(envoy_port, target)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert json.loads(resp.body)["output"]["message"]["content"][0]["text"] == REPLY_TEXT
    rec = single_forwarded(mock)
    assert rec.raw_target == target.encode() and rec.model_id == model


def test_id_of_2048_chars_is_parsed_then_judged_by_the_rules(bedrock_client, mock):
    client, _ = bedrock_client()
    made_up = "acme." + "a" * 2043
    assert len(made_up) == 2048
    with pytest.raises(ClientError) as e:
        client.converse(modelId=made_up, messages=[{"role": "user", "content": [{"text": "x"}]}])
    assert_client_error_refusal(e.value, "model_not_allowed")
    assert_mock_saw_nothing(mock)


def test_id_of_2048_chars_matching_an_allowed_pattern_is_forwarded_intact(bedrock_client, mock):
    client, sent = bedrock_client()
    model = "anthropic.claude-sonnet-4-" + "9" * (2048 - len("anthropic.claude-sonnet-4-"))
    assert len(model) == 2048
    client.converse(modelId=model, messages=[{"role": "user", "content": [{"text": "x"}]}])
    rec = single_forwarded(mock)
    assert rec.model_id == model
    assert rec.raw_target == sent.last.url.split(BEDROCK_HOST, 1)[1].encode()


# -- bodies on the OpenAI-compatible route -------------------------------------------------------

CHAT = "/openai/v1/chat/completions"


@pytest.mark.parametrize("body,content_type", [
    (b'{"model":"openai.gpt-oss-20b-1:0","model":"meta.llama3-8b-instruct-v1:0",'
     b'"messages":[]}', "application/json"),
    (b'{"model":"meta.llama3-8b-instruct-v1:0","model":"openai.gpt-oss-20b-1:0",'
     b'"messages":[]}', "application/json"),
    (b'{"mod\\u0065l":"meta.llama3-8b-instruct-v1:0","model":"openai.gpt-oss-20b-1:0",'
     b'"messages":[]}', "application/json"),
    (b'{"mod\\u0065l":"openai.gpt-oss-20b-1:0","messages":[]}', "application/json"),
    (b'{"Model":"openai.gpt-oss-20b-1:0","model":"openai.gpt-oss-20b-1:0","messages":[]}',
     "application/json"),
    (b'{"model":"openai.gpt-oss-20b-1:0","messages":[]}', "text/plain"),
    (b'{"model":"openai.gpt-oss-20b-1:0","messages":[]}', None),
    (b'model=openai.gpt-oss-20b-1:0', "application/x-www-form-urlencoded"),
    (b'{"model":"openai.gpt-oss-20b-1:0","messages":[]} {"model":"x"}', "application/json"),
    (b'{"messages":[]}', "application/json"),
], ids=["duplicate-model-allowed-first", "duplicate-model-allowed-last", "escaped-key-and-plain",
        "escaped-key-only", "case-variant-key", "text-plain", "no-content-type", "form-encoded",
        "trailing-document", "no-model"])
def test_chat_body_that_parsers_could_read_differently_is_refused(envoy_port, mock, body,
                                                                  content_type):
    resp = send(envoy_port, CHAT, body=body, content_type=content_type)
    assert_raw_refusal(resp, "body_unparseable")
    assert_mock_saw_nothing(mock)


def test_chat_body_over_the_limit_with_content_length_is_413(envoy_port, mock):
    body = b'{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"' + (
        b"a" * MAX_BODY) + b'"}]}'
    url = f"http://{BEDROCK_HOST}{CHAT}"
    _, headers, _ = wire_parts(sign("POST", url, body, {"Content-Type": "application/json"}))
    assert ("Content-Length", str(len(body))) in headers
    head = to_http11("POST", CHAT.encode(), headers + [("Connection", "close")])
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    resp = rawhttp.exchange(envoy_port, head, chunks=chunks, timeout=8)
    assert_raw_refusal(resp, "body_too_large", status=413)
    assert_mock_saw_nothing(mock)


def test_chat_body_over_the_limit_chunked_without_length_is_413(envoy_port, mock):
    body = b'{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"' + (
        b"a" * (MAX_BODY + 65536)) + b'"}]}'
    url = f"http://{BEDROCK_HOST}{CHAT}"
    _, headers, _ = wire_parts(sign("POST", url, body, {"Content-Type": "application/json"}))
    headers = [h for h in headers if h[0].lower() != "content-length"]
    head = to_http11("POST", CHAT.encode(), headers + [("Transfer-Encoding", "chunked"),
                                                       ("Connection", "close")])
    chunks = [b"%x\r\n%s\r\n" % (len(c), c) for c in
              (body[i:i + 65536] for i in range(0, len(body), 65536))] + [b"0\r\n\r\n"]
    resp = rawhttp.exchange(envoy_port, head, chunks=chunks, timeout=8)
    assert_raw_refusal(resp, "body_too_large", status=413)
    assert_mock_saw_nothing(mock)


def test_chat_body_within_the_limit_chunked_is_forwarded_intact(envoy_port, mock):
    body = b'{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"' + (
        b"a" * 200000) + b'"}]}'
    url = f"http://{BEDROCK_HOST}{CHAT}"
    _, headers, _ = wire_parts(sign("POST", url, body, {"Content-Type": "application/json"}))
    headers = [h for h in headers if h[0].lower() != "content-length"]
    head = to_http11("POST", CHAT.encode(), headers + [("Transfer-Encoding", "chunked"),
                                                       ("Connection", "close")])
    # The model key is split across two chunks: the filter must decide on the whole body.
    cut = body.index(b'"model"') + 4
    pieces = [body[:cut]] + [body[i:i + 50000] for i in range(cut, len(body), 50000)]
    chunks = [b"%x\r\n%s\r\n" % (len(c), c) for c in pieces] + [b"0\r\n\r\n"]
    resp = rawhttp.exchange(envoy_port, head, chunks=chunks, timeout=8)
    assert resp.status == 200, (resp.status, resp.body[:300])
    rec = single_forwarded(mock)
    assert rec.body == body and rec.model_id == "openai.gpt-oss-20b-1:0"


# -- heads ---------------------------------------------------------------------------------------

def _auth_of(target: str) -> str:
    return dict((k.lower(), v) for k, v in _signed_head("POST", target.encode(), CONVERSE_BODY,
                                                         "application/json"))["authorization"]


@pytest.mark.parametrize("extra", [
    [("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/"
                       "bedrock/aws4_request, SignedHeaders=host, Signature=" + "0" * 64)],
    [("Content-Type", "text/plain")],
    [("Content-Type", "application/json")],
    [("X-Amz-Date", "20250101T000000Z")],
    [("X-Amz-Security-Token", "a"), ("X-Amz-Security-Token", "b")],
], ids=["authorization", "content-type", "content-type-same-value", "x-amz-date",
        "x-amz-security-token"])
def test_repeated_security_relevant_header_is_refused(envoy_port, mock, extra):
    # Note: Envoy's HTTP/1 codec folds repeats of some headers (authorization, content-type)
    # into one comma-joined value before any filter runs; the filter must still refuse them.
    resp = send(envoy_port, f"/model/{M}/converse", extra=extra)
    assert_raw_refusal(resp, "header_invalid")
    assert_mock_saw_nothing(mock)


def test_absolute_uri_wins_over_a_mismatched_host_header(envoy_port, mock):
    """Envoy takes :authority from an absolute-form target and drops Host: the filter never
    sees the mismatch, and the upstream gets the authority the client signed."""
    target = f"/model/{M}/converse"
    headers = [h for h in _signed_head("POST", target.encode(), CONVERSE_BODY,
                                       "application/json") if h[0].lower() != "host"]
    data = to_http11("POST", f"http://{BEDROCK_HOST}{target}".encode(),
                     [("Host", "evil.example")] + headers + [("Connection", "close")],
                     CONVERSE_BODY)
    resp = rawhttp.exchange(envoy_port, data)
    assert resp.status == 200, (resp.status, resp.body[:300])
    rec = single_forwarded(mock)
    assert rec.header_values("host") == [BEDROCK_HOST]


def test_absolute_uri_to_an_unknown_host_is_refused(envoy_port, mock):
    target = f"/model/{M}/converse"
    headers = _signed_head("POST", target.encode(), CONVERSE_BODY, "application/json")
    data = to_http11("POST", f"http://bedrock-runtime.us-east-1.amazonaws.com.evil.example{target}"
                     .encode(), headers + [("Connection", "close")], CONVERSE_BODY)
    resp = rawhttp.exchange(envoy_port, data)
    assert_raw_refusal(resp, "destination_not_privatelink")
    assert_mock_saw_nothing(mock)


def test_two_host_headers_are_refused(envoy_port, mock):
    # Envoy folds them into one :authority "a,b": no configured endpoint has that name.
    resp = send(envoy_port, f"/model/{M}/converse", extra=[("Host", "evil.example")])
    reason = message_reason(json.loads(resp.body or b"{}").get("message", ""))
    assert reason in ("header_invalid", "destination_not_privatelink"), resp.body
    assert_raw_refusal(resp, reason)
    assert_mock_saw_nothing(mock)


def test_connect_is_refused(envoy_port, mock):
    data = (f"CONNECT {BEDROCK_HOST}:443 HTTP/1.1\r\nHost: {BEDROCK_HOST}:443\r\n\r\n").encode()
    resp = rawhttp.exchange(envoy_port, data)
    assert_raw_refusal(resp, "connect_not_allowed")
    assert_mock_saw_nothing(mock)


def test_websocket_upgrade_is_refused_by_envoy_itself(envoy_port, mock):
    # No upgrade_configs in the listener: Envoy answers 403 before any filter runs.
    resp = send(envoy_port, f"/model/{M}/converse", method="GET", body=b"", content_type=None,
                extra=[("Upgrade", "websocket"), ("Connection", "Upgrade"),
                       ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                       ("Sec-WebSocket-Version", "13")])
    assert resp.status == 403 and not resp.body.startswith(b'{"message":"bedrock-guard')
    assert_mock_saw_nothing(mock)


def test_lone_upgrade_header_is_stripped_by_envoy_before_the_filter(envoy_port, mock):
    # Without `Connection: upgrade` this is not an upgrade request: Envoy's connection manager
    # removes `Upgrade` before the filter chain runs (so the filter cannot see it), nothing is
    # tunnelled, and the request goes on as an ordinary, allowed Converse.
    resp = send(envoy_port, f"/model/{M}/converse", extra=[("Upgrade", "websocket")])
    assert resp.status == 200, (resp.status, resp.body[:300])
    rec = single_forwarded(mock)
    assert rec.header_values("upgrade") == []


def test_header_name_with_underscore_is_rejected_by_envoy(envoy_port, mock):
    resp = send(envoy_port, f"/model/{M}/converse", extra=[("x_amz_date", "20250101T000000Z")])
    assert resp.status == 400
    assert_mock_saw_nothing(mock)


# -- a non-UTF-8 header value must not take the VM down -----------------------------------------

_VM_TROUBLE = re.compile(r"panicked|Function: .* failed|Wasm VM failed|Plugin .* failed|"
                         r"wasm .*(crash|abort)", re.IGNORECASE)
# Envoy 1.40's wasm stats (read from /stats): a crashed VM is replaced (created grows, reload
# counters grow with failure_policy FAIL_RELOAD) or the plugin is marked failed (every request
# then gets a 5xx under FAIL_CLOSED, which the status checks catch).
_VM_STATS = (
    "wasm.envoy.wasm.runtime.v8.created",
    "wasm.envoy.wasm.runtime.v8.active",
    "wasm.wasm_vm_count",
    "wasm.bedrock_guard.vm_reload",
    "wasm.bedrock_guard.vm_reload_failure",
    "wasm.bedrock_guard.vm_reload_backoff",
)


def _vm_stats(envoy) -> dict[str, int]:
    stats = envoy.stats()
    missing = [k for k in _VM_STATS if k not in stats]
    assert not missing, f"expected wasm stats not found (Envoy version drift?): {missing}"
    picked = {k: stats[k] for k in _VM_STATS}
    picked.update({k: v for k, v in stats.items()
                   if "wasm" in k and re.search(r"fail|crash|panic|abort", k)})
    return picked


def test_non_utf8_header_value_does_not_crash_the_vm(envoy, envoy_port, mock, bedrock_client):
    log_mark = len(envoy.log_text())
    stats_before = _vm_stats(envoy)
    target = f"/model/{M}/converse"
    responses = [send(envoy_port, target, extra=[("User-Agent", b"boto3/1.44 \xc0\xa7 x")])
                 for _ in range(200)]
    assert envoy.alive()
    statuses = sorted({r.status for r in responses})
    assert len(statuses) == 1, f"inconsistent answers to identical requests: {statuses}"
    if statuses == [200]:
        # Not a header SigV4 signs and nothing in the bundle reads it: passed through with its
        # bytes untouched.
        recs = mock.wait_for_requests(200)
        assert len(recs) == 200 and all(r.signature_ok for r in recs)
        assert recs[0].header_values("user-agent") == ["boto3/1.44 \xc0\xa7 x"]
    else:
        # Refusing a header value that is not UTF-8 is also a sound choice, as long as it is a
        # deliberate refusal and not a crashed VM (FAIL_CLOSED would answer 5xx/503).
        assert_raw_refusal(responses[0], "header_invalid")
        assert_mock_saw_nothing(mock)

    mock.reset()
    client, _ = bedrock_client()
    out = client.converse(modelId="anthropic.claude-3-5-sonnet-20240620-v1:0",
                          messages=[{"role": "user", "content": [{"text": "still there?"}]}])
    assert out["output"]["message"]["content"][0]["text"] == REPLY_TEXT
    single_forwarded(mock)

    stats_after = _vm_stats(envoy)
    changed = {k: (stats_before.get(k, 0), v) for k, v in stats_after.items()
               if v != stats_before.get(k, 0)}
    assert not changed, f"wasm VM stats changed (before, after): {changed}"
    new_log = envoy.log_text()[log_mark:]
    trouble = [ln for ln in new_log.splitlines() if _VM_TROUBLE.search(ln)]
    assert not trouble, "VM trouble in Envoy's log:\n" + "\n".join(trouble[:10])
