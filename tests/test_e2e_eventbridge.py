"""Deny alerts as real EventBridge `PutEvents` calls, through a real Envoy running
`envoy/sidecar-proxy-signed.yaml` as shipped apart from addresses, CA, wasm path, credentials
(fake, in Envoy's environment) and the identity provider's keys (inline, no IdP on loopback).

The bundle's `alerts` (format `eventbridge`) hands batches to the `eventbridge_us_east_1`
cluster; the module's `dispatch_http_call` runs that cluster's upstream HTTP filters, so
`aws_request_signing` (service `events`) signs each call. Here that cluster points at
`harness/mock_eventbridge.py` on loopback, which verifies the SigV4 signature (service `events`,
`host` and `x-amz-target` signed), the host the calls are addressed to and the body shape, and
answers as scripted: partial failures, throttling, an unavailable service.

Proved here: refusals arrive as signed PutEvents calls of at most 10 entries whose Detail is a
string holding the audit record (no token, no signature); retryable entry errors are sent again
and non-retryable ones dropped, and the stats count both; a sink that stays down gets exactly
`max_attempts` calls per batch, with growing gaps, and then the events are counted as failed;
the shipped EventBridge rule matches the destination refusals received and not the others."""

from __future__ import annotations

import copy
import http.client
import json
import time

import pytest
import yaml

from tests.conftest import ACCESS_KEY, SECRET_KEY, WASM_PATH
from tests.harness import topology as topo
from tests.harness.event_pattern import envelope, load_rule, matches
from tests.harness.mock_eventbridge import MockEventBridge
from tests.harness.stack import envoy_stack
from tests.harness.tokens import SigningKey, claims

ISSUER, AUDIENCE = "https://idp.acme.example", "bedrock-egress"
MODEL = "meta.llama3-8b-instruct-v1%3A0"  # no rule allows it: model_not_allowed
CONVERSE = f"/model/{MODEL}/converse"
BEDROCK = "bedrock-runtime.us-east-1.amazonaws.com"
ELSEWHERE = "bedrock-runtime.us-west-2.amazonaws.com"  # not a bundle endpoint
EVENT_BUS = "arn:aws:events:us-east-1:123456789012:event-bus/bedrock-guard-alerts"
SECRET_SIGNATURE = "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def idp_key():
    return SigningKey.ec("eventbridge-test-key")


@pytest.fixture(scope="module")
def eventbridge(pki_dir):
    mock = MockEventBridge(pki_dir=pki_dir).start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory, pki_dir, eventbridge, idp_key):
    out = tmp_path_factory.mktemp("eventbridge-cfg")
    rendered = topo.render_sidecar(
        topo.PROXY_SIGNED, out, pki_dir=pki_dir, wasm_path=WASM_PATH,
        upstream=(topo.ENI, 9), cidrs=[f"{topo.ENI}/32"],
        inline_jwks={"keys": [idp_key.jwk()]}, env_credentials_only=True)
    # render_sidecar keeps only the Bedrock clusters: put the shipped alerts cluster back, on
    # the mock, with its upstream signing filter untouched apart from the credential source.
    shipped = topo.load(topo.PROXY_SIGNED)
    (cluster,) = [copy.deepcopy(c) for c in shipped["static_resources"]["clusters"]
                  if c["name"] == "eventbridge_us_east_1"]
    cluster.pop("cluster_type")
    cluster["type"] = "STATIC"
    cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": [{"endpoint": {"address": {
        "socket_address": {"address": "127.0.0.1", "port_value": eventbridge.port}}}}]}]
    tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]
    tls["validation_context"]["trusted_ca"]["filename"] = str(pki_dir.resolve() / "ca.pem")
    http_filters = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
    http_filters[0]["typed_config"]["credential_provider"] = {
        "custom_credential_provider_chain": True, "environment_credential_provider": {}}
    cfg = yaml.safe_load(rendered.path.read_text())
    cfg["static_resources"]["clusters"].append(cluster)
    rendered.path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    first = next(iter(rendered.listeners.values()))[1]
    with envoy_stack(rendered.path, rendered.admin_port, first,
                     tmp_path_factory.mktemp("eventbridge"),
                     env={"AWS_ACCESS_KEY_ID": ACCESS_KEY,
                          "AWS_SECRET_ACCESS_KEY": SECRET_KEY}) as proc:
        yield rendered, proc


