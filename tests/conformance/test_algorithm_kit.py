"""Every built-in algorithm passes the algorithm conformance kit.

Add an algorithm by adding `Case`s to `CASES`: each trains once per module (see `fitted`), then every
trained check runs against that artifact.
"""

from __future__ import annotations

import pytest

from sagelab.algorithms.blazingtext.algorithm import BlazingText
from sagelab.algorithms.catboost.algorithm import CatBoostClassification, CatBoostRegression
from sagelab.algorithms.deepar.algorithm import DeepAR
from sagelab.algorithms.factorization_machines.algorithm import FactorizationMachines
from sagelab.algorithms.image_classification.algorithm import ImageClassification
from sagelab.algorithms.ip_insights.algorithm import IPInsights
from sagelab.algorithms.kmeans.algorithm import KMeansAlgorithm
from sagelab.algorithms.knn.algorithm import KNNAlgorithm
from sagelab.algorithms.lda.algorithm import LDAAlgorithm
from sagelab.algorithms.lightgbm.algorithm import LightGBMClassification, LightGBMRegression
from sagelab.algorithms.linear_learner.algorithm import LinearLearner
from sagelab.algorithms.ntm.algorithm import NTMAlgorithm
from sagelab.algorithms.object2vec.algorithm import Object2Vec
from sagelab.algorithms.object_detection.algorithm import ObjectDetection
from sagelab.algorithms.pca.algorithm import PCAAlgorithm
from sagelab.algorithms.random_cut_forest.algorithm import RandomCutForest
from sagelab.algorithms.semantic_segmentation.algorithm import SemanticSegmentation
from sagelab.algorithms.seq2seq.algorithm import Seq2Seq
from sagelab.algorithms.xgboost.algorithm import XGBoostAlgorithm
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
    kit.Case("lightgbm-binary", LightGBMClassification, {"num_boost_round": "40", "metric": "auc"},
             kit.breast_cancer),
    kit.Case("lightgbm-regression", LightGBMRegression, {"num_boost_round": "30"}, kit.diabetes),
    kit.Case("catboost-multiclass", CatBoostClassification, {"iterations": "40", "learning_rate": "0.2"}, kit.iris),
    kit.Case("catboost-regression", CatBoostRegression, {"iterations": "40", "learning_rate": "0.2"},
             kit.diabetes),
    kit.Case("factorization-machines-binary", FactorizationMachines,
             {"feature_dim": "30", "num_factors": "4", "predictor_type": "binary_classifier", "epochs": "10",
              "mini_batch_size": "32", "bias_lr": "0.01", "linear_lr": "0.01", "factors_lr": "0.01"},
             kit.breast_cancer_standardized, training_content_type=kit.PROTOBUF),
    kit.Case("factorization-machines-regressor", FactorizationMachines,
             {"feature_dim": "10", "num_factors": "2", "predictor_type": "regressor", "epochs": "5",
              "mini_batch_size": "64", "bias_lr": "0.5", "linear_lr": "0.1"},
             kit.diabetes_standardized, training_content_type=kit.PROTOBUF),
    kit.Case("randomcutforest", RandomCutForest, {"feature_dim": "13", "num_trees": "50", "num_samples_per_tree": "64"},
             kit.wine_with_anomalies, training_content_type=kit.PROTOBUF),
    kit.Case("kmeans-iris", KMeansAlgorithm,
             {"k": "3", "feature_dim": "4", "mini_batch_size": "40", "epochs": "2", "eval_metrics": '["msd", "ssd"]',
              "force_dense": "True"},
             kit.iris),
    kit.Case("kmeans-wine-decay", KMeansAlgorithm,
             {"k": "4", "feature_dim": "13", "mini_batch_size": "30", "init_method": "kmeans++",
              "extra_center_factor": "3", "half_life_time_size": "20", "local_lloyd_num_trials": "2",
              "local_lloyd_init_method": "random"},
             kit.wine, training_content_type=kit.PROTOBUF),
    kit.Case("pca-regular", PCAAlgorithm,
             {"num_components": "5", "feature_dim": "30", "mini_batch_size": "100"},
             kit.breast_cancer),
    kit.Case("pca-randomized-uncentred", PCAAlgorithm,
             {"num_components": "3", "feature_dim": "10", "mini_batch_size": "100", "algorithm_mode": "randomized",
              "subtract_mean": "false", "extra_components": "4"},
             kit.diabetes),
    kit.Case("knn-classifier", KNNAlgorithm,
             {"k": "5", "feature_dim": "4", "predictor_type": "classifier", "sample_size": "100"},
             kit.iris, training_content_type=kit.PROTOBUF),
    kit.Case("knn-regressor-sign", KNNAlgorithm,
             {"k": "10", "feature_dim": "10", "predictor_type": "regressor", "sample_size": "300",
              "dimension_reduction_type": "sign", "dimension_reduction_target": "6"},
             kit.diabetes),
    kit.Case("knn-cosine-fjlt", KNNAlgorithm,
             {"k": "3", "feature_dim": "13", "predictor_type": "classifier", "sample_size": "1000",
              "index_metric": "COSINE", "dimension_reduction_type": "fjlt", "dimension_reduction_target": "8",
              "index_type": "faiss.IVFFlat"},
             kit.wine),
    kit.Case("lda-planted-topics", LDAAlgorithm,
             {"num_topics": "10", "feature_dim": "25", "mini_batch_size": "400", "max_iterations": "30"},
             kit.topic_documents, training_content_type=kit.PROTOBUF),
    kit.Case("ntm-planted-topics", NTMAlgorithm,
             {"num_topics": "10", "feature_dim": "25", "epochs": "5", "mini_batch_size": "64", "optimizer": "adam",
              "learning_rate": "0.01", "batch_norm": "true"},
             kit.topic_documents),
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
    "lightgbm-binary": ("validation:auc",),
    "lightgbm-regression": ("validation:rmse",),
    "catboost-multiclass": ("validation:MultiClass", "validation:Accuracy"),
    "catboost-regression": ("validation:RMSE", "validation:R2"),
    "factorization-machines-binary": ("train:progress", "train:throughput"),
    "randomcutforest": ("train:progress",),
    "kmeans-iris": ("train:msd", "test:msd", "test:ssd", "train:progress", "train:throughput"),
    "kmeans-wine-decay": ("train:msd", "test:msd"),
    "pca-regular": ("train:progress", "train:throughput"),
    "pca-randomized-uncentred": ("train:progress",),
    "knn-classifier": ("test:accuracy", "train:throughput"),
    "knn-regressor-sign": ("test:mse",),
    "knn-cosine-fjlt": ("test:accuracy",),
    "lda-planted-topics": ("test:pwll",),
    "ntm-planted-topics": ("train:total_loss", "validation:total_loss", "train:progress"),
}


