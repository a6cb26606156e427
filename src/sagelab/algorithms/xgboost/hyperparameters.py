"""SageMaker XGBoost's hyperparameters: names, defaults and ranges of the `sagemaker-xgboost` container, and
the checks across them (num_class with multi:* objectives, eval_metric and tuning metric names, constraints).
"""

from __future__ import annotations

import json
import re
from typing import Any

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

OBJECTIVES = (
    "binary:logistic", "binary:logitraw", "binary:hinge",
    "count:poisson",
    "multi:softmax", "multi:softprob",
    "rank:pairwise", "rank:ndcg", "rank:map",
    "reg:linear", "reg:squarederror", "reg:logistic", "reg:gamma", "reg:pseudohubererror",
    "reg:squaredlogerror", "reg:absoluteerror", "reg:tweedie",
    "survival:aft", "survival:cox",
)

#: Metrics xgboost computes itself.
NATIVE_METRICS = (
    "aft-nloglik", "auc", "aucpr", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik",
    "interval-regression-accuracy", "logloss", "mae", "map", "mape", "merror", "mlogloss", "mphe", "ndcg",
    "poisson-nloglik", "rmse", "rmsle", "tweedie-nloglik",
)
#: Metrics computed with scikit-learn each round.
CUSTOM_METRICS = (
    "accuracy", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "mse", "precision", "precision_macro",
    "precision_micro", "r2", "recall", "recall_macro", "recall_micro",
)
MAXIMIZE_METRICS = frozenset({
    "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg", "precision",
    "r2", "recall", "precision_macro", "precision_micro", "recall_macro", "recall_micro",
})
ALL_METRICS = tuple(sorted(NATIVE_METRICS + CUSTOM_METRICS))

#: `error@0.7`, `ndcg@5`, `ndcg@5-`, `ndcg-`, `map@3`, `tweedie-nloglik@1.5`.
_PARAMETRISED_METRIC = re.compile(
    r"^(?:error@[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|(?:ndcg|map)(?:@[0-9]+)?-?|tweedie-nloglik@[0-9]*\.?[0-9]+)$")

_UPDATERS = ("grow_colmaker", "grow_histmaker", "grow_quantile_histmaker", "grow_gpu_hist", "grow_gpu_approx",
             "sync", "refresh", "prune", "shotgun", "coord_descent")


def split_metrics(text: str) -> list[str]:
    return [m.strip() for m in str(text).split(",") if m.strip()]


def metric_base(name: str) -> str:
    return name.split("@", 1)[0].rstrip("-")


def _is_known_metric(name: str) -> bool:
    return name in ALL_METRICS or bool(_PARAMETRISED_METRIC.match(name))


def _check_num_class(values: dict[str, Any]) -> None:
    objective, num_class = values["objective"], values.get("num_class")
    if objective.startswith("multi:") and num_class is None:
        raise ValidationError(f"Hyperparameter 'num_class' is required with objective {objective!r}: expected an "
                              f"integer >= 2 (the number of classes), got nothing.")
    if num_class is not None and not objective.startswith("multi:"):
        raise ValidationError(f"Hyperparameter 'num_class' is only allowed with the multi:softmax or "
                              f"multi:softprob objective, got num_class={num_class} with objective {objective!r}.")


def _check_eval_metric(values: dict[str, Any]) -> None:
    text = values.get("eval_metric")
    if text is None:
        return
    names = split_metrics(text)
    if not names:
        raise ValidationError(f"Hyperparameter 'eval_metric': expected a comma-separated list of metrics, got {text!r}.")
    for name in names:
        if not _is_known_metric(name):
            raise ValidationError(
                f"Hyperparameter 'eval_metric': {name!r} is not a supported metric. Expected a comma-separated "
                f"list of {', '.join(ALL_METRICS)}, or error@t, ndcg@n, map@n, tweedie-nloglik@rho; got {text!r}.")


def _check_tuning_metric(values: dict[str, Any]) -> None:
    text = values.get("_tuning_objective_metric")
    if text is None:
        return
    channel, _, metric = str(text).partition(":")
    if channel not in ("train", "validation") or not metric or not all(
            _is_known_metric(m) for m in split_metrics(metric)):
        raise ValidationError(f"Hyperparameter '_tuning_objective_metric': expected train:<metric> or "
                              f"validation:<metric> with one of {', '.join(ALL_METRICS)}; got {text!r}.")


def _check_constraints(values: dict[str, Any]) -> None:
    monotone = values.get("monotone_constraints")
    if monotone is not None and any(v not in (-1, 0, 1) for v in monotone):
        raise ValidationError(f"Hyperparameter 'monotone_constraints': expected a tuple of -1, 0 and 1 (one per "
                              f"feature), got {tuple(monotone)!r}.")
    interaction = values.get("interaction_constraints")
    if interaction is not None and not (
            isinstance(interaction, list) and all(
                isinstance(group, list) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                                for i in group) for group in interaction)):
        raise ValidationError(f"Hyperparameter 'interaction_constraints': expected a nested list of feature "
                              f"indices such as [[0, 1], [2, 3, 4]], got {json.dumps(interaction)}.")
    updater = values.get("updater")
    if updater is not None:
        unknown = [u for u in split_metrics(updater) if u not in _UPDATERS]
        if unknown or not split_metrics(updater):
            raise ValidationError(f"Hyperparameter 'updater': expected a comma-separated list of "
                                  f"{', '.join(_UPDATERS)}, got {updater!r}.")


