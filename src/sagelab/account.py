"""Who owns what a server holds, and where its home folder keeps it.

These are the small values every stage service is given in place of the whole platform: the account id and
default region its ARNs are written with, and the folders its logs and job work live in.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sagelab.arns import sagemaker_arn, service_arn


@dataclasses.dataclass(frozen=True)
class Account:
    id: str
    #: The server's default region: used where no request names one (a job process, a recovered resource).
    region: str

    def sagemaker_arn(self, kind: str, name: str, region: str | None = None) -> str:
        return sagemaker_arn(region or self.region, self.id, kind, name)

    def arn(self, service: str, resource: str, region: str | None = None) -> str:
        return service_arn(service, region or self.region, self.id, resource)


@dataclasses.dataclass(frozen=True)
class HomePaths:
    """The folders of a server's home that jobs and services write into."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def cache(self) -> Path:
        """What jobs may reuse across runs (e.g. the Python environments of script-mode requirements)."""
        return self.root / "cache"

    @property
    def lake(self) -> Path:
        return self.root / "lake"