#: Algorithms whose data the kit cannot train on (IP Insights reads entity,IP strings; BlazingText reads text;
#: DeepAR JSON time series; Object2Vec JSON token-id pairs; Seq2Seq token sequences with vocabularies; the image
#: algorithms images): static checks only; their trained checks (fresh-process predictions, no pickle,
#: determinism) live beside their own tests.
STATIC_ONLY = (IPInsights, BlazingText, DeepAR, Object2Vec, Seq2Seq, ImageClassification, ObjectDetection,
               SemanticSegmentation)


def _algorithms() -> dict[str, kit.Case]:
    """One case per algorithm, for the checks that need no training."""
    by_name: dict[str, kit.Case] = {}
    for case in CASES:
        by_name.setdefault(case.make_algorithm().name, case)
    for make in STATIC_ONLY:
        by_name.setdefault(make().name, kit.Case(make().name, make, {}, kit.iris))
    return by_name


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    cache: dict[str, kit.Fitted] = {}

    def get(case: kit.Case) -> kit.Fitted:
        if case.id not in cache:
            cache[case.id] = kit.fit(case, tmp_path_factory.mktemp(case.id))
        return cache[case.id]

    return get


#: A valid baseline where the minimal one is refused: these defaults ask for pretrained weights, which do not ship.
STATIC_BASELINES = {
    "object-detection": {"num_classes": "2", "num_training_samples": "10", "use_pretrained_model": "0"},
    "semantic-segmentation": {"num_classes": "2", "num_training_samples": "10", "use_pretrained_model": "False"},
}


@pytest.mark.parametrize("check", kit.STATIC_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(_algorithms()))
def test_static_conformance(name, check):
    algorithm = _algorithms()[name].make_algorithm()
    if check is kit.check_schema_rejects_bad_values and name in STATIC_BASELINES:
        check(algorithm, STATIC_BASELINES[name])
    else:
        check(algorithm)


@pytest.mark.parametrize("check", kit.TRAINED_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_trained_conformance(case, check, fitted, tmp_path):
    if check is kit.check_metrics_emitted:
        check(case, tmp_path, fitted(case), expected=EXPECTED_METRICS.get(case.id, ()))
    else:
        check(case, tmp_path, fitted(case))
