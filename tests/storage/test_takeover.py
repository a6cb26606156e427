"""One server of two dies under load: the other takes its jobs over, and no job is lost or runs twice.

The kill test itself is `sagelab.testing.kill_load` (benchmarks/takeover.py runs it bigger): two servers on
one PostgreSQL database, script-mode jobs on both, one server SIGKILLed while its jobs run.
"""

from __future__ import annotations

import uuid

import pytest

from sagelab.testing.kill_load import run_kill_test

pytestmark = pytest.mark.slow


def test_a_killed_server_loses_no_job_and_runs_none_twice(postgres_cluster, tmp_path):
    url = postgres_cluster.create_database(f"kill_{uuid.uuid4().hex[:10]}")
    report = run_kill_test(url, tmp_path)
    print(f"\nkill test: {report.summary()}")
    assert report.lost == [] and report.doubled == [], (report.lost, report.doubled, report.failure_reasons)
    assert report.on_killed_server == 4 and len(report.retried) == 4  # every job it ran was running then
    for job, transitions in report.transitions.items():
        assert any("retry 1 of the RetryStrategy" in t.get("StatusMessage", "") for t in transitions), job
    assert len(report.takeover_seconds) == 4 and all(seconds > 0 for seconds in report.takeover_seconds)
