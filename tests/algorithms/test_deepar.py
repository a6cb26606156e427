"""DeepAR: seasonal series with a planted daily cycle are forecast far better than the naive forecast, every
likelihood trains, the predictor answers AWS's shapes, bad records are named, and a real job -> endpoint cycle
works through boto3."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from builtin_flow import channel, deploy, image, invoke, metrics, model_error, put, train

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.deepar.algorithm import DeepAR
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit

ALGO = DeepAR()
DEEPAR = image("forecasting-deepar")
P = 24
FAST = {"context_length": "48", "prediction_length": str(P), "time_freq": "H", "epochs": "8",
        "mini_batch_size": "32", "learning_rate": "0.005", "num_cells": "24", "num_layers": "1",
        "num_eval_samples": "50", "likelihood": "gaussian"}


def seasonal(count: int = 10, length: int = 300, seed: int = 1, counts: bool = False) -> list[dict]:
    """Hourly series: a level per series, a daily sine of half that level, unit noise; category = level band."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        level = rng.uniform(5, 20)
        t = np.arange(length)
        y = level + 0.5 * level * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 2 * np.pi)) + rng.normal(size=length)
        if counts:
            y = rng.poisson(np.maximum(y, 0.1))
        out.append({"start": "2024-01-01 00:00:00", "target": [round(float(v), 3) for v in y], "cat": [i % 2]})
    return out


def lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def cut(records: list[dict]) -> list[dict]:
    return [{**r, "target": r["target"][:-P]} for r in records]


def train_direct(tmp_path, hp: dict[str, str], channels: dict[str, bytes], name: str = "a.json") -> TrainingContext:
    made = {}
    for channel_name, body in channels.items():
        path = tmp_path / channel_name / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        made[channel_name] = Channel(channel_name, "application/jsonlines", [path])
    ctx = TrainingContext(ALGO.hyperparameters.validate(hp), made, tmp_path / "model", tmp_path / "out",
                          io.StringIO())
    ALGO.train(ctx)
    return ctx


def score(log: str, name: str) -> float:
    return float(re.findall(rf"#test_score \(algo-1, {re.escape(name)}\): (\S+)", log)[-1])


@pytest.fixture(scope="module")
def seasonal_model(tmp_path_factory):
    records = seasonal()
    ctx = train_direct(tmp_path_factory.mktemp("deepar"), FAST, {"train": lines(cut(records)), "test": lines(records)})
    return ctx, records


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("forecasting-deepar",)
    values = ALGO.hyperparameters.validate({"context_length": "10", "prediction_length": "5", "time_freq": "5min",
                                            "epochs": "3", "cardinality": "[3, 4]", "test_quantiles": "[0.5, 0.9]"})
    assert (values["likelihood"], values["num_cells"], values["num_layers"], values["cardinality"],
            values["num_dynamic_feat"], values["test_quantiles"]) == ("student-T", 40, 2, [3, 4], "auto", [0.5, 0.9])
    for bad, name in (({"time_freq": "2Y"}, "time_freq"), ({"cardinality": "[0]"}, "cardinality"),
                      ({"num_dynamic_feat": "many"}, "num_dynamic_feat"), ({"test_quantiles": "[1.5]"},
                                                                            "test_quantiles")):
        with pytest.raises(ValidationError, match=f"'{name}'"):
            ALGO.hyperparameters.validate({"context_length": "10", "prediction_length": "5", "time_freq": "H",
                                           "epochs": "3", **bad})
    assert {m.name: m.direction for m in ALGO.metrics} == {
        "test:RMSE": "Minimize", "test:mean_wQuantileLoss": "Minimize", "train:final_loss": "Minimize"}


def test_a_planted_daily_cycle_is_forecast_better_than_naive(seasonal_model):
    ctx, records = seasonal_model
    log = ctx.log.getvalue()
    actual = np.array([r["target"][-P:] for r in records])
    naive = np.array([[r["target"][-P - 1]] * P for r in records])  # the last value, repeated
    naive_rmse = float(np.sqrt(np.mean((actual - naive) ** 2)))
    rmse = score(log, "RMSE")
    assert rmse < 0.6 * naive_rmse, (rmse, naive_rmse)
    assert 0 < score(log, "mean_wQuantileLoss") < 0.2
    assert re.search(r"#test_score \(algo-1, wQuantileLoss\[0.9\]\): \S+", log)
    assert re.search(r"#quality_metric: host=algo-1, train final_loss <loss>=\S+", log)


