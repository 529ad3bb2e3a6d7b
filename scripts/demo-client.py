"""Send one Converse request through the bedrock-guard demo with an unmodified boto3 client.

    .venv/bin/python scripts/demo-client.py anthropic.claude-3-5-sonnet-20240620-v1:0

The client is configured exactly as an application would be (endpoint URL with the real host
name, Envoy as its HTTP proxy); the credentials are the well-known fake example keys, which the
local mock Bedrock verifies signatures with. Nothing leaves 127.0.0.1.
"""

import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

model = sys.argv[1] if len(sys.argv) > 1 else "anthropic.claude-3-5-sonnet-20240620-v1:0"
proxy = os.environ.get("BEDROCK_GUARD_PROXY", "http://127.0.0.1:10000")
client = boto3.client(
    "bedrock-runtime",
    region_name="us-east-1",
    endpoint_url="http://bedrock-runtime.us-east-1.amazonaws.com",
    aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    config=Config(proxies={"http": proxy}, retries={"max_attempts": 1}),
)
try:
    out = client.converse(modelId=model, messages=[{"role": "user", "content": [{"text": "Hello"}]}])
    print(f"allowed: {model}: {out['output']['message']['content'][0]['text']!r} usage={out['usage']}")
except ClientError as err:
    e = err.response["Error"]
    status = err.response["ResponseMetadata"]["HTTPStatusCode"]
    print(f"refused: {model}: HTTP {status} {e['Code']}: {e['Message']}")
    sys.exit(1)
