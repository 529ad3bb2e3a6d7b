"""The destination guarantees ("never over the internet") through the shipped sidecar configs.

Loopback stands in for the VPC (see `harness/topology.py`): a mock Bedrock on 127.0.0.2 is "the
VPC endpoint's ENI" (the bundle's only `cidrs` block is 127.0.0.2/32), a second one on
127.0.0.3 is "a public address". `envoy/sidecar-client-signed.yaml` and
`envoy/sidecar-proxy-signed.yaml` run as shipped apart from addresses, CA, wasm path and cidrs.

Proved here: allowed traffic reaches the ENI and nothing else; a cluster that lands on the
public address gets its response replaced by a refusal no SDK retries (403 AccessDeniedException
destination_not_privatelink: boto3 in standard and legacy retry mode sends the request exactly
once), so the application never sees the model's output, and that endpoint is then quarantined:
every later request to it, on every Envoy worker, is refused before it leaves; the audit record
keeps the upstream's real status and address; every refused authority reaches neither mock; the
transparent listener checks the address the application dialled; SigV4 scopes must name the
endpoint's region and `bedrock`; the proxy-signed shape signs with the proxy's credentials after
the filter decided.
"""

from __future__ import annotations

import hashlib
import json
import re
import time

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY, BEDROCK_HOST, SECRET_KEY, WASM_PATH
from tests.harness import topology as topo
from tests.harness.alert_sink import AlertSink, sink_cluster
from tests.harness.assertions import SETTLE_SECONDS, assert_raw_refusal
from tests.harness.audit_log import AuditLog, parse_line
from tests.harness.clients import bedrock_client
from tests.harness.envoy import EnvoyProcess
from tests.harness.mock_bedrock import REPLY_PIECES, REPLY_TEXT, MockBedrock
from tests.harness.sigv4 import parse_authorization
from tests.harness.stack import envoy_stack
from tests.harness.tokens import SigningKey, claims

VPCE_HOST = "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com"
VPCE_ZONAL = ("vpce-0a1b2c3d4e5f67890-abcd1234-us-east-1a.bedrock-runtime.us-east-1.vpce."
              "amazonaws.com")
MODEL = "anthropic.claude-sonnet-4-20250514-v1%3A0"  # allowed by both sidecar bundles
DENIED_MODEL = "anthropic.claude-opus-4-20250514-v1%3A0"  # rule no-opus
CONVERSE = f"/model/{MODEL}/converse"
BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
ENI_CIDRS = [f"{topo.ENI}/32"]


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def eni_mock(pki_dir):
    mock = MockBedrock(host=topo.ENI, pki_dir=pki_dir).start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def public_mock(pki_dir):
    mock = MockBedrock(host=topo.PUBLIC, pki_dir=pki_dir).start()
    yield mock
    mock.stop()


@pytest.fixture(autouse=True)
def _clean_mocks(eni_mock, public_mock):
    eni_mock.reset()
    public_mock.reset()


def _start(tmp_path_factory, name: str, rendered: topo.Rendered, env: dict | None = None,
           split_logs: bool = False):
    """`envoy_stack` for a rendered sidecar (its first listener as `listener_port`)."""
    first = next(iter(rendered.listeners.values()))[1]
    return envoy_stack(rendered.path, rendered.admin_port, first, tmp_path_factory.mktemp(name),
                       env=env, split_logs=split_logs)


@pytest.fixture(scope="module")
def client_sidecar(tmp_path_factory, pki_dir, eni_mock):
    """sidecar-client-signed.yaml, clusters on the ENI mock; the transparent listener on
    127.0.0.2 (inside cidrs) and a copy on 127.0.0.4 (outside)."""
    rendered = topo.render_sidecar(
        topo.CLIENT_SIGNED, tmp_path_factory.mktemp("client-cfg"), pki_dir=pki_dir,
        wasm_path=WASM_PATH, upstream=(topo.ENI, eni_mock.port), cidrs=ENI_CIDRS,
        transparent_copies={"egress_transparent_outside": topo.OUTSIDE})
    with _start(tmp_path_factory, "client-sidecar", rendered):
        yield rendered


