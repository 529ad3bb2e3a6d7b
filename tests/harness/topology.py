"""Run the shipped sidecar configurations (`envoy/sidecar-*.yaml`) on loopback, where addresses
in 127.0.0.0/8 stand in for the VPC:

    127.0.0.1   the application side: explicit (HTTP_PROXY) listener, admin
    127.0.0.2   "the VPC endpoint's ENI": a mock Bedrock, inside the bundle's cidrs, and a copy of
                the transparent listener (a connection to it "dialled an ENI address")
    127.0.0.3   "a public address": a second mock Bedrock, outside the cidrs
    127.0.0.4   a copy of the transparent listener outside the cidrs (a connection to it
                "dialled a public address")

`render_sidecar` loads a shipped config and rewrites, by walking the parsed structure, only what
a loopback run must own: listener and admin addresses, the Bedrock clusters' endpoints (STATIC,
to one mock), the CA file, the wasm path, the bundle's `cidrs` and, for the proxy-signed shape,
the credential source (environment only: nothing may look for instance metadata). Everything
else (HCM options, filter order, routes, SNI, TLS parameters) stays as shipped.

It also has the small clients the destination tests need: raw HTTP/1.1 to any loopback
address, requests signed by botocore for an arbitrary Host, and a minimal HTTP/2 (prior
knowledge) client that can send a `host` header different from `:authority`, which no
ordinary client library does.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import ssl
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from tests.harness.awsreq import credentials
from tests.harness.envoy import REPO_ROOT, WASM_FILTER_TYPE, _walk
from tests.harness.rawhttp import RawResponse, read_response

CLIENT_SIGNED = REPO_ROOT / "envoy" / "sidecar-client-signed.yaml"
PROXY_SIGNED = REPO_ROOT / "envoy" / "sidecar-proxy-signed.yaml"
IDENTITY_INJECTED = REPO_ROOT / "envoy" / "sidecar-identity-injected.yaml"
SIGNING_FILTER_TYPE = ("type.googleapis.com/envoy.extensions.filters.http.aws_request_signing."
                       "v3.AwsRequestSigning")
ENI = "127.0.0.2"
PUBLIC = "127.0.0.3"
OUTSIDE = "127.0.0.4"


def free_port_on(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


# -- configuration -------------------------------------------------------------------------------

def load(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def hcm_of(listener: dict) -> dict:
    (hcm,) = [f["typed_config"] for chain in listener["filter_chains"] for f in chain["filters"]
              if f["name"] == "envoy.filters.network.http_connection_manager"]
    return hcm


def guard_configs(cfg: dict) -> list[dict]:
    """The `config` block of every bedrock-guard wasm filter in the file."""
    return [n["config"] for n in _walk(cfg) if n.get("@type") == WASM_FILTER_TYPE and "config" in n]


def plugin_configuration(plugin: dict) -> tuple[dict, bool]:
    """(bundle, original_destination) of one wasm filter's configuration string."""
    value = json.loads(plugin["configuration"]["value"])
    if isinstance(value, dict) and "bundle" in value:
        return value["bundle"], bool(value.get("original_destination", False))
    return value, False


def _set_plugin_configuration(plugin: dict, bundle: dict, original_destination: bool) -> None:
    value: Any = bundle
    if original_destination:
        value = {"bundle": bundle, "original_destination": True}
    plugin["configuration"]["value"] = json.dumps(value, indent=2)


def bedrock_clusters(cfg: dict) -> list[dict]:
    """The clusters routes send Bedrock traffic to (every route target of the listeners)."""
    targets = {n["cluster"] for n in _walk(cfg["static_resources"]["listeners"])
               if isinstance(n.get("cluster"), str)}
    return [c for c in cfg["static_resources"]["clusters"] if c["name"] in targets]


@dataclass
class Rendered:
    path: Path
    admin_port: int
    listeners: dict[str, tuple[str, int]]  # listener name -> (address, port)


