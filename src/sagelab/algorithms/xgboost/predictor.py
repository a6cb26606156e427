"""Serving a SageMaker XGBoost model: the predictor behind an endpoint or a batch transform.

It answers like the container's `serve.py`/`serve_utils.py`: requests in CSV (no label, delimiter sniffed
from the first line, one record per line) or LibSVM (labels ignored; indices shifted to 0-based when the
model was trained on 1-based LibSVM, or, for models trained on CSV/Parquet, when no index is 0); responses in
CSV (one score per line, `\n`-terminated; a comma-joined row per record for `multi:softprob`), JSON
(`{"predictions": [{"score": 0.43}]}`) or JSON Lines (`{"score": 0.43}` per line).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import InferenceError, split_content_type

MODEL_FILE = "xgboost-model"
#: Booster attribute recording how LibSVM training data was indexed ("0" or "1"), so requests match it.
LIBSVM_BASE_ATTR = "sagelab_libsvm_index_base"

_REQUEST_FORMATS = {"": "libsvm", "text/libsvm": "libsvm", "text/x-libsvm": "libsvm", "libsvm": "libsvm",
                    "text/csv": "csv", "csv": "csv"}
_BIG_BODY = 1 << 16  # bytes; larger CSV bodies are parsed with pyarrow


class XGBoostPredictor:
    """Answers invocations like the SageMaker XGBoost container (`serve.py`, `serve_utils.py`).

    An empty body raises `InferenceError(204)`, as the container answers 204 No Content; an unsupported
    Content-Type 415, an unsupported Accept 406, a body that cannot be read or predicted 400.
    """

    content_types = ("text/csv", "text/libsvm", "text/x-libsvm")
    accept_types = ("text/csv", "application/json", "application/jsonlines")
    default_accept = "text/csv"

    def __init__(self, booster: Any):
        # A server process runs many predictors side by side: OpenMP threads per request only contend.
        booster.set_param({"nthread": 1})
        self.booster = booster
        self.num_features = int(booster.num_features())
        self._libsvm_base = booster.attr(LIBSVM_BASE_ATTR)

    def set_threads(self, threads: int) -> None:
        """Batch jobs own their cores and may let one prediction use several."""
        self.booster.set_param({"nthread": max(1, threads)})

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        if not body or body.isspace():  # (isspace, unlike strip, does not copy a large body)
            raise InferenceError(204, "The request body is empty: there is nothing to predict.")
        main, _ = split_content_type(content_type)
        request_format = _REQUEST_FORMATS.get(main)
        if request_format is None:
            raise InferenceError(415, f"Content type {content_type!r} is not supported by XGBoost. Supported: "
                                      f"{', '.join(self.content_types)}.")
        accept_type = self._accept(accept)
        features = self._parse_big_csv(body) if request_format == "csv" and len(body) > _BIG_BODY else None
        if features is None:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InferenceError(400, f"The request body is not UTF-8 text: {exc}.") from None
            features = self._parse_csv(text, len(body)) if request_format == "csv" else self._parse_libsvm(text)
        try:
            predictions = self.booster.inplace_predict(features, validate_features=False)
        except Exception as exc:  # noqa: BLE001 - xgboost raises XGBoostError/ValueError for bad input
            raise InferenceError(400, f"Unable to evaluate the payload: {xgboost_message(exc)}") from None
        return _encode(np.asarray(predictions), accept_type), accept_type

    def _accept(self, accept: str | None) -> str:
        if not accept or not accept.strip():
            return self.default_accept
        for item in accept.split(","):
            main, _ = split_content_type(item)
            if main in ("*/*", ""):
                return self.default_accept
            if main in self.accept_types:
                return main
        raise InferenceError(406, f"Accept type {accept!r} is not supported by XGBoost. Supported: "
                                  f"{', '.join(self.accept_types)}.")

    # CSV: no label column, delimiter sniffed from the first line, one record per line.
    def _parse_big_csv(self, body: bytes) -> np.ndarray | None:
        """A large CSV body parsed straight from its bytes (batch transform sends megabytes at a time);
        None when it needs the careful path below (which also explains what is wrong)."""
        first_end = body.find(b"\n")
        delimiter = _sniff(body[:first_end if first_end >= 0 else len(body)].decode("utf-8", "replace").strip())
        if delimiter is None:
            return None
        try:
            matrix = _arrow_csv(body, delimiter)
        except (ValueError, TypeError, NotImplementedError):  # pyarrow's ArrowInvalid is a ValueError
            return None
        return matrix if matrix.ndim == 2 and matrix.shape[1] == self.num_features else None

    def _parse_csv(self, text: str, size: int) -> np.ndarray:
        text = text.strip()
        first_end = text.find("\n")
        first = text if first_end < 0 else text[:first_end]
        delimiter = _sniff(first)
        matrix = None
        try:
            if first_end < 0:  # one record: the common real-time case, kept to a split and one conversion
                matrix = np.array(first.split(delimiter), dtype=np.float32).reshape(1, -1)
            elif size > _BIG_BODY and delimiter is not None:
                matrix = _arrow_csv(text.encode(), delimiter)
            else:
                matrix = np.array([line.split(delimiter) for line in text.splitlines()], dtype=np.float32)
        except (ValueError, TypeError):
            pass
        if matrix is None or matrix.ndim != 2 or matrix.shape[1] != self.num_features:
            # Missing values, blank lines, or an error to explain: field by field.
            matrix = _parse_csv_slowly(text, delimiter, self.num_features)
        return matrix

    def _parse_libsvm(self, text: str) -> Any:
        import scipy.sparse as sp

        rows: list[int] = []
        cols: list[int] = []
        values: list[float] = []
        n_rows = 0
        for number, line in enumerate(text.splitlines(), start=1):
            tokens = line.split()
            if not tokens:
                continue
            for token in tokens:
                if ":" not in token or token.startswith("qid:"):
                    continue  # the label (ignored at inference) or a query id
                index, _, value = token.partition(":")
                try:
                    cols.append(int(index))
                    values.append(float(value))
                except ValueError:
                    raise InferenceError(400, f"LibSVM request line {number}: {token!r} is not index:value.") \
                        from None
                rows.append(n_rows)
            n_rows += 1
        index_array = np.asarray(cols, dtype=np.int64)
        base = self._libsvm_base
        if base is None:  # trained on CSV/Parquet: the container's rule, 1-based when no index is 0
            base = "1" if index_array.size and index_array.min() >= 1 else "0"
        if base == "1":
            index_array -= 1
        if index_array.size and (index_array.min() < 0 or index_array.max() >= self.num_features):
            bad = int(index_array.min() if index_array.min() < 0 else index_array.max()) + int(base)
            raise InferenceError(400, f"LibSVM request uses feature index {bad}, but the model has "
                                      f"{self.num_features} features ({int(base)}-based indices "
                                      f"{int(base)}..{self.num_features - 1 + int(base)}).")
        return sp.csr_matrix((np.asarray(values, dtype=np.float32), (np.asarray(rows), index_array)),
                             shape=(n_rows, self.num_features), dtype=np.float32)


def _sniff(line: str) -> str | None:
    for delimiter in (",", "\t", ";", "|"):
        if delimiter in line:
            return delimiter
    return None if " " in line.strip() else ","


def _arrow_csv(data: bytes, delimiter: str) -> np.ndarray:
    import io

    import pyarrow.csv as pacsv

    table = pacsv.read_csv(io.BytesIO(data),
                           read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                           parse_options=pacsv.ParseOptions(delimiter=delimiter))
    return np.column_stack([c.to_numpy(zero_copy_only=False).astype(np.float32) for c in table.columns])


def _parse_csv_slowly(text: str, delimiter: str | None, width: int) -> np.ndarray:
    """Field by field, to say exactly which row and column is wrong; empty fields are missing values."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(delimiter)
        if len(fields) != width:
            raise InferenceError(400, f"CSV request row {number} has {len(fields)} column(s), but the model expects "
                                      f"{width} features (CSV requests carry no label column).")
        row = []
        for column, field in enumerate(fields, start=1):
            field = field.strip()
            try:
                row.append(float(field) if field else math.nan)
            except ValueError:
                raise InferenceError(400, f"CSV request row {number}, column {column}: {field!r} is not a "
                                          f"number.") from None
        rows.append(row)
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), width)


