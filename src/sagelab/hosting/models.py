"""Models and endpoint configurations: the documents endpoints and transform jobs are built from."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sagelab.arns import sagemaker_arn
from sagelab.errors import ValidationError
from sagelab.hosting.artifacts import check_container, containers_of
from sagelab.storage.resources import AlreadyExists, Resource, public

if TYPE_CHECKING:
    from sagelab.platform import Platform

MODEL = "model"
ENDPOINT_CONFIG = "endpoint-config"


class ModelService:
    def __init__(self, platform: Platform):
        self.platform = platform

    def create(self, params: dict[str, Any], *, region: str) -> str:
        # Containers naming a (approved) model package take its image and model data.
        params = self.platform.model_packages.expand_model_containers(params)
        name = params["ModelName"]
        containers = containers_of(params)
        if params.get("PrimaryContainer") and params.get("Containers"):
            raise ValidationError("Specify either PrimaryContainer or Containers, not both.")
        for index, container in enumerate(containers, start=1):
            field = "PrimaryContainer" if params.get("PrimaryContainer") else f"Containers[{index}]"
            check_container(container, field, self.platform.algorithms, self.platform.blobs)
        arn = sagemaker_arn(region, self.platform.account_id, "model", name)
        doc = {"ModelName": name, "ModelArn": arn, "CreationTime": time.time(),
               "EnableNetworkIsolation": bool(params.get("EnableNetworkIsolation", False))}
        for key in ("PrimaryContainer", "Containers", "ExecutionRoleArn", "InferenceExecutionConfig", "VpcConfig"):
            if params.get(key) is not None:
                doc[key] = params[key]
        try:
            self.platform.resources.insert(MODEL, name, arn, "", doc)
        except AlreadyExists:
            raise ValidationError(f'Cannot create already existing model "{arn}".') from None
        if params.get("Tags"):
            self.platform.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return arn

    def get(self, name: str) -> Resource:
        res = self.platform.resources.get(MODEL, name)
        if res is None:
            arn = sagemaker_arn(self.platform.settings.region, self.platform.account_id, "model", name)
            raise ValidationError(f'Could not find model "{arn}".')
        return res

    def describe(self, name: str) -> dict[str, Any]:
        return public(self.get(name).doc)

    def delete(self, name: str) -> None:
        self.get(name)
        self.platform.resources.delete(MODEL, name)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.platform.resources.list_for_request(MODEL, params)
        return [{"ModelName": r.name, "ModelArn": r.arn, "CreationTime": r.created_at} for r in rows]


class EndpointConfigService:
    def __init__(self, platform: Platform):
        self.platform = platform

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
            self.platform.models.get(variant["ModelName"])
            if variant.get("ServerlessConfig") is None and not variant.get("InitialInstanceCount"):
                raise ValidationError(f"{where}: InitialInstanceCount is required (>= 1) for instance-based variants.")
            weight = float(variant.get("InitialVariantWeight", 1.0))
            if weight < 0:
                raise ValidationError(f"{where}: InitialVariantWeight must be >= 0, got {weight}.")
            variants.append({**variant, "InitialVariantWeight": weight,
                             "InitialInstanceCount": int(variant.get("InitialInstanceCount") or 1)})
        if sum(v["InitialVariantWeight"] for v in variants) <= 0:
            raise ValidationError("ProductionVariants: at least one variant needs an InitialVariantWeight above 0.")
        arn = sagemaker_arn(region, self.platform.account_id, "endpoint-config", name)
        doc = {"EndpointConfigName": name, "EndpointConfigArn": arn, "ProductionVariants": variants,
               "CreationTime": time.time()}
        for key in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ShadowProductionVariants"):
            if params.get(key) is not None:
                doc[key] = params[key]
        try:
            self.platform.resources.insert(ENDPOINT_CONFIG, name, arn, "", doc)
        except AlreadyExists:
            raise ValidationError(f'Cannot create already existing endpoint configuration "{arn}".') from None
        if params.get("Tags"):
            self.platform.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return arn

    def get(self, name: str) -> Resource:
        res = self.platform.resources.get(ENDPOINT_CONFIG, name)
        if res is None:
            arn = sagemaker_arn(self.platform.settings.region, self.platform.account_id, "endpoint-config", name)
            raise ValidationError(f'Could not find endpoint configuration "{arn}".')
        return res

    def describe(self, name: str) -> dict[str, Any]:
        return public(self.get(name).doc)

    def delete(self, name: str) -> None:
        self.get(name)
        self.platform.resources.delete(ENDPOINT_CONFIG, name)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.platform.resources.list_for_request(ENDPOINT_CONFIG, params)
        return [{"EndpointConfigName": r.name, "EndpointConfigArn": r.arn, "CreationTime": r.created_at}
                for r in rows]
