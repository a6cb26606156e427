"""SageMaker's LightGBM (JumpStart `lightgbm-classification-model` / `lightgbm-regression-model`), trained and
served with the `lightgbm` library.

Image names: on AWS, `image_uris.retrieve(model_id="lightgbm-classification-model", ...)` returns a generic
PyTorch deep-learning container (`pytorch-training:1.9.0-cpu-py38`) and the algorithm comes from the JumpStart
script tarball. sagelab cannot claim that generic repository, so it selects LightGBM by the JumpStart model ID
used as the repository name: `<registry>/lightgbm-classification-model:<tag>` and
`<registry>/lightgbm-regression-model:<tag>` (any registry, account, region or tag).

Training follows `jumpstart.tabular` for data. The objective comes from the problem (L2 regression, binary
cross-entropy, softmax multiclass); `metric=auto` evaluates rmse, binary_logloss or multi_logloss on the
validation rows. Every round prints LightGBM's native evaluation line into the job log
(`[12]\tvalidation's binary_logloss: 0.0871`), and early stopping prints LightGBM's own summary, so the
MetricDefinition regexes JumpStart users write (`"binary_logloss: ([0-9\\.]+)"`) work unchanged. sagelab
declares `validation:<metric>` definitions over the same lines.

The artifact is LightGBM's text model (`lightgbm-model.txt`, trimmed to the best iteration) beside
`model-info.json`; AWS saves a joblib pickle, which sagelab never writes or reads. Training is deterministic
(`deterministic=true`, column-wise histograms).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.algorithms.jumpstart import tabular
from sagelab.errors import ValidationError

MODEL_FILE = "lightgbm-model.txt"
FORMAT = "sagelab-lightgbm/1"

REGRESSION_METRICS = ("rmse", "l1", "l2", "huber", "fair")
BINARY_METRICS = ("binary_logloss", "binary_error", "auc", "average_precision", "cross_entropy")
MULTICLASS_METRICS = ("multi_logloss", "multi_error", "auc_mu")
METRICS = REGRESSION_METRICS + BINARY_METRICS + MULTICLASS_METRICS
#: The DG marks binary_logloss and multi_logloss "Maximize"; they are losses, so sagelab minimises them.
MAXIMIZE = frozenset({"auc", "average_precision", "auc_mu"})
AUTO_METRIC = {tabular.REGRESSION: "rmse", "binary": "binary_logloss", "multiclass": "multi_logloss"}
_METRICS_FOR = {tabular.REGRESSION: REGRESSION_METRICS, "binary": BINARY_METRICS, "multiclass": MULTICLASS_METRICS}
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


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


def _metric_definitions() -> tuple[MetricDefinition, ...]:
    return tuple(MetricDefinition(f"validation:{m}", rf"validation's {re.escape(m)}: {_NUMBER}",
                                  "Maximize" if m in MAXIMIZE else "Minimize") for m in METRICS)


class _LogWriter:
    """LightGBM's logger interface (info/warning), writing into the job log."""

    def __init__(self, ctx: TrainingContext):
        self.ctx = ctx

    def info(self, message: str) -> None:
        self.ctx.print(str(message).rstrip("\n"))

    warning = info


def _booster_params(hp: dict[str, Any], problem: tabular.Problem, metric: str, threads: int,
                    notes: list[str]) -> dict[str, Any]:
    objective = {tabular.REGRESSION: "regression", "binary": "binary", "multiclass": "multiclass"}[problem.task]
    params: dict[str, Any] = {
        "objective": objective, "metric": metric, "learning_rate": hp["learning_rate"],
        "num_leaves": hp["num_leaves"], "feature_fraction": hp["feature_fraction"],
        "bagging_fraction": hp["bagging_fraction"], "bagging_freq": hp["bagging_freq"], "max_depth": hp["max_depth"],
        "min_data_in_leaf": hp["min_data_in_leaf"], "max_delta_step": hp["max_delta_step"],
        "lambda_l1": hp["lambda_l1"], "lambda_l2": hp["lambda_l2"], "boosting": hp["boosting"],
        "min_gain_to_split": hp["min_gain_to_split"], "tree_learner": hp["tree_learner"],
        "feature_fraction_bynode": hp["feature_fraction_bynode"], "max_bin": hp["max_bin"],
        "tweedie_variance_power": hp["tweedie_variance_power"], "num_threads": threads,
        "verbosity": hp["verbosity"], "deterministic": True, "force_col_wise": True, "seed": 0,
    }
    if problem.task == "multiclass":
        params["num_class"] = len(problem.classes)
    if problem.task == "binary":
        params["scale_pos_weight"] = hp["scale_pos_weight"]
        params["is_unbalance"] = hp["is_unbalance"]
    elif hp["is_unbalance"] or hp["scale_pos_weight"] != 1.0:
        notes.append("is_unbalance and scale_pos_weight apply to binary classification only; ignored.")
    if hp["tree_learner"] != "serial":
        notes.append(f"tree_learner={hp['tree_learner']} runs serially: sagelab trains on one machine.")
        params["tree_learner"] = "serial"
    if hp["use_dask"]:
        notes.append("use_dask=True is ignored: sagelab trains on one node without Dask.")
    return params


