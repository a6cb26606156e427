"""The built-in algorithm contract.

An `Algorithm` declares what SageMaker users see of it (image names, hyperparameters, channels, content
types, metrics) and does two things: `train(ctx)` reads the job's channels and writes the model into
`ctx.model_dir`; `load(model_dir)` returns a `Predictor` that answers inference requests in SageMaker's
exact formats. Algorithms never unpickle anything: artifacts are library-native or plain JSON/NumPy.

Metrics are printed to the job log in the algorithm's native format and extracted with the declared
`MetricDefinition` regexes, exactly as SageMaker extracts them from CloudWatch logs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable

from sagelab.algorithms.hyperparameters import HyperparameterSchema
from sagelab.errors import SagelabError


@dataclasses.dataclass(frozen=True)
class ChannelSpec:
    name: str
    required: bool = False
    content_types: tuple[str, ...] = ("text/csv",)
    #: Content type assumed when the channel declares none.
    default_content_type: str = "text/csv"
    #: Other names the same channel may be given (LightGBM reads `train` or `training`); at most one is used.
    aliases: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class MetricDefinition:
    name: str
    regex: str
    #: "Maximize" or "Minimize": how a tuning job should treat it.
    direction: str = "Minimize"


@dataclasses.dataclass
class Channel:
    """One input channel of a running job, already copied (or linked) to local files."""

    name: str
    content_type: str
    files: list[Path]
    #: The content type's parameters, e.g. {"label_size": "1"} for "text/csv;label_size=1".
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Each file's object key relative to the channel's S3 location (same order as `files`), so algorithms that
    #: read sub-folders (JumpStart's `train/`, `validation/`) can tell them apart; empty when unknown.
    keys: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TrainingContext:
    hyperparameters: dict[str, Any]
    channels: dict[str, Channel]
    model_dir: Path
    output_dir: Path
    log: TextIO
    #: What only script-mode algorithms use: the folder standing for /opt/ml (model_dir is its `model`,
    #: output_dir its `output/data`), the job's name and request, the lake (for the user's code) and a
    #: cache folder that outlives the job.
    container_root: Path | None = None
    job_name: str = ""
    request: dict[str, Any] = dataclasses.field(default_factory=dict)
    blobs: Any = None
    cache_dir: Path | None = None

    def print(self, line: str) -> None:
        self.log.write(line + "\n")
        self.log.flush()


class InferenceError(SagelabError):
    """An inference request the model cannot serve. `status` follows the container contract:
    415 unsupported content type, 406 unsupported Accept, 400 a body the model cannot read."""

    code = "ModelError"

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Predictor(Protocol):
    content_types: tuple[str, ...]
    accept_types: tuple[str, ...]
    default_accept: str

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """Decode `body`, predict in one batch, encode for `accept`; returns (payload, content type)."""
        ...


class Algorithm(Protocol):
    name: str
    #: Repository names of SageMaker image URIs that select this algorithm (".../<repo>:<tag>").
    image_repositories: tuple[str, ...]
    hyperparameters: HyperparameterSchema
    channels: tuple[ChannelSpec, ...]
    metrics: tuple[MetricDefinition, ...]

    def train(self, ctx: TrainingContext) -> None: ...

    def load(self, model_dir: Path) -> Predictor: ...


@runtime_checkable
class ScriptModeAlgorithm(Algorithm, Protocol):
    """A framework image that runs the user's own scripts: selected when the job names an entry point."""

    def check_image(self, image: str, field: str) -> None:
        """Refuse, with a ValidationError, an image whose framework version is unknown."""
        ...

    def load_script(self, model_dir: Path, *, environment: dict[str, str], blobs: Any, work_dir: Path,
                    cache_dir: Path | None = None) -> Predictor:
        """A predictor made of the user's inference functions (the model container's `environment` names
        the entry point and where its code is)."""
        ...


class DataError(Exception):
    """Training data the algorithm cannot use; the message becomes the job's FailureReason."""


def split_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """'text/csv; label_size=1' -> ('text/csv', {'label_size': '1'})."""
    if not value:
        return "", {}
    main, *rest = [p.strip() for p in value.split(";")]
    params = {}
    for part in rest:
        key, _, val = part.partition("=")
        if key:
            params[key.strip().lower()] = val.strip()
    return main.lower(), params