def refuse(rendered, idp_key, ids: list[str], *, host: str = BEDROCK,
           token: bool = True) -> None:
    """Send one refused Converse per id on one keep-alive connection (one worker, one queue)."""
    address, port = rendered.listeners["egress_proxy"]
    # Tokens minted first, so the requests themselves follow each other within milliseconds.
    tokens = [idp_key.mint(claims(ISSUER, AUDIENCE, "svc-alerts", groups=["ml-platform"]))
              for _ in ids] if token else [None] * len(ids)
    conn = http.client.HTTPConnection(address, port, timeout=10)
    try:
        for rid, minted in zip(ids, tokens):
            headers = {"content-type": "application/json", "x-request-id": rid,
                       "authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"
                       f"20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host, "
                       f"Signature={SECRET_SIGNATURE}"}
            if minted:
                headers["x-workload-identity"] = minted
            conn.request("POST", f"http://{host}{CONVERSE}", body=b"{}", headers=headers)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 403, (rid, resp.status)
    finally:
        conn.close()


def stat(proc, name: str) -> int:
    return sum(v for k, v in proc.stats().items() if k.endswith(f"bedrock_guard.{name}"))


STATS = ("alerts_sent", "alerts_failed", "alerts_retried", "alerts_failed_entries",
         "alerts_dropped")


def stats(proc) -> dict[str, int]:
    return {name: stat(proc, name) for name in STATS}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in STATS}


