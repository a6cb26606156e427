"""The loop that runs one pipeline execution: start what is ready, follow what runs, settle, finish.

A driver is a thread in the server that owns the execution's lease, like a tuning job's driver. Each step's
record (status, job, properties) is saved in the execution's document before its job is created and again
when it settles, so a restarted server resumes the execution where it stood: finished steps stay finished,
a step whose job was cut short by the restart runs again (AttemptCount says how often), and steps not yet
started start when their inputs are ready. Job steps wake the driver when their job ends (the job
services' `on_job_ended`); tuning steps are looked at every POLL_SECONDS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sagelab.errors import SagelabError
from sagelab.jobs.lease_drivers import LeaseDriver
from sagelab.pipelines import states
from sagelab.pipelines.caching import CacheLookup
from sagelab.pipelines.definition import RUNNABLE_TYPES, PipelineDefinition, StepDefinition, parse_definition
from sagelab.pipelines.expressions import Scope
from sagelab.pipelines.retries import call_fault, job_fault, policy_for
from sagelab.pipelines.steps import JobStep, StepServices, job_name
from sagelab.storage.resources import LeaseLost, NotFound, Resource, ResourceStore

POLL_SECONDS = 0.25
#: Runs of one step cut short by server restarts before the step fails instead.
MAX_ATTEMPTS = 3


class StepFailure(SagelabError):
    """A step cannot run or read what it needs; its message becomes the step's FailureReason."""


class DriverHost(Protocol):
    resources: ResourceStore
    services: StepServices
    cache: CacheLookup

    def read_json(self, uri: str) -> Any: ...


