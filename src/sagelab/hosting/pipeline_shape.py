"""What CreateModel accepts of inference pipelines and multi-model containers, checked before anything is stored.

An inference pipeline is `Containers` with 2 to 15 entries run in order (InferenceExecutionConfig Mode
`Serial`, SageMaker's default), or, in Mode `Direct`, each invoked alone by its ContainerHostname. A multi-model container (`Mode: MultiModel`) serves many artifacts under one
S3 prefix, so it stands alone as the PrimaryContainer: SageMaker hosts multi-model endpoints with one
container.
"""

from __future__ import annotations

from typing import Any

from sagelab.errors import ValidationError

MIN_PIPELINE_CONTAINERS = 2
MAX_PIPELINE_CONTAINERS = 15


def check_pipeline_shape(params: dict[str, Any]) -> None:
    containers = params.get("Containers")
    if containers is not None:
        count = len(containers)
        if not MIN_PIPELINE_CONTAINERS <= count <= MAX_PIPELINE_CONTAINERS:
            raise ValidationError(
                f"Containers: an inference pipeline has {MIN_PIPELINE_CONTAINERS} to {MAX_PIPELINE_CONTAINERS} "
                f"containers; got {count}." + (" For one container, use PrimaryContainer." if count == 1 else ""))
        for index, container in enumerate(containers, start=1):
            if container.get("Mode") == "MultiModel":
                raise ValidationError(f"Containers[{index}].Mode: MultiModel is not supported in an inference "
                                      "pipeline; a multi-model endpoint has one container, given as "
                                      "PrimaryContainer.")
        hostnames = [c.get("ContainerHostname") for c in containers]
        named = [h for h in hostnames if h]
        if named and len(named) != len(hostnames):
            raise ValidationError("Containers: ContainerHostname is given for some containers but not all; give "
                                  "it for every container of the pipeline, or for none.")
        if len(set(named)) != len(named):
            raise ValidationError(f"Containers: ContainerHostname values must be unique; got {', '.join(named)}.")
    mode = (params.get("InferenceExecutionConfig") or {}).get("Mode")
    if mode == "Direct" and containers is None:
        raise ValidationError("InferenceExecutionConfig.Mode Direct needs Containers (a multi-container model); "
                              "this model has a PrimaryContainer.")
    primary = params.get("PrimaryContainer") or {}
    if primary.get("Mode") == "MultiModel":
        url = primary.get("ModelDataUrl")
        if not url:
            raise ValidationError("PrimaryContainer.ModelDataUrl: a multi-model container (Mode MultiModel) needs "
                                  "the S3 prefix its models are under, e.g. s3://bucket/models/.")
        if url.lower().endswith((".tar.gz", ".tgz")):
            raise ValidationError(f"PrimaryContainer.ModelDataUrl: a multi-model container needs an S3 prefix "
                                  f"(the folder its model.tar.gz files are in), got the object {url}.")
