"""`make bench`: what the filter costs, measured side by side in one run.

Four Envoy set-ups answer the same allowed Converse request with a `direct_response` (so the
upstream is not what is measured), each loaded by wrk on loopback for the same duration:

  baseline      no policy filter at all
  guard         bedrock_guard with the demo bundle (model allowlist, no identity)
  guard+jwt     bedrock_guard with an identity provider; every request carries the same RS256
                token (verified once, then served from the token cache) and a group rule
  native        Envoy's own jwt_authn + rbac doing the equivalent (the native peer)

Prints, for each, requests/s and Envoy's CPU time per request (user + system time of the Envoy
process over the measured window, divided by the requests served), and both relative to the
baseline. CPU per request is the filter's real price: it holds even when the load generator,
not Envoy, limits requests/s. Envoy runs with one worker (--concurrency 1) and wrk on the other
core; machines here are noisy, so compare ratios within one run, not numbers across runs.
"""

import argparse
import base64
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.harness.envoy import envoy_binary, free_port, wasm_plugin_config  # noqa: E402

HOST = "bedrock-runtime.us-east-1.amazonaws.com"
MODEL_PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
ISSUER = "https://idp.bench.example"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token_and_jwks():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    jwk = {"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig", "n": b64(n), "e": b64(b"\x01\x00\x01")}
    header = b64(json.dumps({"alg": "RS256", "kid": "bench", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "svc-bench", "aud": "bedrock-egress", "exp": now + 3600,
              "iat": now, "groups": ["ml"]}
    payload = b64(json.dumps(claims).encode())
    sig = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{b64(sig)}", {"keys": [jwk]}


def base_config(listener: int, admin: int) -> dict:
    cfg = yaml.safe_load((ROOT / "envoy" / "demo.yaml").read_text())
    cfg["admin"]["address"]["socket_address"]["port_value"] = admin
    lst = cfg["static_resources"]["listeners"][0]
    lst["address"]["socket_address"]["port_value"] = listener
    hcm = lst["filter_chains"][0]["filters"][0]["typed_config"]
    hcm.pop("access_log", None)
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    route.pop("route")
    route["direct_response"] = {"status": 200, "body": {"inline_string": '{"output":"bench"}'}}
    plugin = wasm_plugin_config(cfg)
    plugin["vm_config"]["code"]["local"]["filename"] = str(ROOT / "dist" / "bedrock_guard.wasm")
    cfg["static_resources"]["clusters"] = []
    return cfg


def http_filters(cfg: dict) -> list:
    return cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]


def variant(name: str, listener: int, admin: int, jwks: dict) -> dict:
    cfg = base_config(listener, admin)
    filters = http_filters(cfg)
    bundle = json.loads((ROOT / "policies" / "examples" / "demo.json").read_text())
    if name == "baseline":
        del filters[0]
    elif name == "guard+jwt":
        bundle["identity"] = {"providers": [{
            "name": "bench", "issuer": ISSUER, "audiences": ["bedrock-egress"],
            "algorithms": ["RS256"], "jwks": jwks}]}
        bundle["rules"].insert(0, {"id": "ml-group", "effect": "allow", "principals": {"groups": ["ml"]},
                                   "models": ["anthropic.claude-3-5-sonnet-20240620-v1:0"],
                                   "operations": ["Converse"]})
        wasm_plugin_config(cfg)["configuration"]["value"] = json.dumps(bundle)
    elif name == "native":
        filters[0] = {
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": {"bench": {
                    "issuer": ISSUER, "audiences": ["bedrock-egress"],
                    "local_jwks": {"inline_string": json.dumps(jwks)},
                    "from_headers": [{"name": "x-workload-identity"}],
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
                        {"url_path": {"path": {"exact": MODEL_PATH}}},
                        {"url_path": {"path": {"exact": "/model/amazon.titan-text-express-v1/converse"}}},
                    ]}}],
                    "principals": [{"metadata": {
                        "filter": "envoy.filters.http.jwt_authn",
                        "path": [{"key": "jwt_payload"}, {"key": "groups"}],
                        "value": {"list_match": {"one_of": {"string_match": {"exact": "ml"}}}},
                    }}],
                }}},
            },
        })
    return cfg


class Envoy:
    """One Envoy with a single worker, so wrk gets the other core."""

    def __init__(self, config: Path, admin: int, log: Path):
        self.proc = subprocess.Popen(
            [str(envoy_binary()), "-c", str(config), "--concurrency", "1", "--log-level", "warn",
             "--base-id", str(os.getpid() % 50000 + 7000)],
            cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"envoy exited; see {log}")
            try:
                import urllib.request
                if urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1).status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"envoy not ready; see {log}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run_wrk(port: int, seconds: int, token: str | None, connections: int) -> tuple[float, int]:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    headers = {"Host": HOST, "content-type": "application/json"}
    if token:
        headers["x-workload-identity"] = token
    lines = ['wrk.method = "POST"', 'wrk.body = "{}"', f'wrk.path = "{MODEL_PATH}"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write("\n".join(lines) + "\n")
    script.close()
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"bench requests were refused ({non2xx.group(1)} non-2xx): fix the set-up\n{out}")
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each is kept")
    args = ap.parse_args()
    token, jwks = make_token_and_jwks()
    names = ["baseline", "guard", "guard+jwt", "native"]
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    for rnd in range(args.rounds):
        for name in names:
            listener, admin = free_port(), free_port()
            path = work / f"{name.replace('+', '_')}.yaml"
            path.write_text(yaml.safe_dump(variant(name, listener, admin, jwks), sort_keys=False))
            proc = Envoy(path, admin, work / f"{name}.log")
            try:
                needs_token = name in ("guard+jwt", "native")
                run_wrk(listener, 2, token if needs_token else None, args.connections)  # warm-up
                before = proc.cpu_seconds()
                rps, total = run_wrk(listener, args.seconds, token if needs_token else None,
                                     args.connections)
                us = (proc.cpu_seconds() - before) / total * 1e6
            finally:
                proc.stop()
            best[name] = max(best.get(name, 0.0), rps)
            cpu[name] = min(cpu.get(name, float("inf")), us)
            print(f"round {rnd + 1}: {name:10s} {rps:10.0f} req/s {us:8.1f} us CPU/request",
                  flush=True)
    base, base_cpu = best["baseline"], cpu["baseline"]
    print("\nbest of rounds: requests/s (vs baseline), Envoy CPU per request (vs baseline), and "
          "the CPU the policy filter adds per request")
    for name in names:
        print(f"  {name:10s} {best[name]:8.0f} req/s ({best[name] / base:6.1%})   "
              f"{cpu[name]:6.1f} us ({cpu[name] / base_cpu:6.1%})   "
              f"+{cpu[name] - base_cpu:5.1f} us")


if __name__ == "__main__":
    main()
