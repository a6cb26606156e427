"""What tells one kind of SageMaker job from another, as far as their shared life cycle is concerned."""

from __future__ import annotations

import dataclasses
from pathlib import Path

#: The statuses of a job whose work has not ended yet.
ACTIVE = ("InProgress", "Stopping")


@dataclasses.dataclass(frozen=True)
class JobKind:
    #: The resource store's kind, which is also the ARN's resource type and the prefix of the job's task id.
    resource: str
    #: How messages name one such job, e.g. "transform job".
    noun: str
    #: Field names of Describe*Job and of List*Jobs summaries.
    name_field: str
    arn_field: str
    status_field: str
    #: Fields copied from the job's document into its List*Jobs summary when the document has them.
    summary_fields: tuple[str, ...]
    #: The function (`module:function`) that does the job's work in the job's process.
    runner: str
    #: The folder, under the logs and the work folders, that holds this kind's jobs (e.g. "TransformJobs").
    folder: str
    #: FailureReason of a job that a stopped server left running: its process died with the server.
    server_stopped: str
    #: FailureReason of a job whose task failed without saying why.
    failed_without_reason: str
    #: FailureReason of a job whose process ended cleanly but never completed the job.
    exited_early: str
    #: Describe*Job's message for a name no job has.
    not_found: str = "Could not find requested job with name {name}"
    #: Stop*Job on a job already Stopping: success here, or refused like any job that is not InProgress.
    stop_while_stopping_succeeds: bool = True

    def log_path(self, logs_dir: Path, name: str) -> Path:
        return logs_dir / self.folder / f"{name}.log"

    def task_id(self, name: str, lease: str) -> str:
        # Built from what the job's document keeps (name and lease), so StopJob can find the task again.
        return f"{self.resource}/{name}/{lease}"
