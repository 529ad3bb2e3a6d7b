"""Workload identity tokens for the tests: throw-away signing keys, their public JWKs, and JWTs
minted by hand (base64url JSON + `cryptography` signatures), so tests can also build tokens no
JWT library would produce (`alg: none`, tampered payloads, forged headers).

    key = SigningKey.rsa("key-a")                  # or SigningKey.ec("key-b") (ES256, P-256)
    jwks = {"keys": [key.jwk()]}                   # public half only
    token = key.mint(claims(ISSUER, AUDIENCE, "svc", groups=["ml"]))

Keys are generated per test run and never leave the process; nothing here is a real credential.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_jti = itertools.count(1)


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def _uint(n: int, length: int | None = None) -> str:
    length = length or (n.bit_length() + 7) // 8
    return b64url(n.to_bytes(length, "big"))


class SigningKey:
    """A private key with a `kid` and the one JWS algorithm it signs with."""

    def __init__(self, kid: str, alg: str, private_key):
        self.kid = kid
        self.alg = alg
        self.private_key = private_key

    @classmethod
    def rsa(cls, kid: str, bits: int = 2048) -> "SigningKey":
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def ec(cls, kid: str) -> "SigningKey":
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self, *, with_alg: bool = True) -> dict:
        """The public JWK (RFC 7517/7518): never any private member."""
        pub = self.private_key.public_key()
        if self.alg == "RS256":
            nums = pub.public_numbers()
            jwk = {"kty": "RSA", "kid": self.kid, "use": "sig", "n": _uint(nums.n),
                   "e": _uint(nums.e)}
        else:
            nums = pub.public_numbers()
            jwk = {"kty": "EC", "kid": self.kid, "use": "sig", "crv": "P-256",
                   "x": _uint(nums.x, 32), "y": _uint(nums.y, 32)}
        if with_alg:
            jwk["alg"] = self.alg
        return jwk

    def signature(self, signing_input: bytes) -> bytes:
        if self.alg == "RS256":
            return self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        der = self.private_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)  # JWS wants the raw 64-byte r || s (RFC 7518 §3.4)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def mint(self, claims: dict, *, header: dict | None = None, kid: str | None = None,
             alg: str | None = None) -> str:
        """A compact JWS over `claims`. `header` replaces the default header entirely; `kid`
        and `alg` only change what the header says (the signature is always this key's)."""
        if header is None:
            header = {"alg": alg or self.alg, "typ": "JWT", "kid": kid or self.kid}
        signing_input = f"{b64url_json(header)}.{b64url_json(claims)}".encode()
        return signing_input.decode() + "." + b64url(self.signature(signing_input))


def claims(issuer: str, audience: str | list[str], subject: str, *,
           groups: list[str] | None = None, lifetime: int = 600, now: int | None = None,
           **extra: Any) -> dict:
    """A claims set valid from now for `lifetime` seconds, with a unique `jti` (so two calls
    never produce the same token, which keeps verified-token caches out of a test's way)."""
    now = int(time.time()) if now is None else now
    c = {"iss": issuer, "aud": audience, "sub": subject, "iat": now, "nbf": now,
         "exp": now + lifetime, "jti": f"t-{now}-{next(_jti)}"}
    if groups is not None:
        c["groups"] = groups
    c.update(extra)
    return c


def unsigned(claims_set: dict, kid: str = "none-key") -> str:
    """An `alg: none` token (RFC 7519 §6.1): empty signature segment."""
    return f"{b64url_json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64url_json(claims_set)}."


def with_payload(token: str, claims_set: dict) -> str:
    """`token` with its payload replaced and the original signature kept (a tampered token)."""
    head, _, sig = token.split(".")
    return f"{head}.{b64url_json(claims_set)}.{sig}"
