"""A processing job request, validated once into a typed spec.

The wire shapes are already checked against botocore's model by the API layer; this module checks what
only sagelab knows: which image runs (a script image or a built-in one), that the entrypoint is a Python
command, that every container path lies under /opt/ml/processing/, and that names and paths are unique.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sagelab.algorithms.registry import image_repository
from sagelab.errors import ValidationError
from sagelab.lake.uris import S3Uri, parse_s3_uri
from sagelab.processing.builtin import BUILTIN_IMAGES

#: Images that run the user's own Python script, by repository name (any registry, account, region or tag).
SCRIPT_IMAGES = {
    "sagemaker-scikit-learn": "SageMaker's scikit-learn processing image (SKLearnProcessor)",
    "pytorch-training": "SageMaker's PyTorch image (PyTorchProcessor)",
    "sagemaker-xgboost": "SageMaker's XGBoost image (XGBoostProcessor)",
    "sagelab-python": "sagelab's generic Python image (ScriptProcessor)",
}

CONTAINER_ROOT = "/opt/ml/processing/"
DEFAULT_MAX_RUNTIME = 86400
_PYTHON = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")
_BASH = re.compile(r"^(?:.*/)?(?:ba)?sh$")
#: What a bash entrypoint's command starts with: the SDK's FrameworkProcessor runs its runproc.sh this way.
BASH_SCRIPT = "bash"
#: Interpreter flags that change nothing here (output is unbuffered anyway) and are skipped.
_HARMLESS_FLAGS = ("-u", "-B", "-E", "-s", "-O", "-OO")


@dataclasses.dataclass(frozen=True)
class ProcessingInput:
    name: str
    uri: S3Uri
    local_path: str  # the container path, under /opt/ml/processing/
    data_type: str  # S3Prefix | ManifestFile
    app_managed: bool


@dataclasses.dataclass(frozen=True)
class ProcessingOutput:
    name: str
    uri: S3Uri
    local_path: str
    upload_mode: str  # EndOfJob | Continuous (both uploaded when the job ends)
    #: ProcessingOutputConfig.KmsKeyId: written with SSE-KMS under it ("" for none).
    kms_key_id: str = ""


@dataclasses.dataclass(frozen=True)
class ProcessingJobSpec:
    name: str
    image: str
    #: "module:function" of a built-in image, or None when the job runs the user's script.
    builtin: str | None
    #: The Python command line after the interpreter: a script path (or -m module / -c code) and its arguments.
    command: tuple[str, ...]
    arguments: tuple[str, ...]
    environment: dict[str, str]
    inputs: tuple[ProcessingInput, ...]
    outputs: tuple[ProcessingOutput, ...]
    max_runtime: int


def known_images() -> str:
    names = {**{repo: "built-in" for repo in BUILTIN_IMAGES}, **SCRIPT_IMAGES}
    return ", ".join(f"{repo} ({what})" for repo, what in sorted(names.items()))


def _container_path(value: str | None, field: str) -> str:
    if not value:
        raise ValidationError(f"{field} is required: the container path where the data lives, under "
                              f"{CONTAINER_ROOT}.")
    normalized = "/" + "/".join(part for part in value.split("/") if part not in ("", "."))
    if ".." in normalized.split("/") or not (normalized + "/").startswith(CONTAINER_ROOT) \
            or normalized + "/" == CONTAINER_ROOT:
        raise ValidationError(f"{field} must be an absolute path below {CONTAINER_ROOT} without '..', got "
                              f"{value!r}.")
    return normalized


def _python_command(entrypoint: list[str]) -> tuple[str, ...]:
    if not entrypoint:
        raise ValidationError("AppSpecification.ContainerEntrypoint is required for script images: e.g. "
                              '["python3", "/opt/ml/processing/input/code/preprocess.py"].')
    program, *rest = entrypoint
    if _BASH.match(program) and len(rest) == 1 and rest[0].startswith(CONTAINER_ROOT):
        # Only the SDK's generated runproc.sh is run (see processing.framework_bundle); checked when it runs.
        return (BASH_SCRIPT, _container_path(rest[0], "AppSpecification.ContainerEntrypoint's script"))
    if not _PYTHON.match(program):
        raise ValidationError(f"AppSpecification.ContainerEntrypoint must start with a Python interpreter "
                              f"(python, python3, python3.N), got {program!r}: sagelab runs processing scripts "
                              "with its own Python (and bash only for the SDK's FrameworkProcessor runproc.sh "
                              f"under {CONTAINER_ROOT}).")
    while rest and rest[0] in _HARMLESS_FLAGS:
        rest = rest[1:]
    if not rest:
        raise ValidationError("AppSpecification.ContainerEntrypoint names no script: add the script's path, "
                              'e.g. "/opt/ml/processing/input/code/preprocess.py".')
    if rest[0] in ("-m", "-c"):
        if len(rest) < 2:
            raise ValidationError(f"AppSpecification.ContainerEntrypoint: {rest[0]} needs a value.")
    elif rest[0].startswith("-"):
        raise ValidationError(f"AppSpecification.ContainerEntrypoint: interpreter option {rest[0]!r} is not "
                              f"supported; use a script path, -m module or -c code.")
    else:
        _container_path(rest[0], "AppSpecification.ContainerEntrypoint's script")
    return tuple(rest)


def _inputs(params: dict[str, Any]) -> tuple[ProcessingInput, ...]:
    inputs: list[ProcessingInput] = []
    names: set[str] = set()
    paths: dict[str, str] = {}
    for index, item in enumerate(params.get("ProcessingInputs") or [], start=1):
        name = item["InputName"]
        where = f"ProcessingInputs[{index}] ({name!r})"
        if name in names:
            raise ValidationError(f"{where}: InputName values must be unique.")
        names.add(name)
        if item.get("DatasetDefinition") is not None:
            raise ValidationError(f"{where}: DatasetDefinition (Athena/Redshift) inputs are not supported; "
                                  "use an S3Input.")
        source = item.get("S3Input")
        if not source:
            raise ValidationError(f"{where}: S3Input is required.")
        app_managed = bool(item.get("AppManaged", False))
        local = _container_path(source.get("LocalPath"), f"{where} S3Input.LocalPath") \
            if not app_managed or source.get("LocalPath") else ""
        if local:
            if local in paths:
                raise ValidationError(f"{where}: LocalPath {local!r} is already used by input {paths[local]!r}.")
            paths[local] = name
        if source.get("S3InputMode", "File") != "File":
            raise ValidationError(f"{where}: S3InputMode {source['S3InputMode']!r} is not supported; use File.")
        if source.get("S3CompressionType", "None") != "None":
            raise ValidationError(f"{where}: S3CompressionType Gzip is only valid with the Pipe input mode, "
                                  "which sagelab does not support; use None.")
        inputs.append(ProcessingInput(name=name, uri=parse_s3_uri(source["S3Uri"], field=f"{where} S3Uri"),
                                      local_path=local, data_type=source["S3DataType"], app_managed=app_managed))
    return tuple(inputs)


def _outputs(params: dict[str, Any], input_paths: set[str]) -> tuple[ProcessingOutput, ...]:
    outputs: list[ProcessingOutput] = []
    names: set[str] = set()
    paths: set[str] = set()
    config = params.get("ProcessingOutputConfig") or {}
    for index, item in enumerate(config.get("Outputs") or [], start=1):
        name = item["OutputName"]
        where = f"ProcessingOutputConfig.Outputs[{index}] ({name!r})"
        if name in names:
            raise ValidationError(f"{where}: OutputName values must be unique.")
        names.add(name)
        if item.get("FeatureStoreOutput") is not None:
            raise ValidationError(f"{where}: FeatureStoreOutput is not supported; use an S3Output.")
        target = item.get("S3Output")
        if not target:
            raise ValidationError(f"{where}: S3Output is required.")
        local = _container_path(target.get("LocalPath"), f"{where} S3Output.LocalPath")
        if local in paths or local in input_paths:
            raise ValidationError(f"{where}: LocalPath {local!r} is already used by another input or output.")
        paths.add(local)
        outputs.append(ProcessingOutput(name=name, uri=parse_s3_uri(target["S3Uri"], field=f"{where} S3Uri"),
                                        local_path=local, upload_mode=target["S3UploadMode"],
                                        kms_key_id=config.get("KmsKeyId") or ""))
    return tuple(outputs)


def parse_processing_job(params: dict[str, Any]) -> ProcessingJobSpec:
    app = params["AppSpecification"]
    image = app["ImageUri"]
    repo = image_repository(image)
    if repo in BUILTIN_IMAGES:
        builtin, command = BUILTIN_IMAGES[repo], ()
    elif repo in SCRIPT_IMAGES:
        builtin, command = None, _python_command(list(app.get("ContainerEntrypoint") or []))
    else:
        raise ValidationError(f"AppSpecification.ImageUri {image!r} is not a processing image sagelab can run. "
                              f"Known image repositories: {known_images()} (any registry, account, region "
                              "or tag).")
    inputs = _inputs(params)
    outputs = _outputs(params, {i.local_path for i in inputs if i.local_path})
    max_runtime = int((params.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds") or DEFAULT_MAX_RUNTIME)
    return ProcessingJobSpec(
        name=params["ProcessingJobName"], image=image, builtin=builtin, command=command,
        arguments=tuple(app.get("ContainerArguments") or ()), environment=dict(params.get("Environment") or {}),
        inputs=inputs, outputs=outputs, max_runtime=max_runtime)
