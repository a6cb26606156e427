"""The side of a SageMaker job's life cycle that runs inside the job's own process.

The process attaches to the server's home with only the parts a job needs (`sagelab.process_parts`), does
the work, and completes the job. Every
write to the job's document is fenced by its lease: once the job is stopped (or a restarted server has
settled it), the process can no longer change it and leaves quietly. Glue job runs enter their process the
same way (`run_in_job_process`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TextIO

from sagelab.jobs.kind import JobKind
from sagelab.process_parts import ProcessParts, attach
from sagelab.storage.resources import LeaseLost


class JobFailure(Exception):
    """A job failure with the reason the user will read."""


def run_in_job_process(log: TextIO, settings: dict[str, Any], work: Callable[[ProcessParts], None], *,
                       what: str = "job") -> None:
    """Run `work` on parts attached to the server's home; a lost lease means the work was stopped."""
    parts = attach(settings)
    try:
        work(parts)
    except LeaseLost:
        log.write(f"sagelab: the {what} was stopped; exiting.\n")
    finally:
        parts.close()


class JobRun:
    """One job's work in its process: the job, the lease it holds, its log and its work folder."""

    kind: ClassVar[JobKind]

    def __init__(self, parts: ProcessParts, job_name: str, lease: str, log: TextIO):
        self.parts = parts
        self.job_name = job_name
        self.lease = lease
        self.log = log
        self.work_dir: Path = parts.home.work / self.kind.folder / job_name

    def _update(self, mutate: Callable[[Any], None]) -> None:
        self.parts.resources.update(self.kind.resource, self.job_name, mutate, lease=self.lease)

    def _check_lease(self) -> None:
        """Stop early, before the next long step, when the job is no longer ours."""
        res = self.parts.resources.get(self.kind.resource, self.job_name)
        if res is None or res.lease != self.lease:
            raise LeaseLost(self.job_name)

    def _say(self, message: str) -> None:
        self.log.write(f"sagelab: {time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        self.log.flush()
