"""The input/output contract shared by SageMaker's first-party algorithms (reference §0.2-0.4).

Inference requests (`parse_request`):
    text/csv                          one record per line, features only (no label)
    application/json                  {"instances": [{"features": [...]}, ...]}
                                      {"instances": [{"data": {"features": {"values": [...]}}}, ...]}
                                      sparse: {"data": {"features": {"keys": [...], "shape": [d], "values": [...]}}}
                                      (a single record may also be sent without "instances")
    application/jsonlines             one such record per line
    application/x-recordio-protobuf   one Record per instance, features["values"]
Responses (`encode_response`): JSON `{"predictions": [...]}` (the key is per algorithm), JSON Lines (one bare
object per line), protobuf (one Record per row, results as float32 tensors in the label map).

Training channels (`read_training_channel`): text/csv (label first unless label_size=0) or
application/x-recordio-protobuf (dense or sparse features["values"], label["values"]).

Errors: InferenceError 415 (content type), 406 (Accept), 400 (a body that cannot be read: the message names
the record and the problem); DataError for training data (the message becomes the job's FailureReason).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from sagelab.algorithms.base import Channel, DataError, InferenceError, split_content_type
from sagelab.algorithms.first_party.recordio import RecordIOError, read_matrix, write_results

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
PROTOBUF = "application/x-recordio-protobuf"

CONTENT_TYPES = (CSV, JSON, JSONLINES, PROTOBUF)
#: What every 1P algorithm answers; an algorithm that also answers CSV passes `ACCEPT_TYPES + (CSV,)`.
ACCEPT_TYPES = (JSON, JSONLINES, PROTOBUF)
TRAINING_CONTENT_TYPES = (CSV, PROTOBUF)
JSONLINES_ALIASES = (JSONLINES, "application/x-jsonlines", "application/json-lines", "application/jsonl")

Matrix = np.ndarray | sp.csr_matrix


# -- requests -----------------------------------------------------------------------------------------------


def parse_request(body: bytes, content_type: str | None, *, feature_dim: int | None,
                  content_types: Sequence[str] = CONTENT_TYPES, dense: bool = False) -> Matrix:
    """The records of an inference request as a float32 matrix (n, feature_dim): dense, or CSR when some record
    is sparse (unless `dense`). `feature_dim` None takes the width from the first record."""
    kind, _ = split_content_type(content_type)
    if kind in JSONLINES_ALIASES:
        kind = JSONLINES
    if kind not in content_types:
        raise InferenceError(415, f"Content type {content_type!r} is not supported. Supported: "
                                  f"{', '.join(content_types)}.")
    if not body or (kind != PROTOBUF and not bytes(body).strip()):
        raise InferenceError(400, "The request body is empty: send at least one record.")
    if kind == PROTOBUF:
        try:
            x, _ = read_matrix([bytes(body)], feature_dim=feature_dim)
        except RecordIOError as exc:
            raise InferenceError(400, f"Could not read the recordIO-protobuf request: {exc}") from None
    elif kind == CSV:
        x = parse_csv(body, feature_dim)
    else:
        rows = _json_records(body) if kind == JSON else _jsonlines_records(body)
        x = _assemble([_instance(item, where) for where, item in rows], feature_dim,
                      [where for where, _ in rows])
    x = _finite(x)
    if dense and sp.issparse(x):
        x = x.toarray()
    return x


def _text(body: bytes) -> str:
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InferenceError(400, f"The request body is not UTF-8 text: {exc}.") from None


def parse_csv(body: bytes, feature_dim: int | None) -> np.ndarray:
    """CSV rows of features (no label, no header)."""
    lines = [line for line in _text(body).splitlines() if line.strip()]
    if not lines:
        raise InferenceError(400, "The request body is empty: send at least one record.")
    widths = [line.count(",") + 1 for line in lines]
    expected = feature_dim if feature_dim is not None else widths[0]
    for number, width in enumerate(widths, start=1):
        if width != expected:
            raise InferenceError(400, f"CSV record {number} has {width} values; {_expect(expected, feature_dim)} "
                                      "(features only, no label column).")
    try:
        return np.array(",".join(lines).split(","), dtype=np.float32).reshape(len(lines), expected)
    except ValueError:
        pass
    for number, line in enumerate(lines, start=1):
        for column, value in enumerate(line.split(","), start=1):
            try:
                float(value)
            except ValueError:
                raise InferenceError(400, f"CSV record {number}, feature {column}: {value.strip()!r} is not a "
                                          "number.") from None
    raise InferenceError(400, "The CSV request could not be read as numbers.")


def _expect(width: int, feature_dim: int | None) -> str:
    return f"the model expects {width} features" if feature_dim is not None else f"the first record has {width}"


def manifest_pairs(items: Sequence[bytes], where: str, pairs_of: str) -> Iterator[tuple[str, bytes, bytes]]:
    """The records of an augmented manifest stream with two AttributeNames (RecordWrapperType RecordIO), pairwise:
    (where the pair is, the first attribute's record, the second's). `pairs_of` says what the pairs hold, for the
    error an odd count gets."""
    if len(items) % 2:
        raise DataError(f"{where}: the augmented manifest stream holds {len(items)} records; expected pairs of "
                        f"{pairs_of}.")
    for i in range(0, len(items), 2):
        yield f"{where}, augmented manifest record {i // 2 + 1}", items[i], items[i + 1]


def json_instances(text: str, example: str) -> tuple[dict[str, Any], list[Any]]:
    """A JSON request `{"instances": [...], ...}` with at least one instance: (the document, its instances).
    `example` shows one instance in the error that refuses any other shape."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InferenceError(400, f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list) or not document["instances"]:
        raise InferenceError(400, f'Expected {{"instances": [{example}, ...]}} with at least one instance.')
    return document, document["instances"]


