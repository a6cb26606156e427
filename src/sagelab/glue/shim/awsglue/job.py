"""`awsglue.job.Job`: `init` names the run, `commit` saves what the run's bookmarked reads covered.

As in Glue, a run's bookmark advances only when the script calls `job.commit()` and the run then
succeeds (the runner merges the saved progress into the job's bookmark; see `sagelab.glue.runner`).
"""

from __future__ import annotations

from typing import Any


class Job:
    def __init__(self, glue_context: Any):
        self._context = glue_context
        self.name: str | None = None
        self.args: dict[str, str] = {}

    def init(self, job_name: str, args: dict[str, str] | None = None) -> None:
        self.name = job_name
        self.args = dict(args or {})

    def isInitialized(self) -> bool:  # noqa: N802 - Glue's name
        return self.name is not None

    def commit(self) -> None:
        if self.name is None:
            raise RuntimeError("Job.commit() was called before Job.init(job_name, args).")
        self._context._bookmarks.commit()
