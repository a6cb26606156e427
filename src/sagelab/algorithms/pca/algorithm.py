"""SageMaker's PCA (`pca` images): principal components of the `train` channel.

`algorithm_mode`:
- regular: exact. With subtract_mean (the default) scikit-learn's `PCA` solves it from the covariance matrix
  (`svd_solver="covariance_eigh"`, what AWS's streaming covariance accumulation amounts to) when there are more
  records than features, else by a full SVD. Without subtract_mean, the eigen-decomposition of X^T X (scipy).
- randomized: scikit-learn's randomized SVD (`PCA(svd_solver="randomized")`, or `TruncatedSVD` without
  subtract_mean) with `extra_components` oversampling columns (-1 = max(10, num_components), as documented).

The model keeps the components ordered from the smallest singular value to the largest, as AWS's artifact
does, and inference answers the projections in that same order (clients take the last columns as the top
components). `mini_batch_size` is accepted (the SDK always sends it) but the solvers see the whole matrix.

PCA documents no quality metric; jobs log `#progress_metric` and `#throughput_metric` like real ones, plus
the explained variance ratio as a plain line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import DataError, TrainingContext
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.pca.hyperparameters import SCHEMA
from sagelab.algorithms.pca.model import PCAModel
from sagelab.algorithms.pca.predictor import PCAPredictor


class PCAAlgorithm:
    name = "pca"
    image_repositories = ("pca",)
    hyperparameters = SCHEMA
    channels = onep.train_and_test_channels()
    metrics = onep.progress_and_throughput_metrics()

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        started = time.perf_counter()
        train = onep.read_channel(ctx, "train", feature_dim=hp["feature_dim"], label_size=1)
        assert train is not None  # a required channel
        x = train[0]
        ctx.print(f"Read {x.shape[0]} training records in {time.perf_counter() - started:.3f} s.")
        test = onep.read_channel(ctx, "test", feature_dim=hp["feature_dim"], label_size=1)
        wanted = hp["num_components"]
        if wanted > min(x.shape):
            raise DataError(f"num_components={wanted} needs at least {wanted} training records; the train channel "
                            f"has {x.shape[0]}.")
        ctx.print(f"{x.shape[1]} feature(s) found in 'data'.")
        throughput = onep.Throughput()
        started = time.perf_counter()
        mean, components, singular, explained = fit_components(x, hp)
        ctx.print(f"Computed {wanted} component(s) ({hp['algorithm_mode']} mode) in "
                  f"{time.perf_counter() - started:.3f} s.")
        onep.progress_metric(ctx, 1, 1)
        throughput.report(ctx, x.shape[0])
        order = np.argsort(singular, kind="stable")  # ascending, as AWS stores them
        model = PCAModel(components[order].T, singular[order], mean,
                         info={"hyperparameters": {k: v for k, v in hp.items()
                                                   if isinstance(v, (str, int, float, bool))},
                               "train_records": int(x.shape[0])})
        ctx.print(f"The {wanted} component(s) explain {explained:.6f} of the training data's "
                  f"{'variance' if mean is not None else 'sum of squares'}.")
        if test is None:
            ctx.print("Test data is not provided.")
        else:
            residual = test[0] - (0 if mean is None else mean)
            kept = residual @ model.v
            error = float(np.mean(np.sum(residual.astype(np.float64) ** 2, axis=1)
                                  - np.sum(kept.astype(np.float64) ** 2, axis=1)))
            ctx.print(f"Test data: mean squared reconstruction error {error!r} over {test[0].shape[0]} records.")
        model.save(ctx.model_dir)

    def load(self, model_dir: Path) -> PCAPredictor:
        return PCAPredictor(PCAModel.load(Path(model_dir)))


def fit_components(x: np.ndarray, hp: dict[str, Any]) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, float]:
    """(mean or None, components as rows (num_components x feature_dim), singular values largest first, the
    share of the variance (of the sum of squares without subtract_mean) they explain)."""
    wanted = hp["num_components"]
    rows, features = x.shape
    if hp["algorithm_mode"] == "randomized":
        extra = max(10, wanted) if hp["extra_components"] == -1 else hp["extra_components"]
        if hp["subtract_mean"]:
            from sklearn.decomposition import PCA

            fitted = PCA(n_components=wanted, svd_solver="randomized", n_oversamples=extra, random_state=0).fit(x)
            return (fitted.mean_.astype(np.float32), fitted.components_, fitted.singular_values_,
                    float(fitted.explained_variance_ratio_.sum()))
        from sklearn.decomposition import TruncatedSVD

        if wanted >= features:
            raise DataError(f"Randomized PCA without subtract_mean needs num_components < feature_dim = {features}; "
                            f"got {wanted}. Use algorithm_mode=regular.")
        svd = TruncatedSVD(n_components=wanted, algorithm="randomized", n_oversamples=extra,
                           random_state=0).fit(x)
        squares = float(np.linalg.norm(x)) ** 2
        return (None, svd.components_, svd.singular_values_,
                float(np.sum(svd.singular_values_.astype(np.float64) ** 2) / squares) if squares else 0.0)
    if hp["subtract_mean"]:
        from sklearn.decomposition import PCA

        solver = "covariance_eigh" if rows >= features else "full"
        fitted = PCA(n_components=wanted, svd_solver=solver).fit(x)
        return (fitted.mean_.astype(np.float32), fitted.components_, fitted.singular_values_,
                float(fitted.explained_variance_ratio_.sum()))
    from scipy.linalg import eigh

    gram = x.T.astype(np.float64) @ x.astype(np.float64)
    values, vectors = eigh(gram, subset_by_index=(features - wanted, features - 1))
    values, vectors = values[::-1], vectors[:, ::-1]
    # A deterministic sign: the largest-magnitude loading of each component is positive (as sklearn does).
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(wanted)])
    signs[signs == 0] = 1.0
    squares = float(np.trace(gram))
    return (None, (vectors * signs).T, np.sqrt(np.clip(values, 0.0, None)),
            float(np.clip(values, 0.0, None).sum() / squares) if squares else 0.0)
