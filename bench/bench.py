"""`make bench`: what the filter costs per request, measured side by side in one run, on the
path production runs.

Every request goes through the Envoy under test (`envoy/demo.yaml`, one worker) to an upstream
over TLS, exactly as the shipped config sends it to the Bedrock endpoint: the upstream is a second
Envoy on 127.0.0.1 answering with `direct_response` (its CPU is not what is measured). So the
guard's whole request runs: request phase, the upstream address check against the endpoint's
`cidrs` (demo.json: 127.0.0.0/8), the usage headers, the event-stream reader, the audit record
written by Envoy's access log (to a file in the bench's temp dir) and the stats.

Set-ups, by group (the same request within a group):

  request  POST /model/<id>/converse (allowed Converse, model in the path)
    none            no wasm filter
    floor           bench/floor: a proxy-wasm filter that reads `:path` and continues: the price
                    of the wasm runtime and the ABI, which any wasm filter pays
    guard           bedrock_guard with policies/examples/demo.json (models only, no identity)
    guard+identity  the same plus an identity provider and a group rule; every request carries
                    the same RS256 token (verified once, then served from the token cache)
    native          Envoy's own jwt_authn + rbac doing the identity part (the native peer)
  stream   POST /model/<id>/converse-stream answered with FRAMES event-stream frames
    none, floor, guard
  body     POST /openai/v1/chat/completions with a 64 KiB JSON body (the guard holds it whole)
    none, floor, guard

Per group, every set-up's Envoy is up at once (all on the core reserved for them; wrk, the
upstream and this script on the other), each is warmed up, then ROUNDS rounds of one SECONDS
window per set-up, the order rotating. Per window: requests/s and Envoy's CPU time per request
(user + system time of that Envoy over the window, from /proc, divided by the requests wrk
completed), and the CPU other processes used meanwhile (a disturbance indicator). Per set-up:
the best window, the median, and the cost above `none` and `floor` both from the best windows and
as the median of same-round differences (paired). Any non-2xx answer, socket error, request the
Envoy under test did not proxy, or missing access-log line aborts the run. For `stream`, also the
CPU per frame above the floor; for `request` and `stream`, the time to first (and last) response
byte from a sequential keep-alive client, requests interleaved between none, floor and guard.

Results: a table on stdout and bench/results.json. Compare numbers within one run.

`--trace MODULE` (for a module built with the plugin's `bench-trace` feature) runs one set-up
with that module and `--log-level info` and puts the `bedrock-guard trace:` lines of Envoy's log
into results.json under "trace".
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.harness.envoy import (  # noqa: E402
    envoy_binary, free_port, render_config, wasm_plugin_config,
)
from tests.harness.eventstream import decode_frames, encode_event  # noqa: E402

GUARD_WASM = ROOT / "dist" / "bedrock_guard.wasm"
# Where `make floor` writes it (scripts/cargo-wasm.sh's `target-dir`, after scripts/wasm-opt.sh,
# as for the guard); bench-only, never in dist/.
FLOOR_WASM = (Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target" / "wasm")
              / "bedrock_guard_floor.wasm")
PKI = ROOT / ".build" / "pki"
RESULTS = ROOT / "bench" / "results.json"

HOST = "bedrock-runtime.us-east-1.amazonaws.com"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
CONVERSE = f"/model/{MODEL}/converse"
CONVERSE_STREAM = f"/model/{MODEL}/converse-stream"
CHAT = "/openai/v1/chat/completions"
CHAT_MODEL = "openai.gpt-oss-20b-1:0"  # allowed for ChatCompletions by demo.json
ISSUER = "https://idp.bench.example"
IDENTITY_HEADER = "x-workload-identity"
WARMUP_SECONDS = 2
DISTURBED_PCT = 10  # other processes' CPU in a window above which it counts as disturbed
TTFB_GROUPS = ("request", "stream")
TTFB_SETUPS = ("none", "floor", "guard")

GROUPS = {
    "request": ["none", "floor", "guard", "guard+identity", "native"],
    "stream": ["none", "floor", "guard"],
    "body": ["none", "floor", "guard"],
}


# ---------------------------------------------------------------------------- request bodies

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token_and_jwks() -> tuple[str, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    jwk = {"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig", "n": b64(n),
           "e": b64(b"\x01\x00\x01")}
    header = b64(json.dumps({"alg": "RS256", "kid": "bench", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "svc-bench", "aud": "bedrock-egress", "exp": now + 3600,
              "iat": now, "groups": ["ml"]}
    payload = b64(json.dumps(claims).encode())
    sig = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{b64(sig)}", {"keys": [jwk]}


def stream_body(frames: int) -> bytes:
    """A ConverseStream answer of exactly `frames` valid event-stream frames, shaped like
    Bedrock's: messageStart, contentBlockDelta..., contentBlockStop, messageStop, and a final
    `metadata` event with the usage (the event the guard's reader takes the token counts from)."""
    if frames < 4:
        raise SystemExit("--frames: at least 4 (start, delta, stop, metadata)")
    events = [("messageStart", {"role": "assistant", "p": "abcdefgh"})]
    for i in range(frames - 4):
        events.append(("contentBlockDelta", {"contentBlockIndex": 0,
                                             "delta": {"text": f" token{i:04d} of the answer"},
                                             "p": "abcdefghijklmn"[: 4 + i % 10]}))
    events += [
        ("contentBlockStop", {"contentBlockIndex": 0, "p": "ab"}),
        ("messageStop", {"stopReason": "end_turn", "p": "abcdef"}),
        ("metadata", {"usage": {"inputTokens": 25, "outputTokens": frames - 4,
                                "totalTokens": 25 + frames - 4},
                      "metrics": {"latencyMs": 412}, "p": "abc"}),
    ]
    body = b"".join(encode_event(t, json.dumps(p, separators=(",", ":")).encode())
                    for t, p in events)
    if len(decode_frames(body)) != frames:  # CRCs and lengths checked by the strict decoder
        raise SystemExit("bench: the generated event stream does not decode")
    return body


def chat_body(size: int) -> bytes:
    """A ChatCompletions request of exactly `size` bytes with an allowed `model`."""
    doc = {"model": CHAT_MODEL, "max_tokens": 256, "messages": [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": ""}]}
    empty = len(json.dumps(doc, separators=(",", ":")).encode())
    if size < empty:
        raise SystemExit(f"--body-bytes: at least {empty}")
    words = ("lorem ipsum dolor sit amet consectetur adipiscing elit " * (size // 50 + 1))
    doc["messages"][1]["content"] = words[: size - empty]
    body = json.dumps(doc, separators=(",", ":")).encode()
    assert len(body) == size
    return body


@dataclass
class Request:
    """What one group sends, and what its upstream answers."""
    method: str
    path: str
    body: bytes
    reply_type: str
    reply: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def headers_for(self, setup: str, token: str) -> dict[str, str]:
        h = {"Host": HOST, "content-type": "application/json", **self.headers}
        if setup in ("guard+identity", "native"):
            h[IDENTITY_HEADER] = token
        return h


def make_requests(frames: int, body_bytes: int) -> dict[str, Request]:
    converse_reply = json.dumps({
        "output": {"message": {"role": "assistant", "content": [{"text": "bench"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
        "metrics": {"latencyMs": 12}}).encode()
    chat_reply = json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "model": CHAT_MODEL,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "bench"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}).encode()
    return {
        "request": Request("POST", CONVERSE, b"{}", "application/json", converse_reply),
        "stream": Request("POST", CONVERSE_STREAM, b"{}", "application/vnd.amazon.eventstream",
                          stream_body(frames)),
        "body": Request("POST", CHAT, chat_body(body_bytes), "application/json", chat_reply),
    }


# ---------------------------------------------------------------------------- Envoy configs

def upstream_config(listener: int, admin: int, requests: dict[str, Request]) -> dict:
    """The stand-in for Bedrock: TLS with the test CA's server certificate (what the demo
    cluster verifies), one exact-path route per group answering with `direct_response`, 404
    for anything else. A buffer filter reads each request body whole before the answer, so an
    answer never races the request it answers and keep-alive connections stay open."""
    routes = [{
        "match": {"path": r.path},
        "direct_response": {"status": 200, "body": {
            "inline_bytes": base64.b64encode(r.reply).decode()}},
        "response_headers_to_add": [
            {"header": {"key": "content-type", "value": r.reply_type},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
            {"header": {"key": "x-amzn-requestid", "value": "00000000-bench"},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
    } for r in requests.values()]
    routes.append({"match": {"prefix": "/"}, "direct_response": {"status": 404}})
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager."
                 "v3.HttpConnectionManager",
        "stat_prefix": "upstream", "codec_type": "AUTO", "normalize_path": False,
        "route_config": {"name": "bench", "max_direct_response_body_size_bytes": 1 << 20,
                         "virtual_hosts": [{"name": "all", "domains": ["*"],
                                            "routes": routes}]},
        "http_filters": [
            {"name": "envoy.filters.http.buffer", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": 1 << 21}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    tls = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                     "DownstreamTlsContext",
            "common_tls_context": {"tls_certificates": [{
                "certificate_chain": {"filename": str(PKI / "server.pem")},
                "private_key": {"filename": str(PKI / "server-key.pem")}}]}},
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {"listeners": [{
            "name": "upstream",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": listener}},
            "per_connection_buffer_limit_bytes": 1 << 21,
            "filter_chains": [{"transport_socket": tls, "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": hcm}]}],
        }]},
    }


def _hcm(cfg: dict) -> dict:
    return cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]


def under_test_config(setup: str, listener: int, admin: int, upstream: int, work: Path,
                      guard_wasm: Path, floor_wasm: Path, jwks: dict, access_log: Path) -> dict:
    """envoy/demo.yaml, ports and CA rewritten as the end-to-end tests do (render_config), the
    access log to a file, and the HTTP filters of `setup`. Upstream: 127.0.0.1, over TLS."""
    bundle = json.loads((ROOT / "policies" / "examples" / "demo.json").read_text())
    if setup == "guard+identity":
        bundle["identity"] = {"providers": [{
            "name": "bench", "issuer": ISSUER, "audiences": ["bedrock-egress"],
            "algorithms": ["RS256"], "jwks": jwks}]}
        bundle["rules"].insert(0, {
            "id": "ml-group", "effect": "allow", "principals": {"groups": ["ml"]},
            "models": ["anthropic.claude-3-5-sonnet-20240620-v1:0"], "operations": ["Converse"]})
    path = render_config(listener, admin, upstream, PKI, guard_wasm, bundle, out_dir=work)
    cfg = yaml.safe_load(path.read_text())
    path.unlink()
    hcm = _hcm(cfg)
    if not hcm.get("access_log"):
        raise SystemExit("envoy/demo.yaml: no access_log to keep")
    for entry in hcm["access_log"]:
        log_format = entry["typed_config"].get("log_format")
        entry["name"] = "envoy.access_loggers.file"
        entry["typed_config"] = {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(access_log), **({"log_format": log_format} if log_format else {})}
    filters = hcm["http_filters"]
    if filters[0]["name"] != "bedrock_guard" or filters[-1]["name"] != "envoy.filters.http.router":
        raise SystemExit("envoy/demo.yaml: expected http_filters [bedrock_guard, router]")
    if setup == "none":
        del filters[0]
    elif setup == "floor":
        plugin = wasm_plugin_config(cfg)
        filters[0]["name"] = "bench_floor"
        plugin["name"] = plugin["root_id"] = plugin["vm_config"]["vm_id"] = "bench_floor"
        plugin["vm_config"]["code"]["local"]["filename"] = str(floor_wasm)
        plugin.pop("configuration", None)
    elif setup == "native":
        filters[0] = {
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3."
                         "JwtAuthentication",
                "providers": {"bench": {
                    "issuer": ISSUER, "audiences": ["bedrock-egress"],
                    "local_jwks": {"inline_string": json.dumps(jwks)},
                    "from_headers": [{"name": IDENTITY_HEADER}],
                    "payload_in_metadata": "jwt_payload",
                    "jwt_cache_config": {"jwt_cache_size": 100},
                }},
                "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
            },
        }
        filters.insert(1, {
            "name": "envoy.filters.http.rbac",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
                "rules": {"action": "ALLOW", "policies": {"ml": {
                    "permissions": [{"or_rules": {"rules": [
                        {"url_path": {"path": {"exact": CONVERSE}}},
                        {"url_path": {"path": {"exact":
                                               "/model/amazon.titan-text-express-v1/converse"}}},
                    ]}}],
                    "principals": [{"metadata": {
                        "filter": "envoy.filters.http.jwt_authn",
                        "path": [{"key": "jwt_payload"}, {"key": "groups"}],
                        "value": {"list_match": {"one_of": {"string_match": {"exact": "ml"}}}},
                    }}],
                }}},
            },
        })
    elif setup not in ("guard", "guard+identity", "candidate"):
        raise ValueError(setup)
    return cfg


# ---------------------------------------------------------------------------- processes

_base_ids = iter(range(1000))


# Idle resident memory is read this long after Envoy is ready: its allocator returns free memory
# every second (envoy/overload/memory_allocator_manager.yaml, in demo.yaml), so every set-up is
# measured after the same release.
IDLE_SETTLE_SECONDS = 3.0


def rss_kib(pid: int) -> int:
    """VmRSS of `pid` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit(f"no VmRSS for {pid}")


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds every core of the machine spent busy so far (/proc/stat)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_quiet(ctx: dict, busy_below: float = 0.3, step: float = 1.0):
    """Wait (from a budget shared by the whole run) until the machine is nearly idle: less than
    `busy_below` of one core busy over `step` seconds, with our own processes idle. Colleagues'
    builds and test runs on this machine would otherwise land in the measured windows."""
    while ctx["quiet_budget"] > 0:
        before, t0 = machine_busy(), time.monotonic()
        time.sleep(step)
        if (machine_busy() - before) / (time.monotonic() - t0) < busy_below:
            return
        ctx["quiet_budget"] -= step
        ctx["quiet_waited"] += step


class Envoy:
    """One Envoy with a single worker (`--concurrency 1`), its output in `log`."""

    def __init__(self, config: dict, work: Path, name: str, log_level: str = "warn",
                 cpus: set[int] | None = None):
        """`cpus`: the cores this Envoy may run on (default: this process's, inherited)."""
        self.name = name
        self.config_path = work / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log = work / f"{name}.log"
        self.admin = config["admin"]["address"]["socket_address"]["port_value"]
        self.port = config["static_resources"]["listeners"][0]["address"]["socket_address"][
            "port_value"]
        base_id = (os.getpid() % 20000) * 50 + next(_base_ids) % 50
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(envoy_binary()), "-c", str(self.config_path), "--concurrency", "1",
                 "--log-level", log_level, "--base-id", str(base_id)],
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"envoy {name} exited; see {self.log}\n{self.tail()}")
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready",
                                          timeout=1).status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit(f"envoy {name} not ready; see {self.log}\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def cpu_seconds(self) -> float:
        return cpu_of(self.proc.pid)

    def stats(self, regex: str) -> dict[str, int]:
        body = urllib.request.urlopen(
            f"http://127.0.0.1:{self.admin}/stats?filter={regex}", timeout=5).read().decode()
        out = {}
        for line in body.splitlines():
            name, sep, value = line.partition(": ")
            if sep and value.strip().isdigit():
                out[name] = int(value)
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------- load

@dataclass
class WrkResult:
    rps: float
    requests: int
    cpu_seconds: float  # wrk's own user + system time


def run_wrk(port: int, seconds: int, req: Request, headers: dict[str, str], connections: int,
            work: Path) -> WrkResult:
    body_file = work / "wrk-body.bin"
    body_file.write_bytes(req.body)
    lines = [f'wrk.method = "{req.method}"', f'wrk.path = "{req.path}"',
             f'local f = assert(io.open("{body_file}", "rb"))', "wrk.body = f:read(\"*a\")",
             "f:close()"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script = work / "wrk.lua"
    script.write_text("\n".join(lines) + "\n")
    out_path = work / "wrk.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
             f"http://127.0.0.1:{port}/"], stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    out = out_path.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"bench requests were refused ({non2xx.group(1)} non-2xx): fix the "
                         f"set-up\n{out}")
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        raise SystemExit(f"bench requests failed (socket errors: {errors.group(1)})\n{out}")
    total = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return WrkResult(rps, total, usage.ru_utime + usage.ru_stime)


# ---------------------------------------------------------------------------- one group

@dataclass
class Window:
    cycle: int  # the round it belongs to; -1 for an extra window measured at the end
    rps: float
    requests: int
    cpu_us: float
    other_cpu_pct: float  # the machine's busy CPU not used by our processes, % of one core


def check_proxied(envoy: Envoy, served: int, what: str) -> dict[str, int]:
    """Every request was proxied: the demo cluster answered at least as many 2xx."""
    st = envoy.stats(r"^cluster\.bedrock_runtime_us_east_1\.upstream_(rq_2xx|rq_total|cx_total)$")
    ok = st.get("cluster.bedrock_runtime_us_east_1.upstream_rq_2xx", 0)
    if ok < served:
        raise SystemExit(f"{what}: {served} requests served but only {ok} proxied with a 2xx "
                         f"(stats {st}): the upstream is not what answered")
    return st


def check_access_log(path: Path, setup: str, group: str, served: int):
    """The access log has a line per request; for the guard, an allowed, proxied record from
    127.0.0.1 (and for the stream the token counts its event-stream reader found)."""
    lines = path.read_text().splitlines() if path.exists() else []
    if len(lines) < served:
        raise SystemExit(f"{group}/{setup}: {len(lines)} access-log lines for {served} requests")
    if not setup.startswith("guard"):
        return
    good = 0
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if (rec.get("decision") == "allow" and rec.get("upstreamStatus") == 200
                and str(rec.get("upstreamAddress", "")).startswith("127.0.0.1:")
                and (group != "stream" or rec.get("outputTokens") is not None)):
            good += 1
    if good < served:
        raise SystemExit(f"{group}/{setup}: only {good} of {len(lines)} audit records show an "
                         f"allowed, proxied request (first: {lines[0][:300]})")


class UnderTest:
    """One set-up's Envoy under test, up (and idle between its windows) for its whole group, on
    the core reserved for it. `served` counts every request it answered, for the checks."""

    def __init__(self, group: str, setup: str, req: Request, args, ctx: dict,
                 module: Path | None = None, log_level: str = "warn"):
        self.group, self.setup, self.req = group, setup, req
        self.work: Path = ctx["work"]
        name = f"{group}-{setup.replace('+', '_')}"
        self.access_log = self.work / f"{name}.access.log"
        self.access_log.unlink(missing_ok=True)
        if module is None and setup == "candidate":
            module = args.candidate
        cfg = under_test_config(setup, free_port(), free_port(), ctx["upstream"].port, self.work,
                                module or args.guard, args.floor, ctx["jwks"], self.access_log)
        self.envoy = Envoy(cfg, self.work, name, log_level=log_level,
                           cpus=ctx["under_test_cpus"])
        # Resident memory once the VMs are up and before any request: what every idle sidecar
        # pays for this set-up (a short settle so start-up allocations are done).
        time.sleep(IDLE_SETTLE_SECONDS)
        self.idle_rss_kib = rss_kib(self.envoy.proc.pid)
        self.headers = req.headers_for(setup, ctx["token"])
        self.served = 0

    def load(self, seconds: int, connections: int) -> WrkResult:
        r = run_wrk(self.envoy.port, seconds, self.req, self.headers, connections, self.work)
        self.served += r.requests
        return r

    def window(self, cycle: int, args, ctx: dict) -> Window:
        up = ctx["upstream"]
        before = (self.envoy.cpu_seconds(), up.cpu_seconds(), machine_busy(), time.monotonic())
        res = self.load(args.seconds, args.connections)
        after = (self.envoy.cpu_seconds(), up.cpu_seconds(), machine_busy(), time.monotonic())
        ours = (after[0] - before[0]) + (after[1] - before[1]) + res.cpu_seconds
        other = max(0.0, (after[2] - before[2]) - ours) / (after[3] - before[3]) * 100
        return Window(cycle, res.rps, res.requests, (after[0] - before[0]) / res.requests * 1e6,
                      other)

    def client(self) -> "Client":
        return Client(self, _raw_request(self.req, self.headers))

    def finish(self) -> dict[str, int]:
        """Check that every request was proxied and logged; stop Envoy."""
        what = f"{self.group}/{self.setup}"
        try:
            st = check_proxied(self.envoy, self.served, what)
        finally:
            self.envoy.stop()
        check_access_log(self.access_log, self.setup, self.group, self.served)
        self.access_log.unlink(missing_ok=True)
        return st


def run_group(group: str, req: Request, args, ctx: dict) -> tuple[dict, dict | None, dict]:
    """Every set-up of `group` up at once; after a warm-up each, `args.rounds` rounds of one
    window per set-up (the order rotating), so slow spells of the machine spread over all of
    them; then the time to first byte on the same Envoys. Returns the windows, the TTFB and
    each set-up's upstream counters."""
    setups = GROUPS[group]
    windows: dict[str, list[Window]] = {s: [] for s in setups}
    uts: dict[str, UnderTest] = {}
    ttfb = None
    wait_quiet(ctx)
    try:
        for s in setups:
            uts[s] = UnderTest(group, s, req, args, ctx)
            ctx.setdefault("idle_rss_kib", {}).setdefault(group, {})[s] = uts[s].idle_rss_kib
        for s in setups:  # V8 tiers the hot code up, connection pools fill, caches warm
            uts[s].load(WARMUP_SECONDS, args.connections)

        def one(label: str, cycle: int, s: str):
            w = uts[s].window(cycle, args, ctx)
            windows[s].append(w)
            print(f"{label}: {group:7s} {s:16s} {w.rps:8.0f} req/s {w.cpu_us:7.1f} us "
                  f"CPU/request   (other CPU {w.other_cpu_pct:4.1f}%)", flush=True)
            if w.other_cpu_pct > DISTURBED_PCT:
                wait_quiet(ctx)

        for c in range(args.rounds):
            for j in range(len(setups)):
                one(f"round {c + 1}", c, setups[(c + j) % len(setups)])
        # Set-ups whose every window was disturbed by other processes: once more each, at the
        # end of the group, within the run's retry allowance.
        for s in setups:
            if ctx["retries_left"] > 0 and min(w.other_cpu_pct for w in windows[s]) > \
                    DISTURBED_PCT:
                ctx["retries_left"] -= 1
                one("extra", -1, s)
        if group in TTFB_GROUPS and args.ttfb_samples > 0:
            print(f"time to first byte ({group}): {args.ttfb_samples} samples per set-up",
                  flush=True)
            ttfb = measure_ttfb(group, {s: uts[s] for s in TTFB_SETUPS}, args, ctx)
            if ttfb["other_cpu_pct"] > DISTURBED_PCT and ctx["retries_left"] > 0:
                ctx["retries_left"] -= 1
                print(f"  (other processes used {ttfb['other_cpu_pct']:.0f}% of a core: "
                      "once more)", flush=True)
                wait_quiet(ctx)
                again = measure_ttfb(group, {s: uts[s] for s in TTFB_SETUPS}, args, ctx)
                if again["other_cpu_pct"] < ttfb["other_cpu_pct"]:
                    ttfb = again
        counters = {}
        for s in setups:
            counters[s] = uts.pop(s).finish()
    finally:
        for ut in uts.values():
            ut.envoy.stop()
    return windows, ttfb, counters


# ---------------------------------------------------------------------------- time to first byte

def _raw_request(req: Request, headers: dict[str, str]) -> bytes:
    head = [f"{req.method} {req.path} HTTP/1.1"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head += [f"content-length: {len(req.body)}", "", ""]
    return "\r\n".join(head).encode() + req.body


class Client:
    """A keep-alive HTTP/1.1 connection that times each request's first response byte."""

    def __init__(self, ut: UnderTest, raw: bytes):
        self.ut = ut
        self.sock = socket.create_connection(("127.0.0.1", ut.envoy.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.raw = raw

    def once(self) -> tuple[int, int]:
        """Nanoseconds from sending the request to the first byte of its answer, and to the
        last."""
        self.ut.served += 1
        t0 = time.perf_counter_ns()
        self.sock.sendall(self.raw)
        data = self.sock.recv(65536)
        t1 = time.perf_counter_ns()
        while b"\r\n\r\n" not in data:
            more = self.sock.recv(65536)
            if not more:
                raise SystemExit("ttfb: connection closed mid-headers")
            data += more
        head, _, rest = data.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        if not status.startswith(b"2") or m is None:
            raise SystemExit(f"ttfb: unexpected answer {head[:300]!r}")
        left = int(m.group(1)) - len(rest)
        while left > 0:
            more = self.sock.recv(min(left, 1 << 20))
            if not more:
                raise SystemExit("ttfb: connection closed mid-body")
            left -= len(more)
        return t1 - t0, time.perf_counter_ns() - t0

    def close(self):
        self.sock.close()


def percentile(sorted_ns: list[int], p: float) -> float:
    """Nearest-rank percentile, in microseconds."""
    k = max(0, min(len(sorted_ns) - 1, math.ceil(p / 100 * len(sorted_ns)) - 1))
    return sorted_ns[k] / 1000


def _percentiles(ns: list[int]) -> dict:
    ns = sorted(ns)
    return {"p50_us": round(percentile(ns, 50), 1), "p90_us": round(percentile(ns, 90), 1),
            "p99_us": round(percentile(ns, 99), 1),
            "mean_us": round(statistics.fmean(ns) / 1000, 1)}


def measure_ttfb(group: str, uts: dict[str, UnderTest], args, ctx: dict) -> dict:
    """One keep-alive connection to each set-up's Envoy; the requests interleave between
    set-ups (the order rotating), so a disturbance hits them all alike. The first set-up is the
    reference the others' added latency is taken against."""
    setups = list(uts)
    first: dict[str, list[int]] = {s: [] for s in setups}
    last: dict[str, list[int]] = {s: [] for s in setups}
    clients = {}

    def ours() -> float:
        t = os.times()
        return (t.user + t.system + ctx["upstream"].cpu_seconds()
                + sum(ut.envoy.cpu_seconds() for ut in uts.values()))

    try:
        for s in setups:
            clients[s] = uts[s].client()
        for _ in range(args.ttfb_warmup):
            for s in setups:
                clients[s].once()
        busy0, ours0, t0 = machine_busy(), ours(), time.monotonic()
        for i in range(args.ttfb_samples):
            for j in range(len(setups)):
                s = setups[(i + j) % len(setups)]
                a, b = clients[s].once()
                first[s].append(a)
                last[s].append(b)
        other = (max(0.0, (machine_busy() - busy0) - (ours() - ours0))
                 / (time.monotonic() - t0) * 100)
    finally:
        for c in clients.values():
            c.close()
    out: dict = {"group": group, "samples": args.ttfb_samples,
                 "other_cpu_pct": round(other, 1), "first_byte": {}, "last_byte": {}}
    for s in setups:
        out["first_byte"][s] = _percentiles(first[s])
        out["last_byte"][s] = _percentiles(last[s])
    for kind in ("first_byte", "last_byte"):
        base = out[kind][setups[0]]
        out[kind]["added_us"] = {
            s: {k: round(out[kind][s][f"{k}_us"] - base[f"{k}_us"], 1) for k in ("p50", "p99")}
            for s in setups[1:]}
    return out


# ---------------------------------------------------------------------------- trace hook

TRACE_MARK = "bedrock-guard trace:"
PROBE_MARK = "bedrock-guard probe:"


def run_trace(module: Path, group: str, setup: str, req: Request, args, ctx: dict,
              requests: int = 50) -> dict:
    """The bench-only cost breakdown: one set-up, with `module` in place of the guard (a build
    with the plugin's `bench-trace` feature) and Envoy at `--log-level info`; `requests`
    sequential requests; the `bedrock-guard trace:` lines of Envoy's log, in order (an empty
    list when the module logs none)."""
    ut = UnderTest(f"trace-{group}", setup, req, args, ctx, module=module, log_level="info")
    print(f"trace: {requests} requests to {group}/{setup} with {module}", flush=True)
    try:
        client = ut.client()
        try:
            for _ in range(requests):
                client.once()
        finally:
            client.close()
        time.sleep(0.2)
    finally:
        ut.envoy.stop()
    log = ut.envoy.log.read_text(errors="replace").splitlines()
    lines = [ln[ln.index(TRACE_MARK):] for ln in log if TRACE_MARK in ln]
    # The VM's probe lines: each kind of host call and the guard's own computations, timed
    # warm (plugin/src/trace.rs), merged.
    warm: dict = {}
    for ln in log:
        if PROBE_MARK in ln:
            warm.update(json.loads(ln[ln.index(PROBE_MARK) + len(PROBE_MARK):]))
    return {"module": str(module), "bytes": module.stat().st_size, "group": group,
            "setup": setup, "requests": requests, "lines": lines, "warm_ns": warm or None}


# ---------------------------------------------------------------------------- report

def summarise(windows: dict[str, list[Window]], setups: list[str]) -> dict:
    """Per set-up: the best (lowest) CPU per request of its windows and the best requests/s,
    the median, and the cost above `none` and `floor` twice: from the best windows, and as the
    median over rounds of the difference between windows of the same round (paired)."""
    out = {}
    for s in setups:
        ws = windows[s]
        best = min(ws, key=lambda w: w.cpu_us)
        out[s] = {"rps": round(max(w.rps for w in ws)), "cpu_us": round(best.cpu_us, 2),
                  "median_cpu_us": round(statistics.median(w.cpu_us for w in ws), 2),
                  "other_cpu_pct_in_best": round(best.other_cpu_pct, 1),
                  "windows": [{"round": w.cycle + 1 if w.cycle >= 0 else "extra",
                               "rps": round(w.rps), "requests": w.requests,
                               "cpu_us": round(w.cpu_us, 2),
                               "other_cpu_pct": round(w.other_cpu_pct, 1)} for w in ws]}
    for ref in ("none", "floor"):
        if ref not in out:
            continue
        by_round = {w.cycle: w.cpu_us for w in windows[ref] if w.cycle >= 0}
        for s in setups:
            out[s][f"above_{ref}_us"] = round(out[s]["cpu_us"] - out[ref]["cpu_us"], 2)
            diffs = [w.cpu_us - by_round[w.cycle] for w in windows[s] if w.cycle in by_round]
            out[s][f"above_{ref}_paired_median_us"] = round(statistics.median(diffs), 2)
    return out


def print_group(title: str, summary: dict):
    none = summary["none"]
    print(f"\n{title}")
    print(f"  {'set-up':16s} {'req/s':>7s} {'CPU/request':>12s} {'median':>9s} {'vs none':>8s} "
          f"{'above none':>11s} {'above floor':>12s} {'(paired)':>10s} {'other CPU':>10s}")
    for s, v in summary.items():
        print(f"  {s:16s} {v['rps']:7d} {v['cpu_us']:9.1f} us {v['median_cpu_us']:6.1f} us "
              f"{v['cpu_us'] / none['cpu_us']:8.1%} {v['above_none_us']:+8.1f} us "
              f"{v['above_floor_us']:+9.1f} us {v['above_floor_paired_median_us']:+7.1f} us "
              f"{v['other_cpu_pct_in_best']:9.0f}%")


def envoy_version() -> str:
    out = subprocess.run([str(envoy_binary()), "--version"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"version: \S+?/(\S+)", out)
    return m.group(1) if m else out.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=3, help="measured window")
    ap.add_argument("--rounds", type=int, default=10,
                    help="interleaved rounds of one window per set-up")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--groups", default="request,stream,body",
                    help="comma-separated subset of request,stream,body")
    ap.add_argument("--frames", type=int, default=200, help="event-stream frames per stream answer")
    ap.add_argument("--body-bytes", type=int, default=64 * 1024, help="ChatCompletions body size")
    ap.add_argument("--ttfb-samples", type=int, default=3000,
                    help="time-to-first-byte samples per set-up (0: skip)")
    ap.add_argument("--ttfb-warmup", type=int, default=300)
    ap.add_argument("--guard", type=Path, default=GUARD_WASM)
    ap.add_argument("--floor", type=Path, default=FLOOR_WASM)
    ap.add_argument("--candidate", type=Path, metavar="MODULE",
                    help="add a `candidate` set-up to the request group: the guard's config with "
                         "MODULE (e.g. another build of the guard), measured side by side")
    ap.add_argument("--trace", type=Path, metavar="MODULE",
                    help="also run TRACE_SETUP with MODULE (a bench-trace build) at log level info "
                         "and keep its `bedrock-guard trace:` lines in results.json")
    ap.add_argument("--trace-setup", default="request/guard", help="GROUP/SET-UP for --trace")
    ap.add_argument("--trace-only", action="store_true", help="with --trace: measure nothing else")
    ap.add_argument("--retries", type=int, default=4,
                    help=f"after the rounds, set-ups whose every window had other processes using "
                         f"more than {DISTURBED_PCT}%% of a core are measured once more, at most "
                         f"this many in all (every window counts; the best is kept)")
    ap.add_argument("--quiet-budget", type=float, default=60,
                    help="seconds the whole run may spend waiting for a quiet machine before a "
                         "window (0: never wait)")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                    help="run the Envoy under test alone on the first core, the load generator "
                         "and the upstream on the others (default: on)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    groups = [g for g in args.groups.split(",") if g]
    if any(g not in GROUPS for g in groups):
        raise SystemExit(f"--groups: choose from {','.join(GROUPS)}")
    if args.trace_only:
        if not args.trace:
            raise SystemExit("--trace-only needs --trace MODULE")
        groups = []
    if args.candidate:
        GROUPS["request"].append("candidate")
    for m in (args.guard, args.floor, args.trace, args.candidate):
        if m is not None and not m.is_file():
            raise SystemExit(f"{m}: no such module (make build; the floor is built by make bench)")
    if envoy_binary() is None:
        raise SystemExit("no Envoy binary: set ENVOY or run `make setup`")
    tg, _, ts = args.trace_setup.partition("/")
    if tg not in GROUPS or ts not in GROUPS[tg]:
        raise SystemExit(f"--trace-setup {args.trace_setup}: not a GROUP/SET-UP")

    started = time.monotonic()
    # Pinning: the Envoy under test alone on one core, everything else (this script, wrk, the
    # upstream Envoy, which inherit this process's affinity) on the others, so the Envoy under
    # test is what saturates and the set-ups are measured in the same regime.
    under_test_cpus = None
    if args.pin:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2:
            raise SystemExit("--pin needs at least 2 cores (use --no-pin)")
        under_test_cpus = {cores[0]}
        os.sched_setaffinity(0, set(cores[1:]))
    token, jwks = make_token_and_jwks()
    requests = make_requests(args.frames, args.body_bytes)
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    up_listener, up_admin = free_port(), free_port()
    upstream = Envoy(upstream_config(up_listener, up_admin, requests), work, "upstream")
    ctx = {"work": work, "token": token, "jwks": jwks, "upstream": upstream,
           "quiet_budget": args.quiet_budget, "quiet_waited": 0.0,
           "under_test_cpus": under_test_cpus, "retries_left": args.retries}
    results: dict = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "envoy": envoy_version(),
        "machine": {"cpus": os.cpu_count(), "loadavg_at_start": list(os.getloadavg())},
        "modules": {"guard": {"path": str(args.guard), "bytes": args.guard.stat().st_size},
                    "floor": {"path": str(args.floor), "bytes": args.floor.stat().st_size},
                    **({"candidate": {"path": str(args.candidate),
                                      "bytes": args.candidate.stat().st_size}}
                       if args.candidate else {})},
        "method": {
            "seconds": args.seconds, "rounds": args.rounds, "warmup_seconds": WARMUP_SECONDS,
            "connections": args.connections, "load": "wrk -t1, keep-alive, HTTP/1.1",
            "envoy_under_test": "envoy/demo.yaml, --concurrency 1, access log to a file, TLS to "
                                "the upstream at 127.0.0.1; every set-up of a group up at once, "
                                "each warmed up, then rounds of one window per set-up",
            "pinned": (f"Envoys under test on core {sorted(under_test_cpus)}; wrk, the upstream "
                       f"and the TTFB client on {sorted(os.sched_getaffinity(0))}"
                       if under_test_cpus else None),
            "cpu": "user+sys of the Envoy under test over a window / requests wrk completed in it",
            "best": "lowest CPU per request of a set-up's windows; above_* from the best windows",
            "paired": "above_*_paired_median: median over rounds of (set-up - reference) for "
                      "windows of the same round",
            "other_cpu_pct": "busy CPU of the machine not used by the bench's Envoys, wrk or "
                             "client during a window, % of one core (disturbance indicator)"},
        "groups": {}, "ttfb": None, "trace": None,
    }
    print(f"bench: Envoy {results['envoy']}, guard {results['modules']['guard']['bytes']} bytes, "
          f"floor {results['modules']['floor']['bytes']} bytes; {args.rounds} rounds x "
          f"{args.seconds:g} s; work dir {work}", flush=True)
    try:
        windows: dict[str, dict[str, list[Window]]] = {}
        for g in groups:
            windows[g], ttfb, counters = run_group(g, requests[g], args, ctx)
            results["upstream_counters"] = {**results.get("upstream_counters", {}),
                                            **{f"{g}/{k}": v for k, v in counters.items()}}
            if ttfb is not None:
                results["ttfb"] = {**(results["ttfb"] or {}), g: ttfb}
        if args.trace:
            results["trace"] = run_trace(args.trace, tg, ts, requests[tg], args, ctx)
            print(f"trace: {len(results['trace']['lines'])} `{TRACE_MARK}` lines from "
                  f"{results['trace']['requests']} requests ({tg}/{ts}, {args.trace})")
            if results["trace"]["warm_ns"]:
                print("trace: timed warm, ns per call: " + ", ".join(
                    f"{k} {v}" for k, v in results["trace"]["warm_ns"].items()))
    finally:
        upstream.stop()

    titles = {"request": f"request: POST {CONVERSE} (allowed Converse)",
              "stream": f"stream: POST {CONVERSE_STREAM}, {args.frames} event-stream frames "
                        f"({len(requests['stream'].reply)} bytes)",
              "body": f"body: POST {CHAT}, {len(requests['body'].body)}-byte JSON body"}
    if groups:
        print(f"\n{args.rounds} rounds x {args.seconds} s per set-up: best requests/s; Envoy CPU "
              "per request, best and median window; what each set-up adds above no filter and "
              "above the floor module (from the best windows, and the median of same-round "
              "differences); other processes' CPU in the best window (% of a core)")
    for g in groups:
        summary = summarise(windows[g], GROUPS[g])
        entry = {"request": titles[g], "setups": summary}
        if g == "stream":
            f = args.frames
            entry["frames"] = f
            entry["reply_bytes"] = len(requests["stream"].reply)
            guard = summary["guard"]
            entry["per_frame_above_floor_us"] = round(guard["above_floor_us"] / f, 3)
            entry["per_frame_above_floor_paired_us"] = round(
                guard["above_floor_paired_median_us"] / f, 3)
            if "request" in groups:
                req_guard = results["groups"]["request"]["setups"]["guard"]
                entry["per_frame_marginal_us"] = round(
                    (guard["above_floor_us"] - req_guard["above_floor_us"]) / f, 3)
                entry["per_frame_marginal_paired_us"] = round(
                    (guard["above_floor_paired_median_us"]
                     - req_guard["above_floor_paired_median_us"]) / f, 3)
        rss = ctx.get("idle_rss_kib", {}).get(g, {})
        entry["idle_rss_kib"] = rss
        results["groups"][g] = entry
        print_group(titles[g], summary)
        if rss:
            print("  Envoy resident memory, idle after start (VmRSS): " + ", ".join(
                f"{s} {v / 1024:.1f} MiB" + (f" (floor {(v - rss['floor']) / 1024:+.1f})"
                                             if "floor" in rss and s != "floor" else "")
                for s, v in rss.items()))
        if g == "stream":
            print(f"  per frame above the floor, (guard - floor) / {args.frames}: "
                  f"{entry['per_frame_above_floor_us']:.3f} us "
                  f"(paired: {entry['per_frame_above_floor_paired_us']:.3f} us)")
            if "per_frame_marginal_us" in entry:
                print(f"  the same less the Converse request's own cost above the floor: "
                      f"{entry['per_frame_marginal_us']:.3f} us "
                      f"(paired: {entry['per_frame_marginal_paired_us']:.3f} us)")
    for g, t in (results["ttfb"] or {}).items():
        print(f"\ntime to first and to last response byte, {g} ({t['samples']} sequential "
              f"keep-alive requests per set-up, interleaved; other processes "
              f"{t['other_cpu_pct']:.0f}% of a core)")
        for s in t["first_byte"]:
            if s == "added_us":
                continue
            f, la = t["first_byte"][s], t["last_byte"][s]
            print(f"  {s:8s} first byte p50 {f['p50_us']:7.1f} us p99 {f['p99_us']:7.1f} us   "
                  f"last byte p50 {la['p50_us']:7.1f} us p99 {la['p99_us']:7.1f} us")
        for s, a in t["first_byte"]["added_us"].items():
            la = t["last_byte"]["added_us"][s]
            print(f"  added by {s:6s} first byte p50 {a['p50']:+6.1f} us p99 {a['p99']:+6.1f} us"
                  f"   last byte p50 {la['p50']:+6.1f} us p99 {la['p99']:+6.1f} us")
    disturbed = [(g, s, w.other_cpu_pct) for g in groups for s in GROUPS[g]
                 for w in windows[g][s] if w.other_cpu_pct > DISTURBED_PCT]
    if disturbed:
        print(f"\nnote: {len(disturbed)} measured windows had other processes using more than "
              f"{DISTURBED_PCT}% of a core (max {max(d[2] for d in disturbed):.0f}%); the "
              "table shows the other CPU of the windows it kept")
    results["disturbed_windows"] = len(disturbed)
    results["waited_for_quiet_seconds"] = ctx["quiet_waited"]
    results["retried_windows"] = args.retries - ctx["retries_left"]
    wall = results["wall_seconds"] = round(time.monotonic() - started, 1)
    if args.trace_only and args.out.is_file():
        # Keep the measurements of the last full run; only the trace is new.
        previous = json.loads(args.out.read_text())
        previous["trace"] = results["trace"]
        results = previous
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} "
          f"({wall:.0f} s)")


if __name__ == "__main__":
    main()
