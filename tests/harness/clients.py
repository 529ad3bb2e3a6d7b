"""The one boto3 `bedrock-runtime` client factory of the tests.

`bedrock_client(proxy=port)` is wired like an unmodified application behind a proxy: endpoint
`http://bedrock-runtime.us-east-1.amazonaws.com`, `HTTP_PROXY` to Envoy on 127.0.0.1 (a port, or
an `(address, port)` pair), the fake credentials the mock verifies. With `endpoint_url` (and
`verify`) it talks to a mock directly instead. Hooks are `(event, handler)` pairs registered in
order, e.g. `("before-send.bedrock-runtime.*", SentRequests())` to see what went on the wire.

Nothing here reads the environment's AWS configuration: `tests/conftest.py` clears it before
boto3 is imported.
"""

from __future__ import annotations

from typing import Callable, Iterable

import boto3
from botocore.config import Config

from .sigv4 import DEFAULT_CREDENTIALS

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = DEFAULT_CREDENTIALS[ACCESS_KEY][0]
REGION = "us-east-1"
BEDROCK_HOST = "bedrock-runtime.us-east-1.amazonaws.com"

# The default retry policy: one attempt, no retries. See `bedrock_client`.
NO_RETRIES = {"total_max_attempts": 1, "mode": "standard"}


class SentRequests:
    """What botocore actually put on the wire (register it as a `before-send` hook)."""

    def __init__(self):
        self.requests = []

    def __call__(self, request, **kwargs):
        self.requests.append(request)
        return None  # let botocore send it

    @property
    def last(self):
        assert self.requests, "boto3 sent nothing"
        return self.requests[-1]


def bedrock_client(proxy: int | tuple[str, int] | None = None, *, host: str = BEDROCK_HOST,
                   endpoint_url: str | None = None, region: str = REGION,
                   access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
                   session_token: str | None = None, retries: dict | None = NO_RETRIES,
                   read_timeout: float = 30, connect_timeout: float = 5,
                   verify: str | bool | None = None,
                   hooks: Iterable[tuple[str, Callable]] = (), **config):
    """A boto3 `bedrock-runtime` client.

    `proxy`: Envoy's listener (a port on 127.0.0.1, or `(address, port)`), used as the
    client's HTTP proxy; the endpoint is `http://{host}` unless `endpoint_url` is given.
    `config`: further `botocore.config.Config` arguments (`user_agent`, ...).

    Retries: by default none (`NO_RETRIES`, `{"total_max_attempts": 1, "mode": "standard"}`).
    Every SDK call is then exactly one HTTP exchange, so the status and error a test inspects
    are the proxy's answer to that one request, and the mock's request log, the audit log and
    stats deltas count calls one to one; a retryable answer (throttling, 5xx) or a timeout
    surfaces at once instead of being resent. (`total_max_attempts` counts attempts; botocore's
    `max_attempts` counts retries, so the `{"max_attempts": 1}` some tests used before allowed a
    second attempt.) Tests of the SDK's own retry behaviour pass `retries` explicitly;
    `retries=None` leaves botocore's default configuration, as an unmodified application has it.
    """
    cfg: dict = {"read_timeout": read_timeout, "connect_timeout": connect_timeout, **config}
    if proxy is not None:
        address, port = proxy if isinstance(proxy, tuple) else ("127.0.0.1", proxy)
        cfg["proxies"] = {"http": f"http://{address}:{port}"}
    if retries is not None:
        cfg["retries"] = dict(retries)
    client = boto3.client(
        "bedrock-runtime", region_name=region, endpoint_url=endpoint_url or f"http://{host}",
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        aws_session_token=session_token, verify=verify, config=Config(**cfg))
    for event, handler in hooks:
        client.meta.events.register(event, handler)
    return client
