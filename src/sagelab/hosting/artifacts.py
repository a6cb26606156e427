"""From a model's containers to something that answers requests: fetch each `model.tar.gz` from the
lake, unpack it safely, load it with its algorithm; several containers make a pipeline (see `pipeline`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sagelab.algorithms.base import Predictor, ScriptModeAlgorithm
from sagelab.algorithms.registry import AlgorithmRegistry, entry_point_of_container
from sagelab.containers.archives import ArchiveError, fetch_folder
from sagelab.errors import S3Error, ValidationError
from sagelab.hosting.pipeline import (
    DEFAULT_ACCEPT_VARIABLE,
    DirectContainers,
    PipelinePredictor,
    container_hostnames,
    is_direct,
)
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
    algorithms.for_serving_image(container.get("Image", ""), field=f"{field}.Image",
                                 entry_point=entry_point_of_container(container))
    url = model_data_url(container)
    if not url:
        raise ValidationError(f"{field} needs a ModelDataUrl (or ModelDataSource) for its model artifact.")
    uri = parse_s3_uri(url, field=f"{field}.ModelDataUrl")
    if is_multi_model(container):
        # The models come and go under the prefix; only the bucket has to be there now.
        try:
            blobs.head_bucket(uri.bucket)
        except S3Error as exc:
            raise ValidationError(f"{field}.ModelDataUrl: could not find the bucket of the multi-model prefix "
                                  f"{url}: {exc.message}") from None
        return
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


def is_multi_model(container: dict[str, Any]) -> bool:
    return container.get("Mode") == "MultiModel"


def load_container(blobs: BlobStore, registry: AlgorithmRegistry, container: dict[str, Any], model_dir: Path,
                   *, code_dir: Path, threads: int = 1, cache_dir: Path | None = None) -> Predictor:
    """One container's predictor for the model files already in `model_dir`."""
    image = container.get("Image", "")
    try:
        algorithm = registry.for_serving_image(image, field="Container Image",
                                               entry_point=entry_point_of_container(container))
    except ValidationError as exc:
        raise ModelLoadError(exc.message) from exc
    try:
        if isinstance(algorithm, ScriptModeAlgorithm):
            predictor = algorithm.load_script(model_dir, environment=dict(container.get("Environment") or {}),
                                              blobs=blobs, work_dir=code_dir, cache_dir=cache_dir)
        else:
            predictor = algorithm.load(model_dir)
    except Exception as exc:  # noqa: BLE001 - whatever the library says is the reason
        raise ModelLoadError(f"Failed to load the model at {model_data_url(container) or model_dir} with "
                             f"{algorithm.name}: {exc}") from exc
    set_threads = getattr(predictor, "set_threads", None)
    if set_threads is not None:
        set_threads(threads)
    return predictor


def load_predictor(blobs: BlobStore, registry: AlgorithmRegistry, model_doc: dict[str, Any], work_dir: Path,
                   *, threads: int = 1, cache_dir: Path | None = None, role: RoleAccess | None = None) -> Predictor:
    """Load every container of a model; `threads` is how many cores one prediction may use. A framework
    container (script mode) runs the user's inference functions in this process. With a `role` (the model's
    execution role, when it is one of this server's), each container's model data is fetched only if the
    role may read it."""
    if is_direct(model_doc):
        raise ModelLoadError("The model's containers run in Direct mode (InferenceExecutionConfig): each request "
                             "names its container with TargetContainerHostname, which only an endpoint's "
                             "InvokeEndpoint can; batch transform runs a pipeline in Serial mode.")
    return _load_all(blobs, registry, model_doc, work_dir, threads=threads, cache_dir=cache_dir, role=role)


def load_direct(blobs: BlobStore, registry: AlgorithmRegistry, model_doc: dict[str, Any], work_dir: Path,
                *, cache_dir: Path | None = None, role: RoleAccess | None = None) -> DirectContainers:
    """A Direct-mode model's containers, by hostname, for an endpoint instance."""
    stages = _load_stages(blobs, registry, model_doc, work_dir, threads=1, cache_dir=cache_dir, role=role)
    return DirectContainers(dict(zip(container_hostnames(containers_of(model_doc)), stages, strict=True)))


def _load_all(blobs: BlobStore, registry: AlgorithmRegistry, model_doc: dict[str, Any], work_dir: Path,
              *, threads: int, cache_dir: Path | None, role: RoleAccess | None) -> Predictor:
    containers = containers_of(model_doc)
    stages = _load_stages(blobs, registry, model_doc, work_dir, threads=threads, cache_dir=cache_dir, role=role)
    if len(stages) == 1:
        return stages[0]
    return PipelinePredictor(stages, [(c.get("Environment") or {}).get(DEFAULT_ACCEPT_VARIABLE) for c in containers])


def _load_stages(blobs: BlobStore, registry: AlgorithmRegistry, model_doc: dict[str, Any], work_dir: Path,
                 *, threads: int, cache_dir: Path | None, role: RoleAccess | None) -> list[Predictor]:
    stages = []
    containers = containers_of(model_doc)
    for index, container in enumerate(containers):
        image = container.get("Image", "")
        if is_multi_model(container):
            raise ModelLoadError(f"Container {index + 1} ({image}) is a multi-model container (Mode MultiModel): "
                                 "it serves its models one TargetModel at a time on an endpoint, not as one model.")
        url = model_data_url(container)
        if not url:
            raise ModelLoadError(f"Container {index + 1} ({image}) has no ModelDataUrl.")
        if role is not None:
            try:
                role.require_read(blobs, parse_s3_uri(url, field="ModelDataUrl"))
            except RoleAccessDenied as exc:
                raise ModelLoadError(str(exc)) from exc
        model_dir = fetch_model_dir(blobs, url, work_dir / f"container-{index}")
        stages.append(load_container(blobs, registry, container, model_dir, code_dir=work_dir / f"container-{index}-code",
                                     threads=threads, cache_dir=cache_dir))
    return stages
