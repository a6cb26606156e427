"""Framework hyperparameters: what the SDK sends, decoded the way the SageMaker training toolkit decodes it.

A framework estimator JSON-encodes every value (`"lr": "0.1"`, `"name": "\\"rbf\\""`); the toolkit
decodes each one (keeping the raw text when it is not JSON). Names starting with `sagemaker_` configure the
container (entry point, source bundle, log level, distribution) and are not the script's; names starting
with `_` are sagelab's and SageMaker's own (e.g. `_tuning_objective_metric`) and are not passed on either.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from sagelab.errors import ValidationError

PROGRAM = "sagemaker_program"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"
LOG_LEVEL = "sagemaker_container_log_level"
FRAMEWORK_PREFIX = "sagemaker_"


def decode(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


@dataclasses.dataclass(frozen=True)
class FrameworkHyperparameters:
    """Any hyperparameters; the entry point is required. The same `validate` interface as the built-in
    algorithms' schemas."""

    image_name: str

    def by_name(self) -> dict[str, Any]:
        return {}

    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        values = {str(k): decode(v) if isinstance(v, str) else v for k, v in raw.items()}
        program = values.get(PROGRAM)
        if not isinstance(program, str) or not program.strip():
            raise ValidationError(f"HyperParameters.{PROGRAM} is required for the {self.image_name} framework "
                                  f"image: expected the entry point script's name (the SDK sets it from "
                                  f"entry_point), got {raw.get(PROGRAM)!r}.")
        return values


def user_hyperparameters(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not k.startswith((FRAMEWORK_PREFIX, "_"))}


def framework_parameters(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k.startswith(FRAMEWORK_PREFIX)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def command_line_arguments(hyperparameters: Mapping[str, Any]) -> list[str]:
    """`--name value` pairs, sorted by name, as the toolkit writes them (a dict becomes `k=v,k=v`)."""
    arguments: list[str] = []
    for name in sorted(hyperparameters):
        value = hyperparameters[name]
        arguments.append(f"--{name}" if len(name) > 1 else f"-{name}")
        if isinstance(value, Mapping):
            arguments.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            arguments.append(_text(value))
    return arguments
