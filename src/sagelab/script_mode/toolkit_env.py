"""The environment the SageMaker training toolkit gives a training script, with `/opt/ml` in a job folder.

The script reads its configuration from `SM_*` variables (SM_MODEL_DIR, SM_CHANNEL_TRAIN, SM_HPS, ...),
from `--name value` arguments, or from the files under `/opt/ml/input/config/`; all three are written here
with absolute paths into the job's folder (the folder that stands for `/opt/ml`, see
`sagelab.containers.paths`). Names and shapes follow the toolkit: JSON for lists and objects, plain text
for the rest.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagelab.containers.paths import env_name
from sagelab.script_mode.hyperparameters import (
    command_line_arguments,
    framework_parameters,
    user_hyperparameters,
)


@dataclasses.dataclass(frozen=True)
class ScriptJob:
    """One host's view of a script-mode training job."""

    #: The folder standing for /opt/ml.
    root: Path
    code_dir: Path
    entry_point: str
    #: Every hyperparameter as the request sent it (strings), and decoded.
    raw_hyperparameters: Mapping[str, str]
    hyperparameters: Mapping[str, Any]
    #: Channel name -> its folder.
    channels: Mapping[str, Path]
    #: Channel name -> what inputdataconfig.json says of it.
    input_data_config: Mapping[str, Mapping[str, Any]]
    job_name: str
    region: str
    instance_type: str
    hosts: tuple[str, ...] = ("algo-1",)
    current_host: str = "algo-1"
    framework_module: str = ""
    num_cpus: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    num_gpus: int = 0

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def resource_config(self) -> dict[str, Any]:
        return {"current_host": self.current_host, "current_instance_type": self.instance_type,
                "current_group_name": "homogeneousCluster", "hosts": list(self.hosts),
                "instance_groups": [{"instance_group_name": "homogeneousCluster",
                                     "instance_type": self.instance_type, "hosts": list(self.hosts)}],
                "network_interface_name": "lo"}

    @property
    def user_arguments(self) -> list[str]:
        return command_line_arguments(user_hyperparameters(self.hyperparameters))


def write_config_files(job: ScriptJob) -> None:
    """`/opt/ml/input/config/{hyperparameters,resourceconfig,inputdataconfig}.json`, as SageMaker writes them."""
    job.config_dir.mkdir(parents=True, exist_ok=True)
    (job.config_dir / "hyperparameters.json").write_text(json.dumps(dict(job.raw_hyperparameters)))
    (job.config_dir / "resourceconfig.json").write_text(json.dumps(job.resource_config))
    (job.config_dir / "inputdataconfig.json").write_text(json.dumps(dict(job.input_data_config)))
    for folder in (job.model_dir, job.output_data_dir, job.output_dir / "intermediate"):
        folder.mkdir(parents=True, exist_ok=True)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def environment(job: ScriptJob) -> dict[str, str]:
    """The `SM_*` variables of the training toolkit for this host."""
    user = user_hyperparameters(job.hyperparameters)
    module_name = job.entry_point.removesuffix(".py")
    training_env: dict[str, Any] = {
        "additional_framework_parameters": framework_parameters(job.hyperparameters),
        "channel_input_dirs": {name: str(path) for name, path in job.channels.items()},
        "current_host": job.current_host,
        "current_instance_type": job.instance_type,
        "framework_module": job.framework_module,
        "hosts": list(job.hosts),
        "hyperparameters": user,
        "input_config_dir": str(job.config_dir),
        "input_data_config": dict(job.input_data_config),
        "input_dir": str(job.input_dir),
        "is_master": job.current_host == job.hosts[0],
        "job_name": job.job_name,
        "log_level": int(job.hyperparameters.get("sagemaker_container_log_level") or 20),
        "master_hostname": job.hosts[0],
        "model_dir": str(job.model_dir),
        "module_dir": str(job.hyperparameters.get("sagemaker_submit_directory") or job.code_dir),
        "module_name": module_name,
        "network_interface_name": "lo",
        "num_cpus": job.num_cpus,
        "num_gpus": job.num_gpus,
        "output_data_dir": str(job.output_data_dir),
        "output_dir": str(job.output_dir),
        "output_intermediate_dir": str(job.output_dir / "intermediate"),
        "resource_config": job.resource_config,
        "user_entry_point": job.entry_point,
    }
    env = {f"SM_{key.upper()}": _text(value) for key, value in training_env.items()}
    del env["SM_CHANNEL_INPUT_DIRS"], env["SM_HYPERPARAMETERS"]
    env.update({
        "SM_CHANNELS": json.dumps(sorted(job.channels)),
        "SM_HPS": json.dumps(user, sort_keys=True),
        "SM_FRAMEWORK_PARAMS": json.dumps(framework_parameters(job.hyperparameters), sort_keys=True),
        "SM_USER_ARGS": json.dumps(job.user_arguments),
        "SM_TRAINING_ENV": json.dumps(training_env, sort_keys=True),
        "SM_NUM_NEURONS": "0",
        "SAGEMAKER_REGION": job.region,
        "AWS_REGION": job.region,
        "TRAINING_JOB_NAME": job.job_name,
    })
    env.update({f"SM_CHANNEL_{env_name(name)}": str(path) for name, path in job.channels.items()})
    env.update({f"SM_HP_{env_name(name)}": _text(value) for name, value in user.items()})
    return env
