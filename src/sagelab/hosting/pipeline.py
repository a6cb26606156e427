"""Inference pipelines and multi-container models: what CreateModel accepts, and how the containers run.

An inference pipeline is `Containers` with 2 to 15 entries run in order (InferenceExecutionConfig Mode
`Serial`, SageMaker's default), or, in Mode `Direct`, each invoked alone by its ContainerHostname. A
multi-model container (`Mode: MultiModel`) serves many artifacts under one S3 prefix, so it stands alone as
the PrimaryContainer: SageMaker hosts multi-model endpoints with one container.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sagelab.algorithms.base import Predictor
from sagelab.errors import InvocationValidationError, ValidationError

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


#: The container variable SageMaker's framework containers answer with when a request names no Accept.
DEFAULT_ACCEPT_VARIABLE = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"


class PipelinePredictor:
    """Containers in order: each one's output is the next one's input (an inference pipeline, Serial mode).

    As on SageMaker, the request's ContentType goes to the first container and its Accept to the last; each
    container in between answers in its `SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT` when its Environment sets
    one, otherwise in a type the next container reads (CSV first), and the content type it answers with
    becomes the next container's ContentType."""

    def __init__(self, stages: Sequence[Predictor], default_accepts: Sequence[str | None] = ()):
        self.stages = list(stages)
        first, last = self.stages[0], self.stages[-1]
        self.content_types = first.content_types
        self.accept_types = last.accept_types
        self.default_accept = last.default_accept
        defaults = list(default_accepts) + [None] * len(self.stages)
        self._handoffs = [defaults[index] or _handoff_type(following)
                          for index, following in enumerate(self.stages[1:])]

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        for stage, wanted in zip(self.stages, self._handoffs, strict=False):
            body, content_type = stage.invoke(body, content_type, wanted)
        return self.stages[-1].invoke(body, content_type, accept)


class DirectContainers:
    """A multi-container model in InferenceExecutionConfig Mode Direct: each request runs only the container
    its TargetContainerHostname names. Containers without a ContainerHostname are named by position,
    `container-1`, `container-2`, ..."""

    def __init__(self, stages: dict[str, Predictor]):
        self.stages = stages

    def stage(self, hostname: str | None) -> Predictor:
        if not hostname:
            raise InvocationValidationError(
                "TargetContainerHostname is required: this endpoint's model runs its containers in Direct mode "
                f"(InferenceExecutionConfig); name one of {', '.join(self.stages)}.")
        if hostname not in self.stages:
            raise InvocationValidationError(f"TargetContainerHostname {hostname!r} is not a container of this "
                                            f"endpoint's model; its containers are {', '.join(self.stages)}.")
        return self.stages[hostname]


def container_hostnames(containers: Sequence[dict[str, Any]]) -> list[str]:
    return [c.get("ContainerHostname") or f"container-{index}" for index, c in enumerate(containers, start=1)]


def is_direct(model_doc: dict[str, Any]) -> bool:
    return (model_doc.get("InferenceExecutionConfig") or {}).get("Mode") == "Direct"


def _handoff_type(following: Predictor) -> str:
    return "text/csv" if "text/csv" in following.content_types else following.content_types[0]
