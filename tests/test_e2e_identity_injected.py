"""End to end: workload identity without changing the application.

Sidecars: `envoy/sidecar-identity-injected.yaml` runs on loopback (`harness/topology.py`:
addresses, CA, wasm path, `cidrs`, the provider's keys inline, the proxy's credentials from
Envoy's environment, and the token / SDS file paths are the only changes). Its
`credential_injector` reads the pod's projected service-account token through SDS from a
directory laid out the way the kubelet lays out a projected volume (`token` -> `..data/token`,
`..data` -> `..<timestamp>`; a new token is published by renaming a fresh `..data` symlink over
the old one). Proved here: an unmodified boto3 client (no hook, no token, its own throw-away AWS
key) is allowed as the pod, on both listeners, and the upstream sees Envoy's signature and no
token; a token the application sends itself (another workload's, validly signed, even
repeated) is replaced by the pod's; a token rotated during traffic is in force within
`ROTATION_TIMEOUT` with every request in between allowed as the old or the new subject (never
refused, never without a verified identity); an expired, unknown-key or malformed token rotated
in is refused `identity_invalid` (nothing reaches the upstream); an empty token file is refused by
the injector itself (401) and nothing reaches the upstream.

Shared gateways: applications attach their own token. The boto3 recipe in
docs/operations.md is `harness/identity_hook.py`, run here unchanged against a gateway (the demo
config plus an identity block): allowed with the client's own signature intact, the header not
signed, a rewritten token file picked up on the next request; the same hook before signing is
`header_invalid`; the doc shows exactly the tested code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import (
    ACCESS_KEY, BEDROCK_HOST, DEMO_BUNDLE, SECRET_KEY, WASM_PATH, SentRequests,
)
from tests.harness import topology as topo
from tests.harness.assertions import assert_client_error_refusal, assert_raw_refusal
from tests.harness.audit_log import NO_RECORD, AuditLog
from tests.harness.clients import bedrock_client
from tests.harness.envoy import REPO_ROOT, EnvoyProcess, free_port, render_config
from tests.harness.identity_hook import IDENTITY_HEADER, attach_identity_token, documented_snippet
from tests.harness.mock_bedrock import REPLY_TEXT, MockBedrock
from tests.harness.stack import envoy_stack
from tests.harness.tokens import SigningKey, claims

SHIPPED_BUNDLE = topo.plugin_configuration(
    topo.guard_configs(topo.load(topo.IDENTITY_INJECTED))[0])[0]
(PROVIDER,) = SHIPPED_BUNDLE["identity"]["providers"]
ISSUER = PROVIDER["issuer"]
AUDIENCE = PROVIDER["audiences"][0]

# Subjects as the API server writes them. The shipped rules allow service accounts of ml-apps.
POD = "system:serviceaccount:ml-apps:chatbot"
POD_NEXT = "system:serviceaccount:ml-apps:chatbot-canary"
OTHER = "system:serviceaccount:web:frontend"

CLUSTER_KEY = SigningKey.rsa("cluster-sa-1")  # the cluster's service-account signing key
ROGUE_KEY = SigningKey.rsa("cluster-sa-1")  # same kid, not the cluster's key

MODEL_IN_PATH = "anthropic.claude-sonnet-4-20250514-v1%3A0"  # allowed by the shipped rules
MODEL = MODEL_IN_PATH.replace("%3A", ":")
CONVERSE_TARGET = f"/model/{MODEL_IN_PATH}/converse"
CONVERSE = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
BODY = json.dumps(CONVERSE).encode()

# The application's own AWS key in the sidecar: the mock does not know it, so a request it
# verifies was signed by Envoy (with ACCESS_KEY from Envoy's environment).
APP_ACCESS_KEY = "AKIAAPPLICATIONONLY1"
APP_SECRET_KEY = "application-secret-unknown-upstream"

ROTATION_TIMEOUT = 5.0  # a new token must be in force within this long after the swap
STREAK = 8  # consecutive requests that must agree before a change counts as complete


def pod_token(subject: str = POD, **kw) -> str:
    return CLUSTER_KEY.mint(claims(ISSUER, AUDIENCE, subject, **kw))


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


# -- a projected service-account token volume, as the kubelet writes it --------------------------

class ProjectedToken:
    """`root/token` -> `..data/token`, `..data` -> `..<stamp>`. `publish` writes the new token
    into a fresh `..<stamp>` directory, points a `..data_tmp` symlink at it and renames that over
    `..data` (one atomic rename), then removes the old directory: the kubelet's AtomicWriter."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True)
        self._n = 0
        self.token: str | None = None

    @property
    def path(self) -> Path:
        return self.root / "token"

    def publish(self, token: str) -> float:
        """Swap `token` in; returns time.monotonic() right after the rename."""
        self._n += 1
        stamp = f"..2026_11_30_12_00_{self._n:02d}.{os.getpid()}"
        (self.root / stamp).mkdir()
        (self.root / stamp / "token").write_text(token)
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        os.symlink(stamp, self.root / "..data_tmp")
        os.replace(self.root / "..data_tmp", data)
        swapped = time.monotonic()
        if not self.path.is_symlink():
            os.symlink("..data/token", self.path)
        if old:
            shutil.rmtree(self.root / old)
        self.token = token
        return swapped


