"""The mock's SigV4 verifier: accepts what botocore signs, rejects any byte a proxy changed."""

import datetime as dt

import pytest
from botocore.auth import SigV4Auth

from tests.harness import sigv4
from tests.harness.awsreq import SESSION_ACCESS_KEY, sign, wire_parts

URL = ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
       "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
       "us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse")
BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'


def _signed(url=URL, body=BODY, method="POST", **kw):
    prepared = sign(method, url, body, {"Content-Type": "application/json"}, **kw)
    return wire_parts(prepared)


def _verify(target, headers, body, method="POST", **kw):
    return sigv4.verify(method, target, headers, body, expected_region="us-east-1", **kw)


def test_accepts_a_botocore_signed_request():
    target, headers, body = _signed()
    result = _verify(target, headers, body)
    assert result.ok, result.error
    assert (result.access_key, result.region, result.service) == (
        "AKIAIOSFODNN7EXAMPLE", "us-east-1", "bedrock")


def test_accepts_a_signed_query_string():
    url = ("https://bedrock-runtime.us-east-1.amazonaws.com/async-invoke"
           "?statusEquals=Completed&maxResults=5&nextToken=a%2Fb%3D")
    target, headers, body = _signed(url, b"", "GET")
    assert _verify(target, headers, body, method="GET").ok


def test_accepts_session_credentials_with_their_token():
    target, headers, body = _signed(access_key=SESSION_ACCESS_KEY)
    assert _verify(target, headers, body).ok


def test_rejects_session_credentials_without_their_token():
    target, headers, body = _signed(access_key=SESSION_ACCESS_KEY)
    headers = [(k, v) for k, v in headers if k.lower() != "x-amz-security-token"]
    assert not _verify(target, headers, body).ok


def test_rejects_a_changed_path_byte():
    target, headers, body = _signed()
    assert b"%2F" in target
    changed = target.replace(b"%2F", b"/", 1)  # what a slash-unescaping proxy would do
    assert not _verify(changed, headers, body).ok
    lower = target.replace(b"%3A", b"%3a", 1)  # even an equivalent escape is a different byte
    assert not _verify(lower, headers, body).ok


def test_rejects_a_changed_signed_header():
    target, headers, body = _signed()
    changed = [(k, "text/plain" if k.lower() == "content-type" else v) for k, v in headers]
    result = _verify(target, changed, body)
    assert not result.ok and result.error == "signature does not match"
    rehosted = [(k, "evil.example" if k.lower() == "host" else v) for k, v in headers]
    assert not _verify(target, rehosted, body).ok


def test_ignores_a_changed_unsigned_header():
    target, headers, body = _signed()
    assert _verify(target, headers + [("User-Agent", "something else")], body).ok


def test_rejects_a_changed_body():
    target, headers, body = _signed()
    result = _verify(target, headers, body.replace(b"hi", b"ho"))
    assert not result.ok


def test_rejects_a_content_sha256_header_that_does_not_match_the_body():
    prepared = sign("POST", URL, BODY, {"X-Amz-Content-Sha256": "0" * 64})
    target, headers, body = wire_parts(prepared)
    assert not _verify(target, headers, body).ok


def test_rejects_missing_and_malformed_authorization():
    target, headers, body = _signed()
    unsigned = [(k, v) for k, v in headers if k.lower() != "authorization"]
    assert _verify(target, unsigned, body).error == "missing Authorization header"
    twice = headers + [h for h in headers if h[0].lower() == "authorization"]
    assert not _verify(target, twice, body).ok
    garbage = unsigned + [("Authorization", "AWS4-HMAC-SHA256 nonsense")]
    assert not _verify(target, garbage, body).ok


def test_rejects_a_wrong_secret():
    target, headers, body = _signed()
    creds = {"AKIAIOSFODNN7EXAMPLE": ("not-the-secret", None)}
    assert not sigv4.verify("POST", target, headers, body, creds).ok


def test_rejects_a_wrong_scope_service_and_stale_date():
    target, headers, body = _signed(service="bedrock-runtime")
    assert not _verify(target, headers, body).ok
    target, headers, body = _signed()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert not _verify(target, headers, body, now=later).ok


@pytest.mark.parametrize("path", [
    "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke",
    "/model/a%20b%7E%2A/converse",
    "/openai/v1/chat/completions",
])
def test_canonical_request_matches_botocore(path):
    """Cross-check (not a dependency): our canonical URI equals what botocore's signer uses."""
    prepared = sign("POST", "https://bedrock-runtime.us-east-1.amazonaws.com" + path, BODY)
    from botocore.awsrequest import AWSRequest
    from tests.harness.awsreq import credentials
    req = AWSRequest(method="POST", url=prepared.url, data=BODY)
    ours = sigv4.canonical_uri(path.encode())
    theirs = SigV4Auth(credentials(), "bedrock", "us-east-1").canonical_request(req).split("\n")[1]
    assert ours == theirs
