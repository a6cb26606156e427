"""CatBoost's hyperparameter schema: the names, defaults and valid values of SageMaker's JumpStart CatBoost
(`catboost-classification-model`, `catboost-regression-model`), and the metric names `eval_metric` accepts.
"""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import AUTO, Hyperparameter, HyperparameterSchema
from sagelab.algorithms.jumpstart import tabular
from sagelab.errors import ValidationError

#: The DG's tuning metrics, and the problems CatBoost computes each for.
TUNING_METRICS = {
    "RMSE": (tabular.REGRESSION,), "MAE": (tabular.REGRESSION,), "MedianAbsoluteError": (tabular.REGRESSION,),
    "R2": (tabular.REGRESSION,), "Logloss": ("binary",), "Precision": ("binary",), "Recall": ("binary",),
    "F1": ("binary",), "AUC": ("binary",), "MultiClass": ("multiclass",), "Accuracy": ("binary", "multiclass"),
    "BalancedAccuracy": ("binary",),
}
#: eval_metric values sagelab accepts (CatBoost's metric names; parameters may follow a colon).
EVAL_METRICS = tuple(TUNING_METRICS) + (
    "MAPE", "SMAPE", "MSLE", "Quantile", "Expectile", "LogLinQuantile", "Lq", "Huber", "Poisson", "Tweedie",
    "RMSEWithUncertainty", "CrossEntropy", "MCC", "BrierScore", "HingeLoss", "HammingLoss", "ZeroOneLoss",
    "Kappa", "WKappa", "LogLikelihoodOfPrediction", "TotalF1", "MultiClassOneVsAll", "PRAUC", "NormalizedGini",
    "BalancedErrorRate", "CtrFactor")


def _p(name: str, kind: str, default: Any = None, **kw: Any) -> Hyperparameter:
    return Hyperparameter(name=name, kind=kind, default=default, **kw)


def _check(values: dict[str, Any]) -> None:
    metric = str(values.get("eval_metric", AUTO))
    base = metric.split(":", 1)[0]
    if metric != AUTO and base not in EVAL_METRICS:
        raise ValidationError(f"Hyperparameter 'eval_metric': expected auto or a CatBoost metric ("
                              f"{', '.join(EVAL_METRICS)}, optionally with parameters such as Quantile:alpha=0.9), "
                              f"got {metric!r}.")
    if values.get("thread_count") == 0:
        raise ValidationError("Hyperparameter 'thread_count': expected -1 (all cores) or a positive integer, got 0.")


def _schema() -> HyperparameterSchema:
    params = [
        _p("iterations", "int", 500, min=1, help="Maximum number of trees."),
        _p("early_stopping_rounds", "int", 5, help="Overfitting detector wait; <= 0: off."),
        _p("eval_metric", "str", AUTO, help="CatBoost metric for validation; auto: RMSE, AUC or MultiClass."),
        _p("learning_rate", "float", 0.009, min=0.0, max=1.0, min_inclusive=False, max_inclusive=False),
        _p("depth", "int", 6, min=1, max=16),
        _p("l2_leaf_reg", "int", 3, min=0),
        _p("random_strength", "float", 1.0, min=0.0, min_inclusive=False),
        _p("max_leaves", "int", 31, min=2, max=64, help="Only with grow_policy=Lossguide."),
        _p("rsm", "float", 1.0, min=0.0, max=1.0, min_inclusive=False),
        _p("sampling_frequency", "str", "PerTreeLevel", choices=("PerTreeLevel", "PerTree")),
        _p("min_data_in_leaf", "int", 1, min=1, help="Only with grow_policy=Lossguide or Depthwise."),
        _p("bagging_temperature", "float", 1.0, min=0.0),
        _p("boosting_type", "str", "Auto", choices=("Auto", "Ordered", "Plain")),
        _p("scale_pos_weight", "float", 1.0, min=0.0, min_inclusive=False, help="Binary classification only."),
        _p("max_bin", "int", AUTO, min=1, max=65535, allow_auto=True),
        _p("grow_policy", "str", "SymmetricTree", choices=("SymmetricTree", "Depthwise", "Lossguide")),
        _p("random_seed", "int", 1, min=0),
        _p("thread_count", "int", -1, min=-1, help="-1: sagelab picks (one thread for small data)."),
        _p("verbose", "int", 1, min=0, help="Print CatBoost's progress every this many iterations; 0: never."),
        *tabular.script_mode_hyperparameters(),
    ]
    return HyperparameterSchema(params=params, checks=(_check,))


SCHEMA = _schema()