# -- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def eni_mock(pki_dir):
    mock = MockBedrock(host=topo.ENI, pki_dir=pki_dir).start()
    yield mock
    mock.stop()


@pytest.fixture
def upstream(eni_mock):
    eni_mock.reset()
    return eni_mock


class Sidecar:
    def __init__(self, rendered: topo.Rendered, proc: EnvoyProcess, projected: ProjectedToken):
        self.rendered, self.proc, self.projected = rendered, proc, projected
        self.audit = AuditLog(proc.log_path)  # Envoy's stdout: the access log only
        self.proxy = rendered.listeners["egress_proxy"]
        self.transparent = rendered.listeners["egress_transparent"]


@pytest.fixture(scope="module")
def sidecar_env(tmp_path_factory, pki_dir, eni_mock):
    work = tmp_path_factory.mktemp("identity-injected")
    projected = ProjectedToken(work / "bedrock-egress")
    projected.publish(pod_token())
    rendered = topo.render_sidecar(
        topo.IDENTITY_INJECTED, work, pki_dir=pki_dir, wasm_path=WASM_PATH,
        upstream=(topo.ENI, eni_mock.port), cidrs=[f"{topo.ENI}/32"],
        inline_jwks={"keys": [CLUSTER_KEY.jwk()]}, env_credentials_only=True)
    topo.relocate_pod_token(rendered.path, work / "sds", projected.path)
    with envoy_stack(rendered.path, rendered.admin_port, rendered.listeners["egress_proxy"][1],
                     work, split_logs=True,
                     env={"AWS_ACCESS_KEY_ID": ACCESS_KEY,
                          "AWS_SECRET_ACCESS_KEY": SECRET_KEY}) as proc:
        yield Sidecar(rendered, proc, projected)


@pytest.fixture
def sidecar(sidecar_env, upstream):
    """The sidecar with the pod's token (subject POD) in force."""
    if not sidecar_env.proc.alive():
        pytest.fail("the sidecar's Envoy died:\n" + sidecar_env.proc.log_tail(), pytrace=False)
    settle(sidecar_env.audit)
    token = pod_token()
    sidecar_env.projected.publish(token)
    outcomes = wait_for_streak(sidecar_env, lambda o: o.fingerprint == fingerprint(token))
    assert outcomes[-1].subject == POD, outcomes[-STREAK:]
    upstream.reset()
    return sidecar_env


# -- requests and their audit records -------------------------------------------------------------

def raw_converse(listener: tuple[str, int], extra: list[tuple[str, str]] = (), *,
                 absolute: bool = True):
    """An unsigned Converse (the proxy signs), on a fresh connection."""
    headers = [("Host", BEDROCK_HOST), ("Content-Type", "application/json"),
               ("Content-Length", str(len(BODY)))] + list(extra)
    target = f"http://{BEDROCK_HOST}{CONVERSE_TARGET}" if absolute else CONVERSE_TARGET
    return topo.exchange(*listener, topo.http11("POST", target, headers, BODY))


def audit_record(line: str) -> dict | None:
    return None if line == NO_RECORD else json.loads(line)


