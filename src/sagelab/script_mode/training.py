"""A script-mode training job on one host: bring the user's code, install its requirements, lay the
channels out under their own names, and run the entry point with the training toolkit's environment.

Failures carry the toolkit's error names, which the training runner turns into the FailureReason:
a bad request or missing code is a `DataError` ("ClientError: ..."), an uninstallable requirements.txt an
`InstallRequirementsError` and a script that fails an `ExecuteUserScriptError` ("AlgorithmError: ...").
The script's own explanation, written to `/opt/ml/output/failure`, comes first when there is one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sagelab.algorithms.base import Channel, DataError, TrainingContext
from sagelab.containers import user_process
from sagelab.containers.archives import ArchiveError, fetch_folder
from sagelab.containers.paths import rewrite_argument
from sagelab.containers.requirements import RequirementsError, python_for
from sagelab.script_mode.hyperparameters import PROGRAM, SUBMIT_DIRECTORY
from sagelab.script_mode.images import Framework
from sagelab.script_mode.toolkit_env import ScriptJob, environment, write_config_files

#: Characters of the failure file kept in the FailureReason (SageMaker keeps 1 KB of it).
FAILURE_FILE_LIMIT = 1024


class ExecuteUserScriptError(Exception):
    """The training script exited with an error."""


class InstallRequirementsError(Exception):
    """The source directory's requirements.txt could not be installed."""


def bring_code(ctx: TrainingContext, code_dir: Path) -> str:
    """Unpack the source bundle into `code_dir`; returns the entry point's path relative to it."""
    entry_point = str(ctx.hyperparameters[PROGRAM])
    submit = ctx.hyperparameters.get(SUBMIT_DIRECTORY)
    if not submit:
        raise DataError(f"HyperParameters.{SUBMIT_DIRECTORY} is missing: expected the s3:// URI of the source "
                        f"bundle (sourcedir.tar.gz) that holds {entry_point} (the SDK uploads it and sets it).")
    if not str(submit).startswith("s3://"):
        raise DataError(f"HyperParameters.{SUBMIT_DIRECTORY} must be an s3:// URI of the source bundle, got "
                        f"{submit!r}.")
    try:
        fetch_folder(ctx.blobs, str(submit), code_dir, what=f"source bundle ({SUBMIT_DIRECTORY})")
    except ArchiveError as exc:
        raise DataError(str(exc)) from exc
    script = code_dir / entry_point
    if not script.is_file() or not script.resolve().is_relative_to(code_dir.resolve()):
        present = sorted(str(p.relative_to(code_dir)) for p in code_dir.rglob("*") if p.is_file())[:20]
        raise DataError(f"The entry point {entry_point!r} ({PROGRAM}) is not in the source bundle {submit}; it "
                        f"holds: {', '.join(present) or 'no files'}.")
    if script.suffix != ".py":
        raise DataError(f"The entry point {entry_point!r} must be a Python script (.py); sagelab runs training "
                        "scripts with its own Python.")
    return entry_point


def lay_out_channel(channel: Channel, folder: Path) -> Path:
    """Give the channel's files their object names (and sub-folders) inside `folder`, as SageMaker's File
    mode does; the job runner names them after their position."""
    if not channel.keys or len(channel.keys) != len(channel.files):
        return folder
    staging = folder.with_name(folder.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    moved = []
    for index, path in enumerate(channel.files):
        if path.parent == folder:
            temporary = staging / str(index)
            path.rename(temporary)
            path = temporary
        moved.append(path)
    for key, path in zip(channel.keys, moved, strict=True):
        target = (folder / key).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise DataError(f"Channel {channel.name!r}: object key {key!r} would be written outside its folder.")
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.parent == staging:
            path.rename(target)
        else:
            target.symlink_to(path)
    shutil.rmtree(staging, ignore_errors=True)
    return folder


def input_data_config(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    config = {}
    for channel in request.get("InputDataConfig") or []:
        source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        entry = {"TrainingInputMode": channel.get("InputMode") or request.get("AlgorithmSpecification", {})
                 .get("TrainingInputMode", "File"),
                 "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                 "RecordWrapperType": channel.get("RecordWrapperType", "None")}
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        config[channel["ChannelName"]] = entry
    return config


def _failure_message(root: Path, ended: user_process.Exit) -> str:
    failure = root / "output" / "failure"
    if failure.is_file():
        text = failure.read_text(errors="replace").strip()[:FAILURE_FILE_LIMIT]
        if text:
            return text
    return ended.stderr_tail or "the script wrote nothing to stderr"


def train(ctx: TrainingContext, framework: Framework) -> None:
    root = ctx.container_root
    if root is None or ctx.blobs is None:
        raise RuntimeError("script-mode training needs the job's container folder and the lake")
    code_dir = root / "code"
    entry_point = bring_code(ctx, code_dir)
    python = None
    requirements = code_dir / "requirements.txt"
    if requirements.is_file():
        try:
            python = python_for(requirements, (ctx.cache_dir or root / "cache") / "requirements", ctx.log)
        except RequirementsError as exc:
            raise InstallRequirementsError(str(exc)) from exc
    channels = {name: lay_out_channel(channel, root / "input" / "data" / name)
                for name, channel in ctx.channels.items()}
    request = ctx.request
    job = ScriptJob(root=root, code_dir=code_dir, entry_point=entry_point,
                    raw_hyperparameters={str(k): str(v) for k, v in (request.get("HyperParameters") or {}).items()},
                    hyperparameters=ctx.hyperparameters, channels=channels, input_data_config=input_data_config(request),
                    job_name=ctx.job_name, region=str(ctx.hyperparameters.get("sagemaker_region") or "us-east-1"),
                    instance_type=(request.get("ResourceConfig") or {}).get("InstanceType", "ml.m5.large"),
                    framework_module=framework.module)
    write_config_files(job)
    env = user_process.base_environment(
        {k: rewrite_argument(root, str(v)) for k, v in (request.get("Environment") or {}).items()})
    env.update(environment(job))
    command = [str(code_dir / entry_point), *job.user_arguments]
    shown = " ".join(["python3", entry_point, *job.user_arguments])
    ctx.print(f"sagelab: invoking script with the following command:\n{shown}")
    ended = user_process.run(root, command, cwd=code_dir, env=env, log=ctx.log, python=python)
    if ended.code != 0:
        raise ExecuteUserScriptError(f"ExitCode {ended.code}\nErrorMessage \"{_failure_message(root, ended)}\"\n"
                                     f"Command \"{shown}\"")
