"""The cross-region shape (`envoy/cross-region.yaml`) end to end, on loopback.

The application runs in eu-west-1 and calls Bedrock in us-east-1 through a transit VPC in
us-east-1 that holds the Bedrock runtime VPC endpoint (docs/operations.md, "Cross-region").
Loopback stands in for the network (see `harness/topology.py`):

    127.0.0.1   the application's side (its sidecar's explicit listener)
    127.0.0.2   "the endpoint's ENI in the transit VPC": the mock Bedrock, the only address in
                the bundle's `cidrs`; it verifies SigV4 for us-east-1
    127.0.0.3   "an address outside the transit VPC's endpoint subnets": a second mock
    127.0.0.4   a copy of the transparent listener, "dialled outside the endpoint's subnets"

The shipped file runs as shipped apart from addresses, CA, wasm path and `cidrs`
(`topology.render_sidecar`). Proved here: an SDK configured for us-east-1 reaches the remote
endpoint, with a signature the remote side verifies for us-east-1, by its regional name and by
its vpce name, and the audit records name the remote region and endpoint; path-carried
operations (Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream) behave as in
the same-region sidecar; a call for a region the bundle does not name is refused before it
leaves (destination_not_privatelink), and so is a SigV4 scope or an inference profile for
another geography (region_not_allowed); an answer from outside the remote endpoint's subnets is
withheld (destination_not_privatelink); the transparent listener admits only connections
dialled inside those subnets.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import WASM_PATH
from tests.harness import topology as topo
from tests.harness.assertions import SETTLE_SECONDS
from tests.harness.audit_log import AuditLog
from tests.harness.clients import bedrock_client
from tests.harness.mock_bedrock import REPLY_PIECES, REPLY_TEXT, MockBedrock
from tests.harness.stack import envoy_stack

CROSS_REGION = topo.REPO_ROOT / "envoy" / "cross-region.yaml"
REMOTE_REGION = "us-east-1"  # where Bedrock and the transit VPC's endpoint are
HOME_REGION = "eu-west-1"  # where the application runs
REGIONAL_HOST = f"bedrock-runtime.{REMOTE_REGION}.amazonaws.com"
VPCE_ID = "vpce-0f1e2d3c4b5a69788"
VPCE_HOST = f"{VPCE_ID}-wxyz5678.bedrock-runtime.{REMOTE_REGION}.vpce.amazonaws.com"
MODEL = "anthropic.claude-sonnet-4-20250514-v1:0"  # rule claude-sonnet-and-titan
US_PROFILE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
EU_PROFILE = "eu.anthropic.claude-sonnet-4-20250514-v1:0"
DENIED_MODEL = "anthropic.claude-opus-4-20250514-v1:0"  # rule no-opus
REMOTE_CIDRS = [f"{topo.ENI}/32"]
INVOKE_BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                          "messages": [{"role": "user", "content": "hi"}]})


def _messages():
    return [{"role": "user", "content": [{"text": "hi"}]}]


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def remote_eni(pki_dir):
    """The mock Bedrock on "the endpoint's ENI", verifying signatures for us-east-1."""
    mock = MockBedrock(host=topo.ENI, pki_dir=pki_dir, region=REMOTE_REGION).start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def outside(pki_dir):
    mock = MockBedrock(host=topo.PUBLIC, pki_dir=pki_dir, region=REMOTE_REGION).start()
    yield mock
    mock.stop()


@pytest.fixture(autouse=True)
def _clean(remote_eni, outside):
    remote_eni.reset()
    outside.reset()


class Running:
    def __init__(self, rendered: topo.Rendered, audit: AuditLog):
        self.rendered, self.audit = rendered, audit
        self.proxy = rendered.listeners["egress_proxy"]


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory, pki_dir, remote_eni):
    """envoy/cross-region.yaml, its clusters landing on the remote ENI; the transparent listener
    on 127.0.0.2 (inside the remote cidrs) and a copy on 127.0.0.4 (outside)."""
    rendered = topo.render_sidecar(
        CROSS_REGION, tmp_path_factory.mktemp("xr-cfg"), pki_dir=pki_dir, wasm_path=WASM_PATH,
        upstream=(topo.ENI, remote_eni.port), cidrs=REMOTE_CIDRS,
        transparent_copies={"egress_transparent_outside": topo.OUTSIDE})
    first = rendered.listeners["egress_proxy"][1]
    with envoy_stack(rendered.path, rendered.admin_port, first, tmp_path_factory.mktemp("xr"),
                     split_logs=True) as proc:
        yield Running(rendered, AuditLog(proc.log_path))


@pytest.fixture(scope="module")
def misrouted(tmp_path_factory, pki_dir, outside):
    """The same file, but its clusters land outside the remote endpoint's subnets (a wrong
    address in a STATIC cluster, or DNS answering with something else)."""
    rendered = topo.render_sidecar(
        CROSS_REGION, tmp_path_factory.mktemp("xr-out-cfg"), pki_dir=pki_dir,
        wasm_path=WASM_PATH, upstream=(topo.PUBLIC, outside.port), cidrs=REMOTE_CIDRS)
    first = rendered.listeners["egress_proxy"][1]
    with envoy_stack(rendered.path, rendered.admin_port, first,
                     tmp_path_factory.mktemp("xr-out"), split_logs=True) as proc:
        yield Running(rendered, AuditLog(proc.log_path))


def _client(running: Running, host: str = REGIONAL_HOST, region: str = REMOTE_REGION):
    """boto3 as the application in eu-west-1 runs it: HTTP_PROXY to its sidecar, the endpoint
    URL `http://<host>`, the SDK's region `region`."""
    return bedrock_client(running.proxy, host=host, region=region, read_timeout=10)