class PublicSidecar:
    """The running public sidecar: its rendered config, Envoy, access log and alert sink."""

    def __init__(self, rendered: topo.Rendered, proc: EnvoyProcess, audit: AuditLog,
                 sink: AlertSink):
        self.rendered, self.proc, self.audit, self.sink = rendered, proc, audit, sink
        self.listeners = rendered.listeners

    def stat(self, name: str) -> int:
        """A `wasmcustom.bedrock_guard.<name>` counter (summed over workers by Envoy); every
        unlabelled stat exists from configuration on, so a missing name is an error."""
        return self.proc.stats()[f"wasmcustom.bedrock_guard.{name}"]

    def refusals(self, reason: str) -> int:
        """Enforced refusals for `reason`: the `requests` family summed over its other labels
        (operation, model, rule, group)."""
        pattern = re.compile(r"^wasmcustom\.bedrock_guard\.requests\..*\.decision\.deny\.reason\."
                             + re.escape(reason) + r"\.")
        return sum(v for k, v in self.proc.stats().items() if pattern.match(k))

    def worker_connections(self, listener: str = "egress_proxy") -> dict[str, int]:
        """`downstream_cx_total` per Envoy worker of one listener."""
        address, port = self.listeners[listener]
        pattern = re.compile(rf"^listener\.{re.escape(address)}_{port}\.(worker_\d+)\."
                             r"downstream_cx_total$")
        return {m.group(1): v for k, v in self.proc.stats().items()
                if (m := pattern.match(k))}


@pytest.fixture(scope="module")
def public_sidecar(tmp_path_factory, pki_dir, public_mock):
    """The same config, but its Bedrock clusters land on the "public" address 127.0.0.3. Its
    bundles also send deny alerts (to a local sink), Envoy's application log goes to its own
    file (stdout holds only the access log, one audit record per line) and the access log is
    flushed every 20 ms."""
    sink = AlertSink()
    rendered = topo.render_sidecar(
        topo.CLIENT_SIGNED, tmp_path_factory.mktemp("public-cfg"), pki_dir=pki_dir,
        wasm_path=WASM_PATH, upstream=(topo.PUBLIC, public_mock.port), cidrs=ENI_CIDRS)
    cfg = yaml.safe_load(rendered.path.read_text())
    for plugin in topo.guard_configs(cfg):
        bundle, original = topo.plugin_configuration(plugin)
        bundle["alerts"] = {"cluster": "deny_sink", "path": "/events", "batch_size": 50,
                            "flush_interval_seconds": 1}
        topo._set_plugin_configuration(plugin, bundle, original)
    cfg["static_resources"]["clusters"].append(sink_cluster(sink.port))
    rendered.path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with _start(tmp_path_factory, "public-sidecar", rendered, split_logs=True) as proc:
        yield PublicSidecar(rendered, proc, AuditLog(proc.log_path), sink)
    sink.stop()


