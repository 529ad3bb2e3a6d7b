"""End to end, raw HTTP/1.1 into Envoy: the content type of body-carried operations (issue 9).

The filter reads the body of an operation that carries its model in the body (StartAsyncInvoke,
the OpenAI- and Anthropic-compatible routes, bedrock-agent-runtime) as UTF-8 JSON. The request
must declare exactly that: `application/json`, optionally with `charset=utf-8` (what botocore and
the model SDKs send, and what common HTTP clients add). Any other charset or media type would let
the upstream read the bytes another way, so the filter refuses it (403 `body_unparseable`) before
the body is read, and the upstream sees nothing. Allowed requests arrive byte-for-byte with their
content type and a valid signature.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import BEDROCK_HOST
from tests.harness import rawhttp
from tests.harness.assertions import (
    assert_mock_saw_nothing, assert_raw_refusal, single_forwarded,
)
from tests.harness.awsreq import sign, to_http11, wire_parts

CHAT = "/openai/v1/chat/completions"
ASYNC = "/async-invoke"
MODEL = "openai.gpt-oss-20b-1:0"  # allowed on ChatCompletions by the demo bundle
CHAT_BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "h\u00e9"}]},
                       ensure_ascii=False)
ASYNC_BODY = json.dumps({"modelId": "amazon.nova-reel-v1:0", "modelInput": {},
                         "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/o"}}})


def send(port: int, target: str, body: bytes, content_type: str | None) -> rawhttp.RawResponse:
    """A request botocore signed (content type included) for this exact target and body."""
    url = f"http://{BEDROCK_HOST}{target}"
    hdrs = {"Content-Type": content_type} if content_type is not None else {}
    _, headers, _ = wire_parts(sign("POST", url, body, hdrs))
    data = to_http11("POST", target.encode(), headers + [("Connection", "close")], body)
    return rawhttp.exchange(port, data, timeout=3)


def refusal_message(resp: rawhttp.RawResponse) -> str:
    return json.loads(resp.body).get("message", "")


@pytest.mark.parametrize("content_type", [
    "application/json",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
], ids=["json", "json-charset-utf-8", "json-charset-UTF-8-no-space"])
def test_allowed_chat_request_with_a_json_content_type_reaches_the_upstream(envoy_port, mock,
                                                                           content_type):
    body = CHAT_BODY.encode("utf-8")
    resp = send(envoy_port, CHAT, body, content_type)
    assert resp.status == 200, (resp.status, resp.body[:300])
    rec = single_forwarded(mock)
    assert rec.body == body and rec.model_id == MODEL
    assert rec.header_values("content-type") == [content_type]


REFUSED = [
    # (id, content type, body encoding, what the detail says)
    ("charset-utf-16", "application/json; charset=utf-16", "utf-16", "charset must be utf-8"),
    ("charset-utf-16-no-space", "application/json;charset=utf-16", "utf-16-le",
     "charset must be utf-8"),
    ("charset-latin1", "application/json; charset=latin1", "latin-1", "charset must be utf-8"),
    # A valid UTF-8 JSON body labelled as another charset: the filter would read it one way and
    # an upstream that honours the label another ("h\u00e9" read as latin-1 is "h\u00c3\u00a9").
    ("utf-8-body-labelled-utf-16", "application/json; charset=utf-16", "utf-8",
     "charset must be utf-8"),
    ("utf-8-body-labelled-latin1", "application/json; charset=latin1", "utf-8",
     "charset must be utf-8"),
    ("charset-iso-8859-1", "application/json; charset=ISO-8859-1", "latin-1",
     "charset must be utf-8"),
    ("text-plain", "text/plain", "utf-8", "must be application/json"),
    ("text-json", "text/json", "utf-8", "must be application/json"),
    ("json-patch", "application/json-patch+json", "utf-8", "must be application/json"),
    ("amz-json-1.1", "application/x-amz-json-1.1", "utf-8", "must be application/json"),
    ("jsonx", "application/jsonx", "utf-8", "must be application/json"),
    ("quoted-charset", 'application/json; charset="utf-8"', "utf-8", "charset is quoted"),
    ("repeated-charset", "application/json; charset=utf-8; charset=utf-16", "utf-8",
     "more than one charset"),
    ("other-parameter", "application/json; foo=bar", "utf-8", "parameter other than charset"),
    ("spaces-around-equals", "application/json; charset = utf-8", "utf-8",
     "malformed parameter"),
    ("missing", None, "utf-8", "content-type is missing"),
]


@pytest.mark.parametrize("content_type,encoding,detail", [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])
def test_chat_request_whose_body_could_be_read_another_way_is_refused(envoy_port, mock,
                                                                     content_type, encoding,
                                                                     detail):
    body = CHAT_BODY.encode(encoding)
    resp = send(envoy_port, CHAT, body, content_type)
    assert_raw_refusal(resp, "body_unparseable")
    assert detail in refusal_message(resp), refusal_message(resp)
    assert_mock_saw_nothing(mock)


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-16", "application/json; charset=latin1", "text/plain",
], ids=["charset-utf-16", "charset-latin1", "text-plain"])
def test_start_async_invoke_with_a_non_utf8_json_content_type_is_refused(envoy_port, mock,
                                                                         content_type):
    # Refused on the head, whatever the body holds and whatever the rules say about it.
    resp = send(envoy_port, ASYNC, ASYNC_BODY.encode("utf-8"), content_type)
    assert_raw_refusal(resp, "body_unparseable")
    assert_mock_saw_nothing(mock)


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"],
                         ids=["utf-8-bom", "utf-16le-bom", "utf-16be-bom"])
def test_body_starting_with_a_byte_order_mark_is_refused(envoy_port, mock, bom):
    resp = send(envoy_port, CHAT, bom + CHAT_BODY.encode("utf-8"), "application/json")
    assert_raw_refusal(resp, "body_unparseable")
    assert_mock_saw_nothing(mock)