def wait_stats(proc, before, expected: dict[str, int], timeout: float = 15.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        got = delta(before, stats(proc))
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def received_ids(calls) -> list[str]:
    return [d["requestID"] for c in calls for d in c.details()]


def test_refusals_arrive_as_signed_put_events_calls(sidecar, eventbridge, idp_key):
    rendered, proc = sidecar
    eventbridge.reset()
    before = stats(proc)
    # 25 refusals in a burst on one worker: wherever the once-a-second flush falls in it (at
    # most once: the burst lasts well under a second), one side holds at least 13 events, so
    # a call is filled to the limit of 10.
    denied = [f"eb-model-{i:02d}" for i in range(25)]
    elsewhere = [f"eb-dest-{i:02d}" for i in range(3)]
    refuse(rendered, idp_key, denied)
    refuse(rendered, idp_key, elsewhere, host=ELSEWHERE)
    want = set(denied + elsewhere)
    assert eventbridge.wait_for(lambda calls: set(received_ids(calls)) >= want), \
        received_ids(eventbridge.calls)
    calls = eventbridge.calls
    for call in calls:
        assert call.signature_ok, call.signature_error
        assert call.problems == [], call.problems
        assert call.status == 200
        assert 1 <= len(call.entries) <= 10
        assert {"host", "x-amz-target", "x-amz-date"} <= set(call.signed_headers)
    assert max(len(c.entries) for c in calls) == 10, "25 refusals on one worker fill a call"
    assert sorted(received_ids(calls)) == sorted(want), "each refusal exactly once"
    by_id = {}
    for call in calls:
        for entry, detail in zip(call.entries, call.details()):
            assert entry["Source"] == "bedrock-guard"
            assert entry["DetailType"] == "Bedrock request denied"
            assert entry["EventBusName"] == EVENT_BUS
            assert isinstance(entry["Detail"], str)
            # The audit record, redacted: neither the caller's signature nor its token.
            assert SECRET_SIGNATURE not in entry["Detail"]
            assert "eyJ" not in entry["Detail"]
            by_id[detail["requestID"]] = (entry, detail)
    for rid in denied:
        assert by_id[rid][1]["reason"] == "model_not_allowed"
        assert by_id[rid][1]["decision"] == "deny"
    for rid in elsewhere:
        assert by_id[rid][1]["reason"] == "destination_not_privatelink"
    # The shipped rule routes the destination refusals and nothing else.
    rule = load_rule()
    routed = {rid for rid, (entry, _) in by_id.items() if matches(rule, envelope(entry))}
    assert routed == set(elsewhere)
    sent = len(want)
    assert wait_stats(proc, before, {"alerts_sent": sent, "alerts_failed": 0, "alerts_retried": 0,
                                     "alerts_failed_entries": 0, "alerts_dropped": 0}) == \
        {"alerts_sent": sent, "alerts_failed": 0, "alerts_retried": 0,
         "alerts_failed_entries": 0, "alerts_dropped": 0}


def test_partial_failures_are_retried_or_dropped_and_counted(sidecar, eventbridge, idp_key):
    rendered, proc = sidecar
    eventbridge.reset(("partial", {0: "ThrottlingException", 1: "AccessDeniedException",
                                   2: "InternalFailure"}))
    before = stats(proc)
    ids = [f"eb-partial-{i}" for i in range(4)]
    refuse(rendered, idp_key, ids)
    # Whatever the batching: every retryable entry comes back, no dropped one does.
    assert eventbridge.wait_for(lambda calls: len(calls) >= 2 and not any(
        c.failed for c in calls[1:]) and set(received_ids(calls)) >= set(ids), timeout=10)
    time.sleep(2.5)  # nothing more may arrive
    calls = eventbridge.calls
    first = calls[0]
    failed = {first.details()[i]["requestID"]: code for i, code in first.failed.items()}
    assert failed, "the scripted partial failure applied"
    later = received_ids(calls[1:])
    retryable = {r for r, code in failed.items() if code != "AccessDeniedException"}
    dropped = set(failed) - retryable
    assert retryable <= set(later), (failed, later)
    assert not dropped & set(later), (failed, later)
    assert sorted(later) == sorted(set(ids) - set(received_ids([first])) | retryable)
    assert all(c.signature_ok and not c.problems for c in calls)
    expected = {"alerts_sent": len(ids) - len(dropped), "alerts_failed": len(dropped),
                "alerts_retried": len(retryable), "alerts_failed_entries": len(failed),
                "alerts_dropped": 0}
    assert wait_stats(proc, before, expected) == expected


def test_a_sink_that_stays_down_gets_bounded_retries_then_drops(sidecar, eventbridge, idp_key):
    rendered, proc = sidecar
    eventbridge.reset(default=("status", 503, "ServiceUnavailable"))
    before = stats(proc)
    ids = ["eb-down-0", "eb-down-1"]
    refuse(rendered, idp_key, ids)
    max_attempts = 4  # the shipped bundle's alerts.max_attempts
    per_id = lambda calls, rid: [c for c in calls if rid in received_ids([c])]  # noqa: E731
    assert eventbridge.wait_for(
        lambda calls: all(len(per_id(calls, r)) >= max_attempts for r in ids), timeout=20)
    time.sleep(2.5)
    calls = eventbridge.calls
    for rid in ids:
        tries = per_id(calls, rid)
        assert len(tries) == max_attempts, f"{rid}: {len(tries)} calls"
        # Backoff 1, 2, 4 s between attempts (the 1 s timer makes each gap +-1 s).
        gaps = [b.at - a.at for a, b in zip(tries, tries[1:])]
        assert gaps[2] >= 2.9 and gaps[2] > gaps[0], gaps
        assert sum(gaps) >= 5.0, gaps
    expected = {"alerts_sent": 0, "alerts_failed": 2, "alerts_retried": 2 * (max_attempts - 1),
                "alerts_failed_entries": 0, "alerts_dropped": 0}
    assert wait_stats(proc, before, expected) == expected
    eventbridge.reset()

