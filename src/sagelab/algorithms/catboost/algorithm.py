"""SageMaker's CatBoost (JumpStart `catboost-classification-model` / `catboost-regression-model`), trained and
served with the `catboost` library.

Image names: as for LightGBM (see `lightgbm.algorithm`), AWS runs CatBoost as a JumpStart script inside a
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
from sagelab.algorithms.catboost.hyperparameters import SCHEMA, TUNING_METRICS
from sagelab.algorithms.catboost.predictor import FORMAT, MODEL_FILE, CatBoostPredictor, feature_frame
from sagelab.algorithms.hyperparameters import AUTO
from sagelab.algorithms.jumpstart import tabular

LOSS = {tabular.REGRESSION: "RMSE", "binary": "Logloss", "multiclass": "MultiClass"}
AUTO_EVAL_METRIC = {tabular.REGRESSION: "RMSE", "binary": "AUC", "multiclass": "MultiClass"}
MINIMIZE = frozenset({"RMSE", "MAE", "MedianAbsoluteError", "Logloss", "MultiClass"})
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def _metric_definitions() -> tuple[MetricDefinition, ...]:
    return tuple(MetricDefinition(f"validation:{m}", rf"^validation {re.escape(m)} = {_NUMBER}",
                                  "Minimize" if m in MINIMIZE else "Maximize") for m in TUNING_METRICS)


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
            train = Pool(feature_frame(data.x_train, data.categorical), data.y_train, cat_features=data.categorical)
            valid = Pool(feature_frame(data.x_validation, data.categorical), data.y_validation,
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


