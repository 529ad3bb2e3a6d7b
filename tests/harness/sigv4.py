"""An independent SigV4 (header form) verifier for the mock Bedrock upstream.

Written from the published algorithm (AWS "Create a signed AWS API request"), not from an SDK:
the mock must catch a proxy that alters anything the client signed, so it rebuilds the
canonical request from the request *exactly as received*:

- the request target's raw path, URI-encoded once more the way non-S3 services do
  (unreserved characters and `/` kept, everything else `%XX`, so `%3A` becomes `%253A`);
  no dot-segment removal: a proxy that rewrote the path is caught, not excused;
- the canonical query (each name and value decoded once, re-encoded, sorted);
- the signed headers, values trimmed and inner runs of spaces collapsed, repeated headers joined
  with `,` in the order received;
- the payload hash: `x-amz-content-sha256` when present (and then it must match the body unless
  it is an unsigned-payload marker), else SHA-256 of the received body.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"

# Fake credentials only (the documented AWS example values). access key -> (secret, session token)
DEFAULT_CREDENTIALS: dict[str, tuple[str, str | None]] = {
    "AKIAIOSFODNN7EXAMPLE": ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
    "ASIAIOSFODNN7EXAMPLE": (
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "FQoGZXIvYXdzEXAMPLESESSIONTOKEN//////////wEaDEXAMPLEtestonly",
    ),
}

_UNSIGNED_PAYLOADS = {"UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_SKEW = _dt.timedelta(minutes=15)


@dataclass(frozen=True)
class SigV4Result:
    ok: bool
    error: str | None = None
    access_key: str | None = None
    date: str | None = None
    region: str | None = None
    service: str | None = None
    signed_headers: tuple[str, ...] = ()


def _fail(msg: str, **kw) -> SigV4Result:
    return SigV4Result(ok=False, error=msg, **kw)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def canonical_uri(raw_path: bytes) -> str:
    if not raw_path:
        return "/"
    return quote(raw_path, safe="/~")


def canonical_query(raw_query: bytes) -> str:
    if not raw_query:
        return ""
    pairs = []
    for part in raw_query.split(b"&"):
        name, _, value = part.partition(b"=")
        pairs.append((
            quote(unquote_to_bytes(name), safe="-_.~"),
            quote(unquote_to_bytes(value), safe="-_.~"),
        ))
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def parse_authorization(value: str) -> dict[str, str] | None:
    """Split `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` into its parts."""
    if not value.startswith(ALGORITHM + " "):
        return None
    parts: dict[str, str] = {}
    for item in value[len(ALGORITHM) + 1:].split(","):
        item = item.strip()
        if not item:
            return None
        name, eq, val = item.partition("=")
        if not eq or name in parts:
            return None
        parts[name] = val
    if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
        return None
    return parts


def verify(
    method: str,
    raw_target: bytes,
    headers: list[tuple[str, str]],
    body: bytes,
    credentials: dict[str, tuple[str, str | None]] | None = None,
    *,
    expected_service: str | None = "bedrock",
    expected_region: str | None = None,
    now: _dt.datetime | None = None,
) -> SigV4Result:
    """Verify one request's SigV4 `Authorization` header. Never raises on bad input."""
    creds = DEFAULT_CREDENTIALS if credentials is None else credentials
    by_name: dict[str, list[str]] = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(value)

    auth_values = by_name.get("authorization", [])
    if not auth_values:
        return _fail("missing Authorization header")
    if len(auth_values) > 1:
        return _fail("more than one Authorization header")
    auth = parse_authorization(auth_values[0])
    if auth is None:
        return _fail("Authorization header is not a well-formed AWS4-HMAC-SHA256 header")

    scope = auth["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return _fail("malformed credential scope")
    akid, date, region, service, _ = scope
    info = dict(access_key=akid, date=date, region=region, service=service)
    if akid not in creds:
        return _fail("unknown access key id", **info)
    secret, token = creds[akid]
    if expected_service is not None and service != expected_service:
        return _fail(f"credential should be scoped to service {expected_service!r}", **info)
    if expected_region is not None and region != expected_region:
        return _fail(f"credential should be scoped to region {expected_region!r}", **info)

    signed = auth["SignedHeaders"].split(";")
    info["signed_headers"] = tuple(signed)
    if any(not h or h != h.lower() for h in signed) or len(set(signed)) != len(signed):
        return _fail("malformed SignedHeaders", **info)
    if "host" not in signed:
        return _fail("host is not a signed header", **info)
    for h in signed:
        if h not in by_name:
            return _fail(f"signed header {h!r} is missing from the request", **info)

    signature = auth["Signature"]
    if not _HEX64.match(signature):
        return _fail("malformed signature", **info)

    amz_dates = by_name.get("x-amz-date", [])
    if len(amz_dates) != 1:
        return _fail("exactly one X-Amz-Date header is required", **info)
    amz_date = amz_dates[0]
    try:
        when = _dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return _fail("malformed X-Amz-Date", **info)
    if amz_date[:8] != date:
        return _fail("X-Amz-Date does not match the credential scope date", **info)
    current = now or _dt.datetime.now(_dt.timezone.utc)
    if abs(current - when) > _MAX_SKEW:
        return _fail("signature expired or not yet valid (clock skew)", **info)

    if token is not None:
        tokens = by_name.get("x-amz-security-token", [])
        if tokens != [token]:
            return _fail("missing or wrong X-Amz-Security-Token", **info)
        if "x-amz-security-token" not in signed:
            return _fail("X-Amz-Security-Token is not signed", **info)

    body_hash = _sha256_hex(body)
    declared = by_name.get("x-amz-content-sha256", [])
    if len(declared) > 1:
        return _fail("more than one X-Amz-Content-Sha256 header", **info)
    if declared:
        payload_hash = declared[0]
        if payload_hash not in _UNSIGNED_PAYLOADS and payload_hash != body_hash:
            return _fail("X-Amz-Content-Sha256 does not match the body", **info)
    else:
        payload_hash = body_hash

    raw_path, _, raw_query = raw_target.partition(b"?")
    canonical_headers = "".join(
        f"{h}:{','.join(' '.join(v.split()) for v in by_name[h])}\n" for h in sorted(signed)
    )
    canonical_request = "\n".join([
        method,
        canonical_uri(raw_path),
        canonical_query(raw_query),
        canonical_headers,
        ";".join(signed),
        payload_hash,
    ])
    try:
        # Header values arrive as str holding the wire bytes one code point each (latin-1,
        # as http.client decodes them): encode back to exactly those bytes.
        canonical_bytes = canonical_request.encode("latin-1")
    except UnicodeEncodeError:
        return _fail("header value is not a byte string", **info)
    string_to_sign = "\n".join([
        ALGORITHM,
        amz_date,
        f"{date}/{region}/{service}/aws4_request",
        _sha256_hex(canonical_bytes),
    ])
    expected = hmac.new(
        signing_key(secret, date, region, service), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return _fail("signature does not match", **info)
    return SigV4Result(ok=True, **info)