class Outcome:
    """One request through the sidecar: its status and its audit record."""

    def __init__(self, at: float, status: int, body: bytes, record: dict | None):
        self.at, self.status, self.body, self.record = at, status, body, record
        ident = (record or {}).get("userIdentity") or {}
        self.subject = ident.get("subject")
        self.fingerprint = ident.get("tokenFingerprint")
        self.decision = (record or {}).get("decision")
        self.reason = (record or {}).get("reason")

    def __repr__(self) -> str:
        return f"<{self.status} {self.decision} {self.reason} {self.subject}>"


def settle(audit: AuditLog, quiet: float = 0.1) -> None:
    """Wait until the access log has stopped growing for `quiet` seconds (lines are flushed
    every 20 ms), so that a mark taken next is not behind an earlier request's line."""
    seen, since = audit.mark(), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.01)
        now = audit.mark()
        if now != seen:
            seen, since = now, time.monotonic()


def next_line(audit: AuditLog, mark: int, timeout: float = 5.0) -> str:
    """The access-log line written after line `mark` (requests here are sequential, so it is
    the last request's)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = audit.lines()
        if len(lines) > mark:
            assert len(lines) == mark + 1, lines[mark:]
            return lines[mark]
        assert time.monotonic() < deadline, "no access-log line for the request"
        time.sleep(0.005)


def one_request(sidecar: Sidecar, extra=()) -> Outcome:
    mark = sidecar.audit.mark()
    resp = raw_converse(sidecar.proxy, extra)
    at = time.monotonic()
    return Outcome(at, resp.status, resp.body, audit_record(next_line(sidecar.audit, mark)))


def wait_for_streak(sidecar: Sidecar, done, timeout: float = ROTATION_TIMEOUT) -> list[Outcome]:
    """Send requests one after another (each on a fresh connection, so both workers serve
    them) until STREAK consecutive outcomes satisfy `done`, or fail after `timeout`."""
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < STREAK:
        assert time.monotonic() < deadline, f"no streak of {STREAK} within {timeout}s: " \
                                            f"{outcomes[-2 * STREAK:]}"
        out = one_request(sidecar)
        outcomes.append(out)
        streak = streak + 1 if done(out) else 0
    return outcomes


def assert_allowed_as(out: Outcome, subject: str, token: str | None = None) -> None:
    assert out.status == 200 and REPLY_TEXT.encode() in out.body, (out.status, out.body[:300])
    assert out.decision == "allow", out.record
    assert out.subject == subject and out.record["userIdentity"]["issuer"] == ISSUER, out.record
    if token is not None:
        assert out.fingerprint == fingerprint(token), out.record


def boto_client(listener: tuple[str, int], access_key: str = APP_ACCESS_KEY,
                secret_key: str = APP_SECRET_KEY):
    """bedrock-runtime as an unmodified application configures it: endpoint
    http://bedrock-runtime..., HTTP_PROXY to the listener. No hook of ours."""
    sent = SentRequests()
    client = bedrock_client(listener, access_key=access_key, secret_key=secret_key,
                            hooks=[("before-send.bedrock-runtime", sent)])
    return client, sent


def signed_header_names(request) -> list[str]:
    auth = request.headers["Authorization"]
    auth = auth.decode() if isinstance(auth, bytes) else auth
    return auth.split("SignedHeaders=")[1].split(",")[0].split(";")


# -- 1. the sidecar injects the pod's token ------------------------------------------------------

def test_unmodified_boto3_client_is_allowed_as_the_pod(sidecar, upstream):
    client, sent = boto_client(sidecar.proxy)
    mark = sidecar.audit.mark()
    reply = client.converse(modelId=MODEL, **CONVERSE)
    assert reply["output"]["message"]["content"][0]["text"] == REPLY_TEXT
    # The application sent no token.
    assert IDENTITY_HEADER not in {k.lower() for k in sent.last.headers}
    (rec,) = [audit_record(line) for line in sidecar.audit.take_raw(1, mark)]
    ident = rec["userIdentity"]
    assert (rec["decision"], ident["issuer"], ident["subject"]) == ("allow", ISSUER, POD), rec
    assert ident["tokenFingerprint"] == fingerprint(sidecar.projected.token), rec
    (up,) = upstream.wait_for_requests(1)
    # Signed by Envoy (the mock knows only the proxy's key, not the application's), and the
    # token did not travel upstream.
    assert up.signature_ok and up.access_key == ACCESS_KEY, up.signature_error
    assert not up.identity_header_present
    assert sidecar.projected.token.encode() not in repr(up.headers).encode()


