"""A server killed mid-work settles what it left running when it starts again: Glue job runs, Athena
queries and crawlers end with a reason; the catalog and finished queries survive."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lake_helpers import ROLE, run_query, start_query

from sagelab.embedded import ServerProcess


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_kill_then_restart_settles_runs_and_queries(tmp_path):
    home = tmp_path / "home"
    first = ServerProcess(home).start()
    try:
        s3, glue, athena = first.client("s3"), first.client("glue"), first.client("athena")
        s3.create_bucket(Bucket="restart")
        s3.put_object(Bucket="restart", Key="job.py", Body=b"import time\nprint('working', flush=True)\ntime.sleep(120)\n")
        glue.create_database(DatabaseInput={"Name": "kept"})
        glue.create_job(Name="long", Role=ROLE, Command={"Name": "pythonshell", "ScriptLocation": "s3://restart/job.py"})
        done = run_query(athena, "SELECT 1 AS one", "kept", "s3://restart/results/")
        run_id = glue.start_job_run(JobName="long")["JobRunId"]
        query_id = start_query(athena, "SELECT count(*) FROM range(100000000000) a", "kept", "s3://restart/results/")
        deadline = time.monotonic() + 60
        while glue.get_job_run(JobName="long", RunId=run_id)["JobRun"]["JobRunState"] != "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        first.kill()
    # The script dies with its run's process, which dies with the server.
    deadline = time.monotonic() + 20
    while _processes_mentioning(run_id):
        assert time.monotonic() < deadline, "the job script outlived the server"
        time.sleep(0.2)
    second = ServerProcess(home).start()
    try:
        glue, athena = second.client("glue"), second.client("athena")
        run = glue.get_job_run(JobName="long", RunId=run_id)["JobRun"]
        assert run["JobRunState"] == "FAILED" and "server stopped" in run["ErrorMessage"]
        query = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        assert query["Status"]["State"] == "FAILED" and "server stopped" in query["Status"]["StateChangeReason"]
        assert glue.get_database(Name="kept")["Database"]["Name"] == "kept"
        rows = athena.get_query_results(QueryExecutionId=done["QueryExecutionId"])["ResultSet"]["Rows"]
        assert [d["VarCharValue"] for d in rows[1]["Data"]] == ["1"]  # read back from the lake's CSV
    finally:
        second.stop()
