"""End to end: body-carried operations on the Istio and Envoy Gateway shapes (issue 10, item 1).

Istio's WasmPlugin and Envoy Gateway's EnvoyExtensionPolicy cannot set the wasm filter's
`allow_on_headers_stop_iteration`. With `BEDROCK_GUARD_HOLD_BODY=buffer_filter` in the VM's
environment the guard continues from the header phase and holds the body itself, and
`envoy.filters.http.buffer` after it keeps the headers from leaving until the guard has decided.

Each shape in `tests/data/shapes/` is an Envoy configuration equivalent to what that control
plane generates (the files cite the translator code and test data they follow):

* `istio-wasmplugin-buffer`: WasmPlugin (ECDS filter, env from `vmConfig.env`) + an EnvoyFilter
  that inserts the buffer filter;
* `istio-envoyfilter-ecds`: EnvoyFilter only (EXTENSION_CONFIG + HTTP_FILTER with
  `config_discovery`), which sets `allow_on_headers_stop_iteration` (no buffer filter);
* `envoy-gateway`: EnvoyExtensionPolicy (inline wasm filter, env from `env.hostKeys`) +
  BackendTrafficPolicy `requestBuffer` placed after it by EnvoyProxy `filterOrder`.

On each: allowed body-carried operations (ChatCompletions, Anthropic messages, StartAsyncInvoke,
bedrock-agent-runtime's InvokeInlineAgent) reach the mock; refused ones never reach it, not even
their headers (the cluster's `upstream_rq_total` and `upstream_cx_total` stay put, and the mock
logs nothing), with Content-Length and chunked bodies split across writes; an oversized body
gets 413 and nothing leaves; path-carried operations behave as before. The negative control
removes the buffer filter from the Envoy Gateway shape: the refused request's headers then do
reach the upstream, so it is the buffer filter that holds them.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import BEDROCK_HOST
from tests.harness import rawhttp
from tests.harness.assertions import (
    assert_client_error_refusal, assert_mock_saw_nothing, assert_raw_refusal, single_forwarded,
)
from tests.harness.awsreq import sign, to_http11, wire_parts
from tests.harness.clients import bedrock_client
from tests.harness.ecds import ensure_cli, run_cli
from tests.harness.envoy import REPO_ROOT, free_port, walk
from tests.harness.stack import WASM_PATH, envoy_stack

SHAPES = Path(__file__).resolve().parent / "data" / "shapes"
HOLD_ENV = "BEDROCK_GUARD_HOLD_BODY"

# The test bundle's body limit, and the buffer filter's max_request_bytes above it (so the
# guard's own 413 `body_too_large`, audited, is what an oversized body gets).
MAX_BODY = 65536
BUFFER_MAX = 2 * MAX_BODY

CHAT = "/openai/v1/chat/completions"
MESSAGES = "/anthropic/v1/messages"
ASYNC = "/async-invoke"
ALLOWED_CHAT_MODEL = "openai.gpt-oss-20b-1:0"
REFUSED_CHAT_MODEL = "openai.gpt-oss-120b-1:0"
ALLOWED_CLAUDE = "anthropic.claude-sonnet-4-20250514-v1:0"
REFUSED_CLAUDE = "anthropic.claude-opus-4-20250514-v1:0"


def chat(model: str, pad: int = 0) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi" + "x" * pad}]}
                      ).encode()


def anthropic(model: str) -> bytes:
    return json.dumps({"model": model, "max_tokens": 16,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()


def async_invoke(model: str) -> bytes:
    return json.dumps({"modelId": model, "modelInput": {},
                       "outputDataConfig": {"s3OutputDataConfig": {
                           "s3Uri": "s3://acme-bedrock-async/outputs/run-1"}}}).encode()


def inline_agent(model: str) -> bytes:
    return json.dumps({"foundationModel": model, "instruction": "You are a helpful assistant.",
                       "inputText": "hi"}).encode()


AGENT_HOST = "bedrock-agent-runtime.us-east-1.amazonaws.com"
AGENT = "/agents/session-1"
ALLOWED = [(BEDROCK_HOST, CHAT, chat(ALLOWED_CHAT_MODEL)),
           (BEDROCK_HOST, MESSAGES, anthropic(ALLOWED_CLAUDE)),
           (BEDROCK_HOST, ASYNC, async_invoke("amazon.titan-text-express-v1")),
           (AGENT_HOST, AGENT, inline_agent("anthropic.claude-3-5-sonnet-20240620-v1:0"))]
REFUSED = [(BEDROCK_HOST, CHAT, chat(REFUSED_CHAT_MODEL)),
           (BEDROCK_HOST, MESSAGES, anthropic(REFUSED_CLAUDE)),
           (BEDROCK_HOST, ASYNC, async_invoke("amazon.nova-reel-v1:0")),
           (AGENT_HOST, AGENT, inline_agent(REFUSED_CLAUDE))]
IDS = ["chat-completions", "anthropic-messages", "async-invoke", "inline-agent"]


def hold_bundle(demo: dict) -> dict:
    b = json.loads(json.dumps(demo))
    b["limits"] = {"max_body_bytes": MAX_BODY}
    b["rules"].insert(0, {"id": "claude-messages", "effect": "allow",
                          "models": ["anthropic.claude-sonnet-4-*"],
                          "operations": ["AnthropicMessages"]})
    b["endpoints"].append({"host": AGENT_HOST, "region": "us-east-1", "private_dns": True,
                           "cidrs": ["127.0.0.0/8"]})
    b["rules"].insert(0, {"id": "inline-agents", "effect": "allow",
                          "models": ["anthropic.claude-3-5-sonnet-20240620-v1:0"],
                          "operations": ["InvokeInlineAgent"]})
    return b


# -- rendering the shapes ------------------------------------------------------------------------

@dataclass
class Shape:
    name: str
    ecds: bool
    # Where BEDROCK_GUARD_HOLD_BODY comes from: the ECDS resource's key_values (Istio), or the
    # Envoy process's environment through host_env_keys (Envoy Gateway); None: not set.
    hold_body: str | None
    via_host_env: bool


SHAPE_LIST = [
    Shape("istio-wasmplugin-buffer", ecds=True, hold_body="buffer_filter", via_host_env=False),
    Shape("istio-envoyfilter-ecds", ecds=True, hold_body=None, via_host_env=False),
    Shape("envoy-gateway", ecds=False, hold_body="buffer_filter", via_host_env=True),
]


def _fill(text: str, tokens: dict[str, str]) -> str:
    for k, v in tokens.items():
        text = text.replace(k, v)
    return text


def _set_bundle(cfg, bundle: dict) -> int:
    n = 0
    for node in walk(cfg):
        if node.get("value") == "__BUNDLE__":
            node["value"] = json.dumps(bundle)
            n += 1
    return n


def _drop_buffer(cfg) -> int:
    """Remove the buffer filter and its per-route configuration (the negative control)."""
    n = 0
    for node in walk(cfg):
        filters = node.get("http_filters")
        if isinstance(filters, list):
            kept = [f for f in filters if f.get("name") != "envoy.filters.http.buffer"]
            n += len(filters) - len(kept)
            node["http_filters"] = kept
        per_route = node.get("typed_per_filter_config")
        if isinstance(per_route, dict):
            per_route.pop("envoy.filters.http.buffer", None)
    return n


def render_shape(shape: Shape, work: Path, pki_dir: Path, upstream: int, bundle: dict, *,
                 drop_buffer: bool = False, buffer_max: int = BUFFER_MAX,
                 ) -> tuple[Path, int, int, dict[str, str]]:
    listener, admin = free_port(), free_port()
    ecds_dir = work / "ecds"
    ecds_dir.mkdir(exist_ok=True)
    tokens = {
        "__ADMIN_PORT__": str(admin), "__LISTENER_PORT__": str(listener),
        "__UPSTREAM_PORT__": str(upstream), "__CA_FILE__": str(Path(pki_dir).resolve() / "ca.pem"),
        "__WASM__": str(WASM_PATH), "__ECDS_DIR__": str(ecds_dir),
        "__BUFFER_MAX__": str(buffer_max), "__HOLD_BODY__": shape.hold_body or "",
    }
    cfg = yaml.safe_load(_fill((SHAPES / f"{shape.name}.yaml").read_text(), tokens))
    if drop_buffer:
        assert _drop_buffer(cfg) == 1, "the shape has no buffer filter to remove"
    if shape.ecds:
        resource = yaml.safe_load(_fill((SHAPES / f"{shape.name}.ecds.yaml").read_text(), tokens))
        assert _set_bundle(resource, bundle) == 1
        names = [f["config_discovery"]["config_source"]["path_config_source"]["path"]
                 for f in walk(cfg) if "config_discovery" in f]
        assert len(names) == 1
        Path(names[0]).write_text(json.dumps(resource))
    else:
        assert _set_bundle(cfg, bundle) == 1
    path = work / f"{shape.name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {HOLD_ENV: shape.hold_body} if shape.via_host_env and shape.hold_body else {}
    return path, admin, listener, env


# -- requests ---------------------------------------------------------------------------------

def signed_head(host: str, target: str, body: bytes, *, chunked: bool) -> bytes:
    """The head of a request botocore signed for `host`, `target` and `body`."""
    url = f"http://{host}{target}"
    _, headers, _ = wire_parts(sign("POST", url, body, {"Content-Type": "application/json"}))
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    headers.append(("Transfer-Encoding", "chunked") if chunked
                   else ("Content-Length", str(len(body))))
    headers.append(("Connection", "close"))
    return to_http11("POST", target.encode(), headers)


def chunked(parts: list[bytes]) -> list[bytes]:
    out = [b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p]
    out[-1] += b"0\r\n\r\n"
    return out


def upstream_counts(proc) -> tuple[int, int]:
    """(requests, connections) Envoy started towards its one upstream cluster."""
    stats = proc.stats(r"^cluster\..*\.upstream_(rq|cx)_total$")
    rq = sum(v for k, v in stats.items() if k.endswith(".upstream_rq_total"))
    cx = sum(v for k, v in stats.items() if k.endswith(".upstream_cx_total"))
    return rq, cx


def send_split(proc, target: str, body: bytes, *, chunked_body: bool, host: str = BEDROCK_HOST,
               pause: float = 0.3) -> tuple[rawhttp.RawResponse, tuple[int, int]]:
    """Send the head and the first half of the body, wait, and return the upstream counts seen
    while the body is incomplete; then the rest, and the response."""
    head = signed_head(host, target, body, chunked=chunked_body)
    half = len(body) // 2
    parts = [body[:half], body[half:]]
    wire = chunked(parts) if chunked_body else parts
    with socket.create_connection(("127.0.0.1", proc.listener_port), timeout=10) as sock:
        sock.sendall(head)
        time.sleep(0.05)
        sock.sendall(wire[0])
        time.sleep(pause)
        during = upstream_counts(proc)
        try:
            sock.sendall(wire[1])
        except OSError:
            pass  # already answered
        return rawhttp.read_response(sock), during


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=SHAPE_LIST, ids=[s.name for s in SHAPE_LIST])
def shape_envoy(request, tmp_path_factory, pki_dir, mock_server, demo_bundle):
    shape: Shape = request.param
    work = tmp_path_factory.mktemp(shape.name)
    cfg, admin, listener, env = render_shape(shape, work, pki_dir, mock_server.port,
                                             hold_bundle(demo_bundle))
    with envoy_stack(cfg, admin, listener, work, env=env) as proc:
        yield shape, proc


@pytest.fixture
def stack(shape_envoy, mock):
    shape, proc = shape_envoy
    if not proc.alive():
        pytest.fail("Envoy died during the run:\n" + proc.log_tail(), pytrace=False)
    return shape, proc, mock


# -- the shapes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("chunked_body", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("host,target,body", ALLOWED, ids=IDS)
def test_allowed_body_carried_operations_reach_the_mock(stack, host, target, body, chunked_body):
    _, proc, mock = stack
    before = upstream_counts(proc)
    resp, during = send_split(proc, target, body, chunked_body=chunked_body, host=host)
    assert resp.status == 200, (resp.status, resp.body[:300])
    # Held while the body was incomplete: not even the headers had left.
    assert during[0] == before[0], (before, during)
    rec = single_forwarded(mock)
    assert rec.raw_path == target.encode()
    assert rec.body == body
    assert upstream_counts(proc)[0] == before[0] + 1


@pytest.mark.parametrize("chunked_body", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("host,target,body", REFUSED, ids=IDS)
def test_refused_body_carried_operations_never_reach_the_mock(stack, host, target, body,
                                                             chunked_body):
    _, proc, mock = stack
    before = upstream_counts(proc)
    resp, during = send_split(proc, target, body, chunked_body=chunked_body, host=host)
    assert resp.status == 403, (resp.status, resp.body[:300])
    assert_raw_refusal(resp, json.loads(resp.body)["message"].split(":")[1].strip())
    assert during == before
    assert_mock_saw_nothing(mock)
    assert upstream_counts(proc) == before, "a refused request's headers reached the upstream"


@pytest.mark.parametrize("chunked_body", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_body_gets_413_and_nothing_leaves(stack, chunked_body):
    _, proc, mock = stack
    before = upstream_counts(proc)
    body = chat(ALLOWED_CHAT_MODEL, pad=MAX_BODY + 4096)
    assert MAX_BODY < len(body) < BUFFER_MAX
    resp, _ = send_split(proc, CHAT, body, chunked_body=chunked_body, pause=0.1)
    assert_raw_refusal(resp, "body_too_large", status=413)
    assert_mock_saw_nothing(mock)
    assert upstream_counts(proc) == before


def test_a_body_above_the_connection_buffer_is_still_held_and_allowed(stack):
    """Envoy Gateway's listeners have per_connection_buffer_limit_bytes 32768; the buffer filter
    raises the request's buffer limit to its max_request_bytes, so bodies up to the bundle's
    limit are held whole (the Istio shapes keep Envoy's 1 MiB default)."""
    _, proc, mock = stack
    body = chat(ALLOWED_CHAT_MODEL, pad=48 * 1024)
    assert 32768 < len(body) < MAX_BODY
    resp, _ = send_split(proc, CHAT, body, chunked_body=False)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert single_forwarded(mock).body == body


def test_path_carried_operations_behave_as_before(stack):
    _, proc, mock = stack
    client = bedrock_client(proc.listener_port)
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    out = client.converse(modelId="amazon.titan-text-express-v1", messages=messages)
    assert out["output"]["message"]["role"] == "assistant"
    assert single_forwarded(mock).model_id == "amazon.titan-text-express-v1"
    mock.reset()
    before = upstream_counts(proc)
    with pytest.raises(ClientError) as e:
        client.converse(modelId=REFUSED_CLAUDE, messages=messages)
    assert_client_error_refusal(e.value, "model_denied")
    assert_mock_saw_nothing(mock)
    assert upstream_counts(proc) == before


def test_the_guard_logs_the_way_it_holds_bodies(stack):
    """The setting reached the VM: Istio's through key_values, Envoy Gateway's through the
    process environment and host_env_keys; the flag-only shape leaves it unset."""
    shape, proc, _ = stack
    logged = "BEDROCK_GUARD_HOLD_BODY=buffer_filter" in proc.log_text()
    assert logged == (shape.hold_body == "buffer_filter"), proc.log_tail()


# -- negative control ---------------------------------------------------------------------------

def test_without_the_buffer_filter_a_refused_requests_headers_leave(tmp_path, pki_dir,
                                                                   mock_server, demo_bundle):
    """The Envoy Gateway shape with the buffer filter removed (the guard still set to
    buffer_filter): the refused request is still answered 403, but its headers went upstream
    first. This is what the buffer filter prevents in the tests above."""
    shape = next(s for s in SHAPE_LIST if s.name == "envoy-gateway")
    cfg, admin, listener, env = render_shape(shape, tmp_path, pki_dir, mock_server.port,
                                             hold_bundle(demo_bundle), drop_buffer=True)
    with envoy_stack(cfg, admin, listener, tmp_path, env=env) as proc:
        before = upstream_counts(proc)
        resp, during = send_split(proc, CHAT, chat(REFUSED_CHAT_MODEL), chunked_body=False)
        assert resp.status == 403, (resp.status, resp.body[:300])
        assert during[0] == before[0] + 1, (before, during)
        assert upstream_counts(proc)[0] == before[0] + 1


def test_a_buffer_limit_below_the_bundles_gets_envoys_own_413(tmp_path, pki_dir, mock_server,
                                                              demo_bundle, mock):
    """Misconfigured sizes (the buffer filter's max_request_bytes below the bundle's
    max_body_bytes): a body between the two gets Envoy's own 413 from the buffer filter, not
    the guard's `body_too_large`; nothing leaves either. Why the manifests keep the buffer's
    limit above the bundle's."""
    shape = next(s for s in SHAPE_LIST if s.name == "envoy-gateway")
    cfg, admin, listener, env = render_shape(shape, tmp_path, pki_dir, mock_server.port,
                                             hold_bundle(demo_bundle), buffer_max=32768)
    with envoy_stack(cfg, admin, listener, tmp_path, env=env) as proc:
        before = upstream_counts(proc)
        body = chat(ALLOWED_CHAT_MODEL, pad=48 * 1024)
        assert 32768 < len(body) < MAX_BODY
        resp, _ = send_split(proc, CHAT, body, chunked_body=False, pause=0.1)
        assert resp.status == 413, (resp.status, resp.body[:300])
        assert resp.header("x-amzn-errortype") is None, resp.headers
        assert b"bedrock-guard" not in resp.body, resp.body[:300]
        assert_mock_saw_nothing(mock)
        assert upstream_counts(proc) == before


@pytest.mark.parametrize("shape", SHAPE_LIST, ids=[s.name for s in SHAPE_LIST])
def test_check_envoy_sees_how_each_shape_holds_bodies(tmp_path, pki_dir, demo_bundle, shape):
    """`bedrock-guard check-envoy` on each shape: nothing about holding bodies as shipped;
    without the buffer filter, the WasmPlugin shape (setting inline, in key_values) is an error
    and the Envoy Gateway one (setting from the host, unknown here) a warning."""
    ensure_cli()

    def body_findings(drop: bool) -> list[tuple[str, str]]:
        work = tmp_path / f"drop-{drop}"
        work.mkdir()
        cfg, *_ = render_shape(shape, work, pki_dir, 8443, hold_bundle(demo_bundle),
                               drop_buffer=drop)
        out = run_cli("check-envoy", "--json", str(cfg))
        findings = json.loads(out.stdout)["findings"]
        return [(f["code"], f["severity"]) for f in findings
                if f["code"] in ("body-not-held", "body-headers-leave", "hold-body-invalid")]

    assert body_findings(False) == []
    if shape.name == "istio-wasmplugin-buffer":
        assert body_findings(True) == [("body-headers-leave", "error")]
    elif shape.name == "envoy-gateway":
        assert body_findings(True) == [("body-not-held", "warning")]


def test_the_shapes_cite_their_sources():
    for shape in SHAPE_LIST:
        text = (SHAPES / f"{shape.name}.yaml").read_text()
        head = text.split("\nadmin:")[0]
        repo = "istio/istio" if shape.name.startswith("istio") else "envoyproxy/gateway"
        assert repo in head, shape.name
        assert (REPO_ROOT / "tests" / "data" / "shapes" / f"{shape.name}.yaml").is_file()
