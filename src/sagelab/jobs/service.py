"""The API side of a SageMaker job's life cycle: start, settle, describe, list, stop, recover.

A job is a resource document with a lease; its work is one task on the compute engine, whose process
reports progress fenced by that lease and completes the job itself. Whatever ends otherwise (stopped, failed,
timed out, killed, or left behind by a stopped server) is settled here. Each kind of job subclasses
`JobService`, parses its own request, builds its own Describe document and says how its document records a
final status (`_finish`) and a stop request (`_mark_stopping`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from sagelab.account import Account, HomePaths
from sagelab.compute.engine import ComputeEngine, Task, TaskState, TaskStatus
from sagelab.errors import ResourceInUse, ResourceNotFound, ValidationError
from sagelab.jobs.kind import ACTIVE, JobKind
from sagelab.settings import Settings
from sagelab.storage.resources import AlreadyExists, LeaseLost, NotFound, Resource, ResourceStore, public


class JobService:
    """Built from what every kind of job uses: the resource store, the engine its work runs on, the account
    its ARNs name, the home its logs go to, and the settings its processes attach with."""

    kind: ClassVar[JobKind]

    def __init__(self, *, resources: ResourceStore, engine: ComputeEngine, account: Account, home: HomePaths,
                 settings: Settings):
        self.resources = resources
        self.engine = engine
        self.account = account
        self.home = home
        self.settings = settings
        self._end_listeners: list[Callable[[str], None]] = []

    def log_path(self, name: str) -> Path:
        return self.kind.log_path(self.home.logs, name)

    # --- what each kind says about its own document ----------------------------------------------------
    def _finish(self, res: Resource, status: str, *, reason: str | None = None) -> None:
        """Move the job to a final status and release its lease."""
        raise NotImplementedError

    def _mark_stopping(self, res: Resource) -> None:
        raise NotImplementedError

    # --- start -----------------------------------------------------------------------------------------
    def _arn(self, region: str, name: str) -> str:
        return self.account.sagemaker_arn(self.kind.resource, name, region)

    def _start(self, doc: dict[str, Any], *, tags: list[dict[str, str]] | None, timeout: float | None) -> str:
        """Record a new job (its Describe document) and hand its work to the compute engine."""
        kind = self.kind
        name, arn = doc[kind.name_field], doc[kind.arn_field]
        lease = self.resources.new_lease()
        try:
            self.resources.insert(kind.resource, name, arn, "InProgress", doc, created_at=doc["CreationTime"],
                                  lease=lease)
        except AlreadyExists:
            raise ResourceInUse(f"{kind.noun.capitalize()} names must be unique within an AWS account and region, "
                                f"and a {kind.noun} with this name already exists ({arn}).") from None
        if tags:
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in tags})
        self._submit(name, lease, timeout)
        return arn

    def _submit(self, name: str, lease: str, timeout: float | None) -> None:
        """Hand the work of the job holding `lease` to the compute engine."""
        task = Task(id=self.kind.task_id(name, lease), target=self.kind.runner,
                    args={"settings": self.settings.to_dict(), "job_name": name, "lease": lease},
                    log_path=self.log_path(name), timeout=timeout)
        self.engine.submit(task, self._on_task_done)

    # --- the engine reports a finished task -------------------------------------------------------------
    def on_job_ended(self, listener: Callable[[str], None]) -> None:
        """Call `listener(job name)` whenever a job's task has ended and the job is settled, so that whoever
        waits for jobs (a tuning job's driver) reacts at once instead of at its next look."""
        self._end_listeners.append(listener)

    def _on_task_done(self, task: Task, status: TaskStatus) -> None:
        def settle(res: Resource) -> None:
            if res.status in ACTIVE:
                self._settle_ended_task(res, task, status)

        # A lost lease or a deleted job means someone else has settled it already.
        with contextlib.suppress(LeaseLost, NotFound):
            self.resources.update(self.kind.resource, task.args["job_name"], settle, lease=task.args["lease"])
        for listener in self._end_listeners:
            listener(task.args["job_name"])

    def _settle_ended_task(self, res: Resource, task: Task, status: TaskStatus) -> None:
        """Settle a job whose task ended while the job was still active."""
        if status.state is TaskState.STOPPED or res.status == "Stopping":
            self._finish(res, "Stopped")
        elif status.state is TaskState.TIMED_OUT:
            self._timed_out(res, task, status)
        elif status.state is TaskState.FAILED:
            self._finish(res, "Failed", reason=status.error or self.kind.failed_without_reason)
        else:  # the process ended without completing the job
            self._finish(res, "Failed", reason=self.kind.exited_early)

    def _timed_out(self, res: Resource, task: Task, status: TaskStatus) -> None:
        """A kind without a runtime limit of its own fails a timed-out task like any failed one."""
        self._finish(res, "Failed", reason=status.error or self.kind.failed_without_reason)

    # --- read ------------------------------------------------------------------------------------------
    def get(self, name: str) -> Resource:
        res = self.resources.get(self.kind.resource, name)
        if res is None:
            raise ValidationError(self.kind.not_found.format(name=name))
        return res

    def describe(self, name: str) -> dict[str, Any]:
        return public(self.get(name).doc)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        kind = self.kind
        summaries = []
        for res in self.resources.list_for_request(kind.resource, params):
            summary = {kind.name_field: res.name, kind.arn_field: res.arn, "CreationTime": res.created_at,
                       "LastModifiedTime": res.modified_at, kind.status_field: res.status}
            summary.update({field: res.doc[field] for field in kind.summary_fields if field in res.doc})
            summaries.append(summary)
        return summaries

    # --- stop ------------------------------------------------------------------------------------------
    def stop(self, name: str) -> None:
        kind = self.kind
        res = self.resources.get(kind.resource, name)
        if res is None:
            raise ResourceNotFound(f"{kind.noun.capitalize()} {name!r} does not exist.")
        if res.status == "Stopping" and kind.stop_while_stopping_succeeds:
            return
        if res.status != "InProgress":
            raise ValidationError(f"The {kind.noun} {name!r} is {res.status}; only InProgress jobs can be stopped.")
        lease = res.lease
        self.resources.update(kind.resource, name, self._mark_stopping)
        try:
            self.engine.stop(kind.task_id(name, lease or ""))
        except KeyError:
            # Not this server's task (e.g. submitted before a restart): settle it here.
            self.resources.update(kind.resource, name, lambda r: self._finish(r, "Stopped"))

    # --- restart safety --------------------------------------------------------------------------------
    def _settle_left_behind(self, res: Resource) -> None:
        """A job a previous server left active cannot be resumed (unless its kind says otherwise): it ends."""
        if res.status == "Stopping":
            self._finish(res, "Stopped")
        elif res.status == "InProgress":
            self._finish(res, "Failed", reason=self.kind.server_stopped)

    def recover(self, left_by: str | None = None) -> int:
        """Settle jobs a stopped server left active: every active one, or those of the server `left_by`."""
        def settle(res: Resource) -> None:
            self._settle_left_behind(res)

        settled = 0
        for res in self.resources.left_behind(self.kind.resource, ACTIVE, left_by):
            try:
                # Fenced by the lease seen: a job another server took over meanwhile is its business.
                self.resources.update(self.kind.resource, res.name, settle, lease=res.lease)
                settled += 1
            except (LeaseLost, NotFound):
                continue
        return settled
