"""Every built-in algorithm passes the algorithm conformance kit.

Add an algorithm by adding `Case`s to `CASES`: each trains once per module (see `fitted`), then every
trained check runs against that artifact.
"""

from __future__ import annotations

import pytest

from sagelab.algorithms.linear_learner import LinearLearner
from sagelab.algorithms.xgboost_algorithm import XGBoostAlgorithm
from sagelab.testing import algorithm_kit as kit

CASES: list[kit.Case] = [
    kit.Case("xgboost-binary", XGBoostAlgorithm,
             {"num_round": "20", "objective": "binary:logistic", "eval_metric": "auc,logloss", "seed": "7"},
             kit.breast_cancer),
    kit.Case("xgboost-multiclass", XGBoostAlgorithm,
             {"num_round": "10", "objective": "multi:softprob", "num_class": "3", "max_depth": "3"},
             kit.iris),
    kit.Case("xgboost-regression", XGBoostAlgorithm,
             {"num_round": "15", "objective": "reg:squarederror", "eta": "0.2", "subsample": "0.8",
              "seed": "3"},
             kit.diabetes),
    kit.Case("linear-learner-binary", LinearLearner,
             {"predictor_type": "binary_classifier", "epochs": "10", "mini_batch_size": "100"},
             kit.breast_cancer),
    kit.Case("linear-learner-multiclass-recordio", LinearLearner,
             {"predictor_type": "multiclass_classifier", "num_classes": "3", "epochs": "10"},
             kit.iris, training_content_type=kit.PROTOBUF),
    kit.Case("linear-learner-regression", LinearLearner,
             {"predictor_type": "regressor", "epochs": "10", "loss": "huber_loss"}, kit.diabetes),
]

#: Metrics each case must report (beyond the kit's "at least one validation metric").
EXPECTED_METRICS = {
    "xgboost-binary": ("train:auc", "validation:auc", "validation:logloss"),
    "xgboost-multiclass": ("validation:mlogloss",),
    "xgboost-regression": ("validation:rmse",),
    "linear-learner-binary": ("train:objective_loss", "validation:objective_loss",
                              "validation:binary_classification_accuracy", "validation:roc_auc_score"),
    "linear-learner-multiclass-recordio": ("validation:multiclass_accuracy", "validation:macro_f_beta"),
    "linear-learner-regression": ("validation:rmse", "validation:mse", "validation:absolute_loss"),
}


def _algorithms() -> dict[str, kit.Case]:
    """One case per algorithm, for the checks that need no training."""
    by_name: dict[str, kit.Case] = {}
    for case in CASES:
        by_name.setdefault(case.make_algorithm().name, case)
    return by_name


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    cache: dict[str, kit.Fitted] = {}

    def get(case: kit.Case) -> kit.Fitted:
        if case.id not in cache:
            cache[case.id] = kit.fit(case, tmp_path_factory.mktemp(case.id))
        return cache[case.id]

    return get


@pytest.mark.parametrize("check", kit.STATIC_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(_algorithms()))
def test_static_conformance(name, check):
    check(_algorithms()[name].make_algorithm())


@pytest.mark.parametrize("check", kit.TRAINED_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_trained_conformance(case, check, fitted, tmp_path):
    if check is kit.check_metrics_emitted:
        check(case, tmp_path, fitted(case), expected=EXPECTED_METRICS.get(case.id, ()))
    else:
        check(case, tmp_path, fitted(case))
