"""Metrics come from the job log, extracted by MetricDefinition regexes as SageMaker does.

CloudWatch shows a tab as `#011`, so regexes written for AWS (`...#011validation-auc:...`) match too.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from typing import Any

from sagelab.algorithms.base import MetricDefinition


def extract_metrics(lines: Iterable[str], definitions: Iterable[MetricDefinition]) -> dict[str, float]:
    """The last value each metric took in the log."""
    compiled = []
    for definition in definitions:
        try:
            compiled.append((definition.name, re.compile(definition.regex)))
        except re.error:
            continue
    latest: dict[str, float] = {}
    for line in lines:
        for name, regex in compiled:
            value = metric_value(line, regex)
            if value is not None:
                latest[name] = value
    return latest


def metric_value(line: str, regex: re.Pattern[str]) -> float | None:
    """The finite number a MetricDefinition regex captures in one log line, if any."""
    variants = (line, line.replace("\t", "#011")) if "\t" in line else (line,)
    for text in variants:
        match = regex.search(text)
        if match and match.groups():
            try:
                value = float(match.group(1))
            except (TypeError, ValueError):
                continue
            return value if math.isfinite(value) else None
    return None


def final_metric_list(values: dict[str, float], when: float | None = None) -> list[dict[str, Any]]:
    when = time.time() if when is None else when
    return [{"MetricName": name, "Value": value, "Timestamp": when} for name, value in sorted(values.items())]
