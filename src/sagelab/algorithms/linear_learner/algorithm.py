"""SageMaker's Linear Learner (`linear-learner` images): binary, multiclass and regression linear models.

Training reads CSV (label first, no header) or recordIO-protobuf channels (dense or sparse Float32
`features["values"]`, `label["values"]`), normalises features (and regression labels) with
statistics from the first `num_point_for_scaler` rows, trains `num_models` models side by side by mini-batch
gradient descent (`linear_learner.sgd`), keeps each model's best epoch, picks the best model on the validation
channel (the training channel when there is none), calibrates the binary decision threshold, and logs metrics
in the 1P format (`#quality_metric: host=algo-1, ...`) that the declared MetricDefinitions read.

Choices where SageMaker documents no value ("auto"):
- optimizer adam; learning_rate 0.1 (adam, sgd) or 0.01 (rmsprop); wd 1e-4; l1 0; momentum 0;
  beta_1 0.9, beta_2 0.999; bias_lr_mult 1; bias_wd_mult 0; lr_scheduler step 100, factor 0.99,
  minimum 1e-5 (the values a real job logged for its best model).
- num_models: up to 8 while the work (rows x features x outputs x epochs) stays under ~4e9, else fewer;
  1 under hyperparameter tuning, as SageMaker forces. Model 0 uses the given values; the others draw close
  values (log-uniform) for learning_rate, wd and l1 where those are "auto", and alternate
  positive_example_weight_mult between 1 and "balanced" when it is "auto". Explicit values hold for all models.
- num_calibration_samples: all calibration records. unbias_data/unbias_label: follow use_bias.
- Early stopping watches the objective loss (validation, else training) of each model.
- Sparse protobuf data is trained dense while the matrix stays under DENSE_LIMIT values; beyond that it stays
  sparse and is only scaled, not centred (centring would make it dense), as if unbias_data were false.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from sagelab.algorithms.base import ChannelSpec, DataError, TrainingContext, split_content_type
from sagelab.algorithms.first_party import io as onep_io
from sagelab.algorithms.hyperparameters import AUTO
from sagelab.algorithms.linear_learner import metrics as llm
from sagelab.algorithms.linear_learner.hyperparameters import (
    DEFAULT_LOSS,
    OBJECTIVE_NAMES,
    SCHEMA,
    metric_definitions,
)
from sagelab.algorithms.linear_learner.model import LinearModel
from sagelab.algorithms.linear_learner.predictor import LinearLearnerPredictor
from sagelab.algorithms.linear_learner.sgd import (
    SQUARED_LOSSES,
    EpochReport,
    LossParams,
    ModelGrid,
    SGDSettings,
    loss_and_gradient,
    train_models,
)

HOST = "algo-1"
PROTOBUF = onep_io.PROTOBUF
TRAINING_TYPES = onep_io.TRAINING_CONTENT_TYPES
#: Sparse training data with at most this many cells (rows x features) is trained as a dense matrix.
DENSE_LIMIT = 50_000_000

AUTO_LEARNING_RATE = {"adam": 0.1, "sgd": 0.1, "rmsprop": 0.01}
AUTO_WD = 1e-4
MAX_AUTO_MODELS = 8
AUTO_MODEL_WORK = 4e9


class LinearLearner:
    name = "linear-learner"
    image_repositories = ("linear-learner",)
    hyperparameters = SCHEMA
    channels = (
        # Like every 1P algorithm, a channel without a ContentType is recordIO-protobuf (what the SDK's
        # record_set uploads without naming a content type).
        ChannelSpec("train", required=True, content_types=TRAINING_TYPES, default_content_type=PROTOBUF),
        ChannelSpec("validation", content_types=TRAINING_TYPES, default_content_type=PROTOBUF),
        ChannelSpec("test", content_types=TRAINING_TYPES, default_content_type=PROTOBUF),
    )
    metrics = metric_definitions()

    def load(self, model_dir: Path) -> LinearLearnerPredictor:
        return LinearLearnerPredictor(LinearModel.load(Path(model_dir)))

    def train(self, ctx: TrainingContext) -> None:
        _Job(ctx, resolve_hyperparameters(ctx.hyperparameters)).run()


def resolve_hyperparameters(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate (again: validation is idempotent) so raw strings and already-typed values both work."""
    return SCHEMA.validate({key: value for key, value in raw.items() if value is not None})