def test_predictor_answers_mean_quantiles_and_samples(seasonal_model, tmp_path):
    ctx, records = seasonal_model
    predictor = ALGO.load(ctx.model_dir)
    history = [{"start": r["start"], "target": r["target"][:-P], "cat": r["cat"]} for r in records[:3]]
    history[0]["target"][-5] = "NaN"
    history[1]["target"][-6] = None
    body = json.dumps({"instances": history, "configuration": {
        "num_samples": 30, "output_types": ["mean", "quantiles", "samples"], "quantiles": ["0.1", "0.5", "0.9"]}})
    payload, returned = predictor.invoke(body.encode(), "application/json", "application/json")
    predictions = json.loads(payload)["predictions"]
    assert returned == "application/json" and len(predictions) == 3
    first = predictions[0]
    assert list(first) == ["mean", "quantiles", "samples"] and len(first["mean"]) == P
    assert set(first["quantiles"]) == {"0.1", "0.5", "0.9"} and len(first["samples"]) == 30
    assert all(lo <= hi for lo, hi in zip(first["quantiles"]["0.1"], first["quantiles"]["0.9"], strict=True))
    # The same request gets the same answer, in a fresh process too.
    assert predictor.invoke(body.encode(), "application/json", "application/json")[0] == payload
    there = kit.predict_in_fresh_process(ALGO, ctx.model_dir, [(body.encode(), "application/json",
                                                                "application/json")], tmp_path)
    assert there == [(payload, "application/json")]
    kit._assert_no_pickle(ctx.model_dir)
    # JSON Lines (batch transform): the default configuration, mean and quantiles 0.1..0.9.
    out, returned = predictor.invoke(lines(history[:2]), "application/jsonlines", "application/jsonlines")
    rows = [json.loads(line) for line in out.decode().splitlines()]
    assert returned == "application/jsonlines" and len(rows) == 2 and list(rows[0]) == ["mean", "quantiles"]
    assert len(rows[0]["quantiles"]) == 9
    for body_, content_type, status, fragment in (
            (json.dumps({"instances": [{"start": "2024-01-01 00:00:00", "target": [1.0, 2.0]}]}), "application/json",
             400, 'Instance 1: "cat" must hold the 1 categorical feature(s)'),
            (json.dumps({"instances": [{"start": "2024-01-01 00:00:00", "target": [1.0], "cat": [5]}]}),
             "application/json", 400, '"cat"[0] is 5; the model knows categories 0..1'),
            (json.dumps({"instances": [{"start": "yesterday", "target": [1.0], "cat": [0]}]}), "application/json",
             400, 'Instance 1: "start" must be a timestamp'),
            (json.dumps({"instances": [{"start": "2024-01-01 00:00:00", "target": [1.0, "x"], "cat": [0]}]}),
             "application/json", 400, '"target"[1] must be a finite number'),
            (json.dumps({"instances": history[:1], "configuration": {"output_types": ["median"]}}),
             "application/json", 400, '"output_types"'),
            ('{"start": "2024-01-01 00:00:00"\n', "application/jsonlines", 400, "JSON Lines line 1"),
            ("{}", "text/csv", 415, "text/csv")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body_.encode(), content_type, "application/json")
        assert info.value.status == status and fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("likelihood", ["student-T", "negative-binomial", "beta", "deterministic-L1"])
def test_every_likelihood_trains_and_forecasts(tmp_path, likelihood):
    records = seasonal(count=4, length=200, counts=likelihood == "negative-binomial")
    if likelihood == "beta":
        records = [{**r, "target": [min(max(v / 40.0, 0.01), 0.99) for v in r["target"]]} for r in records]
    ctx = train_direct(tmp_path, {**FAST, "likelihood": likelihood, "epochs": "2", "num_eval_samples": "10"},
                       {"train": lines(cut(records)), "test": lines(records)})
    assert np.isfinite(score(ctx.log.getvalue(), "RMSE"))
    body = json.dumps({"instances": cut(records)[:1], "configuration": {"num_samples": 5,
                                                                         "output_types": ["samples"]}})
    samples = np.array(json.loads(ALGO.load(ctx.model_dir).invoke(body.encode(), "application/json",
                                                                   "application/json")[0])["predictions"][0]["samples"])
    assert samples.shape == (5, P) and np.isfinite(samples).all()
    if likelihood == "negative-binomial":
        assert (samples >= 0).all() and np.allclose(samples, np.round(samples))
    if likelihood == "beta":
        assert ((samples > 0) & (samples < 1)).all()
    if likelihood == "deterministic-L1":
        assert np.allclose(samples, samples[0])


