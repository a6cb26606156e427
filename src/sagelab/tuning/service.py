"""Hyperparameter tuning jobs: create, describe, list, list trials, stop, and resume after a restart.

A tuning job is a resource document with a lease, like a training job; its work is a driver thread
(`sagelab.tuning.driver`) that owns the lease while it runs. Stopping only marks the job Stopping; the
driver stops the trials and settles the job. A restarted server takes the lease over and resumes it.
"""

from __future__ import annotations

import time
from typing import Any

from sagelab.account import Account
from sagelab.algorithms.registry import AlgorithmRegistry, entry_point_of_hyperparameters
from sagelab.errors import (
    ResourceInUse,
    ResourceLimitExceeded,
    ResourceNotFound,
    SagelabError,
    ValidationError,
)
from sagelab.jobs.lease_drivers import DriverPool
from sagelab.storage import tables
from sagelab.storage.resources import AlreadyExists, Resource, ResourceStore, public
from sagelab.training import states as training_states
from sagelab.training.service import TrainingService
from sagelab.tuning import states
from sagelab.tuning.driver import TuningDriver
from sagelab.tuning.search import PastTrial
from sagelab.tuning.spec import Objective, TrainingDefinition, TuningJobSpec, parse_tuning_job

#: SageMaker's default quota of tuning jobs running at once in an account.
MAX_ACTIVE_TUNING_JOBS = 100
_SORT_KEYS = {"Name": lambda s: s["TrainingJobName"], "CreationTime": lambda s: s["CreationTime"],
              "Status": lambda s: s["TrainingJobStatus"],
              "FinalObjectiveMetricValue": lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]}


