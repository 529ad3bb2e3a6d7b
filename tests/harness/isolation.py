"""Keep a developer's own AWS configuration away from the clients. Call `isolate()` before
boto3 or botocore is imported anywhere (this module imports neither): profiles, endpoints,
proxies and credential providers of the machine must never reach a test or a bench."""

from __future__ import annotations

import os


def isolate() -> None:
    for key in list(os.environ):
        if key.startswith("AWS_") or key.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            del os.environ[key]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["NO_PROXY"] = "*"
