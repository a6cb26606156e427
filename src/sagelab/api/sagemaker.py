"""The SageMaker control plane (AWS JSON 1.1, target prefix `SageMaker`). Translation only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.api.runtime import RuntimeFace, is_runtime_path
from sagelab.api.sagemaker_processing import processing_operations
from sagelab.api.sagemaker_registry import registry_operations
from sagelab.api.sagemaker_tuning import tuning_handlers
from sagelab.errors import ValidationError
from sagelab.pagination import page

if TYPE_CHECKING:
    from sagelab.platform import Platform


class SageMakerFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform
        self.runtime = RuntimeFace(platform)
        self.json = JsonService("sagemaker", "SageMaker", {
            "CreateTrainingJob": self.create_training_job,
            "DescribeTrainingJob": self.describe_training_job,
            "ListTrainingJobs": self.list_training_jobs,
            "StopTrainingJob": self.stop_training_job,
            "CreateModel": self.create_model,
            "DescribeModel": lambda p, r: self.platform.models.describe(p["ModelName"]),
            "ListModels": self.list_models,
            "DeleteModel": lambda p, r: self.platform.models.delete(p["ModelName"]),
            "CreateEndpointConfig": self.create_endpoint_config,
            "DescribeEndpointConfig": lambda p, r: self.platform.endpoint_configs.describe(p["EndpointConfigName"]),
            "ListEndpointConfigs": self.list_endpoint_configs,
            "DeleteEndpointConfig": lambda p, r: self.platform.endpoint_configs.delete(p["EndpointConfigName"]),
            "CreateTransformJob": self.create_transform_job,
            "DescribeTransformJob": self.describe_transform_job,
            "ListTransformJobs": self.list_transform_jobs,
            "StopTransformJob": self.stop_transform_job,
            "CreateEndpoint": self.create_endpoint,
            "DescribeEndpoint": lambda p, r: self.platform.endpoints.describe(p["EndpointName"]),
            "ListEndpoints": self.list_endpoints,
            "DeleteEndpoint": lambda p, r: self.platform.endpoints.delete(p["EndpointName"]),
            "UpdateEndpoint": lambda p, r: {"EndpointArn": self.platform.endpoints.update(p)},
            "UpdateEndpointWeightsAndCapacities": lambda p, r: {
                "EndpointArn": self.platform.endpoints.update_weights(p)},
            "AddTags": self.add_tags,
            "ListTags": self.list_tags,
            "DeleteTags": self.delete_tags,
            **processing_operations(platform),
            **registry_operations(platform),
            **tuning_handlers(platform),
        })

    def handle(self, request: Request) -> Response:
        return self.json.handle(request)

    # sagemaker-runtime signs with the same service name, so this face also carries InvokeEndpoint.
    def protocol_for(self, request: Request) -> str:
        return self.runtime.protocol if is_runtime_path(request.raw_path) else self.protocol

    async def handle_async(self, request: Request) -> Response:
        if is_runtime_path(request.raw_path):
            return await self.runtime.handle_async(request)
        return await anyio.to_thread.run_sync(self.json.handle, request)

    # --- training jobs ----------------------------------------------------------------------------------
    def create_training_job(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        job_arn = self.platform.training.create(params, region=request.region, tags=params.get("Tags"))
        return {"TrainingJobArn": job_arn}

    def describe_training_job(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return self.platform.training.describe(params["TrainingJobName"])

    def list_training_jobs(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        items, more = page(self.platform.training.list(params), params)
        return {"TrainingJobSummaries": items, **more}

    def stop_training_job(self, params: dict[str, Any], request: Request) -> None:
        self.platform.training.stop(params["TrainingJobName"])

    # --- models and endpoint configs ----------------------------------------------------------------
    def create_model(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"ModelArn": self.platform.models.create(params, region=request.region)}

    def list_models(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        items, more = page(self.platform.models.list(params), params)
        return {"Models": items, **more}

    def create_endpoint_config(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"EndpointConfigArn": self.platform.endpoint_configs.create(params, region=request.region)}

    def list_endpoint_configs(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        items, more = page(self.platform.endpoint_configs.list(params), params)
        return {"EndpointConfigs": items, **more}

    # --- endpoints -------------------------------------------------------------------------------------
    def create_endpoint(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"EndpointArn": self.platform.endpoints.create(params, region=request.region)}

    def list_endpoints(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        items, more = page(self.platform.endpoints.list(params), params)
        return {"Endpoints": items, **more}

    # --- tags ---------------------------------------------------------------------------------------
    def _resource_arn(self, params: dict[str, Any]) -> str:
        arn = params["ResourceArn"]
        if self.platform.resources.get_by_arn(arn) is None:
            raise ValidationError(f"ResourceArn {arn!r} does not name an existing resource.")
        return arn

    def add_tags(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        arn = self._resource_arn(params)
        tags = {t["Key"]: t.get("Value", "") for t in params["Tags"]}
        self.platform.resources.put_tags(arn, tags)
        return {"Tags": [{"Key": k, "Value": v} for k, v in self.platform.resources.get_tags(arn).items()]}

    def list_tags(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        arn = self._resource_arn(params)
        tags = [{"Key": k, "Value": v} for k, v in self.platform.resources.get_tags(arn).items()]
        items, more = page(tags, params, default_size=50)
        return {"Tags": items, **more}

    def delete_tags(self, params: dict[str, Any], request: Request) -> None:
        self.platform.resources.delete_tags(self._resource_arn(params), params["TagKeys"])

    # --- transform jobs -----------------------------------------------------------------------------
    def create_transform_job(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        job_arn = self.platform.transforms.create(params, region=request.region, tags=params.get("Tags"))
        return {"TransformJobArn": job_arn}

    def describe_transform_job(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return self.platform.transforms.describe(params["TransformJobName"])

    def list_transform_jobs(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        items, more = page(self.platform.transforms.list(params), params)
        return {"TransformJobSummaries": items, **more}

    def stop_transform_job(self, params: dict[str, Any], request: Request) -> None:
        self.platform.transforms.stop(params["TransformJobName"])
