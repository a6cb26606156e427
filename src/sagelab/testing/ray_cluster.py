"""Throwaway Ray for tests, shut down with nothing left behind: a local instance in the test process
(`local_ray`), or a cluster of its own processes joined through Ray's client, `ray://` (`remote_ray`).

Skips the test (pytest.importorskip) where Ray is not installed. `ray.shutdown()` normally ends every
process Ray started; any of Ray's processes that outlive it (a helper still exiting) are ended by PID, since a test run
must leave no processes behind; the test process's other children are left alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from sagelab.embedded import free_port


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


@dataclasses.dataclass(frozen=True)
class RemoteRay:
    """A Ray cluster of its own processes, as an operator runs one: its client address is `ray://...`."""

    client_address: str
    head: subprocess.Popen


@contextlib.contextmanager
def remote_ray(num_cpus: int = 2, timeout: float = 180) -> Iterator[RemoteRay]:
    """`ray start --head --block` on free ports of 127.0.0.1, with its client server; ended (and every
    process it started) when the block exits. Skips where Ray's client (grpcio) is not installed."""
    pytest.importorskip("ray")
    pytest.importorskip("grpc", reason="Ray's client needs grpcio (the `ray` extra installs ray[client])")
    gcs, client = free_port(), free_port()
    first_worker = _free_port_range(200)
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={gcs}",
               f"--ray-client-server-port={client}", f"--min-worker-port={first_worker}",
               f"--max-worker-port={first_worker + 199}", f"--num-cpus={num_cpus}", "--include-dashboard=false",
               "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
    # Ray turns its token authentication on for a head started where ~/.ray/auth_token exists, which any
    # earlier local Ray instance writes; its client then connects only with that token in its environment.
    # A test cluster on 127.0.0.1 is started without it, explicitly, so that no earlier test decides.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    head = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(client):
            if head.poll() is not None:
                raise RuntimeError(f"ray start --head exited with {head.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("the Ray head's client server never answered")
            time.sleep(0.2)
        address = f"ray://127.0.0.1:{client}"
        _first_client(address, env, deadline)
        yield RemoteRay(address, head)
    finally:
        started = psutil.Process(head.pid).children(recursive=True) if head.poll() is None else []
        os.killpg(head.pid, signal.SIGTERM)  # `--block` ends the processes it started
        _, alive = psutil.wait_procs([psutil.Process(head.pid), *started], timeout=15)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def _first_client(address: str, env: dict[str, str], deadline: float) -> None:
    """Connect one client, from a process of its own, until one gets in: the head's first server for a
    client sometimes dies as it starts (Ray's proxier then fails that connection), and a test should meet
    a cluster that has served a client already."""
    probe = f"import ray; ray.init({address!r}); ray.shutdown()"
    while True:
        try:
            done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                                  timeout=max(10.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise RuntimeError("no client could connect to the Ray head") from None
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no client could connect to the Ray head: {done.stderr[-2000:]}")


def _free_port_range(size: int) -> int:
    """The first of `size` consecutive ports free now, above the ephemeral ones Linux hands out."""
    for start in range(20000, 30000, size):
        if all(_bindable(port) for port in range(start, start + size, 37)):
            return start
    raise RuntimeError("no free port range for Ray's workers")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
