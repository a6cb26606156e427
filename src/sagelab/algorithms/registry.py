"""Which algorithm a `TrainingImage` selects.

SageMaker image URIs look like `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`; the
repository name selects the algorithm whatever the registry host, account, region or tag.
"""

from __future__ import annotations

from collections.abc import Iterable

from sagelab.algorithms.base import Algorithm
from sagelab.errors import ValidationError


def image_repository(image: str) -> str:
    """`123.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1` -> `sagemaker-xgboost`."""
    path = image.strip()
    if "@" in path:  # digest form: repo@sha256:...
        path = path.split("@", 1)[0]
    last = path.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


class AlgorithmRegistry:
    def __init__(self, algorithms: Iterable[Algorithm] = ()):
        self._by_repo: dict[str, Algorithm] = {}
        self._by_name: dict[str, Algorithm] = {}
        for algorithm in algorithms:
            self.register(algorithm)

    def register(self, algorithm: Algorithm) -> None:
        self._by_name[algorithm.name] = algorithm
        for repo in algorithm.image_repositories:
            self._by_repo[repo.lower()] = algorithm

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str) -> Algorithm:
        return self._by_name[name]

    def for_image(self, image: str, *, field: str = "AlgorithmSpecification.TrainingImage") -> Algorithm:
        repo = image_repository(image or "")
        if repo in self._by_repo:
            return self._by_repo[repo]
        known = ", ".join(sorted(self._by_repo))
        raise ValidationError(f"{field} {image!r} is not a known algorithm image. Known image repositories: "
                              f"{known} (any registry, account, region or tag).")


def builtin_algorithms() -> list[Algorithm]:
    """The algorithms that ship with sagelab. Imported here, when asked for, never at import time."""
    from sagelab.algorithms.blazingtext.algorithm import BlazingText
    from sagelab.algorithms.catboost.algorithm import CatBoostClassification, CatBoostRegression
    from sagelab.algorithms.deepar.algorithm import DeepAR
    from sagelab.algorithms.factorization_machines.algorithm import FactorizationMachines
    from sagelab.algorithms.ip_insights.algorithm import IPInsights
    from sagelab.algorithms.kmeans.algorithm import KMeansAlgorithm
    from sagelab.algorithms.knn.algorithm import KNNAlgorithm
    from sagelab.algorithms.lda.algorithm import LDAAlgorithm
    from sagelab.algorithms.lightgbm.algorithm import LightGBMClassification, LightGBMRegression
    from sagelab.algorithms.linear_learner.algorithm import LinearLearner
    from sagelab.algorithms.ntm.algorithm import NTMAlgorithm
    from sagelab.algorithms.object2vec.algorithm import Object2Vec
    from sagelab.algorithms.pca.algorithm import PCAAlgorithm
    from sagelab.algorithms.random_cut_forest.algorithm import RandomCutForest
    from sagelab.algorithms.xgboost.algorithm import XGBoostAlgorithm

    return [XGBoostAlgorithm(), LinearLearner(), KMeansAlgorithm(), PCAAlgorithm(), KNNAlgorithm(),
            FactorizationMachines(), RandomCutForest(), IPInsights(),
            LightGBMClassification(), LightGBMRegression(), CatBoostClassification(), CatBoostRegression(),
            LDAAlgorithm(), NTMAlgorithm(), BlazingText(), DeepAR(), Object2Vec()]
