"""A mock Amazon Bedrock runtime upstream that speaks the real wire formats.

It stands where the Bedrock VPC endpoint would: HTTPS (TLS >= 1.2, certificate from the test CA),
every request's SigV4 signature verified against fake test credentials, every request recorded
byte-exactly so tests can prove what the proxy forwarded (or that it forwarded nothing).

In-process (pytest):
    mock = MockBedrock(pki_dir=".build/pki").start()
    ...; mock.requests; mock.reset(); mock.stop()

Command line (for `make run`):
    python -m tests.harness.mock_bedrock --host 127.0.0.1 --port 8443 --pki .build/pki
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import hashlib
import http.server
import json
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import unquote_to_bytes

from . import eventstream, sigv4
from .pki import SERVER_FILE, SERVER_KEY_FILE, ensure_pki

IDENTITY_HEADER = "x-workload-identity"
REGION = "us-east-1"
ACCOUNT = "123456789012"
ASYNC_INVOCATION_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:async-invoke/abcdefghijkl"
UNKNOWN_OPERATION_BODY = (
    b'{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException"},"Version":"1.0"}'
)
# The assistant's answer, streamed in these pieces. Fixed so tests can compare it end to end.
REPLY_PIECES = ("Hello from ", "the mock ", "Bedrock runtime.")
REPLY_TEXT = "".join(REPLY_PIECES)
MAX_BODY = 64 * 1024 * 1024

MODEL_OPERATIONS = {
    "invoke": "InvokeModel",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
    "converse": "Converse",
    "converse-stream": "ConverseStream",
    "count-tokens": "CountTokens",
}


def usage_for(body_len: int) -> tuple[int, int]:
    """Deterministic (input, output) token counts for a request body of this length."""
    return 1 + body_len // 4, 5 + body_len % 11


def cache_tokens_for(body_len: int) -> dict[str, int]:
    """Deterministic prompt-cache counts of a Converse request with a `cachePoint`."""
    return {"cacheReadInputTokens": 100 + body_len % 7, "cacheWriteInputTokens": 3}


@dataclass
class RecordedRequest:
    method: str
    raw_target: bytes  # request target exactly as received (path and query)
    headers: list[tuple[str, str]]  # in order, repeats kept; values are latin-1 views of bytes
    body: bytes
    body_len: int
    body_sha256: str
    signature_ok: bool
    signature_error: str | None
    access_key: str | None
    identity_header_present: bool
    received_at: float
    operation: str | None = None  # the Bedrock operation routed to, None if unknown
    model_id: str | None = None  # decoded as AWS does (path segment decoded once, or body field)
    status: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    request_id: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def raw_path(self) -> bytes:
        return self.raw_target.partition(b"?")[0]

    @property
    def raw_query(self) -> bytes:
        return self.raw_target.partition(b"?")[2]

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def summary(self) -> str:
        target = self.raw_target.decode("latin-1")
        sig = "sig=ok" if self.signature_ok else f"sig=BAD({self.signature_error})"
        return (
            f"{self.method} {target} -> {self.status} op={self.operation} model={self.model_id!r} "
            f"{sig} body={self.body_len}B identity={'yes' if self.identity_header_present else 'no'}"
        )


class _Reply:
    """An answer. `delay`: seconds to wait before the status line (a slow upstream). `cut`:
    `(how, n)` stops a chunked answer after its first `n` chunks, the terminating chunk never
    sent (`n` < 0: before the status line): `how` is `"reset"` (TCP RST), `"close"` (FIN, no TLS close_notify) or `"stall"` (the
    connection stays open and silent for `stall` seconds, then closes the same way). `pace`:
    seconds between the chunks of a chunked answer (a long-running stream)."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes | None = None,
                 chunks: Iterable[bytes] | None = None, *, delay: float = 0.0,
                 cut: tuple[str, int] | None = None, stall: float = 0.0, pace: float = 0.0):
        self.status = status
        self.headers = headers
        self.body = body
        self.chunks = chunks
        self.delay = delay
        self.cut = cut
        self.stall = stall
        self.pace = pace


