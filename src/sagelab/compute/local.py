"""LocalProcessEngine: each task in its own OS process, at most `max_concurrency` at once. The default.

Processes are forked from a forkserver that has already imported the heavy libraries (`preload`), so a
job starts in milliseconds instead of paying for numpy/xgboost imports each time. Each task runs in its
own process group with its stdout/stderr sent to its log file, and dies with the server: the forkserver
exits when the server does, and every task process asks the kernel to kill it when its parent goes.

A fresh process still pays first-use costs (page faults while its heap grows, thread pools, lazy
initialisation inside libraries). With a `warmup` target the engine keeps one stand-by process that has
already paid them, forked while the engine is idle so it never competes with a running task; the next
task is handed to it over a pipe. A stand-by still warming up when a task arrives is killed and the task
starts on demand: waiting for the warm-up would cost more than it saves.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sagelab.compute.engine import (
    OnDone,
    Task,
    TaskState,
    TaskStatus,
    describe_exception,
    resolve_target,
)
from sagelab.compute.lifetime import die_with_parent
from sagelab.compute.log_times import LogClock, TimedLog
from sagelab.compute.queued import QueuedEngine

# Task processes keep libgomp's default OpenMP waiting: OMP_WAIT_POLICY=PASSIVE (or a small GOMP_SPINCOUNT)
# made a lone 2-thread XGBoost training 15 % slower here, while parallel tuning trials (one thread each)
# scaled as well without it.

#: What a stand-by process sends once its warm-up is done.
_READY = "ready"


def _result_path(task: Task) -> Path:
    return task.log_path.with_name(task.log_path.name + ".result.json")


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _tune_allocator() -> None:
    """Keep freed memory in the heap instead of returning it to the kernel.

    A task process is short-lived and allocates large arrays repeatedly (reading data, building
    matrices); glibc's defaults hand each one back to the kernel and fault it in again, which measured
    as ~10 % of an XGBoost training job here. The memory is released when the task process exits.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
            libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def _release_forkserver() -> None:
    """Close this process's copy of the forkserver's "alive" pipe.

    The forkserver exits when every holder of that pipe has gone; task processes inherit a copy, so a task
    that kept it would keep the forkserver (and, through the death signal, itself) alive after a server
    crash. Without the copy, a dead server takes the forkserver and then every task with it.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


def _standby_main(conn: multiprocessing.connection.Connection, warmup: str) -> None:
    """A process that prepares itself, then waits for the one task it will run (or for the pipe to close)."""
    die_with_parent()
    _release_forkserver()
    _tune_allocator()
    with contextlib.suppress(Exception):  # a failed warm-up only costs the speed it was meant to win
        resolve_target(warmup)()
    try:
        conn.send(_READY)
        task = conn.recv()
    except (EOFError, OSError):
        os._exit(0)
    conn.close()
    _run_task(task)


def _child_main(task: Task) -> None:
    """Entry point of a task process started on demand."""
    die_with_parent()
    _release_forkserver()
    _tune_allocator()
    _run_task(task)


def _run_task(task: Task) -> None:
    os.setpgrp()
    task.log_path.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(task.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    clock = LogClock(task.log_path)
    sys.stdout = TimedLog(os.fdopen(1, "w", buffering=1, encoding="utf-8", closefd=False), clock)
    sys.stderr = TimedLog(os.fdopen(2, "w", buffering=1, encoding="utf-8", closefd=False), clock)
    result: dict[str, str | None] = {"error": None}
    try:
        resolve_target(task.target)(sys.stdout, **task.args)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes the task's error
        import traceback

        traceback.print_exc()
        result["error"] = describe_exception(exc)
    sys.stdout.flush()
    sys.stderr.flush()
    _result_path(task).write_text(json.dumps(result))
    os._exit(0 if result["error"] is None else 1)


class _Running:
    __slots__ = ("task", "process", "status", "on_done", "deadline", "stop_as")

    def __init__(self, task: Task, status: TaskStatus, on_done: OnDone | None):
        self.task, self.status, self.on_done = task, status, on_done
        self.process: multiprocessing.process.BaseProcess | None = None
        self.deadline: float | None = None
        self.stop_as: TaskState | None = None


class _Standby:
    __slots__ = ("process", "conn")

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: multiprocessing.connection.Connection):
        self.process, self.conn = process, conn

    def discard(self) -> None:
        self.conn.close()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.join(timeout=5)


class LocalProcessEngine(QueuedEngine):
    monitor_name = "local-engine"

    def __init__(self, max_concurrency: int | None = None, preload: Sequence[str] = (), warmup: str | None = None):
        super().__init__(max_concurrency or (os.cpu_count() or 1))
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(list(preload))
        #: "module:function" a stand-by process calls before it waits for a task; None: no stand-by.
        self.warmup = warmup
        self._standby: _Standby | None = None

    def _entry(self, task: Task, on_done: OnDone | None) -> _Running:
        return _Running(task, TaskStatus(TaskState.PENDING), on_done)

    def _started(self, entry: _Running) -> bool:
        return entry.process is not None

    def wait_for_standby(self, timeout: float) -> bool:
        """Wait until a warmed stand-by process is ready for the next task; False if none is within `timeout`."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            standby = self._standby
            if standby is not None:
                with contextlib.suppress(OSError, EOFError):  # a task took it meanwhile: wait for the next
                    if standby.conn.poll(min(remaining, 0.05)):
                        return True
            time.sleep(min(max(deadline - time.monotonic(), 0.0), 0.01))
        return False

    # --- the monitor thread --------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            finished: list[_Running] = []
            with self._lock:
                running = [e for e in self._tasks.values() if e.process is not None and not e.status.state.finished]
                now = time.monotonic()
                for entry in running:
                    if entry.deadline is not None and now >= entry.deadline and entry.stop_as is None:
                        entry.stop_as = TaskState.TIMED_OUT
                        self._kill(entry)
                    if entry.process is not None and entry.process.exitcode is not None:
                        finished.append(self._reap(entry))
                running_count = len(running) - len(finished)
                while self._queue and running_count < self.max_concurrency and not self._closed:
                    self._start(self._tasks[self._queue.popleft()])
                    running_count += 1
                sentinels = [e.process.sentinel for e in self._tasks.values()
                             if e.process is not None and not e.status.state.finished]
                idle = self._closed and not sentinels
                if not sentinels and not self._queue and not self._closed:
                    self._prepare_standby()
            for entry in finished:
                self._notify(entry)
            if idle:
                return
            self._wake.clear()
            if sentinels:
                multiprocessing.connection.wait(sentinels, timeout=0.05)
            else:
                self._wake.wait(timeout=0.5)

    def _prepare_standby(self) -> None:
        """Fork the stand-by process (only while idle, so its warm-up never slows a running task)."""
        if self.warmup is None or (self._standby is not None and self._standby.process.exitcode is None):
            return
        ours, theirs = self._ctx.Pipe()
        process = self._ctx.Process(target=_standby_main, args=(theirs, self.warmup), name="task-standby")
        process.start()
        theirs.close()
        self._standby = _Standby(process, ours)

    def _take_standby(self, task: Task) -> multiprocessing.process.BaseProcess | None:
        standby, self._standby = self._standby, None
        if standby is None or standby.process.exitcode is not None:
            return None
        try:
            if not standby.conn.poll() or standby.conn.recv() != _READY:
                standby.discard()  # still warming up
                return None
            standby.conn.send(task)
        except (OSError, EOFError):
            standby.discard()
            return None
        standby.conn.close()
        return standby.process

    def _start(self, entry: _Running) -> None:
        with contextlib.suppress(FileNotFoundError):
            _result_path(entry.task).unlink()
        process = self._take_standby(entry.task)
        if process is None:
            process = self._ctx.Process(target=_child_main, args=(entry.task,), name=f"task-{entry.task.id}")
            process.start()
        entry.process = process
        entry.status.state = TaskState.RUNNING
        entry.status.started_at = time.time()
        if entry.task.timeout is not None:
            entry.deadline = time.monotonic() + entry.task.timeout

    def _kill(self, entry: _Running) -> None:
        if entry.process is not None and entry.process.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(entry.process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                entry.process.kill()

    def _reap(self, entry: _Running) -> _Running:
        assert entry.process is not None
        entry.process.join()
        if entry.stop_as is not None:
            return self._mark(entry, entry.stop_as, None)
        try:
            error = json.loads(_result_path(entry.task).read_text())["error"]
        except (FileNotFoundError, ValueError, KeyError):
            code = entry.process.exitcode
            error = f"The task process died (exit code {code})." if code else None
        return self._mark(entry, TaskState.FAILED if error else TaskState.SUCCEEDED, error)
