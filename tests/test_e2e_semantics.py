"""End to end: the policy semantics a security team reads in the bundle hold through Envoy.

Issue 9's classes, each through a real Envoy with the filter and a SigV4-verifying mock:
case variants of denied or unlisted models and of disallowed geographies are refused
(`model_invalid`); a foundation-model ARN with a geography prefix gets the geography and
base-model deny checks; an application-profile id under `inference-profile/` is opaque; an allow
rule that omits `models` is refused at load; every ARN a request names is checked for partition,
region and account; StartAsyncInvoke's output location, KMS key and bucket owner, and the
Lambdas, knowledge bases, guardrails and collaborator agents of InvokeInlineAgent, are refused
unless the bundle lists them. Allowed cases reach the mock (signature intact); refused ones never
do.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import BEDROCK_HOST, WASM_PATH
from tests.harness.assertions import (
    assert_client_error_refusal, assert_mock_saw_nothing, assert_raw_refusal, single_forwarded,
)
from tests.harness.awsreq import sign
from tests.harness.clients import bedrock_client
from tests.harness.envoy import free_port, render_config
from tests.harness.rawhttp import RawResponse
from tests.harness.stack import envoy_stack

QUICK = 3
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "999999999999"
CONVERSE = {"messages": [{"role": "user", "content": [{"text": "Say hello."}]}]}
AGENT_HOST = "bedrock-agent-runtime.us-east-1.amazonaws.com"
S3_OK = "s3://acme-bedrock-async/outputs/run-7/"


# -- 1. case: no case variant of a denied or unlisted model, or of a geography, is allowed ------

CASE_VARIANTS = [
    # (name, model id as boto3 sends it, reason)
    ("denied-opus-mixed-case", "us.anthropic.claude-Opus-4-1-20250805-v1:0", "model_invalid"),
    ("denied-global-upper-prefix", "GLOBAL.anthropic.claude-sonnet-4-5-20250929-v1:0",
     "model_invalid"),
    ("geography-upper", "EU.anthropic.claude-sonnet-4-20250514-v1:0", "model_invalid"),
    ("unlisted-provider-capitalised", "Meta.llama3-8b-instruct-v1:0", "model_invalid"),
    ("allowed-model-capitalised", "Anthropic.claude-3-5-sonnet-20240620-v1:0", "model_invalid"),
    ("fm-arn-upper-id", "arn:aws:bedrock:us-east-1::foundation-model/"
     "anthropic.Claude-3-5-sonnet-20240620-v1:0", "model_invalid"),
    ("arn-upper-service", "arn:aws:BEDROCK:us-east-1::foundation-model/"
     "anthropic.claude-3-5-sonnet-20240620-v1:0", "model_unparseable"),
    ("app-profile-upper-id", f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/"
     "A1B2C3D4E5F6", "model_invalid"),
]


@pytest.mark.parametrize("model,reason", [c[1:] for c in CASE_VARIANTS],
                         ids=[c[0] for c in CASE_VARIANTS])
def test_case_variant_is_refused_and_never_reaches_bedrock(bedrock_client, mock, model, reason):
    client, _ = bedrock_client()
    with pytest.raises(ClientError) as e:
        client.converse(modelId=model, **CONVERSE)
    assert_client_error_refusal(e.value, reason)
    assert_mock_saw_nothing(mock)


def test_lower_case_form_of_the_same_model_is_still_allowed(bedrock_client, mock):
    client, _ = bedrock_client()
    client.converse(modelId="anthropic.claude-3-5-sonnet-20240620-v1:0", **CONVERSE)
    assert single_forwarded(mock).model_id == "anthropic.claude-3-5-sonnet-20240620-v1:0"


# -- 2. ARN resource types ----------------------------------------------------------------------

ARN_SHAPES = [
    # A foundation-model ARN whose id carries a geography prefix: same checks as a profile.
    ("fm-arn-with-profile-of-denied-base",
     "arn:aws:bedrock:us-east-1::foundation-model/us.anthropic.claude-opus-4-1-20250805-v1:0",
     "model_denied"),
    ("fm-arn-with-geography-that-does-not-serve-us-east-1",
     "arn:aws:bedrock:us-east-1::foundation-model/eu.anthropic.claude-sonnet-4-20250514-v1:0",
     "region_not_allowed"),
    # An application-profile id under inference-profile/ or foundation-model/ is opaque: the
    # demo's wildcard patterns never allow it.
    ("app-id-under-inference-profile",
     f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/a1b2c3d4e5f6", "model_not_allowed"),
    ("app-id-under-foundation-model",
     "arn:aws:bedrock:us-east-1::foundation-model/a1b2c3d4e5f6", "model_not_allowed"),
    # Two dots make a profile whatever the first label: an unknown geography is refused.
    ("unknown-geography-label", "u5.anthropic.claude-sonnet-4-20250514-v1:0",
     "region_not_allowed"),
]


@pytest.mark.parametrize("model,reason", [c[1:] for c in ARN_SHAPES],
                         ids=[c[0] for c in ARN_SHAPES])
def test_arn_resource_shapes_are_checked_like_their_profile_forms(bedrock_client, mock, model,
                                                                  reason):
    client, _ = bedrock_client()
    with pytest.raises(ClientError) as e:
        client.converse(modelId=model, **CONVERSE)
    assert_client_error_refusal(e.value, reason)
    assert_mock_saw_nothing(mock)


# -- 5. every ARN a request names: paths -------------------------------------------------------

def test_get_async_invoke_of_another_account_is_refused(bedrock_client, mock):
    client, _ = bedrock_client()
    arn = f"arn:aws:bedrock:us-east-1:{OTHER_ACCOUNT}:async-invoke/abcdefghijkl"
    with pytest.raises(ClientError) as e:
        client.get_async_invoke(invocationArn=arn)
    assert_client_error_refusal(e.value, "account_not_allowed")
    assert_mock_saw_nothing(mock)


def test_get_async_invoke_in_another_region_is_refused(bedrock_client, mock):
    client, _ = bedrock_client()
    arn = f"arn:aws:bedrock:us-west-2:{ACCOUNT}:async-invoke/abcdefghijkl"
    with pytest.raises(ClientError) as e:
        client.get_async_invoke(invocationArn=arn)
    assert_client_error_refusal(e.value, "region_not_allowed")
    assert_mock_saw_nothing(mock)


@pytest.mark.parametrize("guardrail,reason", [
    ("unlisted0", "resource_not_allowed"),
    (f"arn:aws:bedrock:us-east-1:{OTHER_ACCOUNT}:guardrail/gr0abc123", "account_not_allowed"),
    (f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:guardrail/gr0abc123", "region_not_allowed"),
], ids=["unlisted-id", "arn-other-account", "arn-other-region"])
def test_apply_guardrail_names_only_listed_guardrails_of_allowed_accounts(bedrock_client, mock,
                                                                         guardrail, reason):
    client, _ = bedrock_client()
    with pytest.raises(ClientError) as e:
        client.apply_guardrail(guardrailIdentifier=guardrail, guardrailVersion="1",
                               source="INPUT", content=[{"text": {"text": "hello"}}])
    assert_client_error_refusal(e.value, reason)
    assert_mock_saw_nothing(mock)


# -- 6. StartAsyncInvoke's output location ------------------------------------------------------

def _start_async(client, output: dict):
    return client.start_async_invoke(
        modelId="amazon.titan-text-express-v1", modelInput={"inputText": "x"},
        outputDataConfig={"s3OutputDataConfig": output})


def test_async_output_to_a_listed_location_reaches_bedrock(bedrock_client, mock):
    client, _ = bedrock_client(read_timeout=QUICK)
    _start_async(client, {"s3Uri": S3_OK, "bucketOwner": ACCOUNT})
    rec = single_forwarded(mock)
    assert rec.operation == "StartAsyncInvoke"
    assert json.loads(rec.body)["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"] == S3_OK


@pytest.mark.parametrize("output,reason", [
    ({"s3Uri": "s3://attacker-bucket/loot/"}, "resource_not_allowed"),
    # The bucket is written out in the bundle: a longer name sharing its prefix is another one.
    ({"s3Uri": "s3://acme-bedrock-async-copy/outputs/"}, "resource_not_allowed"),
    ({"s3Uri": "s3://acme-bedrock-async/elsewhere/"}, "resource_not_allowed"),
    ({"s3Uri": S3_OK, "bucketOwner": OTHER_ACCOUNT}, "account_not_allowed"),
    ({"s3Uri": S3_OK, "kmsKeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/"
      "0123abcd-0123-abcd-0123-0123456789ab"}, "resource_not_allowed"),
], ids=["other-bucket", "bucket-prefix-lookalike", "other-prefix", "other-owner", "unlisted-kms"])
def test_async_output_elsewhere_is_refused(bedrock_client, mock, output, reason):
    client, _ = bedrock_client(read_timeout=QUICK)
    with pytest.raises(ClientError) as e:
        _start_async(client, output)
    assert_client_error_refusal(e.value, reason)
    assert_mock_saw_nothing(mock)


# -- a second Envoy: agent-runtime resources, and a bundle that must not load -------------------

def _agent_bundle(demo: dict) -> dict:
    bundle = json.loads(json.dumps(demo))
    bundle["metadata"]["name"] = "semantics-e2e"
    bundle["endpoints"].append({"host": AGENT_HOST, "region": "us-east-1", "private_dns": True,
                                "cidrs": ["127.0.0.0/8"]})
    bundle["resources"].update({
        "lambdas": [f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:agent-tools-*"],
        "knowledge_bases": ["KBAPPROVED"],
    })
    bundle["rules"].insert(0, {
        "id": "inline-agents", "effect": "allow",
        "models": ["anthropic.claude-3-5-sonnet-20240620-v1:0",
                   f"arn:aws:bedrock:us-east-1:{ACCOUNT}:agent-alias/AGENTAAAAA/ALIASAAAAA"],
        "operations": ["InvokeInlineAgent", "RetrieveAndGenerate"]})
    return bundle


@pytest.fixture(scope="module")
def agent_envoy(tmp_path_factory, pki_dir, mock_server, demo_bundle):
    work = tmp_path_factory.mktemp("semantics")
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, mock_server.port, pki_dir, WASM_PATH,
                        _agent_bundle(demo_bundle), out_dir=work)
    with envoy_stack(cfg, admin, listener, work) as proc:
        yield proc


def _post_signed(port: int, host: str, target: str, raw: bytes) -> RawResponse:
    """A SigV4-signed JSON POST in absolute form, as an SDK behind HTTP_PROXY sends it."""
    url = f"http://{host}{target}"
    prepared = sign("POST", url, raw, {"Content-Type": "application/json"})
    headers = {"Host": host}
    headers.update({k: (v if isinstance(v, str) else v.decode()) for k, v in
                    prepared.headers.items()})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=QUICK)
    try:
        conn.request("POST", url, body=raw, headers=headers)
        r = conn.getresponse()
        return RawResponse(r.status, r.reason, r.getheaders(), r.read())
    finally:
        conn.close()


def _inline_agent(port: int, extra: dict) -> RawResponse:
    body = {"foundationModel": "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "instruction": "You are a helpful assistant for the tests.", "inputText": "hi"}
    body.update(extra)
    return _post_signed(port, AGENT_HOST, "/agents/session-1", json.dumps(body).encode())


LAMBDA_OK = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:agent-tools-search"


def test_inline_agent_with_listed_resources_reaches_bedrock(agent_envoy, mock):
    resp = _inline_agent(agent_envoy.listener_port, {
        "actionGroups": [{"actionGroupName": "tools",
                          "actionGroupExecutor": {"lambda": LAMBDA_OK}}],
        "knowledgeBases": [{"knowledgeBaseId": "KBAPPROVED", "description": "docs"}],
        "collaboratorConfigurations": [{
            "collaboratorName": "helper", "collaboratorInstruction": "help",
            "agentAliasArn": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:agent-alias/AGENTAAAAA/ALIASAAAAA"}],
    })
    assert resp.status == 200, resp.body[:300]
    rec = single_forwarded(mock)
    assert rec.raw_target == b"/agents/session-1"


INLINE_REFUSED = [
    ("unlisted-action-group-lambda",
     {"actionGroups": [{"actionGroupName": "t", "actionGroupExecutor": {
         "lambda": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:exfiltrate"}}]},
     "resource_not_allowed"),
    ("lambda-in-another-account",
     {"actionGroups": [{"actionGroupName": "t", "actionGroupExecutor": {
         "lambda": f"arn:aws:lambda:us-east-1:{OTHER_ACCOUNT}:function:agent-tools-x"}}]},
     "account_not_allowed"),
    ("custom-orchestration-lambda",
     {"orchestrationType": "CUSTOM_ORCHESTRATION", "customOrchestration": {"executor": {
         "lambda": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orchestrator"}}},
     "resource_not_allowed"),
    ("prompt-override-lambda",
     {"promptOverrideConfiguration": {
         "overrideLambda": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:parser",
         "promptConfigurations": []}},
     "resource_not_allowed"),
    ("unlisted-knowledge-base",
     {"knowledgeBases": [{"knowledgeBaseId": "KBOTHER123", "description": "x"}]},
     "resource_not_allowed"),
    ("unlisted-guardrail",
     {"guardrailConfiguration": {"guardrailIdentifier": "zz9", "guardrailVersion": "1"}},
     "resource_not_allowed"),
    ("unlisted-kms-key",
     {"customerEncryptionKeyArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/"
      "0123abcd-0123-abcd-0123-0123456789ab"},
     "resource_not_allowed"),
    ("collaborator-alias-not-named-by-an-arn-pattern",
     {"collaboratorConfigurations": [{
         "collaboratorName": "c", "collaboratorInstruction": "i",
         "agentAliasArn": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:agent-alias/AGENTBBBBB/ALIASBBBBB"}]},
     "model_not_allowed"),
    ("collaborator-alias-other-account",
     {"collaboratorConfigurations": [{
         "collaboratorName": "c", "collaboratorInstruction": "i",
         "agentAliasArn": f"arn:aws:bedrock:us-east-1:{OTHER_ACCOUNT}:agent-alias/AGENTAAAAA/ALIASAAAAA"}]},
     "account_not_allowed"),
    ("case-variant-resource-key",
     {"actionGroups": [{"actionGroupName": "t", "actionGroupExecutor": {
         "Lambda": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:exfiltrate"}}]},
     "body_unparseable"),
]


@pytest.mark.parametrize("extra,reason", [c[1:] for c in INLINE_REFUSED],
                         ids=[c[0] for c in INLINE_REFUSED])
def test_inline_agent_side_doors_are_refused(agent_envoy, mock, extra, reason):
    resp = _inline_agent(agent_envoy.listener_port, extra)
    assert_raw_refusal(resp, reason)
    assert_mock_saw_nothing(mock)


# -- 3. an allow rule that names a model-carrying operation must name models --------------------

def _refused_at_load(tmp_path, pki_dir, mock_server, bundle: dict, edit=None) -> str:
    """Start Envoy with `bundle` (its rendered config passed through `edit`): the filter
    refuses the bundle in `on_configure`, and with nothing in force it holds no policy, so a
    request for an allowed model is refused `policy_unavailable` and nothing reaches the
    upstream (tests/test_e2e_fail_closed.py has the whole class). Returns Envoy's log."""
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, mock_server.port, pki_dir, WASM_PATH, bundle,
                        out_dir=tmp_path)
    if edit is not None:
        doc = yaml.safe_load(cfg.read_text())
        edit(doc)
        cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    mock_server.reset()
    with envoy_stack(cfg, admin, listener, tmp_path) as proc:
        with pytest.raises(ClientError) as e:
            bedrock_client(listener).converse(
                modelId="anthropic.claude-3-5-sonnet-20240620-v1:0",
                messages=[{"role": "user", "content": [{"text": "hi"}]}])
        assert_client_error_refusal(e.value, "policy_unavailable")
        assert_mock_saw_nothing(mock_server)
        return proc.log_text()


