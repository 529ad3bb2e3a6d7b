"""The boto3 recipe of docs/operations.md ("Identity tokens from applications (shared
gateways)"), as code the end-to-end tests run: an application that talks to a shared egress
gateway attaches its workload identity token itself, outside the SigV4 signature.

The text between the two marker lines is shown verbatim in the doc;
`tests/test_e2e_identity_injected.py` checks that the doc still contains it and runs it against a
real Envoy. Sidecars need none of this: `envoy/sidecar-identity-injected.yaml` has Envoy add the
pod's token itself.
"""

# --- documented snippet: start ---
from pathlib import Path

IDENTITY_HEADER = "x-workload-identity"  # the bundle's identity.header


def attach_identity_token(client, token_file, header=IDENTITY_HEADER):
    """Send the token in `token_file` in `header` with every request `client` makes,
    outside the SigV4 signature."""

    def add_identity_token(request, **kwargs):
        # `before-send` runs after SigV4 signing, once per attempt (a retry is signed
        # again first): the header travels but is not in SignedHeaders. The file is read
        # every time, so a rotated token is used as soon as it is in place.
        request.headers[header] = Path(token_file).read_text().strip()
        # Return nothing: a `before-send` handler's return value replaces the response.

    client.meta.events.register("before-send.bedrock-runtime", add_identity_token)
    return client
# --- documented snippet: end ---


SNIPPET_START = "# --- documented snippet: start ---\n"
SNIPPET_END = "# --- documented snippet: end ---\n"


def documented_snippet() -> str:
    """The code between the markers above, as the doc must show it."""
    text = Path(__file__).read_text()
    return text[text.index(SNIPPET_START) + len(SNIPPET_START):text.index(SNIPPET_END)]
