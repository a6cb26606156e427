"""A multi-model container inside one serving instance: the models under an S3 prefix, loaded on first use.

InvokeEndpoint names the model with `TargetModel`, a key relative to the container's ModelDataUrl prefix
(`model-a.tar.gz`). The first request for it downloads and unpacks the artifact and loads it with the
container's algorithm; later requests find it in the cache. As on SageMaker, the cache is bounded by memory:
past the instance's budget (or its count cap) the least recently used models are unloaded, and a request
for one of them loads it again. A model's footprint is taken as the size of its unpacked artifact, which is
what library-native model files (XGBoost JSON, NumPy arrays) occupy once loaded, give or take.

An instance answers one request at a time (see `instance`), so the cache needs no lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagelab.algorithms.base import Predictor
from sagelab.algorithms.registry import AlgorithmRegistry
from sagelab.containers.archives import ArchiveError, fetch_folder
from sagelab.errors import InvocationValidationError, S3Error
from sagelab.hosting.artifacts import ModelLoadError, load_container, model_data_url
from sagelab.iam.role_access import RoleAccess, RoleAccessDenied
from sagelab.lake.blobs import BlobStore
from sagelab.lake.uris import parse_s3_uri

#: botocore's limit on the X-Amzn-SageMaker-Target-Model header.
MAX_TARGET_LENGTH = 1024


@dataclasses.dataclass
class LoadedModel:
    predictor: Predictor
    #: Bytes the model is taken to occupy (its unpacked artifact).
    size: int
    folder: Path


@dataclasses.dataclass
class CacheVisit:
    """What one request found: published as SageMaker's multi-model metrics (seconds here, µs there)."""

    hit: bool
    loaded: int = 0
    wait_seconds: float = 0.0
    download_seconds: float = 0.0
    load_seconds: float = 0.0
    unload_seconds: float = 0.0

    def to_header(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ModelCache:
    """Loaded models, least recently used first, held under a byte budget and a count cap."""

    def __init__(self, *, budget_bytes: int, max_models: int, load: Callable[[str, CacheVisit], LoadedModel],
                 unload: Callable[[LoadedModel], None]):
        self.budget_bytes = budget_bytes
        self.max_models = max(1, max_models)
        self._load = load
        self._unload = unload
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, target: str) -> bool:
        return target in self._models

    @property
    def used_bytes(self) -> int:
        return sum(m.size for m in self._models.values())

    def get(self, target: str) -> tuple[LoadedModel, CacheVisit]:
        model = self._models.get(target)
        if model is not None:
            self._models.move_to_end(target)
            return model, CacheVisit(hit=True, loaded=len(self._models))
        visit = CacheVisit(hit=False)
        started = time.perf_counter()
        model = self._load(target, visit)
        self._models[target] = model
        visit.unload_seconds = self._make_room(keep=target)
        visit.wait_seconds = time.perf_counter() - started
        visit.loaded = len(self._models)
        return model, visit

    def drop(self, target: str) -> float:
        """Unload one model now; returns the seconds it took."""
        model = self._models.pop(target, None)
        if model is None:
            return 0.0
        started = time.perf_counter()
        self._unload(model)
        return time.perf_counter() - started

    def _make_room(self, *, keep: str) -> float:
        """Unload the least recently used models (never `keep`) until the cache fits its budget and cap."""
        spent = 0.0
        while len(self._models) > 1 and (len(self._models) > self.max_models or self.used_bytes > self.budget_bytes):
            oldest = next(name for name in self._models if name != keep)
            spent += self.drop(oldest)
        return spent


class MultiModelHost:
    """The container's side: a TargetModel -> its predictor, loaded from under the prefix when not cached."""

    def __init__(self, *, blobs: BlobStore, registry: AlgorithmRegistry, container: dict[str, Any], work_dir: Path,
                 budget_bytes: int, max_models: int, cache_dir: Path | None = None, role: RoleAccess | None = None):
        self.blobs = blobs
        self.registry = registry
        self.container = container
        self.work_dir = work_dir
        self.cache_dir = cache_dir
        self.role = role
        url = model_data_url(container) or ""
        self.prefix = parse_s3_uri(url if url.endswith("/") else url + "/", field="ModelDataUrl")
        #: MultiModelConfig.ModelCacheSetting Disabled: every request loads its model and unloads it after.
        self.caching = (container.get("MultiModelConfig") or {}).get("ModelCacheSetting", "Enabled") != "Disabled"
        self.cache = ModelCache(budget_bytes=budget_bytes, max_models=max_models, load=self._load,
                                unload=self._unload)

    def predictor_for(self, target: str | None) -> tuple[Predictor, CacheVisit]:
        key = self._key(target)
        model, visit = self.cache.get(key)
        return model.predictor, visit

    def after_invoke(self, target: str | None, visit: CacheVisit) -> None:
        if not self.caching and target:
            visit.unload_seconds += self.cache.drop(self._key(target))
            visit.loaded = len(self.cache)

    # --- loading -------------------------------------------------------------------------------------------
    def _key(self, target: str | None) -> str:
        if not target:
            raise InvocationValidationError(
                "TargetModel is required: this is a multi-model endpoint; name the model to invoke, a key relative "
                f"to the model's ModelDataUrl s3://{self.prefix.bucket}/{self.prefix.key} (e.g. model-a.tar.gz).")
        if len(target) > MAX_TARGET_LENGTH or target.startswith("/") or ".." in target.split("/"):
            raise InvocationValidationError(
                f"TargetModel {target[:100]!r} is not a key relative to the model's ModelDataUrl prefix: it must be "
                f"at most {MAX_TARGET_LENGTH} characters, not start with '/' and have no '..' segment.")
        return target

    def _load(self, target: str, visit: CacheVisit) -> LoadedModel:
        bucket, key = self.prefix.bucket, self.prefix.key + target
        url = f"s3://{bucket}/{key}"
        missing = InvocationValidationError(
            f"Failed to download model data(bucket: {bucket}, key: {key}) for TargetModel {target!r}. Please ensure "
            "that there is an object located at the URL and that the role passed to CreateModel has permissions "
            "to download the model.")
        try:
            if self.role is not None:
                self.role.require("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}")
            self.blobs.head(bucket, key)
        except (S3Error, RoleAccessDenied):
            raise missing from None
        folder = self.work_dir / "models" / hashlib.sha256(target.encode()).hexdigest()[:24]
        started = time.perf_counter()
        try:
            model_dir = fetch_folder(self.blobs, url, folder / "model", what="model data")
        except ArchiveError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise ModelLoadError(str(exc)) from exc
        loading = time.perf_counter()
        visit.download_seconds = loading - started
        try:
            predictor = load_container(self.blobs, self.registry, {**self.container, "ModelDataUrl": url}, model_dir,
                                       code_dir=folder / "code", cache_dir=self.cache_dir)
        except ModelLoadError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        visit.load_seconds = time.perf_counter() - loading
        size = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
        return LoadedModel(predictor, size, folder)

    def _unload(self, model: LoadedModel) -> None:
        close = getattr(model.predictor, "close", None)
        if close is not None:
            close()
        shutil.rmtree(model.folder, ignore_errors=True)
