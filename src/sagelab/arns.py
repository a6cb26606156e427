"""SageMaker ARNs: `arn:aws:sagemaker:<region>:<account>:<kind>/<name>` (SageMaker lower-cases names)."""

from __future__ import annotations


def sagemaker_arn(region: str, account: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def service_arn(service: str, region: str, account: str, resource: str) -> str:
    """`arn:aws:<service>:<region>:<account>:<resource>`, names kept as given (Glue, Athena)."""
    return f"arn:aws:{service}:{region}:{account}:{resource}"