def test_transparent_listener_injects_the_pod_token_too(sidecar, upstream):
    mark = sidecar.audit.mark()
    resp = raw_converse(sidecar.transparent, absolute=False)
    assert resp.status == 200, (resp.status, resp.body[:300])
    (rec,) = [audit_record(line) for line in sidecar.audit.take_raw(1, mark)]
    assert rec["userIdentity"]["subject"] == POD, rec
    (up,) = upstream.wait_for_requests(1)
    assert up.signature_ok and not up.identity_header_present


def test_token_sent_by_the_application_is_replaced_by_the_pods(sidecar, upstream, tmp_path):
    # Another workload's token, validly signed by the cluster: on its own it is refused here
    # (web:frontend is not in the rules), so a request allowed as POD proves it was replaced.
    stolen = pod_token(OTHER)
    stolen_file = tmp_path / "stolen-token"
    stolen_file.write_text(stolen)
    # The application attaches it with the shared-gateway recipe (identity_hook.py).
    client, sent = boto_client(sidecar.proxy)
    attach_identity_token(client, stolen_file)
    mark = sidecar.audit.mark()
    reply = client.converse(modelId=MODEL, **CONVERSE)
    assert reply["output"]["message"]["content"][0]["text"] == REPLY_TEXT
    assert sent.last.headers[IDENTITY_HEADER] == stolen  # it was on the wire
    (rec,) = [audit_record(line) for line in sidecar.audit.take_raw(1, mark)]
    assert rec["userIdentity"]["subject"] == POD, rec
    assert rec["userIdentity"]["tokenFingerprint"] == fingerprint(sidecar.projected.token), rec
    # Repeated, and in another spelling: all of them replaced by the one injected value (a
    # repeated identity header would otherwise be `identity_invalid: malformed`).
    out = one_request(sidecar, [(IDENTITY_HEADER, stolen), ("X-Workload-Identity", "garbage")])
    assert_allowed_as(out, POD, sidecar.projected.token)
    ups = upstream.wait_for_requests(2)
    assert all(u.signature_ok and not u.identity_header_present for u in ups)


def worker_connections(sidecar: Sidecar) -> dict[str, int]:
    """`downstream_cx_total` of the explicit listener, per Envoy worker."""
    address, port = sidecar.proxy
    pattern = re.compile(rf"^listener\.{re.escape(address)}_{port}\.(worker_\d+)\."
                         r"downstream_cx_total$")
    return {m.group(1): v for k, v in sidecar.proc.stats().items() if (m := pattern.match(k))}


