"""Built-in processing images: an image repository that runs a sagelab function instead of a user script.

The function runs inside the job's process as `fn(ctx: ProcessingContext)`. Raising `DataError` or a
`SagelabError` fails the job with a "ClientError:" reason (bad input or configuration); anything else
with "AlgorithmError:". Registering an image is one line in `BUILTIN_IMAGES`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TextIO

from sagelab.process_parts import ProcessParts

#: Image repository name -> "module:function".
BUILTIN_IMAGES: dict[str, str] = {
    "sagelab-evaluator": "sagelab.evaluator.image:run_evaluator",
    "sagemaker-model-monitor-analyzer": "sagelab.model_monitor.image:run_model_monitor",
    "sagelab-profiler": "sagelab.profiling.analyzer:run_analyzer",
    "sagelab-recipe": "sagelab.recipes.processing:run_recipe",
}


@dataclasses.dataclass
class ProcessingContext:
    """What a built-in image sees of its job: local folders for inputs and outputs, and its settings."""

    job_name: str
    #: InputName -> the local folder holding that input's files.
    inputs: dict[str, Path]
    #: InputName -> the S3 URI the input was copied from.
    input_uris: dict[str, str]
    #: OutputName -> the local folder whose files are uploaded when the job succeeds.
    outputs: dict[str, Path]
    environment: dict[str, str]
    arguments: list[str]
    #: A scratch folder of the job's own, removed when it ends.
    work_dir: Path
    log: TextIO
    #: What the job process attached to: the metadata store, the lake, the algorithms and the account.
    parts: ProcessParts
    #: The folder standing in for the container's /opt/ml (container paths in the Environment map under it).
    opt_ml: Path | None = None

    def print(self, line: str) -> None:
        self.log.write(line + "\n")
        self.log.flush()