def _p(name: str, kind: str, default: Any = None, **kw: Any) -> Hyperparameter:
    return Hyperparameter(name=name, kind=kind, default=default, **kw)


def _schema() -> HyperparameterSchema:
    unit = {"min": 0.0, "max": 1.0}
    fraction = {"min": 0.0, "max": 1.0, "min_inclusive": False}
    params = [
        # Core.
        _p("num_round", "int", required=True, min=1, help="Number of boosting rounds."),
        _p("num_class", "int", min=2, help="Number of classes; required with multi:* objectives."),
        _p("objective", "str", "reg:squarederror", choices=OBJECTIVES),
        _p("eval_metric", "str", help="Comma-separated evaluation metrics; default depends on the objective."),
        _p("early_stopping_rounds", "int", min=1, help="Stop when the validation metric stalls this long."),
        _p("booster", "str", "gbtree", choices=("gbtree", "gblinear", "dart")),
        _p("verbosity", "int", 1, min=0, max=3),
        _p("nthread", "int", min=1, help="Threads; all cores when unset."),
        _p("seed", "int", 0),
        _p("base_score", "float", min=0.0,
           help="Initial prediction. Documented default 0.5 (XGBoost < 2); unset, XGBoost 3 estimates it."),
        _p("csv_weights", "int", 0, choices=(0, 1), help="1: CSV column 1 holds instance weights."),
        # Tree booster.
        _p("eta", "float", 0.3, **unit),
        _p("learning_rate", "float", help="Alias of eta; wins when set.", **unit),
        _p("gamma", "float", 0.0, min=0.0),
        _p("max_depth", "int", 6, min=0, help="0 = no limit."),
        _p("min_child_weight", "float", 1.0, min=0.0),
        _p("max_delta_step", "float", 0.0, min=0.0),
        _p("subsample", "float", 1.0, **fraction),
        _p("colsample_bytree", "float", 1.0, **fraction),
        _p("colsample_bylevel", "float", 1.0, **fraction),
        _p("colsample_bynode", "float", 1.0, **fraction),
        _p("tree_method", "str", "auto", choices=("auto", "exact", "approx", "hist", "gpu_hist")),
        _p("sketch_eps", "float", 0.03, min=0.0, max=1.0, min_inclusive=False, max_inclusive=False),
        _p("grow_policy", "str", "depthwise", choices=("depthwise", "lossguide")),
        _p("max_leaves", "int", 0, min=0),
        _p("max_bin", "int", 256, min=2, help="XGBoost needs at least 2 bins."),
        _p("num_parallel_tree", "int", 1, min=1),
        _p("monotone_constraints", "int_list", help="A tuple of -1/0/1, one per feature, e.g. (1,0,-1)."),
        _p("interaction_constraints", "json", help="Nested list of feature indices, e.g. [[0,1],[2,3]]."),
        _p("updater", "str",
           help="Comma-separated updaters. Documented default grow_colmaker,prune (tree_method=exact); "
                "unset, tree_method picks them."),
        _p("process_type", "str", "default", choices=("default", "update")),
        _p("refresh_leaf", "int", 1, choices=(0, 1)),
        _p("dsplit", "str", choices=("row", "col")),
        _p("predictor", "str", "auto", choices=("auto", "cpu_predictor", "gpu_predictor")),
        _p("sampling_method", "str", "uniform", choices=("uniform", "gradient_based")),
        _p("single_precision_histogram", "bool", False),
        _p("deterministic_histogram", "bool", True),
        # Regularisation and objective parameters.
        _p("lambda", "float", 1.0, min=0.0),
        _p("alpha", "float", 0.0, min=0.0),
        _p("lambda_bias", "float", 0.0, **unit),
        _p("scale_pos_weight", "float", 1.0, min=0.0, min_inclusive=False),
        _p("tweedie_variance_power", "float", 1.5, min=1.0, max=2.0, min_inclusive=False, max_inclusive=False),
        _p("aft_loss_distribution", "str", choices=("normal", "logistic", "extreme")),
        _p("aft_loss_distribution_scale", "float", min=0.0),
        # DART.
        _p("sample_type", "str", "uniform", choices=("uniform", "weighted")),
        _p("normalize_type", "str", "tree", choices=("tree", "forest")),
        _p("rate_drop", "float", 0.0, **unit),
        _p("one_drop", "int", 0, choices=(0, 1)),
        _p("skip_drop", "float", 0.0, **unit),
        # Container options.
        _p("save_model_on_termination", "bool", False),
        _p("use_dask_gpu_training", "bool", False),
    ]
    return HyperparameterSchema(
        params=params, checks=(_check_num_class, _check_eval_metric, _check_tuning_metric, _check_constraints))


SCHEMA = _schema()