def _only(mock: MockBedrock, *others: MockBedrock):
    mock.wait_for_requests(1, timeout=3)
    time.sleep(SETTLE_SECONDS)
    recs = mock.requests
    assert len(recs) == 1, [r.summary() for r in recs]
    for other in others:
        assert not other.requests, [r.summary() for r in other.requests]
    return recs[0]


def _nothing_reached(*mocks: MockBedrock) -> None:
    time.sleep(SETTLE_SECONDS)
    for mock in mocks:
        assert not mock.requests, [r.summary() for r in mock.requests]


def _refusal(exc: ClientError, reason: str) -> str:
    resp = exc.response
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 403, resp
    assert resp["Error"]["Code"] == "AccessDeniedException", resp["Error"]
    headers = resp["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-bedrock-guard-reason") == reason, headers
    return resp["Error"]["Message"]


# -- the shipped file ----------------------------------------------------------------------------

def test_rendering_changes_only_what_loopback_must_own(sidecar):
    shipped = yaml.safe_load(CROSS_REGION.read_text())
    rendered = yaml.safe_load(sidecar.rendered.path.read_text())
    for cfg in (shipped, rendered):
        bundles = [topo.plugin_configuration(g)[0] for g in topo.guard_configs(cfg)[:2]]
        for b in bundles:
            assert [(e["host"], e["region"]) for e in b["endpoints"]] == [
                (REGIONAL_HOST, REMOTE_REGION), (VPCE_HOST, REMOTE_REGION)]
            assert b["network"]["profile_geographies"] == ["us"]
    shipped_bundle = topo.plugin_configuration(topo.guard_configs(shipped)[0])[0]
    # As shipped, the cidrs are the transit VPC's endpoint subnets, not the application's VPC.
    assert {c for e in shipped_bundle["endpoints"] for c in e["cidrs"]} == {
        "10.40.1.0/24", "10.40.2.0/24"}
    # The clusters are pinned to the remote endpoint's vpce name, with SNI and SAN per host.
    clusters = {c["name"]: c for c in shipped["static_resources"]["clusters"]}
    for c in clusters.values():
        [addr] = [n["socket_address"]["address"] for n in topo._walk(c["load_assignment"])
                  if "socket_address" in n]
        assert addr == VPCE_HOST, (c["name"], addr)
    # Only addresses, CA, wasm path and cidrs were rewritten: routes and filters as shipped.
    def routes(cfg):
        return [topo.hcm_of(lst)["route_config"] for lst in
                cfg["static_resources"]["listeners"][:2]]

    def filters(cfg):
        return [[f["name"] for f in topo.hcm_of(lst)["http_filters"]]
                for lst in cfg["static_resources"]["listeners"][:2]]
    assert routes(rendered) == routes(shipped)
    assert filters(rendered) == filters(shipped)


