"""Data quality job definitions, and the one typed spec a monitoring execution is run from.

A schedule names a DataQualityJobDefinition (what the SageMaker SDK creates) or carries its own
MonitoringJobDefinition; both are read into a `MonitoringJobSpec` once, when the schedule is made.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from sagelab.account import Account
from sagelab.errors import ResourceInUse, ResourceNotFound, ValidationError
from sagelab.lake.uris import parse_s3_uri
from sagelab.storage.resources import AlreadyExists, Resource, ResourceStore, public

DATA_QUALITY_DEFINITION = "data-quality-job-definition"
DEFAULT_ENDPOINT_PATH = "/opt/ml/processing/input/endpoint"
DEFAULT_OUTPUT_PATH = "/opt/ml/processing/output"
DEFAULT_MAX_RUNTIME = 3600


@dataclasses.dataclass(frozen=True)
class MonitoringJobSpec:
    """What every execution of a data quality schedule runs."""

    definition_name: str | None
    image: str
    environment: dict[str, str]
    arguments: tuple[str, ...]
    endpoint: str
    endpoint_local_path: str
    output_uri: str
    output_local_path: str
    output_kms_key: str
    constraints_uri: str | None
    statistics_uri: str | None
    baselining_job: str | None
    cluster: dict[str, Any]
    role_arn: str
    max_runtime: int


def _baseline(config: dict[str, Any] | None, field: str) -> tuple[str | None, str | None, str | None]:
    config = config or {}
    uris = []
    for member in ("ConstraintsResource", "StatisticsResource"):
        uri = (config.get(member) or {}).get("S3Uri")
        if uri:
            parse_s3_uri(uri, field=f"{field}.{member}.S3Uri")
        uris.append(uri or None)
    return uris[0], uris[1], config.get("BaseliningJobName")


def _endpoint_input(job_input: dict[str, Any] | None, field: str) -> tuple[str, str]:
    endpoint_input = (job_input or {}).get("EndpointInput")
    if not endpoint_input:
        if (job_input or {}).get("BatchTransformInput"):
            raise ValidationError(f"{field}: BatchTransformInput is not supported; sagelab monitors endpoints "
                                  "(give an EndpointInput).")
        raise ValidationError(f"{field}.EndpointInput is required: the endpoint whose captured data is analyzed.")
    if endpoint_input.get("S3InputMode", "File") != "File":
        raise ValidationError(f"{field}.EndpointInput.S3InputMode must be File, got "
                              f"{endpoint_input['S3InputMode']!r}.")
    return endpoint_input["EndpointName"], endpoint_input.get("LocalPath") or DEFAULT_ENDPOINT_PATH


def _output(config: dict[str, Any], field: str) -> tuple[str, str, str]:
    outputs = config.get("MonitoringOutputs") or []
    if len(outputs) != 1:
        raise ValidationError(f"{field}.MonitoringOutputs must hold exactly one output, got {len(outputs)}.")
    s3 = outputs[0]["S3Output"]
    parse_s3_uri(s3["S3Uri"], field=f"{field}.MonitoringOutputs[1].S3Output.S3Uri")
    return s3["S3Uri"], s3.get("LocalPath") or DEFAULT_OUTPUT_PATH, config.get("KmsKeyId") or ""


def spec_from_data_quality(doc: dict[str, Any]) -> MonitoringJobSpec:
    """The spec of a CreateDataQualityJobDefinition request (or its Describe document)."""
    app = doc["DataQualityAppSpecification"]
    if app.get("RecordPreprocessorSourceUri") or app.get("PostAnalyticsProcessorSourceUri"):
        raise ValidationError("DataQualityAppSpecification: RecordPreprocessorSourceUri and "
                              "PostAnalyticsProcessorSourceUri are not supported: sagelab runs no user scripts "
                              "inside the analyzer.")
    constraints, statistics, baselining_job = _baseline(doc.get("DataQualityBaselineConfig"),
                                                        "DataQualityBaselineConfig")
    endpoint, local = _endpoint_input(doc["DataQualityJobInput"], "DataQualityJobInput")
    output_uri, output_local, kms = _output(doc["DataQualityJobOutputConfig"], "DataQualityJobOutputConfig")
    return MonitoringJobSpec(
        definition_name=doc.get("JobDefinitionName"), image=app["ImageUri"],
        environment=dict(app.get("Environment") or {}), arguments=tuple(app.get("ContainerArguments") or ()),
        endpoint=endpoint, endpoint_local_path=local, output_uri=output_uri, output_local_path=output_local,
        output_kms_key=kms, constraints_uri=constraints, statistics_uri=statistics, baselining_job=baselining_job,
        cluster=dict((doc.get("JobResources") or {}).get("ClusterConfig") or {}), role_arn=doc["RoleArn"],
        max_runtime=int((doc.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds") or DEFAULT_MAX_RUNTIME))


def spec_from_inline(definition: dict[str, Any]) -> MonitoringJobSpec:
    """The spec of a schedule's own MonitoringScheduleConfig.MonitoringJobDefinition."""
    field = "MonitoringScheduleConfig.MonitoringJobDefinition"
    inputs = definition.get("MonitoringInputs") or []
    if len(inputs) != 1:
        raise ValidationError(f"{field}.MonitoringInputs must hold exactly one input, got {len(inputs)}.")
    endpoint, local = _endpoint_input(inputs[0], f"{field}.MonitoringInputs[1]")
    constraints, statistics, baselining_job = _baseline(definition.get("BaselineConfig"), f"{field}.BaselineConfig")
    output_uri, output_local, kms = _output(definition["MonitoringOutputConfig"], f"{field}.MonitoringOutputConfig")
    app = definition["MonitoringAppSpecification"]
    return MonitoringJobSpec(
        definition_name=None, image=app["ImageUri"], environment=dict(definition.get("Environment") or {}),
        arguments=tuple(app.get("ContainerArguments") or ()), endpoint=endpoint, endpoint_local_path=local,
        output_uri=output_uri, output_local_path=output_local, output_kms_key=kms, constraints_uri=constraints,
        statistics_uri=statistics, baselining_job=baselining_job,
        cluster=dict((definition.get("MonitoringResources") or {}).get("ClusterConfig") or {}),
        role_arn=definition["RoleArn"],
        max_runtime=int((definition.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
                        or DEFAULT_MAX_RUNTIME))


class DataQualityDefinitions:
    """CreateDataQualityJobDefinition and its Describe, List and Delete."""

    def __init__(self, *, resources: ResourceStore, account: Account):
        self.resources = resources
        self.account = account

    def _arn(self, name: str, region: str | None = None) -> str:
        return self.account.sagemaker_arn(DATA_QUALITY_DEFINITION, name, region)

    def create(self, params: dict[str, Any], *, region: str) -> str:
        name = params["JobDefinitionName"]
        spec_from_data_quality(params)
        arn = self._arn(name, region)
        doc = {"JobDefinitionArn": arn, "JobDefinitionName": name, "CreationTime": time.time(),
               **{k: v for k, v in params.items() if k not in ("JobDefinitionName", "Tags")}}
        try:
            self.resources.insert(DATA_QUALITY_DEFINITION, name, arn, "", doc, created_at=doc["CreationTime"])
        except AlreadyExists:
            raise ResourceInUse(f"Data quality job definition {arn} already exists.") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return arn

    def get(self, name: str) -> Resource:
        res = self.resources.get(DATA_QUALITY_DEFINITION, name)
        if res is None:
            raise ResourceNotFound(f"Job definition {self._arn(name)} does not exist.")
        return res

    def describe(self, name: str) -> dict[str, Any]:
        return public(self.get(name).doc)

    def delete(self, name: str, *, in_use_by: list[str]) -> None:
        self.get(name)
        if in_use_by:
            raise ResourceInUse(f"Job definition {name} is used by monitoring schedule(s) {', '.join(in_use_by)}; "
                                "delete them first.")
        self.resources.delete(DATA_QUALITY_DEFINITION, name)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.resources.list_for_request(DATA_QUALITY_DEFINITION, params)
        endpoint = params.get("EndpointName")
        summaries = []
        for r in rows:
            name = (r.doc["DataQualityJobInput"].get("EndpointInput") or {}).get("EndpointName", "")
            if endpoint and name != endpoint:
                continue
            summaries.append({"MonitoringJobDefinitionName": r.name, "MonitoringJobDefinitionArn": r.arn,
                              "CreationTime": r.created_at, "EndpointName": name})
        return summaries
