"""Test PKI: a throw-away CA and a server certificate for the mock Bedrock upstream.

The certificate carries the host names a Bedrock runtime endpoint is reached by (the regional
name, the PrivateLink endpoint-specific names, the FIPS name) plus localhost, so Envoy's upstream
TLS context can verify SNI and SAN exactly as it would against the real service.

    python -m tests.harness.pki DIR     # idempotent: keeps a valid existing set
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_DNS_NAMES = (
    "bedrock-runtime.us-east-1.amazonaws.com",
    "*.bedrock-runtime.us-east-1.vpce.amazonaws.com",
    "bedrock-runtime-fips.us-east-1.amazonaws.com",
    # The EventBridge endpoint deny alerts are signed for (tests/harness/mock_eventbridge.py).
    "events.us-east-1.amazonaws.com",
    "localhost",
)
SERVER_IPS = ("127.0.0.1",)

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"

_VALIDITY = _dt.timedelta(days=365)
# Regenerate when less than this is left, so a long-lived .build/ never holds an expired set.
_MIN_REMAINING = _dt.timedelta(days=7)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _existing_is_valid(d: Path) -> bool:
    """True when all four files exist, parse, chain, match their keys and carry the SANs."""
    paths = [d / n for n in (CA_FILE, CA_KEY_FILE, SERVER_FILE, SERVER_KEY_FILE)]
    if not all(p.is_file() for p in paths):
        return False
    try:
        ca = x509.load_pem_x509_certificate(paths[0].read_bytes())
        ca_key = serialization.load_pem_private_key(paths[1].read_bytes(), None)
        srv = x509.load_pem_x509_certificate(paths[2].read_bytes())
        srv_key = serialization.load_pem_private_key(paths[3].read_bytes(), None)
        if ca.public_key().public_numbers() != ca_key.public_key().public_numbers():
            return False
        if srv.public_key().public_numbers() != srv_key.public_key().public_numbers():
            return False
        srv.verify_directly_issued_by(ca)
        deadline = _now() + _MIN_REMAINING
        if ca.not_valid_after_utc < deadline or srv.not_valid_after_utc < deadline:
            return False
        san = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = set(san.get_values_for_type(x509.DNSName))
        ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        return dns == set(SERVER_DNS_NAMES) and ips == set(SERVER_IPS)
    except Exception:  # any parse or verification failure: regenerate
        return False


def _generate(d: Path) -> None:
    now = _now() - _dt.timedelta(minutes=5)  # tolerate small clock differences

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bedrock-guard tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, "bedrock-guard test CA"),
    ])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    srv_key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in SERVER_DNS_NAMES]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    )
    srv = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bedrock-guard tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, SERVER_DNS_NAMES[0]),
        ]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY - _dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(san, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    # Keys first, certificates last: a reader that sees the certificates sees their keys.
    _write_private(d / CA_KEY_FILE, _key_pem(ca_key))
    _write_private(d / SERVER_KEY_FILE, _key_pem(srv_key))
    _write_public(d / CA_FILE, ca.public_bytes(serialization.Encoding.PEM))
    _write_public(d / SERVER_FILE, srv.public_bytes(serialization.Encoding.PEM))


def ensure_pki(directory: str | os.PathLike) -> Path:
    """Create (or keep, when still valid) the test CA and server certificate in `directory`."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if not _existing_is_valid(d):
        _generate(d)
    return d


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.harness.pki DIR", file=sys.stderr)
        return 2
    d = ensure_pki(argv[0])
    print(f"test PKI ready in {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
