"""The SageMaker control plane (AWS JSON 1.1, target prefix `SageMaker`). Translation only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.api.operations import SAGEMAKER, Call, OperationTable
from sagelab.api.runtime import RuntimeFace, is_runtime_path
from sagelab.api.sagemaker_monitoring import MONITORING_OPERATIONS
from sagelab.api.sagemaker_pipelines import PIPELINE_OPERATIONS
from sagelab.api.sagemaker_processing import PROCESSING_OPERATIONS
from sagelab.api.sagemaker_registry import REGISTRY_OPERATIONS
from sagelab.api.sagemaker_tuning import TUNING_OPERATIONS
from sagelab.errors import ValidationError
from sagelab.pagination import page

if TYPE_CHECKING:
    from sagelab.platform import Platform

op = SAGEMAKER.op
TRAINING_JOB = "training-job/{TrainingJobName}"
MODEL = "model/{ModelName}"
ENDPOINT_CONFIG = "endpoint-config/{EndpointConfigName}"
ENDPOINT = "endpoint/{EndpointName}"
TRANSFORM_JOB = "transform-job/{TransformJobName}"
# Tags are read and written on whatever resource the ARN names.
TAGGED = "{ResourceArn}"


class SageMakerFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform
        self.runtime = RuntimeFace(platform)

    # sagemaker-runtime signs with the same service name, so this face also carries InvokeEndpoint.
    def face_for(self, request: Request) -> SageMakerFace | RuntimeFace:
        return self.runtime if is_runtime_path(request.raw_path) else self

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

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

    operations = OperationTable("sagemaker", SAGEMAKER, (
        op("CreateTrainingJob", create_training_job, TRAINING_JOB),
        op("DescribeTrainingJob", describe_training_job, TRAINING_JOB, read_only=True),
        op("ListTrainingJobs", list_training_jobs, read_only=True),
        op("StopTrainingJob", stop_training_job, TRAINING_JOB),
        op("CreateModel", create_model, MODEL),
        op("DescribeModel", lambda face, p, r: face.platform.models.describe(p["ModelName"]), MODEL,
           read_only=True),
        op("ListModels", list_models, read_only=True),
        op("DeleteModel", lambda face, p, r: face.platform.models.delete(p["ModelName"]), MODEL),
        op("CreateEndpointConfig", create_endpoint_config, ENDPOINT_CONFIG),
        op("DescribeEndpointConfig", lambda face, p, r: face.platform.endpoint_configs.describe(
            p["EndpointConfigName"]), ENDPOINT_CONFIG, read_only=True),
        op("ListEndpointConfigs", list_endpoint_configs, read_only=True),
        op("DeleteEndpointConfig", lambda face, p, r: face.platform.endpoint_configs.delete(
            p["EndpointConfigName"]), ENDPOINT_CONFIG),
        op("CreateTransformJob", create_transform_job, TRANSFORM_JOB),
        op("DescribeTransformJob", describe_transform_job, TRANSFORM_JOB, read_only=True),
        op("ListTransformJobs", list_transform_jobs, read_only=True),
        op("StopTransformJob", stop_transform_job, TRANSFORM_JOB),
        op("CreateEndpoint", create_endpoint, ENDPOINT),
        op("DescribeEndpoint", lambda face, p, r: face.platform.endpoints.describe(p["EndpointName"]),
           ENDPOINT, read_only=True),
        op("ListEndpoints", list_endpoints, read_only=True),
        op("DeleteEndpoint", lambda face, p, r: face.platform.endpoints.delete(p["EndpointName"]), ENDPOINT),
        op("UpdateEndpoint", lambda face, p, r: {"EndpointArn": face.platform.endpoints.update(p)}, ENDPOINT),
        op("UpdateEndpointWeightsAndCapacities", lambda face, p, r: {
            "EndpointArn": face.platform.endpoints.update_weights(p)}, ENDPOINT),
        op("AddTags", add_tags, TAGGED),
        op("ListTags", list_tags, TAGGED, read_only=True),
        op("DeleteTags", delete_tags, TAGGED),
        *PROCESSING_OPERATIONS,
        *REGISTRY_OPERATIONS,
        *TUNING_OPERATIONS,
        *PIPELINE_OPERATIONS,
        *MONITORING_OPERATIONS,
    ))
    wire = JsonService("SageMaker", operations)