def test_dynamic_features_are_required_at_inference_when_trained_with(tmp_path):
    records = seasonal(count=3, length=150)
    for r in records:
        r["dynamic_feat"] = [[float(i % 24 == 0) for i in range(len(r["target"]))]]
    train_records = [{**r, "target": r["target"][:-P], "dynamic_feat": [r["dynamic_feat"][0][:-P]]} for r in records]
    ctx = train_direct(tmp_path, {**FAST, "epochs": "1"}, {"train": lines(train_records)})
    predictor = ALGO.load(ctx.model_dir)
    ok = {**train_records[0], "dynamic_feat": records[0]["dynamic_feat"]}
    assert predictor.invoke(json.dumps({"instances": [ok]}).encode(), "application/json", "application/json")
    with pytest.raises(InferenceError, match=re.escape('"dynamic_feat"[0] has 126 values; expected 150')):
        predictor.invoke(json.dumps({"instances": [train_records[0]]}).encode(), "application/json",
                         "application/json")


@pytest.mark.parametrize("train_body, test_body, hp, fragment", [
    (b'{"start": "2024-01-01 00:00:00", "target": [1, 2]}\n{"start": "2024-01-01", "target": [1, 2}\n', None, {},
     "Channel 'train', file a.json, line 2: not valid JSON"),
    (b'{"target": [1, 2, 3]}\n', None, {}, 'line 1: the record has no "start" field'),
    (b'{"start": "2024-01-01 00:00:00", "target": [1, true]}\n', None, {}, '"target"[1] must be a finite number'),
    (b'{"start": "2024-01-01 00:00:00", "target": [1, 2], "cat": [-1]}\n', None, {}, '"cat" must be a list of'),
    (b'{"start": "2024-01-01 00:00:00", "target": [1, 2], "dynamic_feat": [[1]]}\n', None, {},
     '"dynamic_feat"[0] has 1 values; expected 2'),
    (b'{"start": "2024-01-01 00:00:00", "target": [1, 2], "cat": [0]}\n'
     b'{"start": "2024-01-01 00:00:00", "target": [1, 2]}\n', None, {}, 'line 2: "cat" has 0 values'),
    (b'{"start": "2024-01-01 00:00:00", "target": [1, -2]}\n', None, {"likelihood": "negative-binomial"},
     '"target"[1] is -2.0; likelihood negative-binomial'),
    (b'{"start": "2024-01-01 00:00:00", "target": [1, 2, 3]}\n', b'{"start": "2024-01-01 00:00:00", "target": [1, 2]}\n',
     {"prediction_length": "5"}, "Channel 'test', file a.json, line 1: \"target\" has 2 values; the test channel "
     "holds out the last prediction_length=5"),
])
def test_bad_records_fail_naming_the_record_and_field(tmp_path, train_body, test_body, hp, fragment):
    channels = {"train": train_body, **({"test": test_body} if test_body else {})}
    with pytest.raises(DataError, match=re.escape(fragment)):
        train_direct(tmp_path, {**FAST, "epochs": "1", **hp}, channels)


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


@pytest.mark.slow
def test_job_endpoint_and_a_failing_job(sm, s3, rt, bucket):
    records = seasonal(count=6, length=250, seed=4)
    train_uri = put(s3, bucket, "deepar/train/series.json", lines(cut(records)))
    test_uri = put(s3, bucket, "deepar/test/series.json", lines(records))
    desc = train(sm, bucket, DEEPAR, {**FAST, "epochs": "4"},
                 [channel("train", train_uri.rsplit("/", 1)[0] + "/", "application/jsonlines"),
                  channel("test", test_uri.rsplit("/", 1)[0] + "/", "application/jsonlines")])
    found = metrics(desc)
    assert found["test:RMSE"] > 0 and found["test:mean_wQuantileLoss"] > 0 and "train:final_loss" in found
    endpoint = deploy(sm, DEEPAR, desc)
    body = json.dumps({"instances": cut(records)[:2], "configuration": {"output_types": ["mean"]}})
    payload, returned = invoke(rt, endpoint, body, "application/json", "application/json")
    assert returned == "application/json" and [len(p["mean"]) for p in json.loads(payload)["predictions"]] == [P, P]
    status, message = model_error(rt, endpoint, json.dumps({"instances": [{"target": [1.0]}]}), "application/json")
    assert status == 400 and '"start"' in message
    sm.delete_endpoint(EndpointName=endpoint)
    short_uri = put(s3, bucket, "deepar/short/series.json", lines([{"start": "2024-01-01 00:00:00", "target": [1, 2]}]))
    failed = train(sm, bucket, DEEPAR, {**FAST, "epochs": "1"},
                   [channel("train", train_uri.rsplit("/", 1)[0] + "/", "application/jsonlines"),
                    channel("test", short_uri.rsplit("/", 1)[0] + "/", "application/jsonlines")], expect="Failed")
    assert "series.json, line 1: \"target\" has 2 values" in failed["FailureReason"]
