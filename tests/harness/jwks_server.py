"""A local JWKS endpoint standing in for an identity provider, and the Envoy cluster that points
the filter's remote JWKS fetches at it.

    server = JwksServer().start()                  # 127.0.0.1, an ephemeral port, plain HTTP
    server.set_keys([key_a.jwk()])                 # what GET <path> serves from now on
    server.mode = "error"                          # 500 / "garbage" (200, not a JWKS) / "ok"
                                                   # or a fault mode (FAULT_MODES, below)
    server.fetches(since=t)                        # requests seen (time, path, authority, mode)
    server.stop()                                  # connections refused from now on

    add_static_cluster(config_path, "idp_jwks", server.port)   # post-process render_config's YAML

Every response closes its connection (HTTP/1.0), so a stopped server really is unreachable: no
pooled keep-alive connection outlives it in Envoy.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_PATH = "/.well-known/jwks.json"
# Fault modes (issue 14): what a broken identity provider can answer. Each one that carries a
# body carries the key set `set_keys` published (or bytes derived from it), so a test can tell
# whether the filter installed anything from such an answer.
FAULT_MODES = {
    "slow": "200 with the key set, sent after `delay` seconds (beyond the fetch timeout)",
    "html": "200 text/html: a login or error page",
    "not_json": "200 application/json whose body is not JSON at all",
    "bare_array": "200 JSON: the keys as a bare array, no {\"keys\": ...} object",
    "keys_object": "200 JSON: {\"keys\": {kid: jwk}}, an object where the array belongs",
    "error_with_keys": "500 whose body is the key set (the status alone must refuse it)",
    "truncated": "200 with a Content-Length 64 bytes longer than the key set it sends, then "
                 "the connection closes (what arrived is a complete JSON document)",
    "oversize": "200 with the key set padded past MAX_JWKS_BYTES (an extra member)",
    "empty": "200 application/json with an empty body",
    "symmetric_key": "200 JSON: the key set plus a `kty: oct` shared secret (the whole set is "
                     "refused, not just that entry)",
    "redirect": "302 to another path, the key set as its body (fetches follow no redirect)",
}
MODES = ("ok", "error", "garbage", *FAULT_MODES)
# policies/src/identity/jwks.rs: the largest JWKS document the filter accepts.
MAX_JWKS_BYTES = 256 * 1024


@dataclass(frozen=True)
class Fetch:
    at: float  # time.monotonic() when the request arrived
    wall: float  # time.time() at the same moment
    path: str
    authority: str | None
    mode: str  # what was served: ok / error / garbage / not_found


class JwksServer:
    def __init__(self, path: str = DEFAULT_PATH, host: str = "127.0.0.1", port: int = 0):
        self.path = path
        self.host = host
        self._port = port
        self._lock = threading.Lock()
        self._doc = json.dumps({"keys": []}).encode()
        self._fetches: list[Fetch] = []
        self._mode = "ok"
        self.delay = 0.0  # seconds the "slow" mode waits before answering
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "JwksServer":
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):  # noqa: N802 (http.server API)
                owner._serve(self)

            def log_message(self, *args):  # keep pytest output clean
                pass

        self._server = http.server.ThreadingHTTPServer((self.host, self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="jwks-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: from now on connections to the port are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return self._port

    def __enter__(self) -> "JwksServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- content ---------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        with self._lock:
            self._mode = mode

    def set_keys(self, jwks: list[dict]) -> None:
        with self._lock:
            self._doc = json.dumps({"keys": jwks}).encode()

    def fetches(self, since: float = 0.0, mode: str | None = None) -> list[Fetch]:
        with self._lock:
            return [f for f in self._fetches
                    if f.at >= since and (mode is None or f.mode == mode)]

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        with self._lock:
            mode = self._mode if handler.path == self.path else "not_found"
            doc = self._doc
            self._fetches.append(Fetch(time.monotonic(), time.time(), handler.path,
                                       handler.headers.get("Host"), mode))
        declared = None  # Content-Length, when it is not the body's length
        if mode == "ok":
            status, ctype, body = 200, "application/json", doc
        elif mode in FAULT_MODES:
            status, ctype, body, declared = self._fault(mode, doc)
        elif mode == "garbage":
            # A 200 that is not a key set: JSON-ish bytes cut short.
            status, ctype, body = 200, "application/json", b'{"keys": [{"kty": "RSA", "n": '
        elif mode == "error":
            status, ctype, body = 500, "text/plain", b"internal error"
        else:
            status, ctype, body = 404, "text/plain", b"not found"
        try:
            handler.send_response(status)
            if status == 302:
                handler.send_header("Location", self.path + ".moved")
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(body) if declared is None else declared))
            handler.end_headers()
            handler.wfile.write(body)
            handler.wfile.flush()
        except OSError:
            pass  # the client gave up first (a fetch timeout): nothing to answer any more

    def _fault(self, mode: str, doc: bytes) -> tuple[int, str, bytes, int | None]:
        """(status, content type, body, declared Content-Length or None) of a fault mode."""
        keys = json.loads(doc)["keys"]
        if mode == "slow":
            time.sleep(self.delay)
            return 200, "application/json", doc, None
        if mode == "html":
            return 200, "text/html", (b"<!DOCTYPE html><html><head><title>Sign in</title>"
                                      b"</head><body>Session expired</body></html>"), None
        if mode == "not_json":
            return 200, "application/json", b"keys: [rot-b]\x00\xff not json", None
        if mode == "bare_array":
            return 200, "application/json", json.dumps(keys).encode(), None
        if mode == "keys_object":
            return 200, "application/json", json.dumps(
                {"keys": {k.get("kid", str(i)): k for i, k in enumerate(keys)}}).encode(), None
        if mode == "error_with_keys":
            return 500, "application/json", doc, None
        if mode == "empty":
            return 200, "application/json", b"", None
        if mode == "symmetric_key":
            secret = {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNoYXJlZC13aXRoLWV2ZXJ5b25l"}
            return 200, "application/json", json.dumps({"keys": keys + [secret]}).encode(), None
        if mode == "redirect":
            return 302, "application/json", doc, None
        if mode == "truncated":
            return 200, "application/json", doc, len(doc) + 64
        # oversize: the key set plus an unknown member that takes it past the bound
        pad = "A" * (MAX_JWKS_BYTES + 1024)
        return 200, "application/json", json.dumps({"keys": keys, "padding": pad}).encode(), None


def add_static_cluster(config_path: Path, name: str, port: int, host: str = "127.0.0.1") -> None:
    """Add a plain-HTTP STATIC cluster `name` -> host:port to an Envoy config file written by
    `render_config` (rewritten in place)."""
    path = Path(config_path)
    cfg = yaml.safe_load(path.read_text())
    clusters = cfg["static_resources"]["clusters"]
    if any(c["name"] == name for c in clusters):
        raise ValueError(f"cluster {name} already in {path}")
    clusters.append({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": host, "port_value": port}}}}]}],
        },
    })
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
