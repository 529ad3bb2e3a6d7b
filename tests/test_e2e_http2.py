"""HTTP/2 through the demo listener (cleartext, prior knowledge): operations that carry the
model in the body are decided on the whole body, however it is split into DATA frames, and
also when the stream ends with trailers instead of END_STREAM on a DATA frame."""

from __future__ import annotations

import copy
import json

import pytest

from tests.conftest import BEDROCK_HOST, WASM_PATH
from tests.harness import awsreq
from tests.harness.envoy import free_port, render_config
from tests.harness.assertions import assert_mock_saw_nothing, single_forwarded
from tests.harness.stack import envoy_stack
from tests.harness.topology import h2_exchange

CHAT = "/openai/v1/chat/completions"
ALLOWED = "openai.gpt-oss-20b-1:0"


def chat_body(model: str, raw: str | None = None) -> bytes:
    if raw is not None:
        return raw.encode()
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()


def signed_h2_headers(body: bytes) -> list[tuple[str, str]]:
    prepared = awsreq.sign("POST", f"http://{BEDROCK_HOST}{CHAT}", body,
                           {"content-type": "application/json"})
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", BEDROCK_HOST),
               (":path", CHAT)]
    for k, v in prepared.headers.items():
        if k.lower() != "host":
            headers.append((k.lower(), v if isinstance(v, str) else v.decode()))
    return headers


def split_everywhere(body: bytes, size: int) -> list[bytes]:
    return [body[i:i + size] for i in range(0, len(body), size)]


def test_body_split_across_many_data_frames_is_decided_whole(envoy_port, mock):
    body = chat_body(ALLOWED)
    resp = h2_exchange("127.0.0.1", envoy_port, signed_h2_headers(body),
                       chunks=split_everywhere(body, 3))  # "model" itself is split
    assert resp.status == 200, resp
    forwarded = single_forwarded(mock)
    assert forwarded.signature_ok
    assert forwarded.body == body


def test_refused_model_split_across_data_frames_never_reaches_upstream(envoy_port, mock):
    body = chat_body("meta.llama3-8b-instruct-v1:0")
    resp = h2_exchange("127.0.0.1", envoy_port, signed_h2_headers(body),
                       chunks=split_everywhere(body, 5))
    assert resp.status == 403
    assert json.loads(resp.body)["message"].startswith("bedrock-guard: model_not_allowed")
    assert_mock_saw_nothing(mock)


def test_request_ending_with_trailers_is_decided_on_the_whole_body(envoy_port, mock):
    body = chat_body(ALLOWED)
    resp = h2_exchange("127.0.0.1", envoy_port, signed_h2_headers(body),
                       chunks=split_everywhere(body, 16), trailers=[("x-trailer", "end")])
    assert resp.status == 200, resp
    assert single_forwarded(mock).body == body


def test_duplicate_model_key_ending_with_trailers_is_refused(envoy_port, mock):
    raw = '{"model":"%s","messages":[],"model":"meta.llama3-8b-instruct-v1:0"}' % ALLOWED
    body = chat_body("", raw)
    resp = h2_exchange("127.0.0.1", envoy_port, signed_h2_headers(body),
                       chunks=split_everywhere(body, 7), trailers=[("x-trailer", "end")])
    assert resp.status == 403
    assert json.loads(resp.body)["message"].startswith("bedrock-guard: body_unparseable")
    assert_mock_saw_nothing(mock)


@pytest.fixture(scope="module")
def small_limit_envoy(tmp_path_factory, pki_dir, mock_server, demo_bundle):
    """The demo set-up with limits.max_body_bytes = 16 KiB, so an oversized body fits in the
    HTTP/2 stream's initial flow-control window (64 KiB) of this simple client."""
    bundle = copy.deepcopy(demo_bundle)
    bundle["limits"]["max_body_bytes"] = 16384
    work = tmp_path_factory.mktemp("h2-limit")
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, mock_server.port, pki_dir, WASM_PATH, bundle, out_dir=work)
    with envoy_stack(cfg, admin, listener, work) as proc:
        yield proc


def test_oversized_body_in_frames_without_content_length_is_413(small_limit_envoy, mock):
    body = b'{"model":"%s","messages":[{"role":"user","content":"' % ALLOWED.encode()
    body += b"x" * 20000 + b'"}]}'
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", BEDROCK_HOST),
               (":path", CHAT), ("content-type", "application/json")]
    resp = h2_exchange("127.0.0.1", small_limit_envoy.listener_port, headers,
                       chunks=split_everywhere(body, 4000))
    assert resp.status == 413, resp
    assert json.loads(resp.body)["message"].startswith("bedrock-guard: body_too_large")
    assert_mock_saw_nothing(mock)
