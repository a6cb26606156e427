"""Every compute engine passes the same kit; the local engine also honours its concurrency limit."""

from __future__ import annotations

import json
import time

import psutil
import pytest

from sagelab.compute.engine import TaskState
from sagelab.compute.inline import InlineEngine
from sagelab.compute.local import LocalProcessEngine
from sagelab.testing import engine_kit


def _ray_engine():
    from sagelab.compute.ray_engine import RayEngine

    return RayEngine(max_concurrency=2)  # on the module's cluster (`ray_cluster`)


ENGINES = {
    "inline": InlineEngine,
    "ray": _ray_engine,
    "local": lambda: LocalProcessEngine(max_concurrency=2),
    "local-standby": lambda: LocalProcessEngine(max_concurrency=2, warmup=f"{engine_kit.KIT}:warm_up"),
}


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for every Ray test of this module: it takes seconds to start."""
    from sagelab.testing.ray_cluster import local_ray

    with local_ray(num_cpus=2) as ray:
        yield ray


@pytest.mark.parametrize("check", engine_kit.CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("engine_name", sorted(ENGINES))
def test_engine_conformance(engine_name, check, tmp_path, request):
    if engine_name == "ray":
        request.getfixturevalue("ray_cluster")
    engine = ENGINES[engine_name]()
    try:
        check(engine, tmp_path)
    finally:
        engine.close()


def test_local_engine_limits_concurrency(tmp_path):
    engine = LocalProcessEngine(max_concurrency=1)
    try:
        tasks = [engine_kit._task(tmp_path, "sleep_for", seconds=0.3, marker=str(tmp_path / f"m{i}.json"))
                 for i in range(3)]
        for task in tasks:
            engine.submit(task)
        for task in tasks:
            assert engine.wait(task.id, timeout=60).state is TaskState.SUCCEEDED
        spans = [json.loads((tmp_path / f"m{i}.json").read_text()) for i in range(3)]
        spans.sort(key=lambda s: s["start"])
        for earlier, later in zip(spans, spans[1:], strict=False):
            assert later["start"] >= earlier["end"] - 0.01, "two tasks ran at once with max_concurrency=1"
    finally:
        engine.close()


def test_local_engine_stops_queued_task(tmp_path):
    engine = LocalProcessEngine(max_concurrency=1)
    try:
        running = engine_kit._task(tmp_path, "sleep_for", seconds=30)
        queued = engine_kit._task(tmp_path, "say_hello", name="never")
        engine.submit(running)
        engine.submit(queued)
        engine.stop(queued.id)
        assert engine.status(queued.id).state is TaskState.STOPPED
        engine.stop(running.id)
        assert engine.wait(running.id, timeout=30).state is TaskState.STOPPED
        assert "hello never" not in engine.logs(queued.id)
    finally:
        engine.close()


def _warmth_of_two_tasks(tmp_path, warm_up: str, *, wait_for_standby: bool) -> tuple[str, str]:
    """Run two tasks one after the other on a one-slot engine with a stand-by; each one's log says whether
    it ran in a warmed process."""
    engine = LocalProcessEngine(max_concurrency=1, warmup=f"{engine_kit.KIT}:{warm_up}")
    try:
        first, second = (engine_kit._task(tmp_path, "report_warmth") for _ in range(2))
        engine.submit(first)
        assert engine.wait(first.id, timeout=60).state is TaskState.SUCCEEDED
        if wait_for_standby:
            assert engine.wait_for_standby(timeout=60)
        engine.submit(second)
        assert engine.wait(second.id, timeout=30).state is TaskState.SUCCEEDED
        return engine.logs(first.id), engine.logs(second.id)
    finally:
        engine.close()


def test_local_engine_runs_the_next_task_in_the_warmed_standby(tmp_path):
    first, second = _warmth_of_two_tasks(tmp_path, "warm_up", wait_for_standby=True)
    assert "warm=False" in first  # nothing was idle yet: started on demand
    assert "warm=True" in second


def test_local_engine_does_not_wait_for_a_standby_still_warming_up(tmp_path):
    # The stand-by forked after the first task sleeps for a minute before it is ready: the second task must
    # start on demand instead of waiting for it.
    _, second = _warmth_of_two_tasks(tmp_path, "slow_warm_up", wait_for_standby=False)
    assert "warm=False" in second


@pytest.mark.slow
def test_ray_engine_runs_each_task_in_a_fresh_process(ray_cluster, tmp_path):
    engine = _ray_engine()
    try:
        tasks = [engine_kit._task(tmp_path, "report_pid") for _ in range(2)]
        for task in tasks:  # one after the other, so that Ray may well reuse its worker for the second
            engine.submit(task)
            assert engine.wait(task.id, timeout=60).state is TaskState.SUCCEEDED
        assert engine.logs(tasks[0].id) != engine.logs(tasks[1].id)
    finally:
        engine.close()


def _process_writing(log_path, timeout: float = 30.0):
    """The process (one of this test's descendants) that holds a task's log open."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in psutil.Process().children(recursive=True):
            try:
                if any(f.path == str(log_path) for f in process.open_files()):
                    return process
            except psutil.Error:
                continue
        time.sleep(0.05)
    raise AssertionError(f"no process has {log_path} open")


@pytest.mark.slow
def test_ray_engine_reports_a_killed_worker_as_failed(ray_cluster, tmp_path):
    engine = _ray_engine()
    try:
        task = engine_kit._task(tmp_path, "sleep_for", seconds=60)
        engine.submit(task)
        # The task's process is forked by the Ray worker's forkserver: kill the worker that holds the task.
        worker = _process_writing(task.log_path).parent().parent()
        assert "forkserver" not in " ".join(worker.cmdline())
        worker.kill()
        status = engine.wait(task.id, timeout=60)
        assert status.state is TaskState.FAILED
        assert status.error == "The Ray worker running the task died."
    finally:
        engine.close()


@pytest.mark.slow
def test_ray_engine_stop_kills_the_task_process(ray_cluster, tmp_path):
    engine = _ray_engine()
    try:
        task = engine_kit._task(tmp_path, "sleep_for", seconds=60)
        engine.submit(task)
        process = _process_writing(task.log_path)
        engine.stop(task.id)
        assert engine.wait(task.id, timeout=30).state is TaskState.STOPPED
        process.wait(timeout=30)  # psutil.TimeoutExpired if the work outlived the stop
    finally:
        engine.close()