@pytest.fixture(scope="module")
def signed_sidecar(tmp_path_factory, pki_dir, eni_mock):
    """sidecar-proxy-signed.yaml with the proxy's credentials in Envoy's environment. The
    bundle's identity section is removed for this test only (the application then sends a bare
    unsigned request); in production the identity token is required."""
    rendered = topo.render_sidecar(
        topo.PROXY_SIGNED, tmp_path_factory.mktemp("signed-cfg"), pki_dir=pki_dir,
        wasm_path=WASM_PATH, upstream=(topo.ENI, eni_mock.port), cidrs=ENI_CIDRS,
        strip_identity=True, env_credentials_only=True)
    with _start(tmp_path_factory, "signed-sidecar", rendered,
                env={"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}):
        yield rendered


@pytest.fixture(scope="module")
def idp_key():
    return SigningKey.ec("sidecar-test-key")


@pytest.fixture(scope="module")
def signed_sidecar_with_identity(tmp_path_factory, pki_dir, eni_mock, idp_key):
    """sidecar-proxy-signed.yaml as shipped, identity included: only the provider's keys are
    given inline (no IdP to fetch from on loopback)."""
    rendered = topo.render_sidecar(
        topo.PROXY_SIGNED, tmp_path_factory.mktemp("signed-id-cfg"), pki_dir=pki_dir,
        wasm_path=WASM_PATH, upstream=(topo.ENI, eni_mock.port), cidrs=ENI_CIDRS,
        inline_jwks={"keys": [idp_key.jwk()]}, env_credentials_only=True)
    with _start(tmp_path_factory, "signed-id-sidecar", rendered,
                env={"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}):
        yield rendered


# -- helpers -------------------------------------------------------------------------------------

def send(listener: tuple[str, int], host: str, *, target: str = CONVERSE,
         absolute: str | None = None, region: str = "us-east-1", service: str = "bedrock",
         method: str = "POST", body: bytes = BODY, extra: list[tuple[str, str]] = ()):
    """A request botocore signed for `host`, sent as origin-form with `Host: host` (or as
    absolute-form naming `absolute`, with the same Host header)."""
    headers = topo.signed_headers(method, host, target, body, region=region, service=service)
    request_target = f"http://{absolute}{target}" if absolute else target
    return topo.exchange(*listener, topo.http11(method, request_target, headers + list(extra),
                                                body))


def assert_nothing_reached(*mocks: MockBedrock) -> None:
    time.sleep(SETTLE_SECONDS)
    for mock in mocks:
        seen = mock.requests
        assert not seen, f"{mock.host} received a request that should have been refused: " + \
            "; ".join(r.summary() for r in seen)


def only_request(mock: MockBedrock, *others: MockBedrock):
    recs = mock.wait_for_requests(1, timeout=2)
    time.sleep(SETTLE_SECONDS)
    recs = mock.requests
    assert len(recs) == 1, [r.summary() for r in recs]
    assert_nothing_reached(*others)
    return recs[0]


# -- allowed traffic reaches the ENI -----------------------------------------------------------

def test_sdk_shaped_request_reaches_the_endpoint_eni(client_sidecar, eni_mock, public_mock):
    # What an SDK with HTTP_PROXY sends: absolute-form, Host = the signed host.
    resp = send(client_sidecar.listeners["egress_proxy"], BEDROCK_HOST, absolute=BEDROCK_HOST)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert REPLY_TEXT.encode() in resp.body
    rec = only_request(eni_mock, public_mock)
    assert rec.signature_ok, rec.signature_error
    assert rec.header_values("host") == [BEDROCK_HOST]
    assert rec.raw_target == CONVERSE.encode()


@pytest.mark.parametrize("host", [
    VPCE_HOST,
    VPCE_ZONAL,  # zonal name of the listed endpoint (routed by the `...-abcd1234-*` domain)
    BEDROCK_HOST.upper(),  # DNS is case-insensitive: canonicalised for the decision only
    BEDROCK_HOST + ":443",
    BEDROCK_HOST + ":80",
], ids=["vpce-name", "vpce-zonal-name", "uppercase", "port-443", "port-80"])
def test_equivalent_authorities_are_routed_to_the_eni_unchanged(client_sidecar, eni_mock,
                                                                public_mock, host):
    resp = send(client_sidecar.listeners["egress_proxy"], host)
    assert resp.status == 200, (resp.status, resp.body[:300])
    rec = only_request(eni_mock, public_mock)
    # Forwarded byte-for-byte as signed: Envoy and the filter never rewrite the authority.
    assert rec.header_values("host") == [host]
    assert rec.signature_ok, rec.signature_error


# -- a public upstream: the answer is withheld, not retried, and the endpoint quarantined -------

MODEL_ID = MODEL.replace("%3A", ":")
QUARANTINE_SECONDS = 300  # plugin/src/quarantine.rs


def _sdk_client(sidecar: PublicSidecar, host: str, retries: dict | None = None):
    """boto3 as an application runs it: HTTP_PROXY to the sidecar, the SDK's own retry
    configuration (`retries=None`: botocore's default, standard mode, 3 attempts). Returns the
    client and the list of every HTTP response botocore received (one per attempt)."""
    attempts: list[dict] = []

    def received(response_dict=None, **_):
        if response_dict is not None:
            attempts.append(response_dict)

    client = bedrock_client(sidecar.listeners["egress_proxy"], host=host, retries=retries,
                            read_timeout=10,
                            hooks=[("response-received.bedrock-runtime.*", received)])
    return client, attempts


def _messages():
    return [{"role": "user", "content": [{"text": "hi"}]}]


def _assert_not_retryable(exc: ClientError, attempts: list[dict], reason_detail: str) -> dict:
    """A 403 AccessDeniedException refusal the SDK did not retry; returns the raw answer."""
    resp = exc.response
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 403, resp
    assert resp["Error"]["Code"] == "AccessDeniedException", resp["Error"]
    message = resp["Error"]["Message"]
    assert message.startswith("bedrock-guard: destination_not_privatelink:"), message
    assert reason_detail in message, message
    assert resp["ResponseMetadata"]["RetryAttempts"] == 0, resp["ResponseMetadata"]
    assert len(attempts) == 1, [a["status_code"] for a in attempts]
    (raw,) = attempts
    headers = {k.lower(): v for k, v in raw["headers"].items()}
    assert headers["x-bedrock-guard-reason"] == "destination_not_privatelink", headers
    assert headers["x-amzn-errortype"] == "AccessDeniedException", headers
    # No retry hint of any kind (botocore's standard mode honours x-amz-retry-after).
    assert "retry-after" not in headers and "x-amz-retry-after" not in headers, headers
    return raw


def _quarantine_records(sidecar: PublicSidecar, mark: int, n: int) -> list[dict]:
    recs = sidecar.audit.take(n, since=mark)
    for rec in recs:
        assert (rec["decision"], rec["reason"], rec["status"]) == (
            "deny", "destination_not_privatelink", 403), rec
        assert "quarantined" in rec["detail"], rec
        # Nothing went upstream, so there is no upstream status or address.
        assert rec["upstreamStatus"] is None and rec["upstreamAddress"] is None, rec
    return recs


def _wait_for(predicate, timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_outside_answer_is_refused_once_and_the_endpoint_quarantined_on_every_worker(
        public_sidecar, eni_mock, public_mock):
    sidecar = public_sidecar
    upstream_address = f"{topo.PUBLIC}:{public_mock.port}"
    quarantined_before = sidecar.stat("destination_quarantined")
    outside_before = sidecar.stat("upstream_not_privatelink")
    mark = sidecar.audit.mark()

    # 1. An unmodified boto3 client, default retry configuration (standard mode, 3 attempts).
    client, attempts = _sdk_client(sidecar, BEDROCK_HOST)
    with pytest.raises(ClientError) as e:
        client.converse(modelId=MODEL_ID, messages=_messages())
    raw = _assert_not_retryable(e.value, attempts,
                                f"requests to the endpoint are refused for {QUARANTINE_SECONDS} s")
    for piece in REPLY_PIECES:
        assert piece.encode() not in raw["body"]
    # The signed request reached the outside upstream exactly once (the check can only see where
    # the answer came from), and never the real endpoint.
    assert len(public_mock.wait_for_requests(1)) == 1
    time.sleep(0.5)  # a retry would arrive well within this
    assert len(public_mock.requests) == 1, [r.summary() for r in public_mock.requests]
    assert_nothing_reached(eni_mock)

    # The audit record says what really happened: the upstream answered 200 from outside, the
    # client got 403.
    [rec] = sidecar.audit.take(1, since=mark)
    assert (rec["decision"], rec["reason"], rec["mode"]) == (
        "deny", "destination_not_privatelink", "enforce"), rec
    assert rec["status"] == 403 and rec["upstreamStatus"] == 200, rec
    assert rec["upstreamAddress"] == upstream_address, rec
    assert rec["eventName"] == "Converse", rec
    assert rec["requestParameters"] == {"modelId": MODEL_ID}, rec
    assert rec["endpoint"] == BEDROCK_HOST, rec
    assert rec["requestID"] == raw["headers"]["x-amzn-RequestId"], (rec, raw["headers"])
    assert sidecar.stat("destination_quarantined") == quarantined_before + 1
    assert sidecar.stat("upstream_not_privatelink") == outside_before + 1
    # A deny alert carries the same record.
    assert _wait_for(lambda: any(ev["detail"]["requestID"] == rec["requestID"]
                                 for ev in sidecar.sink.events())), sidecar.sink.events()
    [alert] = [ev["detail"] for ev in sidecar.sink.events()
               if ev["detail"]["requestID"] == rec["requestID"]]
    # (The alert is queued when the refusal is sent, before the latency is known.)
    assert {**alert, "latencyMs": None} == {**rec, "latencyMs": None}, (alert, rec)

    # 2. Every later request to that endpoint is refused before it leaves, on every worker:
    # fresh connections (Connection: close) until both workers have taken some.
    denied_before = sidecar.refusals("destination_not_privatelink")
    workers_before = sidecar.worker_connections()
    assert len(workers_before) == 2, workers_before  # --concurrency 2
    mark = sidecar.audit.mark()
    sent = 0
    while sent < 64:
        resp = send(sidecar.listeners["egress_proxy"], BEDROCK_HOST, absolute=BEDROCK_HOST)
        assert_raw_refusal(resp, "destination_not_privatelink")
        assert "quarantined" in json.loads(resp.body)["message"], resp.body
        assert resp.header("retry-after") is None
        sent += 1
        grown = {w for w, n in sidecar.worker_connections().items()
                 if n > workers_before.get(w, 0)}
        if sent >= 8 and len(grown) == 2:
            break
    grown = {w for w, n in sidecar.worker_connections().items() if n > workers_before.get(w, 0)}
    assert len(grown) == 2, (sidecar.worker_connections(), workers_before)
    # Other spellings of the same endpoint's authority too.
    for host in (BEDROCK_HOST.upper(), BEDROCK_HOST + ":443"):
        resp = send(sidecar.listeners["egress_proxy"], host)
        assert_raw_refusal(resp, "destination_not_privatelink")
        sent += 1
    # And the SDK: refused at once, not retried, in both retry modes, for a streaming call too.
    for retries, call in (({"mode": "standard"}, "converse"),
                          ({"mode": "legacy"}, "converse_stream")):
        client, attempts = _sdk_client(sidecar, BEDROCK_HOST, retries)
        with pytest.raises(ClientError) as e:
            getattr(client, call)(modelId=MODEL_ID, messages=_messages())
        _assert_not_retryable(e.value, attempts, "quarantined")
        sent += 1

    time.sleep(0.5)
    assert len(public_mock.requests) == 1, [r.summary() for r in public_mock.requests]
    assert_nothing_reached(eni_mock)
    _quarantine_records(sidecar, mark, sent)
    assert sidecar.refusals("destination_not_privatelink") == denied_before + sent
    # One quarantine, not one per refusal or per worker.
    assert sidecar.stat("destination_quarantined") == quarantined_before + 1
    assert sidecar.stat("upstream_not_privatelink") == outside_before + 1


def test_outside_stream_answer_is_withheld_and_only_that_endpoint_quarantined(
        public_sidecar, eni_mock, public_mock):
    """The VPC endpoint name is its own bundle endpoint: its first request still goes out (a
    quarantine is per endpoint), its event stream never reaches the client, boto3 in legacy
    retry mode (5 attempts) sends it once, and then it is quarantined, its zonal name included."""
    sidecar = public_sidecar
    quarantined_before = sidecar.stat("destination_quarantined")
    mark = sidecar.audit.mark()
    client, attempts = _sdk_client(sidecar, VPCE_HOST, {"mode": "legacy"})
    with pytest.raises(ClientError) as e:
        client.converse_stream(modelId=MODEL_ID, messages=_messages())
    raw = _assert_not_retryable(e.value, attempts, "outside the endpoint's PrivateLink ranges")
    for piece in REPLY_PIECES:
        assert piece.encode() not in raw["body"]
    assert b":event-type" not in raw["body"]
    [up] = public_mock.wait_for_requests(1)
    assert up.header_values("host") == [VPCE_HOST]
    [rec] = sidecar.audit.take(1, since=mark)
    assert (rec["eventName"], rec["status"], rec["upstreamStatus"]) == (
        "ConverseStream", 403, 200), rec
    assert rec["upstreamAddress"] == f"{topo.PUBLIC}:{public_mock.port}", rec
    assert rec["vpcEndpointId"] == "vpce-0a1b2c3d4e5f67890", rec
    assert sidecar.stat("destination_quarantined") == quarantined_before + 1

    mark = sidecar.audit.mark()
    for host in (VPCE_HOST, VPCE_ZONAL):
        resp = send(sidecar.listeners["egress_proxy"], host,
                    target=f"/model/{MODEL}/converse-stream")
        assert_raw_refusal(resp, "destination_not_privatelink")
        assert b":event-type" not in resp.body
    time.sleep(0.5)
    assert len(public_mock.requests) == 1, [r.summary() for r in public_mock.requests]
    assert_nothing_reached(eni_mock)
    _quarantine_records(sidecar, mark, 2)
    assert sidecar.stat("destination_quarantined") == quarantined_before + 1


def test_botocore_does_not_retry_the_refusal_in_any_mode():
    """The refusal's shape against botocore's own retry checkers (this venv's botocore): the
    standard (and adaptive) conditions and the legacy `_retry.json` policies. A 502 with the same
    body is retried by both, which is what the refusal used to be."""
    import botocore.session
    from botocore import retryhandler, translate
    from botocore.loaders import create_loader
    from botocore.retries import standard

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    op = model.operation_model("Converse")

    def parsed(status: int) -> tuple[object, dict]:
        class _Http:
            status_code = status
            headers = {"x-amzn-errortype": "AccessDeniedException"}
        body = {"Error": {"Code": "AccessDeniedException",
                          "Message": "bedrock-guard: destination_not_privatelink: ..."},
                "ResponseMetadata": {"HTTPStatusCode": status}}
        return _Http(), body

    std = standard.StandardRetryConditions(max_attempts=3)
    # What botocore's client builds for legacy mode (client.py, _register_legacy_retries).
    retry_data = create_loader().load_data("_retry")
    legacy = retryhandler.create_retry_handler(
        translate.build_retry_config("bedrock-runtime", retry_data["retry"],
                                     retry_data.get("definitions", {})),
        "bedrock-runtime")

    def std_retries(status):
        http, body = parsed(status)
        ctx = standard.RetryContext(attempt_number=1, operation_model=op, parsed_response=body,
                                    http_response=http, caught_exception=None)
        return std.is_retryable(ctx)

    def legacy_retries(status):
        http, body = parsed(status)
        return legacy(attempts=1, response=(http, body), caught_exception=None,
                      request_dict={"context": {}}) is not None

    assert not std_retries(403) and not legacy_retries(403)
    assert std_retries(502) and legacy_retries(502)

# -- refused authorities reach nothing ---------------------------------------------------------

REFUSED_AUTHORITIES = [
    ("lookalike", "bedrock-runtime.us-east-1.amazonaws.com.evil.example"),
    ("ip-literal", topo.ENI),
    ("ipv6-literal", "[::1]"),
    ("other-region", "bedrock-runtime.us-west-2.amazonaws.com"),
    ("dual-stack", "bedrock-runtime.us-east-1.api.aws"),
    ("mantle", "bedrock-mantle.us-east-1.api.aws"),
    ("fips-not-listed", "bedrock-runtime-fips.us-east-1.amazonaws.com"),
    ("other-port", BEDROCK_HOST + ":8443"),
    ("trailing-dot", BEDROCK_HOST + "."),
    ("userinfo", "user@" + BEDROCK_HOST),
    ("other-vpce", "vpce-0fffffffffffffff0-zzzz9999.bedrock-runtime.us-east-1.vpce.amazonaws.com"),
    ("zonal-other-region",
     "vpce-0a1b2c3d4e5f67890-abcd1234-us-west-2a.bedrock-runtime.us-east-1.vpce.amazonaws.com"),
]


@pytest.mark.parametrize("host", [h for _, h in REFUSED_AUTHORITIES],
                         ids=[i for i, _ in REFUSED_AUTHORITIES])
def test_refused_authority_reaches_neither_mock(client_sidecar, eni_mock, public_mock, host):
    resp = send(client_sidecar.listeners["egress_proxy"], host)
    assert_raw_refusal(resp, "destination_not_privatelink")
    assert resp.header("x-bedrock-guard-reason") == "destination_not_privatelink"
    assert_nothing_reached(eni_mock, public_mock)


def test_absolute_uri_naming_another_host_is_refused(client_sidecar, eni_mock, public_mock):
    # HTTP/1: the absolute-form target's authority is the request's :authority; the Host header
    # (here the real endpoint, which is what the client signed) does not rescue it.
    resp = send(client_sidecar.listeners["egress_proxy"], BEDROCK_HOST,
                absolute="bedrock-runtime.us-west-2.amazonaws.com")
    assert_raw_refusal(resp, "destination_not_privatelink")
    assert_nothing_reached(eni_mock, public_mock)


def test_absolute_uri_decides_and_is_what_the_upstream_receives(client_sidecar, eni_mock,
                                                                public_mock):
    # The reverse: the absolute URI names the endpoint, Host names something else. The decision
    # and the upstream's Host both follow the URI, so they cannot disagree.
    headers = [h for h in topo.signed_headers("POST", BEDROCK_HOST, CONVERSE, BODY)
               if h[0] != "Host"]
    data = topo.http11("POST", f"http://{BEDROCK_HOST}{CONVERSE}",
                       [("Host", "evil.example")] + headers, BODY)
    resp = topo.exchange(*client_sidecar.listeners["egress_proxy"], data)
    assert resp.status == 200, (resp.status, resp.body[:300])
    rec = only_request(eni_mock, public_mock)
    assert rec.header_values("host") == [BEDROCK_HOST]


def _h2_headers(authority: str, host: str | None) -> list[tuple[str, str]]:
    signed = topo.signed_headers("POST", BEDROCK_HOST, CONVERSE, BODY)
    out = [(":method", "POST"), (":scheme", "http"), (":authority", authority),
           (":path", CONVERSE)]
    out += [(k.lower(), v) for k, v in signed if k != "Host"]
    if host is not None:
        out.append(("host", host))
    return out


def test_http2_authority_decides_over_a_host_header(client_sidecar, eni_mock, public_mock):
    resp = topo.h2_exchange(*client_sidecar.listeners["egress_proxy"],
                            _h2_headers("evil.example", BEDROCK_HOST), BODY)
    assert not resp.reset, resp
    assert resp.status == 403, resp
    assert json.loads(resp.body)["message"].startswith(
        "bedrock-guard: destination_not_privatelink:"), resp.body
    assert_nothing_reached(eni_mock, public_mock)


def test_http2_host_header_differing_from_authority_never_reaches_upstream(
        client_sidecar, eni_mock, public_mock):
    """`:authority` = the endpoint, `host` = another name. Envoy 1.40 discards `host` when
    `:authority` is present (RFC 9113 §8.3.1; runtime flag http2_discard_host_header), so the
    filter never sees the mismatch. Either way the other name must never travel upstream: the
    request is refused, or it arrives with exactly one Host, the authority the decision was
    made on."""
    resp = topo.h2_exchange(*client_sidecar.listeners["egress_proxy"],
                            _h2_headers(BEDROCK_HOST, "evil.example"), BODY)
    assert not resp.reset, resp
    if resp.status == 403:
        assert json.loads(resp.body)["message"].startswith("bedrock-guard: "), resp.body
        assert_nothing_reached(eni_mock, public_mock)
        return
    assert resp.status == 200, resp
    rec = only_request(eni_mock, public_mock)
    assert rec.header_values("host") == [BEDROCK_HOST]
    assert rec.signature_ok, rec.signature_error


def test_connect_is_refused(client_sidecar, eni_mock, public_mock):
    data = (f"CONNECT {BEDROCK_HOST}:443 HTTP/1.1\r\nHost: {BEDROCK_HOST}:443\r\n\r\n").encode()
    resp = topo.exchange(*client_sidecar.listeners["egress_proxy"], data)
    assert_raw_refusal(resp, "connect_not_allowed")
    assert_nothing_reached(eni_mock, public_mock)


def test_upgrade_is_refused(client_sidecar, eni_mock, public_mock):
    # No upgrade_configs: Envoy itself answers 403 before any filter runs; nothing is tunnelled.
    resp = send(client_sidecar.listeners["egress_proxy"], BEDROCK_HOST, method="GET", body=b"",
                extra=[("Upgrade", "websocket"), ("Connection", "Upgrade"),
                       ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                       ("Sec-WebSocket-Version", "13")])
    assert resp.status == 403, (resp.status, resp.body[:200])
    assert_nothing_reached(eni_mock, public_mock)


# -- SigV4 scope must match the endpoint --------------------------------------------------------

@pytest.mark.parametrize("region,service", [("us-west-2", "bedrock"),
                                            ("us-east-1", "bedrock-runtime")],
                         ids=["scope-region-us-west-2", "scope-service-bedrock-runtime"])
def test_sigv4_scope_not_matching_the_endpoint_is_refused(client_sidecar, eni_mock, public_mock,
                                                          region, service):
    resp = send(client_sidecar.listeners["egress_proxy"], BEDROCK_HOST, region=region,
                service=service)
    assert_raw_refusal(resp, "region_not_allowed")
    assert_nothing_reached(eni_mock, public_mock)


# -- transparent listener: the address the application dialled ---------------------------------

def test_transparent_listener_inside_cidrs_reaches_the_eni(client_sidecar, eni_mock, public_mock):
    # destination.address = 127.0.0.2:<port> (no REDIRECT on loopback: the listener's own
    # address is the original destination), inside 127.0.0.2/32.
    resp = send(client_sidecar.listeners["egress_transparent"], BEDROCK_HOST)
    assert resp.status == 200, (resp.status, resp.body[:300])
    rec = only_request(eni_mock, public_mock)
    assert rec.signature_ok and rec.header_values("host") == [BEDROCK_HOST]


def test_transparent_listener_outside_cidrs_is_refused(client_sidecar, eni_mock, public_mock):
    # The application "dialled" 127.0.0.4 (say, a public address its resolver returned): the
    # authority is right, the address is not.
    resp = send(client_sidecar.listeners["egress_transparent_outside"], BEDROCK_HOST)
    assert_raw_refusal(resp, "destination_not_privatelink")
    assert "original destination" in json.loads(resp.body)["message"]
    assert_nothing_reached(eni_mock, public_mock)


def test_transparent_listener_still_checks_the_authority(client_sidecar, eni_mock, public_mock):
    resp = send(client_sidecar.listeners["egress_transparent"],
                "bedrock-runtime.us-west-2.amazonaws.com")
    assert_raw_refusal(resp, "destination_not_privatelink")
    assert_nothing_reached(eni_mock, public_mock)


def test_explicit_listener_ignores_its_own_address(client_sidecar, eni_mock, public_mock):
    # egress_proxy listens on 127.0.0.1, outside the cidrs: its plugin configuration is the bare
    # bundle, so Envoy's own address is never taken for the application's destination. (The
    # allowed cases above pass through it.)
    resp = send(client_sidecar.listeners["egress_proxy"], BEDROCK_HOST)
    assert resp.status == 200, (resp.status, resp.body[:300])
    only_request(eni_mock, public_mock)


# -- proxy-signed: Envoy signs after the filter decided ----------------------------------------

@pytest.mark.parametrize("listener", ["egress_proxy", "egress_transparent"])
def test_proxy_signs_an_unsigned_request_with_its_own_credentials(signed_sidecar, eni_mock,
                                                                  public_mock, listener):
    headers = [("Host", BEDROCK_HOST), ("Content-Type", "application/json"),
               ("Content-Length", str(len(BODY)))]
    target = f"http://{BEDROCK_HOST}{CONVERSE}" if listener == "egress_proxy" else CONVERSE
    resp = topo.exchange(*signed_sidecar.listeners[listener],
                         topo.http11("POST", target, headers, BODY))
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert REPLY_TEXT.encode() in resp.body
    rec = only_request(eni_mock, public_mock)
    # The mock verified a real SigV4 signature over what it received, made by Envoy.
    assert rec.signature_ok, rec.signature_error
    assert rec.access_key == ACCESS_KEY
    (auth,) = rec.header_values("authorization")
    parts = parse_authorization(auth)
    assert parts["Credential"].split("/")[2:4] == ["us-east-1", "bedrock"]
    signed = parts["SignedHeaders"].split(";")
    assert "host" in signed and "x-amz-content-sha256" in signed
    # use_unsigned_payload: false: the payload hash is the body's.
    assert rec.header_values("x-amz-content-sha256") == [hashlib.sha256(BODY).hexdigest()]
    assert rec.header_values("host") == [BEDROCK_HOST]


def test_proxy_signed_refused_model_never_reaches_the_upstream(signed_sidecar, eni_mock,
                                                              public_mock):
    target = f"/model/{DENIED_MODEL}/converse"
    headers = [("Host", BEDROCK_HOST), ("Content-Type", "application/json"),
               ("Content-Length", str(len(BODY)))]
    resp = topo.exchange(*signed_sidecar.listeners["egress_proxy"],
                         topo.http11("POST", f"http://{BEDROCK_HOST}{target}", headers, BODY))
    assert_raw_refusal(resp, "model_denied")
    assert resp.header("authorization") is None
    assert_nothing_reached(eni_mock, public_mock)


def test_proxy_signed_refused_destination_is_not_signed_or_sent(signed_sidecar, eni_mock,
                                                                public_mock):
    other = "bedrock-runtime.us-west-2.amazonaws.com"
    headers = [("Host", other), ("Content-Type", "application/json"),
               ("Content-Length", str(len(BODY)))]
    resp = topo.exchange(*signed_sidecar.listeners["egress_proxy"],
                         topo.http11("POST", f"http://{other}{CONVERSE}", headers, BODY))
    assert_raw_refusal(resp, "destination_not_privatelink")
    assert_nothing_reached(eni_mock, public_mock)


# -- FIPS endpoints (envoy/fips.md): the same config turned to bedrock-runtime-fips -------------

FIPS_HOST = "bedrock-runtime-fips.us-east-1.amazonaws.com"


@pytest.fixture(scope="module")
def fips_sidecar(tmp_path_factory, pki_dir, eni_mock):
    work = tmp_path_factory.mktemp("fips-cfg")
    rendered = topo.render_sidecar(
        topo.fips_variant(topo.CLIENT_SIGNED, work), work, pki_dir=pki_dir, wasm_path=WASM_PATH,
        upstream=(topo.ENI, eni_mock.port), cidrs=ENI_CIDRS)
    with _start(tmp_path_factory, "fips-sidecar", rendered):
        yield rendered


def test_fips_endpoint_with_fips_tls_parameters_reaches_the_eni(fips_sidecar, eni_mock,
                                                                public_mock):
    # SNI and certificate name bedrock-runtime-fips...; FIPS-approved suites and curves only.
    resp = send(fips_sidecar.listeners["egress_proxy"], FIPS_HOST, absolute=FIPS_HOST)
    assert resp.status == 200, (resp.status, resp.body[:300])
    rec = only_request(eni_mock, public_mock)
    assert rec.signature_ok and rec.header_values("host") == [FIPS_HOST]


def test_fips_required_bundle_refuses_the_non_fips_host(fips_sidecar, eni_mock, public_mock):
    resp = send(fips_sidecar.listeners["egress_proxy"], BEDROCK_HOST, absolute=BEDROCK_HOST)
    assert_raw_refusal(resp, "destination_not_privatelink")
    assert_nothing_reached(eni_mock, public_mock)


# -- proxy-signed as shipped: the identity token is required, and never travels upstream -------

IDENTITY_HEADER = "x-workload-identity"
ISSUER, AUDIENCE = "https://idp.acme.example", "bedrock-egress"


def _unsigned_converse(listener, extra=()):
    headers = [("Host", BEDROCK_HOST), ("Content-Type", "application/json"),
               ("Content-Length", str(len(BODY)))] + list(extra)
    return topo.exchange(*listener, topo.http11("POST", f"http://{BEDROCK_HOST}{CONVERSE}",
                                                headers, BODY))


def test_proxy_signed_without_identity_token_is_refused(signed_sidecar_with_identity, eni_mock,
                                                        public_mock):
    resp = _unsigned_converse(signed_sidecar_with_identity.listeners["egress_proxy"])
    assert_raw_refusal(resp, "identity_missing")
    assert_nothing_reached(eni_mock, public_mock)


def test_proxy_signed_with_identity_token_is_signed_and_token_removed(
        signed_sidecar_with_identity, eni_mock, public_mock, idp_key):
    token = idp_key.mint(claims(ISSUER, AUDIENCE, "svc-coder", groups=["ml-platform"]))
    resp = _unsigned_converse(signed_sidecar_with_identity.listeners["egress_proxy"],
                              [(IDENTITY_HEADER, token)])
    assert resp.status == 200, (resp.status, resp.body[:300])
    rec = only_request(eni_mock, public_mock)
    assert rec.signature_ok and rec.access_key == ACCESS_KEY, rec.signature_error
    assert not rec.identity_header_present
    assert token.encode() not in repr(rec.headers).encode()
