"""Session fixtures: test PKI, the mock Bedrock upstream, a real Envoy with the filter, and a
boto3 `bedrock-runtime` client wired like an unmodified application (HTTP_PROXY to Envoy,
endpoint `http://bedrock-runtime.us-east-1.amazonaws.com`).

Nothing here resolves DNS or leaves loopback: boto3 hands absolute-form requests to Envoy on
127.0.0.1, Envoy's only cluster is the mock on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.isolation import isolate  # imports no boto3

# An application's own AWS configuration must not leak into the tests (profiles, endpoints,
# proxies, credential providers): clear it before boto3 is imported anywhere.
isolate()

from tests.harness.clients import (  # noqa: E402,F401 (re-exported for the test files)
    ACCESS_KEY, BEDROCK_HOST, REGION, SECRET_KEY, SentRequests, bedrock_client as _bedrock_client,
)
from tests.harness.envoy import REPO_ROOT, free_port, render_config  # noqa: E402
from tests.harness.mock_bedrock import MockBedrock  # noqa: E402
from tests.harness.pki import ensure_pki  # noqa: E402
from tests.harness.stack import WASM_PATH, envoy_stack  # noqa: E402,F401

DEMO_BUNDLE = REPO_ROOT / "policies" / "examples" / "demo.json"
CLI = REPO_ROOT / "target" / "debug" / "bedrock-guard"


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `bedrock-guard` binary of this tree, built now (a no-op when up to date), so a test
    never runs a stale one."""
    import subprocess
    proc = subprocess.run(["cargo", "build", "-q", "-p", "bedrock-guard-cli"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, "cargo build -p bedrock-guard-cli failed:\n" + proc.stderr
    assert CLI.is_file(), CLI
    return CLI


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
    work = tmp_path_factory.mktemp("envoy")
    listener, admin = free_port(), free_port()
    cfg = render_config(listener, admin, mock_server.port, pki_dir, WASM_PATH, demo_bundle,
                        out_dir=work)
    with envoy_stack(cfg, admin, listener, work) as proc:
        yield proc


@pytest.fixture
def envoy_port(envoy) -> int:
    if not envoy.alive():
        pytest.fail("Envoy died during the run:\n" + envoy.log_tail(), pytrace=False)
    return envoy.listener_port


@pytest.fixture
def bedrock_client(envoy_port):
    """Factory: `client, sent = bedrock_client()`; `sent.last` is the request boto3 sent.
    (`harness/clients.py`: `bedrock_client`, through the session's Envoy.)"""

    def make(access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
             session_token: str | None = None, read_timeout: int = 30):
        sent = SentRequests()
        client = _bedrock_client(envoy_port, access_key=access_key, secret_key=secret_key,
                                 session_token=session_token, read_timeout=read_timeout,
                                 hooks=[("before-send.bedrock-runtime.*", sent)])
        return client, sent

    return make