def _json_records(body: bytes) -> list[tuple[str, Any]]:
    try:
        document = json.loads(_text(body))
    except json.JSONDecodeError as exc:
        raise InferenceError(400, f"The request body is not valid JSON: {exc}.") from None
    if isinstance(document, dict) and "instances" in document:
        instances = document["instances"]
        if not isinstance(instances, list):
            raise InferenceError(400, f'"instances" must be a list of records, got {_kind(instances)}.')
    elif isinstance(document, dict) and ("features" in document or "data" in document):
        instances = [document]
    else:
        raise InferenceError(400, 'Expected {"instances": [{"features": [...]}, ...]} (or one record with '
                                  '"features" or "data").')
    if not instances:
        raise InferenceError(400, '"instances" is empty: send at least one record.')
    return [(f"Instance {i}", item) for i, item in enumerate(instances, start=1)]


def _jsonlines_records(body: bytes) -> list[tuple[str, Any]]:
    rows = []
    for number, line in enumerate(_text(body).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((f"JSON Lines record {number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InferenceError(400, f"JSON Lines line {number} is not valid JSON: {exc}.") from None
    return rows


def _instance(item: Any, where: str) -> tuple[np.ndarray, np.ndarray | None, int | None]:
    """(values, keys or None, declared width or None) of one JSON record."""
    if not isinstance(item, dict):
        raise InferenceError(400, f'{where}: expected an object with "features" or "data", got {_kind(item)}.')
    if "features" in item:
        features = item["features"]
    elif isinstance(item.get("data"), dict) and "features" in item["data"]:
        features = item["data"]["features"]
    else:
        raise InferenceError(400, f'{where}: expected "features" or "data": {{"features": ...}}.')
    if isinstance(features, dict):
        if "keys" in features:
            return _sparse(features, where)
        features = features.get("values")
    if not isinstance(features, list):
        raise InferenceError(400, f"{where}: features must be a list of numbers, got {_kind(features)}.")
    values = _numbers(features, where)
    return values, None, None


def _sparse(features: dict, where: str) -> tuple[np.ndarray, np.ndarray, int | None]:
    keys, values, shape = features.get("keys"), features.get("values"), features.get("shape")
    if not isinstance(keys, list) or not isinstance(values, list) or len(keys) != len(values):
        raise InferenceError(400, f'{where}: sparse features need "keys" and "values" lists of the same length.')
    width = None
    if shape is not None:
        if (not isinstance(shape, list) or len(shape) != 1 or isinstance(shape[0], bool)
                or not isinstance(shape[0], int) or shape[0] < 1):
            raise InferenceError(400, f"{where}: sparse shape must be [number of features], got {shape!r}.")
        width = shape[0]
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, int) or key < 0:
            raise InferenceError(400, f"{where}: sparse key {key!r} is not a feature index (an integer >= 0).")
    return _numbers(values, where), np.asarray(keys, dtype=np.int64), width


def _numbers(values: list, where: str) -> np.ndarray:
    for column, value in enumerate(values, start=1):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InferenceError(400, f"{where}, feature {column}: {value!r} is not a number.")
    return np.asarray(values, dtype=np.float32)


def _assemble(records: list[tuple[np.ndarray, np.ndarray | None, int | None]], feature_dim: int | None,
              names: list[str]) -> Matrix:
    width = feature_dim
    for (values, keys, declared), where in zip(records, names, strict=True):
        size = declared if keys is not None else len(values)
        if keys is not None and size is None:
            if width is None:
                raise InferenceError(400, f'{where}: a sparse record needs "shape": [number of features].')
            size = width
        if width is None:
            width = size
        elif size != width:
            raise InferenceError(400, f"{where} has {size} features; {_expect(width, feature_dim)}.")
        if keys is not None and len(keys) and int(keys.max()) >= width:
            raise InferenceError(400, f"{where}: sparse key {int(keys.max())} is out of range for {width} features "
                                      f"(keys must be 0..{width - 1}).")
    assert width is not None
    if all(keys is None for _, keys, _ in records):
        return np.vstack([values for values, _, _ in records]).astype(np.float32, copy=False)
    data = np.concatenate([values for values, _, _ in records])
    columns = np.concatenate([keys if keys is not None else np.arange(len(values)) for values, keys, _ in records])
    indptr = np.concatenate([[0], np.cumsum([len(values) for values, _, _ in records])])
    matrix = sp.csr_matrix((data.astype(np.float32), columns, indptr), shape=(len(records), width))
    matrix.sum_duplicates()
    return matrix


def _first_non_finite(x: Matrix) -> tuple[int, int, float] | None:
    """(row, column, value) of the first NaN or infinite cell, dense or sparse; None when every cell is finite."""
    values = x.data if sp.issparse(x) else x
    if np.isfinite(values).all():
        return None
    if sp.issparse(x):
        coo = x.tocoo()
        bad = int(np.flatnonzero(~np.isfinite(coo.data))[0])
        return int(coo.row[bad]), int(coo.col[bad]), float(coo.data[bad])
    row, column = (int(i) for i in np.argwhere(~np.isfinite(x))[0])
    return row, column, float(x[row, column])


def _finite(x: Matrix) -> Matrix:
    found = _first_non_finite(x)
    if found is None:
        return x
    row, column, value = found
    raise InferenceError(400, f"Record {row + 1}, feature {column + 1}: {value!r} is not a finite number.")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


# -- responses ----------------------------------------------------------------------------------------------


def negotiate_accept(accept: str | None, accept_types: Sequence[str] = ACCEPT_TYPES,
                     default: str = JSON) -> str:
    """The response type for an Accept header (a list, wildcards, JSON Lines aliases); 406 when none fits."""
    if not accept or not accept.strip():
        return default
    for option in accept.split(","):
        kind, _ = split_content_type(option)
        if kind in ("*/*", "application/*"):
            return default
        if kind in JSONLINES_ALIASES:
            kind = JSONLINES
        if kind in accept_types:
            return kind
    raise InferenceError(406, f"Accept {accept!r} is not supported. Supported: {', '.join(accept_types)}.")


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    return value


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in row.items()}


def encode_response(rows: Sequence[Mapping[str, Any]], accept: str | None, *, json_key: str | None = "predictions",
                    accept_types: Sequence[str] = ACCEPT_TYPES, default_accept: str = JSON,
                    csv_row: Callable[[Mapping[str, Any]], Iterable[Any]] | None = None) -> tuple[bytes, str]:
    """(payload, content type) for `rows` (one dict per record) in the negotiated Accept type.

    JSON: `{json_key: rows}` (a bare array when json_key is None); JSON Lines: one object per line; protobuf:
    `write_results`; CSV (only when in `accept_types`): `csv_row(row)` joined by commas, by default the row's
    values in order with lists flattened."""
    kind = negotiate_accept(accept, accept_types, default_accept)
    if kind == PROTOBUF:
        return write_results(rows), PROTOBUF
    if kind == JSONLINES:
        return "".join(json.dumps(_jsonable(row)) + "\n" for row in rows).encode(), JSONLINES
    if kind == CSV:
        return "".join(",".join(_csv_cell(v) for v in (csv_row(row) if csv_row else _flatten(row))) + "\n"
                       for row in rows).encode(), CSV
    objects = [_jsonable(row) for row in rows]
    return json.dumps(objects if json_key is None else {json_key: objects}).encode(), JSON


def _flatten(row: Mapping[str, Any]) -> list[Any]:
    cells: list[Any] = []
    for value in row.values():
        value = _plain(value)
        cells.extend(value if isinstance(value, list) else [value])
    return cells


def _csv_cell(value: Any) -> str:
    value = _plain(value)
    return repr(value) if isinstance(value, float) else str(value)


# -- training channels --------------------------------------------------------------------------------------


def read_training_channel(channel: Channel, *, label_size: int = 1, feature_dim: int | None = None,
                          label_required: bool = True, require_finite: bool = True,
                          dense: bool = False) -> tuple[Matrix, np.ndarray | None]:
    """(X, y) of a text/csv or application/x-recordio-protobuf training channel.

    CSV: the first `label_size` (0 or 1; the content type's `label_size` parameter wins) columns are the label.
    Protobuf: features["values"] (dense or sparse), label["values"] (ignored when label_size is 0).
    y is None when the channel has no labels and `label_required` is False. Raises DataError naming the channel,
    the file and the record."""
    from sagelab.algorithms.data import data_files, read_csv

    kind, params = split_content_type(channel.content_type or CSV)
    params = {**params, **{k.lower(): v for k, v in (channel.params or {}).items()}}
    name = channel.name
    if "label_size" in params:
        try:
            label_size = int(params["label_size"])
        except ValueError:
            raise DataError(f"Channel '{name}': label_size={params['label_size']!r} in the content type is not an "
                            "integer.") from None
    files = data_files(channel.files)
    if not files:
        raise DataError(f"Channel '{name}' has no data: no non-empty files were found under its S3 location.")
    if kind == CSV:
        if label_size not in (0, 1):
            raise DataError(f"Channel '{name}': label_size={label_size} is not supported; use 1 (the label in the "
                            "first column) or 0 (no label).")
        try:
            x, y = read_csv(files, label_size=label_size)
        except DataError as exc:
            raise DataError(f"Channel '{name}': {exc}") from None
        unit = "row"
    elif kind == PROTOBUF:
        x, y = _read_protobuf(name, files, feature_dim)
        if label_size == 0:
            y = None
        unit = "record"
    else:
        raise DataError(f"Channel '{name}': content type {channel.content_type!r} is not supported. Supported: "
                        f"{', '.join(TRAINING_CONTENT_TYPES)}.")
    if feature_dim is not None and x.shape[1] != feature_dim:
        raise DataError(f"Hyperparameter feature_dim is {feature_dim}, but channel '{name}' has records with "
                        f"{x.shape[1]} features.")
    if y is None and label_size and label_required:
        raise DataError(f"Channel '{name}': the records carry no label; this algorithm needs one "
                        '(label["values"] in each record).')
    if require_finite:
        _check_finite(name, x, y, unit, csv=kind == CSV)
    if dense and sp.issparse(x):
        x = x.toarray()
    return x, y


def _read_protobuf(name: str, files: list, feature_dim: int | None) -> tuple[Matrix, np.ndarray | None]:
    blocks: list[tuple[Matrix, np.ndarray | None]] = []
    width = feature_dim
    for path in files:
        try:
            x, y = read_matrix([path.read_bytes()], feature_dim=width)
        except RecordIOError as exc:
            problem = str(exc)
            if feature_dim is None and width is not None and "features, but feature_dim is" in problem:
                problem += " (the width of the channel's earlier files)"
            if exc.index == 1 and "bad magic number" in problem and _looks_like_text(path):
                problem += (" The file looks like text: if it is CSV, set the channel's ContentType to text/csv "
                            "(a channel without a ContentType is read as recordIO-protobuf).")
            raise DataError(f"Channel '{name}', file {_file_name(path)}: {problem}") from None
        if blocks and (y is None) != (blocks[0][1] is None):
            raise DataError(f"Channel '{name}', file {_file_name(path)}: its records "
                            f"{'lack' if y is None else 'have'} labels, unlike the channel's earlier files.")
        width = x.shape[1]
        blocks.append((x, y))
    if len(blocks) == 1:
        return blocks[0]
    xs = [x for x, _ in blocks]
    if any(sp.issparse(x) for x in xs):
        x = sp.vstack([sp.csr_matrix(x) for x in xs], format="csr")
    else:
        x = np.vstack(xs)
    ys = [y for _, y in blocks]
    return x, None if ys[0] is None else np.concatenate(ys)


def _looks_like_text(path: Any) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= 32 or c in (9, 10, 13) for c in head)


def _file_name(path: Any) -> str:
    # Materialised channel files are named "<index>-<object name>"; users know the object name.
    name = path.name
    head, _, rest = name.partition("-")
    return rest if head.isdigit() and rest else name


def _check_finite(name: str, x: Matrix, y: np.ndarray | None, unit: str, *, csv: bool) -> None:
    found = _first_non_finite(x)
    if found is not None:
        row, column, value = found
        shown = "missing" if csv and np.isnan(value) else f"{value!r}, not a finite number"
        raise DataError(f"Channel '{name}', {unit} {row + 1}: feature {column + 1} is {shown}.")
    if y is not None and not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).any(axis=1))[0])
        raise DataError(f"Channel '{name}', {unit} {row + 1}: the label is not a finite number.")
