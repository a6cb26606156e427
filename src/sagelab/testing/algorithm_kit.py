"""Conformance kit for built-in algorithms: every `Algorithm` must pass these checks.

Static checks take the algorithm alone: `check_declarations`, `check_schema_rejects_bad_values`,
`check_metric_names`. Trained checks take a `Case` (an algorithm, hyperparameters as SageMaker passes them,
and a recipe for a small real data set) and a work folder; they train from CSV (or, per case, recordIO-protobuf)
channels exactly as a job does, then serve the artifact: `check_train_and_predict_roundtrip` (a fresh process predicts the same bytes),
`check_content_types`, `check_determinism`, `check_metrics_emitted`. Each trained check accepts an already
`fit` model so a test module can train each case once.

Failures are plain `AssertionError`s that say what is wrong; nothing here depends on pytest.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import Algorithm, Channel, InferenceError, TrainingContext
from sagelab.algorithms.hyperparameters import AUTO, Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

UNSUPPORTED_TYPE = "application/x-sagelab-unsupported"
PROTOBUF = "application/x-recordio-protobuf"
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|nan|inf", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------- data sets


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A small labelled data set, already split: features are float64, labels 1-D."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray


def _split(name: str, features: np.ndarray, labels: np.ndarray, seed: int = 0) -> Dataset:
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = int(round(len(labels) * 0.8))
    train, validation = order[:cut], order[cut:]
    return Dataset(name, features[train], labels[train].astype(np.float64),
                   features[validation], labels[validation].astype(np.float64))


def breast_cancer() -> Dataset:
    """Binary classification: 569 rows, 30 features, labels 0/1."""
    from sklearn.datasets import load_breast_cancer

    return _split("breast_cancer", *load_breast_cancer(return_X_y=True))


def iris() -> Dataset:
    """Multiclass classification: 150 rows, 4 features, labels 0/1/2."""
    from sklearn.datasets import load_iris

    return _split("iris", *load_iris(return_X_y=True))


def diabetes() -> Dataset:
    """Regression: 442 rows, 10 features, a disease-progression score (25..346)."""
    from sklearn.datasets import load_diabetes

    return _split("diabetes", *load_diabetes(return_X_y=True))


def standardized(data: Dataset) -> Dataset:
    """`data` with features scaled by the training split's mean and deviation (FM's SGD needs it)."""
    mean, std = data.x_train.mean(axis=0), data.x_train.std(axis=0)
    std[std == 0] = 1.0
    return dataclasses.replace(data, name=f"{data.name}-standardized", x_train=(data.x_train - mean) / std,
                               x_validation=(data.x_validation - mean) / std)


def breast_cancer_standardized() -> Dataset:
    return standardized(breast_cancer())


def diabetes_standardized() -> Dataset:
    return standardized(diabetes())


def wine_with_anomalies(anomalies: int = 12, seed: int = 1) -> Dataset:
    """Anomaly detection: the 178 wines (13 standardized features, label 0) plus `anomalies` injected points
    (label 1), each a typical wine pushed 4 to 7 deviations out in three random features."""
    from sklearn.datasets import load_wine

    x, _ = load_wine(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    rng = np.random.default_rng(seed)
    odd = rng.normal(0.0, 1.0, size=(anomalies, x.shape[1]))
    for row in odd:
        columns = rng.choice(x.shape[1], size=3, replace=False)
        row[columns] += rng.choice([-1.0, 1.0], size=3) * rng.uniform(4.0, 7.0, size=3)
    return _split("wine_with_anomalies", np.vstack([x, odd]), np.r_[np.zeros(len(x)), np.ones(anomalies)], seed)
def planted_topics(vocabulary: int = 25) -> np.ndarray:
    """Griffiths and Steyvers' "bars": on a 5x5 grid of words, each of the 10 topics is one row or one column,
    its five words equally likely. Rows are topics, columns words; each row sums to 1."""
    side = int(round(vocabulary ** 0.5))
    topics = np.zeros((2 * side, side * side))
    for i in range(side):
        topics[i, i * side:(i + 1) * side] = 1.0 / side
        topics[side + i, i::side] = 1.0 / side
    return topics


def topic_documents(documents: int = 500, words: int = 60, seed: int = 0) -> Dataset:
    """Bag-of-words documents drawn from `planted_topics` (topic mixtures from a sparse Dirichlet): 25 word
    counts per document; the label is the document's dominant topic."""
    topics = planted_topics()
    rng = np.random.default_rng(seed)
    mixtures = rng.dirichlet(np.full(len(topics), 0.3), size=documents)
    counts = np.stack([rng.multinomial(words, mixture @ topics) for mixture in mixtures]).astype(np.float64)
    return _split("topic_documents", counts, mixtures.argmax(axis=1), seed)


