"""From a model's containers to something that answers requests: fetch each `model.tar.gz` from the
lake, unpack it safely, load it with its algorithm, and chain the containers of an inference pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sagelab.algorithms.base import Predictor, ScriptModeAlgorithm
from sagelab.algorithms.registry import AlgorithmRegistry, entry_point_of_container
from sagelab.containers.archives import ArchiveError, fetch_folder
from sagelab.errors import S3Error, ValidationError
from sagelab.iam.role_access import RoleAccess, RoleAccessDenied
from sagelab.lake.blobs import BlobStore
from sagelab.lake.uris import parse_s3_uri


class ModelLoadError(Exception):
    """The model cannot be loaded; the message becomes the endpoint's or job's FailureReason."""


def containers_of(model_doc: dict[str, Any]) -> list[dict[str, Any]]:
    if model_doc.get("Containers"):
        return list(model_doc["Containers"])
    if model_doc.get("PrimaryContainer"):
        return [model_doc["PrimaryContainer"]]
    raise ValidationError("A model needs a PrimaryContainer or Containers.")


def model_data_url(container: dict[str, Any]) -> str | None:
    if container.get("ModelDataUrl"):
        return container["ModelDataUrl"]
    source = (container.get("ModelDataSource") or {}).get("S3DataSource")
    return source.get("S3Uri") if source else None


def check_container(container: dict[str, Any], field: str, algorithms: AlgorithmRegistry, blobs: BlobStore) -> None:
    """Refuse, at creation time, a container whose image no algorithm serves or whose model data is missing."""
    algorithms.for_image(container.get("Image", ""), field=f"{field}.Image",
                         entry_point=entry_point_of_container(container))
    url = model_data_url(container)
    if not url:
        raise ValidationError(f"{field} needs a ModelDataUrl (or ModelDataSource) for its model artifact.")
    uri = parse_s3_uri(url, field=f"{field}.ModelDataUrl")
    try:
        if uri.key.endswith("/"):
            if next(blobs.list(uri.bucket, uri.key), None) is None:
                raise ValidationError(f"{field}: could not find model data at {url}: the prefix is empty.")
        else:
            blobs.head(uri.bucket, uri.key)
    except S3Error as exc:
        raise ValidationError(f"{field}: could not find model data at {url}: {exc.message}") from None


def fetch_model_dir(blobs: BlobStore, url: str, target: Path) -> Path:
    parse_s3_uri(url, field="ModelDataUrl")
    try:
        return fetch_folder(blobs, url, target, what="model data")
    except ArchiveError as exc:
        raise ModelLoadError(str(exc)) from exc


class PipelinePredictor:
    """Containers in order: each one's output is the next one's input (an inference pipeline)."""

    def __init__(self, stages: Sequence[Predictor]):
        self.stages = list(stages)
        first, last = self.stages[0], self.stages[-1]
        self.content_types = first.content_types
        self.accept_types = last.accept_types
        self.default_accept = last.default_accept

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        for stage, following in zip(self.stages, self.stages[1:], strict=False):
            wanted = following.content_types[0] if "text/csv" not in following.content_types else "text/csv"
            body, content_type = stage.invoke(body, content_type, wanted)
        return self.stages[-1].invoke(body, content_type, accept)


def load_predictor(blobs: BlobStore, registry: AlgorithmRegistry, model_doc: dict[str, Any], work_dir: Path,
                   *, threads: int = 1, cache_dir: Path | None = None, role: RoleAccess | None = None) -> Predictor:
    """Load every container of a model; `threads` is how many cores one prediction may use. A framework
    container (script mode) runs the user's inference functions in this process. With a `role` (the model's
    execution role, when it is one of this server's), each container's model data is fetched only if the
    role may read it."""
    stages = []
    for index, container in enumerate(containers_of(model_doc)):
        image = container.get("Image", "")
        try:
            algorithm = registry.for_image(image, field="Container Image",
                                           entry_point=entry_point_of_container(container))
        except ValidationError as exc:
            raise ModelLoadError(exc.message) from exc
        url = model_data_url(container)
        if not url:
            raise ModelLoadError(f"Container {index + 1} ({image}) has no ModelDataUrl.")
        if role is not None:
            try:
                role.require_read(blobs, parse_s3_uri(url, field="ModelDataUrl"))
            except RoleAccessDenied as exc:
                raise ModelLoadError(str(exc)) from exc
        model_dir = fetch_model_dir(blobs, url, work_dir / f"container-{index}")
        try:
            if isinstance(algorithm, ScriptModeAlgorithm):
                predictor = algorithm.load_script(model_dir, environment=dict(container.get("Environment") or {}),
                                                  blobs=blobs, work_dir=work_dir / f"container-{index}-code",
                                                  cache_dir=cache_dir)
            else:
                predictor = algorithm.load(model_dir)
        except Exception as exc:  # noqa: BLE001 - whatever the library says is the reason
            raise ModelLoadError(f"Failed to load the model at {url} with {algorithm.name}: {exc}") from exc
        set_threads = getattr(predictor, "set_threads", None)
        if set_threads is not None:
            set_threads(threads)
        stages.append(predictor)
    return stages[0] if len(stages) == 1 else PipelinePredictor(stages)
