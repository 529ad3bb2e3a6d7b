"""`bedrock-guard explain` and the filter agree on every example case (issue 13 item 2).

Every case of every `policies/examples/*.cases.json` (its bundle is the `.json` beside it) is
decided twice: by a real Envoy running `dist/bedrock_guard.wasm` with that bundle, and by
`bedrock-guard explain --json` given the same request. The two must agree on the verdict, the
reason, the rule, the mode, the operation and the models, and both must meet the case's own
`expect`. Nothing is expected here that the case file does not say: the sides are compared with
each other.

How a case reaches Envoy, as `bedrock-guard test` reads it (docs/cli.md, "test"):

* the request is sent as raw HTTP/1.1 bytes (`harness/rawhttp.py`), so methods, repeated
  headers and undecoded paths arrive as the case has them; `:authority` is the case's
  `authority`, else its `host` header, else the bundle's first endpoint (as `explain` defaults
  it); a JSON body is sent compactly with `content-type: application/json` unless the case
  gives one, and `explain` gets the very same bytes (`--body`);
* a case's `destination` (the original destination address) is given to a second Envoy whose
  filter has `original_destination: true` and whose listener reads a PROXY protocol header,
  which sets the connection's local address, Envoy's `destination.address`, to it; cases
  without one go to a plain listener, where the filter uses no original destination, as
  `explain` without `--destination` does;
* a case's `caller` becomes a real token: for a provider with remote keys this test serves a
  throw-away key (`harness/jwks_server.py`, the provider's own `remote_jwks` cluster and path)
  and mints a token with the caller's subject, groups and claims (`harness/tokens.py`); the
  token travels in the bundle's identity header, and `explain` verifies the same token with the
  same key (`--token`, `--jwks PROVIDER=FILE`); a case's own `token` is sent as it is, with the
  keys its case file gives (`jwks`) served beside this test's, unless the token is only valid
  at the case file's `now` (Envoy verifies at the current time: the case is skipped, saying so);
* every route answers 200 itself (`direct_response`): an allowed request is not forwarded, so
  the audit record holds the filter's request-time decision and nothing an upstream did. (The
  response-time check that the answer came from inside the endpoint's `cidrs` is not part of
  the decision `explain` shows, and no loopback mock is inside identity.json's 10.20.0.0/16.)

The filter's side is read from the audit record the access log writes (`harness/audit_log.py`)
and from the response: a refusal's status and `x-bedrock-guard-reason`, or 200 for a request
let through.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.harness import rawhttp
from tests.harness.audit_log import AuditLog
from tests.harness.envoy import REPO_ROOT, free_port, render_config
from tests.harness.jwks_server import JwksServer, add_static_cluster
from tests.harness.stack import WASM_PATH, envoy_stack
from tests.harness.tokens import SigningKey, claims

EXAMPLES = REPO_ROOT / "policies" / "examples"
CASE_FILES = sorted(EXAMPLES.glob("*.cases.json"))
REASON_HEADER = "x-bedrock-guard-reason"
WORKERS = 2  # envoy_stack runs --concurrency 2
KEYS_TIMEOUT = 15.0  # for every worker's VM to fetch a provider's keys


def bundle_of(case_file: Path) -> Path:
    return case_file.with_name(case_file.name.removesuffix(".cases.json") + ".json")


def load_cases(case_file: Path) -> list[dict]:
    doc = json.loads(case_file.read_text())
    return doc["cases"] if isinstance(doc, dict) else doc


CASES = [
    pytest.param(case_file, i, id=f"{case_file.name.removesuffix('.cases.json')}[{i}]")
    for case_file in CASE_FILES
    for i in range(len(load_cases(case_file)))
]


def test_every_example_case_file_is_covered():
    assert CASE_FILES, f"no *.cases.json in {EXAMPLES}"
    for case_file in CASE_FILES:
        assert bundle_of(case_file).is_file(), f"{case_file.name} has no bundle beside it"
        assert load_cases(case_file), f"{case_file.name} has no cases"
    assert len(CASES) == sum(len(load_cases(f)) for f in CASE_FILES)


# -- a case as a request ----------------------------------------------------------------------------

@dataclass
class Request:
    method: str
    path: str
    authority: str  # as decided: the case's, else its Host header, else the first endpoint's
    authority_given: bool
    headers: list[tuple[str, str]]  # as the case gives them (names lower-cased), Host included
    body: bytes | None
    destination: str | None
    caller: dict | None
    token: str | None = None
    extra_headers: list[tuple[str, str]] = field(default_factory=list)  # the identity token


def case_request(r: dict, bundle: dict) -> Request:
    """The request of a case, read as `bedrock-guard test` reads it (cli/src/cases.rs)."""
    headers: list[tuple[str, str]] = []
    raw = r.get("headers")
    if isinstance(raw, dict):
        for name, value in raw.items():
            for v in value if isinstance(value, list) else [value]:
                headers.append((name.lower(), v))
    elif isinstance(raw, list):
        for line in raw:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip(" \t")))
    body = r.get("body")
    if body is None:
        data = None
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body, separators=(",", ":")).encode()
        if not any(n == "content-type" for n, _ in headers):
            headers.append(("content-type", "application/json"))
    host = next((v for n, v in headers if n == "host"), None)
    authority = r.get("authority") or host or bundle["endpoints"][0]["host"]
    return Request(method=r.get("method", "POST"), path=r["path"], authority=authority,
                   authority_given="authority" in r, headers=headers, body=data,
                   destination=r.get("destination"), caller=r.get("caller"),
                   token=r.get("token"))


# Envoy's codecs fold repeats of these headers into one comma-joined value before any filter
# runs (noted in tests/test_e2e_encoding.py): the filter never sees them apart.
FOLDED_BY_ENVOY = ("authorization", "content-type")


def folded(req: Request) -> str | None:
    """Why the filter cannot see the request as the case gives it, when Envoy folds a repeated
    header: it then sees another (still refused) request, so only the verdict and reason can be
    compared."""
    names = [n for n, _ in req.headers]
    repeated = sorted({n for n in names if names.count(n) > 1 and n in FOLDED_BY_ENVOY})
    if repeated:
        return (f"the case repeats {', '.join(repeated)}, which Envoy folds into one "
                "comma-joined value before any filter runs: the filter sees one malformed "
                "header, not two, so the step that refuses (and what it records) differs")
    return None


def unreproducible(req: Request) -> str | None:
    """Why a request cannot be sent through Envoy as the case describes it, if it cannot."""
    host = [v for n, v in req.headers if n == "host"]
    if req.authority_given and host and host != [req.authority]:
        return ("the case gives both an authority and a different Host header; over HTTP/1.1 "
                "Envoy takes :authority from the Host header, so they cannot differ")
    if len(host) > 1:
        return "the case repeats the Host header, which Envoy's codec refuses before any filter"
    if req.token is not None:
        window = token_window(req.token)
        now = time.time()
        if window is not None and not window[0] <= now < window[1] - 30:
            return ("the case's token is not valid now (the case file's `now` stands in for the "
                    "time), and Envoy verifies it at the current time")
    return None


def token_window(token: str) -> tuple[float, float] | None:
    """(nbf or iat, exp) of a JWT's payload, when it reads as one."""
    try:
        payload = token.split(".")[1]
        doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(doc.get("nbf", doc.get("iat", 0))), float(doc["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def wire(req: Request) -> bytes:
    """The HTTP/1.1 bytes of `req`, for Envoy's listener."""
    if req.method == "CONNECT":
        # A CONNECT request's target is its authority (RFC 9110 9.3.6), so the case's path is
        # not sent; the filter refuses the method before it reads either.
        target = f"{req.authority}:443"
        host = target
    else:
        target = req.path
        host = req.authority
    lines = [f"{req.method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in req.headers + req.extra_headers:
        if name != "host":
            lines.append(f"{name}: {value}")
    has_length = any(n == "content-length" for n, _ in req.headers)
    if req.body is not None and not has_length:
        lines.append(f"content-length: {len(req.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    data = head + (req.body or b"")
    if req.destination is not None:
        version = "TCP6" if ipaddress.ip_address(req.destination).version == 6 else "TCP4"
        source = "::1" if version == "TCP6" else "127.0.0.1"
        data = f"PROXY {version} {source} {req.destination} 40000 443\r\n".encode() + data
    return data


# -- the two sides ----------------------------------------------------------------------------------

class Stack:
    """An Envoy with one example bundle, every route answering 200 itself, its access log (one
    audit record per request) in its own file, and the keys of the bundle's remote providers
    served by this test."""

    def __init__(self, envoy, keys: dict[str, tuple[dict, SigningKey, Path]]):
        self.envoy = envoy
        self.audit = AuditLog(envoy.log_path)
        self.keys = keys  # provider name -> (provider, key, JWKS file for explain)


def _answer_directly(cfg: Path, transparent: bool) -> None:
    doc = yaml.safe_load(cfg.read_text())
    listener = doc["static_resources"]["listeners"][0]
    routes = [r for hcm in listener["filter_chains"] for f in [hcm["filters"][0]]
              for vh in f["typed_config"]["route_config"]["virtual_hosts"] for r in vh["routes"]]
    assert routes, cfg
    for route in routes:
        route.pop("route")
        route["direct_response"] = {"status": 200, "body": {"inline_string": "{}"}}
    if transparent:
        listener["listener_filters"] = [{
            "name": "envoy.filters.listener.proxy_protocol",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener."
                                      "proxy_protocol.v3.ProxyProtocol"},
        }]
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))


def _signing_key(provider: dict) -> SigningKey | None:
    algorithms = provider.get("algorithms", [])
    if "RS256" in algorithms:
        return SigningKey.rsa(f"explain-e2e-{provider['name']}")
    if "ES256" in algorithms:
        return SigningKey.ec(f"explain-e2e-{provider['name']}")
    return None


@pytest.fixture(scope="module")
def stacks(tmp_path_factory, pki_dir):
    """`stacks(case_file, transparent)`: the Envoy for the case file's bundle, started on first
    use."""
    started: dict[tuple[Path, bool], Stack] = {}
    with contextlib.ExitStack() as running:
        def get(case_file: Path, transparent: bool) -> Stack:
            key = (case_file, transparent)
            if key not in started:
                started[key] = _start(running, tmp_path_factory, pki_dir, case_file,
                                      transparent)
            return started[key]
        yield get


def _file_keys(case_file: Path) -> dict[str, list[dict]]:
    """The keys a case file gives for remote providers (its `jwks` member), by provider."""
    doc = json.loads(case_file.read_text())
    if not isinstance(doc, dict):
        return {}
    return {name: json.loads((case_file.parent / path).read_text())["keys"]
            for name, path in (doc.get("jwks") or {}).items()}


def _start(running: contextlib.ExitStack, tmp_path_factory, pki_dir, case_file: Path,
           transparent: bool) -> Stack:
    bundle_path = bundle_of(case_file)
    bundle = json.loads(bundle_path.read_text())
    file_keys = _file_keys(case_file)
    work = tmp_path_factory.mktemp(f"explain-{bundle_path.stem}")
    listener, admin = free_port(), free_port()
    config = {"bundle": bundle, "original_destination": True} if transparent else bundle
    # The upstream cluster is rendered as shipped but never used: routes answer directly.
    cfg = render_config(listener, admin, free_port(), pki_dir, WASM_PATH, config, out_dir=work)
    _answer_directly(cfg, transparent)
    keys: dict[str, tuple[dict, SigningKey, Path]] = {}
    servers: list[JwksServer] = []
    for provider in (bundle.get("identity") or {}).get("providers", []):
        remote = provider.get("remote_jwks")
        signing_key = _signing_key(provider)
        if remote is None or signing_key is None:
            continue  # inline keys (no private half here) or no algorithm we can sign with
        # The provider's keys as Envoy fetches them and explain reads them (`--jwks`): this
        # test's key for callers, plus the keys the case file gives for its own tokens.
        served = [signing_key.jwk(), *file_keys.get(provider["name"], [])]
        server = JwksServer(remote["path"]).start()
        running.callback(server.stop)
        server.set_keys(served)
        add_static_cluster(cfg, remote["cluster"], server.port)
        jwks_file = work / f"{provider['name']}.jwks.json"
        jwks_file.write_text(json.dumps({"keys": served}))
        keys[provider["name"]] = (provider, signing_key, jwks_file)
        servers.append(server)
    envoy = running.enter_context(envoy_stack(cfg, admin, listener, work, split_logs=True))
    # Each worker's VM fetches the keys itself; wait until they have asked.
    deadline = time.monotonic() + KEYS_TIMEOUT
    for server in servers:
        while len(server.fetches(mode="ok")) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.05)
    return Stack(envoy, keys)