def test_bundle_with_an_allow_rule_without_models_does_not_load(tmp_path, pki_dir, mock_server,
                                                                 demo_bundle):
    bundle = json.loads(json.dumps(demo_bundle))
    bundle["rules"].insert(0, {"id": "async-reads", "effect": "allow",
                               "operations": ["StartAsyncInvoke", "GetAsyncInvoke",
                                              "ListAsyncInvokes"]})
    log = _refused_at_load(tmp_path, pki_dir, mock_server, bundle)
    assert "rules[0].models" in log and "StartAsyncInvoke" in log, log[-2000:]


def test_path_model_with_percent_encoded_uppercase_is_refused_raw(envoy_port, mock):
    # boto3 never sends this; a hand-written client might: %4D is `M`.
    target = "/model/" + quote("%4Deta.llama3-8b-instruct-v1:0", safe="%") + "/converse"
    resp = _post_signed(envoy_port, BEDROCK_HOST, target, json.dumps(CONVERSE).encode())
    assert_raw_refusal(resp, "model_invalid")
    assert_mock_saw_nothing(mock)


# -- 4. `null` and escaped member names: the filter refuses to load such a bundle --------------

@pytest.mark.parametrize("mutate,needle", [
    (lambda b: b.__setitem__("accounts", None), "accounts: null is not allowed"),
    (lambda b: b["network"].__setitem__("profile_geographies", None)
     if "network" in b else b.__setitem__("network", {"profile_geographies": None}),
     "network.profile_geographies: null is not allowed"),
], ids=["accounts-null", "geographies-null"])
def test_bundle_with_a_null_does_not_load(tmp_path, pki_dir, mock_server, demo_bundle, mutate,
                                          needle):
    bundle = json.loads(json.dumps(demo_bundle))
    mutate(bundle)
    log = _refused_at_load(tmp_path, pki_dir, mock_server, bundle)
    assert needle in log, log[-2000:]


def test_bundle_with_an_escaped_member_name_does_not_load(tmp_path, pki_dir, mock_server,
                                                          demo_bundle):
    # The embedded bundle is a JSON string inside the YAML: spell `"mode"` as `"m\u006fde"`.
    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "value" and isinstance(v, str) and "PolicyBundle" in v:
                    node[k] = v.replace('"mode"', '"m\\u006fde"', 1)
                    return True
                if walk(v):
                    return True
        elif isinstance(node, list):
            return any(walk(x) for x in node)
        return False

    def edit(doc):
        assert walk(doc), "no embedded bundle"

    log = _refused_at_load(tmp_path, pki_dir, mock_server, demo_bundle, edit)
    assert "backslash escape" in log, log[-2000:]
