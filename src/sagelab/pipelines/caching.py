"""Step caching (`CacheConfig`): a step reuses an earlier execution's successful run of the same step.

Two runs are the same when the step's type and arguments are, with execution variables left unresolved
(every execution has its own id, so resolved they would never match); arguments read from upstream steps
are resolved, so a step whose inputs changed runs again. A run older than `ExpireAfter` (ISO 8601, e.g.
`PT1H`, `P30D`) is not reused; without `ExpireAfter` a run is reused however old it is.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sagelab.errors import ValidationError
from sagelab.pipelines import states
from sagelab.storage import tables
from sagelab.storage.resources import ResourceStore

_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_UNIT_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def parse_duration(text: str, *, where: str) -> float:
    match = _DURATION.match(text or "")
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValidationError(f"{where}: ExpireAfter {text!r} is not an ISO 8601 duration such as PT1H or P30D.")
    return float(sum(int(n or 0) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS, strict=True)))


class CacheLookup:
    def __init__(self, resources: ResourceStore):
        self.resources = resources

    def find(self, pipeline_arn: str, execution_arn: str, step_name: str, key: str,
             expire_after: str | None) -> tuple[str, dict[str, Any]] | None:
        """(the source execution's ARN, its step record) of the newest reusable run, if any."""
        oldest = time.time() - parse_duration(expire_after, where=step_name) if expire_after else None
        t = tables.resources
        for res in self.resources.list(states.EXECUTION, where=[t.c.arn.startswith(f"{pipeline_arn}/execution/",
                                                                                    autoescape=True)]):
            if res.arn == execution_arn:
                continue
            record = res.doc.get("_Steps", {}).get(step_name)
            if (record is None or record.get("StepStatus") != "Succeeded" or record.get("_CacheKey") != key
                    or (oldest is not None and record.get("EndTime", 0) < oldest)):
                continue
            source = (record.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn", res.arn)
            return source, record
        return None