def send_token(req: Request, bundle: dict, token: str) -> None:
    """Put `token` in the bundle's identity header, as explain does with `--token`."""
    header = (bundle.get("identity") or {}).get("header", "x-workload-identity")
    value = f"Bearer {token}" if header.lower() == "authorization" else token
    req.extra_headers.append((header, value))
    req.token = token


def mint_for_caller(req: Request, bundle: dict, stack: Stack) -> str | None:
    """Mint the caller's token and send it; or why the caller cannot be given a real token."""
    identity = bundle.get("identity") or {}
    providers = identity.get("providers", [])
    issuer = req.caller.get("issuer")
    provider = next((p for p in providers if issuer in (None, p["issuer"])), None)
    if provider is None:
        return f"no identity provider of the bundle has the caller's issuer {issuer!r}"
    if provider["name"] not in stack.keys:
        return (f"provider {provider['name']!r} has inline keys (or no RS256/ES256): this test "
                "has no private key to sign the caller's token with")
    _, key, _ = stack.keys[provider["name"]]
    extra = dict(req.caller.get("claims") or {})
    principal_claim = provider.get("principal_claim", "sub")
    if principal_claim != "sub":
        extra[principal_claim] = req.caller["subject"]
    groups = req.caller.get("groups")
    if groups:
        extra[provider.get("groups_claim", "groups")] = groups
    audience = provider["audiences"][0]
    send_token(req, bundle, key.mint(claims(provider["issuer"], audience, req.caller["subject"],
                                            **extra)))
    return None


