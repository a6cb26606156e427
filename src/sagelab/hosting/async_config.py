"""An endpoint config's AsyncInferenceConfig: where results and failures go, and how many at once.

NotificationConfig (SNS topics) and KmsKeyId are accepted and stored as given; sagelab has no SNS, so no
notification is sent.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sagelab.errors import ValidationError
from sagelab.lake.uris import S3Uri, parse_s3_uri

FIELD = "AsyncInferenceConfig"
#: What AWS picks when ClientConfig.MaxConcurrentInvocationsPerInstance is not given (its "optimal value").
DEFAULT_CONCURRENCY_PER_INSTANCE = 4
MAX_CONCURRENCY_PER_INSTANCE = 1000


@dataclasses.dataclass(frozen=True)
class AsyncConfig:
    output: S3Uri
    failure: S3Uri
    concurrency_per_instance: int

    @classmethod
    def of(cls, config: dict[str, Any]) -> AsyncConfig:
        """From an AsyncInferenceConfig that `check_async_config` accepted."""
        out = config["OutputConfig"]
        output = parse_s3_uri(out["S3OutputPath"], field=f"{FIELD}.OutputConfig.S3OutputPath")
        failure = (parse_s3_uri(out["S3FailurePath"], field=f"{FIELD}.OutputConfig.S3FailurePath")
                   if out.get("S3FailurePath") else output)
        per_instance = (config.get("ClientConfig") or {}).get("MaxConcurrentInvocationsPerInstance")
        return cls(output, failure, int(per_instance or DEFAULT_CONCURRENCY_PER_INSTANCE))


def check_async_config(config: dict[str, Any], *, serverless: bool) -> None:
    if serverless:
        raise ValidationError(f"{FIELD} is not supported for endpoints with serverless production variants; "
                              "use instance-based variants (InstanceType and InitialInstanceCount).")
    out = config.get("OutputConfig") or {}
    if not out.get("S3OutputPath"):
        raise ValidationError(f"{FIELD}.OutputConfig.S3OutputPath is required: the s3:// prefix inference "
                              "results are written to.")
    per_instance = (config.get("ClientConfig") or {}).get("MaxConcurrentInvocationsPerInstance")
    if per_instance is not None and not (isinstance(per_instance, int)
                                         and 1 <= per_instance <= MAX_CONCURRENCY_PER_INSTANCE):
        raise ValidationError(f"{FIELD}.ClientConfig.MaxConcurrentInvocationsPerInstance must be an integer from 1 "
                              f"to {MAX_CONCURRENCY_PER_INSTANCE}, got {per_instance!r}.")
    AsyncConfig.of(config)  # the paths parse
