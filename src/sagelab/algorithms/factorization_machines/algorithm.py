"""SageMaker's Factorization Machines (`factorization-machines` images): a binary classifier or regressor with
pairwise feature interactions, trained with NumPy (no library offers FM; see `factorization_machines.model`).

Training reads recordIO-protobuf with Float32 tensors only, as on AWS (DG `fact-machines`): a CSV channel, or
Float64/Int32 tensors, fail the job with a reason that says so. The `train` channel is required, `test` optional;
features may be dense or sparse. Binary labels are 0 or 1.

Optimisation: mini-batch Adam on the mean loss (logistic for binary_classifier, squared for regressor), one
learning rate and one weight decay (an L2 term added to the gradient, as MXNet's `wd`) per parameter group
(bias, linear, factors); `rescale_grad` multiplies and `clip_gradient` clips each gradient, `eps` is Adam's
epsilon (default 1e-8). Rows are shuffled each epoch with a fixed seed, so training is deterministic. Initial
values follow `*_init_method`: normal(0, sigma), uniform(-scale, scale) (scale defaults to sigma when not given)
or the constant `*_init_value` (default 0).

Log: after each epoch the training metrics as `#quality_metric: host=algo-1, epoch=N, train <metric> ...`,
progress and throughput lines; with a test channel, `#test_score` and `#quality_metric: ... test <metric>` lines
that the declared MetricDefinitions (`test:rmse`, `test:binary_classification_accuracy`,
`test:binary_classification_cross_entropy`, `test:binary_f_beta`) read.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from sagelab.algorithms import quality_metrics as qm
from sagelab.algorithms.base import ChannelSpec, DataError, TrainingContext, split_content_type
from sagelab.algorithms.factorization_machines.hyperparameters import SCHEMA
from sagelab.algorithms.factorization_machines.model import BINARY, REGRESSOR, FMModel, sigmoid
from sagelab.algorithms.factorization_machines.predictor import FMPredictor
from sagelab.algorithms.first_party import io as onep_io
from sagelab.evaluation import metrics as model_quality

SEED = 20180412
_ADAM_BETAS = (0.9, 0.999)


def _metric_definitions() -> tuple:
    return qm.progress_definitions() + (
        qm.definition("test", "rmse", "rmse", "loss", "Minimize"),
        qm.definition("test", "binary_classification_accuracy", "binary_classification_accuracy", "score",
                      "Maximize"),
        qm.definition("test", "binary_classification_cross_entropy", "binary_classification_cross_entropy", "loss",
                      "Minimize"),
        qm.definition("test", "binary_f_beta", r"binary_f_\S+", "score", "Maximize"),
    )


def _initial(hp: dict[str, Any], group: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    method = hp[f"{group}_init_method"]
    if method == "constant":
        return np.full(shape, hp[f"{group}_init_value"] or 0.0)
    sigma = hp[f"{group}_init_sigma"]
    if method == "uniform":
        scale = hp[f"{group}_init_scale"] if hp[f"{group}_init_scale"] is not None else sigma
        return rng.uniform(-scale, scale, size=shape)
    return rng.normal(0.0, sigma, size=shape)


def metrics(predictor_type: str, y: np.ndarray, raw: np.ndarray) -> dict[str, tuple[float, str]]:
    """{name: (value, "loss" | "score")} as FM logs them."""
    if predictor_type == REGRESSOR:
        return {"rmse": (model_quality.regression(y, raw)["rmse"], "loss")}
    p = sigmoid(raw)
    at_threshold = model_quality.threshold_metrics(y == 1, p >= 0.5)
    return {"binary_classification_accuracy": (at_threshold["accuracy"], "score"),
            "binary_classification_cross_entropy": (model_quality.log_loss(y, p), "loss"),
            "binary_f_1.000": (at_threshold["f1"] or 0.0, "score")}


class FactorizationMachines:
    name = "factorization-machines"
    image_repositories = ("factorization-machines",)
    hyperparameters = SCHEMA
    # text/csv is accepted at CreateTrainingJob, as AWS does, and fails the job with the reason.
    channels = (ChannelSpec("train", required=True, content_types=(onep_io.PROTOBUF, onep_io.CSV),
                            default_content_type=onep_io.PROTOBUF),
                ChannelSpec("test", content_types=(onep_io.PROTOBUF, onep_io.CSV),
                            default_content_type=onep_io.PROTOBUF))
    metrics = _metric_definitions()

    def load(self, model_dir: Path) -> FMPredictor:
        return FMPredictor(FMModel.load(Path(model_dir)))

    def train(self, ctx: TrainingContext) -> None:
        hp = self.hyperparameters.validate({k: v for k, v in ctx.hyperparameters.items() if v is not None})
        unknown = sorted(set(ctx.channels) - {c.name for c in self.channels})
        if unknown:
            raise DataError(f"Factorization Machines reads the train and test channels, not {', '.join(unknown)}.")
        if "train" not in ctx.channels:
            raise DataError("Factorization Machines needs a 'train' channel.")
        ptype = hp["predictor_type"]
        x, y = self._read(ctx, "train", hp)
        test = self._read(ctx, "test", hp) if "test" in ctx.channels else None
        ctx.print(f"Factorization Machines: predictor_type={ptype}, {x.shape[0]} training records with "
                  f"{x.shape[1]} features ({'sparse' if sp.issparse(x) else 'dense'}), num_factors="
                  f"{hp['num_factors']}.")
        model = self._fit(ctx, hp, x, y)
        if test is not None:
            raw, _, _ = model.forward(test[0])
            qm.test_scores(ctx, metrics(ptype, test[1], raw))
        model.save(ctx.model_dir)

    def _read(self, ctx: TrainingContext, name: str, hp: dict[str, Any]) -> tuple[Any, np.ndarray]:
        channel = ctx.channels[name]
        kind, _ = split_content_type(channel.content_type or onep_io.PROTOBUF)
        if kind != onep_io.PROTOBUF:
            raise DataError(f"Channel '{name}': content type {channel.content_type!r} is not supported. Factorization "
                            "Machines trains on recordIO-protobuf with Float32 tensors only "
                            "(application/x-recordio-protobuf, as the SageMaker SDK's record_set writes it).")
        _check_float32(channel)
        try:
            x, y = onep_io.read_training_channel(channel, feature_dim=hp["feature_dim"])
        except DataError as exc:
            raise DataError(str(exc).split(" The file looks like text")[0] + (
                " Factorization Machines reads recordIO-protobuf only." if "looks like text" in str(exc) else "")) \
                from None
        assert y is not None
        if y.ndim != 1:
            raise DataError(f"Channel '{name}': each record needs one label value; found {y.shape[1]}.")
        y = y.astype(np.float64)
        if hp["predictor_type"] == BINARY:
            bad = (y != 0) & (y != 1)
            if bad.any():
                row = int(np.flatnonzero(bad)[0]) + 1
                raise DataError(f"Channel '{name}', record {row}: label {float(y[row - 1])!r} is not valid for "
                                "predictor_type binary_classifier; labels must be 0 or 1.")
        x = x.astype(np.float64) if sp.issparse(x) else np.asarray(x, dtype=np.float64)
        return x, y

    def _fit(self, ctx: TrainingContext, hp: dict[str, Any], x: Any, y: np.ndarray) -> FMModel:
        rng = np.random.default_rng(SEED)
        d, k = x.shape[1], hp["num_factors"]
        model = FMModel(hp["predictor_type"], float(_initial(hp, "bias", (1,), rng)[0]),
                        _initial(hp, "linear", (d,), rng), _initial(hp, "factors", (d, k), rng))
        params = {"bias": np.array([model.w0]), "linear": model.w, "factors": model.v}
        moments = {g: (np.zeros_like(p), np.zeros_like(p)) for g, p in params.items()}
        beta1, beta2 = _ADAM_BETAS
        eps = hp["eps"] if hp["eps"] is not None else 1e-8
        n, batch, epochs = x.shape[0], hp["mini_batch_size"], hp["epochs"]
        step = 0
        for epoch in range(epochs):
            started = time.perf_counter()
            order = rng.permutation(n)
            for start in range(0, n, batch):
                rows = order[start:start + batch]
                xb = x[rows]
                raw, xv, x2 = model.forward(xb)
                g = (sigmoid(raw) - y[rows]) if model.predictor_type == BINARY else (raw - y[rows])
                grad_w0, grad_w, grad_v = model.gradients(xb, g, xv, x2)
                grads = {"bias": np.array([grad_w0]), "linear": grad_w, "factors": grad_v}
                step += 1
                for group, param in params.items():
                    grad = grads[group]
                    if hp["rescale_grad"] is not None:
                        grad = grad * hp["rescale_grad"]
                    if hp["clip_gradient"] is not None:
                        grad = np.clip(grad, -abs(hp["clip_gradient"]), abs(hp["clip_gradient"]))
                    grad = grad + hp[f"{group}_wd"] * param
                    m, v = moments[group]
                    m *= beta1
                    m += (1 - beta1) * grad
                    v *= beta2
                    v += (1 - beta2) * grad * grad
                    lr = hp[f"{group}_lr"] * np.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                    param -= lr * m / (np.sqrt(v) + eps)
                model.w0 = float(params["bias"][0])
            if not (np.isfinite(model.w0) and np.isfinite(model.w).all() and np.isfinite(model.v).all()):
                raise DataError(f"Training diverged in epoch {epoch}: the model's weights are no longer finite. Lower "
                                "the learning rates or scale the features.")
            elapsed = time.perf_counter() - started
            raw, _, _ = model.forward(x)
            for name, (value, tag) in metrics(model.predictor_type, y, raw).items():
                qm.quality(ctx, "train", name, value, tag=tag, epoch=epoch)
            qm.progress(ctx, epoch + 1, epochs)
            qm.throughput(ctx, n / max(elapsed, 1e-9))
        model.info = {"epochs": epochs, "mini_batch_size": batch}
        return model


def _check_float32(channel: Any) -> None:
    """FM reads Float32 tensors only: look at the first record of each file."""
    from sagelab.algorithms.data import data_files
    from sagelab.algorithms.first_party.recordio import RecordIOError, decode_record, iter_records

    for path in data_files(channel.files):
        with path.open("rb") as f:
            head = f.read(1 << 20)
        try:
            first = next(iter_records(head), None)
            record = decode_record(first, index=1) if first is not None else None
        except RecordIOError:
            return  # a truncated or foreign file: the reader explains it
        tensor = record.features.get("values") if record is not None else None
        if tensor is not None and tensor.kind != "float32":
            raise DataError(f"Channel '{channel.name}', file {path.name.partition('-')[2] or path.name}: the features "
                            f"are {tensor.kind.capitalize()} tensors; Factorization Machines reads Float32 tensors "
                            "only.")
