"""InlineEngine: runs each task on a thread of this process. For tests and debugging.

Stop and timeouts are observed at once in the task's status, but the thread itself cannot be killed; its
late results are ignored (services fence a stopped task's writes with a lease).
"""

from __future__ import annotations

import threading
import time

from sagelab.compute.engine import (
    OnDone,
    Task,
    TaskState,
    TaskStatus,
    UnknownTask,
    describe_exception,
    open_log,
    read_log,
    resolve_target,
    wait_until_finished,
)


class InlineEngine:
    def __init__(self) -> None:
        self._tasks: dict[str, tuple[Task, TaskStatus, OnDone | None]] = {}
        self._lock = threading.Lock()

    def submit(self, task: Task, on_done: OnDone | None = None) -> None:
        status = TaskStatus(TaskState.RUNNING, started_at=time.time())
        with self._lock:
            self._tasks[task.id] = (task, status, on_done)
        threading.Thread(target=self._run, args=(task,), name=f"inline-{task.id}", daemon=True).start()
        if task.timeout is not None:
            timer = threading.Timer(task.timeout, self._finish, args=(task.id, TaskState.TIMED_OUT, None))
            timer.daemon = True
            timer.start()

    def _run(self, task: Task) -> None:
        try:
            with open_log(task.log_path) as log:
                resolve_target(task.target)(log, **task.args)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes the task's error
            self._finish(task.id, TaskState.FAILED, describe_exception(exc))
        else:
            self._finish(task.id, TaskState.SUCCEEDED, None)

    def _finish(self, task_id: str, state: TaskState, error: str | None) -> None:
        with self._lock:
            task, status, on_done = self._tasks[task_id]
            if status.state.finished:
                return
            status.state, status.error, status.ended_at = state, error, time.time()
        if on_done is not None:
            on_done(task, status)

    def status(self, task_id: str) -> TaskStatus:
        with self._lock:
            if task_id not in self._tasks:
                raise UnknownTask(task_id)
            return self._tasks[task_id][1]

    def stop(self, task_id: str) -> None:
        self.status(task_id)
        self._finish(task_id, TaskState.STOPPED, None)

    def logs(self, task_id: str) -> str:
        with self._lock:
            if task_id not in self._tasks:
                raise UnknownTask(task_id)
            return read_log(self._tasks[task_id][0].log_path)

    def wait(self, task_id: str, timeout: float | None = None) -> TaskStatus:
        return wait_until_finished(lambda: self.status(task_id), timeout)

    def close(self) -> None:
        pass
