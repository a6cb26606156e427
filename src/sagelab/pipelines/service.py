"""SageMaker Pipelines: pipelines (create, describe, update, delete, list) and their executions (start,
describe, list, list steps and parameters, stop, retry), resumed after a restart.

A pipeline is a resource document holding its definition, validated when it is created or updated. An
execution is a resource document with a lease holding a copy of the definition it runs, its parameter
values and a record per step; its work is a driver thread (`sagelab.pipelines.driver`) that owns the lease.
Stopping marks the execution Stopping; the driver stops the running jobs and settles it. A restarted
server takes the lease over and resumes the execution.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import string
import time
from typing import Any

from sagelab.account import Account
from sagelab.errors import ResourceNotFound, SagelabError, ValidationError
from sagelab.jobs.lease_drivers import DriverPool
from sagelab.lake.blobs import BlobStore
from sagelab.lake.uris import parse_s3_uri
from sagelab.pipelines import states
from sagelab.pipelines.caching import CacheLookup
from sagelab.pipelines.definition import PipelineDefinition, parse_definition
from sagelab.pipelines.driver import ExecutionDriver
from sagelab.pipelines.steps import StepServices
from sagelab.storage import tables
from sagelab.storage.resources import AlreadyExists, Resource, ResourceStore, public

_ID_ALPHABET = string.ascii_lowercase + string.digits
_PIPELINE_SORT = {"Name": "Name", "CreationTime": "CreationTime"}
_SUMMARY_KEYS = ("PipelineArn", "PipelineName", "PipelineDisplayName", "PipelineDescription", "RoleArn",
                 "CreationTime", "LastModifiedTime")


class PipelineService:
    def __init__(self, *, resources: ResourceStore, account: Account, blobs: BlobStore, services: StepServices):
        self.resources = resources
        self.account = account
        self.blobs = blobs
        #: The stage services the steps run on.
        self.services = services
        self.cache = CacheLookup(resources)
        self.drivers = DriverPool(resources, states.EXECUTION, states.ACTIVE,
                                  lambda name, lease: ExecutionDriver(self, name, lease))
        # A step's job that ends wakes the drivers, which would otherwise see it only at their next look.
        for jobs in (services.processing, services.training, services.transforms):
            jobs.on_job_ended(lambda _name: self.drivers.wake_all())

    # --- pipelines ----------------------------------------------------------------------------------
    def _definition_text(self, params: dict[str, Any]) -> str:
        text, location = params.get("PipelineDefinition"), params.get("PipelineDefinitionS3Location")
        if text and location:
            raise ValidationError("Specify PipelineDefinition or PipelineDefinitionS3Location, not both.")
        if location:
            try:
                return b"".join(self.blobs.read(location["Bucket"], location["ObjectKey"])).decode()
            except SagelabError as exc:
                raise ValidationError(f"PipelineDefinitionS3Location s3://{location['Bucket']}/"
                                      f"{location['ObjectKey']} cannot be read: {exc.message}") from None
        if not text:
            raise ValidationError("PipelineDefinition or PipelineDefinitionS3Location is required.")
        return text

    def create(self, params: dict[str, Any], *, region: str) -> str:
        name = params["PipelineName"]
        text = self._definition_text(params)
        parse_definition(text)
        arn = self.account.sagemaker_arn(states.PIPELINE, name, region)
        now = time.time()
        doc: dict[str, Any] = {"PipelineArn": arn, "PipelineName": name,
                               "PipelineDisplayName": params.get("PipelineDisplayName") or name,
                               "PipelineDefinition": text, "RoleArn": params.get("RoleArn"),
                               "PipelineStatus": "Active", "CreationTime": now, "LastModifiedTime": now,
                               "CreatedBy": {}, "LastModifiedBy": {}, "_Version": 1}
        for optional in ("PipelineDescription", "ParallelismConfiguration"):
            if params.get(optional) is not None:
                doc[optional] = params[optional]
        try:
            if self.resources.get_by_arn(arn) is not None:  # names differ only in case: the same ARN
                raise AlreadyExists(name)
            self.resources.insert(states.PIPELINE, name, arn, "Active", doc, created_at=now)
        except AlreadyExists:
            raise ValidationError(f"Pipeline names must be unique within an AWS account and region, and a "
                                  f"pipeline with this name already exists ({arn}).") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return arn

    def get(self, name_or_arn: str) -> Resource:
        # An ARN names the pipeline in lower case, as SageMaker's ARNs do: look it up as an ARN.
        res = (self.resources.get_by_arn(name_or_arn) if name_or_arn.startswith("arn:")
               else self.resources.get(states.PIPELINE, name_or_arn))
        if res is None or res.kind != states.PIPELINE:
            raise ResourceNotFound(f"Pipeline '{name_or_arn}' does not exist.")
        return res

    def describe(self, name_or_arn: str) -> dict[str, Any]:
        return public(self.get(name_or_arn).doc)

    def update(self, params: dict[str, Any]) -> tuple[str, int]:
        res = self.get(params["PipelineName"])
        text = None
        if params.get("PipelineDefinition") or params.get("PipelineDefinitionS3Location"):
            text = self._definition_text(params)
            parse_definition(text)

        def change(r: Resource) -> None:
            if text is not None:
                r.doc["PipelineDefinition"] = text
            for key in ("PipelineDisplayName", "PipelineDescription", "RoleArn", "ParallelismConfiguration"):
                if params.get(key) is not None:
                    r.doc[key] = params[key]
            r.doc["_Version"] = int(r.doc.get("_Version", 1)) + 1
            r.doc["LastModifiedTime"] = time.time()

        updated = self.resources.update(states.PIPELINE, res.name, change)
        return updated.arn, int(updated.doc["_Version"])

    def delete(self, name: str) -> str:
        """Delete the pipeline and stop its running executions (as SageMaker does); the executions, with
        the definition each ran, stay readable."""
        res = self.get(name)
        self.resources.delete(states.PIPELINE, res.name)
        for execution in self._executions_of(res.arn):
            if execution.status == "Executing":
                with contextlib.suppress(ValidationError):  # it finished meanwhile
                    self.stop(execution.arn)
        return res.arn

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.resources.list(states.PIPELINE, created_after=params.get("CreatedAfter"),
                                   created_before=params.get("CreatedBefore"),
                                   sort_by=_PIPELINE_SORT.get(params.get("SortBy") or "", "CreationTime"),
                                   descending=params.get("SortOrder", "Descending") == "Descending")
        prefix = params.get("PipelineNamePrefix") or ""
        summaries = []
        for res in rows:
            if not res.name.startswith(prefix):
                continue
            summary = {k: res.doc[k] for k in _SUMMARY_KEYS if res.doc.get(k) is not None}
            if "LastRunTime" in res.doc:
                summary["LastExecutionTime"] = res.doc["LastRunTime"]
            summaries.append(summary)
        return summaries

    # --- executions -----------------------------------------------------------------------------------
    def start(self, params: dict[str, Any]) -> str:
        pipeline = self.get(params["PipelineName"])
        if params.get("SelectiveExecutionConfig"):
            raise ValidationError("SelectiveExecutionConfig is not supported by sagelab: start a full execution, "
                                  "or use CacheConfig to reuse earlier steps' results.")
        version = params.get("PipelineVersionId")
        if version is not None and int(version) != int(pipeline.doc.get("_Version", 1)):
            raise ValidationError(f"PipelineVersionId {version}: sagelab keeps only the pipeline's latest version "
                                  f"({pipeline.doc.get('_Version', 1)}).")
        token = params.get("ClientRequestToken")
        if token:
            earlier = self._by_token(pipeline.arn, token)
            if earlier is not None:
                return earlier
        definition = parse_definition(pipeline.doc["PipelineDefinition"])
        values = definition.parameter_values(params.get("PipelineParameters"))
        execution_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
        arn = f"{pipeline.arn}/execution/{execution_id}"
        now = time.time()
        doc: dict[str, Any] = {
            "PipelineArn": pipeline.arn, "PipelineExecutionArn": arn,
            "PipelineExecutionDisplayName": params.get("PipelineExecutionDisplayName") or f"execution-{int(now * 1000)}",
            "PipelineExecutionStatus": "Executing", "CreationTime": now, "LastModifiedTime": now,
            "CreatedBy": {}, "LastModifiedBy": {}, "PipelineVersionId": int(pipeline.doc.get("_Version", 1)),
            "PipelineExperimentConfig": {"ExperimentName": pipeline.name, "TrialName": execution_id},
            "_Definition": pipeline.doc["PipelineDefinition"], "_Parameters": values, "_Steps": {},
            "_Skipped": [], "_ClientToken": token,
        }
        for optional in ("PipelineExecutionDescription", "ParallelismConfiguration"):
            value = params.get(optional) or (pipeline.doc.get(optional) if optional == "ParallelismConfiguration"
                                             else None)
            if value is not None:
                doc[optional] = value
        if pipeline.doc.get("RoleArn"):
            doc["RoleArn"] = pipeline.doc["RoleArn"]
        lease = self.resources.new_lease()
        self.resources.insert(states.EXECUTION, execution_id, arn, "Executing", doc, created_at=now, lease=lease)
        self.resources.update(states.PIPELINE, pipeline.name, lambda r: r.doc.__setitem__("LastRunTime", now))
        self.drivers.start(execution_id, lease)
        return arn

    def _by_token(self, pipeline_arn: str, token: str) -> str | None:
        for res in self._executions_of(pipeline_arn):
            if res.doc.get("_ClientToken") == token:
                return res.arn
        return None

    def _executions_of(self, pipeline_arn: str, *, descending: bool = True) -> list[Resource]:
        t = tables.resources
        return self.resources.list(states.EXECUTION, descending=descending,
                                   where=[t.c.arn.startswith(f"{pipeline_arn}/execution/", autoescape=True)])

    def get_execution(self, arn: str) -> Resource:
        res = self.resources.get_by_arn(arn)
        if res is None or res.kind != states.EXECUTION:
            raise ResourceNotFound(f"Pipeline execution '{arn}' does not exist.")
        return res

    def describe_execution(self, arn: str) -> dict[str, Any]:
        return public(self.get_execution(arn).doc)

    def definition_for_execution(self, arn: str) -> dict[str, Any]:
        res = self.get_execution(arn)
        return {"PipelineDefinition": res.doc["_Definition"], "CreationTime": res.created_at}

    def list_executions(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        pipeline = self.get(params["PipelineName"])
        rows = self._executions_of(pipeline.arn, descending=params.get("SortOrder", "Descending") == "Descending")
        after, before = params.get("CreatedAfter"), params.get("CreatedBefore")
        out = []
        for res in rows:
            if (after is not None and res.created_at <= after) or (before is not None and res.created_at >= before):
                continue
            doc = res.doc
            summary = {"PipelineExecutionArn": res.arn, "StartTime": res.created_at,
                       "PipelineExecutionStatus": res.status,
                       "PipelineExecutionDisplayName": doc["PipelineExecutionDisplayName"]}
            if doc.get("PipelineExecutionDescription"):
                summary["PipelineExecutionDescription"] = doc["PipelineExecutionDescription"]
            if doc.get("FailureReason"):
                summary["PipelineExecutionFailureReason"] = doc["FailureReason"]
            out.append(summary)
        if params.get("SortBy") == "PipelineExecutionArn":
            out.sort(key=lambda s: s["PipelineExecutionArn"],
                     reverse=params.get("SortOrder", "Descending") == "Descending")
        return out

    def list_steps(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        res = self.get_execution(params["PipelineExecutionArn"])
        records = sorted(res.doc.get("_Steps", {}).values(), key=lambda r: r.get("StartTime", 0),
                         reverse=params.get("SortOrder", "Descending") == "Descending")
        return [states.step_summary(r) for r in records]

    def list_parameters(self, arn: str) -> list[dict[str, str]]:
        from sagelab.pipelines.expressions import text

        res = self.get_execution(arn)
        return [{"Name": name, "Value": text(value)} for name, value in res.doc["_Parameters"].items()]

    def stop(self, arn: str) -> str:
        res = self.get_execution(arn)

        def stopping(r: Resource) -> None:
            if r.status != "Executing":
                raise ValidationError(f"Pipeline execution {arn!r} is {r.status}; only an Executing execution can "
                                      "be stopped.")
            r.status = "Stopping"
            r.doc["PipelineExecutionStatus"] = "Stopping"

        updated = self.resources.update(states.EXECUTION, res.name, stopping)
        self.drivers.nudge(res.name, leased=bool(updated.lease))
        return res.arn

    def retry(self, params: dict[str, Any]) -> str:
        """Run a Failed or Stopped execution again from where it ended: its succeeded steps are kept."""
        res = self.get_execution(params["PipelineExecutionArn"])
        lease = self.resources.new_lease()
        definition = parse_definition(res.doc["_Definition"])

        def reopen(r: Resource) -> None:
            if r.status not in ("Failed", "Stopped"):
                raise ValidationError(f"Pipeline execution {r.arn!r} is {r.status}; only a Failed or Stopped "
                                      "execution can be retried.")
            r.doc["_Steps"] = _kept_steps(r.doc.get("_Steps", {}), definition)
            r.doc["_Skipped"] = []
            r.doc.pop("FailureReason", None)
            if params.get("ParallelismConfiguration"):
                r.doc["ParallelismConfiguration"] = params["ParallelismConfiguration"]
            r.status = "Executing"
            r.doc["PipelineExecutionStatus"] = "Executing"
            r.lease = lease

        self.resources.update(states.EXECUTION, res.name, reopen)
        self.drivers.start(res.name, lease)
        return res.arn

    # --- what drivers ask for -------------------------------------------------------------------------
    def read_json(self, uri: str) -> Any:
        location = parse_s3_uri(uri, field="JSON file")
        try:
            body = b"".join(self.blobs.read(location.bucket, location.key))
        except SagelabError as exc:
            raise ValidationError(f"{uri} cannot be read: {exc.message}") from None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ValidationError(f"{uri} is not JSON: {exc}.") from None

    # --- restart safety --------------------------------------------------------------------------------
    def recover(self, left_by: str | None = None) -> int:
        """Resume the executions a previous server left active (their jobs were settled already)."""
        return self.drivers.recover(left_by)

    def close(self) -> None:
        self.drivers.close()


def _kept_steps(records: dict[str, Any], definition: PipelineDefinition) -> dict[str, Any]:
    """The records of succeeded steps none of whose upstream steps will run again."""
    kept = {name: r for name, r in records.items() if r.get("StepStatus") == "Succeeded"}
    changed = True
    while changed:
        changed = False
        for name in list(kept):
            step = definition.steps.get(name)
            if step is None or any(u not in kept for u in step.upstream):
                del kept[name]
                changed = True
    return kept