class TuningService:
    def __init__(self, *, resources: ResourceStore, account: Account, algorithms: AlgorithmRegistry,
                 training: TrainingService):
        self.resources = resources
        self.account = account
        self.algorithms = algorithms
        #: Trials are training jobs of this service.
        self.training = training
        self.drivers = DriverPool(resources, states.KIND, states.ACTIVE,
                                  lambda name, lease: TuningDriver(self, name, lease))
        # A trial that ends wakes the drivers, which would otherwise see it only at their next look.
        training.on_job_ended(lambda _name: self.drivers.wake_all())

    # --- create -----------------------------------------------------------------------------------------
    def create(self, params: dict[str, Any], *, region: str) -> str:
        spec = parse_tuning_job(params, self.algorithms)
        arn = self.account.sagemaker_arn(states.KIND, spec.name, region)
        if self.resources.get_by_arn(arn) is not None:
            raise ResourceInUse(f"A hyperparameter tuning job named {spec.name!r} already exists ({arn}); tuning "
                                "job names are unique (case-insensitively) within an account and region.")
        if len(self.resources.in_status(states.KIND, states.ACTIVE)) >= MAX_ACTIVE_TUNING_JOBS:
            raise ResourceLimitExceeded(f"At most {MAX_ACTIVE_TUNING_JOBS} hyperparameter tuning jobs can run at "
                                        "once; wait for one to finish or stop one.")
        if spec.warm_start is not None:
            self._check_parents(spec)
        now = time.time()
        config = {"TrainingJobEarlyStoppingType": "Off", **params["HyperParameterTuningJobConfig"]}
        doc: dict[str, Any] = {
            "HyperParameterTuningJobName": spec.name,
            "HyperParameterTuningJobArn": arn,
            "HyperParameterTuningJobConfig": config,
            "HyperParameterTuningJobStatus": "InProgress",
            "CreationTime": now,
            "LastModifiedTime": now,
            "TrainingJobStatusCounters": states.status_counters([])[0],
            "ObjectiveStatusCounters": states.status_counters([])[1],
            "_Request": params,
            "_Trials": [],
            "_Objectives": {d.name or "": {"MetricName": d.objective.metric, "Type": d.objective.type}
                            for d in spec.definitions},
        }
        for optional in ("TrainingJobDefinition", "TrainingJobDefinitions", "WarmStartConfig"):
            if params.get(optional):
                doc[optional] = params[optional]
        lease = self.resources.new_lease()
        try:
            self.resources.insert(states.KIND, spec.name, arn, "InProgress", doc, created_at=now, lease=lease)
        except AlreadyExists:
            raise ResourceInUse(f"A hyperparameter tuning job named {spec.name!r} already exists ({arn}).") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        self.drivers.start(spec.name, lease)
        return arn

    def _check_parents(self, spec: TuningJobSpec) -> None:
        assert spec.warm_start is not None
        identical = spec.warm_start.type == "IdenticalDataAndAlgorithm"
        for index, name in enumerate(spec.warm_start.parents, start=1):
            where = f"WarmStartConfig.ParentHyperParameterTuningJobs[{index}] ({name})"
            res = self.resources.get(states.KIND, name)
            if res is None:
                raise ValidationError(f"{where}: no hyperparameter tuning job has this name.")
            if res.status in states.ACTIVE:
                raise ValidationError(f"{where}: the parent is {res.status}; a parent must have finished "
                                      "(Completed, Stopped or Failed).")
            parent = self._parent_spec(res)
            for definition in spec.definitions:
                theirs = parent.definition(definition.name)
                if theirs is None:
                    continue
                if theirs.objective.metric != definition.objective.metric:
                    raise ValidationError(f"{where}: the objective metric must be the parent's "
                                          f"({theirs.objective.metric!r}); got {definition.objective.metric!r}.")
                ours, their_names = _names(definition), _names(theirs)
                if ours != their_names:
                    raise ValidationError(
                        f"{where}: static plus tunable hyperparameters must be the same as the parent's; this job "
                        f"has {', '.join(sorted(ours))} and the parent has {', '.join(sorted(their_names))}.")
                if identical and (theirs.image != definition.image or _inputs(theirs) != _inputs(definition)):
                    raise ValidationError(f"{where}: IdenticalDataAndAlgorithm needs the parent's training image and "
                                          "input data; use TransferLearning when they differ.")

    def _parent_spec(self, res: Resource) -> TuningJobSpec:
        try:
            return parse_tuning_job(res.doc["_Request"], self.algorithms)
        except SagelabError as exc:
            raise ValidationError(f"Parent tuning job {res.name!r} can no longer be read: {exc.message}") from None

    # --- what drivers ask for -----------------------------------------------------------------------
    def objective_regex(self, definition: TrainingDefinition) -> str | None:
        metric = definition.objective.metric
        declared = (definition.request.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
        for item in declared:
            if item["Name"] == metric:
                return item["Regex"]
        algorithm = self.algorithms.for_image(definition.image,
                                              entry_point=entry_point_of_hyperparameters(definition.static))
        return next((m.regex for m in algorithm.metrics if m.name == metric), None)

    def parent_past_trials(self, spec: TuningJobSpec, *, with_progress: bool) -> list[PastTrial]:
        """The finished trials of a warm start's parents, as the child's study should learn them."""
        if spec.warm_start is None:
            return []
        from sagelab.tuning.progress import ObjectiveLog

        past: list[PastTrial] = []
        for name in spec.warm_start.parents:
            res = self.resources.get(states.KIND, name)
            if res is None:
                continue
            parent = self._parent_spec(res)
            for trial in (states.Trial.from_doc(d) for d in res.doc.get("_Trials", [])):
                definition = parent.definition(trial.definition)
                if definition is None or trial.objective is None or trial.objective_status != "Succeeded":
                    continue
                state = "complete" if trial.status == "Completed" else "pruned"
                intermediate: tuple[float, ...] = ()
                regex = self.objective_regex(definition) if with_progress else None
                if regex:
                    intermediate = tuple(ObjectiveLog(self.training.log_path(trial.name), regex).read_new())
                past.append(PastTrial(definition=trial.definition, hyperparameters={**definition.static, **trial.tuned},
                                      state=state, value=trial.objective, intermediate=intermediate))
        return past

    def parents_best(self, spec: TuningJobSpec) -> dict[str, Any] | None:
        best: dict[str, Any] | None = None
        for name in spec.warm_start.parents if spec.warm_start else ():
            res = self.resources.get(states.KIND, name)
            candidate = res.doc.get("BestTrainingJob") if res is not None else None
            if candidate is None:
                continue
            if best is None or states.better_job(candidate, best, spec.objective_type):
                best = candidate
        return best

    # --- read ---------------------------------------------------------------------------------------------
    def get(self, name: str) -> Resource:
        res = self.resources.get(states.KIND, name)
        if res is None:
            raise ResourceNotFound(f"Amazon SageMaker can't find a tuning job with name {name}")
        return res

    def describe(self, name: str) -> dict[str, Any]:
        res = self.get(name)
        doc = public(res.doc)
        if res.status in states.ACTIVE:
            doc["ConsumedResources"] = {"RuntimeInSeconds": max(0, int(time.time() - res.created_at))}
        return doc

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.resources.list_for_request(states.KIND, {"SortBy": "Name", "SortOrder": "Ascending", **params})
        summaries = []
        for res in rows:
            doc = res.doc
            summary = {"HyperParameterTuningJobName": res.name, "HyperParameterTuningJobArn": res.arn,
                       "HyperParameterTuningJobStatus": res.status,
                       "Strategy": doc["HyperParameterTuningJobConfig"]["Strategy"],
                       "CreationTime": res.created_at, "LastModifiedTime": res.modified_at,
                       "TrainingJobStatusCounters": doc["TrainingJobStatusCounters"],
                       "ObjectiveStatusCounters": doc["ObjectiveStatusCounters"],
                       "ResourceLimits": doc["HyperParameterTuningJobConfig"]["ResourceLimits"]}
            if "HyperParameterTuningEndTime" in doc:
                summary["HyperParameterTuningEndTime"] = doc["HyperParameterTuningEndTime"]
            summaries.append(summary)
        return summaries

    def list_training_jobs(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        res = self.get(params["HyperParameterTuningJobName"])
        trials = [states.Trial.from_doc(d) for d in res.doc.get("_Trials", [])]
        self._refresh(trials)
        objectives = res.doc.get("_Objectives", {})
        summaries = []
        for trial in trials:
            raw = objectives.get(trial.definition or "") or next(iter(objectives.values()), None)
            objective = Objective(metric=raw["MetricName"], type=raw["Type"]) if raw else None
            summaries.append(trial.summary(res.name, objective))
        if params.get("StatusEquals"):
            summaries = [s for s in summaries if s["TrainingJobStatus"] == params["StatusEquals"]]
        sort_by = params.get("SortBy") or "Name"
        if sort_by == "FinalObjectiveMetricValue":
            # As on AWS: trials without an objective value are left out of this ordering.
            summaries = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
        summaries.sort(key=_SORT_KEYS[sort_by], reverse=params.get("SortOrder", "Ascending") == "Descending")
        return summaries

    def _refresh(self, trials: list[states.Trial]) -> None:
        """Trials the driver has not settled yet show their training job's current status."""
        live = [t for t in trials if not t.finished]
        if not live:
            return
        t = tables.resources
        rows = {r.name: r for r in self.resources.list(training_states.KIND,
                                                       where=[t.c.name.in_([x.name for x in live])])}
        for trial in live:
            row = rows.get(trial.name)
            if row is not None:
                trial.status = row.status
                trial.started = row.doc.get("TrainingStartTime", trial.started)
                trial.ended = row.doc.get("TrainingEndTime", trial.ended)
                trial.failure_reason = row.doc.get("FailureReason", trial.failure_reason)

    # --- stop ------------------------------------------------------------------------------------------
    def stop(self, name: str) -> None:
        res = self.get(name)
        if res.status != "InProgress":
            raise ValidationError(f"The hyperparameter tuning job {name!r} is {res.status}; only a job that is "
                                  "InProgress can be stopped.")

        def stopping(r: Resource) -> None:
            if r.status != "InProgress":
                raise ValidationError(f"The hyperparameter tuning job {name!r} is {r.status}; only a job that "
                                      "is InProgress can be stopped.")
            r.status = "Stopping"
            r.doc["HyperParameterTuningJobStatus"] = "Stopping"
            r.doc["LastModifiedTime"] = time.time()

        updated = self.resources.update(states.KIND, name, stopping)
        self.drivers.nudge(name, leased=bool(updated.lease))

    # --- restart safety --------------------------------------------------------------------------------
    def recover(self, left_by: str | None = None) -> int:
        """Resume the tuning jobs a previous server left active (their running trials were settled already)."""
        return self.drivers.recover(left_by)

    def close(self) -> None:
        self.drivers.close()

def _names(definition: TrainingDefinition) -> frozenset[str]:
    return frozenset(n for n in definition.hyperparameter_names if not n.startswith("_"))


def _inputs(definition: TrainingDefinition) -> list[tuple[str, str]]:
    return sorted((c["ChannelName"], ((c.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri", ""))
                  for c in definition.request.get("InputDataConfig") or [])
