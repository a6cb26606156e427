"""Which algorithm a `TrainingImage` selects.

SageMaker image URIs look like `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`; the
repository name selects the algorithm whatever the registry host, account, region or tag. A framework image
(script mode) is selected when the job names an entry point script, or when no built-in algorithm answers to
the repository: `sagemaker-xgboost` is the built-in XGBoost without a `sagemaker_program` hyperparameter
and the XGBoost framework with one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from sagelab.algorithms.base import Algorithm, Predictor, ScriptModeAlgorithm
from sagelab.errors import ValidationError

#: The hyperparameter (training) and the container variable (serving) naming a script-mode entry point.
ENTRY_POINT_HYPERPARAMETER = "sagemaker_program"
ENTRY_POINT_VARIABLE = "SAGEMAKER_PROGRAM"


def image_repository(image: str) -> str:
    """`123.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1` -> `sagemaker-xgboost`."""
    path = image.strip()
    if "@" in path:  # digest form: repo@sha256:...
        path = path.split("@", 1)[0]
    last = path.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def entry_point_of_hyperparameters(hyperparameters: Mapping[str, Any] | None) -> str | None:
    return (hyperparameters or {}).get(ENTRY_POINT_HYPERPARAMETER) or None


def entry_point_of_container(container: Mapping[str, Any]) -> str | None:
    return (container.get("Environment") or {}).get(ENTRY_POINT_VARIABLE) or None


class ServingContainer(Protocol):
    """An image that only serves (a model container, never a training image): an inference pipeline's
    feature transformer, say. Algorithms serve too; this is the part of their contract it needs."""

    name: str
    image_repositories: tuple[str, ...]

    def load(self, model_dir: Path) -> Predictor: ...


class AlgorithmRegistry:
    def __init__(self, algorithms: Iterable[Algorithm] = (), script_mode: Iterable[ScriptModeAlgorithm] = (),
                 serving: Iterable[ServingContainer] = ()):
        self._by_repo: dict[str, Algorithm] = {}
        self._by_name: dict[str, Algorithm] = {}
        self._scripts_by_repo: dict[str, ScriptModeAlgorithm] = {}
        self._serving_by_repo: dict[str, ServingContainer] = {}
        for algorithm in algorithms:
            self.register(algorithm)
        for framework in script_mode:
            self.register_script_mode(framework)
        for container in serving:
            for repo in container.image_repositories:
                self._serving_by_repo[repo.lower()] = container

    def register_script_mode(self, algorithm: ScriptModeAlgorithm) -> None:
        self._by_name[algorithm.name] = algorithm
        for repo in algorithm.image_repositories:
            self._scripts_by_repo[repo.lower()] = algorithm

    def register(self, algorithm: Algorithm) -> None:
        self._by_name[algorithm.name] = algorithm
        for repo in algorithm.image_repositories:
            self._by_repo[repo.lower()] = algorithm

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str) -> Algorithm:
        return self._by_name[name]

    def for_serving_image(self, image: str, *, field: str, entry_point: str | None = None) -> ServingContainer:
        """What serves a model container's `image`: a serving-only container, or else an algorithm."""
        container = self._serving_by_repo.get(image_repository(image or ""))
        if container is not None and not entry_point:
            return container
        return self.for_image(image, field=field, entry_point=entry_point)

    def for_image(self, image: str, *, field: str = "AlgorithmSpecification.TrainingImage",
                  entry_point: str | None = None) -> Algorithm:
        """The algorithm `image` selects; `entry_point` is the script the job names, if any."""
        repo = image_repository(image or "")
        framework = self._scripts_by_repo.get(repo)
        if framework is not None and (entry_point or repo not in self._by_repo):
            framework.check_image(image, field)
            return framework
        if repo in self._by_repo:
            return self._by_repo[repo]
        known = ", ".join(sorted({*self._by_repo, *self._scripts_by_repo}))
        raise ValidationError(f"{field} {image!r} is not a known algorithm image. Known image repositories: "
                              f"{known} (any registry, account, region or tag).")


def builtin_algorithms() -> list[Algorithm]:
    """The algorithms that ship with sagelab. Imported here, when asked for, never at import time."""
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

    return [XGBoostAlgorithm(), LinearLearner(), KMeansAlgorithm(), PCAAlgorithm(), KNNAlgorithm(),
            FactorizationMachines(), RandomCutForest(), IPInsights(),
            LightGBMClassification(), LightGBMRegression(), CatBoostClassification(), CatBoostRegression(),
            LDAAlgorithm(), NTMAlgorithm(), BlazingText(), DeepAR(), Object2Vec(),
            ObjectDetection(), SemanticSegmentation(),
            ImageClassification(), Seq2Seq()]