# -- allowed: the remote endpoint, signed for its region -----------------------------------------

@pytest.mark.parametrize("host,vpce_id", [(REGIONAL_HOST, None), (VPCE_HOST, VPCE_ID)],
                         ids=["regional-name", "vpce-name"])
def test_sdk_for_the_remote_region_reaches_the_remote_endpoint(sidecar, remote_eni, outside,
                                                               host, vpce_id):
    mark = sidecar.audit.mark()
    r = _client(sidecar, host).converse(modelId=MODEL, messages=_messages())
    assert r["output"]["message"]["content"][0]["text"].startswith(REPLY_TEXT)
    rec = _only(remote_eni, outside)
    # The remote side verified the application's own signature, scoped to us-east-1.
    assert rec.signature_ok, rec.signature_error
    assert f"/{REMOTE_REGION}/bedrock/aws4_request" in rec.header_values("authorization")[0]
    assert rec.header_values("host") == [host]
    [audit] = sidecar.audit.take(1, since=mark)
    assert (audit["decision"], audit["reason"], audit["status"]) == ("allow", "allowed", 200)
    assert audit["awsRegion"] == REMOTE_REGION, audit
    assert audit["endpoint"] == host, audit
    assert audit["vpcEndpointId"] == vpce_id, audit
    assert audit["upstreamAddress"] == f"{topo.ENI}:{remote_eni.port}", audit
    assert audit["bundleName"] == "cross-region", audit


def _converse_stream(c, model):
    events = list(c.converse_stream(modelId=model, messages=_messages())["stream"])
    assert "metadata" in events[-1], events[-1]


def _invoke(c, model):
    r = c.invoke_model(modelId=model, body=INVOKE_BODY, contentType="application/json",
                       accept="application/json")
    assert r["body"].read()


def _invoke_stream(c, model):
    r = c.invoke_model_with_response_stream(modelId=model, body=INVOKE_BODY,
                                            contentType="application/json",
                                            accept="application/json")
    assert list(r["body"])


@pytest.mark.parametrize("call,operation", [
    (lambda c, m: c.converse(modelId=m, messages=_messages()), "Converse"),
    (_converse_stream, "ConverseStream"),
    (_invoke, "InvokeModel"),
    (_invoke_stream, "InvokeModelWithResponseStream"),
], ids=["converse", "converse-stream", "invoke", "invoke-stream"])
@pytest.mark.parametrize("model", [MODEL, US_PROFILE], ids=["base-model", "us-profile"])
def test_path_carried_operations_as_usual(sidecar, remote_eni, outside, call, operation, model):
    mark = sidecar.audit.mark()
    call(_client(sidecar), model)
    rec = _only(remote_eni, outside)
    assert rec.signature_ok, rec.signature_error
    assert (rec.operation, rec.model_id) == (operation, model)
    [audit] = sidecar.audit.take(1, since=mark)
    assert (audit["eventName"], audit["decision"], audit["awsRegion"]) == (
        operation, "allow", REMOTE_REGION), audit
    assert audit["requestParameters"]["modelId"] == model, audit


def test_rules_apply_as_usual(sidecar, remote_eni, outside):
    mark = sidecar.audit.mark()
    with pytest.raises(ClientError) as e:
        _client(sidecar).converse(modelId=DENIED_MODEL, messages=_messages())
    assert "no-opus" in _refusal(e.value, "model_denied")
    _nothing_reached(remote_eni, outside)
    [audit] = sidecar.audit.take(1, since=mark)
    assert (audit["reason"], audit["ruleId"], audit["awsRegion"]) == (
        "model_denied", "no-opus", REMOTE_REGION), audit


