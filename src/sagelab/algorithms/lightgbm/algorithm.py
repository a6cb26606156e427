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

from sagelab.algorithms.base import DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.jumpstart import tabular
from sagelab.algorithms.lightgbm.hyperparameters import (
    BINARY_METRICS,
    METRICS,
    MULTICLASS_METRICS,
    REGRESSION_METRICS,
    SCHEMA,
)
from sagelab.algorithms.lightgbm.predictor import FORMAT, MODEL_FILE, LightGBMPredictor

#: The DG marks binary_logloss and multi_logloss "Maximize"; they are losses, so sagelab minimises them.
MAXIMIZE = frozenset({"auc", "average_precision", "auc_mu"})
AUTO_METRIC = {tabular.REGRESSION: "rmse", "binary": "binary_logloss", "multiclass": "multi_logloss"}
_METRICS_FOR = {tabular.REGRESSION: REGRESSION_METRICS, "binary": BINARY_METRICS, "multiclass": MULTICLASS_METRICS}
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


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
    hyperparameters = SCHEMA
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


