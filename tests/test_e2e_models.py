"""End to end: an unmodified boto3 client -> Envoy + bedrock-guard (demo bundle) -> mock Bedrock.

Allowed requests must arrive upstream exactly once, byte-for-byte as boto3 signed them (the
mock verifies the SigV4 signature), and their answers (streams included) must come back intact.
Refused requests must surface as AccessDeniedException/403 with the stable reason code, and the
upstream must see nothing.
"""

from __future__ import annotations

import hashlib
import http.client
import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import BEDROCK_HOST
from tests.harness.assertions import (
    assert_client_error_refusal, assert_mock_saw_nothing, assert_raw_refusal, message_reason,
    single_forwarded,
)
from tests.harness.awsreq import SESSION_ACCESS_KEY, credentials, sign, target_of
from tests.harness.mock_bedrock import ASYNC_INVOCATION_ARN, REPLY_TEXT, usage_for
from tests.harness.rawhttp import RawResponse

CONVERSE = {"messages": [{"role": "user", "content": [{"text": "Say hello."}]}],
            "inferenceConfig": {"maxTokens": 64}}
INVOKE_BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                          "messages": [{"role": "user", "content": "Say hello."}]}).encode()

FM_ARN = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"
IP_ARN = ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
          "us.anthropic.claude-3-5-sonnet-20241022-v2:0")
APP_ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"


# -- operations, each returning (text or None, usage dict as the client saw it) ------------------

def _converse(c, model):
    r = c.converse(modelId=model, **CONVERSE)
    return r["output"]["message"]["content"][0]["text"], r["usage"]


def _converse_stream(c, model):
    r = c.converse_stream(modelId=model, **CONVERSE)
    events = list(r["stream"])  # iterate to the end: every frame must arrive and parse
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"], kinds
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events
                   if "contentBlockDelta" in e)
    return text, events[-1]["metadata"]["usage"]


def _invoke(c, model):
    r = c.invoke_model(modelId=model, body=INVOKE_BODY, contentType="application/json",
                       accept="application/json")
    doc = json.loads(r["body"].read())
    h = r["ResponseMetadata"]["HTTPHeaders"]
    return doc["content"][0]["text"], {
        "inputTokens": int(h["x-amzn-bedrock-input-token-count"]),
        "outputTokens": int(h["x-amzn-bedrock-output-token-count"]),
    }


def _invoke_stream(c, model):
    r = c.invoke_model_with_response_stream(modelId=model, body=INVOKE_BODY,
                                            contentType="application/json",
                                            accept="application/json")
    chunks = [json.loads(e["chunk"]["bytes"]) for e in r["body"]]
    text = "".join(ch["delta"]["text"] for ch in chunks if ch["type"] == "content_block_delta")
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    return text, {"inputTokens": metrics["inputTokenCount"],
                  "outputTokens": metrics["outputTokenCount"]}


def _count_tokens(c, model):
    r = c.count_tokens(modelId=model, input={"converse": {"messages": CONVERSE["messages"]}})
    return None, {"inputTokens": r["inputTokens"]}


OPS = {
    "Converse": _converse,
    "ConverseStream": _converse_stream,
    "InvokeModel": _invoke,
    "InvokeModelWithResponseStream": _invoke_stream,
    "CountTokens": _count_tokens,
}


def _expected_usage(op, body_len):
    n, m = usage_for(body_len)
    if op == "CountTokens":
        return {"inputTokens": n}
    if op in ("Converse", "ConverseStream"):
        return {"inputTokens": n, "outputTokens": m, "totalTokens": n + m}
    return {"inputTokens": n, "outputTokens": m}


