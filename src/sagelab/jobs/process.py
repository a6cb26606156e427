"""The side of a SageMaker job's life cycle that runs inside the job's own process.

The process opens its own platform on the server's settings, does the work, and completes the job. Every
write to the job's document is fenced by its lease: once the job is stopped (or a restarted server has
settled it), the process can no longer change it and leaves quietly. Glue job runs enter their process the
same way (`run_in_job_process`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from sagelab.jobs.kind import JobKind
from sagelab.settings import Settings
from sagelab.storage.resources import LeaseLost

if TYPE_CHECKING:
    from sagelab.platform import Platform


class JobFailure(Exception):
    """A job failure with the reason the user will read."""


def run_in_job_process(log: TextIO, settings: dict[str, Any], work: Callable[[Platform], None], *,
                       what: str = "job") -> None:
    """Run `work` on a platform attached to the server's home; a lost lease means the work was stopped."""
    from sagelab.platform import Platform

    platform = Platform(Settings.from_dict(settings)).attach()
    try:
        work(platform)
    except LeaseLost:
        log.write(f"sagelab: the {what} was stopped; exiting.\n")
    finally:
        platform.close()


class JobRun:
    """One job's work in its process: the job, the lease it holds, its log and its work folder."""

    kind: ClassVar[JobKind]

    def __init__(self, platform: Any, job_name: str, lease: str, log: TextIO):
        self.platform = platform
        self.job_name = job_name
        self.lease = lease
        self.log = log
        self.work_dir: Path = platform.work_dir / self.kind.folder / job_name

    def _update(self, mutate: Callable[[Any], None]) -> None:
        self.platform.resources.update(self.kind.resource, self.job_name, mutate, lease=self.lease)

    def _check_lease(self) -> None:
        """Stop early, before the next long step, when the job is no longer ours."""
        res = self.platform.resources.get(self.kind.resource, self.job_name)
        if res is None or res.lease != self.lease:
            raise LeaseLost(self.job_name)

    def _say(self, message: str) -> None:
        self.log.write(f"sagelab: {time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        self.log.flush()
