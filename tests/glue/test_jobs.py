"""Glue pythonshell jobs through a real boto3 client: a user script on the compute engine, with bookmarks."""

from __future__ import annotations

import json
import time

import botocore.exceptions
import pytest
from conftest import unique
from lake_helpers import ROLE

ETL_SCRIPT = b'''
import json, sys
import boto3
from awsglue.utils import getResolvedOptions
from sagelab.glue.bookmarks import new_objects

args = getResolvedOptions(sys.argv, ["JOB_NAME", "source", "target"])
s3 = boto3.client("s3")
uris = new_objects(args["source"])
print(f"{args['JOB_NAME']}: processing {len(uris)} new objects")
total = 0
for uri in uris:
    bucket, _, key = uri[5:].partition("/")
    total += sum(int(x) for x in s3.get_object(Bucket=bucket, Key=key)["Body"].read().split())
bucket, _, key = args["target"][5:].partition("/")
s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"objects": uris, "total": total}).encode())
'''

FAILING_SCRIPT = b'''
import sys
print("about to fail")
raise ValueError("the input is broken: " + sys.argv[sys.argv.index("--mode") + 1])
'''

SLOW_SCRIPT = b'''
import time
print("sleeping", flush=True)
time.sleep(60)
'''


def wait_run(glue, job: str, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if run["JobRunState"] in ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR"):
            return run
        time.sleep(0.2)
    raise TimeoutError(run_id)


def create_job(glue, s3, bucket: str, script: bytes, **kwargs) -> str:
    name = unique("job")
    s3.put_object(Bucket=bucket, Key=f"scripts/{name}.py", Body=script)
    glue.create_job(Name=name, Role=ROLE, Command={"Name": "pythonshell", "PythonVersion": "3.9",
                                                   "ScriptLocation": f"s3://{bucket}/scripts/{name}.py"},
                    MaxCapacity=0.0625, **kwargs)
    return name


@pytest.mark.slow
def test_pythonshell_job_with_bookmarks(glue, s3, bucket, server):
    name = create_job(glue, s3, bucket, ETL_SCRIPT, DefaultArguments={
        "--source": f"s3://{bucket}/incoming/", "--job-bookmark-option": "job-bookmark-enable"})
    job = glue.get_job(JobName=name)["Job"]
    assert job["Command"]["Name"] == "pythonshell" and job["MaxCapacity"] == 0.0625
    s3.put_object(Bucket=bucket, Key="incoming/a.txt", Body=b"1 2 3")
    s3.put_object(Bucket=bucket, Key="incoming/b.txt", Body=b"10")
    first = glue.start_job_run(JobName=name, Arguments={"--target": f"s3://{bucket}/out/run1.json"})["JobRunId"]
    run = wait_run(glue, name, first)
    assert run["JobRunState"] == "SUCCEEDED", run
    assert run["Arguments"] == {"--target": f"s3://{bucket}/out/run1.json"}
    out = json.loads(s3.get_object(Bucket=bucket, Key="out/run1.json")["Body"].read())
    assert out == {"objects": [f"s3://{bucket}/incoming/a.txt", f"s3://{bucket}/incoming/b.txt"], "total": 16}

    time.sleep(1.1)  # S3 LastModified has second resolution
    s3.put_object(Bucket=bucket, Key="incoming/c.txt", Body=b"100")
    second = glue.start_job_run(JobName=name, Arguments={"--target": f"s3://{bucket}/out/run2.json"})["JobRunId"]
    run = wait_run(glue, name, second)
    assert run["JobRunState"] == "SUCCEEDED", run
    assert run["PreviousRunId"] == first
    out = json.loads(s3.get_object(Bucket=bucket, Key="out/run2.json")["Body"].read())
    assert out == {"objects": [f"s3://{bucket}/incoming/c.txt"], "total": 100}

    runs = glue.get_job_runs(JobName=name)["JobRuns"]
    assert [r["Id"] for r in runs] == [second, first]
    bookmark = glue.get_job_bookmark(JobName=name)["JobBookmarkEntry"]
    assert bookmark["Run"] == 2 and bookmark["RunId"] == second
    assert f"s3://{bucket}/incoming/" in json.loads(bookmark["JobBookmark"])
    log = (server.home / "logs" / "GlueJobs" / name / f"{second}.log").read_text()
    assert f"{name}: processing 1 new objects" in log

    glue.reset_job_bookmark(JobName=name)
    third = glue.start_job_run(JobName=name, Arguments={"--target": f"s3://{bucket}/out/run3.json"})["JobRunId"]
    assert wait_run(glue, name, third)["JobRunState"] == "SUCCEEDED"
    assert json.loads(s3.get_object(Bucket=bucket, Key="out/run3.json")["Body"].read())["total"] == 116


@pytest.mark.slow
def test_failing_script_reports_its_exception(glue, s3, bucket):
    name = create_job(glue, s3, bucket, FAILING_SCRIPT)
    run_id = glue.start_job_run(JobName=name, Arguments={"--mode": "strict"})["JobRunId"]
    run = wait_run(glue, name, run_id)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "ValueError: the input is broken: strict"
    assert run["CompletedOn"] >= run["StartedOn"]


@pytest.mark.slow
def test_concurrent_runs_limit_and_stop(glue, s3, bucket):
    name = create_job(glue, s3, bucket, SLOW_SCRIPT, ExecutionProperty={"MaxConcurrentRuns": 1})
    run_id = glue.start_job_run(JobName=name)["JobRunId"]
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        glue.start_job_run(JobName=name)
    assert excinfo.value.response["Error"]["Code"] == "ConcurrentRunsExceededException"
    stopped = glue.batch_stop_job_run(JobName=name, JobRunIds=[run_id, "jr_missing"])
    assert [s["JobRunId"] for s in stopped["SuccessfulSubmissions"]] == [run_id]
    assert stopped["Errors"][0]["JobRunId"] == "jr_missing"
    assert wait_run(glue, name, run_id)["JobRunState"] == "STOPPED"


def test_job_validation(glue, bucket):
    bad = [
        ({"Command": {"Name": "gluestreaming", "ScriptLocation": f"s3://{bucket}/x.py"}}, "Command.Name"),
        ({"Command": {"Name": "pythonshell", "ScriptLocation": "x.py"}}, "ScriptLocation"),
        ({"Command": {"Name": "pythonshell", "ScriptLocation": f"s3://{bucket}/x.py"}, "MaxCapacity": 2.0},
         "MaxCapacity"),
        ({"Command": {"Name": "pythonshell", "ScriptLocation": f"s3://{bucket}/x.py"},
          "DefaultArguments": {"input": "x"}}, "'--input'"),
    ]
    for params, field in bad:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            glue.create_job(Name=unique("job"), Role=ROLE, **params)
        assert excinfo.value.response["Error"]["Code"] == "InvalidInputException"
        assert field in excinfo.value.response["Error"]["Message"]
    for call in (lambda: glue.get_job(JobName="missing"), lambda: glue.start_job_run(JobName="missing"),
                 lambda: glue.get_job_bookmark(JobName="missing")):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == "EntityNotFoundException"
