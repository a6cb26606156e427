"""Endpoint instance metrics, as SageMaker publishes them (namespace /aws/sagemaker/Endpoints).

CPUUtilization, MemoryUtilization and DiskUtilization, in percent, per variant (EndpointName and
VariantName), one datum per sample holding each live instance's value, so that Average, Minimum and
Maximum read across the variant's instances. CPU is summed over cores, as AWS does: 0-100 times the
number of cores. A thread samples the instance processes every `period` seconds with psutil, never on
the invoke path. ModelSetupTime (AWS/SageMaker, microseconds) is written when an instance has loaded
its model (`model_setup_time`).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from sagelab.hosting.fleet import Fleet, Instance

NAMESPACE = "/aws/sagemaker/Endpoints"
SETUP_NAMESPACE = "AWS/SageMaker"

#: (namespace, PutMetricData-shaped data) -> points stored.
Record = Callable[[str, Sequence[Mapping[str, Any]]], int]


class InstanceMetrics:
    def __init__(self, *, fleet: Fleet, record: Record, period: int, disk_path: Path):
        self.fleet, self.record = fleet, record
        self.period = max(1, int(period))
        self.disk_path = disk_path
        self._processes: dict[int, psutil.Process] = {}
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def _resolution(self) -> int:
        return 1 if self.period < 60 else 60

    def model_setup_time(self, instance: Instance, seconds: float) -> None:
        if not instance.endpoint:
            return
        self.record(SETUP_NAMESPACE, [{"MetricName": "ModelSetupTime", "Unit": "Microseconds",
                                       "Value": seconds * 1e6, "StorageResolution": self._resolution(),
                                       "Dimensions": _dimensions(instance.endpoint, instance.variant)}])

    # --- sampling ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="instance-metrics", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        assert self._stop is not None
        while not self._stop.wait(self.period):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - one failed sample must not end the sampler
                traceback.print_exc()

    def sample(self) -> int:
        """Write one datum per variant and metric for the live instances; returns the data written."""
        data: list[dict[str, Any]] = []
        seen: set[int] = set()
        disk = psutil.disk_usage(str(self.disk_path)).percent if self.disk_path.exists() else 0.0
        now = time.time()
        for endpoint, route in list(self.fleet.routes.items()):
            for name, variant in route.variants.items():
                cpu, memory = [], []
                for instance in variant.instances:
                    if instance.pid is not None:
                        seen.add(instance.pid)
                    usage = self._usage(instance)
                    if usage is None:
                        continue
                    cpu.append(usage[0])
                    memory.append(usage[1])
                if not cpu:
                    continue
                for metric, values in (("CPUUtilization", cpu), ("MemoryUtilization", memory),
                                       ("DiskUtilization", [disk] * len(cpu))):
                    data.append({"MetricName": metric, "Unit": "Percent", "Values": values, "Timestamp": now,
                                 "StorageResolution": self._resolution(),
                                 "Dimensions": _dimensions(endpoint, name)})
        for pid in set(self._processes) - seen:  # instances gone since the last sample
            del self._processes[pid]
        if data:
            self.record(NAMESPACE, data)
        return len(data)

    def _usage(self, instance: Instance) -> tuple[float, float] | None:
        """(CPU percent summed over cores, memory percent) of a live instance, or None."""
        if not instance.alive or instance.pid is None:
            return None
        process = self._processes.get(instance.pid)
        try:
            if process is None:
                # The first reading of a Process only starts its CPU clock: it counts from the next one.
                process = self._processes[instance.pid] = psutil.Process(instance.pid)
                process.cpu_percent(None)
                return None
            return process.cpu_percent(None), process.memory_percent()
        except psutil.Error:
            self._processes.pop(instance.pid, None)
            return None

    def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._stop = None


def _dimensions(endpoint: str, variant: str) -> list[dict[str, str]]:
    return [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