def test_rotation_during_traffic_is_picked_up_without_a_gap(sidecar, upstream):
    old_token, new_token = sidecar.projected.token, pod_token(POD_NEXT)
    connections_before = worker_connections(sidecar)
    outcomes: list[Outcome] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic():
        try:
            for _ in range(3000):  # bounded: stop is set long before
                if stop.is_set():
                    return
                outcomes.append(one_request(sidecar))
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    worker = threading.Thread(target=traffic, name="traffic", daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while len(outcomes) < 10 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        assert len(outcomes) >= 10 and not errors, (len(outcomes), errors)
        swapped = sidecar.projected.publish(new_token)
        deadline = swapped + ROTATION_TIMEOUT
        while time.monotonic() < deadline and not errors:
            tail = outcomes[-STREAK:]
            if len(tail) == STREAK and all(o.at > swapped and o.subject == POD_NEXT
                                           for o in tail):
                break
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(timeout=15)
    assert not errors, errors
    # Every request, before, during and after the swap, was allowed as one of the two subjects
    # with that subject's own token: none refused, none without a verified identity.
    for out in outcomes:
        token = old_token if out.subject == POD else new_token
        assert out.subject in (POD, POD_NEXT), outcomes
        assert_allowed_as(out, out.subject, token)
    new = [o for o in outcomes if o.subject == POD_NEXT]
    assert new, f"the rotated token was not used within {ROTATION_TIMEOUT}s: {outcomes[-10:]}"
    first_new = min(o.at for o in new)
    last_old = max(o.at for o in outcomes if o.subject == POD)
    # Once the new token is in force the old one is never used again.
    tail = outcomes[-STREAK:]
    assert all(o.subject == POD_NEXT for o in tail), tail
    assert last_old < max(o.at for o in new)
    print(f"\nrotation: {len(outcomes)} requests; first with the new token "
          f"{(first_new - swapped) * 1000:.0f} ms after the swap, last with the old one "
          f"{(last_old - swapped) * 1000:.0f} ms after it")
    assert first_new - swapped < ROTATION_TIMEOUT
    # Both workers served this traffic (each holds its own copy of the secret).
    connections_after = worker_connections(sidecar)
    assert len(connections_after) == 2, connections_after
    assert all(connections_after[w] > connections_before.get(w, 0) for w in connections_after), \
        (connections_before, connections_after)
    # Exactly the allowed requests reached the upstream, each signed by Envoy, none with a token.
    ups = upstream.wait_for_requests(len(outcomes))
    time.sleep(0.1)
    ups = upstream.requests
    assert len(ups) == len(outcomes)
    assert all(u.signature_ok and u.access_key == ACCESS_KEY and not u.identity_header_present
               for u in ups)


INVALID_ROTATIONS = [
    # (id, token factory, detail)
    ("expired", lambda: pod_token(now=int(time.time()) - 700, lifetime=600), "expired"),
    ("not-the-clusters-key", lambda: ROGUE_KEY.mint(claims(ISSUER, AUDIENCE, POD)),
     "bad_signature"),
    ("wrong-audience", lambda: CLUSTER_KEY.mint(claims(ISSUER, "sts.amazonaws.com", POD)),
     "bad_audience"),
    ("not-a-jwt", lambda: "not-a-jwt", "malformed"),
]


@pytest.mark.parametrize("make_token,detail", [(f, d) for _, f, d in INVALID_ROTATIONS],
                         ids=[i for i, _, _ in INVALID_ROTATIONS])
def test_invalid_token_rotated_in_is_refused(sidecar, upstream, make_token, detail):
    sidecar.projected.publish(make_token())
    refused = f"identity_invalid: {detail}"
    outcomes = wait_for_streak(
        sidecar, lambda o: o.status == 403 and json.loads(o.body)["message"].endswith(refused))
    allowed = 0
    for out in outcomes:
        if out.status == 200:  # before the swap was picked up: still the pod's valid token
            assert_allowed_as(out, POD)
            allowed += 1
        else:
            assert out.status == 403, (out.status, out.body[:300])
            assert json.loads(out.body)["message"] == f"bedrock-guard: {refused}"
            assert (out.decision, out.reason) == ("deny", "identity_invalid"), out.record
    time.sleep(0.1)
    assert len(upstream.requests) == allowed, [u.summary() for u in upstream.requests]


def test_empty_token_file_is_refused_by_the_injector(sidecar, upstream):
    sidecar.projected.publish("")
    outcomes = wait_for_streak(sidecar, lambda o: o.status == 401)
    for out in outcomes:
        if out.status == 200:
            assert_allowed_as(out, POD)
        else:
            assert (out.status, out.body) == (401, b"Failed to inject credential."), out
            assert out.record is None  # answered before bedrock_guard ran
    time.sleep(0.1)
    assert len(upstream.requests) == sum(o.status == 200 for o in outcomes)
    # A valid token published afterwards is picked up again (the `sidecar` fixture of the next
    # test waits for that too).
    token = pod_token()
    sidecar.projected.publish(token)
    wait_for_streak(sidecar, lambda o: o.status == 200 and o.fingerprint == fingerprint(token))


# -- 2. shared gateways: the application attaches its token (docs/operations.md) -----------------

@pytest.fixture(scope="module")
def gateway(tmp_path_factory, pki_dir, mock_server):
    """The demo config (client-signed) with an identity block: the cluster's keys inline."""
    bundle = json.loads(Path(DEMO_BUNDLE).read_text())
    bundle["metadata"]["name"] = "shared-gateway-identity"
    bundle["identity"] = {"header": IDENTITY_HEADER,
                          "providers": [dict(PROVIDER, jwks={"keys": [CLUSTER_KEY.jwk()]})]}
    bundle["identity"]["providers"][0].pop("remote_jwks")
    work = tmp_path_factory.mktemp("gateway")
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, mock_server.port, pki_dir, WASM_PATH, bundle,
                        out_dir=work)
    with envoy_stack(cfg, admin, listener, work, split_logs=True) as proc:
        yield proc