def render_sidecar(source: Path, out_dir: Path, *, pki_dir: Path, wasm_path: Path,
                   upstream: tuple[str, int], cidrs: list[str],
                   transparent_copies: dict[str, str] | None = None,
                   strip_identity: bool = False, inline_jwks: dict | None = None,
                   env_credentials_only: bool = False) -> Rendered:
    """A loopback copy of a shipped sidecar config (see the module docstring).

    `transparent_copies` maps a new listener name to the loopback address it binds: each is a
    copy of `egress_transparent` (listener filters, HCM, plugin wrapper and all) on that address.
    `strip_identity` removes the bundle's identity section; `inline_jwks` keeps it but gives
    every provider these keys instead of its remote JWKS (no IdP to fetch from on loopback).
    """
    cfg = load(source)
    # Aliased nodes (YAML anchors) become shared objects; copy so that edits stay local.
    cfg = copy.deepcopy(cfg)
    admin_port = free_port_on("127.0.0.1")
    cfg["admin"]["address"]["socket_address"]["port_value"] = admin_port

    listeners = cfg["static_resources"]["listeners"]
    by_name = {lst["name"]: lst for lst in listeners}
    bound: dict[str, tuple[str, int]] = {}
    for name, lst in by_name.items():
        sa = lst["address"]["socket_address"]
        sa["address"] = "127.0.0.1" if name == "egress_proxy" else ENI
        sa["port_value"] = free_port_on(sa["address"])
        bound[name] = (sa["address"], sa["port_value"])
    for name, address in (transparent_copies or {}).items():
        twin = copy.deepcopy(by_name["egress_transparent"])
        twin["name"] = name
        twin["address"]["socket_address"]["address"] = address
        twin["address"]["socket_address"]["port_value"] = free_port_on(address)
        listeners.append(twin)
        bound[name] = (address, twin["address"]["socket_address"]["port_value"])
        # Each listener keeps its own VM, as the shipped ones do.
        for plugin in guard_configs(twin):
            plugin["vm_config"]["vm_id"] += "_" + name

    for plugin in guard_configs(cfg):
        plugin["vm_config"]["code"]["local"]["filename"] = str(Path(wasm_path).resolve())
        bundle, original = plugin_configuration(plugin)
        for ep in bundle["endpoints"]:
            ep["cidrs"] = list(cidrs)
        if strip_identity:
            bundle.pop("identity", None)
        elif inline_jwks is not None:
            for provider in bundle["identity"]["providers"]:
                provider.pop("remote_jwks", None)
                provider["jwks"] = inline_jwks
        _set_plugin_configuration(plugin, bundle, original)

    keep = []
    bedrock = {c["name"] for c in bedrock_clusters(cfg)}
    for cluster in cfg["static_resources"]["clusters"]:
        if cluster["name"] in bedrock:
            cluster.pop("cluster_type", None)
            cluster["type"] = "STATIC"
            cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": upstream[0],
                                               "port_value": upstream[1]}}}}]}]
            keep.append(cluster)
        elif not strip_identity and inline_jwks is None:
            keep.append(cluster)  # e.g. the IdP's JWKS cluster (needed only for remote JWKS)
    cfg["static_resources"]["clusters"] = keep

    ca_file = str(Path(pki_dir).resolve() / "ca.pem")
    for node in _walk(cfg):
        if "trusted_ca" in node:
            node["trusted_ca"]["filename"] = ca_file
        if node.get("@type") == SIGNING_FILTER_TYPE and env_credentials_only:
            node["credential_provider"] = {"custom_credential_provider_chain": True,
                                           "environment_credential_provider": {}}

    fd, name = tempfile.mkstemp(prefix="sidecar-", suffix=".yaml", dir=out_dir)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return Rendered(Path(name), admin_port, bound)


