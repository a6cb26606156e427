"""Intermediate objective values, read from a trial's log while it runs.

SageMaker derives early-stopping decisions from every value of the objective metric a training job
emits, matched by the same MetricDefinition regex that gives its final value. Each matching line is one
step (an XGBoost round, a Linear Learner epoch). The log is read incrementally; a line still being written
waits for its newline.
"""

from __future__ import annotations

import re
from pathlib import Path

from sagelab.training.metrics import metric_value


class ObjectiveLog:
    def __init__(self, path: Path, regex: str):
        self.path = path
        try:
            self._regex: re.Pattern[str] | None = re.compile(regex)
        except re.error:
            self._regex = None
        self._offset = 0
        self._partial = b""

    def read_new(self) -> list[float]:
        """The objective values logged since the last call, in order."""
        if self._regex is None:
            return []
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        values = []
        for raw in lines:
            value = metric_value(raw.decode("utf-8", errors="replace"), self._regex)
            if value is not None:
                values.append(value)
        return values
