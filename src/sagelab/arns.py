"""SageMaker ARNs: `arn:aws:sagemaker:<region>:<account>:<kind>/<name>` (SageMaker lower-cases names)."""

from __future__ import annotations


def sagemaker_arn(region: str, account: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"