def _json_reply(status: int, obj, extra_headers: list[tuple[str, str]] | None = None) -> _Reply:
    return _Reply(status, [("Content-Type", "application/json")] + (extra_headers or []),
                  json.dumps(obj, separators=(",", ":")).encode())


def _error(status: int, error_type: str, message: str) -> _Reply:
    return _Reply(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)],
                  json.dumps({"message": message}).encode())


def _split(data: bytes, size: int) -> list[bytes]:
    """Split a stream at arbitrary offsets (not on frame boundaries), as TCP may."""
    return [data[i:i + size] for i in range(0, len(data), size)]


class MockBedrock:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, pki_dir: str | Path = ".build/pki",
                 credentials: dict[str, tuple[str, str | None]] | None = None,
                 region: str = REGION, on_request: Callable[[RecordedRequest], None] | None = None,
                 stream_chunk_size: int = 37):
        self.host = host
        self._port = port
        self.pki_dir = ensure_pki(pki_dir)
        self.credentials = credentials if credentials is not None else sigv4.DEFAULT_CREDENTIALS
        self.region = region
        self.on_request = on_request
        self.stream_chunk_size = stream_chunk_size
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "MockBedrock":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.pki_dir / SERVER_FILE, self.pki_dir / SERVER_KEY_FILE)
        ctx.set_alpn_protocols(["http/1.1"])
        self._server = _Server((self.host, self._port), _Handler, self, ctx)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="mock-bedrock", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "MockBedrock":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "mock not started"
        return self._server.server_address[1]

    # -- records ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reqs = self.requests
            if len(reqs) >= n:
                return reqs
            time.sleep(0.01)
        return self.requests

    # -- faults (none here; `tests/harness/upstream_faults.py` adds them) --------------------

    #: Bytes of a Content-Length body read first and shown to `body_fault`; 0: never.
    body_peek = 0

    def body_fault(self, head: bytes) -> bool:
        """Whether to reset the connection after reading `head` (the first `body_peek` bytes
        of a longer body), before the rest of the body."""
        return False

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(rec)
        if self.on_request is not None:
            self.on_request(rec)

    # -- routing ---------------------------------------------------------------------------

    def handle(self, rec: RecordedRequest) -> _Reply:
        if not rec.signature_ok:
            return _error(403, "InvalidSignatureException",
                          "The request signature we calculated does not match the signature you "
                          f"provided. ({rec.signature_error})")
        segs = rec.raw_path.split(b"/")
        method = rec.method
        if (method == "POST" and len(segs) == 4 and segs[0] == b"" and segs[1] == b"model"
                and segs[3].decode("latin-1") in MODEL_OPERATIONS):
            rec.model_id = unquote_to_bytes(segs[2]).decode("utf-8", "replace")
            rec.operation = MODEL_OPERATIONS[segs[3].decode("latin-1")]
            return getattr(self, "_op_" + rec.operation)(rec)
        if segs[:2] == [b"", b"async-invoke"] and len(segs) == 2:
            if method == "POST":
                rec.operation = "StartAsyncInvoke"
                return self._op_StartAsyncInvoke(rec)
            if method == "GET":
                rec.operation = "ListAsyncInvokes"
                return self._op_ListAsyncInvokes(rec)
        if segs[:2] == [b"", b"async-invoke"] and len(segs) == 3 and method == "GET" and segs[2]:
            rec.operation = "GetAsyncInvoke"
            rec.extra["invocation_arn"] = unquote_to_bytes(segs[2]).decode("utf-8", "replace")
            return self._op_GetAsyncInvoke(rec)
        if (method == "POST" and len(segs) == 6 and segs[:2] == [b"", b"guardrail"]
                and segs[3] == b"version" and segs[5] == b"apply"):
            rec.operation = "ApplyGuardrail"
            rec.extra["guardrail"] = unquote_to_bytes(segs[2]).decode("utf-8", "replace")
            return self._op_ApplyGuardrail(rec)
        if method == "POST" and rec.raw_path == b"/openai/v1/chat/completions":
            rec.operation = "ChatCompletions"
            return self._op_ChatCompletions(rec)
        # What the service does for a route it does not know (e.g. a literal `/` in a model ARN).
        return _Reply(200, [("Content-Type", "application/json")], UNKNOWN_OPERATION_BODY)

    def _tokens(self, rec: RecordedRequest) -> tuple[int, int]:
        rec.input_tokens, rec.output_tokens = usage_for(rec.body_len)
        return rec.input_tokens, rec.output_tokens

    def _op_Converse(self, rec: RecordedRequest) -> _Reply:
        n, m = self._tokens(rec)
        usage = {"inputTokens": n, "outputTokens": m, "totalTokens": n + m}
        if b'"cachePoint"' in rec.body:
            # A prompt with a cache point: Bedrock reports the cache's share too.
            usage.update(cache_tokens_for(rec.body_len))
        return _json_reply(200, {
            "output": {"message": {"role": "assistant", "content": [{"text": REPLY_TEXT}]}},
            "stopReason": "end_turn",
            "usage": usage,
            "metrics": {"latencyMs": 12},
        })

    def _op_ConverseStream(self, rec: RecordedRequest) -> _Reply:
        n, m = self._tokens(rec)
        events = [("messageStart", {"role": "assistant", "p": "abcdefgh"})]
        for piece in REPLY_PIECES:
            events.append(("contentBlockDelta",
                           {"contentBlockIndex": 0, "delta": {"text": piece}, "p": "abcd"}))
        events += [
            ("contentBlockStop", {"contentBlockIndex": 0, "p": "ab"}),
            ("messageStop", {"stopReason": "end_turn", "p": "abcdef"}),
            ("metadata", {"usage": {"inputTokens": n, "outputTokens": m, "totalTokens": n + m},
                          "metrics": {"latencyMs": 12}, "p": "abc"}),
        ]
        stream = b"".join(eventstream.encode_event(t, json.dumps(p).encode()) for t, p in events)
        return _Reply(200, [("Content-Type", "application/vnd.amazon.eventstream")],
                      chunks=_split(stream, self.stream_chunk_size))

    def _model_answer(self, rec: RecordedRequest, n: int, m: int) -> dict:
        return {
            "id": "msg_mock0001", "type": "message", "role": "assistant", "model": rec.model_id,
            "content": [{"type": "text", "text": REPLY_TEXT}], "stop_reason": "end_turn",
            "usage": {"input_tokens": n, "output_tokens": m},
        }

    def _op_InvokeModel(self, rec: RecordedRequest) -> _Reply:
        n, m = self._tokens(rec)
        return _json_reply(200, self._model_answer(rec, n, m), [
            ("X-Amzn-Bedrock-Input-Token-Count", str(n)),
            ("X-Amzn-Bedrock-Output-Token-Count", str(m)),
            ("X-Amzn-Bedrock-Invocation-Latency", "12"),
        ])

    def _op_InvokeModelWithResponseStream(self, rec: RecordedRequest) -> _Reply:
        n, m = self._tokens(rec)
        chunks = [{"type": "message_start", "message": {"role": "assistant", "model": rec.model_id,
                                                         "usage": {"input_tokens": n}}}]
        for piece in REPLY_PIECES:
            chunks.append({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": piece}})
        chunks.append({
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {
                "inputTokenCount": n, "outputTokenCount": m,
                "invocationLatency": 12, "firstByteLatency": 5,
            },
        })
        stream = b"".join(
            eventstream.encode_event("chunk", json.dumps(
                {"bytes": base64.b64encode(json.dumps(c).encode()).decode(), "p": "abcd"}
            ).encode())
            for c in chunks
        )
        return _Reply(200, [("Content-Type", "application/vnd.amazon.eventstream"),
                            ("X-Amzn-Bedrock-Content-Type", "application/json")],
                      chunks=_split(stream, self.stream_chunk_size))

    def _op_CountTokens(self, rec: RecordedRequest) -> _Reply:
        n, _ = self._tokens(rec)
        rec.output_tokens = None
        return _json_reply(200, {"inputTokens": n})

    def _body_json(self, rec: RecordedRequest):
        try:
            return json.loads(rec.body)
        except ValueError:
            return None

    def _op_StartAsyncInvoke(self, rec: RecordedRequest) -> _Reply:
        doc = self._body_json(rec)
        if not isinstance(doc, dict) or not isinstance(doc.get("modelId"), str):
            return _error(400, "ValidationException", "modelId is required")
        rec.model_id = doc["modelId"]
        return _json_reply(200, {"invocationArn": ASYNC_INVOCATION_ARN})

    def _async_summary(self, arn: str) -> dict:
        return {
            "invocationArn": arn,
            "modelArn": f"arn:aws:bedrock:{self.region}::foundation-model/amazon.nova-reel-v1:0",
            "clientRequestToken": "mock-token-0001",
            "status": "Completed",
            "submitTime": "2025-01-01T00:00:00Z",
            "lastModifiedTime": "2025-01-01T00:05:00Z",
            "endTime": "2025-01-01T00:05:00Z",
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://mock-bucket/output/"}},
        }

    def _op_ListAsyncInvokes(self, rec: RecordedRequest) -> _Reply:
        return _json_reply(200, {"asyncInvokeSummaries": [self._async_summary(ASYNC_INVOCATION_ARN)]})

    def _op_GetAsyncInvoke(self, rec: RecordedRequest) -> _Reply:
        return _json_reply(200, self._async_summary(rec.extra["invocation_arn"]))

    def _op_ApplyGuardrail(self, rec: RecordedRequest) -> _Reply:
        return _json_reply(200, {
            "usage": {"topicPolicyUnits": 1, "contentPolicyUnits": 1, "wordPolicyUnits": 1,
                      "sensitiveInformationPolicyUnits": 1,
                      "sensitiveInformationPolicyFreeUnits": 0,
                      "contextualGroundingPolicyUnits": 0},
            "action": "NONE", "outputs": [], "assessments": [],
        })

    def _op_ChatCompletions(self, rec: RecordedRequest) -> _Reply:
        doc = self._body_json(rec)
        if not isinstance(doc, dict) or not isinstance(doc.get("model"), str):
            return _error(400, "ValidationException", "model is required")
        rec.model_id = doc["model"]
        n, m = self._tokens(rec)
        return _json_reply(200, {
            "id": "chatcmpl-mock0001", "object": "chat.completion", "created": 1735689600,
            "model": rec.model_id,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": REPLY_TEXT}}],
            "usage": {"prompt_tokens": n, "completion_tokens": m, "total_tokens": n + m},
        })


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, handler, mock: MockBedrock, ctx: ssl.SSLContext):
        self.mock = mock
        self.ssl_context = ctx
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # TLS handshake here, in the per-connection thread, so a slow client never blocks accept.
        try:
            request.settimeout(30)
            # An answer's head and body are two writes; with Nagle's algorithm on, the body
            # waits for the peer's delayed ACK (40 ms on Linux). Bedrock has no such pause.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):  # keep test output quiet
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def version_string(self) -> str:
        return "MockBedrock/1.0"

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        pass

    def _read_body(self) -> bytes | None:
        te = [v.lower() for v in self.headers.get_all("Transfer-Encoding", [])]
        if te:
            if te != ["chunked"]:
                return None
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(8)
                if len(out) > MAX_BODY:
                    return None
        lengths = self.headers.get_all("Content-Length", [])
        if not lengths:
            return b""
        if len(set(lengths)) != 1:
            return None
        n = int(lengths[0])
        if n < 0 or n > MAX_BODY:
            return None
        peek = self.server.mock.body_peek
        if 0 < peek < n:
            head = self.rfile.read(peek)
            if self.server.mock.body_fault(head):
                raise _BodyCut(head)
            return head + self.rfile.read(n - peek)
        return self.rfile.read(n)

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), no TLS close_notify."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            socket.socket.close(self.connection)  # the raw socket: no TLS shutdown
        except OSError:
            pass
        self.wfile = self.rfile = _Closed()

    def _dispatch(self) -> None:
        received = time.time()
        parts = self.raw_requestline.rstrip(b"\r\n").split(b" ")
        raw_target = parts[1] if len(parts) == 3 else b""
        try:
            body = self._read_body()
        except _BodyCut as cut:
            # Record what arrived (the signature cannot be checked on half a body), then reset.
            headers = [(n, v) for n, v in self.headers.items()]
            self.server.mock._record(RecordedRequest(
                method=self.command, raw_target=raw_target, headers=headers, body=cut.head,
                body_len=len(cut.head), body_sha256=hashlib.sha256(cut.head).hexdigest(),
                signature_ok=False, signature_error="body cut: the mock reset the connection",
                access_key=None,
                identity_header_present=any(n.lower() == IDENTITY_HEADER for n, _ in headers),
                received_at=received, request_id="", extra={"fault": "reset-in-body"}))
            self._reset()
            return
        except (ValueError, OSError):
            body = None
        if body is None:
            self.close_connection = True
            self._send(_error(400, "ValidationException", "unreadable body"), str(uuid.uuid4()))
            return
        headers = [(n, v) for n, v in self.headers.items()]
        check = sigv4.verify(self.command, raw_target, headers, body, self.server.mock.credentials,
                             expected_region=self.server.mock.region)
        rec = RecordedRequest(
            method=self.command, raw_target=raw_target, headers=headers, body=body,
            body_len=len(body), body_sha256=hashlib.sha256(body).hexdigest(),
            signature_ok=check.ok, signature_error=check.error, access_key=check.access_key,
            identity_header_present=any(n.lower() == IDENTITY_HEADER for n, _ in headers),
            received_at=received, request_id=str(uuid.uuid4()),
        )
        try:
            reply = self.server.mock.handle(rec)
        except Exception as e:  # a mock bug must show up as a visible 500, not a hang
            reply = _error(500, "InternalServerException", f"mock error: {e!r}")
        rec.status = reply.status
        self.server.mock._record(rec)
        self._send(reply, rec.request_id)

    def _send(self, reply: _Reply, request_id: str) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.cut is not None and reply.cut[1] < 0:  # no answer at all
            self._cut(reply)
            return
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("x-amzn-RequestId", request_id)
        if reply.chunks is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i, chunk in enumerate(reply.chunks):
                if reply.cut is not None and i == reply.cut[1]:
                    self._cut(reply)
                    return
                if reply.pace and i:
                    time.sleep(reply.pace)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            if reply.cut is not None:
                self._cut(reply)
                return
            self.wfile.write(b"0\r\n\r\n")
        else:
            body = reply.body or b""
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        self.wfile.flush()

    def _cut(self, reply: _Reply) -> None:
        """End a chunked answer without its terminating chunk (`_Reply.cut`)."""
        self.wfile.flush()
        how = reply.cut[0]
        if how == "stall":
            time.sleep(reply.stall)
        if how == "reset":
            self._reset()
            return
        self.close_connection = True
        try:
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)  # FIN, no close_notify
        except OSError:
            pass
        self.wfile = self.rfile = _Closed()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch
    do_CONNECT = do_TRACE = _dispatch


class _BodyCut(Exception):
    def __init__(self, head: bytes):
        super().__init__("body cut")
        self.head = head


class _Closed:
    """Stands for the reader and writer of a connection `_reset` or `_cut` ended."""

    closed = False

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def readline(self, *args) -> bytes:
        return b""

    def read(self, *args) -> bytes:
        return b""

    def close(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Mock Amazon Bedrock runtime (HTTPS, SigV4-checking)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--pki", default=".build/pki", help="directory of the test PKI")
    args = ap.parse_args(argv)
    if not args.host.startswith("127."):
        print("refusing to listen outside loopback (127.0.0.0/8)", file=sys.stderr)
        return 2

    def show(rec: RecordedRequest) -> None:
        stamp = _dt.datetime.fromtimestamp(rec.received_at).strftime("%H:%M:%S.%f")[:-3]
        print(f"[{stamp}] {rec.summary()}", flush=True)

    mock = MockBedrock(args.host, args.port, args.pki, on_request=show).start()
    print(f"mock bedrock-runtime listening on https://{args.host}:{mock.port} (pki {args.pki})",
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
