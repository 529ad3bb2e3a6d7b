"""Build SigV4-signed requests with botocore's own signer, for raw-socket and unit tests.

botocore signs exactly what a real SDK signs; these helpers then put those bytes on a socket
ourselves, so tests can send what boto3 never would (odd paths, repeated headers, bad bytes).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.credentials import Credentials

from .sigv4 import DEFAULT_CREDENTIALS

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SESSION_ACCESS_KEY = "ASIAIOSFODNN7EXAMPLE"
HOST = "bedrock-runtime.us-east-1.amazonaws.com"


def credentials(access_key: str = ACCESS_KEY) -> Credentials:
    secret, token = DEFAULT_CREDENTIALS[access_key]
    return Credentials(access_key, secret, token)


def sign(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None,
         access_key: str = ACCESS_KEY, region: str = "us-east-1",
         service: str = "bedrock") -> AWSPreparedRequest:
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(credentials(access_key), service, region).add_auth(req)
    return req.prepare()


def target_of(url: str) -> bytes:
    """The origin-form request target of an absolute URL, as bytes."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return target.encode("utf-8")


def wire_parts(prepared: AWSPreparedRequest) -> tuple[bytes, list[tuple[str, str]], bytes]:
    """(target, headers incl. Host, body) as a client would send them in origin form."""
    host = urlsplit(prepared.url).netloc
    headers = [("Host", host)] + [(k, v if isinstance(v, str) else v.decode("latin-1"))
                                  for k, v in prepared.headers.items()]
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body and not any(k.lower() == "content-length" for k, _ in headers):
        headers.append(("Content-Length", str(len(body))))
    return target_of(prepared.url), headers, body


def to_http11(method: str, target: bytes, headers: list[tuple[str, str | bytes]],
              body: bytes = b"") -> bytes:
    """Serialise an HTTP/1.1 request verbatim (no normalisation of anything)."""
    out = bytearray(method.encode("latin-1") + b" " + target + b" HTTP/1.1\r\n")
    for name, value in headers:
        v = value if isinstance(value, bytes) else value.encode("latin-1")
        out += name.encode("latin-1") + b": " + v + b"\r\n"
    out += b"\r\n" + body
    return bytes(out)
