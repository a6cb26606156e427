"""RayEngine: each task is a Ray task, placed by Ray on its cluster; the task's target runs in a fresh process.

Ray places the work (on this machine with `address="local"`, or on a remote cluster with `ray://host:port`)
and owns its lifetime: stop and timeouts cancel the Ray task with `force=True`, which kills the Ray worker
that holds it. Ray reuses its worker processes, so a target must not run inside one (a job's module state,
threads and redirected file descriptors would leak into the next job). Instead the Ray task forks the target
into a fresh process from a forkserver that lives in that worker and has imported the job libraries once
(`preload`), just as the local engine does: a job starts in milliseconds instead of paying for
numpy/xgboost imports in every new process. The fresh process writes the task's log and result the way the
local engine's does (`compute/local.py`), and dies with the forkserver, which dies with the worker.

The engine keeps its own queue and starts at most `max_concurrency` tasks at once (by default the cluster's
CPUs), so that a task is Running only once it has been handed to Ray and a queued task can be stopped
before it ever starts. A remote cluster must see the same home folder (logs, lake, metadata) as the server.

`import ray` happens only when an engine is built, never when sagelab is imported.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sagelab.compute.engine import (
    OnDone,
    Task,
    TaskState,
    TaskStatus,
    describe_exception,
)
from sagelab.compute.local import _child_main, _result_path
from sagelab.compute.queued import QueuedEngine

#: What a Ray instance this engine starts is told through its environment. Ray's own telemetry phones
#: home, and a sagelab server never reaches the network on its own. Ray starts its workers 15 steps nicer
#: than itself, which on a busy machine lets every other process starve a job; a local-engine job runs at
#: the server's own priority, and so does a job here.
_RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_niceness": "0"}


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Start a process without naming this worker's main script to it.

    multiprocessing hands a new process the parent's `__main__.__file__`, and the process runs that file
    again as `__mp_main__` before its target. Here that file is Ray's worker script: each job would import
    Ray anew (half a second of CPU) for nothing, since a task's target is importable by its own path.
    """
    main = sys.modules["__main__"]
    path = main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        if path is not None:
            main.__file__ = path


def run_in_fresh_process(task: Task, preload: Sequence[str]) -> str | None:
    """What each Ray task runs on its worker: the target in a fresh process forked from this worker's
    forkserver; returns the task's error, or None when it succeeded."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))  # only read when this worker starts its forkserver
    with contextlib.suppress(FileNotFoundError):
        _result_path(task).unlink()
    process = ctx.Process(target=_child_main, args=(task,), name=f"task-{task.id}")
    with _main_script_hidden():
        process.start()
    process.join()
    try:
        return json.loads(_result_path(task).read_text())["error"]
    except (FileNotFoundError, ValueError, KeyError):
        code = process.exitcode
        return f"The task process died (exit code {code})." if code else None


class _Running:
    __slots__ = ("task", "ref", "status", "on_done", "deadline", "stop_as")

    def __init__(self, task: Task, status: TaskStatus, on_done: OnDone | None):
        self.task, self.status, self.on_done = task, status, on_done
        self.ref: Any = None  # the Ray ObjectRef of the running task
        self.deadline: float | None = None
        self.stop_as: TaskState | None = None


class RayEngine(QueuedEngine):
    """`address` is "local" (start a Ray instance on this machine with `num_cpus` CPUs) or a cluster
    address such as `ray://host:10001`. When Ray is already initialised in this process (a test's cluster),
    the engine uses it and leaves it running when it closes."""

    monitor_name = "ray-engine"
    close_timeout = 30.0


    def __init__(self, address: str = "local", *, num_cpus: int | None = None, max_concurrency: int | None = None,
                 preload: Sequence[str] = (), cpus_per_task: float = 1):
        import ray

        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            for name, value in _RAY_ENV.items():
                os.environ.setdefault(name, value)
            # A cluster of one's own is started lean (no dashboard, workers' output kept in the task logs);
            # a remote cluster is joined as its operator configured it.
            local = {"num_cpus": num_cpus, "include_dashboard": False, "log_to_driver": False}
            ray.init(address=address, **(local if address == "local" else {}))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        super().__init__(max_concurrency or cpus)
        # One CPU each (`cpus_per_task`), so that Ray spreads jobs over the cluster's nodes; endpoint instances,
        # which live as long as their endpoint, reserve none, or a few would hold every CPU and no job could
        # start. Never retried: a task that died is reported as failed, as on the local engine, and its service
        # decides what happens next.
        self._remote = ray.remote(num_cpus=cpus_per_task, max_retries=0, retry_exceptions=False)(
            run_in_fresh_process)
        self._preload = list(preload)

    def _entry(self, task: Task, on_done: OnDone | None) -> _Running:
        return _Running(task, TaskStatus(TaskState.PENDING), on_done)

    def _started(self, entry: _Running) -> bool:
        return entry.ref is not None

    def close(self) -> None:
        super().close()
        if self._owns_ray:
            self._ray.shutdown()

    # --- the monitor thread --------------------------------------------------------------------------
    def _loop(self) -> None:
        ray = self._ray
        while True:
            finished: list[_Running] = []
            with self._lock:
                running = [e for e in self._tasks.values() if e.ref is not None and not e.status.state.finished]
                now = time.monotonic()
                for entry in running:
                    if entry.deadline is not None and now >= entry.deadline and entry.stop_as is None:
                        entry.stop_as = TaskState.TIMED_OUT
                        self._kill(entry)
                refs = [e.ref for e in running]
                done = set(ray.wait(refs, num_returns=len(refs), timeout=0)[0]) if refs else set()
                for entry in running:
                    if entry.ref in done:
                        finished.append(self._reap(entry))
                running_count = len(running) - len(finished)
                while self._queue and running_count < self.max_concurrency and not self._closed:
                    self._start(self._tasks[self._queue.popleft()])
                    running_count += 1
                pending = [e.ref for e in self._tasks.values() if e.ref is not None and not e.status.state.finished]
                idle = self._closed and not pending
            for entry in finished:
                self._notify(entry)
            if idle:
                return
            self._wake.clear()
            if pending:
                # Wakes as soon as one task ends; the short timeout keeps deadlines and new submissions timely.
                ray.wait(pending, num_returns=1, timeout=0.05)
            else:
                self._wake.wait(timeout=0.5)

    def _start(self, entry: _Running) -> None:
        entry.ref = self._remote.remote(entry.task, self._preload)
        entry.status.state = TaskState.RUNNING
        entry.status.started_at = time.time()
        if entry.task.timeout is not None:
            entry.deadline = time.monotonic() + entry.task.timeout

    def _kill(self, entry: _Running) -> None:
        # force=True kills the worker, and with it the forkserver and the task's process.
        with contextlib.suppress(Exception):
            self._ray.cancel(entry.ref, force=True)

    def _reap(self, entry: _Running) -> _Running:
        exceptions = self._ray.exceptions
        try:
            error = self._ray.get(entry.ref, timeout=0)
        except exceptions.TaskCancelledError:
            error = None if entry.stop_as is not None else "The Ray task was cancelled."
        except exceptions.WorkerCrashedError:
            error = "The Ray worker running the task died."
        except exceptions.NodeDiedError:
            error = "The Ray node running the task died."
        except exceptions.RayError as exc:
            error = f"Ray could not run the task: {describe_exception(exc)}"
        if entry.stop_as is not None:
            return self._mark(entry, entry.stop_as, None)
        return self._mark(entry, TaskState.FAILED if error else TaskState.SUCCEEDED, error)