def relocate_pod_token(config_path: Path, sds_dir: Path, token_file: Path) -> Path:
    """For a config rendered from `sidecar-identity-injected.yaml`: write a copy of the SDS
    resource it reads (the shipped `envoy/sds/...` file) into `sds_dir`, naming `token_file`
    instead of the projected-volume path, and point every generic credential's
    `path_config_source` (and its `watched_directory`) at the copy. Returns the copy's path."""
    path = Path(config_path)
    cfg = load(path)
    sources = [n["path_config_source"] for n in _walk(cfg) if "path_config_source" in n]
    if not sources:
        raise ValueError(f"{path}: no path_config_source (not an injected-credential config)")
    shipped = {s["path"] for s in sources}
    if len(shipped) != 1:
        raise ValueError(f"{path}: expected one SDS file, found {sorted(shipped)}")
    sds = load(REPO_ROOT / shipped.pop())
    for resource in sds["resources"]:
        # Absolute, but not resolved: the token is a symlink (`token` -> `..data/token`) and
        # must be read through it after every swap.
        resource["generic_secret"]["secret"]["filename"] = os.path.abspath(token_file)
    sds_dir = Path(sds_dir).resolve()
    sds_dir.mkdir(parents=True, exist_ok=True)
    copy_path = sds_dir / "pod-token.yaml"
    copy_path.write_text(yaml.safe_dump(sds, sort_keys=False))
    for source in sources:
        source["path"] = str(copy_path)
        if "watched_directory" in source:
            source["watched_directory"]["path"] = str(sds_dir)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return copy_path


# -- HTTP/1.1 ------------------------------------------------------------------------------------

def signed_headers(method: str, host: str, target: str, body: bytes, *,
                   region: str = "us-east-1", service: str = "bedrock",
                   content_type: str | None = "application/json") -> list[tuple[str, str]]:
    """Headers (Host first) of a request botocore signs with `host` as the signed Host value,
    whatever its spelling (upper case, a port, a trailing dot, userinfo...)."""
    headers = {"Host": host}
    if content_type:
        headers["Content-Type"] = content_type
    req = AWSRequest(method=method, url="http://placeholder.invalid" + target, data=body,
                     headers=headers)
    SigV4Auth(credentials(), service, region).add_auth(req)
    out = [("Host", host)]
    out += [(k, v) for k, v in req.headers.items() if k.lower() != "host"]
    if body:
        out.append(("Content-Length", str(len(body))))
    return out


def http11(method: str, target: str | bytes, headers: list[tuple[str, str]],
           body: bytes = b"") -> bytes:
    if isinstance(target, str):
        target = target.encode("latin-1")
    out = bytearray(method.encode() + b" " + target + b" HTTP/1.1\r\n")
    for k, v in headers + [("Connection", "close")]:
        out += f"{k}: {v}\r\n".encode("latin-1")
    return bytes(out + b"\r\n" + body)


