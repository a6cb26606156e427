"""A throwaway local Ray instance for tests, started once and shut down with nothing left behind.

Skips the test (pytest.importorskip) where Ray is not installed. `ray.shutdown()` normally ends every
process Ray started; any of Ray's processes that outlive it (a helper still exiting) are ended by PID, since a test run
must leave no processes behind; the test process's other children are left alone.
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
        # Only Ray's own processes: the test process may have others of its own (a session's sagelab server).
        started = [p for p in me.children(recursive=True) if _is_ray(p)]
        ray.shutdown()
        _, alive = psutil.wait_procs(started, timeout=5)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def _is_ray(process: psutil.Process) -> bool:
    try:
        command = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "ray" in command.lower()
