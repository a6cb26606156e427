"""SageMaker's k-NN (`knn` images): an index of labelled training records, queried for the k nearest.

Training samples `sample_size` records of the `train` channel (all of them when there are fewer; a seeded
uniform sample otherwise), optionally reduces their dimension, and stores them with their labels. Inference
finds each query's k nearest stored records and answers the majority label (classifier; a tie goes to the tied
label with the nearest neighbour) or the mean label (regressor).

How the documented hyperparameters map:
- dimension_reduction_type sign: scikit-learn's `SparseRandomProjection(density=1)`, a dense random projection
  whose entries are +-1/sqrt(target) (random signs). fjlt: `SparseRandomProjection(density="auto")`, a very
  sparse Johnson-Lindenstrauss projection: the same distance-preserving guarantee as the fast JL transform,
  without its Hadamard preconditioning.
- index_type faiss.Flat, faiss.IVFFlat and faiss.IVFPQ all search exactly: the IVF and PQ indexes are
  approximations faiss makes for speed, so results here are what faiss.Flat returns (at least as accurate as
  AWS's IVF/PQ answers). faiss_index_ivf_nlists and faiss_index_pq_m are validated and recorded, nothing more.
- index_metric L2: Euclidean distance (scikit-learn `NearestNeighbors`); `distances` are Euclidean, ascending.
  INNER_PRODUCT and COSINE rank by the inner product (of unit vectors for COSINE), largest first, and the
  verbose `distances` carry those similarities, nearest first, as faiss reports them.

Metrics, as AWS prints them with a `test` channel: `#test_score (algo-1) : ('accuracy', 0.98)` (classifier) or
`('mse', 0.013)` (regressor).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sagelab.algorithms.base import DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.knn.hyperparameters import SCHEMA
from sagelab.algorithms.knn.model import KNNModel
from sagelab.algorithms.knn.predictor import KNNPredictor
from sagelab.evaluation import metrics as model_quality


def _test_score(name: str) -> str:
    return rf"#test_score \(\S+\) : \('{name}', ([^)\s]+)\)"


def metric_definitions() -> tuple[MetricDefinition, ...]:
    return (
        *onep.progress_and_throughput_metrics(),
        MetricDefinition("test:accuracy", _test_score("accuracy"), "Maximize"),
        MetricDefinition("test:mse", _test_score("mse")),
    )


class KNNAlgorithm:
    name = "knn"
    image_repositories = ("knn",)
    hyperparameters = SCHEMA
    channels = onep.train_and_test_channels()
    metrics = metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        throughput = onep.Throughput()
        train = onep.read_channel(ctx, "train", feature_dim=hp["feature_dim"], label_size=1, label_required=True)
        assert train is not None and train[1] is not None  # a required, labelled channel
        x, y = train
        ctx.print(f"Read {x.shape[0]} training records in {time.perf_counter() - throughput.started:.3f} s.")
        test = onep.read_channel(ctx, "test", feature_dim=hp["feature_dim"], label_size=1, label_required=True)

        rows, size = x.shape[0], hp["sample_size"]
        if rows > size:
            keep = np.sort(np.random.default_rng(0).choice(rows, size=size, replace=False))
            x, y = x[keep], y[keep]
            ctx.print(f"Sampled {size} of the {rows} training records (sample_size={size}).")
        else:
            ctx.print(f"Using all {rows} training records (sample_size={size}).")
        if hp["k"] > x.shape[0]:
            raise DataError(f"k={hp['k']} neighbours cannot be found among {x.shape[0]} training records; lower k "
                            "or provide more records.")
        if hp["index_type"] != "faiss.Flat":
            ctx.print(f"index_type {hp['index_type']}: sagelab searches exactly, as faiss.Flat does.")
        projection = None
        if hp["dimension_reduction_type"] is not None:
            import scipy.sparse as sp
            from sklearn.random_projection import SparseRandomProjection

            density = 1.0 if hp["dimension_reduction_type"] == "sign" else "auto"
            projection = sp.csr_matrix(SparseRandomProjection(
                n_components=hp["dimension_reduction_target"], density=density, random_state=0).fit(x).components_)
            ctx.print(f"Reduced the dimension from {x.shape[1]} to {projection.shape[0]} "
                      f"({hp['dimension_reduction_type']}).")
        model = KNNModel.build(x, y.astype(np.float32), k=hp["k"], predictor_type=hp["predictor_type"],
                               index_metric=hp["index_metric"], projection=projection,
                               info={"hyperparameters": {key: value for key, value in hp.items()
                                                         if isinstance(value, (str, int, float, bool))},
                                     "train_records": int(rows)})
        onep.progress_metric(ctx, 1, 1)
        throughput.report(ctx, rows)
        if test is None:
            ctx.print("Test data is not provided.")
        else:
            started = time.perf_counter()
            predicted = model.predict(test[0])[0].astype(np.float64)
            ctx.print(f"Answered {len(predicted)} test records in {time.perf_counter() - started:.3f} s.")
            truth = test[1].astype(np.float32).astype(np.float64)
            if hp["predictor_type"] == "classifier":
                accuracy = model_quality.accuracy(truth, predicted)
                ctx.print(f"#test_score ({onep.HOST}) : ('accuracy', {accuracy!r})")
            else:
                mse = model_quality.regression(truth, predicted)["mse"]
                ctx.print(f"#test_score ({onep.HOST}) : ('mse', {mse!r})")
        model.save(ctx.model_dir)

    def load(self, model_dir: Path) -> KNNPredictor:
        return KNNPredictor(KNNModel.load(Path(model_dir)))
