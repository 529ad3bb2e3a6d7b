"""Send verbatim HTTP/1.1 bytes and read one response, without any client-side normalisation."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    closed: bool = False  # the server closed the connection without a (complete) response

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


class _Reader:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            return False
        self.buf += data
        return True

    def line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            if not self._fill():
                return None
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out


def read_response(sock: socket.socket, head_request: bool = False) -> RawResponse:
    r = _Reader(sock)
    while True:
        status_line = r.line()
        if status_line is None:
            return RawResponse(0, "", [], r.buf, closed=True)
        parts = status_line.split(b" ", 2)
        status = int(parts[1])
        headers: list[tuple[str, str]] = []
        while True:
            line = r.line()
            if line is None:
                return RawResponse(status, "", headers, b"", closed=True)
            if not line:
                break
            k, _, v = line.partition(b":")
            headers.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
        if 100 <= status < 200:
            continue  # interim (100 Continue): the final response follows
        break
    reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
    resp = RawResponse(status, reason, headers, b"")
    if head_request or status in (204, 304):
        return resp
    te = (resp.header("transfer-encoding") or "").lower()
    if te == "chunked":
        body = bytearray()
        while True:
            size_line = r.line()
            if size_line is None:
                resp.closed = True
                break
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while r.line() not in (b"", None):
                    pass
                break
            chunk = r.exact(size + 2)
            if chunk is None:
                resp.closed = True
                break
            body += chunk[:-2]
        resp.body = bytes(body)
    elif resp.header("content-length") is not None:
        data = r.exact(int(resp.header("content-length")))
        resp.body = data if data is not None else r.buf
        resp.closed = data is None
    else:
        resp.body = r.rest()
    return resp


def exchange(port: int, data: bytes, *, tls: ssl.SSLContext | None = None,
             server_hostname: str | None = None, timeout: float = 10.0,
             head_request: bool = False, chunks: list[bytes] | None = None) -> RawResponse:
    """Open a connection to 127.0.0.1:port, send `data`, read one response.

    `chunks` are sent afterwards from a background thread while the response is read, so a
    server that answers before the request is complete (a size refusal) is seen answering.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        sock = tls.wrap_socket(raw, server_hostname=server_hostname) if tls else raw
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        sender = None
        if chunks:
            def send_rest():
                try:
                    for c in chunks:
                        sock.sendall(c)
                except OSError:
                    pass
            sender = threading.Thread(target=send_rest, daemon=True)
            sender.start()
        try:
            return read_response(sock, head_request=head_request)
        except TimeoutError:
            raise TimeoutError(f"no complete response from 127.0.0.1:{port} within {timeout}s "
                               "(request held by the proxy?)") from None
        finally:
            if sender is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sender.join(timeout=timeout)