def _encode(predictions: np.ndarray, accept: str) -> bytes:
    if accept == "text/csv":
        if predictions.ndim == 2:
            lines = [",".join(map(str, row)) for row in predictions]
        else:
            lines = list(map(str, predictions))
        return ("\n".join(lines) + "\n").encode()
    scores = predictions.tolist()
    if accept == "application/json":
        return json.dumps({"predictions": [{"score": s} for s in scores]}).encode()
    return "".join(json.dumps({"score": s}) + "\n" for s in scores).encode()


def load_booster(model_dir: Path) -> Any:
    """The booster in `model_dir/xgboost-model` (XGBoost JSON or UBJSON; pickles are refused)."""
    import xgboost as xgb

    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"The model artifact has no {MODEL_FILE} file (looked in {model_dir}).")
    raw = path.read_bytes()
    if raw[:1] == b"\x80":
        raise ValueError(f"{MODEL_FILE} is a pickled booster; sagelab never loads pickles. Save it with "
                         f"Booster.save_model (JSON or UBJSON) instead.")
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return booster


def xgboost_message(exc: Exception) -> str:
    """XGBoost's error without the source location and the native stack trace."""
    text = str(exc).split("Stack trace:", 1)[0].strip()
    text = re.sub(r"^\[[0-9:]+\] \S+: ", "", text)
    text = re.sub(r"Check failed: [^:]*: ", "", text).strip()
    return text or type(exc).__name__
