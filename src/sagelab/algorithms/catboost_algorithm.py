"""SageMaker's CatBoost (JumpStart `catboost-classification-model` / `catboost-regression-model`), trained and
served with the `catboost` library.

Image names: as for LightGBM (see `lightgbm_algorithm`), AWS runs CatBoost as a JumpStart script inside a
generic PyTorch container; sagelab selects it by the JumpStart model ID used as the repository name,
`<registry>/catboost-classification-model:<tag>` or `<registry>/catboost-regression-model:<tag>`.

Training follows `jumpstart.tabular` for data. The loss comes from the problem (RMSE, Logloss, MultiClass);
`eval_metric=auto` watches RMSE, AUC or MultiClass on the validation rows, with CatBoost's overfitting detector
for `early_stopping_rounds` and the best iteration kept. CatBoost's own log goes into the job log, ending in
`bestTest = 0.0871`, the line JumpStart users' MetricDefinitions read (`"bestTest = ([0-9\\.]+)"`). Then
sagelab prints the documented tuning metrics of the final model on the validation rows, computed by CatBoost
(`validation AUC = 0.99`), which the declared `validation:<metric>` definitions read. The DG marks Logloss and
MultiClass "Maximize"; they are losses, so sagelab declares them Minimize.

Hyperparameters CatBoost only accepts in some settings are passed only there: `max_leaves` with
grow_policy=Lossguide, `min_data_in_leaf` with Lossguide or Depthwise, `scale_pos_weight` for binary problems,
`bagging_temperature` (Bayesian bootstrap) only when changed from its default; each skip is noted in the log.

The artifact is CatBoost's native `model.cbm` beside `model-info.json` (no pickle).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.hyperparameters import AUTO, Hyperparameter, HyperparameterSchema
from sagelab.algorithms.jumpstart import tabular
from sagelab.errors import ValidationError

MODEL_FILE = "model.cbm"
FORMAT = "sagelab-catboost/1"

LOSS = {tabular.REGRESSION: "RMSE", "binary": "Logloss", "multiclass": "MultiClass"}
AUTO_EVAL_METRIC = {tabular.REGRESSION: "RMSE", "binary": "AUC", "multiclass": "MultiClass"}
#: The DG's tuning metrics, and the problems CatBoost computes each for.
TUNING_METRICS = {
    "RMSE": (tabular.REGRESSION,), "MAE": (tabular.REGRESSION,), "MedianAbsoluteError": (tabular.REGRESSION,),
    "R2": (tabular.REGRESSION,), "Logloss": ("binary",), "Precision": ("binary",), "Recall": ("binary",),
    "F1": ("binary",), "AUC": ("binary",), "MultiClass": ("multiclass",), "Accuracy": ("binary", "multiclass"),
    "BalancedAccuracy": ("binary",),
}
MINIMIZE = frozenset({"RMSE", "MAE", "MedianAbsoluteError", "Logloss", "MultiClass"})
#: eval_metric values sagelab accepts (CatBoost's metric names; parameters may follow a colon).
EVAL_METRICS = tuple(TUNING_METRICS) + (
    "MAPE", "SMAPE", "MSLE", "Quantile", "Expectile", "LogLinQuantile", "Lq", "Huber", "Poisson", "Tweedie",
    "RMSEWithUncertainty", "CrossEntropy", "MCC", "BrierScore", "HingeLoss", "HammingLoss", "ZeroOneLoss",
    "Kappa", "WKappa", "LogLikelihoodOfPrediction", "TotalF1", "MultiClassOneVsAll", "PRAUC", "NormalizedGini",
    "BalancedErrorRate", "CtrFactor")
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


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


def _metric_definitions() -> tuple[MetricDefinition, ...]:
    return tuple(MetricDefinition(f"validation:{m}", rf"^validation {re.escape(m)} = {_NUMBER}",
                                  "Minimize" if m in MINIMIZE else "Maximize") for m in TUNING_METRICS)


def _frame(x: np.ndarray, categorical: list[int]) -> Any:
    """Features as CatBoost wants them: categorical columns as integers (CatBoost refuses float categories)."""
    import pandas as pd

    frame = pd.DataFrame(x, columns=[f"feature_{i}" for i in range(x.shape[1])])
    for column in categorical:
        frame[f"feature_{column}"] = frame[f"feature_{column}"].fillna(-1).astype(np.int64).astype(str)
    return frame


def _params(hp: dict[str, Any], problem: tabular.Problem, eval_metric: str, threads: int,
            notes: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "loss_function": LOSS[problem.task], "eval_metric": eval_metric, "iterations": hp["iterations"],
        "learning_rate": hp["learning_rate"], "depth": hp["depth"], "l2_leaf_reg": hp["l2_leaf_reg"],
        "random_strength": hp["random_strength"], "rsm": hp["rsm"], "grow_policy": hp["grow_policy"],
        "random_seed": hp["random_seed"], "thread_count": threads, "allow_writing_files": False,
    }
    defaults = {p.name: p.default for p in SCHEMA.params}

    def changed(name: str) -> bool:
        return hp[name] != defaults[name]

    if hp["grow_policy"] == "Lossguide":
        params["max_leaves"] = hp["max_leaves"]
    elif changed("max_leaves"):
        notes.append("max_leaves applies to grow_policy=Lossguide only; ignored.")
    if hp["grow_policy"] in ("Lossguide", "Depthwise"):
        params["min_data_in_leaf"] = hp["min_data_in_leaf"]
    elif changed("min_data_in_leaf"):
        notes.append("min_data_in_leaf applies to grow_policy Lossguide or Depthwise only; ignored.")
    if changed("sampling_frequency"):
        params["sampling_frequency"] = hp["sampling_frequency"]
    if changed("bagging_temperature"):
        params["bootstrap_type"] = "Bayesian"
        params["bagging_temperature"] = hp["bagging_temperature"]
    if hp["boosting_type"] != "Auto":
        params["boosting_type"] = hp["boosting_type"]
    if hp["max_bin"] != AUTO:
        params["max_bin"] = hp["max_bin"]
    if problem.task == "binary":
        params["scale_pos_weight"] = hp["scale_pos_weight"]
    elif changed("scale_pos_weight"):
        notes.append("scale_pos_weight applies to binary classification only; ignored.")
    if hp["early_stopping_rounds"] > 0:
        params["od_type"], params["od_wait"] = "Iter", hp["early_stopping_rounds"]
    return params


class CatBoostAlgorithm:
    """Shared by the classification and regression variants; `task` says which."""

    task = tabular.CLASSIFICATION
    name = "catboost-classification"
    image_repositories: tuple[str, ...] = ("catboost-classification-model",)
    hyperparameters = SCHEMA
    channels = tabular.channel_specs()
    metrics = _metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        from catboost import CatBoost, CatBoostError, Pool

        hp = self.hyperparameters.validate({k: v for k, v in ctx.hyperparameters.items() if v is not None})
        data = tabular.read_training_data(ctx, task=self.task, algorithm="CatBoost")
        problem = data.problem
        eval_metric = AUTO_EVAL_METRIC[problem.task] if hp["eval_metric"] == AUTO else hp["eval_metric"]
        notes: list[str] = []
        threads = hp["thread_count"] if hp["thread_count"] > 0 else tabular.default_threads(*data.x_train.shape)
        params = _params(hp, problem, eval_metric, threads, notes)
        for note in notes:
            ctx.print(f"Note: {note}")
        try:
            train = Pool(_frame(data.x_train, data.categorical), data.y_train, cat_features=data.categorical)
            valid = Pool(_frame(data.x_validation, data.categorical), data.y_validation,
                         cat_features=data.categorical)
            model = CatBoost(params)
            model.fit(train, eval_set=valid, use_best_model=True, verbose=hp["verbose"] or False,
                      log_cout=ctx.log, log_cerr=ctx.log)
        except CatBoostError as exc:
            raise DataError(f"CatBoost could not train: {exc}") from None
        ctx.log.flush()
        self._report(ctx, model, valid, data.y_validation, problem)
        ctx.model_dir.mkdir(parents=True, exist_ok=True)
        model.save_model(str(ctx.model_dir / MODEL_FILE), format="cbm")
        tabular.save_info(ctx.model_dir, format=FORMAT, problem=problem, feature_dim=data.feature_dim,
                          categorical=data.categorical,
                          extra={"loss_function": params["loss_function"], "eval_metric": eval_metric,
                                 "best_iteration": model.get_best_iteration(), "tree_count": model.tree_count_})

    @staticmethod
    def _report(ctx: TrainingContext, model: Any, valid: Any, labels: np.ndarray, problem: tabular.Problem) -> None:
        from catboost.utils import eval_metric

        raw = model.predict(valid, prediction_type="RawFormulaVal")
        ctx.print("Metrics of the final model on the validation data:")
        for name, tasks in TUNING_METRICS.items():
            if problem.task in tasks:
                value = float(eval_metric(labels, raw, name)[0])
                if np.isfinite(value):
                    ctx.print(f"validation {name} = {value!r}")

    def load(self, model_dir: Path) -> CatBoostPredictor:
        return CatBoostPredictor(Path(model_dir))


class CatBoostClassification(CatBoostAlgorithm):
    pass


class CatBoostRegression(CatBoostAlgorithm):
    task = tabular.REGRESSION
    name = "catboost-regression"
    image_repositories = ("catboost-regression-model",)


class CatBoostPredictor(tabular.TabularPredictor):
    def __init__(self, model_dir: Path):
        from catboost import CatBoost

        super().__init__(tabular.load_info(model_dir, FORMAT))
        self.model = CatBoost()
        self.model.load_model(str(tabular.artifact_file(model_dir, MODEL_FILE)), format="cbm")

    def scores(self, x: np.ndarray) -> np.ndarray:
        from catboost import Pool

        pool = Pool(_frame(x, self.categorical), cat_features=self.categorical)
        kind = "RawFormulaVal" if self.task == tabular.REGRESSION else "Probability"
        return np.asarray(self.model.predict(pool, prediction_type=kind, thread_count=self.threads))
