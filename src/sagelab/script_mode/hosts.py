"""A training job on several instances, as processes of one machine: hosts `algo-1..N`, each with its own
folder standing for /opt/ml, its share of each channel, and the rendezvous settings torch.distributed reads.

A channel with S3DataDistributionType `FullyReplicated` gives every host every object; `ShardedByS3Key`
gives host i (from 0) the objects i, i+N, i+2N, ... in key order, as SageMaker splits them by key (a host
may get none when there are fewer objects than hosts). An augmented manifest is one stream: every host
gets all of it.

With the SDK's `distribution={"torch_distributed": {"enabled": True}}` (or `pytorchddp`, which the SDK
turns into smdistributed data parallel) each host runs one process (these are CPU hosts: torchrun would
start one per GPU) with torchrun's variables: WORLD_SIZE, RANK, LOCAL_RANK, ... The hosts meet at
MASTER_ADDR=127.0.0.1 on a free MASTER_PORT (on SageMaker, the address of algo-1), which the PyTorch
training toolkit sets for every multi-host job.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagelab.algorithms.base import Channel, DataError

#: Hyperparameters the SageMaker SDK sets to have the toolkit launch torch.distributed workers.
TORCH_DISTRIBUTED_FLAGS = ("sagemaker_torch_distributed_enabled", "sagemaker_pytorch_ddp_enabled",
                           "sagemaker_distributed_dataparallel_enabled")


def host_names(count: int) -> tuple[str, ...]:
    return tuple(f"algo-{index}" for index in range(1, count + 1))


def _enabled(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value.strip().lower() == "true"
    return value is True


def torch_distributed(hyperparameters: Mapping[str, Any]) -> bool:
    return any(_enabled(hyperparameters.get(flag)) for flag in TORCH_DISTRIBUTED_FLAGS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass(frozen=True)
class Cluster:
    hosts: tuple[str, ...]
    master_port: int
    torch_distributed: bool

    def environment(self, host: str) -> dict[str, str]:
        """What the toolkit adds for `host`: the rendezvous address, and torchrun's ranks when launched."""
        env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(self.master_port)}
        if self.torch_distributed:
            rank = str(self.hosts.index(host))
            world = str(len(self.hosts))
            env.update({"WORLD_SIZE": world, "RANK": rank, "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
                        "GROUP_RANK": rank, "NODE_RANK": rank, "ROLE_RANK": rank, "ROLE_WORLD_SIZE": world,
                        "GROUP_WORLD_SIZE": world})
        return env

    def cpus_per_host(self) -> int:
        # The hosts share this machine's cores.
        return max(1, (os.cpu_count() or 1) // len(self.hosts))


def share(channel: Channel, distribution: str, index: int, count: int) -> list[tuple[str, Path]]:
    """(relative name, file) pairs of the channel that host `index` of `count` receives."""
    if channel.keys and len(channel.keys) == len(channel.files):
        pairs = sorted(zip(channel.keys, channel.files, strict=True))
    else:
        pairs = [(path.name, path) for path in channel.files]
    if distribution == "ShardedByS3Key" and channel.keys:
        return pairs[index::count]
    return pairs


def link_channel(pairs: list[tuple[str, Path]], folder: Path, channel: str) -> Path:
    """Make `folder` hold the given files under their object names (links to the job's one copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in pairs:
        target = (folder / name).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise DataError(f"Channel {channel!r}: object key {name!r} would be written outside its folder.")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path.resolve())
    return folder
