"""The mock Bedrock upstream on its own (no Envoy): wire formats, signatures, records."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import zlib

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError

from tests.harness import eventstream, rawhttp
from tests.harness.awsreq import sign, to_http11, wire_parts
from tests.harness.clients import bedrock_client
from tests.harness.envoy import REPO_ROOT, free_port
from tests.harness.mock_bedrock import (
    ASYNC_INVOCATION_ARN, REPLY_TEXT, UNKNOWN_OPERATION_BODY, usage_for,
)
from tests.harness.sigv4 import DEFAULT_CREDENTIALS

AKID = "AKIAIOSFODNN7EXAMPLE"
CONVERSE_BODY = {"messages": [{"role": "user", "content": [{"text": "hello"}]}]}


@pytest.fixture
def tls(pki_dir):
    ctx = ssl.create_default_context(cafile=str(pki_dir / "ca.pem"))
    return ctx


@pytest.fixture
def direct(mock, pki_dir):
    """A boto3 client talking straight to the mock over HTTPS (what Envoy's cluster does)."""
    return bedrock_client(endpoint_url=f"https://127.0.0.1:{mock.port}", access_key=AKID,
                          secret_key=DEFAULT_CREDENTIALS[AKID][0], verify=str(pki_dir / "ca.pem"))


def _raw(mock, tls, method, path, body=b"", headers=None, signed=True):
    url = f"https://127.0.0.1:{mock.port}{path}"
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if signed:
        target, wire_headers, body = wire_parts(sign(method, url, body, hdrs))
    else:
        target = path.encode()
        wire_headers = [("Host", f"127.0.0.1:{mock.port}"), *hdrs.items(),
                        ("Content-Length", str(len(body)))]
    data = to_http11(method, target, wire_headers + [("Connection", "close")], body)
    return rawhttp.exchange(mock.port, data, tls=tls, server_hostname="localhost")


def _frames(data: bytes):
    buf = EventStreamBuffer()
    buf.add_data(data)
    return list(buf)


def test_converse_is_verified_recorded_and_answered(direct, mock):
    out = direct.converse(modelId="anthropic.claude-3-5-sonnet-20240620-v1:0", **CONVERSE_BODY)
    (rec,) = mock.requests
    assert rec.signature_ok and rec.signature_error is None
    assert rec.method == "POST" and rec.operation == "Converse"
    assert rec.raw_target == b"/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    assert rec.model_id == "anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert rec.body_len == len(rec.body) and not rec.identity_header_present
    n, m = usage_for(rec.body_len)
    assert out["usage"] == {"inputTokens": n, "outputTokens": m, "totalTokens": n + m}
    assert out["output"]["message"]["content"][0]["text"] == REPLY_TEXT
    assert out["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == rec.request_id


def test_every_route_answers_in_the_shape_botocore_parses(direct, mock):
    m = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    events = list(direct.converse_stream(modelId=m, **CONVERSE_BODY)["stream"])
    assert "".join(e["contentBlockDelta"]["delta"]["text"]
                   for e in events if "contentBlockDelta" in e) == REPLY_TEXT
    inv = direct.invoke_model(modelId=m, body=b'{"prompt":"x"}')
    assert json.loads(inv["body"].read())["content"][0]["text"] == REPLY_TEXT
    assert inv["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"] == str(
        usage_for(len(b'{"prompt":"x"}'))[0])
    chunks = [json.loads(e["chunk"]["bytes"]) for e in
              direct.invoke_model_with_response_stream(modelId=m, body=b"{}")["body"]]
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["inputTokenCount"] == usage_for(2)[0]
    assert direct.count_tokens(modelId="amazon.titan-text-express-v1", input={
        "converse": CONVERSE_BODY})["inputTokens"] > 0
    started = direct.start_async_invoke(modelId=m, modelInput={"x": 1}, outputDataConfig={
        "s3OutputDataConfig": {"s3Uri": "s3://bucket/out/"}})
    assert started["invocationArn"] == ASYNC_INVOCATION_ARN
    assert direct.get_async_invoke(invocationArn=ASYNC_INVOCATION_ARN)["status"] == "Completed"
    assert len(direct.list_async_invokes(maxResults=5)["asyncInvokeSummaries"]) == 1
    assert direct.apply_guardrail(guardrailIdentifier="gr1", guardrailVersion="1",
                                  source="INPUT",
                                  content=[{"text": {"text": "x"}}])["action"] == "NONE"
    ops = [r.operation for r in mock.requests]
    assert ops == ["ConverseStream", "InvokeModel", "InvokeModelWithResponseStream",
                   "CountTokens", "StartAsyncInvoke", "GetAsyncInvoke", "ListAsyncInvokes",
                   "ApplyGuardrail"]
    assert all(r.signature_ok for r in mock.requests)
    assert mock.requests[4].model_id == m  # StartAsyncInvoke: from the body's modelId


def test_chat_completions_route(mock, tls):
    body = json.dumps({"model": "openai.gpt-oss-20b-1:0",
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    resp = _raw(mock, tls, "POST", "/openai/v1/chat/completions", body)
    assert resp.status == 200, resp.body
    doc = json.loads(resp.body)
    assert doc["object"] == "chat.completion" and doc["model"] == "openai.gpt-oss-20b-1:0"
    n, m = usage_for(len(body))
    assert doc["usage"] == {"prompt_tokens": n, "completion_tokens": m, "total_tokens": n + m}
    (rec,) = mock.requests
    assert rec.signature_ok and rec.model_id == "openai.gpt-oss-20b-1:0"


def test_converse_stream_frames_parse_with_botocore_and_carry_real_crcs(mock, tls):
    resp = _raw(mock, tls, "POST", "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/"
                "converse-stream", json.dumps(CONVERSE_BODY).encode())
    assert resp.status == 200
    assert resp.header("content-type") == "application/vnd.amazon.eventstream"
    assert resp.header("x-amzn-requestid")
    frames = _frames(resp.body)
    types = [f.headers[":event-type"] for f in frames]
    assert types[0] == "messageStart" and types[-3:] == [
        "contentBlockStop", "messageStop", "metadata"]
    assert 2 <= types.count("contentBlockDelta") <= 3
    pos = 0
    for f in frames:
        assert f.headers[":message-type"] == "event"
        assert f.headers[":content-type"] == "application/json"
        raw = resp.body[pos:pos + f.prelude.total_length]
        assert f.prelude.crc == zlib.crc32(raw[:8])
        assert f.crc == zlib.crc32(raw[:-4])
        pos += f.prelude.total_length
    assert pos == len(resp.body)
    payloads = [json.loads(f.payload) for f in frames]
    text = "".join(p["delta"]["text"] for p, t in zip(payloads, types) if t == "contentBlockDelta")
    assert text == REPLY_TEXT
    n, m = usage_for(mock.requests[0].body_len)
    assert payloads[-1]["usage"] == {"inputTokens": n, "outputTokens": m, "totalTokens": n + m}
    assert "latencyMs" in payloads[-1]["metrics"]


def test_invoke_stream_chunks_carry_base64_model_json_and_final_metrics(mock, tls):
    resp = _raw(mock, tls, "POST", "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/"
                "invoke-with-response-stream", b'{"prompt":"hello"}')
    assert resp.status == 200
    assert resp.header("x-amzn-bedrock-content-type") == "application/json"
    frames = _frames(resp.body)
    assert {f.headers[":event-type"] for f in frames} == {"chunk"}
    decoded = [json.loads(base64.b64decode(json.loads(f.payload)["bytes"])) for f in frames]
    metrics = decoded[-1]["amazon-bedrock-invocationMetrics"]
    n, m = usage_for(len(b'{"prompt":"hello"}'))
    assert (metrics["inputTokenCount"], metrics["outputTokenCount"]) == (n, m)
    assert {"invocationLatency", "firstByteLatency"} <= set(metrics)


@pytest.mark.parametrize("offset_name", ["prelude_crc", "payload", "message_crc"])
def test_botocore_rejects_a_corrupted_frame(offset_name):
    frame = eventstream.encode_event("contentBlockDelta", b'{"delta":{"text":"x"}}')
    offset = {"prelude_crc": 9, "payload": len(frame) - 6, "message_crc": len(frame) - 1}
    bad = bytearray(frame)
    bad[offset[offset_name]] ^= 0x01
    assert len(_frames(frame)) == 1
    with pytest.raises(ChecksumMismatch):
        _frames(bytes(bad))


def test_unsigned_and_tampered_requests_get_invalid_signature(mock, tls):
    resp = _raw(mock, tls, "POST", "/model/x.y/invoke", b"{}", signed=False)
    assert resp.status == 403
    assert resp.header("x-amzn-errortype") == "InvalidSignatureException"
    assert "message" in json.loads(resp.body) and resp.header("x-amzn-requestid")
    url = f"https://127.0.0.1:{mock.port}/model/x.y/invoke"
    target, headers, body = wire_parts(sign("POST", url, b'{"a":1}'))
    data = to_http11("POST", target, headers + [("Connection", "close")], b'{"a":2}')
    resp2 = rawhttp.exchange(mock.port, data, tls=tls, server_hostname="localhost")
    assert resp2.status == 403
    recs = mock.requests
    assert [r.signature_ok for r in recs] == [False, False]
    assert recs[0].signature_error == "missing Authorization header"
    assert recs[1].signature_error == "signature does not match"


def test_unknown_routes_answer_like_aws(mock, tls):
    literal_slash = ("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile/"
                     "us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse")
    for path in ("/model/x.y/invoke-async", "/nope", literal_slash):
        resp = _raw(mock, tls, "POST", path, b"{}")
        assert resp.status == 200 and resp.body == UNKNOWN_OPERATION_BODY
    assert [(r.operation, r.signature_ok) for r in mock.requests] == [(None, True)] * 3


def test_model_segment_is_decoded_exactly_once(mock, tls):
    _raw(mock, tls, "POST", "/model/a.b%253A0/invoke", b"{}")
    assert mock.requests[0].model_id == "a.b%3A0"


def test_chunked_request_body_and_identity_header_are_recorded(mock, tls):
    url = f"https://127.0.0.1:{mock.port}/model/x.y/invoke"
    body = b'{"prompt":"chunked"}'
    target, headers, _ = wire_parts(sign("POST", url, body, {"x-workload-identity": "jwt"}))
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    data = to_http11("POST", target, headers + [("Transfer-Encoding", "chunked"),
                                                ("Connection", "close")],
                     b"5\r\n" + body[:5] + b"\r\n" + b"%x\r\n" % (len(body) - 5) + body[5:]
                     + b"\r\n0\r\n\r\n")
    resp = rawhttp.exchange(mock.port, data, tls=tls, server_hostname="localhost")
    assert resp.status == 200
    (rec,) = mock.requests
    assert rec.body == body and rec.signature_ok and rec.identity_header_present


def test_speaks_tls_1_2_with_a_certificate_for_the_bedrock_host_names(mock, pki_dir):
    import socket
    for name in ("bedrock-runtime.us-east-1.amazonaws.com",
                 "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com",
                 "bedrock-runtime-fips.us-east-1.amazonaws.com"):
        ctx = ssl.create_default_context(cafile=str(pki_dir / "ca.pem"))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", mock.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as tls:
                assert tls.version() == "TLSv1.2"
    assert mock.requests == []


def test_command_line_prints_each_request(pki_dir):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.mock_bedrock", "--host", "127.0.0.1",
         "--port", str(port), "--pki", str(pki_dir)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        banner = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in banner
        client = bedrock_client(endpoint_url=f"https://127.0.0.1:{port}", access_key=AKID,
                                secret_key=DEFAULT_CREDENTIALS[AKID][0],
                                verify=str(pki_dir / "ca.pem"))
        client.converse(modelId="anthropic.claude-3-5-sonnet-20240620-v1:0", **CONVERSE_BODY)
        line = proc.stdout.readline()
        assert "POST /model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse -> 200" in line
        assert "sig=ok" in line
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_boto3_sees_the_mock_signature_error_as_a_client_error(mock, pki_dir):
    client = bedrock_client(endpoint_url=f"https://127.0.0.1:{mock.port}", access_key=AKID,
                            secret_key="wrong-secret", verify=str(pki_dir / "ca.pem"))
    with pytest.raises(ClientError) as e:
        client.converse(modelId="x.y", **CONVERSE_BODY)
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert mock.requests[0].signature_ok is False