ALLOWED = [
    ("Converse", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ("Converse", "anthropic.claude-sonnet-4-20250514-v1:0"),
    ("Converse", "us.anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("Converse", FM_ARN),
    ("Converse", IP_ARN),
    ("Converse", APP_ARN),
    ("ConverseStream", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ("ConverseStream", "anthropic.claude-sonnet-4-20250514-v1:0"),
    ("ConverseStream", IP_ARN),
    ("InvokeModel", "us.anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("InvokeModel", FM_ARN),
    ("InvokeModel", APP_ARN),
    ("InvokeModelWithResponseStream", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ("InvokeModelWithResponseStream", IP_ARN),
    ("CountTokens", "amazon.titan-text-express-v1"),
    ("CountTokens", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
]


def _check_forwarded_as_signed(mock, sent, operation, model):
    rec = single_forwarded(mock)
    assert rec.operation == operation
    assert rec.model_id == model
    wire = sent.last
    assert rec.raw_target == target_of(wire.url), (rec.raw_target, wire.url)
    assert rec.body == (wire.body or b"")
    assert rec.header_values("host") == [BEDROCK_HOST]
    return rec


@pytest.mark.parametrize("operation,model", ALLOWED, ids=[f"{o}-{m}" for o, m in ALLOWED])
def test_allowed_model_reaches_bedrock_as_signed(bedrock_client, mock, operation, model):
    client, sent = bedrock_client()
    text, usage = OPS[operation](client, model)
    rec = _check_forwarded_as_signed(mock, sent, operation, model)
    if text is not None:
        assert text == REPLY_TEXT
    assert usage == _expected_usage(operation, rec.body_len)


def test_large_invoke_model_body_streams_through_untouched(bedrock_client, mock):
    # InvokeModel bodies may be up to 25 MB and carry no model: the filter must not buffer or
    # cap them (limits.max_body_bytes is for body-carried models), and Envoy must stream them.
    client, sent = bedrock_client()
    body = json.dumps({"prompt": "x" * (3 * 1024 * 1024)}).encode()
    r = client.invoke_model(modelId="anthropic.claude-3-5-sonnet-20240620-v1:0", body=body,
                            contentType="application/json", accept="application/json")
    assert json.loads(r["body"].read())["content"][0]["text"] == REPLY_TEXT
    rec = _check_forwarded_as_signed(mock, sent, "InvokeModel",
                                     "anthropic.claude-3-5-sonnet-20240620-v1:0")
    assert rec.body_len == len(body)
    assert rec.body_sha256 == hashlib.sha256(body).hexdigest()


def test_session_credentials_pass_through_unchanged(bedrock_client, mock):
    creds = credentials(SESSION_ACCESS_KEY)
    token = creds.token
    client, sent = bedrock_client(SESSION_ACCESS_KEY, creds.secret_key, token)
    text, _ = _converse_stream(client, "anthropic.claude-3-5-sonnet-20240620-v1:0")
    rec = _check_forwarded_as_signed(mock, sent, "ConverseStream",
                                     "anthropic.claude-3-5-sonnet-20240620-v1:0")
    assert rec.access_key == SESSION_ACCESS_KEY
    assert rec.header_values("x-amz-security-token") == [token]
    assert text == REPLY_TEXT


REFUSED = [
    # (short name, model id, reason)
    ("llama", "meta.llama3-8b-instruct-v1:0", "model_not_allowed"),
    ("global-profile", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "model_denied"),
    ("opus", "anthropic.claude-opus-4-20250514-v1:0", "model_denied"),
    ("fm-arn-us-west-2",
     "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
     "region_not_allowed"),
    ("profile-arn-other-account", "arn:aws:bedrock:us-east-1:999999999999:inference-profile/"
     "us.anthropic.claude-3-5-sonnet-20241022-v2:0", "account_not_allowed"),
    ("unnamed-app-profile",
     "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/zzzzzzzzzzzz",
     "model_not_allowed"),
]
REFUSED_IDS = [f"{n}-{r}" for n, _, r in REFUSED]
REFUSED_CASES = [(op, m, r) for _, m, r in REFUSED for op in OPS]


@pytest.mark.parametrize("operation,model,reason", REFUSED_CASES,
                         ids=[f"{o}-{n}-{r}" for n, _, r in REFUSED for o in OPS])
def test_refused_model_never_reaches_bedrock(bedrock_client, mock, operation, model, reason):
    client, sent = bedrock_client()
    with pytest.raises(ClientError) as e:
        OPS[operation](client, model)
    assert_client_error_refusal(e.value, reason)
    assert_mock_saw_nothing(mock)


@pytest.mark.parametrize("operation", ["ConverseStream", "InvokeModelWithResponseStream",
                                       "CountTokens"])
def test_application_profile_is_allowed_only_for_the_operations_its_rule_names(
        bedrock_client, mock, operation):
    client, _ = bedrock_client()
    with pytest.raises(ClientError) as e:
        OPS[operation](client, APP_ARN)
    # The model matches rule app-profile-by-arn but the operation does not: either code is a
    # truthful explanation, and which one is the engine's choice.
    reason = message_reason(e.value.response["Error"]["Message"])
    assert reason in ("model_not_allowed", "operation_not_allowed"), e.value.response["Error"]
    assert_client_error_refusal(e.value, reason)
    assert_mock_saw_nothing(mock)


# -- body-carried models, and operations without a model -----------------------------------------

def _start_async(client, model):
    return client.start_async_invoke(
        modelId=model, modelInput={"taskType": "TEXT_VIDEO", "textToVideoParams": {"text": "x"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://acme-bedrock-async/outputs/"}},
    )


# The mock answers at once; a short read timeout turns a request the proxy holds forever into a
# quick failure instead of a 30 s wait per case.
QUICK = 3


def test_start_async_invoke_with_an_allowed_model(bedrock_client, mock):
    client, sent = bedrock_client(read_timeout=QUICK)
    out = _start_async(client, "anthropic.claude-3-5-sonnet-20240620-v1:0")
    assert out["invocationArn"] == ASYNC_INVOCATION_ARN
    _check_forwarded_as_signed(mock, sent, "StartAsyncInvoke",
                               "anthropic.claude-3-5-sonnet-20240620-v1:0")


@pytest.mark.parametrize("model,reason", [c[1:] for c in REFUSED], ids=REFUSED_IDS)
def test_start_async_invoke_with_a_refused_model(bedrock_client, mock, model, reason):
    client, _ = bedrock_client(read_timeout=QUICK)
    with pytest.raises(ClientError) as e:
        _start_async(client, model)
    assert_client_error_refusal(e.value, reason)
    assert_mock_saw_nothing(mock)


def test_get_async_invoke(bedrock_client, mock):
    client, sent = bedrock_client()
    out = client.get_async_invoke(invocationArn=ASYNC_INVOCATION_ARN)
    assert out["invocationArn"] == ASYNC_INVOCATION_ARN and out["status"] == "Completed"
    rec = _check_forwarded_as_signed(mock, sent, "GetAsyncInvoke", None)
    assert rec.extra["invocation_arn"] == ASYNC_INVOCATION_ARN


def test_list_async_invokes_keeps_its_defined_query(bedrock_client, mock):
    client, sent = bedrock_client()
    out = client.list_async_invokes(maxResults=5, statusEquals="Completed",
                                    sortOrder="Descending")
    assert len(out["asyncInvokeSummaries"]) == 1
    rec = _check_forwarded_as_signed(mock, sent, "ListAsyncInvokes", None)
    assert rec.raw_query and b"maxResults=5" in rec.raw_query


def test_apply_guardrail(bedrock_client, mock):
    client, sent = bedrock_client()
    out = client.apply_guardrail(guardrailIdentifier="gr0abc123", guardrailVersion="1",
                                 source="INPUT", content=[{"text": {"text": "hello"}}])
    assert out["action"] == "NONE" and out["usage"]["topicPolicyUnits"] == 1
    rec = _check_forwarded_as_signed(mock, sent, "ApplyGuardrail", None)
    assert rec.extra["guardrail"] == "gr0abc123"


# -- the OpenAI-compatible route (no boto3 operation: sign a raw AWSRequest) ---------------------

CHAT_URL = f"http://{BEDROCK_HOST}/openai/v1/chat/completions"


def _chat(envoy_port, model):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hello"}],
                       "max_tokens": 16}).encode()
    prepared = sign("POST", CHAT_URL, body, {"Content-Type": "application/json"})
    headers = {"Host": BEDROCK_HOST}
    headers.update({k: (v if isinstance(v, str) else v.decode()) for k, v in
                    prepared.headers.items()})
    conn = http.client.HTTPConnection("127.0.0.1", envoy_port, timeout=QUICK)
    try:
        conn.request("POST", CHAT_URL, body=body, headers=headers)  # absolute-form, like a proxy
        r = conn.getresponse()
        return body, RawResponse(r.status, r.reason, r.getheaders(), r.read())
    finally:
        conn.close()


def test_chat_completions_with_an_allowed_model(envoy_port, mock):
    body, resp = _chat(envoy_port, "openai.gpt-oss-20b-1:0")
    assert resp.status == 200, resp.body
    doc = json.loads(resp.body)
    rec = single_forwarded(mock)
    assert rec.operation == "ChatCompletions" and rec.model_id == "openai.gpt-oss-20b-1:0"
    assert rec.raw_target == b"/openai/v1/chat/completions" and rec.body == body
    n, m = usage_for(len(body))
    assert doc["usage"] == {"prompt_tokens": n, "completion_tokens": m, "total_tokens": n + m}
    assert doc["choices"][0]["message"]["content"] == REPLY_TEXT


@pytest.mark.parametrize("model,reason", [c[1:] for c in REFUSED], ids=REFUSED_IDS)
def test_chat_completions_with_a_refused_model(envoy_port, mock, model, reason):
    _, resp = _chat(envoy_port, model)
    assert_raw_refusal(resp, reason)
    assert_mock_saw_nothing(mock)
