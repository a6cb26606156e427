"""The compute contract: submit a task, poll it, stop it, read its log.

A task names an importable function `module:function` and JSON-able keyword arguments. The function is
called as `fn(log, **args)` where `log` is a text stream that ends up in the task's log file. An engine
runs it somewhere (this process, a child process, a cluster) and reports one `TaskStatus`.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO


class TaskState(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"
    TIMED_OUT = "TimedOut"

    @property
    def finished(self) -> bool:
        return self not in (TaskState.PENDING, TaskState.RUNNING)


@dataclasses.dataclass(frozen=True)
class Task:
    id: str
    target: str
    args: dict[str, Any]
    log_path: Path
    #: Seconds the task may run before the engine kills it (state TIMED_OUT); None means no limit.
    timeout: float | None = None


@dataclasses.dataclass
class TaskStatus:
    state: TaskState
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None


OnDone = Callable[[Task, TaskStatus], None]


class ComputeEngine(Protocol):
    def submit(self, task: Task, on_done: OnDone | None = None) -> None: ...
    def status(self, task_id: str) -> TaskStatus: ...
    def stop(self, task_id: str) -> None: ...
    def logs(self, task_id: str) -> str: ...
    def wait(self, task_id: str, timeout: float | None = None) -> TaskStatus: ...
    def close(self) -> None: ...


class UnknownTask(KeyError):
    pass


def resolve_target(target: str) -> Callable[..., Any]:
    module_name, _, func_name = target.partition(":")
    if not func_name:
        raise ValueError(f"Task target must be 'module:function', got {target!r}.")
    return getattr(importlib.import_module(module_name), func_name)


def describe_exception(exc: BaseException) -> str:
    """The one line a user sees as a FailureReason: the message, or the type when there is none."""
    text = str(exc).strip()
    return text if text else type(exc).__name__


def read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_until_finished(status: Callable[[], TaskStatus], timeout: float | None) -> TaskStatus:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        current = status()
        if current.state.finished or (deadline is not None and time.monotonic() >= deadline):
            return current
        time.sleep(0.02)


def open_log(path: Path) -> TextIO:
    """The task's log, opened for appending, with the time of each line kept beside it."""
    from sagelab.compute.log_times import LogClock, TimedLog

    path.parent.mkdir(parents=True, exist_ok=True)
    return TimedLog(path.open("a", buffering=1, encoding="utf-8"), LogClock(path))  # type: ignore[return-value]
