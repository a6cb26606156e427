"""The evaluator's settings, from the processing job's Environment and ContainerArguments.

Every setting can be given as an Environment entry (`problem_type=BinaryClassification`, the way SageMaker's
model-quality analyzer is configured) or as arguments (`--problem-type BinaryClassification`, or
`--problem-type=...`); arguments win. Names are case-insensitive and `-`/`_` are the same.

    mode                  evaluation (score a trained model, the default) | cross-validation
    algorithm_image       the built-in algorithm's image: loads the model (evaluation) or trains (cross-validation)
    model_name            evaluation: a SageMaker Model to score, instead of a `model` input and algorithm_image
    problem_type          BinaryClassification | MulticlassClassification | Regression (default: inferred)
    probability_threshold binary: a record is positive when its score is above this (default 0.5)
    bootstrap_samples     evaluation: resamples behind each metric's standard_deviation (default 100; 0 = none)
    hyperparameters       cross-validation: a JSON object of the algorithm's hyperparameters
    cv_strategy           cross-validation: KFold | StratifiedKFold | LeaveOneOut (default StratifiedKFold for
                          classification, KFold for regression)
    folds                 cross-validation: number of folds k (default 5)
    shuffle               cross-validation: shuffle before splitting (default true)
    seed                  random seed of the shuffling and the bootstrap (default 0)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence

from sagelab.errors import ValidationError

MODES = ("evaluation", "cross-validation")
PROBLEM_TYPES = ("BinaryClassification", "MulticlassClassification", "Regression")
CV_STRATEGIES = ("KFold", "StratifiedKFold", "LeaveOneOut")
_KNOWN = ("mode", "algorithm_image", "model_name", "problem_type", "probability_threshold", "bootstrap_samples",
          "hyperparameters", "cv_strategy", "folds", "shuffle", "seed")


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig:
    mode: str = "evaluation"
    algorithm_image: str | None = None
    model_name: str | None = None
    problem_type: str | None = None
    probability_threshold: float = 0.5
    bootstrap_samples: int = 100
    hyperparameters: dict[str, str] = dataclasses.field(default_factory=dict)
    cv_strategy: str | None = None
    folds: int = 5
    shuffle: bool = True
    seed: int = 0


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _from_arguments(arguments: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    items = list(arguments)
    index = 0
    while index < len(items):
        item = items[index]
        if not item.startswith("--"):
            raise ValidationError(f"ContainerArguments: expected --name value pairs for the evaluator, got "
                                  f"{item!r}.")
        name, has_value, value = item[2:].partition("=")
        if not has_value:
            if index + 1 >= len(items):
                raise ValidationError(f"ContainerArguments: {item} needs a value.")
            index += 1
            value = items[index]
        values[_key(name)] = value
        index += 1
    return values


def _one_of(name: str, value: str, allowed: Sequence[str]) -> str:
    folded = {a.lower().replace("-", "").replace("_", ""): a for a in allowed}
    found = folded.get(value.strip().lower().replace("-", "").replace("_", ""))
    if found is None:
        raise ValidationError(f"Evaluator setting {name}: expected one of {', '.join(allowed)}, got {value!r}.")
    return found


def _number(name: str, value: str, kind: type, minimum: float) -> float:
    try:
        number = kind(value)
    except ValueError:
        raise ValidationError(f"Evaluator setting {name}: expected {'an integer' if kind is int else 'a number'}, "
                              f"got {value!r}.") from None
    if not math.isfinite(number) or number < minimum:
        raise ValidationError(f"Evaluator setting {name}: must be at least {minimum}, got {value!r}.")
    return number


def parse_config(environment: Mapping[str, str], arguments: Sequence[str]) -> EvaluatorConfig:
    values = {_key(k): v for k, v in environment.items() if _key(k) in _KNOWN}
    for name, value in _from_arguments(arguments).items():
        if name not in _KNOWN:
            raise ValidationError(f"ContainerArguments: the evaluator has no setting --{name}. Settings: "
                                  f"{', '.join('--' + k.replace('_', '-') for k in _KNOWN)}.")
        values[name] = value
    fields: dict[str, object] = {}
    if "mode" in values:
        fields["mode"] = _one_of("mode", values["mode"], MODES)
    for name in ("algorithm_image", "model_name"):
        if values.get(name):
            fields[name] = values[name].strip()
    if values.get("problem_type"):
        fields["problem_type"] = _one_of("problem_type", values["problem_type"], PROBLEM_TYPES)
    if "probability_threshold" in values:
        fields["probability_threshold"] = _number("probability_threshold", values["probability_threshold"],
                                                  float, -math.inf)
    if "bootstrap_samples" in values:
        fields["bootstrap_samples"] = int(_number("bootstrap_samples", values["bootstrap_samples"], int, 0))
    if "folds" in values:
        fields["folds"] = int(_number("folds", values["folds"], int, 2))
    if "seed" in values:
        fields["seed"] = int(_number("seed", values["seed"], int, 0))
    if "shuffle" in values:
        text = values["shuffle"].strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise ValidationError(f"Evaluator setting shuffle: expected true or false, got {values['shuffle']!r}.")
        fields["shuffle"] = text in ("true", "1")
    if values.get("cv_strategy"):
        fields["cv_strategy"] = _one_of("cv_strategy", values["cv_strategy"], CV_STRATEGIES)
    if values.get("hyperparameters"):
        try:
            hyperparameters = json.loads(values["hyperparameters"])
        except ValueError as exc:
            raise ValidationError(f"Evaluator setting hyperparameters: not valid JSON ({exc}).") from None
        if not isinstance(hyperparameters, dict):
            raise ValidationError("Evaluator setting hyperparameters: expected a JSON object of name: value.")
        fields["hyperparameters"] = {str(k): str(v) for k, v in hyperparameters.items()}
    config = EvaluatorConfig(**fields)  # type: ignore[arg-type]
    if config.mode == "cross-validation" and not config.algorithm_image:
        raise ValidationError("Evaluator setting algorithm_image is required for cross-validation: the image of "
                              "the built-in algorithm to train on each fold.")
    return config
