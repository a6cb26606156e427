"""SageMaker's DeepAR forecasting (`forecasting-deepar` images): a probabilistic autoregressive LSTM in PyTorch.

The network, its windows and its sampling are in `deepar.network`; the records in `deepar.series`. How the
documented hyperparameters map:
- context_length, prediction_length, time_freq (which sets the calendar features and the seasonal lags:
  H feeds lags 24 and 168, D lag 7, W lag 52, M lag 12, min lag 60 / multiple, besides lags 1-3);
- likelihood: gaussian (Normal), student-T (StudentT), negative-binomial (NegativeBinomial, targets >= 0),
  beta (Beta, targets in (0, 1)), deterministic-L1 (a point forecast trained on the absolute error; its
  samples are all that point);
- cardinality auto: one embedding per `cat` feature, sized by the largest index seen + 1; ignore / "": the
  categories are not used. num_dynamic_feat auto: as many as the records carry; ignore / "": not used.
- num_cells, num_layers, dropout_rate (dropout between LSTM layers, in place of zoneout), embedding_dimension,
  learning_rate (Adam), mini_batch_size (windows per batch).
- An epoch is enough random windows to cover the training points once in prediction_length steps.
  early_stopping_patience stops after that many epochs without a better training loss; the best epoch's
  weights are kept.
- Seeded (torch generator 0): the same data and hyperparameters give the same model and the same sampled
  forecasts. Training uses every core from 200,000 training points, one thread below (`torch_threads`).

Test channel: for each series its last prediction_length points are held out and forecast from the rest with
num_eval_samples sample paths. Log lines as AWS prints them:
    #test_score (algo-1, RMSE): 13.9          (the mean forecast against the held-out points)
    #test_score (algo-1, wQuantileLoss[0.5]): 0.09   (2 * sum of quantile losses / sum |actual|)
    #test_score (algo-1, mean_wQuantileLoss): 0.08   (over test_quantiles)
    #quality_metric: host=algo-1, train final_loss <loss>=2.31
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import ChannelSpec, DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.deepar.hyperparameters import SCHEMA, parse_frequency
from sagelab.algorithms.deepar.series import JSON_TYPES, PARQUET, Series, lags_for, read_channel
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.torch_threads import torch_threads

SEED = 0
#: training points from which torch uses every core (below: one thread, see torch_threads)
PARALLEL_POINTS = 200_000
CONTENT_TYPES = (*JSON_TYPES, PARQUET)


def metric_definitions() -> tuple[MetricDefinition, ...]:
    return (MetricDefinition("test:RMSE", r"#test_score \(algo-1, RMSE\): (\S+)"),
            MetricDefinition("test:mean_wQuantileLoss", r"#test_score \(algo-1, mean_wQuantileLoss\): (\S+)"),
            MetricDefinition("train:final_loss", onep.quality_metric_regex("train", "final_loss")))


class DeepAR:
    name = "forecasting-deepar"
    image_repositories = ("forecasting-deepar",)
    hyperparameters = SCHEMA
    channels = (ChannelSpec("train", required=True, content_types=CONTENT_TYPES,
                            default_content_type="application/jsonlines"),
                ChannelSpec("test", content_types=CONTENT_TYPES, default_content_type="application/jsonlines"))
    metrics = metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        _Job(ctx, hp).run()

    def load(self, model_dir: Path) -> Any:
        from sagelab.algorithms.deepar.predictor import DeepARPredictor

        return DeepARPredictor(Path(model_dir))


def resolve_features(hp: dict[str, Any], train: list[Series], test: list[Series]) -> tuple[list[int], int]:
    """(cardinality per cat feature, number of dynamic features) the model uses; checks every record."""
    everything = train + test
    cardinality: list[int]
    if hp["cardinality"] in ("ignore", ""):
        cardinality = []
    else:
        widths = {len(s.cat) for s in everything}
        if len(widths) > 1:
            first = everything[0]
            odd = next(s for s in everything if len(s.cat) != len(first.cat))
            raise DataError(f'{odd.where}: "cat" has {len(odd.cat)} values, but {first.where} has {len(first.cat)}; '
                            "every series needs the same number of categorical features.")
        width = widths.pop()
        if hp["cardinality"] == "auto":
            cardinality = [max(s.cat[i] for s in everything) + 1 for i in range(width)]
        else:
            cardinality = list(hp["cardinality"])
            if width != len(cardinality):
                raise DataError(f'{everything[0].where}: "cat" has {width} values, but the cardinality '
                                f"hyperparameter lists {len(cardinality)}.")
            for s in everything:
                for i, (c, limit) in enumerate(zip(s.cat, cardinality, strict=True)):
                    if c >= limit:
                        raise DataError(f'{s.where}: "cat"[{i}] is {c}; cardinality[{i}] is {limit}, so it must be '
                                        f"0..{limit - 1}.")
    dynamic: int
    if hp["num_dynamic_feat"] in ("ignore", ""):
        dynamic = 0
    else:
        counts = [0 if s.dynamic_feat is None else s.dynamic_feat.shape[0] for s in everything]
        dynamic = counts[0] if hp["num_dynamic_feat"] == "auto" else hp["num_dynamic_feat"]
        for s, count in zip(everything, counts, strict=True):
            if count != dynamic:
                raise DataError(f'{s.where}: "dynamic_feat" has {count} features; expected {dynamic} (as '
                                + ("num_dynamic_feat says)." if hp["num_dynamic_feat"] != "auto"
                                   else "the first series has)."))
    return cardinality, dynamic


def check_support(series: list[Series], likelihood: str) -> None:
    for s in series:
        observed = s.target[~np.isnan(s.target)]
        if likelihood == "negative-binomial" and (observed < 0).any():
            i = int(np.flatnonzero(s.target < 0)[0])
            raise DataError(f'{s.where}: "target"[{i}] is {float(s.target[i])!r}; likelihood negative-binomial models '
                            "counts (values >= 0).")
        if likelihood == "beta" and ((observed <= 0) | (observed >= 1)).any():
            i = int(np.flatnonzero((s.target <= 0) | (s.target >= 1))[0])
            raise DataError(f'{s.where}: "target"[{i}] is {float(s.target[i])!r}; likelihood beta models values in (0, 1).')


class _Job:
    def __init__(self, ctx: TrainingContext, hp: dict[str, Any]):
        self.ctx, self.hp = ctx, hp

    def run(self) -> None:
        ctx, hp = self.ctx, self.hp
        started = time.perf_counter()
        train = read_channel("train", ctx.channels["train"].files)
        test = read_channel("test", ctx.channels["test"].files) if "test" in ctx.channels else []
        horizon = hp["prediction_length"]
        for s in test:
            if len(s.target) <= horizon:
                raise DataError(f'{s.where}: "target" has {len(s.target)} values; the test channel holds out the last '
                                f"prediction_length={horizon}, so each test series needs more than {horizon}.")
        cardinality, dynamic = resolve_features(hp, train, test)
        check_support(train + test, hp["likelihood"])
        points = int(sum(len(s.target) for s in train))
        ctx.print(f"Read {len(train)} training series ({points} points) and {len(test)} test series in "
                  f"{time.perf_counter() - started:.3f} s.")
        if points < 300:
            ctx.print(f"The training series hold {points} points; AWS recommends at least 300.")
        with torch_threads(points >= PARALLEL_POINTS):
            self.fit(train, test, cardinality, dynamic, points)

    def fit(self, train: list[Series], test: list[Series], cardinality: list[int], dynamic: int, points: int) -> None:
        import torch

        from sagelab.algorithms.deepar import network as net

        ctx, hp = self.ctx, self.hp
        horizon, context = hp["prediction_length"], hp["context_length"]
        frequency = parse_frequency(hp["time_freq"])
        lags = lags_for(*frequency)
        from sagelab.algorithms.deepar.series import time_features

        settings = {"frequency": list(frequency), "lags": lags, "context_length": context, "prediction_length": horizon,
                    "likelihood": hp["likelihood"], "cardinality": cardinality, "num_dynamic_feat": dynamic,
                    "num_cells": hp["num_cells"], "num_layers": hp["num_layers"], "dropout_rate": hp["dropout_rate"],
                    "embedding_dimension": hp["embedding_dimension"],
                    "num_time_features": int(time_features(train[0].start, 1, *frequency).shape[0])}
        torch.manual_seed(SEED)
        generator = torch.Generator().manual_seed(SEED)
        rng = np.random.default_rng(SEED)
        model = net.DeepARNet({**settings, "frequency": frequency})
        windows = net.Windows({**settings, "frequency": frequency})
        optimizer = torch.optim.Adam(model.parameters(), lr=hp["learning_rate"])
        batch = hp["mini_batch_size"]
        batches = max(1, math.ceil(points / (batch * horizon)))
        lengths = np.array([len(s.target) for s in train], dtype=np.float64)
        weights = lengths / lengths.sum()
        ctx.print(f"Lags {lags}; {batches} batches of {batch} windows per epoch; {torch.get_num_threads()} threads.")
        best: tuple[float, dict[str, Any], int] | None = None
        waited = 0
        throughput = onep.Throughput()
        loss_value = math.nan
        for epoch in range(hp["epochs"]):
            model.train()
            total = 0.0
            for _ in range(batches):
                picks = rng.choice(len(train), size=batch, p=weights)
                made = []
                for index in picks:
                    s = train[index]
                    end = int(rng.integers(min(len(s.target), horizon + 1), len(s.target) + 1))
                    made.append(windows.window(s, end, context, context + horizon))
                loss = net.window_loss(model, net.stack(made))
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                optimizer.step()
                total += float(loss.detach())
            loss_value = total / batches
            if not math.isfinite(loss_value):
                raise DataError(f"Training diverged in epoch {epoch} (loss {loss_value}): lower learning_rate.")
            onep.quality_metric(ctx, f"epoch={epoch}, train", "loss", loss_value)
            onep.progress_metric(ctx, epoch + 1, hp["epochs"])
            if best is None or loss_value < best[0]:
                best, waited = (loss_value, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch), 0
            else:
                waited += 1
                patience = hp["early_stopping_patience"]
                if patience is not None and waited >= patience:
                    ctx.print(f"Early stopping after epoch {epoch}: no better loss than {best[0]:.6f} (epoch {best[2]}) "
                              f"in {waited} epochs.")
                    break
        throughput.report(ctx, (epoch + 1) * batches * batch)
        assert best is not None
        model.load_state_dict(best[1])
        model.eval()
        onep.quality_metric(ctx, "train", "final_loss", best[0])
        if test:
            self.score(model, windows, test, generator)
        else:
            ctx.print("Test data is not provided.")
        net.save(model, ctx.model_dir, {"trained_epochs": best[2] + 1})

    def score(self, model: Any, windows: Any, test: list[Series], generator: Any) -> None:
        from sagelab.algorithms.deepar import network as net

        hp, ctx = self.hp, self.ctx
        horizon = hp["prediction_length"]
        history = [Series(s.start, s.target[:-horizon], s.cat, s.dynamic_feat, s.where) for s in test]
        samples = net.sample_paths(model, windows, history, hp["num_eval_samples"], generator)
        actual = np.stack([s.target[-horizon:] for s in test])
        seen = ~np.isnan(actual)
        if not seen.any():
            ctx.print("Every held-out test point is missing: no test scores.")
            return
        mean = samples.mean(axis=1)
        rmse = float(np.sqrt(np.mean((mean[seen] - actual[seen]) ** 2)))
        ctx.print(f"#test_score (algo-1, RMSE): {rmse!r}")
        onep.quality_metric(ctx, "test", "RMSE", rmse)
        denominator = float(np.abs(actual[seen]).sum()) or 1.0
        losses = []
        for q in hp["test_quantiles"]:
            forecast = np.quantile(samples, q, axis=1)
            value = 2.0 * net.quantile_loss(actual[seen], forecast[seen], q) / denominator
            losses.append(value)
            ctx.print(f"#test_score (algo-1, wQuantileLoss[{q}]): {value!r}")
        mean_loss = float(np.mean(losses))
        ctx.print(f"#test_score (algo-1, mean_wQuantileLoss): {mean_loss!r}")
        onep.quality_metric(ctx, "test", "mean_wQuantileLoss", mean_loss)
