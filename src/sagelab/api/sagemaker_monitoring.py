"""SageMaker Model Monitor operations (schedules, executions, data quality job definitions), part of the
SageMaker face's operation table. Translation only."""

from __future__ import annotations

from typing import Any

from sagelab.api.http import Request
from sagelab.api.json_protocol import Handler
from sagelab.api.operations import SAGEMAKER, Operation, PlatformFace
from sagelab.pagination import page

op = SAGEMAKER.op
SCHEDULE = "monitoring-schedule/{MonitoringScheduleName}"
DEFINITION = "data-quality-job-definition/{JobDefinitionName}"


def create_schedule(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    return {"MonitoringScheduleArn": face.platform.monitoring_schedules.create(params, region=request.region)}


def list_schedules(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    items, more = page(face.platform.monitoring_schedules.list(params), params)
    return {"MonitoringScheduleSummaries": items, **more}


def list_executions(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    items, more = page(face.platform.monitoring_schedules.executions(params), params)
    return {"MonitoringExecutionSummaries": items, **more}


def create_definition(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    return {"JobDefinitionArn": face.platform.data_quality_definitions.create(params, region=request.region)}


def delete_definition(face: PlatformFace, params: dict[str, Any], request: Request) -> None:
    name = params["JobDefinitionName"]
    face.platform.data_quality_definitions.delete(
        name, in_use_by=face.platform.monitoring_schedules.using_definition(name))


def list_definitions(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    items, more = page(face.platform.data_quality_definitions.list(params), params)
    return {"JobDefinitionSummaries": items, **more}


MONITORING_OPERATIONS: tuple[Operation[Handler], ...] = (
    op("CreateMonitoringSchedule", create_schedule, SCHEDULE),
    op("DescribeMonitoringSchedule", lambda face, p, r: face.platform.monitoring_schedules.describe(
        p["MonitoringScheduleName"]), SCHEDULE, read_only=True),
    op("ListMonitoringSchedules", list_schedules, read_only=True),
    op("UpdateMonitoringSchedule", lambda face, p, r: {
        "MonitoringScheduleArn": face.platform.monitoring_schedules.update(p)}, SCHEDULE),
    op("DeleteMonitoringSchedule", lambda face, p, r: face.platform.monitoring_schedules.delete(
        p["MonitoringScheduleName"]), SCHEDULE),
    op("StartMonitoringSchedule", lambda face, p, r: face.platform.monitoring_schedules.set_running(
        p["MonitoringScheduleName"], True), SCHEDULE),
    op("StopMonitoringSchedule", lambda face, p, r: face.platform.monitoring_schedules.set_running(
        p["MonitoringScheduleName"], False), SCHEDULE),
    op("ListMonitoringExecutions", list_executions, read_only=True),
    op("CreateDataQualityJobDefinition", create_definition, DEFINITION),
    op("DescribeDataQualityJobDefinition", lambda face, p, r: face.platform.data_quality_definitions.describe(
        p["JobDefinitionName"]), DEFINITION, read_only=True),
    op("ListDataQualityJobDefinitions", list_definitions, read_only=True),
    op("DeleteDataQualityJobDefinition", delete_definition, DEFINITION),
)