# -- refused before anything leaves ---------------------------------------------------------------

def test_a_region_the_bundle_does_not_name_is_refused(sidecar, remote_eni, outside):
    """The application's own region (or any other) has no endpoint in the bundle."""
    mark = sidecar.audit.mark()
    with pytest.raises(ClientError) as e:
        _client(sidecar, f"bedrock-runtime.{HOME_REGION}.amazonaws.com",
                region=HOME_REGION).converse(modelId=MODEL, messages=_messages())
    _refusal(e.value, "destination_not_privatelink")
    _nothing_reached(remote_eni, outside)
    [audit] = sidecar.audit.take(1, since=mark)
    assert (audit["decision"], audit["reason"], audit["status"]) == (
        "deny", "destination_not_privatelink", 403), audit
    assert audit["upstreamAddress"] is None, audit


def test_a_signature_for_the_home_region_is_refused(sidecar, remote_eni, outside):
    """An SDK left on eu-west-1 but pointed at the us-east-1 endpoint signs a scope that
    endpoint would reject: the guard refuses it first."""
    with pytest.raises(ClientError) as e:
        _client(sidecar, REGIONAL_HOST, region=HOME_REGION).converse(
            modelId=MODEL, messages=_messages())
    assert HOME_REGION in _refusal(e.value, "region_not_allowed")
    _nothing_reached(remote_eni, outside)


def test_a_profile_of_another_geography_is_refused(sidecar, remote_eni, outside):
    with pytest.raises(ClientError) as e:
        _client(sidecar).converse(modelId=EU_PROFILE, messages=_messages())
    _refusal(e.value, "region_not_allowed")
    _nothing_reached(remote_eni, outside)


# -- the transparent listener: the address the application dialled --------------------------------

BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
CONVERSE = f"/model/{MODEL.replace(':', '%3A')}/converse"


def _transparent(listener: tuple[str, int]):
    headers = topo.signed_headers("POST", REGIONAL_HOST, CONVERSE, BODY, region=REMOTE_REGION)
    return topo.exchange(*listener, topo.http11("POST", CONVERSE, headers, BODY))


def test_transparent_listener_inside_the_remote_cidrs(sidecar, remote_eni, outside):
    resp = _transparent(sidecar.rendered.listeners["egress_transparent"])
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert _only(remote_eni, outside).signature_ok


def test_transparent_listener_outside_the_remote_cidrs(sidecar, remote_eni, outside):
    resp = _transparent(sidecar.rendered.listeners["egress_transparent_outside"])
    assert resp.status == 403, (resp.status, resp.body[:300])
    assert b"destination_not_privatelink" in resp.body
    _nothing_reached(remote_eni, outside)


# -- an answer from outside the remote endpoint's subnets ----------------------------------------

def test_an_answer_from_outside_the_remote_cidrs_is_withheld(misrouted, remote_eni, outside):
    mark = misrouted.audit.mark()
    with pytest.raises(ClientError) as e:
        _client(misrouted).converse(modelId=MODEL, messages=_messages())
    message = _refusal(e.value, "destination_not_privatelink")
    assert "outside the endpoint's PrivateLink ranges" in message, message
    for piece in REPLY_PIECES:
        assert piece not in message
    # The request left once (only the answer's origin shows where it went), never to the ENI.
    assert len(outside.wait_for_requests(1)) == 1
    _nothing_reached(remote_eni)
    [audit] = misrouted.audit.take(1, since=mark)
    assert (audit["decision"], audit["reason"], audit["status"], audit["upstreamStatus"]) == (
        "deny", "destination_not_privatelink", 403, 200), audit
    assert audit["upstreamAddress"] == f"{topo.PUBLIC}:{outside.port}", audit
    assert audit["awsRegion"] == REMOTE_REGION, audit