def exchange(address: str, port: int, data: bytes, timeout: float = 10.0) -> RawResponse:
    """Send `data` to address:port (any loopback address), read one response."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_response(sock)


# -- HTTP/2 (prior knowledge, cleartext) ------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
# HPACK static table entries for :status (RFC 7541 Appendix A).
_STATIC_STATUS = {8: "200", 9: "204", 10: "206", 11: "304", 12: "400", 13: "404", 14: "500"}
# Huffman codes of the ten digits (RFC 7541 Appendix B): enough to read a status code.
_HUFFMAN_DIGITS = {"00000": "0", "00001": "1", "00010": "2", "011001": "3", "011010": "4",
                   "011011": "5", "011100": "6", "011101": "7", "011110": "8", "011111": "9"}


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        ">I", stream & 0x7FFFFFFF) + payload


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_literal(name: str, value: str) -> bytes:
    """Literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2)."""
    n, v = name.encode("latin-1"), value.encode("latin-1")
    return b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v


def _read_int(buf: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    limit = (1 << prefix_bits) - 1
    value = buf[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _huffman_digits(data: bytes) -> str | None:
    bits = "".join(f"{b:08b}" for b in data)
    out, cur = "", ""
    for bit in bits:
        cur += bit
        if cur in _HUFFMAN_DIGITS:
            out += _HUFFMAN_DIGITS[cur]
            cur = ""
        elif len(cur) > 6:
            return None
    return out if set(cur) <= {"1"} else None


def _status_of(block: bytes) -> str | None:
    """The :status of a response header block (always its first field)."""
    pos = 0
    while pos < len(block) and block[pos] & 0xE0 == 0x20:  # dynamic table size update
        _, pos = _read_int(block, pos, 5)
    if pos >= len(block):
        return None
    b = block[pos]
    if b & 0x80:
        index, _ = _read_int(block, pos, 7)
        return _STATIC_STATUS.get(index)
    prefix = 6 if b & 0x40 else 4
    index, pos = _read_int(block, pos, prefix)
    if index != 8:  # name must be :status (static index 8..14 share the name)
        return None
    huffman = bool(block[pos] & 0x80)
    length, pos = _read_int(block, pos, 7)
    raw = block[pos:pos + length]
    return _huffman_digits(raw) if huffman else raw.decode("latin-1")


@dataclass
class H2Response:
    status: int | None
    body: bytes
    reset: bool = False  # RST_STREAM or GOAWAY instead of a complete response


def h2_exchange(address: str, port: int, headers: list[tuple[str, str]], body: bytes = b"",
                timeout: float = 10.0, *, chunks: list[bytes] | None = None,
                trailers: list[tuple[str, str]] | None = None) -> H2Response:
    """One request on stream 1 over cleartext HTTP/2 with prior knowledge. `headers` are sent
    verbatim (pseudo-headers first, as given), so `host` may differ from `:authority`. The body
    goes in one DATA frame, or in one frame per element of `chunks`; with `trailers` the stream
    ends with a trailing HEADERS frame instead of END_STREAM on the last DATA frame."""
    chunks = chunks if chunks is not None else ([body] if body else [])
    block = b"".join(_hpack_literal(k, v) for k, v in headers)
    out = PREFACE + _frame(SETTINGS, 0, 0)
    out += _frame(HEADERS, END_HEADERS | (0 if chunks or trailers else END_STREAM), 1, block)
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1 and not trailers
        out += _frame(DATA, END_STREAM if last else 0, 1, chunk)
    if trailers:
        tblock = b"".join(_hpack_literal(k, v) for k, v in trailers)
        out += _frame(HEADERS, END_HEADERS | END_STREAM, 1, tblock)
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(out)
        buf = b""
        header_block = b""
        status: int | None = None
        data = bytearray()

        def read(n: int) -> bytes | None:
            nonlocal buf
            while len(buf) < n:
                try:
                    chunk = sock.recv(65536)
                except (ConnectionResetError, ssl.SSLError):
                    chunk = b""
                if not chunk:
                    return None
                buf += chunk
            got, buf = buf[:n], buf[n:]
            return got

        while True:
            head = read(9)
            if head is None:
                return H2Response(status, bytes(data), reset=True)
            length = int.from_bytes(head[:3], "big")
            kind, flags = head[3], head[4]
            stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
            payload = read(length) if length else b""
            if payload is None:
                return H2Response(status, bytes(data), reset=True)
            if kind == SETTINGS and not flags & ACK:
                sock.sendall(_frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                sock.sendall(_frame(PING, ACK, 0, payload))
            elif kind in (HEADERS, CONTINUATION) and stream == 1:
                if kind == HEADERS and flags & 0x8:  # PADDED
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                if kind == HEADERS and flags & 0x20:  # PRIORITY
                    payload = payload[5:]
                header_block += payload
                if flags & END_HEADERS and status is None:
                    s = _status_of(header_block)
                    status = int(s) if s and s.isdigit() else None
                    header_block = b""
                if flags & END_STREAM:
                    return H2Response(status, bytes(data))
            elif kind == DATA and stream == 1:
                if flags & 0x8:
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                data += payload
                if payload:
                    # Keep the peer's flow-control window open for long bodies.
                    inc = struct.pack(">I", len(payload))
                    sock.sendall(_frame(WINDOW_UPDATE, 0, 0, inc)
                                 + _frame(WINDOW_UPDATE, 0, 1, inc))
                if flags & END_STREAM:
                    return H2Response(status, bytes(data))
            elif kind == RST_STREAM and stream == 1 or kind == GOAWAY:
                return H2Response(status, bytes(data), reset=True)


def main(argv: list[str] | None = None) -> int:
    """Write a loopback copy of a shipped sidecar config, for trying it by hand:

        python -m tests.harness.topology client-signed --upstream 127.0.0.2:8443 --out .build/run
    """
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shape", choices=["client-signed", "proxy-signed"])
    ap.add_argument("--upstream", default=f"{ENI}:8443", help="the mock Bedrock (host:port)")
    ap.add_argument("--cidr", default=f"{ENI}/32", help="the endpoints' cidrs in the bundle")
    ap.add_argument("--pki", default=str(REPO_ROOT / ".build" / "pki"))
    ap.add_argument("--wasm", default=str(REPO_ROOT / "dist" / "bedrock_guard.wasm"))
    ap.add_argument("--out", default=str(REPO_ROOT / ".build" / "run"))
    args = ap.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    if not host.startswith("127."):
        ap.error("loopback (127.0.0.0/8) only")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = CLIENT_SIGNED if args.shape == "client-signed" else PROXY_SIGNED
    r = render_sidecar(source, out, pki_dir=Path(args.pki), wasm_path=Path(args.wasm),
                       upstream=(host, int(port)), cidrs=[args.cidr],
                       transparent_copies={"egress_transparent_outside": OUTSIDE},
                       strip_identity=args.shape == "proxy-signed",
                       env_credentials_only=args.shape == "proxy-signed")
    print(f"config: {r.path}")
    print(f"admin:  http://127.0.0.1:{r.admin_port}")
    for name, (addr, p) in r.listeners.items():
        print(f"{name}: {addr}:{p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# FIPS-approved TLS parameters for the upstream (TLS 1.2 AEAD suites with ECDHE, NIST curves);
# envoy/fips.md shows the same block.
FIPS_TLS_PARAMS = {
    "tls_minimum_protocol_version": "TLSv1_2",
    "cipher_suites": ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                      "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"],
    "ecdh_curves": ["P-256", "P-384"],
}


def fips_variant(source: Path, out_dir: Path) -> Path:
    """sidecar-client-signed.yaml turned to the FIPS endpoints as envoy/fips.md describes:
    `bedrock-runtime-fips` host names everywhere (bundle, routes, SNI, certificate names),
    `fips: true` on each endpoint, `network.fips_required: true`, FIPS-approved TLS
    parameters on the Bedrock clusters."""
    text = Path(source).read_text()
    text = text.replace(".bedrock-runtime.us-east-1.", ".bedrock-runtime-fips.us-east-1.")
    text = text.replace("bedrock-runtime.us-east-1.amazonaws.com",
                        "bedrock-runtime-fips.us-east-1.amazonaws.com")
    cfg = yaml.safe_load(text)
    for plugin in guard_configs(cfg):
        bundle, original = plugin_configuration(plugin)
        bundle.setdefault("network", {})["fips_required"] = True
        for ep in bundle["endpoints"]:
            ep["fips"] = True
        _set_plugin_configuration(plugin, bundle, original)
    for cluster in bedrock_clusters(cfg):
        tls = cluster["transport_socket"]["typed_config"]["common_tls_context"]
        tls["tls_params"] = dict(FIPS_TLS_PARAMS)
    fd, name = tempfile.mkstemp(prefix="sidecar-fips-", suffix=".yaml", dir=out_dir)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return Path(name)