def wine() -> Dataset:
    """Multiclass classification: 178 rows, 13 features, labels 0/1/2."""
    from sklearn.datasets import load_wine

    return _split("wine", *load_wine(return_X_y=True))


def write_csv(path: Path, features: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """SageMaker's CSV: no header, the label (when given) in the first column."""
    rows = features if labels is None else np.column_stack([labels, features])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, delimiter=",", fmt="%.10g")
    return path


def write_protobuf(path: Path, features: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """recordIO-protobuf as the SageMaker SDK's record_set writes it: Float32 features["values"], label["values"]."""
    from sagelab.algorithms.first_party.recordio import write_matrix

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(write_matrix(features, labels))
    return path


def encode_request(features: np.ndarray, content_type: str) -> bytes | None:
    """A request body in `content_type`, or None when the kit has no encoder for it."""
    if content_type == PROTOBUF:
        from sagelab.algorithms.first_party.recordio import write_matrix

        return write_matrix(features)
    if content_type == "text/csv":
        return "\n".join(",".join(f"{v:.10g}" for v in row) for row in features).encode()
    if content_type in ("text/libsvm", "text/x-libsvm"):
        # SageMaker's convention: 1-based indices and a (dummy) label first.
        return "\n".join("0 " + " ".join(f"{j}:{v:.10g}" for j, v in enumerate(row, start=1))
                         for row in features).encode()
    if content_type == "application/json":
        return json.dumps({"instances": [{"features": [float(v) for v in row]} for row in features]}).encode()
    if content_type == "application/jsonlines":
        return "".join(json.dumps({"features": [float(v) for v in row]}) + "\n" for row in features).encode()
    if content_type == PROTOBUF:
        from sagelab.algorithms.first_party.recordio import write_matrix

        return write_matrix(np.asarray(features, dtype=np.float32))
    return None


def _protobuf_records(payload: bytes) -> list:
    from sagelab.algorithms.first_party.recordio import read_records

    records = read_records(payload)
    for record in records:
        assert not record.features, "a protobuf response keeps its results in the label map; features is not empty"
        assert all(t.kind == "float32" for t in record.label.values()), \
            "a protobuf response's results are Float32 tensors"
    return records


def response_records(payload: bytes, accept: str) -> int:
    """How many records a response holds."""
    if accept == PROTOBUF:
        return len(_protobuf_records(payload))
    text = payload.decode("utf-8")
    if accept == "text/csv":
        return sum(1 for line in text.splitlines() if line.strip())
    if accept == "application/jsonlines":
        return sum(1 for line in text.splitlines() if line.strip() and json.loads(line) is not None)
    if accept == "application/json":
        document = json.loads(text)
        if isinstance(document, list):
            return len(document)
        lists = [v for v in document.values() if isinstance(v, list)]
        assert len(lists) == 1, f"a JSON response should hold one list of records, got keys {list(document)}"
        return len(lists[0])
    raise AssertionError(f"the kit cannot read {accept} responses")


def response_numbers(payload: bytes, accept: str | None = None) -> np.ndarray:
    if accept == PROTOBUF:
        values = [t.values.astype(np.float64) for r in _protobuf_records(payload) for _, t in sorted(r.label.items())]
        return np.concatenate(values) if values else np.empty(0)
    return np.array([float(m) for m in _NUMBER.findall(payload.decode("utf-8"))], dtype=np.float64)


# ---------------------------------------------------------------------------------------------- cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One algorithm configuration the kit runs."""

    id: str
    make_algorithm: Callable[[], Algorithm]
    #: As SageMaker passes them: every value a string.
    hyperparameters: Mapping[str, str]
    make_data: Callable[[], Dataset]
    #: How `fit` writes the training channels: "text/csv" or "application/x-recordio-protobuf".
    training_content_type: str = "text/csv"


@dataclasses.dataclass
class Fitted:
    """A trained case: where its artifact is, what it logged, and the data it saw."""

    case: Case
    algorithm: Algorithm
    data: Dataset
    model_dir: Path
    log: str


def fit(case: Case, workdir: Path, *, data: Dataset | None = None) -> Fitted:
    """Train `case` from CSV (or recordIO-protobuf) files in `workdir` exactly as a training job does
    (validated hyperparameters)."""
    algorithm = case.make_algorithm()
    data = data or case.make_data()
    workdir.mkdir(parents=True, exist_ok=True)
    declared = {c.name for c in algorithm.channels}
    kind = case.training_content_type
    writer, suffix = (write_protobuf, "pbr") if kind == PROTOBUF else (write_csv, "csv")
    channels = {"train": Channel("train", kind, [writer(workdir / "train" / f"train.{suffix}",
                                                        data.x_train, data.y_train)])}
    # The held-out split feeds `validation` or, for algorithms that have none (K-Means, PCA, k-NN), `test`.
    held_out = "validation" if "validation" in declared else "test" if "test" in declared else None
    if held_out is not None:
        channels[held_out] = Channel(held_out, kind, [writer(
            workdir / held_out / f"{held_out}.{suffix}", data.x_validation, data.y_validation)])
    log = io.StringIO()
    model_dir, output_dir = workdir / "model", workdir / "output"
    model_dir.mkdir(parents=True, exist_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    ctx = TrainingContext(hyperparameters=algorithm.hyperparameters.validate(dict(case.hyperparameters)),
                          channels=channels, model_dir=model_dir, output_dir=output_dir, log=log)
    algorithm.train(ctx)
    assert any(model_dir.iterdir()), f"{algorithm.name}: train() wrote nothing into the model directory"
    return Fitted(case, algorithm, data, model_dir, log.getvalue())


def _fitted(case: Case, workdir: Path, fitted: Fitted | None) -> Fitted:
    return fitted if fitted is not None else fit(case, workdir / "fit")


# ---------------------------------------------------------------------------------------------- static checks


def check_declarations(algorithm: Algorithm) -> None:
    """Name, image repositories, channels, schema and metrics are declared with the right shapes."""
    assert isinstance(algorithm.name, str) and algorithm.name, "an algorithm needs a name"
    repos = algorithm.image_repositories
    assert isinstance(repos, tuple) and repos, f"{algorithm.name}: image_repositories must be a non-empty tuple"
    assert all(isinstance(r, str) and r == r.lower() and "/" not in r and ":" not in r for r in repos), \
        f"{algorithm.name}: image repositories are bare lower-case names, got {repos}"
    names = [c.name for c in algorithm.channels]
    assert len(names) == len(set(names)), f"{algorithm.name}: duplicate channel names {names}"
    assert any(c.required for c in algorithm.channels), f"{algorithm.name}: no channel is required"
    for spec in algorithm.channels:
        assert spec.content_types, f"{algorithm.name}: channel {spec.name!r} declares no content type"
        assert spec.default_content_type in spec.content_types, \
            f"{algorithm.name}: channel {spec.name!r} defaults to {spec.default_content_type!r}, " \
            f"which it does not accept ({spec.content_types})"
    assert isinstance(algorithm.hyperparameters, HyperparameterSchema)
    assert isinstance(algorithm.metrics, tuple)


def _valid_value(param: Hyperparameter) -> str:
    if param.default is not None and param.default != AUTO:
        return _as_string(param.default)
    if param.example is not None:
        return _as_string(param.example)
    if param.choices:
        return _as_string(param.choices[0])
    if param.kind in ("int", "float"):
        low = param.min if param.min is not None else 1
        value = low if param.min_inclusive else low + 1
        return str(int(value) if param.kind == "int" else float(value))
    return {"bool": "true", "json": "[]", "int_list": "1", "str": "x"}[param.kind]


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def minimal_hyperparameters(schema: HyperparameterSchema) -> dict[str, str]:
    """Values for the required hyperparameters only."""
    return {p.name: _valid_value(p) for p in schema.params if p.required}


def _bad_values(param: Hyperparameter) -> list[str]:
    """Values `param` must refuse."""
    bad: list[str] = []
    if param.choices is not None:
        bad.append("no-such-choice")
    elif param.kind == "int":
        bad += ["not-a-number", "1.5"]
    elif param.kind == "float":
        bad += ["not-a-number", "nan"]
    elif param.kind == "bool":
        bad.append("maybe")
    elif param.kind == "json":
        bad.append("{not json")
    elif param.kind == "int_list":
        bad.append("a,b")
    if param.kind in ("int", "float") and param.choices is None:
        if param.min is not None:
            bad.append(_as_number(param.min if not param.min_inclusive else param.min - 1, param.kind))
        if param.max is not None:
            bad.append(_as_number(param.max if not param.max_inclusive else param.max + 1, param.kind))
    return bad


def _as_number(value: float, kind: str) -> str:
    if kind == "int":
        return str(int(math.floor(value)))
    return repr(float(value))


def _expect_rejected(schema: HyperparameterSchema, values: dict[str, str], name: str, why: str) -> None:
    try:
        schema.validate(values)
    except ValidationError as exc:
        assert name in str(exc), f"the error for {why} must name {name!r}; got: {exc}"
        return
    raise AssertionError(f"{why} was accepted")


def check_schema_rejects_bad_values(algorithm: Algorithm, valid: Mapping[str, str] | None = None) -> None:
    """Every hyperparameter refuses values of the wrong type or range with a message naming it; required ones
    are required; unknown names are refused; `_`-prefixed keys pass through; every default is itself valid."""
    schema = algorithm.hyperparameters
    base = dict(valid) if valid is not None else minimal_hyperparameters(schema)
    schema.validate(base)  # the baseline must be valid

    for param in schema.params:
        if param.default is not None and param.default != AUTO:
            parsed = param.parse(param.default)
            assert parsed == param.default or (isinstance(parsed, list) and list(param.default) == parsed), \
                f"{algorithm.name}: the default of {param.name!r} ({param.default!r}) is not a valid value"
        for bad in _bad_values(param):
            _expect_rejected(schema, {**base, param.name: bad}, param.name,
                             f"{algorithm.name}: {param.name}={bad!r}")
        if param.kind == "str" and param.choices is None:
            # Free-form strings may accept anything; when they refuse, they must say which one refused.
            try:
                schema.validate({**base, param.name: "no such value!"})
            except ValidationError as exc:
                assert param.name in str(exc), f"the error for {param.name}='no such value!' must name it: {exc}"
        if param.required:
            missing = {k: v for k, v in base.items() if k != param.name}
            _expect_rejected(schema, missing, param.name, f"{algorithm.name}: a missing required {param.name!r}")

    unknown = "sagelab_kit_no_such_hyperparameter"
    _expect_rejected(schema, {**base, unknown: "1"}, unknown, f"{algorithm.name}: an unknown hyperparameter")

    passthrough = {**base, "_sagelab_kit_private": "anything at all"}
    validation_metrics = [m.name for m in algorithm.metrics if m.name.startswith("validation:")]
    if validation_metrics:
        passthrough["_tuning_objective_metric"] = validation_metrics[0]
    values = schema.validate(passthrough)
    assert values.get("_sagelab_kit_private") == "anything at all", \
        f"{algorithm.name}: `_`-prefixed hyperparameters must pass through unchanged"


def check_metric_names(algorithm: Algorithm) -> None:
    """Metric names are `train:`/`validation:`/`test:` names, unique, with a one-group regex and a direction."""
    names = [m.name for m in algorithm.metrics]
    assert names, f"{algorithm.name}: declares no metrics"
    assert len(names) == len(set(names)), f"{algorithm.name}: duplicate metric names"
    for metric in algorithm.metrics:
        assert re.match(r"^(train|validation|test):\S+$", metric.name), \
            f"{algorithm.name}: metric name {metric.name!r} must start with train:, validation: or test:"
        try:
            pattern = re.compile(metric.regex)
        except re.error as exc:
            raise AssertionError(f"{algorithm.name}: the regex of {metric.name} does not compile: {exc}") from None
        assert pattern.groups == 1, f"{algorithm.name}: the regex of {metric.name} must have exactly one group"
        assert metric.direction in ("Maximize", "Minimize"), \
            f"{algorithm.name}: {metric.name} has direction {metric.direction!r}"


STATIC_CHECKS: tuple[Callable[[Algorithm], None], ...] = (
    check_declarations, check_schema_rejects_bad_values, check_metric_names)


# ---------------------------------------------------------------------------------------------- trained checks

_FRESH_PROCESS = r"""
import base64, importlib, json, sys
from pathlib import Path

spec = json.loads(sys.argv[1])
module, _, qualname = spec["algorithm"].partition(":")
target = importlib.import_module(module)
for part in qualname.split("."):
    target = getattr(target, part)
predictor = target().load(Path(spec["model_dir"]))
answers = []
for request in spec["requests"]:
    payload, content_type = predictor.invoke(Path(request["body"]).read_bytes(), request["content_type"],
                                             request["accept"])
    answers.append({"payload": base64.b64encode(payload).decode(), "content_type": content_type})
Path(spec["out"]).write_text(json.dumps(answers))
"""


def predict_in_fresh_process(algorithm: Algorithm, model_dir: Path, requests: list[tuple[bytes, str, str]],
                             workdir: Path) -> list[tuple[bytes, str]]:
    """Load `model_dir` in a new Python process (no state shared with this one) and answer `requests`."""
    workdir.mkdir(parents=True, exist_ok=True)
    listed = []
    for index, (body, content_type, accept) in enumerate(requests):
        path = workdir / f"request-{index}"
        path.write_bytes(body)
        listed.append({"body": str(path), "content_type": content_type, "accept": accept})
    out = workdir / "answers.json"
    cls = type(algorithm)
    spec = {"algorithm": f"{cls.__module__}:{cls.__qualname__}", "model_dir": str(model_dir),
            "requests": listed, "out": str(out)}
    import sagelab

    src = str(Path(sagelab.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, json.dumps(spec)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, f"{algorithm.name}: predicting in a fresh process failed:\n{done.stderr[-3000:]}"
    return [(base64.b64decode(a["payload"]), a["content_type"]) for a in json.loads(out.read_text())]


def _request_type(predictor: Any) -> str:
    """text/csv when the predictor reads it, else the first request type the kit can encode (FM reads no CSV)."""
    if "text/csv" in predictor.content_types:
        return "text/csv"
    probe = np.zeros((1, 1))
    return next(t for t in predictor.content_types if encode_request(probe, t) is not None)


def _assert_no_pickle(model_dir: Path) -> None:
    for path in model_dir.rglob("*"):
        if path.is_file():
            assert path.suffix not in (".pkl", ".pickle"), f"model artifact {path.name} is a pickle"
            with path.open("rb") as f:
                head = f.read(2)
            assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")), \
                f"model artifact {path.name} is a pickle; artifacts must be library-native or JSON/NumPy"


def check_train_and_predict_roundtrip(case: Case, workdir: Path, fitted: Fitted | None = None) -> None:
    """The artifact is pickle-free, and a fresh process that loads it answers byte for byte as this one does."""
    fitted = _fitted(case, workdir, fitted)
    _assert_no_pickle(fitted.model_dir)
    predictor = fitted.algorithm.load(fitted.model_dir)
    request_type = _request_type(predictor)
    body = encode_request(fitted.data.x_validation, request_type)
    assert body is not None
    requests = [(body, request_type, accept) for accept in predictor.accept_types]
    here = [predictor.invoke(*request) for request in requests]
    there = predict_in_fresh_process(fitted.algorithm, fitted.model_dir, requests, workdir / "fresh")
    rows = len(fitted.data.x_validation)
    for (payload, content_type), (fresh_payload, fresh_type), (_, _, accept) in zip(here, there, requests,
                                                                                   strict=True):
        assert content_type == fresh_type == accept, (content_type, fresh_type, accept)
        assert response_records(payload, accept) == rows, f"{accept}: expected {rows} records"
        assert payload == fresh_payload, f"{accept}: a fresh process predicts differently:\n{payload[:300]!r}\n" \
                                         f"{fresh_payload[:300]!r}"


def _expect_inference_error(predictor: Any, status: int | tuple[int, ...], body: bytes, content_type: str,
                            accept: str, mention: str | None = None) -> None:
    statuses = (status,) if isinstance(status, int) else status
    try:
        predictor.invoke(body, content_type, accept)
    except InferenceError as exc:
        assert exc.status in statuses, f"expected status {statuses} for {content_type} -> {accept}, got " \
                                       f"{exc.status}: {exc}"
        if mention:
            assert mention in str(exc), f"the error should name {mention!r}: {exc}"
        return
    raise AssertionError(f"expected an InferenceError {statuses} for content type {content_type!r}, accept "
                         f"{accept!r}")


def check_content_types(case: Case, workdir: Path, fitted: Fitted | None = None) -> dict[str, list[str]]:
    """Each declared request type with each declared Accept answers in that type, with the same numbers;
    no Accept gives the default; unsupported types give 415/406; an unreadable body 400; an empty one 204/400.
    Returns {"checked": [...], "skipped": [...]} content types (skipped: the kit has no encoder)."""
    fitted = _fitted(case, workdir, fitted)
    predictor = fitted.algorithm.load(fitted.model_dir)
    features = fitted.data.x_validation[:7]
    assert predictor.default_accept in predictor.accept_types
    checked, skipped = [], []
    reference: dict[str, np.ndarray] = {}
    for content_type in predictor.content_types:
        body = encode_request(features, content_type)
        if body is None:
            skipped.append(content_type)
            continue
        checked.append(content_type)
        for accept in predictor.accept_types:
            payload, returned = predictor.invoke(body, content_type, accept)
            assert returned == accept, f"{content_type} -> {accept}: answered as {returned}"
            assert response_records(payload, accept) == len(features), \
                f"{content_type} -> {accept}: expected {len(features)} records in {payload[:200]!r}"
            numbers = response_numbers(payload, accept)
            if accept in reference:
                assert numbers.shape == reference[accept].shape and np.allclose(
                    numbers, reference[accept], rtol=1e-5, atol=1e-6, equal_nan=True), \
                    f"{content_type} -> {accept} predicts differently from {checked[0]}"
            else:
                reference[accept] = numbers
        for accept in ("", "*/*"):
            _, returned = predictor.invoke(body, content_type, accept)
            assert returned == predictor.default_accept, f"Accept {accept!r} must give {predictor.default_accept}"
        _expect_inference_error(predictor, 406, body, content_type, UNSUPPORTED_TYPE, UNSUPPORTED_TYPE)
    assert checked, f"{fitted.algorithm.name}: the kit can encode none of {predictor.content_types}"
    body = encode_request(features, checked[0])
    _expect_inference_error(predictor, 415, body, UNSUPPORTED_TYPE, predictor.default_accept, UNSUPPORTED_TYPE)
    if "text/csv" in predictor.content_types:
        width = fitted.data.x_validation.shape[1]
        _expect_inference_error(predictor, 400, b"1.0,not-a-number" + b",1.0" * (width - 2) + b"\n", "text/csv",
                                predictor.default_accept, "not-a-number")
        _expect_inference_error(predictor, 400, b",".join([b"1.0"] * (width + 3)), "text/csv",
                                predictor.default_accept, str(width))
    if PROTOBUF in predictor.content_types:
        whole = encode_request(features[:2], PROTOBUF)
        _expect_inference_error(predictor, 400, whole[:-5], PROTOBUF, predictor.default_accept, "record 2")
        _expect_inference_error(predictor, 400, b"1,2,3,4\n", PROTOBUF, predictor.default_accept, "magic")
        width = fitted.data.x_validation.shape[1]
        _expect_inference_error(predictor, 400, encode_request(np.ones((1, width + 3)), PROTOBUF), PROTOBUF,
                                predictor.default_accept, str(width + 3))
    _expect_inference_error(predictor, (204, 400), b"", checked[0], predictor.default_accept)
    return {"checked": checked, "skipped": skipped}


def check_determinism(case: Case, workdir: Path, fitted: Fitted | None = None) -> None:
    """Training twice with the same hyperparameters (and seed) gives a model that predicts identically."""
    first = _fitted(case, workdir, fitted)
    second = fit(case, workdir / "again", data=first.data)
    one = first.algorithm.load(first.model_dir)
    two = second.algorithm.load(second.model_dir)
    request_type = _request_type(one)
    body = encode_request(first.data.x_validation, request_type)
    assert body is not None
    for accept in one.accept_types:
        a, b = one.invoke(body, request_type, accept), two.invoke(body, request_type, accept)
        assert a == b, f"{first.algorithm.name}: two trainings with the same seed predict differently ({accept})"


def check_metrics_emitted(case: Case, workdir: Path, fitted: Fitted | None = None,
                          expected: tuple[str, ...] = ()) -> dict[str, float]:
    """The training log yields declared metrics through their regexes (at least one validation metric when
    the algorithm reads a validation channel), all finite; `expected` names must be among them."""
    from sagelab.training.metrics import extract_metrics

    fitted = _fitted(case, workdir, fitted)
    values = extract_metrics(fitted.log.splitlines(), fitted.algorithm.metrics)
    assert values, f"{fitted.algorithm.name}: no declared metric matches the training log:\n{fitted.log[-2000:]}"
    declared = {c.name for c in fitted.algorithm.channels}
    if "validation" in declared:
        assert any(name.startswith("validation:") for name in values), \
            f"{fitted.algorithm.name}: no validation metric in the log; found {sorted(values)}"
    elif "test" in declared and any(m.name.startswith("test:") for m in fitted.algorithm.metrics):
        assert any(name.startswith("test:") for name in values), \
            f"{fitted.algorithm.name}: no test metric in the log; found {sorted(values)}"
    assert all(math.isfinite(v) for v in values.values())
    missing = [name for name in expected if name not in values]
    assert not missing, f"{fitted.algorithm.name}: metrics {missing} not found; found {sorted(values)}"
    return values


TRAINED_CHECKS: tuple[Callable[..., Any], ...] = (
    check_train_and_predict_roundtrip, check_content_types, check_determinism, check_metrics_emitted)