class ExecutionDriver(LeaseDriver):
    thread_prefix = "pipeline"
    described_as = "the pipeline execution's driver"

    def __init__(self, host: DriverHost, name: str, lease: str):
        super().__init__(name, lease)
        self.host = host
        self.resources = host.resources
        self.job_steps: dict[str, JobStep] = host.services.job_steps()
        self.records: dict[str, dict[str, Any]] = {}
        self.skipped: set[str] = set()
        self._stops_sent: set[str] = set()

    # --- the loop -------------------------------------------------------------------------------------

    def _run(self) -> None:
        res = self._load()
        self.definition: PipelineDefinition = parse_definition(res.doc["_Definition"])
        self.arn = res.arn
        self.region = res.arn.split(":")[3]
        self.execution_id = states.execution_id(res.arn)
        self.pipeline_arn = res.doc["PipelineArn"]
        self.max_parallel = int((res.doc.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps")
                                or 10_000)
        self.records = res.doc.get("_Steps", {})
        self.skipped = set(res.doc.get("_Skipped", []))
        self.scope = self._scope(res)
        while not self._halt.is_set():
            res = self._load()
            self._follow(stopping=res.status == "Stopping")
            if res.status == "Stopping":
                self._stop_running()
                if not self._running():
                    self._finish("Stopped")
                    return
            elif self._failed():
                if not self._running():
                    self._finish("Failed", reason=self._failure_reason())
                    return
            elif self._stopped():
                # A step's job was stopped on its own (StopTrainingJob, ...): what depends on it cannot run.
                if not self._running():
                    self._finish("Stopped")
                    return
            else:
                self._advance()
                if self._failed():
                    continue
                if not self._running():
                    self._finish("Succeeded")
                    return
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
        self._mark_halted()

    def _mark_halted(self) -> None:
        """The server is closing: it stops the running jobs next, which is no reason to stop their steps.
        Marked so, a step whose job ends Stopped runs again when a later server resumes the execution."""
        for name in self._running():
            self.records[name]["_Halted"] = True
        with contextlib.suppress(LeaseLost, NotFound):
            self._save()

    def _load(self) -> Resource:
        res = self.resources.get(states.EXECUTION, self.name)
        if res is None:
            raise NotFound(self.name)
        if res.lease != self.lease:
            raise LeaseLost(self.name)
        return res

    def _scope(self, res: Resource) -> Scope:
        variables = {"PipelineExecutionId": self.execution_id, "PipelineExecutionArn": res.arn,
                     "PipelineName": res.doc["PipelineArn"].rsplit("/", 1)[-1], "PipelineArn": res.doc["PipelineArn"],
                     "StartDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(res.doc["CreationTime"]))}
        return Scope(parameters=res.doc["_Parameters"], variables=variables, step_properties=self._properties,
                     property_file=self._property_file, read_json=self.host.read_json)

    # --- what may run ---------------------------------------------------------------------------------
    def _running(self) -> list[str]:
        return [n for n, r in self.records.items() if r["StepStatus"] in ("Executing", "Stopping", "Starting")]

    def _failed(self) -> bool:
        return any(r["StepStatus"] == "Failed" for r in self.records.values())

    def _stopped(self) -> bool:
        return any(r["StepStatus"] == "Stopped" for r in self.records.values())

    def _failure_reason(self) -> str:
        failed = [(r.get("EndTime") or 0, n, r) for n, r in self.records.items() if r["StepStatus"] == "Failed"]
        _, name, record = min(failed, key=lambda item: item[0])
        return f"Step {name} failed: {record.get('FailureReason') or 'no reason given'}"

    def _ready(self) -> list[StepDefinition]:
        """Mark steps that will never run as skipped; return those whose inputs are all ready."""
        changed = True
        while changed:
            changed = False
            for step in self.definition.steps.values():
                if step.name in self.records or step.name in self.skipped:
                    continue
                gate_closed = step.gate is not None and self._outcome(step.gate[0]) not in (None, step.gate[1])
                if gate_closed or any(u in self.skipped for u in step.upstream):
                    self.skipped.add(step.name)
                    changed = True
        return [s for s in self.definition.steps.values()
                if s.name not in self.records and s.name not in self.skipped
                and all(self.records.get(u, {}).get("StepStatus") == "Succeeded" for u in s.upstream)]

    def _outcome(self, condition: str) -> bool | None:
        record = self.records.get(condition)
        if record is None or record["StepStatus"] != "Succeeded":
            return None
        return record["_Properties"]["Outcome"] == "True"

    def _advance(self) -> None:
        """Start every ready step the parallelism allows; steps that finish at once free their successors."""
        progressed = True
        while progressed and not self._failed() and not self._halt.is_set():
            progressed = False
            for step in self._ready():
                if len(self._running()) >= self.max_parallel:
                    break
                self._start_step(step)
                progressed = True
        self._save()

    # --- starting a step ------------------------------------------------------------------------------
    def _start_step(self, step: StepDefinition, attempt: int = 1, *, retries: int = 0,
                    first_start: float | None = None) -> None:
        now = time.time()
        record: dict[str, Any] = {"StepName": step.name, "StepStatus": "Executing", "StartTime": now,
                                  "AttemptCount": attempt, "Metadata": {}, "_Retries": retries,
                                  "_FirstStart": first_start or now}
        for key, field in (("DisplayName", "StepDisplayName"), ("Description", "StepDescription")):
            if step.raw.get(key):
                record[field] = step.raw[key]
        self.records[step.name] = record
        try:
            if step.type not in RUNNABLE_TYPES:
                raise StepFailure(f"sagelab does not run {step.type} steps (only "
                                  f"{', '.join(RUNNABLE_TYPES)}); the step {step.name!r} cannot run.")
            unique = uuid.uuid4().hex[:8]
            runner = self.job_steps.get(step.type)
            name = job_name(self.execution_id, step.name, attempt, unique, runner.name_limit if runner else 63)
            scope = self.scope
            if step.type in ("Training", "Processing"):
                scope = scope.with_variables(**{f"{step.type}JobName": name})
            arguments = scope.resolve(step.arguments)
            key = self._cache_key(step) if step.caches else None
            if key is not None:
                record["_CacheKey"] = key
                hit = self.host.cache.find(self.pipeline_arn, self.arn, step.name, key,
                                           (step.cache or {}).get("ExpireAfter"))
                if hit is not None:
                    source_arn, source = hit
                    record.update({"StepStatus": "Succeeded", "EndTime": time.time(), "Metadata": source["Metadata"],
                                   "_Properties": source["_Properties"],
                                   "CacheHitResult": {"SourcePipelineExecutionArn": source_arn}})
                    return
            self._run_step(step, record, arguments, name, scope)
        except StepFailure as exc:
            self._settle(record, "Failed", reason=exc.message)
        except SagelabError as exc:
            self._fail_or_retry(step, record, exc.message, call_fault(exc.code))

    def _run_step(self, step: StepDefinition, record: dict[str, Any], arguments: Any, name: str,
                  scope: Scope) -> None:
        services = self.host.services
        if step.type in self.job_steps:
            runner = self.job_steps[step.type]
            record["_Job"] = name
            record["Metadata"] = {runner.metadata_key: {"Arn": ""}}
            self._save()  # before the job exists, so a crash in between is seen (and the step rerun) on restart
            arn = runner.start(name, arguments, region=self.region)
            record["Metadata"] = {runner.metadata_key: {"Arn": arn}}
        elif step.type in ("Model", "CreateModel"):
            arn, props = services.create_model(name, arguments, region=self.region)
            record["Metadata"] = {"Model": {"Arn": arn}}
            self._settle(record, "Succeeded", properties=props)
        elif step.type == "RegisterModel":
            arn, props = services.register_model(arguments, region=self.region)
            record["Metadata"] = {"RegisterModel": {"Arn": arn}}
            self._settle(record, "Succeeded", properties=props)
        elif step.type == "Condition":
            outcome = all(scope.holds(c) for c in arguments["Conditions"])  # resolved: plain values
            record["Metadata"] = {"Condition": {"Outcome": str(outcome)}}
            self._settle(record, "Succeeded", properties={"Outcome": str(outcome)})
        elif step.type == "Fail":
            message = str(arguments.get("ErrorMessage", "") or "")
            record["Metadata"] = {"Fail": {"ErrorMessage": message}}
            self._settle(record, "Failed", reason=message or "The pipeline reached a Fail step.",
                         properties={"ErrorMessage": message})

    def _cache_key(self, step: StepDefinition) -> str:
        """The step's type and arguments with execution variables left unresolved: an earlier execution's
        run of the same step with the same inputs has the same key."""
        names = (*self.scope.variables, "CurrentDateTime", "TrainingJobName", "ProcessingJobName")
        symbolic = self.scope.with_variables(**{k: f"{{Execution.{k}}}" for k in names})
        payload = json.dumps({"Type": step.type, "Arguments": symbolic.resolve(step.arguments)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    # --- following and settling -----------------------------------------------------------------------
    def _fail_or_retry(self, step: StepDefinition, record: dict[str, Any], reason: str, fault: str | None) -> None:
        """Fail the step, unless one of its retry policies covers this fault and allows another run: then the
        step waits (Executing, with no job) until its retry is due."""
        policy = policy_for(step.retry_policies, fault)
        retries, now = record.get("_Retries", 0), time.time()
        if policy is None or not policy.allows(retries, started=record.get("_FirstStart", now), now=now):
            self._settle(record, "Failed", reason=reason)
            return
        record["StepStatus"] = "Executing"
        record["_RetryAt"] = now + policy.delay(retries)
        record["_LastFailure"] = reason

    def _follow(self, *, stopping: bool) -> None:
        changed = False
        failing = self._failed()
        for name in self._running():
            record = self.records[name]
            step = self.definition.steps[name]
            if "_RetryAt" in record:
                if stopping:
                    self._settle(record, "Stopped")
                elif failing:  # another step failed: the execution ends, and this step with its last failure
                    self._settle(record, "Failed", reason=record.get("_LastFailure"))
                elif time.time() >= record["_RetryAt"]:
                    self._start_step(step, attempt=record["AttemptCount"] + 1, retries=record.get("_Retries", 0) + 1,
                                     first_start=record.get("_FirstStart"))
                else:
                    continue
                changed = True
                continue
            runner = self.job_steps.get(step.type)
            job = record.get("_Job")
            if runner is None or job is None:  # cannot happen: only job steps stay Executing
                self._settle(record, "Failed", reason="InternalFailure: the step's job is unknown.")
                changed = True
                continue
            outcome = runner.look(job)
            if outcome is not None and outcome.status == "Stopped" and record.get("_Halted"):
                outcome = dataclasses.replace(outcome, interrupted=True)  # stopped by the closing server
            if (outcome is None or outcome.interrupted) and stopping:
                self._settle(record, "Stopped")
                changed = True
            elif outcome is None or outcome.interrupted:
                # The job was never created, or the server stopped under it: run the step again.
                if record["AttemptCount"] >= MAX_ATTEMPTS:
                    self._settle(record, "Failed", reason=outcome.failure_reason if outcome else
                                 "sagelab stopped before the step's job was created, too many times.")
                else:
                    self._start_step(step, attempt=record["AttemptCount"] + 1, retries=record.get("_Retries", 0),
                                     first_start=record.get("_FirstStart"))
                changed = True
            elif outcome.status == "Failed" and not stopping:
                self._fail_or_retry(step, record, outcome.failure_reason or "the job failed without a reason",
                                    job_fault(outcome.failure_reason))
                changed = True
            elif outcome.status != record["StepStatus"] and outcome.status in states.STEP_FINISHED:
                self._settle(record, outcome.status, reason=outcome.failure_reason, properties=outcome.properties)
                changed = True
            elif outcome.status != record["StepStatus"]:
                record["StepStatus"] = outcome.status
                changed = True
        if changed:
            self._save()

    def _settle(self, record: dict[str, Any], status: str, *, reason: str | None = None,
                properties: dict[str, Any] | None = None) -> None:
        record["StepStatus"] = status
        record["EndTime"] = time.time()
        if reason and status != "Succeeded":
            record["FailureReason"] = reason[:3072]
        if properties is not None:
            record["_Properties"] = properties

    def _properties(self, step: str) -> dict[str, Any]:
        return self.records[step].get("_Properties", {})

    def _property_file(self, step: str, file_name: str) -> Any:
        definition = self.definition.steps[step]
        spec = next((f for f in definition.property_files if f.get("PropertyFileName") == file_name), None)
        if spec is None:
            raise StepFailure(f"Step {step!r} declares no property file {file_name!r}.")
        outputs = (self._properties(step).get("ProcessingOutputConfig") or {}).get("Outputs") or []
        output = next((o for o in outputs if o.get("OutputName") == spec["OutputName"]), None)
        if output is None:
            raise StepFailure(f"Property file {file_name!r} of step {step!r}: the step has no output "
                               f"{spec['OutputName']!r}.")
        return self.host.read_json(output["S3Output"]["S3Uri"].rstrip("/") + "/" + spec["FilePath"].lstrip("/"))

    # --- stopping and finishing -----------------------------------------------------------------------
    def _stop_running(self) -> None:
        for name in self._running():
            job = self.records[name].get("_Job")
            runner = self.job_steps.get(self.definition.steps[name].type)
            if job is None or runner is None or job in self._stops_sent:
                continue
            self._stops_sent.add(job)
            # A job that ended meanwhile refuses the stop; the next look settles the step either way.
            with contextlib.suppress(SagelabError):
                runner.stop(job)
            self.records[name]["StepStatus"] = "Stopping"
        self._save()

    def _finish(self, status: str, *, reason: str | None = None) -> None:
        self._save(lambda res: states.finish(res, status, reason=reason))

    def _abandon(self, reason: str) -> None:
        with contextlib.suppress(Exception):
            self._stop_running()
        with contextlib.suppress(LeaseLost, NotFound):
            self.resources.update(states.EXECUTION, self.name,
                                  lambda res: states.finish(res, "Failed", reason=reason), lease=self.lease)

    def _save(self, then: Callable[[Resource], None] | None = None) -> None:
        records = json.loads(json.dumps(self.records))
        skipped = sorted(self.skipped)

        def write(res: Resource) -> None:
            res.doc["_Steps"] = records
            res.doc["_Skipped"] = skipped
            res.doc["LastModifiedTime"] = time.time()
            if then is not None:
                then(res)

        self.resources.update(states.EXECUTION, self.name, write, lease=self.lease)
