"""What SageMaker's JumpStart tabular algorithms (LightGBM, CatBoost) share: their data layout and their
inference contract.

Data (DG `InputOutput-LightGBM`, `catboost`): CSV without a header, the target in the first column. The
training channel is `train` or `training`; it holds CSV files directly, or `train/` (or `training/`) and an
optional `validation/` sub-folder. A separate `validation` channel may hold the validation CSV. A single
`categorical_index.json` (`{"cat_index_list": [1, 5]}`, 1-based CSV columns since column 0 is the target) marks
categorical features, which must hold non-negative integers. Without validation data, 20% of the training rows
(a seeded random draw) are held out for validation and early stopping.

The task comes from the model: `*-classification-model` images classify (binary for two distinct labels,
multiclass for more; labels are non-negative integers, ordered by value), `*-regression-model` images regress.

Inference (CSV in, JSON out): `{"probabilities": [[p0, p1], ...]}` for classification with one probability per
class in label order, `{"prediction": [...]}` for regression. `Accept: application/json;verbose` adds `labels`
(the class values) and `predicted_label` to a classification answer (unverified against AWS; documented in
the JumpStart inference scripts only).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import (
    Channel,
    ChannelSpec,
    DataError,
    InferenceError,
    TrainingContext,
    split_content_type,
)
from sagelab.algorithms.hyperparameters import Hyperparameter

CSV = "text/csv"
JSON = "application/json"
CLASSIFICATION = "classification"
REGRESSION = "regression"
CATEGORICAL_INDEX = "categorical_index.json"
VALIDATION_FRACTION = 0.2
SPLIT_SEED = 200
INFO_FILE = "model-info.json"

#: Hyperparameters the SageMaker SDK adds to script-mode jobs (JumpStart runs these algorithms as scripts):
#: accepted so unchanged estimator code works, and otherwise ignored.
SCRIPT_MODE_HYPERPARAMETERS = ("sagemaker_program", "sagemaker_submit_directory", "sagemaker_container_log_level",
                               "sagemaker_job_name", "sagemaker_region", "sagemaker_estimator_class_name",
                               "sagemaker_estimator_module")


def script_mode_hyperparameters() -> list[Hyperparameter]:
    return [Hyperparameter(name, "str", help="Set by the SageMaker SDK for script-mode jobs; ignored.")
            for name in SCRIPT_MODE_HYPERPARAMETERS]


def channel_specs() -> tuple[ChannelSpec, ...]:
    return (ChannelSpec("train", required=True, content_types=(CSV,), aliases=("training",)),
            ChannelSpec("validation", content_types=(CSV,)))


@dataclasses.dataclass
class Problem:
    task: str  # "regression" | "binary" | "multiclass"
    #: Classification: the label values, sorted; class i of the model is classes[i].
    classes: list[float] = dataclasses.field(default_factory=list)

    @property
    def classifies(self) -> bool:
        return self.task != REGRESSION


@dataclasses.dataclass
class TabularData:
    x_train: np.ndarray
    y_train: np.ndarray  # class indices for classification, values for regression
    x_validation: np.ndarray
    y_validation: np.ndarray
    #: 0-based feature indices of the categorical features.
    categorical: list[int]
    problem: Problem

    @property
    def feature_dim(self) -> int:
        return int(self.x_train.shape[1])


# ---------------------------------------------------------------------------------------------- training data


def read_training_data(ctx: TrainingContext, *, task: str, algorithm: str) -> TabularData:
    """The job's training and validation rows, categorical features and problem type."""
    from sagelab.algorithms.data import read_csv

    channel = ctx.channels.get("train") or ctx.channels.get("training")
    if channel is None:
        raise DataError(f"{algorithm} needs a 'train' (or 'training') channel.")
    _check_csv(channel)
    layout = _layout(channel)
    validation_files = layout["validation"]
    if "validation" in ctx.channels:
        _check_csv(ctx.channels["validation"])
        if validation_files:
            ctx.print(f"Note: the validation channel is used; the '{channel.name}' channel's validation/ folder is "
                      "ignored.")
        validation_files = [f for f in ctx.channels["validation"].files if not _is_json(f.name)]
    if not layout["train"]:
        raise DataError(f"Channel {channel.name!r} holds no CSV training data (only {CATEGORICAL_INDEX}?).")
    x, y = _read(read_csv, layout["train"], channel.name)
    categorical = _categorical_features(layout["json"], x.shape[1])
    if validation_files:
        xv, yv = _read(read_csv, validation_files, "validation")
        if xv.shape[1] != x.shape[1]:
            raise DataError(f"The validation data has {xv.shape[1] + 1} columns, but the training data has "
                            f"{x.shape[1] + 1}; both need the target first and then the same features.")
    else:
        x, y, xv, yv = _hold_out(x, y)
        ctx.print(f"No validation data: {len(yv)} of the {len(y) + len(yv)} training rows "
                  f"({VALIDATION_FRACTION:.0%}) are held out for validation.")
    for data, name in ((x, "training"), (xv, "validation")):
        _check_categorical_values(data, categorical, name)
    problem = _problem(task, y, yv)
    if problem.classifies:
        lookup = {value: index for index, value in enumerate(problem.classes)}
        y = np.array([lookup[float(v)] for v in y], dtype=np.float64)
        yv = np.array([lookup[float(v)] for v in yv], dtype=np.float64)
    ctx.print(f"{algorithm}: {problem.task} on {len(y)} training and {len(yv)} validation rows with {x.shape[1]} "
              f"features" + (f" ({len(categorical)} categorical)" if categorical else "")
              + (f"; classes {', '.join(_show(c) for c in problem.classes)}" if problem.classifies else "") + ".")
    return TabularData(x, y.astype(np.float64), xv, yv.astype(np.float64), categorical, problem)


