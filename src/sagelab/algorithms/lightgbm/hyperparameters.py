"""LightGBM's hyperparameter schema: the names, defaults and valid values of SageMaker's JumpStart LightGBM
(`lightgbm-classification-model`, `lightgbm-regression-model`), and the metric names `metric` accepts.
"""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.algorithms.jumpstart import tabular
from sagelab.errors import ValidationError

REGRESSION_METRICS = ("rmse", "l1", "l2", "huber", "fair")
BINARY_METRICS = ("binary_logloss", "binary_error", "auc", "average_precision", "cross_entropy")
MULTICLASS_METRICS = ("multi_logloss", "multi_error", "auc_mu")
METRICS = REGRESSION_METRICS + BINARY_METRICS + MULTICLASS_METRICS


def _p(name: str, kind: str, default: Any = None, **kw: Any) -> Hyperparameter:
    return Hyperparameter(name=name, kind=kind, default=default, **kw)


def _check_balance(values: dict[str, Any]) -> None:
    if values.get("is_unbalance") and values.get("scale_pos_weight") != 1.0:
        raise ValidationError("Hyperparameters 'is_unbalance' and 'scale_pos_weight' cannot be used together: set "
                              f"is_unbalance to False or leave scale_pos_weight at 1.0 (got "
                              f"{values['scale_pos_weight']:g}).")


def _schema() -> HyperparameterSchema:
    open_unit = {"min": 0.0, "max": 1.0, "min_inclusive": False, "max_inclusive": False}
    half_open_unit = {"min": 0.0, "max": 1.0, "min_inclusive": False}
    params = [
        _p("num_boost_round", "int", 100, min=1, help="Maximum boosting iterations."),
        _p("early_stopping_rounds", "int", 10, help="Stop when no validation metric improves this long; <= 0: off."),
        _p("metric", "str", "auto", choices=("auto",) + METRICS),
        _p("learning_rate", "float", 0.1, **open_unit),
        _p("num_leaves", "int", 64, min=2, max=131072),
        _p("feature_fraction", "float", 0.9, **open_unit),
        _p("bagging_fraction", "float", 0.9, **half_open_unit),
        _p("bagging_freq", "int", 1, min=0),
        _p("max_depth", "int", 6, help="<= 0: no limit."),
        _p("min_data_in_leaf", "int", 3, min=0),
        _p("max_delta_step", "float", 0.0, help="<= 0: no constraint."),
        _p("lambda_l1", "float", 0.0, min=0.0),
        _p("lambda_l2", "float", 0.0, min=0.0),
        _p("boosting", "str", "gbdt", choices=("gbdt", "rf", "dart", "goss")),
        _p("min_gain_to_split", "float", 0.0, min=0.0),
        _p("scale_pos_weight", "float", 1.0, min=0.0, min_inclusive=False, help="Binary classification only."),
        _p("tree_learner", "str", "serial", choices=("serial", "feature", "data", "voting")),
        _p("feature_fraction_bynode", "float", 1.0, **half_open_unit),
        _p("is_unbalance", "bool", False, help="Binary classification only."),
        _p("max_bin", "int", 255, min=2),
        _p("tweedie_variance_power", "float", 1.5, min=1.0, max=2.0, max_inclusive=False),
        _p("num_threads", "int", 0, min=0, help="0: sagelab picks (one thread for small data)."),
        _p("verbosity", "int", 1, help="LightGBM's own messages in the log: < 0 fatal only, 0 warnings, 1 info."),
        _p("use_dask", "bool", False, help="Distributed training with Dask; sagelab trains on one node."),
        *tabular.script_mode_hyperparameters(),
    ]
    return HyperparameterSchema(params=params, checks=(_check_balance,))


SCHEMA = _schema()
