"""K-Means' hyperparameter schema: the names, defaults and valid values SageMaker's `kmeans` accepts. The
`auto` values are resolved when training runs (see `kmeans.algorithm`).
"""

from __future__ import annotations

import json
from typing import Any

from sagelab.algorithms.hyperparameters import AUTO, Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

EVAL_METRICS = ("msd", "ssd")
INIT_METHODS = ("random", "kmeans++")


def _check_eval_metrics(values: dict[str, Any]) -> None:
    metrics = values["eval_metrics"]
    if isinstance(metrics, str):
        metrics = [metrics]
    if (not isinstance(metrics, list) or not metrics
            or any(not isinstance(m, str) or m.lower() not in EVAL_METRICS for m in metrics)):
        raise ValidationError('Hyperparameter \'eval_metrics\': expected a JSON list of "msd" and/or "ssd", such as '
                              f'["msd"] or ["msd", "ssd"], got {json.dumps(values["eval_metrics"])}.')
    values["eval_metrics"] = list(dict.fromkeys(m.lower() for m in metrics))


SCHEMA = HyperparameterSchema((
    Hyperparameter("feature_dim", "int", required=True, min=1, help="Number of features of each record."),
    Hyperparameter("k", "int", required=True, min=1, help="Number of clusters."),
    Hyperparameter("epochs", "int", 1, min=1, help="Passes over the training data."),
    Hyperparameter("eval_metrics", "json", ["msd"],
                   help='JSON list of the test metrics to report: "msd" and/or "ssd".'),
    Hyperparameter("extra_center_factor", "int", AUTO, allow_auto=True, min=1,
                   help="Training keeps k * extra_center_factor centres and reduces them to k at the end; auto = 10."),
    Hyperparameter("half_life_time_size", "int", 0, min=0,
                   help="Records after which an observation's weight halves; 0 = no decay."),
    Hyperparameter("init_method", "str", "random", choices=INIT_METHODS,
                   help="How the first mini-batch seeds the centres."),
    Hyperparameter("local_lloyd_init_method", "str", "kmeans++", choices=INIT_METHODS,
                   help="Seeding of the Lloyd runs that reduce the centres to k."),
    Hyperparameter("local_lloyd_max_iter", "int", 300, min=1, help="Iterations of each Lloyd run."),
    Hyperparameter("local_lloyd_num_trials", "int", AUTO, allow_auto=True, min=1,
                   help="Lloyd runs; the one with the least loss wins. auto = 10."),
    Hyperparameter("local_lloyd_tol", "float", 0.0001, min=0, max=1, help="Convergence tolerance of Lloyd's runs."),
    Hyperparameter("mini_batch_size", "int", 5000, min=1, help="Records per mini-batch."),
    Hyperparameter("force_dense", "bool", True,
                   help="Set by the SageMaker SDK; records are always used as dense vectors."),
), checks=(_check_eval_metrics,))