def gateway_client(gateway: EnvoyProcess):
    return boto_client(("127.0.0.1", gateway.listener_port), ACCESS_KEY, SECRET_KEY)[0]


def test_documented_boto3_hook_through_a_shared_gateway(gateway, mock, tmp_path):
    token_file = tmp_path / "token"
    token = pod_token()
    token_file.write_text(token + "\n")
    client = attach_identity_token(gateway_client(gateway), token_file)
    sent = SentRequests()
    client.meta.events.register("before-send.bedrock-runtime", sent)
    audit = AuditLog(gateway.log_path)
    mark = audit.mark()
    reply = client.converse(modelId=MODEL, **CONVERSE)
    assert reply["output"]["message"]["content"][0]["text"] == REPLY_TEXT
    # The header travelled, outside the signature; the client's own signature reached the
    # upstream intact and without the token.
    assert sent.last.headers[IDENTITY_HEADER] == token
    assert IDENTITY_HEADER not in signed_header_names(sent.last)
    (up,) = mock.wait_for_requests(1)
    assert up.signature_ok and up.access_key == ACCESS_KEY, up.signature_error
    assert not up.identity_header_present
    (rec,) = [audit_record(line) for line in audit.take_raw(1, mark)]
    assert rec["userIdentity"]["subject"] == POD, rec
    # The file is read for every request: a rotated token is used on the next one.
    rotated = pod_token(POD_NEXT)
    tmp = tmp_path / ".token.new"
    tmp.write_text(rotated)
    os.replace(tmp, token_file)
    mark = audit.mark()
    client.converse(modelId=MODEL, **CONVERSE)
    assert sent.last.headers[IDENTITY_HEADER] == rotated
    (rec,) = [audit_record(line) for line in audit.take_raw(1, mark)]
    assert rec["userIdentity"]["subject"] == POD_NEXT, rec


def test_gateway_refuses_a_client_without_the_hook(gateway, mock):
    with pytest.raises(ClientError) as e:
        gateway_client(gateway).converse(modelId=MODEL, **CONVERSE)
    assert_client_error_refusal(e.value, "identity_missing")
    time.sleep(0.05)
    assert not mock.requests


def test_token_added_before_signing_is_header_invalid(gateway, mock):
    """Why `before-send`: a header present when botocore signs is in SignedHeaders, and the
    filter refuses a signed identity header (it removes the header before forwarding, which
    would break that signature)."""
    token = pod_token()
    client = gateway_client(gateway)

    def add_before_signing(request, **kwargs):
        request.headers[IDENTITY_HEADER] = token

    client.meta.events.register("before-sign.bedrock-runtime", add_before_signing)
    sent = SentRequests()
    client.meta.events.register("before-send.bedrock-runtime", sent)
    with pytest.raises(ClientError) as e:
        client.converse(modelId=MODEL, **CONVERSE)
    assert IDENTITY_HEADER in signed_header_names(sent.last)
    assert_client_error_refusal(e.value, "header_invalid")
    time.sleep(0.05)
    assert not mock.requests


def test_operations_doc_shows_the_tested_boto3_snippet():
    doc = (REPO_ROOT / "docs" / "operations.md").read_text()
    heading = "## Identity tokens from applications (shared gateways)"
    assert heading in doc, "docs/operations.md lost its shared-gateway identity section"
    section = doc[doc.index(heading):]
    snippet = documented_snippet()
    assert "def attach_identity_token" in snippet and "before-send.bedrock-runtime" in snippet
    assert snippet in section, ("docs/operations.md must show tests/harness/identity_hook.py's "
                                "snippet verbatim (between its marker lines)")


def test_a_pod_of_another_namespace_is_refused(sidecar, upstream):
    """Control: the shipped rules refuse OTHER's token when it is the pod's own (so the
    replacement test above is not vacuous)."""
    sidecar.projected.publish(pod_token(OTHER))
    outcomes = wait_for_streak(sidecar, lambda o: o.status == 403)
    assert all(o.subject == OTHER and o.reason == "model_not_allowed" for o in outcomes[-STREAK:])
    resp = raw_converse(sidecar.proxy)
    assert_raw_refusal(resp, "model_not_allowed")
    time.sleep(0.1)
    assert len(upstream.requests) == sum(o.status == 200 for o in outcomes)
