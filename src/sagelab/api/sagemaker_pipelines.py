"""SageMaker Pipelines operations, part of the SageMaker face's operation table. Translation only."""

from __future__ import annotations

from typing import Any

from sagelab.api.http import Request
from sagelab.api.json_protocol import Handler
from sagelab.api.operations import SAGEMAKER, Operation, PlatformFace
from sagelab.pagination import page

op = SAGEMAKER.op
PIPELINE = "pipeline/{PipelineName}"
# An execution's ARN is the pipeline's ARN followed by /execution/<id>.
EXECUTION = "{PipelineExecutionArn}"


def _pipelines(face: PlatformFace):  # -> PipelineService, resolved per call
    return face.platform.pipelines


def update_pipeline(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    arn, version = _pipelines(face).update(params)
    return {"PipelineArn": arn, "PipelineVersionId": version}


def list_pipelines(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    items, more = page(_pipelines(face).list(params), params)
    return {"PipelineSummaries": items, **more}


def list_pipeline_executions(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    items, more = page(_pipelines(face).list_executions(params), params)
    return {"PipelineExecutionSummaries": items, **more}


def list_pipeline_execution_steps(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    items, more = page(_pipelines(face).list_steps(params), params)
    return {"PipelineExecutionSteps": items, **more}


def list_pipeline_parameters(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    items, more = page(_pipelines(face).list_parameters(params["PipelineExecutionArn"]), params)
    return {"PipelineParameters": items, **more}


PIPELINE_OPERATIONS: tuple[Operation[Handler], ...] = (
    op("CreatePipeline", lambda face, p, r: {"PipelineArn": _pipelines(face).create(p, region=r.region)}, PIPELINE),
    op("DescribePipeline", lambda face, p, r: _pipelines(face).describe(p["PipelineName"]), PIPELINE,
       read_only=True),
    op("UpdatePipeline", update_pipeline, PIPELINE),
    op("DeletePipeline", lambda face, p, r: {"PipelineArn": _pipelines(face).delete(p["PipelineName"])}, PIPELINE),
    op("ListPipelines", list_pipelines, read_only=True),
    op("StartPipelineExecution", lambda face, p, r: {"PipelineExecutionArn": _pipelines(face).start(p)}, PIPELINE),
    op("DescribePipelineExecution", lambda face, p, r: _pipelines(face).describe_execution(
        p["PipelineExecutionArn"]), EXECUTION, read_only=True),
    op("DescribePipelineDefinitionForExecution", lambda face, p, r: _pipelines(face).definition_for_execution(
        p["PipelineExecutionArn"]), EXECUTION, read_only=True),
    # Scoped List* calls: they read one pipeline's executions, or one execution's steps or parameters.
    op("ListPipelineExecutions", list_pipeline_executions, PIPELINE, read_only=True),
    op("ListPipelineExecutionSteps", list_pipeline_execution_steps, EXECUTION, read_only=True),
    op("ListPipelineParametersForExecution", list_pipeline_parameters, EXECUTION, read_only=True),
    op("StopPipelineExecution", lambda face, p, r: {"PipelineExecutionArn": _pipelines(face).stop(
        p["PipelineExecutionArn"])}, EXECUTION),
    op("RetryPipelineExecution", lambda face, p, r: {"PipelineExecutionArn": _pipelines(face).retry(p)}, EXECUTION),
)
