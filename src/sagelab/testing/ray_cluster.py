"""A throwaway local Ray instance for tests, started once and shut down with nothing left behind.

Skips the test (pytest.importorskip) where Ray is not installed. `ray.shutdown()` normally ends every
process Ray started; any that outlive it (a helper still exiting) are ended by PID, since a test run must
leave no processes behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import psutil
import pytest


@contextlib.contextmanager
def local_ray(num_cpus: int = 2) -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home from a test
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    me = psutil.Process()
    try:
        yield ray
    finally:
        started = me.children(recursive=True)
        ray.shutdown()
        _, alive = psutil.wait_procs(started, timeout=5)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
