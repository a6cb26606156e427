"""Conformance kit for compute engines: every `ComputeEngine` must pass `check_engine`.

The task functions below are importable by path, as engine tasks must be.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from sagelab.compute.engine import ComputeEngine, Task, TaskState, TaskStatus, UnknownTask

KIT = "sagelab.testing.engine_kit"


#: Set by `warm_up` in a stand-by process; a task reads it to tell where it ran.
WARMED = False


def warm_up() -> None:
    global WARMED
    WARMED = True


def slow_warm_up() -> None:
    """A warm-up far slower than any task: a task must not wait for it."""
    global WARMED
    time.sleep(60)
    WARMED = True


def report_warmth(log: TextIO) -> None:
    log.write(f"warm={WARMED}\n")


def report_pid(log: TextIO) -> None:
    import os

    log.write(f"pid={os.getpid()}\n")


def say_hello(log: TextIO, *, name: str) -> None:
    log.write(f"hello {name}\n")


def fail_with(log: TextIO, *, message: str) -> None:
    log.write("about to fail\n")
    raise ValueError(message)


def sleep_for(log: TextIO, *, seconds: float, marker: str | None = None) -> None:
    if marker:
        Path(marker).write_text(json.dumps({"start": time.time()}))
    log.write("sleeping\n")
    log.flush()
    time.sleep(seconds)
    if marker:
        data = json.loads(Path(marker).read_text())
        data["end"] = time.time()
        Path(marker).write_text(json.dumps(data))


def _task(tmp: Path, target: str, timeout: float | None = None, **args) -> Task:
    task_id = uuid.uuid4().hex
    return Task(id=task_id, target=f"{KIT}:{target}", args=args, log_path=tmp / f"{task_id}.log", timeout=timeout)


def check_success_and_logs(engine: ComputeEngine, tmp: Path) -> None:
    done: list[TaskStatus] = []
    task = _task(tmp, "say_hello", name="kit")
    engine.submit(task, lambda t, s: done.append(s))
    status = engine.wait(task.id, timeout=60)
    assert status.state is TaskState.SUCCEEDED, status
    assert "hello kit" in engine.logs(task.id)
    deadline = time.monotonic() + 5
    while not done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(done) == 1 and done[0].state is TaskState.SUCCEEDED
    assert status.started_at is not None and status.ended_at is not None and status.ended_at >= status.started_at


def check_failure_reports_error(engine: ComputeEngine, tmp: Path) -> None:
    task = _task(tmp, "fail_with", message="the data is bad: row 7")
    engine.submit(task)
    status = engine.wait(task.id, timeout=60)
    assert status.state is TaskState.FAILED
    assert status.error == "the data is bad: row 7"
    assert "about to fail" in engine.logs(task.id)


def check_stop(engine: ComputeEngine, tmp: Path) -> None:
    task = _task(tmp, "sleep_for", seconds=60)
    engine.submit(task)
    deadline = time.monotonic() + 30
    while engine.status(task.id).state is not TaskState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    engine.stop(task.id)
    status = engine.wait(task.id, timeout=30)
    assert status.state is TaskState.STOPPED
    assert time.monotonic() - started < 20


def check_timeout(engine: ComputeEngine, tmp: Path) -> None:
    task = _task(tmp, "sleep_for", timeout=0.5, seconds=60)
    engine.submit(task)
    status = engine.wait(task.id, timeout=30)
    assert status.state is TaskState.TIMED_OUT


def check_unknown_task(engine: ComputeEngine, tmp: Path) -> None:
    for call in (engine.status, engine.stop, engine.logs):
        try:
            call("no-such-task")
        except UnknownTask:
            continue
        raise AssertionError(f"{call.__name__} of an unknown task must raise UnknownTask")


CHECKS: tuple[Callable[[ComputeEngine, Path], None], ...] = (
    check_success_and_logs, check_failure_reports_error, check_stop, check_timeout, check_unknown_task)


def check_engine(make_engine: Callable[[], ComputeEngine], tmp: Path) -> None:
    for check in CHECKS:
        engine = make_engine()
        try:
            check(engine, tmp)
        finally:
            engine.close()
