"""What existing AWS code needs to talk to a sagelab server, without changing a line of it.

boto3, the AWS CLI and the SageMaker SDK read their endpoint, credentials and region from the
environment. One thing the SDK does not route through the endpoint: `Session.default_bucket()` asks
STS for the account id at STS's public address. The SDK's own defaults file can name that bucket
instead, so the server writes one (`<home>/sagemaker-config.yaml`) naming `sagemaker-<region>-<account>`,
the bucket the SDK would have chosen, and `SAGEMAKER_USER_CONFIG_OVERRIDE` points the SDK at it.
The same file opts out of the SDK's telemetry, which would otherwise try to reach AWS on every call.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sagelab.security.credentials import credentials_path
from sagelab.security.tls import home_certificate
from sagelab.settings import Settings

SDK_CONFIG_NAME = "sagemaker-config.yaml"


def sdk_config_path(home: Path) -> Path:
    return home / SDK_CONFIG_NAME


def default_bucket(region: str, account_id: str) -> str:
    return f"sagemaker-{region}-{account_id}"


def write_sdk_defaults(home: Path, region: str, account_id: str) -> Path:
    """The SageMaker SDK's defaults file (YAML; JSON is YAML too) naming the default bucket."""
    path = sdk_config_path(home)
    config = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {
        "Session": {"DefaultS3Bucket": default_bucket(region, account_id)}, "TelemetryOptOut": True}}}}
    text = json.dumps(config, indent=2) + "\n"
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def endpoint_url(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # listening everywhere: loopback reaches it from this machine
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if settings.tls else 'http'}://{host}:{settings.port}"


def client_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that point boto3, the AWS CLI and the SageMaker SDK at this server."""
    environment = {
        "AWS_ENDPOINT_URL": endpoint_url(settings),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials_path(settings.home)),
        "AWS_DEFAULT_REGION": settings.region,
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(sdk_config_path(settings.home)),
    }
    if settings.tls and not settings.tls_cert:
        # The home's self-signed certificate is its own CA: clients verify the server against it.
        environment["AWS_CA_BUNDLE"] = str(home_certificate(settings.home))
    return environment