class _Job:
    """One training run; split into steps so each stays readable."""

    def __init__(self, ctx: TrainingContext, hp: dict[str, Any]):
        self.ctx = ctx
        self.hp = hp
        self.ptype: str = hp["predictor_type"]
        self.loss: str = DEFAULT_LOSS[self.ptype] if hp["loss"] == AUTO else hp["loss"]
        self.k = int(hp["num_classes"]) if self.ptype == "multiclass_classifier" else 1
        self.objective = OBJECTIVE_NAMES[self.loss]
        self.optimizer = "adam" if hp["optimizer"] == AUTO else hp["optimizer"]

    def log(self, line: str) -> None:
        self.ctx.print(line)

    # -- data ----------------------------------------------------------------------------------------------

    def read(self, name: str, feature_dim: int | None = None) -> tuple[Matrix, np.ndarray] | None:
        channel = self.ctx.channels.get(name)
        if channel is None:
            if name == "train":
                raise DataError("Linear Learner needs a 'train' channel.")
            return None
        kind, params = split_content_type(channel.content_type or "text/csv")
        params = {**params, **{k.lower(): v for k, v in (channel.params or {}).items()}}
        if kind not in TRAINING_TYPES:
            raise DataError(f"Channel '{name}': content type {channel.content_type!r} is not supported; Linear "
                            "Learner reads text/csv (label in the first column, no header) or "
                            f"{PROTOBUF} (Float32 tensors).")
        if params.get("label_size", "1").strip() != "1":
            raise DataError(f"Channel '{name}': Linear Learner needs label_size=1 (the label in the first "
                            f"column), got label_size={params['label_size']}.")
        x, y = onep_io.read_training_channel(channel, label_size=1, feature_dim=feature_dim)
        assert y is not None
        if y.ndim != 1:
            raise DataError(f"Channel '{name}': each record needs one label value; found {y.shape[1]}.")
        self.check_labels(name, y, "record" if kind == PROTOBUF else "row")
        return x, y

    def check_labels(self, name: str, y: np.ndarray, unit: str) -> None:
        if self.ptype == "binary_classifier":
            wrong, allowed = (y != 0) & (y != 1), "0 or 1"
        elif self.ptype == "multiclass_classifier":
            wrong = (y != np.floor(y)) | (y < 0) | (y > self.k - 1)
            allowed = f"an integer from 0 to num_classes-1 = {self.k - 1}"
        else:
            wrong, allowed = ~np.isfinite(y), "a finite number"
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise DataError(f"Channel '{name}', {unit} {row + 1}: label {float(y[row])!r} is not valid for "
                            f"predictor_type {self.ptype}; labels must be {allowed}.")

    # -- the run ---------------------------------------------------------------------------------------------

    def run(self) -> None:
        hp = self.hp
        x, y = self.read("train", None if hp["feature_dim"] == AUTO else hp["feature_dim"])
        d = x.shape[1]
        validation, test = self.read("validation"), self.read("test")
        for name, data in (("validation", validation), ("test", test)):
            if data is not None and data[0].shape[1] != d:
                raise DataError(f"Channel '{name}' records have {data[0].shape[1]} features, but the train "
                                f"channel's have {d}.")
        keep_sparse = sp.issparse(x) and x.shape[0] * d > DENSE_LIMIT
        x = _layout(x, keep_sparse)
        validation = None if validation is None else (_layout(validation[0], keep_sparse), validation[1])
        test = None if test is None else (_layout(test[0], keep_sparse), test[1])
        if keep_sparse:
            self.log(f"The train channel is sparse ({x.nnz} non-zero values in {x.shape[0]} x {d}); training on "
                     "the sparse matrix, scaling features without centring them.")
        self.log(f"Linear Learner: predictor_type={self.ptype}, loss={self.loss}, {x.shape[0]} training records "
                 f"with {d} features" + (f", {validation[0].shape[0]} validation records" if validation else "")
                 + ".")

        mean, scale, label_mean, label_scale = self.scaler(x, y)

        def normalise(features: Matrix) -> Matrix:
            if not (mean.any() or (scale != 1).any()):
                return features
            if sp.issparse(features):
                return sp.csr_matrix(features.multiply((1.0 / scale).astype(np.float32)[None, :]))
            out = features - mean.astype(np.float32)  # float32 throughout: one copy of the channel, not two
            out /= scale.astype(np.float32)
            return out

        def target(labels: np.ndarray) -> np.ndarray:
            labels = labels.astype(np.float64)
            return (labels - label_mean) / label_scale if self.ptype == "regressor" else labels

        xn = normalise(x)
        val_n = None if validation is None else (normalise(validation[0]), target(validation[1]))

        grid, grid_info = self.model_grid(x.shape[0], d, y)
        settings = self.settings(label_scale)
        self.log(f"Training {grid.size} model(s) in parallel for up to {hp['epochs']} epochs "
                 f"(mini_batch_size={hp['mini_batch_size']}, optimizer={self.optimizer}).")
        trained = train_models(xn, target(y), settings, grid,
                               sample_weight=self.class_weights(y), validation=val_n, on_epoch=self.on_epoch)
        if trained.epochs_run < hp["epochs"]:
            self.log(f"Early stopping: no model improved by more than early_stopping_tolerance="
                     f"{hp['early_stopping_tolerance']} for {hp['early_stopping_patience']} epochs; stopped after "
                     f"epoch {trained.epochs_run - 1}.")
            self.log(f"#progress_metric: host={HOST}, completed 100 % of epochs")

        models = [LinearModel(self.ptype, self.loss, trained.weights[i], trained.biases[i], mean, scale,
                              label_mean, label_scale, threshold=self.default_threshold(),
                              num_classes=self.k if self.k > 1 else None)
                  for i in range(grid.size)]
        best = self.select(models, trained.best_loss, validation or (x, y))
        chosen = models[best]
        self.log("Best model found for hyperparameters: " + json.dumps(grid_info[best], sort_keys=True))
        for name, data in (("validation", validation), ("test", test)):
            if data is not None:
                self.report(name, chosen, *data)
        chosen.info = {"hyperparameters": _jsonable_hp(hp), "selected_model": grid_info[best],
                       "num_models": grid.size, "epochs_run": trained.epochs_run,
                       "objective": self.objective}
        chosen.save(self.ctx.model_dir)

    def scaler(self, x: Matrix, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        hp = self.hp
        head = x[: hp["num_point_for_scaler"]].astype(np.float64)
        unbias = (hp["use_bias"] if hp["unbias_data"] == AUTO else hp["unbias_data"]) and not sp.issparse(x)
        mean = head.mean(axis=0) if unbias else np.zeros(x.shape[1])
        scale = np.ones(x.shape[1])
        if hp["normalize_data"] in (True, AUTO):
            if sp.issparse(head):
                column_mean = np.asarray(head.mean(axis=0)).ravel()
                scale = np.sqrt(np.maximum(np.asarray(head.multiply(head).mean(axis=0)).ravel() - column_mean ** 2,
                                           0.0))
            else:
                scale = head.std(axis=0)
            scale[~(scale > 1e-12)] = 1.0
        label_mean, label_scale = 0.0, 1.0
        if self.ptype == "regressor":
            labels = y[: hp["num_point_for_scaler"]].astype(np.float64)
            if (hp["use_bias"] if hp["unbias_label"] == AUTO else hp["unbias_label"]):
                label_mean = float(labels.mean())
            if hp["normalize_label"] in (True, AUTO):
                std = float(labels.std())
                label_scale = std if std > 1e-12 else 1.0
        return mean, scale, label_mean, label_scale

    def class_weights(self, y: np.ndarray) -> np.ndarray | None:
        if self.ptype != "multiclass_classifier" or not self.hp["balance_multiclass_weights"]:
            return None
        counts = np.bincount(y.astype(np.int64), minlength=self.k).astype(np.float64)
        present = counts > 0
        weights = np.zeros(self.k)
        weights[present] = len(y) / (present.sum() * counts[present])
        return weights[y.astype(np.int64)]

    def settings(self, label_scale: float) -> SGDSettings:
        hp = self.hp

        def pick(name: str, auto: Any) -> Any:
            return auto if hp[name] == AUTO else hp[name]

        regression = self.ptype == "regressor"
        params = LossParams(margin=hp["margin"], quantile=hp["quantile"],
                            epsilon=hp["loss_insensitivity"] / label_scale if regression else hp["loss_insensitivity"],
                            huber_delta=hp["huber_delta"] / label_scale if regression else hp["huber_delta"])
        report = 1.0
        if regression:
            report = label_scale ** 2 if self.loss in SQUARED_LOSSES else label_scale
        return SGDSettings(
            loss=self.loss, num_outputs=self.k, epochs=hp["epochs"], mini_batch_size=hp["mini_batch_size"],
            optimizer=self.optimizer, momentum=pick("momentum", 0.0), beta_1=pick("beta_1", 0.9),
            beta_2=pick("beta_2", 0.999), bias_lr_mult=pick("bias_lr_mult", 1.0),
            bias_wd_mult=pick("bias_wd_mult", 0.0), use_bias=hp["use_bias"], init_method=hp["init_method"],
            init_scale=hp["init_scale"], init_sigma=hp["init_sigma"], init_bias=hp["init_bias"],
            use_lr_scheduler=hp["use_lr_scheduler"], lr_scheduler_step=pick("lr_scheduler_step", 100),
            lr_scheduler_factor=pick("lr_scheduler_factor", 0.99),
            lr_scheduler_minimum_lr=pick("lr_scheduler_minimum_lr", 1e-5),
            early_stopping_patience=hp["early_stopping_patience"],
            early_stopping_tolerance=hp["early_stopping_tolerance"], loss_params=params, report_scale=report)

    def num_models(self, rows: int, features: int) -> int:
        hp = self.hp
        if "_tuning_objective_metric" in hp:
            return 1  # SageMaker turns the internal sweep off under automatic model tuning
        if hp["num_models"] != AUTO:
            return int(hp["num_models"])
        work = rows * features * self.k * hp["epochs"]
        return int(min(MAX_AUTO_MODELS, max(1, AUTO_MODEL_WORK // max(work, 1))))

    def model_grid(self, rows: int, features: int, y: np.ndarray) -> tuple[ModelGrid, list[dict[str, Any]]]:
        """Model 0 takes the given values; the others draw close values for what is left "auto"."""
        hp = self.hp
        count = self.num_models(rows, features)
        rng = np.random.default_rng(20170724)
        base_lr = AUTO_LEARNING_RATE[self.optimizer] if hp["learning_rate"] == AUTO else hp["learning_rate"]
        positives = float(np.sum(y == 1))
        balanced = (len(y) - positives) / positives if positives else 1.0
        pos = hp["positive_example_weight_mult"]
        lrs, wds, l1s, weights, info = [], [], [], [], []
        for i in range(count):
            lr = base_lr if i == 0 or hp["learning_rate"] != AUTO else base_lr * 10 ** rng.uniform(-1.0, 0.5)
            wd = (AUTO_WD if i == 0 else 10 ** rng.uniform(-6, -2)) if hp["wd"] == AUTO else hp["wd"]
            l1 = (0.0 if i % 2 == 0 else 10 ** rng.uniform(-6, -3)) if hp["l1"] == AUTO else hp["l1"]
            if pos == AUTO:
                weight = balanced if i % 2 == 1 else 1.0
            else:
                weight = balanced if pos == "balanced" else float(pos)
            lrs.append(lr)
            wds.append(wd)
            l1s.append(l1)
            weights.append(weight)
            entry = {"optimizer": self.optimizer, "learning_rate": lr, "wd": wd, "l1": l1}
            if self.ptype == "binary_classifier":
                entry["positive_example_weight_mult"] = weight
            info.append(entry)
        grid = ModelGrid(np.array(lrs), np.array(wds), np.array(l1s), np.array(weights))
        return grid, info

    def default_threshold(self) -> float:
        return 0.5 if self.loss == "logistic" else 0.0

    # -- logging ---------------------------------------------------------------------------------------------

    def on_epoch(self, report: EpochReport) -> None:
        epoch = report.epoch
        for channel, losses in (("train", report.train_loss), ("validation", report.validation_loss)):
            if losses is None:
                continue
            finite = losses[np.isfinite(losses)]
            if finite.size:
                self.log(f"#quality_metric: host={HOST}, epoch={epoch}, {channel} {self.objective} "
                         f"<loss>={float(finite.min())!r}")
        percent = int(round(100 * (epoch + 1) / self.hp["epochs"]))
        self.log(f"#progress_metric: host={HOST}, completed {percent} % of epochs")
        self.log(f"#throughput_metric: host={HOST}, train throughput={report.records_per_second:.1f} records/second")

    def report(self, channel: str, model: LinearModel, x: np.ndarray, y: np.ndarray) -> None:
        values = {self.objective: self.objective_loss(model, x, y)}
        scores, _ = model.predict(x)
        beta = self.hp["f_beta"]
        if self.ptype == "binary_classifier":
            values.update(llm.binary_metrics(y, scores, model.threshold, beta))
        elif self.ptype == "multiclass_classifier":
            values.update(llm.multiclass_metrics(y, scores, self.hp["accuracy_top_k"], beta))
        else:
            values.update(llm.regression_metrics(y, scores))
        for name, value in values.items():
            self.log(f"#{channel}_score ({HOST}) : ({name!r}, {value!r})")
        for name, value in values.items():
            tag = "loss" if name == self.objective or self.ptype == "regressor" else "score"
            self.log(f"#quality_metric: host={HOST}, {channel} {name} <{tag}>={value!r}")

    # -- model selection ----------------------------------------------------------------------------------------

    def objective_loss(self, model: LinearModel, x: np.ndarray, y: np.ndarray) -> float:
        hp = self.hp
        params = LossParams(margin=hp["margin"], quantile=hp["quantile"], epsilon=hp["loss_insensitivity"],
                            huber_delta=hp["huber_delta"])
        with np.errstate(over="ignore", invalid="ignore"):
            z = model.outputs(x)
            values, _ = loss_and_gradient(self.loss, z[:, None, :], y.astype(np.float64), params)
        return float(values.mean())

    def select(self, models: list[LinearModel], best_loss: np.ndarray, data: tuple[np.ndarray, np.ndarray]) -> int:
        """Index of the best model on `data`; sets each binary model's calibrated threshold."""
        x, y = data
        hp = self.hp
        usable = [i for i, m in enumerate(models) if np.isfinite(best_loss[i]) and np.isfinite(m.weights).all()]
        if not usable:
            raise DataError("Training diverged: the loss of every model became infinite or NaN. Lower "
                            "learning_rate, or normalise the data (normalize_data=true).")
        criterion = hp["binary_classifier_model_selection_criteria"]
        calibrate = self.ptype == "binary_classifier" and criterion not in llm.LOSS_CRITERIA
        if calibrate:
            samples = hp["num_calibration_samples"]
            if samples != AUTO and samples < len(y):
                pick = np.sort(np.random.default_rng(0).choice(len(y), size=samples, replace=False))
                x, y = x[pick], y[pick]
            where = "validation" if self.ctx.channels.get("validation") else "training"
            self.log(f"Calibrating the decision threshold for {criterion} on {len(y)} {where} records.")
        values = np.full(len(models), -np.inf)
        for i in usable:
            if calibrate:
                scores, _ = models[i].predict(x)
                result = llm.calibrate(y, scores, criterion, beta=hp["f_beta"], target_recall=hp["target_recall"],
                                       target_precision=hp["target_precision"], default=self.default_threshold())
                models[i].threshold = result.threshold
                values[i] = result.value
            else:
                loss = self.objective_loss(models[i], x, y)
                values[i] = -loss if math.isfinite(loss) else -np.inf
        best = max(usable, key=lambda i: values[i])  # ties go to the lower index: model 0 has the given values
        if calibrate and criterion == "recall_at_target_precision" and values[best] < 0:
            self.log(f"No threshold reaches target_precision={hp['target_precision']}; using the threshold with the "
                     "highest precision.")
        return best


Matrix = np.ndarray | sp.csr_matrix


def _layout(x: Matrix, keep_sparse: bool) -> Matrix:
    """float32, CSR when training stays sparse, else dense."""
    if keep_sparse:
        return sp.csr_matrix(x, dtype=np.float32)
    if sp.issparse(x):
        return x.toarray().astype(np.float32, copy=False)
    return x


def _jsonable_hp(hp: dict[str, Any]) -> dict[str, Any]:
    return {key: value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
            for key, value in hp.items()}
