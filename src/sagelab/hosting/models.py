"""Models and endpoint configurations: the documents endpoints and transform jobs are built from."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sagelab.account import Account
from sagelab.algorithms.registry import AlgorithmRegistry
from sagelab.errors import ValidationError
from sagelab.hosting.artifacts import check_container, containers_of
from sagelab.hosting.async_config import check_async_config
from sagelab.hosting.capture import parse_capture_config
from sagelab.hosting.pipeline import check_pipeline_shape
from sagelab.hosting.serverless import check_variant, is_serverless
from sagelab.lake.blobs import BlobStore
from sagelab.storage.resources import AlreadyExists, Resource, ResourceStore, public

MODEL = "model"
ENDPOINT_CONFIG = "endpoint-config"


class StoredModels:
    """Models by name, for whoever only reads them (transform jobs, serving instances, the evaluator)."""

    def __init__(self, resources: ResourceStore, account: Account):
        self.resources = resources
        self.account = account

    def get(self, name: str) -> Resource:
        res = self.resources.get(MODEL, name)
        if res is None:
            raise ValidationError(f'Could not find model "{self.account.sagemaker_arn("model", name)}".')
        return res


class ModelService(StoredModels):
    def __init__(self, *, resources: ResourceStore, account: Account, algorithms: AlgorithmRegistry,
                 blobs: BlobStore, expand_containers: Callable[[dict[str, Any]], dict[str, Any]]):
        super().__init__(resources, account)
        self.algorithms = algorithms
        self.blobs = blobs
        #: Containers naming an (approved) model package take its image and model data (the registry's rule).
        self.expand_containers = expand_containers

    def create(self, params: dict[str, Any], *, region: str) -> str:
        check_pipeline_shape(params)
        params = self.expand_containers(params)
        name = params["ModelName"]
        containers = containers_of(params)
        if params.get("PrimaryContainer") and params.get("Containers"):
            raise ValidationError("Specify either PrimaryContainer or Containers, not both.")
        for index, container in enumerate(containers, start=1):
            field = "PrimaryContainer" if params.get("PrimaryContainer") else f"Containers[{index}]"
            check_container(container, field, self.algorithms, self.blobs)
        arn = self.account.sagemaker_arn("model", name, region)
        doc = {"ModelName": name, "ModelArn": arn, "CreationTime": time.time(),
               "EnableNetworkIsolation": bool(params.get("EnableNetworkIsolation", False))}
        for key in ("PrimaryContainer", "Containers", "ExecutionRoleArn", "InferenceExecutionConfig", "VpcConfig"):
            if params.get(key) is not None:
                doc[key] = params[key]
        try:
            self.resources.insert(MODEL, name, arn, "", doc)
        except AlreadyExists:
            raise ValidationError(f'Cannot create already existing model "{arn}".') from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return arn

    def describe(self, name: str) -> dict[str, Any]:
        return public(self.get(name).doc)

    def delete(self, name: str) -> None:
        self.get(name)
        self.resources.delete(MODEL, name)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.resources.list_for_request(MODEL, params)
        return [{"ModelName": r.name, "ModelArn": r.arn, "CreationTime": r.created_at} for r in rows]


class EndpointConfigService:
    def __init__(self, *, resources: ResourceStore, account: Account, models: StoredModels):
        self.resources = resources
        self.account = account
        self.models = models

    def create(self, params: dict[str, Any], *, region: str) -> str:
        name = params["EndpointConfigName"]
        variants = []
        seen: set[str] = set()
        for index, variant in enumerate(params["ProductionVariants"], start=1):
            where = f"ProductionVariants[{index}]"
            variant_name = variant["VariantName"]
            if variant_name in seen:
                raise ValidationError(f"{where}: VariantName {variant_name!r} is used twice; variant names must be "
                                      "unique within an endpoint config.")
            seen.add(variant_name)
            if not variant.get("ModelName"):
                raise ValidationError(f"{where}: ModelName is required.")
            self.models.get(variant["ModelName"])
            check_variant(variant, where)
            weight = float(variant.get("InitialVariantWeight", 1.0))
            if weight < 0:
                raise ValidationError(f"{where}: InitialVariantWeight must be >= 0, got {weight}.")
            if is_serverless(variant):
                variants.append({**variant, "InitialVariantWeight": weight})
            else:
                variants.append({**variant, "InitialVariantWeight": weight,
                                 "InitialInstanceCount": int(variant.get("InitialInstanceCount") or 1)})
        if sum(v["InitialVariantWeight"] for v in variants) <= 0:
            raise ValidationError("ProductionVariants: at least one variant needs an InitialVariantWeight above 0.")
        if params.get("AsyncInferenceConfig") is not None:
            check_async_config(params["AsyncInferenceConfig"], serverless=any(map(is_serverless, variants)))
        if params.get("DataCaptureConfig") is not None:
            parse_capture_config(params["DataCaptureConfig"])
        arn = self.account.sagemaker_arn("endpoint-config", name, region)
        doc = {"EndpointConfigName": name, "EndpointConfigArn": arn, "ProductionVariants": variants,
               "CreationTime": time.time()}
        for key in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ShadowProductionVariants"):
            if params.get(key) is not None:
                doc[key] = params[key]
        try:
            self.resources.insert(ENDPOINT_CONFIG, name, arn, "", doc)
        except AlreadyExists:
            raise ValidationError(f'Cannot create already existing endpoint configuration "{arn}".') from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return arn

    def get(self, name: str) -> Resource:
        res = self.resources.get(ENDPOINT_CONFIG, name)
        if res is None:
            arn = self.account.sagemaker_arn("endpoint-config", name)
            raise ValidationError(f'Could not find endpoint configuration "{arn}".')
        return res

    def describe(self, name: str) -> dict[str, Any]:
        return public(self.get(name).doc)

    def delete(self, name: str) -> None:
        self.get(name)
        self.resources.delete(ENDPOINT_CONFIG, name)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.resources.list_for_request(ENDPOINT_CONFIG, params)
        return [{"EndpointConfigName": r.name, "EndpointConfigArn": r.arn, "CreationTime": r.created_at}
                for r in rows]
