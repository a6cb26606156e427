"""SageMaker's K-Means (`kmeans` images): web-scale mini-batch k-means, then a local Lloyd reduction.

As on AWS, training streams the `train` channel in mini-batches of `mini_batch_size` records for `epochs`
passes, maintaining K = k * extra_center_factor centres (scikit-learn's `MiniBatchKMeans.partial_fit`; the
first mini-batch initialises them with `init_method`), then "shrinks" the K centres into k: Lloyd's algorithm
(scikit-learn's `KMeans`) on the centres weighted by how many records each one holds, `local_lloyd_num_trials`
times from `local_lloyd_init_method` seeds, keeping the trial with the least mean square distance.

How the documented hyperparameters map:
- extra_center_factor auto = 10 (what real jobs log: "'extra_center_factor' was set to 'auto', evaluated to 10");
  K never exceeds the number of training records.
- local_lloyd_num_trials auto = 10 (real jobs log ten "local kmeans attempt"s).
- half_life_time_size h > 0: a record's weight halves after h more records are seen. Giving the record at
  stream position t the weight 2^(t/h) is the same thing up to a common factor; the running per-centre
  weights are rescaled now and then so the numbers stay finite.
- local_lloyd_tol is passed to `KMeans(tol=...)`, which measures convergence as the relative movement of the
  centres rather than the relative change of the loss.
- There is no seed hyperparameter: training is deterministic (random_state 0).

Metrics (names and lines as real jobs print them): `train msd` is the mean square distance of the winning
reduction; with a `test` channel, each of `eval_metrics` (msd = mean, ssd = sum of the squared Euclidean
distances of the test records to their closest centre) as `#quality_metric: host=algo-1, test msd <loss>=...`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.hyperparameters import AUTO
from sagelab.algorithms.kmeans.hyperparameters import SCHEMA
from sagelab.algorithms.kmeans.model import KMeansModel
from sagelab.algorithms.kmeans.predictor import KMeansPredictor

AUTO_EXTRA_CENTER_FACTOR = 10
AUTO_LLOYD_TRIALS = 10
#: Rescale the running centre weights when a decay weight would pass 2^this (float32 overflows at 2^128).
_DECAY_MAX_EXPONENT = 60.0


def metric_definitions() -> tuple[MetricDefinition, ...]:
    return (
        *onep.progress_and_throughput_metrics(),
        MetricDefinition("train:msd", onep.quality_metric_regex("train", "msd")),
        MetricDefinition("test:msd", onep.quality_metric_regex("test", "msd")),
        MetricDefinition("test:ssd", onep.quality_metric_regex("test", "ssd")),
    )


class KMeansAlgorithm:
    name = "kmeans"
    image_repositories = ("kmeans",)
    hyperparameters = SCHEMA
    channels = onep.train_and_test_channels()
    metrics = metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        _Job(ctx, hp).run()

    def load(self, model_dir: Path) -> KMeansPredictor:
        return KMeansPredictor(KMeansModel.load(Path(model_dir)))


class _Job:
    def __init__(self, ctx: TrainingContext, hp: dict[str, Any]):
        self.ctx = ctx
        self.hp = hp
        self.k: int = hp["k"]

    def run(self) -> None:
        hp, ctx = self.hp, self.ctx
        started = time.perf_counter()
        train = onep.read_channel(ctx, "train", feature_dim=hp["feature_dim"], label_size=1)
        assert train is not None  # a required channel
        x = train[0]
        ctx.print(f"Read {x.shape[0]} training records of {x.shape[1]} features in "
                  f"{time.perf_counter() - started:.3f} s.")
        if x.shape[0] < self.k:
            raise DataError(f"k={self.k} clusters need at least {self.k} training records; the train channel has "
                            f"{x.shape[0]}.")
        test = onep.read_channel(ctx, "test", feature_dim=hp["feature_dim"], label_size=1)

        started = time.perf_counter()
        centres, weights = self.stream(x)
        ctx.print(f"Mini-batch k-means over {len(centres)} centres took {time.perf_counter() - started:.3f} s.")
        started = time.perf_counter()
        centroids, train_msd = self.shrink(centres, weights)
        ctx.print(f"Shrinking took {time.perf_counter() - started:.3f} s.")
        onep.quality_metric(ctx, "train", "msd", train_msd)

        model = KMeansModel(centroids, info={"hyperparameters": _jsonable(hp), "train_records": int(x.shape[0])})
        if test is None:
            ctx.print("Test data is not provided.")
        else:
            _, distances = model.assign(test[0])
            squared = distances.astype(np.float64) ** 2
            for name in hp["eval_metrics"]:
                value = float(squared.mean() if name == "msd" else squared.sum())
                onep.quality_metric(ctx, "test", name, value)
        model.save(ctx.model_dir)

    # -- web-scale mini-batch k-means over K centres ----------------------------------------------------------

    def centre_count(self, rows: int) -> int:
        factor = self.hp["extra_center_factor"]
        if factor == AUTO:
            factor = AUTO_EXTRA_CENTER_FACTOR
            self.ctx.print(f"'extra_center_factor' was set to 'auto', evaluated to {factor}.")
        return max(self.k, min(self.k * int(factor), rows))

    def stream(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """K centres trained by mini-batch k-means, with the number of training records each one is closest to."""
        from sklearn.cluster import MiniBatchKMeans

        hp, ctx = self.hp, self.ctx
        rows = x.shape[0]
        centres = self.centre_count(rows)
        batch = hp["mini_batch_size"]
        first = max(batch, centres)
        if first > batch:
            ctx.print(f"The first mini-batch must hold the {centres} centres it initialises: it takes {first} "
                      f"records instead of mini_batch_size={batch}.")
        elif batch > rows:
            ctx.print(f"Batch size {batch} is bigger than the first batch data. Effective batch size used to "
                      f"initialize is {rows}")
        model = MiniBatchKMeans(n_clusters=centres, init="k-means++" if hp["init_method"] == "kmeans++" else "random",
                                batch_size=batch, n_init=1, random_state=0, reassignment_ratio=0.0,
                                compute_labels=False, max_no_improvement=None, tol=0.0)
        half_life = hp["half_life_time_size"]
        seen = 0  # records streamed so far, over every epoch
        offset = 0.0  # exponent already folded into the model's running weights
        throughput = onep.Throughput()
        for epoch in range(hp["epochs"]):
            start = 0
            while start < rows:
                stop = min(rows, start + (first if seen == 0 else batch))
                chunk = x[start:stop]
                weights = None
                if half_life > 0:
                    exponent = (seen + np.arange(stop - start)) / half_life - offset
                    if exponent[-1] > _DECAY_MAX_EXPONENT:
                        shift = float(np.ceil(exponent[-1])) - _DECAY_MAX_EXPONENT / 2
                        if hasattr(model, "_counts"):  # sklearn's running per-centre weights
                            model._counts *= np.exp2(-shift).astype(model._counts.dtype)
                        offset += shift
                        exponent -= shift
                    # Floored at 2^-100 (still a float32): no weight is exactly 0, which seeding would refuse.
                    weights = np.exp2(np.maximum(exponent, -100.0))
                model.partial_fit(chunk, sample_weight=weights)
                seen += stop - start
                start = stop
            onep.progress_metric(ctx, epoch + 1, hp["epochs"])
        throughput.report(ctx, seen)
        found = model.cluster_centers_.astype(np.float64)
        counts = np.bincount(model.predict(x), minlength=centres).astype(np.float64)
        return found, counts

    # -- reduction to k centres ---------------------------------------------------------------------------------

    def shrink(self, centres: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
        """Lloyd's algorithm on the weighted centres, several seeds; the k centroids with the least mean square
        distance, and that distance."""
        from sklearn.cluster import KMeans

        hp, ctx = self.hp, self.ctx
        used = weights > 0
        if used.sum() >= self.k:
            centres, weights = centres[used], weights[used]
        else:  # fewer distinct places than k: keep the empty centres too, with a negligible weight
            weights = np.where(used, weights, 1e-12)
        ctx.print(f"shrinking {len(centres)} centers into {self.k}")
        trials = AUTO_LLOYD_TRIALS if hp["local_lloyd_num_trials"] == AUTO else hp["local_lloyd_num_trials"]
        init = "k-means++" if hp["local_lloyd_init_method"] == "kmeans++" else "random"
        seeds = np.random.default_rng(0).integers(0, 2**31 - 1, size=trials)
        total = float(weights.sum())
        best: tuple[float, np.ndarray] | None = None
        for attempt, seed in enumerate(seeds):
            fitted = KMeans(n_clusters=self.k, init=init, n_init=1, max_iter=hp["local_lloyd_max_iter"],
                            tol=hp["local_lloyd_tol"], random_state=int(seed)).fit(centres, sample_weight=weights)
            msd = float(fitted.inertia_) / total
            ctx.print(f"local kmeans attempt #{attempt}. Current mean square distance {msd:.6f}")
            if best is None or msd < best[0]:
                best = (msd, fitted.cluster_centers_)
        assert best is not None
        msd, centroids = best
        ctx.print(f"finished shrinking process. Mean Square Distance = {msd:.6f}")
        return centroids.astype(np.float32), msd if math.isfinite(msd) else 0.0


def _jsonable(hp: dict[str, Any]) -> dict[str, Any]:
    return {key: value if isinstance(value, (str, int, float, bool, list, type(None))) else str(value)
            for key, value in hp.items()}