def _check_csv(channel: Channel) -> None:
    kind, _ = split_content_type(channel.content_type or CSV)
    if kind not in (CSV, "csv"):
        raise DataError(f"Channel {channel.name!r}: content type {channel.content_type!r} is not supported; this "
                        "algorithm reads text/csv (target in the first column, no header).")


def _is_json(name: str) -> bool:
    return name.lower().endswith(".json")


def _layout(channel: Channel) -> dict[str, list[Path]]:
    """Split a channel's files into train CSV, validation CSV (from a validation/ folder) and JSON files."""
    keys = channel.keys if len(channel.keys) == len(channel.files) else [f.name for f in channel.files]
    folders = [key.split("/", 1)[0] if "/" in key else "" for key in keys]
    # With a train/ (or training/) folder, only it holds training rows; otherwise every CSV file does.
    nested = any(folder in ("train", "training") for folder in folders)
    out: dict[str, list[Path]] = {"train": [], "validation": [], "json": []}
    for path, key, folder in zip(channel.files, keys, folders, strict=True):
        if _is_json(key):
            out["json"].append(path)
        elif folder == "validation":
            out["validation"].append(path)
        elif not nested or folder in ("train", "training"):
            out["train"].append(path)
    return out


def _read(read_csv: Any, files: list[Path], name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        x, y = read_csv(files, label_size=1)
    except DataError as exc:
        raise DataError(f"Channel {name!r}: {exc}") from exc
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _categorical_features(json_files: list[Path], feature_dim: int) -> list[int]:
    if not json_files:
        return []
    if len(json_files) > 1:
        raise DataError(f"The training data holds {len(json_files)} JSON files; there should be one, "
                        f"{CATEGORICAL_INDEX}.")
    path = json_files[0]
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        indices = document["cat_index_list"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise DataError(f"{CATEGORICAL_INDEX} must be a JSON object {{\"cat_index_list\": [1, 5, ...]}} with "
                        "1-based column indices of the categorical features.") from None
    columns = feature_dim + 1
    if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise DataError(f"{CATEGORICAL_INDEX}: cat_index_list must be a list of integers, got {indices!r}.")
    bad = [i for i in indices if not 0 < i < columns]
    if bad:
        raise DataError(f"{CATEGORICAL_INDEX}: column index {bad[0]} is out of range; indices count CSV columns "
                        f"from 1 (column 0 is the target) and must be below {columns}.")
    if len(set(indices)) != len(indices):
        raise DataError(f"{CATEGORICAL_INDEX}: cat_index_list repeats a column: {indices}.")
    return sorted(i - 1 for i in indices)


def _check_categorical_values(x: np.ndarray, categorical: list[int], name: str) -> None:
    for column in categorical:
        values = x[:, column]
        present = values[~np.isnan(values)]
        bad = (present < 0) | (present != np.floor(present)) | (present >= 2**31 - 1)
        if bad.any():
            value = present[np.flatnonzero(bad)[0]]
            raise DataError(f"The {name} data's categorical column {column + 1} holds {_show(value)}; categorical "
                            "features must be non-negative integers below 2147483647.")


def _hold_out(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if len(y) < 2:
        raise DataError(f"The training data has {len(y)} row(s): at least 2 are needed to hold out validation "
                        "rows; provide validation data or more rows.")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    cut = max(1, int(round(len(y) * VALIDATION_FRACTION)))
    held, kept = np.sort(order[:cut]), np.sort(order[cut:])
    return x[kept], y[kept], x[held], y[held]


def _problem(task: str, y: np.ndarray, yv: np.ndarray) -> Problem:
    if task == REGRESSION:
        return Problem(REGRESSION)
    for labels, name in ((y, "training"), (yv, "validation")):
        bad = (labels < 0) | (labels != np.floor(labels))
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"The {name} target in row {row} is {_show(labels[row - 1])}; classification targets "
                            "must be non-negative integers (one per class). Use the regression model for a "
                            "continuous target.")
    classes = sorted({float(v) for v in np.unique(y)})
    if len(classes) < 2:
        raise DataError(f"Classification needs at least two classes; the training target only holds "
                        f"{_show(classes[0])}.")
    unseen = sorted({float(v) for v in np.unique(yv)} - set(classes))
    if unseen:
        raise DataError(f"The validation target holds {_show(unseen[0])}, a class the training data does not "
                        f"have (training classes: {', '.join(_show(c) for c in classes)}).")
    return Problem("binary" if len(classes) == 2 else "multiclass", classes)


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else format(float(value), "g")


def default_threads(rows: int, columns: int) -> int:
    """All cores for big data, one for small: below ~250k cells per thread, thread start-up costs more than
    it saves (the same rule as sagelab's XGBoost)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = max(1, os.cpu_count() or 1)
    return max(1, min(cores, (rows * max(columns, 1)) // 250_000))


# ---------------------------------------------------------------------------------------------- artifact


def save_info(model_dir: Path, *, format: str, problem: Problem, feature_dim: int, categorical: list[int],
              extra: dict[str, Any]) -> None:
    info = {"format": format, "task": problem.task, "classes": problem.classes, "feature_dim": feature_dim,
            "categorical_features": categorical, **extra}
    (model_dir / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))


def artifact_file(model_dir: Path, name: str) -> Path:
    """A file the model artifact must hold; its absence is said plainly (the endpoint's FailureReason)."""
    path = Path(model_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"The model artifact has no {name} (looked in {model_dir}).")
    return path


def load_info(model_dir: Path, expected_format: str) -> dict[str, Any]:
    info = json.loads(artifact_file(model_dir, INFO_FILE).read_text())
    if info.get("format") != expected_format:
        raise ValueError(f"{INFO_FILE} describes a {info.get('format')!r} model, not {expected_format!r}.")
    return info


# ---------------------------------------------------------------------------------------------- inference


class TabularPredictor:
    """CSV rows in, JSON out, as the JumpStart inference scripts answer. Subclasses implement `scores`:
    class probabilities (n, classes) for classification, values (n,) for regression."""

    content_types = (CSV,)
    accept_types = (JSON,)
    default_accept = JSON

    def __init__(self, info: dict[str, Any]):
        self.task: str = info["task"]
        self.classes: list[float] = [float(c) for c in info.get("classes") or []]
        self.feature_dim = int(info["feature_dim"])
        self.categorical: list[int] = list(info.get("categorical_features") or [])
        self.threads = 1

    def set_threads(self, threads: int) -> None:
        self.threads = max(1, threads)

    def scores(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        main, _ = split_content_type(content_type)
        if main not in (CSV, "csv"):
            raise InferenceError(415, f"Content type {content_type!r} is not supported; send text/csv rows "
                                      "(features only, no target column).")
        verbose = self._accept(accept)
        if not body or body.isspace():
            raise InferenceError(400, "The request body is empty: send one CSV row of features per record.")
        x = parse_csv_rows(body, self.feature_dim)
        _check_categorical_request(x, self.categorical)
        scores = np.asarray(self.scores(x), dtype=np.float64)
        if self.task == REGRESSION:
            return json.dumps({"prediction": scores.tolist()}).encode(), JSON
        answer: dict[str, Any] = {"probabilities": scores.tolist()}
        if verbose:
            labels = [int(c) if c.is_integer() else c for c in self.classes]
            answer["labels"] = labels
            answer["predicted_label"] = [labels[i] for i in scores.argmax(axis=1)]
        return json.dumps(answer).encode(), JSON

    def _accept(self, accept: str | None) -> bool:
        """Whether the answer is verbose; 406 for anything but JSON."""
        if not accept or not accept.strip():
            return False
        for option in accept.split(","):
            main, params = split_content_type(option)
            if main in (JSON, "*/*", "application/*"):
                flag = params.get("verbose")
                return flag is not None and flag.strip().lower() not in ("false", "0")
        raise InferenceError(406, f"Accept type {accept!r} is not supported; the model answers application/json "
                                  "(or application/json;verbose).")


def _check_categorical_request(x: np.ndarray, categorical: list[int]) -> None:
    for column in categorical:
        values = x[:, column]
        present = values[~np.isnan(values)]
        bad = (present < 0) | (present != np.floor(present))
        if bad.any():
            raise InferenceError(400, f"Feature {column + 1} is categorical and must hold non-negative integers, "
                                      f"got {_show(present[np.flatnonzero(bad)[0]])}.")


def parse_csv_rows(body: bytes, width: int) -> np.ndarray:
    """CSV rows of `width` numbers (empty fields are missing values) as float64; 400 naming the row otherwise."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(io.BytesIO(body), read_options=pacsv.ReadOptions(autogenerate_column_names=True))
        numeric = all(pa.types.is_integer(c.type) or pa.types.is_floating(c.type) or pa.types.is_null(c.type)
                      for c in table.columns)
        if numeric and table.num_columns == width and table.num_rows:
            return np.column_stack([c.to_numpy(zero_copy_only=False).astype(np.float64) for c in table.columns])
    except (ValueError, TypeError):  # pyarrow's ArrowInvalid is a ValueError
        pass
    return _parse_slowly(body, width)


def _parse_slowly(body: bytes, width: int) -> np.ndarray:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InferenceError(400, f"The request body is not UTF-8 text: {exc}.") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != width:
            raise InferenceError(400, f"CSV row {number} has {len(fields)} column(s), but the model expects {width} "
                                      "features (inference rows carry no target column).")
        row = []
        for column, field in enumerate(fields, start=1):
            field = field.strip()
            try:
                value = float(field) if field else math.nan
            except ValueError:
                raise InferenceError(400, f"CSV row {number}, column {column}: {field!r} is not a number.") from None
            row.append(value)
        rows.append(row)
    if not rows:
        raise InferenceError(400, "The request body holds no CSV rows.")
    return np.asarray(rows, dtype=np.float64)
