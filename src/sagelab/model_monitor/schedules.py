"""Monitoring schedules and their executions: Scheduled <-> Stopped; each firing runs a processing job.

A schedule's next firing time is kept in its document (`_NextRun`), so a restarted server carries on
where the last one stopped; a firing missed while no server ran is made up once, not once per hour.
Each firing records a `monitoring-execution` document and starts a processing job with the job
definition's (analyzer) image over the endpoint's captured data, the baseline files and the window's
start and end in its Environment, as SageMaker's prebuilt monitor container is run. The execution's
status is read from its processing job: Completed with an ExitMessage starting with
`CompletedWithViolations` is CompletedWithViolations, as on AWS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from typing import Any

from sagelab.account import Account
from sagelab.errors import ResourceInUse, ResourceNotFound, SagelabError, ValidationError
from sagelab.lake.uris import parse_s3_uri
from sagelab.model_monitor import schedule_expressions
from sagelab.model_monitor.definitions import (
    DataQualityDefinitions,
    MonitoringJobSpec,
    spec_from_data_quality,
    spec_from_inline,
)
from sagelab.processing.service import ProcessingService
from sagelab.storage.resources import AlreadyExists, NotFound, Resource, ResourceStore

log = logging.getLogger(__name__)

SCHEDULE = "monitoring-schedule"
EXECUTION = "monitoring-execution"
#: Where the prebuilt monitor container finds the baseline files.
BASELINE_CONSTRAINTS_PATH = "/opt/ml/processing/baseline/constraints"
BASELINE_STATISTICS_PATH = "/opt/ml/processing/baseline/stats"
CAPTURE_FORMAT = json.dumps({"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}})
_FINAL = ("Completed", "CompletedWithViolations", "Failed", "Stopped")
_DEFAULT_WINDOW = ("-PT1H", "PT0H")


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class MonitoringSchedules:
    def __init__(self, *, resources: ResourceStore, account: Account, definitions: DataQualityDefinitions,
                 processing: ProcessingService, hour_seconds: float):
        self.resources = resources
        self.account = account
        self.definitions = definitions
        self.processing = processing
        self.hour_seconds = hour_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    # --- the request, read once --------------------------------------------------------------------------
    def _spec(self, config: dict[str, Any]) -> MonitoringJobSpec:
        monitoring_type = config.get("MonitoringType", "DataQuality")
        if monitoring_type != "DataQuality":
            raise ValidationError(f"MonitoringScheduleConfig.MonitoringType {monitoring_type!r} is not supported; "
                                  "sagelab runs DataQuality monitoring.")
        if config.get("MonitoringJobDefinitionName") and config.get("MonitoringJobDefinition"):
            raise ValidationError("MonitoringScheduleConfig: give MonitoringJobDefinitionName or "
                                  "MonitoringJobDefinition, not both.")
        if config.get("MonitoringJobDefinitionName"):
            return spec_from_data_quality(self.definitions.get(config["MonitoringJobDefinitionName"]).doc)
        if config.get("MonitoringJobDefinition"):
            return spec_from_inline(config["MonitoringJobDefinition"])
        raise ValidationError("MonitoringScheduleConfig needs MonitoringJobDefinitionName (a data quality job "
                              "definition) or MonitoringJobDefinition.")

    def _first_run(self, config: dict[str, Any], now: float) -> float:
        schedule_config = config.get("ScheduleConfig") or {}
        expression = schedule_config.get("ScheduleExpression")
        if not expression:
            raise ValidationError("MonitoringScheduleConfig.ScheduleConfig.ScheduleExpression is required, e.g. "
                                  "cron(0 * ? * * *) for hourly.")
        schedule = schedule_expressions.parse_schedule(expression)
        window = [schedule_config.get("DataAnalysisStartTime"), schedule_config.get("DataAnalysisEndTime")]
        if schedule.one_time and None in window:
            raise ValidationError("ScheduleConfig: a NOW (one-time) schedule needs both DataAnalysisStartTime and "
                                  "DataAnalysisEndTime, e.g. -PT1H and PT0H.")
        start, end = (schedule_expressions.parse_offset(v or d, f"ScheduleConfig.{f}")
                      for v, d, f in zip(window, _DEFAULT_WINDOW, ("DataAnalysisStartTime", "DataAnalysisEndTime"),
                                         strict=True))
        if start >= end:
            raise ValidationError(f"ScheduleConfig: DataAnalysisStartTime ({window[0]}) must be before "
                                  f"DataAnalysisEndTime ({window[1]}).")
        return now if schedule.one_time else schedule.next_after(now, self.hour_seconds)

    # --- create / describe / list ----------------------------------------------------------------------------
    def _arn(self, name: str, region: str | None = None) -> str:
        return self.account.sagemaker_arn(SCHEDULE, name, region)

    def create(self, params: dict[str, Any], *, region: str) -> str:
        name, config = params["MonitoringScheduleName"], params["MonitoringScheduleConfig"]
        spec = self._spec(config)
        now = time.time()
        next_run = self._first_run(config, now)
        arn = self._arn(name, region)
        doc = {"MonitoringScheduleArn": arn, "MonitoringScheduleName": name, "MonitoringScheduleStatus": "Scheduled",
               "MonitoringType": config.get("MonitoringType", "DataQuality"), "CreationTime": now,
               "LastModifiedTime": now, "MonitoringScheduleConfig": config, "EndpointName": spec.endpoint,
               "_NextRun": next_run}
        try:
            self.resources.insert(SCHEDULE, name, arn, "Scheduled", doc, created_at=now)
        except AlreadyExists:
            raise ResourceInUse(f"Monitoring schedule {arn} already exists.") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        self._wake.set()
        return arn

    def get(self, name: str) -> Resource:
        res = self.resources.get(SCHEDULE, name)
        if res is None:
            raise ResourceNotFound(f"Monitoring schedule {self._arn(name)} does not exist.")
        return res

    def describe(self, name: str) -> dict[str, Any]:
        res = self.get(name)
        doc = {k: v for k, v in res.doc.items() if not k.startswith("_")}
        executions = self.executions({"MonitoringScheduleName": name, "SortBy": "ScheduledTime", "MaxResults": 1})
        if executions:
            doc["LastMonitoringExecutionSummary"] = executions[0]
        return doc

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        summaries = []
        for r in self.resources.list_for_request(SCHEDULE, params):
            config = r.doc["MonitoringScheduleConfig"]
            if params.get("EndpointName") and r.doc.get("EndpointName") != params["EndpointName"]:
                continue
            if params.get("MonitoringJobDefinitionName") and \
                    config.get("MonitoringJobDefinitionName") != params["MonitoringJobDefinitionName"]:
                continue
            if params.get("MonitoringTypeEquals") and r.doc["MonitoringType"] != params["MonitoringTypeEquals"]:
                continue
            summary = {"MonitoringScheduleName": r.name, "MonitoringScheduleArn": r.arn,
                       "CreationTime": r.created_at, "LastModifiedTime": r.modified_at,
                       "MonitoringScheduleStatus": r.status, "EndpointName": r.doc.get("EndpointName"),
                       "MonitoringType": r.doc["MonitoringType"]}
            if config.get("MonitoringJobDefinitionName"):
                summary["MonitoringJobDefinitionName"] = config["MonitoringJobDefinitionName"]
            summaries.append(summary)
        return summaries

    def using_definition(self, definition: str) -> list[str]:
        return [r.name for r in self.resources.list(SCHEDULE)
                if r.doc["MonitoringScheduleConfig"].get("MonitoringJobDefinitionName") == definition]

    # --- changes -----------------------------------------------------------------------------------------------
    def update(self, params: dict[str, Any]) -> str:
        name, config = params["MonitoringScheduleName"], params["MonitoringScheduleConfig"]
        res = self.get(name)
        spec = self._spec(config)
        next_run = self._first_run(config, time.time())

        def change(r: Resource) -> None:
            r.doc.update({"MonitoringScheduleConfig": config, "EndpointName": spec.endpoint,
                          "LastModifiedTime": time.time(), "_NextRun": next_run})

        self.resources.update(SCHEDULE, name, change)
        self._wake.set()
        return res.arn

    def delete(self, name: str) -> None:
        self.get(name)
        self.resources.delete(SCHEDULE, name)
        # Its executions go with it: a new schedule of the same name starts with none.
        for res in self.resources.list(EXECUTION):
            if res.doc["MonitoringScheduleName"] == name:
                self.resources.delete(EXECUTION, res.name)

    def set_running(self, name: str, running: bool) -> None:
        res = self.get(name)
        if (res.status == "Scheduled") == running:
            return
        next_run = self._first_run(res.doc["MonitoringScheduleConfig"], time.time()) if running else None

        def change(r: Resource) -> None:
            r.status = r.doc["MonitoringScheduleStatus"] = "Scheduled" if running else "Stopped"
            r.doc["LastModifiedTime"] = time.time()
            r.doc["_NextRun"] = next_run

        self.resources.update(SCHEDULE, name, change)
        self._wake.set()

    # --- executions ------------------------------------------------------------------------------------------
    def executions(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.resources.list(EXECUTION, created_after=params.get("CreationTimeAfter"),
                                   created_before=params.get("CreationTimeBefore"),
                                   modified_after=params.get("LastModifiedTimeAfter"),
                                   modified_before=params.get("LastModifiedTimeBefore"))
        summaries = []
        for res in rows:
            doc = self._settled(res) if res.status not in _FINAL else res.doc
            if any(params.get(k) and doc.get(f) != params[k] for k, f in (
                    ("MonitoringScheduleName", "MonitoringScheduleName"), ("EndpointName", "EndpointName"),
                    ("StatusEquals", "MonitoringExecutionStatus"),
                    ("MonitoringJobDefinitionName", "MonitoringJobDefinitionName"),
                    ("MonitoringTypeEquals", "MonitoringType"))):
                continue
            if params.get("ScheduledTimeAfter") is not None and doc["ScheduledTime"] <= params["ScheduledTimeAfter"]:
                continue
            if params.get("ScheduledTimeBefore") is not None and doc["ScheduledTime"] >= params["ScheduledTimeBefore"]:
                continue
            summaries.append(doc)
        key = {"Status": "MonitoringExecutionStatus", "CreationTime": "CreationTime"}.get(
            params.get("SortBy", "ScheduledTime"), "ScheduledTime")
        summaries.sort(key=lambda d: (d[key], d["CreationTime"]), reverse=params.get("SortOrder", "Descending")
                       == "Descending")
        return summaries

    def _settled(self, res: Resource) -> dict[str, Any]:
        """The execution as its processing job says it is now; recorded once the job has ended."""
        job_name = res.doc.get("_ProcessingJobName")
        job = self.resources.get("processing-job", job_name) if job_name else None
        if job is None:
            return res.doc
        status = {"InProgress": "InProgress", "Stopping": "Stopping", "Stopped": "Stopped",
                  "Failed": "Failed"}.get(job.status, "Completed")
        if status == "Completed" and (job.doc.get("ExitMessage") or "").startswith("CompletedWithViolations"):
            status = "CompletedWithViolations"
        if status == res.doc["MonitoringExecutionStatus"]:
            return res.doc

        def settle(r: Resource) -> None:
            r.status = r.doc["MonitoringExecutionStatus"] = status
            r.doc["LastModifiedTime"] = time.time()
            if job.doc.get("FailureReason"):
                r.doc["FailureReason"] = job.doc["FailureReason"]

        with contextlib.suppress(NotFound):
            return self.resources.update(EXECUTION, res.name, settle).doc
        return res.doc

    # --- firing ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="monitoring-schedules", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        tick = min(5.0, self.hour_seconds / 4)
        while not self._stop.is_set():
            try:
                self.fire_due(time.time())
            except Exception:  # a bad schedule must not stop the others
                log.exception("monitoring schedules: firing failed")
            self._wake.wait(tick)
            self._wake.clear()

    def fire_due(self, now: float) -> None:
        for res in self.resources.in_status(SCHEDULE, ("Scheduled",)):
            due = res.doc.get("_NextRun")
            if due is None or due > now:
                continue
            config = res.doc["MonitoringScheduleConfig"]
            schedule = schedule_expressions.parse_schedule(config["ScheduleConfig"]["ScheduleExpression"])
            following = None if schedule.one_time else schedule.next_after(now, self.hour_seconds)
            if self._claim(res.name, due, following):
                self._execute(res, due)

    def _claim(self, name: str, due: float, following: float | None) -> bool:
        """Move the schedule past `due`, unless someone did already (then this firing is theirs)."""
        claimed = []

        def claim(r: Resource) -> None:
            if r.status == "Scheduled" and r.doc.get("_NextRun") == due:
                r.doc["_NextRun"] = following
                claimed.append(True)

        with contextlib.suppress(NotFound):
            self.resources.update(SCHEDULE, name, claim)
        return bool(claimed)

    def _execute(self, schedule: Resource, scheduled: float) -> None:
        config = schedule.doc["MonitoringScheduleConfig"]
        now = time.time()
        name = schedule.name
        doc: dict[str, Any] = {"MonitoringScheduleName": name, "ScheduledTime": scheduled, "CreationTime": now,
                               "LastModifiedTime": now, "MonitoringExecutionStatus": "Pending",
                               "EndpointName": schedule.doc.get("EndpointName"),
                               "MonitoringType": schedule.doc["MonitoringType"]}
        if config.get("MonitoringJobDefinitionName"):
            doc["MonitoringJobDefinitionName"] = config["MonitoringJobDefinitionName"]
        execution = f"{name}@{scheduled:.3f}"
        arn = f"{schedule.arn}/execution/{int(scheduled)}"
        try:
            request = self._processing_request(self._spec(config), schedule, scheduled)
            region = schedule.arn.split(":")[3]
            job_arn = self.processing.create(request, region=region)
            doc.update({"MonitoringExecutionStatus": "InProgress", "ProcessingJobArn": job_arn,
                        "_ProcessingJobName": request["ProcessingJobName"]})
        except SagelabError as exc:
            doc.update({"MonitoringExecutionStatus": "Failed", "FailureReason": exc.message[:1024]})
        with contextlib.suppress(AlreadyExists):
            self.resources.insert(EXECUTION, execution, arn, doc["MonitoringExecutionStatus"], doc, created_at=now)

    def _capture_uri(self, endpoint: str) -> str:
        res = self.resources.get("endpoint", endpoint)
        if res is None:
            raise ValidationError(f"Endpoint {endpoint} does not exist: there is no captured data to analyze.")
        config = self.resources.get("endpoint-config", res.doc["EndpointConfigName"])
        capture = (config.doc if config else {}).get("DataCaptureConfig") or {}
        if not capture or capture.get("EnableCapture") is False:
            raise ValidationError(f"Endpoint {endpoint} does not capture data (its endpoint config has no enabled "
                                  "DataCaptureConfig): there is nothing to analyze.")
        return str(parse_s3_uri(capture["DestinationS3Uri"]).join(endpoint))

    def _baseline_uris(self, spec: MonitoringJobSpec) -> tuple[str | None, str | None]:
        constraints, statistics = spec.constraints_uri, spec.statistics_uri
        if spec.baselining_job and not (constraints and statistics):
            job = self.resources.get("processing-job", spec.baselining_job)
            outputs = ((job.doc if job else {}).get("ProcessingOutputConfig") or {}).get("Outputs") or []
            if not outputs:
                raise ValidationError(f"BaseliningJobName {spec.baselining_job!r} names no processing job with an "
                                      "output: its baseline files cannot be found.")
            folder = parse_s3_uri(outputs[0]["S3Output"]["S3Uri"])
            constraints = constraints or str(folder.join("constraints.json"))
            statistics = statistics or str(folder.join("statistics.json"))
        return constraints, statistics

    def _processing_request(self, spec: MonitoringJobSpec, schedule: Resource, scheduled: float) -> dict[str, Any]:
        schedule_config = schedule.doc["MonitoringScheduleConfig"]["ScheduleConfig"]
        start, end = (schedule_expressions.parse_offset(schedule_config.get(f) or d, f) * self.hour_seconds
                      for f, d in zip(("DataAnalysisStartTime", "DataAnalysisEndTime"), _DEFAULT_WINDOW, strict=True))
        stamp = time.gmtime(scheduled)
        job_name = f"model-monitoring-{time.strftime('%Y%m%d%H%M', stamp)}-{uuid.uuid4().hex[:8]}"
        inputs = [{"InputName": "endpoint_input_1", "S3Input": {
            "S3Uri": self._capture_uri(spec.endpoint), "LocalPath": spec.endpoint_local_path,
            "S3DataType": "S3Prefix", "S3InputMode": "File"}}]
        env = {**spec.environment, "dataset_format": CAPTURE_FORMAT, "dataset_source": spec.endpoint_local_path,
               "output_path": spec.output_local_path, "sagemaker_endpoint_name": spec.endpoint,
               "sagemaker_monitoring_schedule_name": schedule.name, "start_time": _iso(scheduled + start),
               "end_time": _iso(scheduled + end), "metric_time": _iso(scheduled)}
        env.setdefault("publish_cloudwatch_metrics", "Enabled")
        constraints, statistics = self._baseline_uris(spec)
        for uri, local, name, variable in ((constraints, BASELINE_CONSTRAINTS_PATH, "constraints", "baseline_constraints"),
                                           (statistics, BASELINE_STATISTICS_PATH, "baseline", "baseline_statistics")):
            if uri:
                inputs.append({"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": local,
                                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}})
                env[variable] = f"{local}/{uri.rsplit('/', 1)[-1]}"
        output = parse_s3_uri(spec.output_uri).join(spec.endpoint, schedule.name, time.strftime("%Y/%m/%d/%H", stamp))
        output_config: dict[str, Any] = {"Outputs": [{"OutputName": "result", "S3Output": {
            "S3Uri": str(output), "LocalPath": spec.output_local_path, "S3UploadMode": "EndOfJob"}}]}
        if spec.output_kms_key:
            output_config["KmsKeyId"] = spec.output_kms_key
        cluster = {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30, **spec.cluster}
        app: dict[str, Any] = {"ImageUri": spec.image}
        if spec.arguments:
            app["ContainerArguments"] = list(spec.arguments)
        return {"ProcessingJobName": job_name, "ProcessingInputs": inputs, "ProcessingOutputConfig": output_config,
                "ProcessingResources": {"ClusterConfig": cluster}, "AppSpecification": app,
                "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime}, "Environment": env,
                "RoleArn": spec.role_arn}
