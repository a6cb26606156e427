"""Built-in XGBoost on several instances: one worker process per host, joined by xgboost's collective.

As SageMaker's XGBoost container does with InstanceCount > 1, every host trains on its share of the data
(all of it for a FullyReplicated channel; objects i, i+N, ... in key order for ShardedByS3Key) and the
workers build one model together: a `RabitTracker` on 127.0.0.1 pairs them, each works inside a
`collective.CommunicatorContext`, and gradient statistics and evaluation metrics are summed across
them. The model is rank 0's (algo-1's); only rank 0 writes to the job log, since every rank prints the
same aggregated evaluation lines.

A worker is `python -m sagelab.algorithms.xgboost.worker <spec.json>`, where the spec carries its
rank, its channels and the tracker's address; a worker that fails writes why next to its spec, and the
others are ended at once (they would wait for it forever).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from sagelab.algorithms.base import Channel, DataError, TrainingContext

WORKER = "sagelab.algorithms.xgboost.worker"
#: Seconds the tracker may take to see every worker leave once they have all exited.
TRACKER_GRACE_SECONDS = 10


def shard(channel: Channel, distribution: str, rank: int, count: int) -> Channel:
    if distribution != "ShardedByS3Key":
        return channel
    pairs = sorted(zip(channel.keys or [p.name for p in channel.files], channel.files, strict=True))[rank::count]
    return Channel(name=channel.name, content_type=channel.content_type, files=[p for _, p in pairs],
                   params=dict(channel.params), keys=[k for k, _ in pairs])


def _distributions(request: dict[str, Any]) -> dict[str, str]:
    return {c["ChannelName"]: ((c.get("DataSource") or {}).get("S3DataSource") or {})
            .get("S3DataDistributionType", "FullyReplicated") for c in request.get("InputDataConfig") or []}


def train_on_hosts(ctx: TrainingContext, count: int) -> None:
    from xgboost.tracker import RabitTracker

    hosts = [f"algo-{rank + 1}" for rank in range(count)]
    distributions = _distributions(ctx.request)
    work = (ctx.container_root or ctx.model_dir.parent) / "xgboost-workers"
    work.mkdir(parents=True, exist_ok=True)
    shares = []
    for rank, host in enumerate(hosts):
        channels = {name: shard(channel, distributions.get(name, "FullyReplicated"), rank, count)
                    for name, channel in ctx.channels.items()}
        for channel in channels.values():
            if not channel.files:
                raise DataError(f"Channel {channel.name!r} is ShardedByS3Key over fewer objects than the "
                                f"{count} instances: {host} gets none. Split the data into at least {count} "
                                "objects, or use FullyReplicated.")
        shares.append(channels)
    # Ranks follow the task ids, so algo-1 is rank 0.
    tracker = RabitTracker(n_workers=count, host_ip="127.0.0.1", sortby="task")
    tracker.start()
    nthread = max(1, (os.cpu_count() or 1) // count)
    ctx.print(f"sagelab: distributed XGBoost on {count} hosts ({', '.join(hosts)}), {nthread} thread(s) each")
    ctx.log.flush()
    processes = []
    for rank, host in enumerate(hosts):
        spec = {"rank": rank, "host": host, "tracker": tracker.worker_args(), "nthread": nthread,
                "hyperparameters": ctx.hyperparameters,
                "model_dir": str(ctx.model_dir if rank == 0 else work / host / "model"),
                "output_dir": str(ctx.output_dir if rank == 0 else work / host / "output"),
                "channels": {name: {"content_type": c.content_type, "files": [str(p) for p in c.files],
                                    "params": c.params, "keys": c.keys} for name, c in shares[rank].items()}}
        path = work / f"{host}.json"
        path.write_text(json.dumps(spec, default=str))
        processes.append(subprocess.Popen([sys.executable, "-m", WORKER, str(path)], stdin=subprocess.DEVNULL,
                                          stdout=None if rank == 0 else subprocess.DEVNULL, stderr=None))
    failed = _wait_all(processes)
    if failed is None:
        try:
            tracker.wait_for(TRACKER_GRACE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the model is written; the tracker's farewell does not matter
            ctx.print(f"sagelab: the XGBoost tracker did not close cleanly: {exc}")
        return
    failure = work / f"{hosts[failed]}.failure.json"
    if failure.is_file():
        kind, message = json.loads(failure.read_text())
        error = DataError if kind == "DataError" else RuntimeError
        raise error(f"{message} (on host {hosts[failed]})")
    raise RuntimeError(f"the XGBoost worker on host {hosts[failed]} exited with code {processes[failed].returncode}")


def _wait_all(processes: list[subprocess.Popen]) -> int | None:
    """Index of the first worker to fail, after ending the others; None when all succeeded."""
    failed = None
    while failed is None and any(p.poll() is None for p in processes):
        failed = next((i for i, p in enumerate(processes) if p.poll() not in (None, 0)), None)
        time.sleep(0.05)
    if failed is None:
        failed = next((i for i, p in enumerate(processes) if p.returncode != 0), None)
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()
    return failed
