"""Parameter ranges: SageMaker's Integer/Continuous/Categorical ranges as Optuna distributions and back.

SageMaker passes every hyperparameter as a string, so a range turns an Optuna value into the string a
trial receives (`to_hyperparameter`) and reads a past trial's string back (`from_hyperparameter`, for warm
start and resume). Scaling follows SageMaker: Logarithmic samples uniformly in log space;
ReverseLogarithmic samples `1 - x` in log space, which crowds values towards the top of a range inside
[0, 1) (useful for momentum-like values); Auto and Linear sample uniformly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

INTEGER, CONTINUOUS, CATEGORICAL = "Integer", "Continuous", "Categorical"
LINEAR, LOGARITHMIC, REVERSE_LOGARITHMIC, AUTO = "Linear", "Logarithmic", "ReverseLogarithmic", "Auto"


@dataclasses.dataclass(frozen=True)
class ParameterRange:
    name: str
    kind: str  # Integer | Continuous | Categorical
    low: float = 0.0
    high: float = 0.0
    scaling: str = AUTO
    values: tuple[str, ...] = ()

    @property
    def reversed(self) -> bool:
        return self.kind == CONTINUOUS and self.scaling == REVERSE_LOGARITHMIC

    def distribution(self) -> BaseDistribution:
        # Optuna takes a second to import: only tuning jobs that run pay for it, not the server's start.
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == CATEGORICAL:
            return CategoricalDistribution(self.values)
        log = self.scaling in (LOGARITHMIC, REVERSE_LOGARITHMIC)
        if self.kind == INTEGER:
            return IntDistribution(int(self.low), int(self.high), log=log)
        if self.reversed:
            return FloatDistribution(1.0 - self.high, 1.0 - self.low, log=True)
        return FloatDistribution(self.low, self.high, log=log)

    def suggest(self, trial: Any, param: str) -> Any:
        """Ask an Optuna trial for this range's value under the name `param` (the internal value)."""
        if self.kind == CATEGORICAL:
            return trial.suggest_categorical(param, list(self.values))
        dist = self.distribution()
        if self.kind == INTEGER:
            return trial.suggest_int(param, dist.low, dist.high, log=dist.log)
        return trial.suggest_float(param, dist.low, dist.high, log=dist.log)

    def to_hyperparameter(self, internal: Any) -> str:
        if self.kind == CATEGORICAL:
            return str(internal)
        if self.kind == INTEGER:
            return str(int(internal))
        value = 1.0 - float(internal) if self.reversed else float(internal)
        return repr(min(max(value, self.low), self.high))

    def from_hyperparameter(self, text: str | None) -> Any | None:
        """The internal value for a past trial's hyperparameter string, or None when it lies outside."""
        if text is None:
            return None
        if self.kind == CATEGORICAL:
            return text if text in self.values else None
        try:
            value = float(text)
        except ValueError:
            return None
        if not math.isfinite(value) or not self.low <= value <= self.high:
            return None
        if self.kind == INTEGER:
            return int(value) if value.is_integer() else None
        if self.reversed:
            internal = 1.0 - value
            dist = self.distribution()
            return min(max(internal, dist.low), dist.high)
        return value

    def ends(self) -> tuple[str, ...]:
        """The values at the edges of the range as hyperparameter strings (every value, for categorical)."""
        if self.kind == CATEGORICAL:
            return self.values
        if self.kind == INTEGER:
            return str(int(self.low)), str(int(self.high))
        return repr(float(self.low)), repr(float(self.high))
