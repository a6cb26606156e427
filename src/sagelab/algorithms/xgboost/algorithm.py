"""SageMaker's built-in XGBoost (`sagemaker-xgboost` images), trained and served with the `xgboost` library.

Training reads the `train` (and optional `validation`) channel as LibSVM (the default when a channel has no
ContentType), CSV (label in column 0, instance weight in column 1 when `csv_weights=1`) or Parquet (label in
column 0), trains with `xgboost.train` and writes `xgboost-model` (XGBoost's JSON format, no pickle). Every
round prints xgboost's native line, `[12]\ttrain-rmse:1.19000\tvalidation-rmse:2.31000`, which the declared
metric regexes read back, as SageMaker reads them from CloudWatch.

Metrics xgboost lacks (accuracy, f1, mse, r2, ...) are computed with scikit-learn, as the container's
`custom_metrics.py` does. Class predictions come from the objective: argmax for `multi:softprob`, the class
for `multi:softmax` and `binary:hinge`, p > 0.5 for logistic objectives, margin > 0 for `binary:logitraw`,
and rounding otherwise. `f1` is macro-averaged (as in the container), `f1_binary` is the positive-class F1,
`precision`/`recall` are positive-class for two classes and macro-averaged for more.

Only hyperparameters set to something other than their default reach xgboost (plus `objective`); keys that
XGBoost 3.x has dropped (`predictor`, `single_precision_histogram`, ...) are noted in the log and ignored;
`gpu_hist` becomes `hist`, since sagelab trains on CPU. Without `nthread`, training uses every core, except
on data so small that threads only add overhead (one thread per 250k cells). With InstanceCount > 1 the
hosts train one model together (`sagelab.algorithms.xgboost.distributed`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms import data as data_io
from sagelab.algorithms.base import (
    Channel,
    ChannelSpec,
    DataError,
    MetricDefinition,
    TrainingContext,
    split_content_type,
)
from sagelab.algorithms.hyperparameters import HyperparameterSchema
from sagelab.algorithms.xgboost.hyperparameters import (
    ALL_METRICS,
    CUSTOM_METRICS,
    MAXIMIZE_METRICS,
    SCHEMA,
    metric_base,
    split_metrics,
)
from sagelab.algorithms.xgboost.predictor import (
    LIBSVM_BASE_ATTR,
    MODEL_FILE,
    XGBoostPredictor,
    load_booster,
    xgboost_message,
)

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"

TRAINING_CONTENT_TYPES = ("text/libsvm", "text/x-libsvm", "libsvm", "text/csv", "csv",
                          "application/x-parquet", "parquet")
_TRAINING_FORMATS = {"": "libsvm", "text/libsvm": "libsvm", "text/x-libsvm": "libsvm", "libsvm": "libsvm",
                     "text/csv": "csv", "csv": "csv", "application/x-parquet": "parquet", "parquet": "parquet"}
_RECORDIO = ("application/x-recordio-protobuf", "recordio-protobuf")

#: Hyperparameters that configure the container, not the booster.
_CONTAINER_ONLY = frozenset({"num_round", "early_stopping_rounds", "csv_weights", "save_model_on_termination",
                             "use_dask_gpu_training", "eval_metric", "learning_rate"})
#: Hyperparameters XGBoost 3.x no longer has: accepted (old jobs send them), noted and ignored.
_OBSOLETE = {
    "predictor": "XGBoost 3 picks the predictor itself",
    "single_precision_histogram": "XGBoost 3 always uses double-precision histograms",
    "deterministic_histogram": "XGBoost 3 histograms are always deterministic",
    "dsplit": "distributed splitting is not used in a single-node job",
    "lambda_bias": "XGBoost 3 has no separate bias penalty",
    "sketch_eps": "XGBoost 3 sizes sketches with max_bin",
}
_DART_ONLY = frozenset({"sample_type", "normalize_type", "rate_drop", "one_drop", "skip_drop"})
_CPU_UPDATER = {"grow_gpu_hist": "grow_quantile_histmaker", "grow_gpu_approx": "grow_histmaker"}


def _metric_definitions() -> tuple[MetricDefinition, ...]:
    return tuple(
        MetricDefinition(
            name=f"{channel}:{metric}",
            regex=rf".*\[[0-9]+\].*\t{channel}-{re.escape(metric)}:{_NUMBER}.*",
            direction="Maximize" if metric in MAXIMIZE_METRICS else "Minimize")
        for channel in ("train", "validation") for metric in ALL_METRICS)


# ---------------------------------------------------------------------------------------------- data


@dataclasses.dataclass
class _Data:
    channel: str
    kind: str  # csv | libsvm | parquet
    features: Any  # np.ndarray (float32) or scipy.sparse.csr_matrix
    labels: np.ndarray
    weights: np.ndarray | None = None
    qid: np.ndarray | None = None


def _channel_kind(channel: Channel) -> str:
    content_type = channel.content_type or ""
    if ";" in content_type:
        content_type, _ = split_content_type(content_type)
    content_type = content_type.strip().lower()
    if content_type in _RECORDIO:
        raise DataError(f"Channel {channel.name!r}: ContentType {content_type!r} (recordIO-protobuf) is not "
                        f"supported by sagelab's XGBoost yet. Use one of: {', '.join(TRAINING_CONTENT_TYPES)}.")
    kind = _TRAINING_FORMATS.get(content_type)
    if kind is None:
        raise DataError(f"Channel {channel.name!r}: ContentType {channel.content_type!r} is not supported by "
                        f"XGBoost. Supported: {', '.join(TRAINING_CONTENT_TYPES)} (LibSVM when none is given).")
    return kind


def _read_channel(channel: Channel, *, csv_weights: bool, want_qid: bool) -> _Data:
    kind = _channel_kind(channel)
    weights = qid = None
    try:
        if kind == "csv":
            label_size = channel.params.get("label_size", "1").strip()
            if label_size != "1":
                raise DataError(f"Channel {channel.name!r}: ContentType 'text/csv;label_size={label_size}' is not "
                                f"accepted: XGBoost needs label_size=1 (the label in the first column).")
            features, labels = data_io.read_csv(channel.files, label_size=1)
            if csv_weights:
                if features.shape[1] < 2:
                    raise DataError(f"Channel {channel.name!r}: csv_weights=1 needs a label column, a weight "
                                    f"column and at least one feature; found {features.shape[1] + 1} column(s).")
                weights = features[:, 0].copy()
                features = features[:, 1:]
        elif kind == "libsvm":
            features, labels, weights = data_io.read_libsvm(channel.files)
            if want_qid:
                qid = _libsvm_query_ids(channel.files, len(labels))
        else:
            features, labels = data_io.read_parquet(channel.files)
    except DataError as exc:
        message = str(exc)
        raise DataError(message if message.startswith("Channel ") else f"Channel {channel.name!r}: {message}") \
            from None
    return _Data(channel.name, kind, features, labels, weights, qid)


def _libsvm_query_ids(files: Iterable[Path], rows: int) -> np.ndarray | None:
    """The `qid:<n>` of each LibSVM row (rows selected exactly as `data.read_libsvm` selects them)."""
    found: list[int | None] = []
    for path in data_io.data_files(list(files)):
        with path.open("r", encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                stripped = line.split("#", 1)[0].strip()
                if not stripped:
                    continue
                parts = stripped.split(None, 2)
                token = parts[1] if len(parts) > 1 else ""
                if token.startswith("qid:"):
                    try:
                        found.append(int(token[4:]))
                    except ValueError:
                        raise DataError(f"LibSVM file {path.name}, line {number}: {token!r} is not a valid query "
                                        f"id (qid:<integer>).") from None
                else:
                    found.append(None)
    if len(found) != rows or all(q is None for q in found):
        return None
    if any(q is None for q in found):
        row = found.index(None) + 1
        raise DataError(f"LibSVM data mixes rows with and without qid: row {row} has no qid:<n>.")
    return np.asarray(found, dtype=np.int64)


def _align_libsvm(datasets: list[_Data]) -> str | None:
    """LibSVM files are 1-based by convention: if no row uses index 0, shift every LibSVM channel down by one."""
    sparse = [d for d in datasets if d.kind == "libsvm"]
    if not sparse:
        return None
    one_based = all(d.features.nnz == 0 or not (d.features.indices == 0).any() for d in sparse)
    if one_based:
        for d in sparse:
            d.features = d.features[:, 1:] if d.features.shape[1] > 0 else d.features
    return "1" if one_based else "0"


def _align_widths(train: _Data, validation: _Data | None) -> None:
    if validation is None:
        return
    a, b = train.features.shape[1], validation.features.shape[1]
    if a == b:
        return
    if train.kind == "libsvm" or validation.kind == "libsvm":
        width = max(a, b)
        for d in (train, validation):
            if d.features.shape[1] != width:
                import scipy.sparse as sp

                matrix = d.features if sp.issparse(d.features) else sp.csr_matrix(d.features)
                matrix = matrix.tocsr(copy=True)
                matrix.resize((matrix.shape[0], width))
                d.features = matrix
        return
    raise DataError(f"The validation channel has {b} feature column(s) but the train channel has {a}; both "
                    f"must have the same columns (label first).")


def _label_rule(objective: str, num_class: int | None) -> tuple[Any, str] | None:
    """(test of valid labels, description) for the objective, or None when any finite label is fine."""
    if objective in ("binary:logistic", "binary:logitraw", "reg:logistic"):
        return (lambda y: (y >= 0) & (y <= 1)), "between 0 and 1"
    if objective == "binary:hinge":
        return (lambda y: (y == 0) | (y == 1)), "0 or 1"
    if objective.startswith("multi:"):
        k = int(num_class or 0)
        return (lambda y: (y >= 0) & (y < k) & (y == np.floor(y))), f"an integer from 0 to {k - 1} (num_class={k})"
    if objective in ("count:poisson", "reg:tweedie"):
        return (lambda y: y >= 0), "non-negative"
    if objective == "reg:gamma":
        return (lambda y: y > 0), "positive"
    if objective == "reg:squaredlogerror":
        return (lambda y: y > -1), "greater than -1"
    if objective == "survival:aft":
        return (lambda y: y >= 0), "non-negative (survival times)"
    return None


def _check_labels(d: _Data, objective: str, num_class: int | None) -> None:
    y = d.labels
    bad = ~np.isfinite(y)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        raise DataError(f"Channel {d.channel!r}: the label in row {row} is {_fmt(y[row - 1])}; labels must be "
                        f"numbers.")
    rule = _label_rule(objective, num_class)
    if rule is not None:
        test, wanted = rule
        bad = ~test(y)
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"Channel {d.channel!r}: objective {objective!r} needs labels {wanted}, but the label "
                            f"{_fmt(y[row - 1])} in row {row} is outside that range.")
    if d.weights is not None:
        bad = ~np.isfinite(d.weights) | (d.weights < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"Channel {d.channel!r}: the instance weight {_fmt(d.weights[row - 1])} in row {row} is "
                            f"not a non-negative number.")


def _fmt(value: Any) -> str:
    return format(float(value), "g")


# ---------------------------------------------------------------------------------------------- training


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


#: Below this many cells per thread, OpenMP's start-up and barriers cost more than the extra thread saves
#: (on a busy 2-core machine, 20 rounds on 450 rows take 1-6 s with 2 threads and 20 ms with one).
_CELLS_PER_THREAD = 250_000


def _default_threads(rows: int, columns: int) -> int:
    return max(1, min(_cpu_count(), (rows * max(columns, 1)) // _CELLS_PER_THREAD))


def _explicit(given: dict[str, Any], values: dict[str, Any], schema: HyperparameterSchema) -> set[str]:
    """Hyperparameters set to something other than their default: only these reach xgboost.

    Training receives the validated values (defaults filled in), so "set" can only mean "differs from the
    default". Where XGBoost 3's own default differs from SageMaker's documented one (base_score, updater),
    the schema's default is None, so a value the user gives is always passed on.
    """
    defaults = {p.name: p.default for p in schema.params}
    return {k for k in given if not k.startswith("_") and values.get(k) is not None
            and values.get(k) != defaults.get(k)}


@dataclasses.dataclass
class _Plan:
    params: dict[str, Any]
    custom_metrics: list[str]
    #: xgboost's name for a metric -> the name printed in the log (tweedie-nloglik@1.5 -> tweedie-nloglik).
    display: dict[str, str]
    early_stopping_metric: str | None
    notes: list[str]


def _plan(hp: dict[str, Any], explicit: set[str]) -> _Plan:
    objective = "reg:squarederror" if hp["objective"] == "reg:linear" else hp["objective"]
    params: dict[str, Any] = {"objective": objective}
    if hp.get("nthread"):
        params["nthread"] = hp["nthread"]
    notes: list[str] = []
    for name in sorted(explicit):
        value = hp.get(name)
        if name in _CONTAINER_ONLY or name in ("objective", "nthread") or value is None:
            continue
        if name in _OBSOLETE:
            notes.append(f"hyperparameter {name}={_show(value)} is ignored: {_OBSOLETE[name]}.")
            continue
        if name in _DART_ONLY and hp["booster"] != "dart":
            notes.append(f"hyperparameter {name}={_show(value)} is ignored: it applies to booster=dart only.")
            continue
        if name == "tree_method" and value == "gpu_hist":
            notes.append("tree_method=gpu_hist runs as tree_method=hist: sagelab trains on CPU.")
            value = "hist"
        elif name == "updater":
            value = ",".join(_CPU_UPDATER.get(u, u) for u in split_metrics(value))
        elif name == "monotone_constraints":
            value = "(" + ",".join(str(v) for v in value) + ")"
        elif name == "interaction_constraints":
            value = json.dumps(value)
        elif isinstance(value, bool):
            value = int(value)
        params[name] = value
    if "learning_rate" in explicit and hp.get("learning_rate") is not None:
        params["eta"] = hp["learning_rate"]
    if not objective.startswith("multi:"):
        params.pop("num_class", None)
    if hp.get("use_dask_gpu_training"):
        notes.append("use_dask_gpu_training=true is ignored: sagelab trains on one node, on CPU.")
    for key in ("_kfold", "_num_cv_round"):
        if hp.get(key) is not None:
            notes.append(f"hyperparameter {key} is accepted but k-fold training is not implemented; one model "
                         f"is trained on the whole train channel.")

    requested = split_metrics(hp["eval_metric"]) if hp.get("eval_metric") else []
    tuning = hp.get("_tuning_objective_metric")
    tuning_metrics = split_metrics(str(tuning).partition(":")[2]) if tuning else []
    metrics = list(dict.fromkeys(requested + tuning_metrics))
    rho = hp.get("tweedie_variance_power") or 1.5
    native: list[str] = []
    custom: list[str] = []
    display: dict[str, str] = {}
    for name in metrics:
        if name in CUSTOM_METRICS:
            custom.append(name)
        elif name == "tweedie-nloglik":
            internal = f"tweedie-nloglik@{_show(rho)}"
            native.append(internal)
            display[internal] = name
        else:
            native.append(name)
    if native:
        params["eval_metric"] = native
    stop_metric = (tuning_metrics or requested or [None])[-1]
    if stop_metric == "tweedie-nloglik":
        stop_metric = f"tweedie-nloglik@{_show(rho)}"
    return _Plan(params, custom, display, stop_metric, notes)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def _predicted_classes(predt: np.ndarray, objective: str) -> np.ndarray:
    if predt.ndim == 2:
        return predt.argmax(axis=1).astype(np.float32)
    if objective in ("binary:logistic", "reg:logistic"):
        return (predt > 0.5).astype(np.float32)
    if objective == "binary:logitraw":
        return (predt > 0).astype(np.float32)
    if objective in ("multi:softmax", "binary:hinge"):
        return predt.astype(np.float32)
    return np.round(predt).astype(np.float32)


def _custom_metric(names: list[str], objective: str):
    """An xgboost `custom_metric`: every requested scikit-learn metric, for one evaluation set."""
    from sklearn import metrics as skm

    def evaluate(predt: np.ndarray, dmatrix: Any) -> list[tuple[str, float]]:
        labels = dmatrix.get_label()
        classes = None
        results = []
        for name in names:
            try:
                if name in ("mse", "r2"):
                    scores = predt if predt.ndim == 1 else predt.argmax(axis=1)
                    value = (skm.mean_squared_error if name == "mse" else skm.r2_score)(labels, scores)
                else:
                    if classes is None:
                        classes = _predicted_classes(predt, objective)
                    value = _classification_metric(skm, name, labels, classes)
            except ValueError as exc:
                raise DataError(f"Metric {name!r} cannot be computed for objective {objective!r} with these "
                                f"labels: {exc}") from None
            results.append((name, float(value)))
        return results

    return evaluate


def _classification_metric(skm: Any, name: str, labels: np.ndarray, classes: np.ndarray) -> float:
    if name == "accuracy":
        return skm.accuracy_score(labels, classes)
    if name == "balanced_accuracy":
        return skm.balanced_accuracy_score(labels, classes)
    two_classes = np.union1d(labels, classes).size <= 2
    average = {"f1": "macro", "f1_macro": "macro", "f1_binary": "binary",
               "precision": "binary" if two_classes else "macro", "recall": "binary" if two_classes else "macro",
               "precision_macro": "macro", "recall_macro": "macro",
               "precision_micro": "micro", "recall_micro": "micro"}[name]
    kwargs: dict[str, Any] = {"average": average, "zero_division": 0}
    if average == "binary":
        kwargs["pos_label"] = 1.0
    function = {"f1": skm.f1_score, "f1_macro": skm.f1_score, "f1_binary": skm.f1_score,
                "precision": skm.precision_score, "precision_macro": skm.precision_score,
                "precision_micro": skm.precision_score, "recall": skm.recall_score,
                "recall_macro": skm.recall_score, "recall_micro": skm.recall_score}[name]
    return function(labels, classes, **kwargs)


def _log_monitor(ctx: TrainingContext, display: dict[str, str]):
    """A callback printing xgboost's native evaluation line for every round into the job log."""
    import xgboost as xgb

    class LogMonitor(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            if not evals_log:
                return False
            parts = [f"[{epoch}]"]
            for data, metrics in evals_log.items():
                for name, history in metrics.items():
                    score = history[-1]
                    if isinstance(score, tuple):
                        score = score[0]
                    parts.append(f"\t{data}-{display.get(name, name)}:{score:.5f}")
            ctx.print("".join(parts))
            return False

    return LogMonitor()


def _dmatrix(d: _Data, objective: str, nthread: int) -> Any:
    import xgboost as xgb

    order = None
    if d.qid is not None and (np.diff(d.qid) < 0).any():
        order = np.argsort(d.qid, kind="stable")
    features, labels, weights, qid = d.features, d.labels, d.weights, d.qid
    if order is not None:
        features, labels = features[order], labels[order]
        weights = weights[order] if weights is not None else None
        qid = qid[order]
    matrix = xgb.DMatrix(features, label=labels, weight=weights, qid=qid, nthread=nthread, missing=np.nan)
    if objective == "survival:aft":
        matrix.set_float_info("label_lower_bound", labels)
        matrix.set_float_info("label_upper_bound", labels)
    return matrix


# ---------------------------------------------------------------------------------------------- algorithm


class XGBoostAlgorithm:
    name = "xgboost"
    image_repositories = ("sagemaker-xgboost", "xgboost")
    hyperparameters = SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=TRAINING_CONTENT_TYPES,
                    default_content_type="text/libsvm"),
        ChannelSpec("validation", content_types=TRAINING_CONTENT_TYPES, default_content_type="text/libsvm"),
    )
    metrics = _metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        count = int((ctx.request.get("ResourceConfig") or {}).get("InstanceCount") or 1)
        if count > 1:
            from sagelab.algorithms.xgboost.distributed import train_on_hosts

            train_on_hosts(ctx, count)
        else:
            self.train_here(ctx)

    def train_here(self, ctx: TrainingContext) -> None:
        """Train in this process: the whole job, or one worker's part of a distributed one."""
        import xgboost as xgb

        given = {k: v for k, v in ctx.hyperparameters.items() if v is not None}
        hp = self.hyperparameters.validate(given)
        plan = _plan(hp, _explicit(given, hp, self.hyperparameters))
        for note in plan.notes:
            ctx.print(f"Note: {note}")
        objective = plan.params["objective"]

        unknown = sorted(set(ctx.channels) - {c.name for c in self.channels})
        if unknown:
            raise DataError(f"XGBoost does not accept the channel(s) {', '.join(unknown)}; it reads train and "
                            f"validation.")
        if "train" not in ctx.channels:
            raise DataError("XGBoost needs a 'train' channel.")
        want_qid = objective.startswith("rank:")
        csv_weights = bool(hp["csv_weights"])
        train = _read_channel(ctx.channels["train"], csv_weights=csv_weights, want_qid=want_qid)
        validation = (_read_channel(ctx.channels["validation"], csv_weights=csv_weights, want_qid=want_qid)
                      if "validation" in ctx.channels else None)
        datasets = [train] + ([validation] if validation is not None else [])
        libsvm_base = _align_libsvm(datasets)
        _align_widths(train, validation)
        for d in datasets:
            _check_labels(d, objective, hp.get("num_class"))

        nthread = plan.params.setdefault("nthread", _default_threads(*train.features.shape))
        dtrain = _dmatrix(train, objective, nthread)
        evals = [(dtrain, "train")]
        if validation is not None:
            evals.append((_dmatrix(validation, objective, nthread), "validation"))
        ctx.print(f"Train matrix has {train.features.shape[0]} rows and {train.features.shape[1]} columns"
                  + (f"; validation matrix has {validation.features.shape[0]} rows" if validation is not None
                     else ""))

        callbacks: list[Any] = [_log_monitor(ctx, plan.display)]
        rounds = hp.get("early_stopping_rounds")
        if rounds and validation is None:
            ctx.print("Note: early_stopping_rounds needs a validation channel; training runs all rounds.")
        elif rounds:
            metric = plan.early_stopping_metric
            maximize = metric_base(metric) in MAXIMIZE_METRICS if metric else None
            callbacks.append(xgb.callback.EarlyStopping(rounds=rounds, data_name="validation", metric_name=metric,
                                                        maximize=maximize, save_best=True))
        custom = _custom_metric(plan.custom_metrics, objective) if plan.custom_metrics else None
        try:
            booster = xgb.train(plan.params, dtrain, num_boost_round=hp["num_round"], evals=evals,
                                custom_metric=custom, callbacks=callbacks, verbose_eval=False)
        except xgb.core.XGBoostError as exc:
            raise DataError(f"XGBoost could not train: {xgboost_message(exc)}") from None
        best = booster.attr("best_iteration")
        if rounds and best is not None and booster.num_boosted_rounds() < hp["num_round"]:
            ctx.print(f"Early stopping: the best round was {best} (validation score {booster.attr('best_score')}); "
                      f"the model keeps {booster.num_boosted_rounds()} round(s).")
        if libsvm_base is not None:
            booster.set_attr(**{LIBSVM_BASE_ATTR: libsvm_base})
        ctx.model_dir.mkdir(parents=True, exist_ok=True)
        (ctx.model_dir / MODEL_FILE).write_bytes(bytes(booster.save_raw("json")))

    def load(self, model_dir: Path) -> XGBoostPredictor:
        return XGBoostPredictor(load_booster(model_dir))
