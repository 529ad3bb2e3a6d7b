"""Assertions shared by the end-to-end tests (filter refusals, what the upstream saw)."""

from __future__ import annotations

import json
import re
import time

from botocore.exceptions import ClientError

from tests.harness.mock_bedrock import MockBedrock, RecordedRequest
from tests.harness.rawhttp import RawResponse

# How long to give a request that the filter wrongly forwarded to show up at the mock before
# concluding it saw nothing (a refusal reaches the client before any forwarded bytes would).
SETTLE_SECONDS = 0.05


def assert_mock_saw_nothing(mock: MockBedrock) -> None:
    time.sleep(SETTLE_SECONDS)
    seen = mock.requests
    assert not seen, "the upstream received a request that should have been refused: " + "; ".join(
        r.summary() for r in seen)


def single_forwarded(mock: MockBedrock) -> RecordedRequest:
    recs = mock.wait_for_requests(1, timeout=2)
    time.sleep(SETTLE_SECONDS)
    recs = mock.requests
    assert len(recs) == 1, f"expected exactly one upstream request, got {len(recs)}: " + "; ".join(
        r.summary() for r in recs)
    rec = recs[0]
    assert rec.signature_ok, f"upstream rejected the client's signature: {rec.signature_error}"
    return rec


def message_reason(message: str) -> str | None:
    m = re.match(r"bedrock-guard: ([a-z_]+):", message)
    return m.group(1) if m else None


def assert_client_error_refusal(exc: ClientError, reason: str, status: int = 403) -> None:
    resp = exc.response
    msg = resp.get("Error", {}).get("Message", "")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == status, (
        resp["ResponseMetadata"]["HTTPStatusCode"], msg)
    assert resp["Error"]["Code"] == "AccessDeniedException", resp["Error"]
    assert msg.startswith(f"bedrock-guard: {reason}:"), (
        f"expected reason {reason!r}, got message {msg!r}")
    headers = resp["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-amzn-requestid"), headers
    assert headers.get("content-type", "").startswith("application/json"), headers


def assert_raw_refusal(resp: RawResponse, reason: str, status: int = 403) -> None:
    """The filter's deny, in the shape AWS SDKs parse (checked on the raw bytes)."""
    assert resp.status == status, (resp.status, resp.body[:300])
    error_type = resp.header("x-amzn-errortype") or ""
    assert error_type.split(":")[0] == "AccessDeniedException", resp.headers
    assert resp.header("x-amzn-requestid"), resp.headers
    assert (resp.header("content-type") or "").startswith("application/json"), resp.headers
    body = json.loads(resp.body)
    msg = body.get("message", "")
    assert msg.startswith(f"bedrock-guard: {reason}:"), (
        f"expected reason {reason!r}, got {body!r}")
