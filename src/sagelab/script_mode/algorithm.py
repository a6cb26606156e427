"""The framework images as algorithms: what the registry, the training runner and hosting see of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sagelab.algorithms.base import ChannelSpec, MetricDefinition, Predictor, TrainingContext
from sagelab.script_mode import handlers, training
from sagelab.script_mode.hyperparameters import FrameworkHyperparameters
from sagelab.script_mode.images import FRAMEWORKS, Framework


class FrameworkAlgorithm:
    """A framework image running the user's scripts. It declares no channels or metrics of its own: the
    script reads whatever channels it is given, and the job's MetricDefinitions say what it prints."""

    channels: tuple[ChannelSpec, ...] = ()
    metrics: tuple[MetricDefinition, ...] = ()

    def __init__(self, framework: Framework):
        self.framework = framework
        self.name = f"{framework.name} (script mode)"
        self.image_repositories = framework.repositories
        self.hyperparameters = FrameworkHyperparameters(framework.name)

    def check_image(self, image: str, field: str) -> None:
        self.framework.check_image(image, field)

    def train(self, ctx: TrainingContext) -> None:
        training.train(ctx, self.framework)

    def load(self, model_dir: Path) -> Predictor:
        raise handlers.HandlerError(f"A {self.framework.name} model needs the inference script its container "
                                    f"names in {handlers.PROGRAM}.")

    def load_script(self, model_dir: Path, *, environment: dict[str, str], blobs: Any, work_dir: Path,
                    cache_dir: Path | None = None) -> Predictor:
        return handlers.load(model_dir, self.framework, environment, blobs=blobs, work_dir=work_dir,
                             cache_dir=cache_dir)


def framework_algorithms() -> list[FrameworkAlgorithm]:
    return [FrameworkAlgorithm(framework) for framework in FRAMEWORKS]