class LightGBMAlgorithm:
    """Shared by the classification and regression variants; `task` says which."""

    task = tabular.CLASSIFICATION
    name = "lightgbm-classification"
    image_repositories: tuple[str, ...] = ("lightgbm-classification-model",)
    hyperparameters = _schema()
    channels = tabular.channel_specs()
    metrics = _metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        import lightgbm as lgb

        hp = self.hyperparameters.validate({k: v for k, v in ctx.hyperparameters.items() if v is not None})
        data = tabular.read_training_data(ctx, task=self.task, algorithm="LightGBM")
        problem = data.problem
        metric = AUTO_METRIC[problem.task] if hp["metric"] == "auto" else hp["metric"]
        if metric not in _METRICS_FOR[problem.task]:
            raise DataError(f"Hyperparameter metric={metric} does not apply to {problem.task} problems; use auto or "
                            f"one of {', '.join(_METRICS_FOR[problem.task])}.")
        notes: list[str] = []
        threads = hp["num_threads"] or tabular.default_threads(*data.x_train.shape)
        params = _booster_params(hp, problem, metric, threads, notes)
        for note in notes:
            ctx.print(f"Note: {note}")

        callbacks = [lgb.log_evaluation(period=1)]
        rounds = hp["early_stopping_rounds"]
        if rounds > 0 and hp["boosting"] != "dart":
            callbacks.append(lgb.early_stopping(rounds, verbose=True))
        elif rounds > 0:
            ctx.print("Note: early stopping is not available with boosting=dart; all rounds run.")
        categorical = data.categorical or "auto"
        train_set = lgb.Dataset(data.x_train, label=data.y_train, categorical_feature=categorical,
                                feature_name=[f"feature_{i}" for i in range(data.feature_dim)], free_raw_data=False)
        valid_set = lgb.Dataset(data.x_validation, label=data.y_validation, reference=train_set)
        lgb.register_logger(_LogWriter(ctx))
        try:
            booster = lgb.train(params, train_set, num_boost_round=hp["num_boost_round"], valid_sets=[valid_set],
                                valid_names=["validation"], callbacks=callbacks)
        except lgb.basic.LightGBMError as exc:
            raise DataError(f"LightGBM could not train: {exc}") from None
        finally:
            import logging

            lgb.register_logger(logging.getLogger("lightgbm"))
        ctx.model_dir.mkdir(parents=True, exist_ok=True)
        booster.save_model(str(ctx.model_dir / MODEL_FILE))
        tabular.save_info(ctx.model_dir, format=FORMAT, problem=problem, feature_dim=data.feature_dim,
                          categorical=data.categorical,
                          extra={"metric": metric, "best_iteration": int(booster.best_iteration or 0),
                                 "num_boost_round": hp["num_boost_round"]})

    def load(self, model_dir: Path) -> LightGBMPredictor:
        return LightGBMPredictor(Path(model_dir))


class LightGBMClassification(LightGBMAlgorithm):
    pass


class LightGBMRegression(LightGBMAlgorithm):
    task = tabular.REGRESSION
    name = "lightgbm-regression"
    image_repositories = ("lightgbm-regression-model",)


class LightGBMPredictor(tabular.TabularPredictor):
    def __init__(self, model_dir: Path):
        import lightgbm as lgb

        super().__init__(tabular.load_info(model_dir, FORMAT))
        self.booster = lgb.Booster(model_file=str(tabular.artifact_file(model_dir, MODEL_FILE)))

    def scores(self, x: np.ndarray) -> np.ndarray:
        predictions = np.asarray(self.booster.predict(x, num_threads=self.threads))
        if self.task == "binary":
            return np.column_stack([1.0 - predictions, predictions])
        return predictions
