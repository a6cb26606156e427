"""The bookkeeping every queueing engine shares: tasks wait in a queue until fewer than `max_concurrency`
run, and their status, stop, logs, wait and close behave the same whatever runs them.

A subclass says how a task is started and ended: `_started(entry)` (has it been handed to a runner?),
`_kill(entry)` (end it now), and the monitor loop `_loop` that starts queued tasks, enforces deadlines and
reaps finished ones with `_mark` and `_notify`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any

from sagelab.compute.engine import (
    OnDone,
    Task,
    TaskState,
    TaskStatus,
    UnknownTask,
    describe_exception,
    read_log,
    wait_until_finished,
)


class QueuedEngine:
    #: The monitor thread's name.
    monitor_name = "engine"
    #: How long `close` waits for the monitor thread to end.
    close_timeout = 10.0

    def __init__(self, max_concurrency: int):
        self.max_concurrency = max(1, max_concurrency)
        self._tasks: dict[str, Any] = {}
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._monitor: threading.Thread | None = None

    # --- what a subclass provides ------------------------------------------------------------------
    def _entry(self, task: Task, on_done: OnDone | None) -> Any:
        raise NotImplementedError

    def _started(self, entry: Any) -> bool:
        raise NotImplementedError

    def _kill(self, entry: Any) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        raise NotImplementedError

    # --- public contract ----------------------------------------------------------------------------
    def submit(self, task: Task, on_done: OnDone | None = None) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("engine is closed")
            self._tasks[task.id] = self._entry(task, on_done)
            self._queue.append(task.id)
            if self._monitor is None:
                self._monitor = threading.Thread(target=self._loop, name=self.monitor_name, daemon=True)
                self._monitor.start()
        self._wake.set()

    def status(self, task_id: str) -> TaskStatus:
        with self._lock:
            if task_id not in self._tasks:
                raise UnknownTask(task_id)
            return self._tasks[task_id].status

    def stop(self, task_id: str) -> None:
        with self._lock:
            if task_id not in self._tasks:
                raise UnknownTask(task_id)
            entry = self._tasks[task_id]
            if entry.status.state.finished:
                return
            entry.stop_as = TaskState.STOPPED
            if not self._started(entry):  # still queued: it never starts
                self._queue.remove(task_id)
                finished = self._mark(entry, TaskState.STOPPED, None)
            else:
                self._kill(entry)
                finished = None
        if finished:
            self._notify(finished)
        self._wake.set()

    def logs(self, task_id: str) -> str:
        with self._lock:
            if task_id not in self._tasks:
                raise UnknownTask(task_id)
            return read_log(self._tasks[task_id].task.log_path)

    def wait(self, task_id: str, timeout: float | None = None) -> TaskStatus:
        return wait_until_finished(lambda: self.status(task_id), timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for entry in self._tasks.values():
                if self._started(entry) and not entry.status.state.finished:
                    entry.stop_as = TaskState.STOPPED
                    self._kill(entry)
        self._wake.set()
        if self._monitor is not None:
            self._monitor.join(timeout=self.close_timeout)

    # --- for the monitor loop ----------------------------------------------------------------------
    @staticmethod
    def _mark(entry: Any, state: TaskState, error: str | None) -> Any:
        entry.status.state, entry.status.error, entry.status.ended_at = state, error, time.time()
        return entry

    @staticmethod
    def _notify(entry: Any) -> None:
        if entry.on_done is not None:
            try:
                entry.on_done(entry.task, entry.status)
            except Exception as exc:  # noqa: BLE001 - a callback bug must not kill the monitor
                print(f"sagelab: task callback failed for {entry.task.id}: {describe_exception(exc)}",
                      file=sys.stderr)