def explain(cli: Path, bundle_path: Path, req: Request, work: Path, stack: Stack) -> dict:
    args = [str(cli), "explain", str(bundle_path), "--json", "--method", req.method,
            "--path", req.path]
    if req.authority_given:
        args += ["--authority", req.authority]
    for name, value in req.headers:
        args += ["--header", f"{name}: {value}"]
    if req.body is not None:
        body = work / "body"
        body.write_bytes(req.body)
        args += ["--body", str(body)]
    if req.destination is not None:
        args += ["--destination", req.destination]
    if req.token is not None:
        token = work / "token"
        token.write_text(req.token)
        args += ["--token", f"@{token}"]
        # The keys Envoy fetched, for every remote provider (explain needs those of the
        # provider the token is for).
        for name, (_, _, jwks_file) in stack.keys.items():
            args += ["--jwks", f"{name}={jwks_file}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}{proc.stderr}"
    return json.loads(proc.stdout)


def through_envoy(stack: Stack, req: Request, explained: dict):
    """Send the request; (audit record, response). Retried while the answering worker has not
    fetched the provider's keys yet (`policy_unavailable`, which explain cannot be)."""
    deadline = time.monotonic() + KEYS_TIMEOUT
    while True:
        mark = stack.audit.mark()
        resp = rawhttp.exchange(stack.envoy.listener_port, wire(req), timeout=10)
        (record,) = stack.audit.take(1, mark)
        keys_pending = (record["reason"] == "policy_unavailable" and stack.keys
                        and explained["reason"] != "policy_unavailable")
        if not keys_pending or time.monotonic() > deadline:
            return record, resp
        time.sleep(0.2)


def models_of(record: dict) -> list[str]:
    params = record["requestParameters"]
    if params is None:
        return []
    model = params["modelId"]
    return [model] if isinstance(model, str) else list(model)


# -- the test ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("case_file", "index"), CASES)
def test_explain_and_the_filter_agree(case_file, index, cli, stacks, tmp_path):
    case = load_cases(case_file)[index]
    bundle_path = bundle_of(case_file)
    bundle = json.loads(bundle_path.read_text())
    req = case_request(case["request"], bundle)
    reason = unreproducible(req)
    if reason:
        pytest.skip(f"{case_file.name} cases[{index}] {case['name']!r}: {reason}")
    stack = stacks(case_file, req.destination is not None)
    if req.token is not None:
        send_token(req, bundle, req.token)
    elif req.caller is not None:
        why = mint_for_caller(req, bundle, stack)
        if why:
            pytest.skip(f"{case_file.name} cases[{index}] {case['name']!r}: {why}")

    ex = explain(cli, bundle_path, req, tmp_path, stack)
    record, resp = through_envoy(stack, req, ex)
    where = f"{case_file.name} cases[{index}] {case['name']!r}\nexplain: {json.dumps(ex)}\n" \
            f"audit:   {json.dumps(record)}\nresponse: {resp.status} {resp.body[:300]!r}"

    # The filter, by its audit record, and explain agree.
    filter_side = {"verdict": record["decision"], "reason": record["reason"],
                   "rule": record["ruleId"], "mode": record["mode"],
                   "operation": record["eventName"], "models": models_of(record)}
    explain_side = {k: ex[k] for k in ("verdict", "reason", "rule", "mode", "operation", "models")}
    partly = folded(req)
    if partly:
        assert (filter_side["verdict"], filter_side["reason"]) == (ex["verdict"], ex["reason"]), \
            where
        pytest.skip(f"{case_file.name} cases[{index}] {case['name']!r}: {partly} (verdict and "
                    f"reason compared: both {ex['verdict']} {ex['reason']})")
    assert filter_side == explain_side, where
    if req.caller is not None:
        # The caller was verified from its token on both sides (not taken as given).
        assert ex["caller"]["status"] == "verified", where
        assert record["userIdentity"]["subject"] == ex["caller"]["subject"], where

    # The response is the one explain describes.
    if ex["lets_through"]:
        assert resp.status == 200, where
    else:
        assert resp.status == ex["status"], where
        assert resp.header(REASON_HEADER) == ex["reason"], where
        message = json.loads(resp.body)["message"]
        assert message.startswith(f"bedrock-guard: {ex['reason']}"), where

    # And both meet the case's own expectation.
    expect = case["expect"]
    assert ex["verdict"] == expect["verdict"], where
    for key in ("reason", "rule", "mode", "operation"):
        if key in expect:
            assert ex[key] == expect[key], f"expect.{key}\n{where}"
