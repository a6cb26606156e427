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
from typing import Any

import numpy as np

from sagelab.algorithms.base import DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.hyperparameters import AUTO, Hyperparameter, HyperparameterSchema
from sagelab.algorithms.knn_model import KNNModel, KNNPredictor
from sagelab.errors import ValidationError
from sagelab.evaluation import metrics as model_quality

PREDICTOR_TYPES = ("classifier", "regressor")
INDEX_TYPES = ("faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ")
INDEX_METRICS = ("L2", "INNER_PRODUCT", "COSINE")
PQ_M_VALUES = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)


def _check_combinations(values: dict[str, Any]) -> None:
    kind, target = values["dimension_reduction_type"], values["dimension_reduction_target"]
    if kind is not None:
        if target is None:
            raise ValidationError("Hyperparameter 'dimension_reduction_target' is required when "
                                  f"dimension_reduction_type is {kind!r}: expected an integer from 1 to "
                                  f"feature_dim - 1 = {values['feature_dim'] - 1}.")
        if target >= values["feature_dim"]:
            raise ValidationError(f"Hyperparameter 'dimension_reduction_target': expected an integer from 1 to "
                                  f"feature_dim - 1 = {values['feature_dim'] - 1}, got {target}.")
    if values["index_type"] == "faiss.IVFPQ" and values["index_metric"] != "L2":
        raise ValidationError(f"Hyperparameter 'index_metric': {values['index_metric']} is not supported with "
                              "index_type faiss.IVFPQ; expected L2.")


SCHEMA = HyperparameterSchema((
    Hyperparameter("feature_dim", "int", required=True, min=1, help="Number of features of each record."),
    Hyperparameter("k", "int", required=True, min=1, help="Number of nearest neighbours."),
    Hyperparameter("predictor_type", "str", required=True, choices=PREDICTOR_TYPES,
                   help="classifier (majority label) or regressor (mean label)."),
    Hyperparameter("sample_size", "int", required=True, min=1,
                   help="Number of training records sampled into the index."),
    Hyperparameter("dimension_reduction_target", "int", None, min=1,
                   help="Dimension to reduce to (1 .. feature_dim-1); required with dimension_reduction_type."),
    Hyperparameter("dimension_reduction_type", "str", None, choices=("sign", "fjlt"),
                   help="sign: random sign projection; fjlt: sparse Johnson-Lindenstrauss projection. Default: none."),
    Hyperparameter("faiss_index_ivf_nlists", "int", AUTO, allow_auto=True, min=1,
                   help="IVF centroids; auto = sqrt(sample_size). Recorded only: the search is exact."),
    Hyperparameter("faiss_index_pq_m", "int", None, choices=PQ_M_VALUES,
                   help="Product-quantiser sub-vectors of faiss.IVFPQ. Recorded only: the search is exact."),
    Hyperparameter("index_metric", "str", "L2", choices=INDEX_METRICS,
                   help="L2 (Euclidean), INNER_PRODUCT or COSINE."),
    Hyperparameter("index_type", "str", "faiss.Flat", choices=INDEX_TYPES,
                   help="faiss index type; sagelab searches exactly whichever is named."),
    Hyperparameter("mini_batch_size", "int", 5000, min=1, help="Records per mini-batch."),
), checks=(_check_combinations,))


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
