"""A mock Amazon EventBridge `PutEvents` endpoint: HTTPS on loopback with the test PKI (like
mock_bedrock.py), verifying each call's SigV4 signature with service `events`
(`sigv4.verify`), that `host` and `x-amz-target` are among the signed headers, and the body
shape (`Entries`, 1 to 10 of them, each with `Source`, `DetailType`, `Detail` a JSON string
holding an object, and `EventBusName`). Calls that fail a check are recorded with the reason
and answered 400/403, as the service would.

Answers can be scripted per call (`script`, consumed in order; then `default`):
  ("ok",)                          every entry accepted
  ("partial", {index: ErrorCode})  FailedEntryCount > 0, those entries carry the ErrorCode
  ("status", code, error_type)     the whole call fails, e.g. (503, "ServiceUnavailable"),
                                   (400, "ThrottlingException"), (400, "ValidationException")
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import sigv4
from .mock_bedrock import _Server
from .pki import SERVER_FILE, SERVER_KEY_FILE, ensure_pki

import http.server

TARGET = "AWSEvents.PutEvents"
CONTENT_TYPE = "application/x-amz-json-1.1"
ENTRY_KEYS = {"Source", "DetailType", "Detail", "EventBusName"}


@dataclass
class PutEventsCall:
    host: str
    headers: list[tuple[str, str]]
    body: bytes
    signature_ok: bool
    signature_error: str | None
    signed_headers: tuple[str, ...]
    problems: list[str] = field(default_factory=list)
    entries: list[dict] = field(default_factory=list)
    status: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # entry index -> ErrorCode answered
    at: float = 0.0  # time.monotonic() when the call arrived

    def details(self) -> list[dict]:
        """Each entry's Detail, parsed."""
        return [json.loads(e["Detail"]) for e in self.entries]


class MockEventBridge:
    def __init__(self, host: str = "127.0.0.1", pki_dir: str | Path = ".build/pki",
                 region: str = "us-east-1", expected_host: str = "events.us-east-1.amazonaws.com"):
        self.host = host
        self.pki_dir = ensure_pki(pki_dir)
        self.region = region
        self.expected_host = expected_host
        self.script: list[tuple] = []
        self.default: tuple = ("ok",)
        self._lock = threading.Lock()
        self._calls: list[PutEventsCall] = []
        self._server: _Server | None = None

    def start(self) -> "MockEventBridge":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.pki_dir / SERVER_FILE, self.pki_dir / SERVER_KEY_FILE)
        ctx.set_alpn_protocols(["http/1.1"])
        self._server = _Server((self.host, 0), _Handler, self, ctx)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="mock-eventbridge", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "mock not started"
        return self._server.server_address[1]

    @property
    def calls(self) -> list[PutEventsCall]:
        with self._lock:
            return list(self._calls)

    def reset(self, *script: tuple, default: tuple = ("ok",)) -> None:
        with self._lock:
            self._calls.clear()
            self.script = list(script)
            self.default = default

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.calls):
                return True
            time.sleep(0.05)
        return predicate(self.calls)

    # -- one call ----------------------------------------------------------------------------

    def _check(self, method: str, raw_target: bytes, headers: list[tuple[str, str]],
               body: bytes) -> PutEventsCall:
        lower = {n.lower(): v for n, v in headers}
        check = sigv4.verify(method, raw_target, headers, body, expected_service="events",
                             expected_region=self.region)
        call = PutEventsCall(host=lower.get("host", ""), headers=headers, body=body,
                             signature_ok=check.ok, signature_error=check.error,
                             signed_headers=check.signed_headers, at=time.monotonic())
        if method != "POST" or raw_target != b"/":
            call.problems.append(f"{method} {raw_target!r}: PutEvents is POST /")
        if call.host != self.expected_host:
            call.problems.append(f"host {call.host!r}, expected {self.expected_host!r}")
        if lower.get("x-amz-target") != TARGET:
            call.problems.append(f"x-amz-target {lower.get('x-amz-target')!r}")
        if lower.get("content-type") != CONTENT_TYPE:
            call.problems.append(f"content-type {lower.get('content-type')!r}")
        if check.ok and not {"host", "x-amz-target"} <= set(check.signed_headers):
            call.problems.append(f"host/x-amz-target not signed: {check.signed_headers}")
        try:
            doc = json.loads(body)
            entries = doc["Entries"]
            assert set(doc) == {"Entries"}, f"unexpected keys {sorted(doc)}"
            assert isinstance(entries, list) and 1 <= len(entries) <= 10, \
                f"{len(entries)} entries"
            for e in entries:
                assert set(e) == ENTRY_KEYS, f"entry keys {sorted(e)}"
                assert all(isinstance(e[k], str) for k in ENTRY_KEYS), "non-string field"
                assert isinstance(json.loads(e["Detail"]), dict), "Detail is not a JSON object"
            call.entries = entries
        except (ValueError, KeyError, TypeError, AssertionError) as err:
            call.problems.append(f"body: {err!r}")
        return call

    def _answer(self, call: PutEventsCall) -> tuple[int, dict]:
        if not call.signature_ok:
            return 403, {"__type": "InvalidSignatureException",
                         "message": call.signature_error or "bad signature"}
        if call.problems:
            return 400, {"__type": "ValidationException", "message": "; ".join(call.problems)}
        with self._lock:
            step = self.script.pop(0) if self.script else self.default
        if step[0] == "status":
            return step[1], {"__type": step[2], "message": "scripted"}
        failed = step[1] if step[0] == "partial" else {}
        call.failed = {i: code for i, code in failed.items() if i < len(call.entries)}
        results = [{"ErrorCode": call.failed[i], "ErrorMessage": "scripted"} if i in call.failed
                   else {"EventId": str(uuid.uuid4())} for i in range(len(call.entries))]
        return 200, {"FailedEntryCount": len(call.failed), "Entries": results}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        pass

    def do_POST(self):  # noqa: N802 (http.server naming)
        self._dispatch()

    do_GET = do_PUT = do_POST

    def _dispatch(self) -> None:
        mock: MockEventBridge = self.server.mock
        parts = self.raw_requestline.rstrip(b"\r\n").split(b" ")
        raw_target = parts[1] if len(parts) == 3 else b""
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        call = mock._check(self.command, raw_target, list(self.headers.items()), body)
        status, answer = mock._answer(call)
        call.status = status
        with mock._lock:
            mock._calls.append(call)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
