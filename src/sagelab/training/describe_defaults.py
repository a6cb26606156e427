"""The defaults SageMaker fills in when it echoes a CreateTrainingJob request in DescribeTrainingJob.

Clients read them back: the SageMaker SDK's `Estimator.attach()` indexes `OutputDataConfig.KmsKeyId`,
`ResourceConfig.VolumeSizeInGB` and `StoppingCondition.MaxRuntimeInSeconds` without checking they exist.
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_RESOURCE_CONFIG = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}
DEFAULT_MAX_RUNTIME = 86400


def output_data_config(request: dict[str, Any]) -> dict[str, Any]:
    return {"KmsKeyId": "", "CompressionType": "GZIP", **request}


def resource_config(request: dict[str, Any] | None) -> dict[str, Any]:
    if not request:
        return dict(DEFAULT_RESOURCE_CONFIG)
    if "InstanceGroups" in request:
        return {"VolumeSizeInGB": DEFAULT_RESOURCE_CONFIG["VolumeSizeInGB"], **request}
    return {**DEFAULT_RESOURCE_CONFIG, **request}


def stopping_condition(request: dict[str, Any] | None, max_runtime: int) -> dict[str, Any]:
    return {"MaxRuntimeInSeconds": max_runtime, **(request or {})}


def input_data_config(channels: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    echoed = []
    for channel in channels or []:
        channel = {"CompressionType": "None", "RecordWrapperType": "None", **copy.deepcopy(channel)}
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source is not None:
            source.setdefault("S3DataDistributionType", "FullyReplicated")
        echoed.append(channel)
    return echoed
