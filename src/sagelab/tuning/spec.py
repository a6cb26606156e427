"""A CreateHyperParameterTuningJob request, validated once into a typed spec.

botocore's model has already checked shapes, enums, lengths and patterns (the name's 32 characters among
them). This module checks what AWS checks beyond the shapes: the strategy's rules (Grid takes only
categorical ranges and runs exactly every combination; Hyperband needs a MaxResource and no extra early
stopping), the ranges themselves (numbers, order, scaling, within the algorithm's own limits), the
objective (a metric the algorithm or the definition declares), the default quotas, and that every
training job a trial would create is itself valid.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

from sagelab.algorithms.registry import AlgorithmRegistry, entry_point_of_hyperparameters
from sagelab.errors import ResourceLimitExceeded, ValidationError
from sagelab.training.spec import parse_training_job
from sagelab.tuning.space import (
    CATEGORICAL,
    CONTINUOUS,
    INTEGER,
    LOGARITHMIC,
    REVERSE_LOGARITHMIC,
    ParameterRange,
)

GRID, RANDOM, BAYESIAN, HYPERBAND = "Grid", "Random", "Bayesian", "Hyperband"

#: SageMaker's default quotas for one tuning job (automatic-model-tuning-limits).
MAX_TRAINING_JOBS = 750
MAX_PARALLEL_TRAINING_JOBS = 10
MAX_SEARCHED_HYPERPARAMETERS = 30
HYPERBAND_MAX_RESOURCE = 20000
#: Static hyperparameters Hyperband reads MaxResource from when the request gives none.
EPOCH_HYPERPARAMETERS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")
#: The hyperparameter a tuning job adds to each trial, naming its objective metric.
OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"

_PASSED_TO_TRAINING = ("RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition",
                       "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                       "EnableManagedSpotTraining", "CheckpointConfig", "RetryStrategy", "Environment")


@dataclasses.dataclass(frozen=True)
class Objective:
    metric: str
    type: str  # Maximize | Minimize


@dataclasses.dataclass(frozen=True)
class TrainingDefinition:
    """What every trial of one (of up to ten) training job definitions shares."""

    name: str | None  # DefinitionName; None for a lone TrainingJobDefinition that names none
    objective: Objective
    ranges: tuple[ParameterRange, ...]
    static: dict[str, str]
    request: dict[str, Any]  # the HyperParameterTrainingJobDefinition as sent

    @property
    def image(self) -> str:
        spec = self.request.get("AlgorithmSpecification") or {}
        return spec.get("TrainingImage") or spec.get("AlgorithmName") or ""

    @property
    def hyperparameter_names(self) -> frozenset[str]:
        return frozenset(self.static) | {r.name for r in self.ranges}

    def training_request(self, job_name: str, tuned: dict[str, str]) -> dict[str, Any]:
        """The CreateTrainingJob request of one trial."""
        algorithm = {k: v for k, v in (self.request.get("AlgorithmSpecification") or {}).items()
                     if k in ("TrainingImage", "AlgorithmName", "TrainingInputMode", "MetricDefinitions")}
        request: dict[str, Any] = {
            "TrainingJobName": job_name,
            "AlgorithmSpecification": algorithm,
            "HyperParameters": {**self.static, **tuned, OBJECTIVE_HYPERPARAMETER: self.objective.metric},
        }
        for key in _PASSED_TO_TRAINING:
            if self.request.get(key) is not None:
                request[key] = self.request[key]
        flexible = self.request.get("HyperParameterTuningResourceConfig")
        if "ResourceConfig" not in request and flexible:
            first = (flexible.get("InstanceConfigs") or [flexible])[0]
            request["ResourceConfig"] = {k: first[k] for k in ("InstanceType", "InstanceCount", "VolumeSizeInGB")
                                         if first.get(k) is not None}
        return request

    def grid(self) -> list[dict[str, str]]:
        """Every combination of the categorical values, in the order the request lists them."""
        names = [r.name for r in self.ranges]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(r.values for r in self.ranges))]


@dataclasses.dataclass(frozen=True)
class Hyperband:
    min_resource: int
    max_resource: int


@dataclasses.dataclass(frozen=True)
class CompletionCriteria:
    target: float | None = None
    max_not_improving: int | None = None


@dataclasses.dataclass(frozen=True)
class WarmStart:
    parents: tuple[str, ...]
    type: str  # IdenticalDataAndAlgorithm | TransferLearning


@dataclasses.dataclass(frozen=True)
class TuningJobSpec:
    name: str
    strategy: str
    definitions: tuple[TrainingDefinition, ...]
    max_jobs: int
    max_parallel: int
    max_runtime: int | None
    early_stopping: bool
    random_seed: int | None
    hyperband: Hyperband | None
    completion: CompletionCriteria
    warm_start: WarmStart | None

    @property
    def objective_type(self) -> str:
        return self.definitions[0].objective.type

    def definition(self, name: str | None) -> TrainingDefinition | None:
        if len(self.definitions) == 1:
            return self.definitions[0]
        return next((d for d in self.definitions if d.name == name), None)


# --- parsing ---------------------------------------------------------------------------------------------
def parse_tuning_job(params: dict[str, Any], registry: AlgorithmRegistry) -> TuningJobSpec:
    if params.get("Autotune"):
        raise ValidationError("Autotune is not supported by sagelab: give ParameterRanges, ResourceLimits and "
                              "the strategy explicitly.")
    config = params["HyperParameterTuningJobConfig"]
    strategy = config["Strategy"]
    definitions = _parse_definitions(params, config, registry)
    early_stopping = config.get("TrainingJobEarlyStoppingType", "Off") == "Auto"
    limits = config["ResourceLimits"]
    max_parallel = int(limits["MaxParallelTrainingJobs"])
    if max_parallel > MAX_PARALLEL_TRAINING_JOBS:
        raise ResourceLimitExceeded(
            f"ResourceLimits.MaxParallelTrainingJobs {max_parallel} exceeds the limit of "
            f"{MAX_PARALLEL_TRAINING_JOBS} parallel training jobs per hyperparameter tuning job.")
    max_jobs = _max_jobs(strategy, limits.get("MaxNumberOfTrainingJobs"), definitions)
    if config.get("StrategyConfig") and strategy != HYPERBAND:
        raise ValidationError(f"HyperParameterTuningJobConfig.StrategyConfig applies to the Hyperband strategy "
                              f"only; Strategy is {strategy}.")
    hyperband = _parse_hyperband(config, definitions, early_stopping) if strategy == HYPERBAND else None
    warm = params.get("WarmStartConfig")
    warm_start = None
    if warm:
        names = tuple(p["HyperParameterTuningJobName"] for p in warm["ParentHyperParameterTuningJobs"]
                      if p.get("HyperParameterTuningJobName"))
        if len(names) != len(warm["ParentHyperParameterTuningJobs"]):
            raise ValidationError("WarmStartConfig.ParentHyperParameterTuningJobs: every parent must name its "
                                  "HyperParameterTuningJobName.")
        if len(set(names)) != len(names):
            raise ValidationError(f"WarmStartConfig.ParentHyperParameterTuningJobs names a parent twice: "
                                  f"{', '.join(names)}.")
        if params["HyperParameterTuningJobName"] in names:
            raise ValidationError("WarmStartConfig: a tuning job cannot be its own parent.")
        warm_start = WarmStart(parents=names, type=warm["WarmStartType"])
    criteria = config.get("TuningJobCompletionCriteria") or {}
    not_improving = (criteria.get("BestObjectiveNotImproving") or {}).get("MaxNumberOfTrainingJobsNotImproving")
    completion = CompletionCriteria(target=criteria.get("TargetObjectiveMetricValue"),
                                    max_not_improving=not_improving)
    return TuningJobSpec(
        name=params["HyperParameterTuningJobName"], strategy=strategy, definitions=definitions,
        max_jobs=max_jobs, max_parallel=max_parallel, max_runtime=limits.get("MaxRuntimeInSeconds"),
        early_stopping=early_stopping, random_seed=config.get("RandomSeed"), hyperband=hyperband,
        completion=completion, warm_start=warm_start)


def _max_jobs(strategy: str, given: int | None, definitions: tuple[TrainingDefinition, ...]) -> int:
    if strategy == GRID:
        # Counted, not listed: thirty ranges of thirty values would not fit in memory.
        combinations = sum(math.prod(len(r.values) for r in d.ranges) for d in definitions)
        if combinations > MAX_TRAINING_JOBS:
            raise ResourceLimitExceeded(
                f"The Grid strategy would run {combinations} training jobs (every combination of the categorical "
                f"values), more than the limit of {MAX_TRAINING_JOBS} per hyperparameter tuning job.")
        if given is not None and given != combinations:
            raise ValidationError(
                f"ResourceLimits.MaxNumberOfTrainingJobs must equal the number of distinct combinations of the "
                f"categorical values ({combinations}) for the Grid strategy, or be left out; got {given}.")
        return combinations
    if given is None:
        raise ValidationError(f"ResourceLimits.MaxNumberOfTrainingJobs is required for the {strategy} strategy.")
    if given > MAX_TRAINING_JOBS:
        raise ResourceLimitExceeded(f"ResourceLimits.MaxNumberOfTrainingJobs {given} exceeds the limit of "
                                    f"{MAX_TRAINING_JOBS} training jobs per hyperparameter tuning job.")
    return int(given)


def _parse_hyperband(config: dict[str, Any], definitions: tuple[TrainingDefinition, ...],
                     early_stopping: bool) -> Hyperband:
    if early_stopping:
        raise ValidationError("TrainingJobEarlyStoppingType must be Off with the Hyperband strategy: Hyperband "
                              "stops training jobs early itself.")
    raw = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
    min_resource = int(raw.get("MinResource") or 1)
    max_resource = raw.get("MaxResource")
    if max_resource is None:
        for definition in definitions:
            key = next((k for k in EPOCH_HYPERPARAMETERS if k in definition.static), None)
            if key is not None:
                max_resource = _integer(definition.static[key], f"StaticHyperParameters.{key}")
                break
    if max_resource is None:
        raise ValidationError(
            "HyperbandStrategyConfig.MaxResource is required: it could not be inferred because no static "
            f"hyperparameter is named {', '.join(EPOCH_HYPERPARAMETERS)}.")
    if max_resource > HYPERBAND_MAX_RESOURCE:
        raise ValidationError(f"HyperbandStrategyConfig.MaxResource must be at most {HYPERBAND_MAX_RESOURCE}; "
                              f"got {max_resource}.")
    if min_resource > max_resource:
        raise ValidationError(f"HyperbandStrategyConfig.MinResource ({min_resource}) must not exceed MaxResource "
                              f"({max_resource}).")
    return Hyperband(min_resource=min_resource, max_resource=int(max_resource))


def _parse_definitions(params: dict[str, Any], config: dict[str, Any],
                       registry: AlgorithmRegistry) -> tuple[TrainingDefinition, ...]:
    single, several = params.get("TrainingJobDefinition"), params.get("TrainingJobDefinitions")
    if single and several:
        raise ValidationError("Give either TrainingJobDefinition or TrainingJobDefinitions, not both.")
    if not single and not several:
        raise ValidationError("A tuning job needs a TrainingJobDefinition (or TrainingJobDefinitions).")
    strategy = config["Strategy"]
    if single:
        return (_parse_definition(single, config, registry, strategy, "TrainingJobDefinition", named=False),)
    definitions = tuple(_parse_definition(d, config, registry, strategy, f"TrainingJobDefinitions[{i}]", named=True)
                        for i, d in enumerate(several, start=1))
    names = [d.name for d in definitions]
    if len(set(names)) != len(names):
        raise ValidationError(f"TrainingJobDefinitions: DefinitionName values must be unique, got "
                              f"{', '.join(str(n) for n in names)}.")
    types = {d.objective.type for d in definitions}
    if len(types) > 1:
        raise ValidationError("TrainingJobDefinitions: every TuningObjective must have the same Type (Maximize or "
                              "Minimize), so that their training jobs can be compared.")
    return definitions


def _parse_definition(raw: dict[str, Any], config: dict[str, Any], registry: AlgorithmRegistry, strategy: str,
                      where: str, *, named: bool) -> TrainingDefinition:
    name = raw.get("DefinitionName")
    if named and not name:
        raise ValidationError(f"{where}.DefinitionName is required when a tuning job has TrainingJobDefinitions.")
    objective_raw = raw.get("TuningObjective") or config.get("HyperParameterTuningJobObjective")
    if not objective_raw:
        raise ValidationError(f"HyperParameterTuningJobConfig.HyperParameterTuningJobObjective (or "
                              f"{where}.TuningObjective) is required: it names the metric to optimize.")
    objective = Objective(metric=objective_raw["MetricName"], type=objective_raw["Type"])
    ranges_raw = raw.get("HyperParameterRanges") or config.get("ParameterRanges") or {}
    ranges_where = f"{where}.HyperParameterRanges" if raw.get("HyperParameterRanges") else "ParameterRanges"
    ranges = _parse_ranges(ranges_raw, ranges_where, strategy)
    static = {str(k): str(v) for k, v in (raw.get("StaticHyperParameters") or {}).items()}
    definition = TrainingDefinition(name=name, objective=objective, ranges=ranges, static=static, request=raw)
    both = sorted(set(static) & {r.name for r in ranges})
    if both:
        raise ValidationError(f"{where}: hyperparameter(s) {', '.join(both)} are both static "
                              "(StaticHyperParameters) and tunable (a parameter range); choose one.")
    _check_with_algorithm(definition, registry, where, ranges_where)
    return definition


def _parse_ranges(raw: dict[str, Any], where: str, strategy: str) -> tuple[ParameterRange, ...]:
    if raw.get("AutoParameters"):
        raise ValidationError(f"{where}.AutoParameters are not supported by sagelab (they need Autotune).")
    ranges: list[ParameterRange] = []
    for kind in (INTEGER, CONTINUOUS, CATEGORICAL):
        for index, item in enumerate(raw.get(f"{kind}ParameterRanges") or [], start=1):
            ranges.append(_parse_range(kind, item, f"{where}.{kind}ParameterRanges[{index}] ({item['Name']})"))
    if not ranges:
        raise ValidationError(f"{where}: a tuning job needs at least one parameter range to search.")
    if len(ranges) > MAX_SEARCHED_HYPERPARAMETERS:
        raise ResourceLimitExceeded(f"{where}: {len(ranges)} hyperparameters to search, more than the limit of "
                                    f"{MAX_SEARCHED_HYPERPARAMETERS}.")
    names = [r.name for r in ranges]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValidationError(f"{where}: hyperparameter(s) {', '.join(repeated)} have more than one range.")
    if strategy == GRID:
        numeric = [r.name for r in ranges if r.kind != CATEGORICAL]
        if numeric:
            raise ValidationError(f"{where}: the Grid strategy supports only CategoricalParameterRanges; "
                                  f"{', '.join(numeric)} have Integer or Continuous ranges.")
    return tuple(ranges)


def _parse_range(kind: str, item: dict[str, Any], where: str) -> ParameterRange:
    name = item["Name"]
    if not name:
        raise ValidationError(f"{where}: Name must not be empty.")
    if kind == CATEGORICAL:
        values = tuple(item["Values"])
        if len(set(values)) != len(values):
            raise ValidationError(f"{where}: Values must be distinct, got {list(values)}.")
        return ParameterRange(name=name, kind=kind, values=values)
    scaling = item.get("ScalingType") or "Auto"
    if kind == INTEGER:
        low, high = _integer(item["MinValue"], f"{where} MinValue"), _integer(item["MaxValue"], f"{where} MaxValue")
        if scaling == REVERSE_LOGARITHMIC:
            raise ValidationError(f"{where}: ScalingType ReverseLogarithmic is supported for continuous ranges "
                                  "only.")
    else:
        low, high = _number(item["MinValue"], f"{where} MinValue"), _number(item["MaxValue"], f"{where} MaxValue")
    if low > high:
        raise ValidationError(f"{where}: MinValue ({item['MinValue']}) must not be greater than MaxValue "
                              f"({item['MaxValue']}).")
    if scaling == LOGARITHMIC and low <= 0:
        raise ValidationError(f"{where}: ScalingType Logarithmic needs a range of values greater than 0; "
                              f"MinValue is {item['MinValue']}.")
    if scaling == REVERSE_LOGARITHMIC and not (low >= 0 and high < 1):
        raise ValidationError(f"{where}: ScalingType ReverseLogarithmic needs a range within 0 <= x < 1; got "
                              f"[{item['MinValue']}, {item['MaxValue']}].")
    return ParameterRange(name=name, kind=kind, low=low, high=high, scaling=scaling)


def _integer(text: Any, where: str) -> int:
    try:
        value = float(str(text).strip())
    except ValueError:
        value = math.nan
    if not value.is_integer():
        raise ValidationError(f"{where} must be an integer, got {text!r}.")
    return int(value)


def _number(text: Any, where: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValidationError(f"{where} must be a finite number, got {text!r}.")
    return value


def _sample_values(definition: TrainingDefinition) -> dict[str, str]:
    """One value of each range (its low end), to validate training requests as a trial would send them."""
    return {r.name: r.ends()[0] for r in definition.ranges}


def _check_with_algorithm(definition: TrainingDefinition, registry: AlgorithmRegistry, where: str,
                          ranges_where: str) -> None:
    """Every trial's training job must be valid: check a sample one, then each end of each range."""
    spec = definition.request.get("AlgorithmSpecification") or {}
    if not definition.image:
        raise ValidationError(f"{where}.AlgorithmSpecification must name a TrainingImage (or an AlgorithmName).")
    algorithm = registry.for_image(definition.image, field=f"{where}.AlgorithmSpecification.TrainingImage",
                                   entry_point=entry_point_of_hyperparameters(definition.static))
    declared = {m.name for m in algorithm.metrics} | {m["Name"] for m in spec.get("MetricDefinitions") or []}
    metric = definition.objective.metric
    if metric not in declared:
        raise ValidationError(
            f"{where}: the objective metric {metric!r} is not a metric of {algorithm.name}. Use one it emits "
            f"({', '.join(sorted(declared))}) or declare it in AlgorithmSpecification.MetricDefinitions.")
    sample = _sample_values(definition)
    try:
        training = parse_training_job(definition.training_request("tuning-validation", sample), registry)
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc.message}") from None
    channel = metric.partition(":")[0]
    if channel in {c.name for c in algorithm.channels} and channel not in {c.name for c in training.channels}:
        raise ValidationError(f"{where}: the objective metric {metric!r} is computed on the {channel!r} channel, "
                              "which InputDataConfig does not provide.")
    schema = algorithm.hyperparameters
    for item in definition.ranges:
        for value in item.ends():
            try:
                schema.validate({**definition.static, **sample, item.name: value})
            except ValidationError as exc:
                raise ValidationError(f"{ranges_where} {item.kind}ParameterRanges ({item.name}): range value "
                                      f"{value!r} is not valid for {algorithm.name}: {exc.message}") from None
