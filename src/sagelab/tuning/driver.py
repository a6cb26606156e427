"""The loop that runs one tuning job: propose, launch, follow, settle, finish.

A driver is a thread in the server, not a task on the compute engine: it mostly waits, and a task would
hold one of the engine's slots (one per core by default) that its own trials need, and it could not reach
the engine to submit them. Each trial is an ordinary training job created through the training service,
so the engine's limits, logs, stop and restart handling all apply to it unchanged.

Everything the driver knows is saved in the tuning job's document (fenced by the job's lease), trial by
trial, before the trial's training job is created. A restarted server therefore resumes a tuning job where
it stood: finished trials are replayed into a new Optuna study and the budget goes on being spent.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any, Protocol

from sagelab.account import Account
from sagelab.algorithms.registry import AlgorithmRegistry
from sagelab.errors import SagelabError
from sagelab.jobs import kind as jobs
from sagelab.jobs.lease_drivers import LeaseDriver
from sagelab.storage import tables
from sagelab.storage.resources import LeaseLost, NotFound, Resource, ResourceStore
from sagelab.training import states as training_states
from sagelab.training.service import TrainingService
from sagelab.tuning import states
from sagelab.tuning.progress import ObjectiveLog
from sagelab.tuning.search import PastTrial, Proposal, Search
from sagelab.tuning.spec import TrainingDefinition, TuningJobSpec, parse_tuning_job

#: How often running trials are looked at. Their logs are read this often, so early stopping reacts within it.
POLL_SECONDS = 0.2
#: Trials relaunched after failing for a reason of sagelab's own (e.g. a server restart), per tuning job.
MAX_RETRIES = 3
NEVER_STARTED = "sagelab stopped before this trial's training job was created."


class _Running:
    __slots__ = ("trial", "proposal", "log", "stop_sent")

    def __init__(self, trial: states.Trial, proposal: Proposal, log: ObjectiveLog | None):
        self.trial, self.proposal, self.log = trial, proposal, log
        self.stop_sent = False


class DriverHost(Protocol):
    """What a driver asks of the tuning service that starts it."""

    resources: ResourceStore
    algorithms: AlgorithmRegistry
    training: TrainingService
    account: Account

    def objective_regex(self, definition: TrainingDefinition) -> str | None: ...

    def parent_past_trials(self, spec: TuningJobSpec, *, with_progress: bool) -> list[PastTrial]: ...

    def parents_best(self, spec: TuningJobSpec) -> dict[str, Any] | None: ...


class TuningDriver(LeaseDriver):
    thread_prefix = "tuning"
    described_as = "the tuning job's driver"

    def __init__(self, service: DriverHost, name: str, lease: str):
        super().__init__(name, lease)
        self.service = service
        self.resources = service.resources
        self.algorithms = service.algorithms
        self.training = service.training
        self.account = service.account
        self.trials: list[states.Trial] = []
        self.running: dict[str, _Running] = {}
        self._settled = 0

    # --- the loop -------------------------------------------------------------------------------------

    def _run(self) -> None:
        res = self._load()
        spec = parse_tuning_job(res.doc["_Request"], self.algorithms)
        self.spec = spec
        self.arn = res.arn
        self.region = res.arn.split(":")[3]
        self.tags = [{"Key": k, "Value": v} for k, v in self.resources.get_tags(res.arn).items()]
        self.search = Search(spec)
        self.regex = {d.name: self.service.objective_regex(d) for d in spec.definitions}
        self.search.seed(self.service.parent_past_trials(spec, with_progress=self.search.prunes))
        self.parents_best = self.service.parents_best(spec) if spec.warm_start else None
        self._restore(res)
        while not self._halt.is_set():
            res = self._load()
            self._follow()
            if res.status == "Stopping" or self._out_of_time(res):
                self._stop_running()
                if not self.running:
                    self._finish("Stopped")
                    return
            else:
                self._launch_while_possible()
                if not self.running:
                    self._finish("Completed")
                    return
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _load(self) -> Resource:
        res = self.resources.get(states.KIND, self.name)
        if res is None:
            raise NotFound(self.name)
        if res.lease != self.lease:
            raise LeaseLost(self.name)
        return res

    def _restore(self, res: Resource) -> None:
        """Pick up the trials a previous driver (before a restart) launched."""
        self.trials = [states.Trial.from_doc(d) for d in res.doc.get("_Trials", [])]
        self._settled = max((t.settled or 0 for t in self.trials), default=0)
        for trial in self.trials:
            definition = self.spec.definition(trial.definition)
            if trial.finished:
                if trial.retryable:  # nothing to learn, and a grid must run its combination again
                    continue
                past = self._past(trial, definition)
                if past is not None:
                    self.search.seed([past], own=True)
                continue
            if definition is None:  # cannot happen for this job's own trials; settle rather than stall
                self._settle_without_job(trial, "InternalFailure: the trial's definition is unknown.")
                continue
            proposal = self.search.resume(definition, trial.tuned)
            self.running[trial.name] = _Running(trial, proposal, self._objective_log(trial.name, definition))
        self._save()

    def _past(self, trial: states.Trial, definition: TrainingDefinition | None) -> PastTrial | None:
        if definition is None:
            return None
        state = ("complete" if trial.status == "Completed" and trial.objective is not None
                 else "pruned" if trial.early_stopped and trial.objective is not None else "failed")
        intermediate: tuple[float, ...] = ()
        if self.search.prunes and state != "failed":
            log = self._objective_log(trial.name, definition)
            intermediate = tuple(log.read_new()) if log is not None else ()
        return PastTrial(definition=trial.definition, hyperparameters={**definition.static, **trial.tuned},
                         state=state, value=trial.objective, intermediate=intermediate)

    def _objective_log(self, trial_name: str, definition: TrainingDefinition) -> ObjectiveLog | None:
        regex = self.regex.get(definition.name)
        if regex is None:
            return None
        return ObjectiveLog(self.training.log_path(trial_name), regex)

    # --- launching ------------------------------------------------------------------------------------
    def _budget_left(self) -> int:
        retried = sum(1 for t in self.trials if t.retryable)
        used = len(self.trials) - min(retried, MAX_RETRIES)
        return self.spec.max_jobs - used

    def _criteria_met(self) -> bool:
        criteria = self.spec.completion
        objective_type = self.spec.objective_type
        if criteria.target is not None:
            best = states.best_trial(self.trials, objective_type)
            if best is not None and best.objective is not None and (
                    best.objective >= criteria.target if objective_type == "Maximize"
                    else best.objective <= criteria.target):
                return True
        if criteria.max_not_improving is not None:
            return states.not_improving(self.trials, objective_type) >= criteria.max_not_improving
        return False

    def _launch_while_possible(self) -> None:
        while (len(self.running) < self.spec.max_parallel and self._budget_left() > 0
               and not self._criteria_met() and not self._halt.is_set()):
            proposal = self.search.propose()
            if proposal is None:
                return
            self._launch(proposal)

    def _launch(self, proposal: Proposal) -> None:
        number = len(self.trials) + 1
        name = f"{self.spec.name}-{number:03d}-{uuid.uuid4().hex[:8]}"
        trial = states.Trial(name=name, arn=self.account.sagemaker_arn("training-job", name, self.region),
                             definition=proposal.definition.name, tuned=dict(proposal.tuned), created=time.time())
        self.trials.append(trial)
        # Saved before the training job exists, so a crash in between is seen (and settled) on restart.
        self._save()
        request = proposal.definition.training_request(name, proposal.tuned)
        try:
            self.training.create(request, region=self.region, tags=self.tags or None,
                                          tuning_job_arn=self.arn)
        except SagelabError as exc:
            self.search.failed(proposal)
            self._settle_without_job(trial, f"ClientError: {exc.message}")
            return
        self.running[name] = _Running(trial, proposal, self._objective_log(name, proposal.definition))

    # --- following ------------------------------------------------------------------------------------
    def _follow(self) -> None:
        if not self.running:
            return
        t = tables.resources
        rows = {r.name: r for r in self.resources.list(
            training_states.KIND, where=[t.c.name.in_(list(self.running))], sort_by="Name")}
        for name, entry in list(self.running.items()):
            row = rows.get(name)
            if row is None:
                self.search.failed(entry.proposal, retry=True)
                del self.running[name]
                self._settle_without_job(entry.trial, NEVER_STARTED, retryable=True)
            elif row.status in jobs.ACTIVE:
                self._observe(entry, row)
            else:
                self._settle(entry, row)

    def _observe(self, entry: _Running, row: Resource) -> None:
        changed = entry.trial.status != row.status or entry.trial.started != row.doc.get("TrainingStartTime")
        entry.trial.status = row.status
        entry.trial.started = row.doc.get("TrainingStartTime")
        if changed:
            self._save()
        if entry.log is None or entry.stop_sent or row.status != "InProgress":
            return
        for value in entry.log.read_new():
            if self.search.report(entry.proposal, value):
                entry.trial.early_stopped = True
                self._stop_trial(entry)
                return

    def _settle(self, entry: _Running, row: Resource) -> None:
        trial, proposal, doc = entry.trial, entry.proposal, row.doc
        trial.status = row.status
        trial.started = doc.get("TrainingStartTime")
        trial.ended = doc.get("TrainingEndTime")
        trial.failure_reason = doc.get("FailureReason")
        if entry.log is not None and row.status != "Failed":
            # Values logged since the last look still teach the pruner what a full trial looks like.
            for value in entry.log.read_new():
                self.search.report(proposal, value, decide=False)
        if row.status == "Completed":
            value = next((m["Value"] for m in doc.get("FinalMetricDataList", [])
                          if m["MetricName"] == proposal.definition.objective.metric), None)
            if value is None:
                trial.objective_status = "Failed"
                self.search.failed(proposal)
            else:
                trial.objective, trial.objective_status = float(value), "Succeeded"
                self.search.complete(proposal, float(value))
        elif row.status == "Stopped" and trial.early_stopped and proposal.last_value is not None:
            trial.objective, trial.objective_status = proposal.last_value, "Succeeded"
            self.search.pruned(proposal)
        else:
            reason = trial.failure_reason or ""
            trial.retryable = row.status == "Failed" and not reason.startswith(("ClientError", "AlgorithmError"))
            trial.objective_status = "Failed"
            self.search.failed(proposal, retry=trial.retryable)
        self._settled += 1
        trial.settled = self._settled
        del self.running[trial.name]
        self._save()

    def _settle_without_job(self, trial: states.Trial, reason: str, *, retryable: bool = False) -> None:
        trial.status, trial.objective_status = "Failed", "Failed"
        trial.failure_reason, trial.retryable = reason, retryable
        trial.ended = time.time()
        self._settled += 1
        trial.settled = self._settled
        self._save()

    # --- stopping and finishing -----------------------------------------------------------------------
    def _out_of_time(self, res: Resource) -> bool:
        limit = self.spec.max_runtime
        return limit is not None and time.time() - res.created_at >= limit

    def _stop_trial(self, entry: _Running) -> None:
        entry.stop_sent = True
        # A trial that finished meanwhile refuses the stop; the next look settles it either way.
        with contextlib.suppress(SagelabError):
            self.training.stop(entry.trial.name)

    def _stop_running(self) -> None:
        for entry in self.running.values():
            if not entry.stop_sent:
                self._stop_trial(entry)

    def _finish(self, status: str) -> None:
        reason = None
        if status == "Completed" and self.trials and not any(
                t.objective_status == "Succeeded" for t in self.trials):
            status = "Failed"
            reason = (f"No training job succeeded: all {len(self.trials)} training jobs failed or did not emit the "
                      f"objective metric. See each one's FailureReason with "
                      f"ListTrainingJobsForHyperParameterTuningJob.")
        self._save(lambda res: states.finish(res, status, reason=reason))

    def _abandon(self, reason: str) -> None:
        """End the job as Failed after a driver error, stopping its trials."""
        for entry in list(self.running.values()):
            if not entry.stop_sent:
                self._stop_trial(entry)
        with contextlib.suppress(LeaseLost, NotFound):
            self.resources.update(states.KIND, self.name,
                                           lambda res: states.finish(res, "Failed", reason=reason), lease=self.lease)

    # --- the document -----------------------------------------------------------------------------------
    def _save(self, then: Any = None) -> None:
        spec = self.spec
        trials = list(self.trials)
        parents_best = self.parents_best

        def write(res: Resource) -> None:
            doc = res.doc
            training, objective = states.status_counters(trials)
            doc["_Trials"] = [t.to_doc() for t in trials]
            doc["TrainingJobStatusCounters"] = training
            doc["ObjectiveStatusCounters"] = objective
            best = states.best_trial(trials, spec.objective_type)
            if best is not None:
                doc["BestTrainingJob"] = best.summary(spec.name, spec.definition(best.definition).objective)
            if spec.warm_start is not None:
                overall = doc.get("BestTrainingJob")
                if parents_best is not None and (overall is None or states.better_job(
                        parents_best, overall, spec.objective_type)):
                    overall = parents_best
                if overall is not None:
                    doc["OverallBestTrainingJob"] = overall
            if spec.completion.max_not_improving is not None:
                doc["TuningJobCompletionDetails"] = {
                    "NumberOfTrainingJobsObjectiveNotImproving": states.not_improving(trials, spec.objective_type)}
            doc["LastModifiedTime"] = time.time()
            if then is not None:
                then(res)

        self.resources.update(states.KIND, self.name, write, lease=self.lease)
