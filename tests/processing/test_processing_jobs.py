"""Processing jobs end to end: a real server, real boto3 clients, real user scripts in their own process."""

from __future__ import annotations

import json
import textwrap
import time

import botocore.exceptions
import pytest
from conftest import unique

from sagelab.platform import Platform
from sagelab.processing import states
from sagelab.processing.service import SERVER_STOPPED
from sagelab.settings import load_settings

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
CODE = "/opt/ml/processing/input/code"

# Paths spelled the way SageMaker examples spell them: in the script's own code, and in its arguments.
PREPROCESS = """
import argparse, json, os, sys
import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

parser = argparse.ArgumentParser()
parser.add_argument("--input-dir")
parser.add_argument("--factor", type=float)
args = parser.parse_args()
frame = pd.read_csv(os.path.join(args.input_dir, "numbers.csv"), header=None)
frame[1] = frame[1] * args.factor
frame[2] = StandardScaler().fit_transform(frame[[2]]).ravel()
os.makedirs("/opt/ml/processing/output/train/part", exist_ok=True)
frame.to_csv("/opt/ml/processing/output/train/part/scaled.csv", header=False, index=False)
with open("/opt/ml/processing/output/report/summary.json", "w") as f:
    json.dump({"rows": len(frame), "greeting": os.environ["GREETING"], "sum": float(frame[1].sum()),
               "extra": sorted(os.listdir("/opt/ml/processing/input/data")),
               "config": json.load(open("/opt/ml/config/processingjobconfig.json"))["ProcessingJobName"]}, f)
with open("/opt/ml/output/message", "w") as f:
    f.write("scaled %d rows" % len(frame))
print("processed", len(frame), "rows")
print("a warning on stderr", file=sys.stderr)
"""

FAILING = """
import sys
print("starting")
for number in range(30):
    print("noise line", number, file=sys.stderr)
raise ValueError("row 7 has a bad value")
"""

SLEEPING = """
import time
print("sleeping", flush=True)
time.sleep(120)
"""


def put_script(s3, bucket: str, name: str, code: str) -> str:
    key = f"code/{name}/{name}.py"
    s3.put_object(Bucket=bucket, Key=key, Body=textwrap.dedent(code).encode())
    return f"s3://{bucket}/{key}"


def script_request(name: str, bucket: str, script_uri: str, *, arguments=(), environment=None, inputs=(),
                   outputs=(), max_runtime: int = 300, image: str = SKLEARN_IMAGE) -> dict:
    script = script_uri.rsplit("/", 1)[-1]
    request = {
        "ProcessingJobName": name,
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 5}},
        "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": ["python3", f"{CODE}/{script}"]},
        "RoleArn": ROLE,
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        "ProcessingInputs": [
            {"InputName": "code", "S3Input": {"S3Uri": script_uri, "LocalPath": CODE, "S3DataType": "S3Prefix",
                                              "S3InputMode": "File"}},
            *inputs],
    }
    if arguments:
        request["AppSpecification"]["ContainerArguments"] = list(arguments)
    if environment:
        request["Environment"] = environment
    if outputs:
        request["ProcessingOutputConfig"] = {"Outputs": list(outputs)}
    return request


def wait_processing(sm, name: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sm.describe_processing_job(ProcessingJobName=name)
        if desc["ProcessingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return desc
        time.sleep(0.2)
    raise TimeoutError(name)


def s3_input(name: str, uri: str, local: str) -> dict:
    return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix",
                                           "S3InputMode": "File"}}


def s3_output(name: str, uri: str, local: str) -> dict:
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}


@pytest.mark.slow
def test_script_reads_inputs_and_its_outputs_land_in_s3(sm, s3, bucket, server):
    s3.put_object(Bucket=bucket, Key="raw/numbers.csv", Body=b"1,10,5\n0,20,7\n1,30,9\n")
    s3.put_object(Bucket=bucket, Key="raw/notes/readme.txt", Body=b"nested objects keep their folders")
    name = unique("preprocess")
    sm.create_processing_job(**script_request(
        name, bucket, put_script(s3, bucket, "preprocess", PREPROCESS),
        arguments=["--input-dir", "/opt/ml/processing/input/data", "--factor=2.5"],
        environment={"GREETING": "hello from Environment"},
        inputs=[s3_input("data", f"s3://{bucket}/raw/", "/opt/ml/processing/input/data")],
        outputs=[s3_output("train", f"s3://{bucket}/processed/train", "/opt/ml/processing/output/train"),
                 s3_output("report", f"s3://{bucket}/processed/report/", "/opt/ml/processing/output/report")]))
    sm.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    desc = sm.describe_processing_job(ProcessingJobName=name)
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["ExitMessage"] == "scaled 3 rows"
    assert desc["ProcessingEndTime"] >= desc["ProcessingStartTime"] >= desc["CreationTime"]
    assert desc["ProcessingJobArn"].endswith(f":processing-job/{name}")
    assert desc["Environment"] == {"GREETING": "hello from Environment"}
    assert desc["ProcessingInputs"][1]["S3Input"]["S3DataDistributionType"] == "FullyReplicated"

    scaled = s3.get_object(Bucket=bucket, Key="processed/train/part/scaled.csv")["Body"].read().decode()
    assert [line.split(",")[:2] for line in scaled.split()] == [["1", "25.0"], ["0", "50.0"], ["1", "75.0"]]
    summary = json.loads(s3.get_object(Bucket=bucket, Key="processed/report/summary.json")["Body"].read())
    assert summary == {"rows": 3, "greeting": "hello from Environment", "sum": 150.0,
                       "extra": ["notes", "numbers.csv"], "config": name}

    log = (server.home / "logs" / "ProcessingJobs" / f"{name}.log").read_text()
    assert "processed 3 rows" in log and "a warning on stderr" in log
    listed = sm.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]
    assert [(j["ProcessingJobName"], j["ProcessingJobStatus"]) for j in listed] == [(name, "Completed")]


MODULE = """
import os, pathlib, sys
source = pathlib.Path(os.environ["SAGELAB_INPUT_RAW_DATA"]) / "numbers.csv"
target = pathlib.Path(os.environ["SAGELAB_OUTPUT_COUNTS"]) / "count.txt"
target.write_text(f"{len(source.read_text().split())} {sys.argv[1:]}")
"""


def test_module_entrypoint_on_the_generic_image_finds_paths_in_environment(sm, s3, bucket):
    s3.put_object(Bucket=bucket, Key="raw/numbers.csv", Body=b"1\n2\n3\n4\n")
    put_script(s3, bucket, "counter", MODULE)
    name = unique("module")
    request = script_request(name, bucket, f"s3://{bucket}/code/counter/counter.py", image="sagelab-python:3.11",
                             arguments=["--tag", "x"], environment={"PYTHONPATH": "/opt/ml/processing/input/code"},
                             inputs=[s3_input("raw-data", f"s3://{bucket}/raw/", "/opt/ml/processing/raw")],
                             outputs=[s3_output("counts", f"s3://{bucket}/counts", "/opt/ml/processing/counts")])
    request["AppSpecification"]["ContainerEntrypoint"] = ["python3", "-u", "-m", "counter"]
    sm.create_processing_job(**request)
    desc = wait_processing(sm, name)
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    assert s3.get_object(Bucket=bucket, Key="counts/count.txt")["Body"].read() == b"4 ['--tag', 'x']"


@pytest.mark.slow
def test_failing_script_fails_the_job_with_its_stderr_tail(sm, s3, bucket):
    name = unique("failing")
    sm.create_processing_job(**script_request(name, bucket, put_script(s3, bucket, "failing", FAILING)))
    desc = wait_processing(sm, name)
    assert desc["ProcessingJobStatus"] == "Failed"
    reason = desc["FailureReason"]
    assert reason.startswith("AlgorithmError: the processing script exited with code 1")
    assert "ValueError: row 7 has a bad value" in reason
    assert "noise line 29" in reason and "noise line 3\n" not in reason  # only the last lines
    assert len(reason) <= 1024
    assert sm.list_processing_jobs(NameContains=name, StatusEquals="Failed")["ProcessingJobSummaries"][0][
        "FailureReason"] == reason


@pytest.mark.slow
def test_stop_ends_a_running_script(sm, s3, bucket, server):
    name = unique("stopped")
    sm.create_processing_job(**script_request(name, bucket, put_script(s3, bucket, "sleeping", SLEEPING)))
    log = server.home / "logs" / "ProcessingJobs" / f"{name}.log"
    deadline = time.monotonic() + 60
    while not (log.exists() and "sleeping" in log.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    sm.stop_processing_job(ProcessingJobName=name)
    assert sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] in ("Stopping", "Stopped")
    desc = wait_processing(sm, name, timeout=30)
    assert desc["ProcessingJobStatus"] == "Stopped"
    assert "FailureReason" not in desc
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.stop_processing_job(ProcessingJobName=name)
    assert info.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.slow
def test_max_runtime_ends_the_job(sm, s3, bucket):
    name = unique("too-long")
    sm.create_processing_job(**script_request(name, bucket, put_script(s3, bucket, "sleeping", SLEEPING),
                                              max_runtime=1))
    desc = wait_processing(sm, name, timeout=60)
    assert desc["ProcessingJobStatus"] == "Failed"
    assert "MaxRuntimeInSeconds (1 s)" in desc["FailureReason"]


def test_missing_input_objects_fail_the_job_with_a_client_error(sm, s3, bucket):
    name = unique("no-data")
    sm.create_processing_job(**script_request(
        name, bucket, put_script(s3, bucket, "failing", FAILING),
        inputs=[s3_input("data", f"s3://{bucket}/nothing-here/", "/opt/ml/processing/input/data")]))
    desc = wait_processing(sm, name)
    assert desc["ProcessingJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("ClientError: Input 'data': no S3 objects found under")


@pytest.mark.parametrize("change, named", [
    (lambda r: r["AppSpecification"].update(ImageUri="123.dkr.ecr.us-east-1.amazonaws.com/my-own:1"),
     "sagemaker-scikit-learn"),
    (lambda r: r["AppSpecification"].update(ContainerEntrypoint=["bash", "run.sh"]), "Python interpreter"),
    (lambda r: r["AppSpecification"].pop("ContainerEntrypoint"), "ContainerEntrypoint is required"),
    (lambda r: r["ProcessingInputs"][0]["S3Input"].update(LocalPath="/tmp/code"), "/opt/ml/processing/"),
    (lambda r: r["ProcessingInputs"][0]["S3Input"].update(LocalPath="/opt/ml/processing/../x"), "'..'"),
    (lambda r: r["ProcessingInputs"].append(r["ProcessingInputs"][0]), "unique"),
    (lambda r: r["ProcessingInputs"][0]["S3Input"].update(S3InputMode="Pipe"), "Pipe"),
    (lambda r: r.update(ProcessingOutputConfig={"Outputs": [s3_output("o", "s3://b/o", CODE)]}), "already used"),
])
def test_bad_requests_are_validation_exceptions(sm, change, named):
    request = script_request(unique("bad"), "some-bucket", "s3://some-bucket/code/x.py")
    change(request)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_processing_job(**request)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert named in info.value.response["Error"]["Message"]


def test_missing_jobs_and_duplicate_names(sm, s3, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.describe_processing_job(ProcessingJobName="no-such-processing-job")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.stop_processing_job(ProcessingJobName="no-such-processing-job")
    name = unique("twice")
    request = script_request(name, bucket, put_script(s3, bucket, "failing", FAILING))
    sm.create_processing_job(**request)
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_processing_job(**request)
    wait_processing(sm, name)


def test_recover_settles_jobs_left_active(tmp_path):
    platform = Platform(load_settings({"home": str(tmp_path), "engine": "inline"}, environ={})).open()
    try:
        for name, status in (("running", "InProgress"), ("stopping", "Stopping"), ("done", "Completed")):
            platform.resources.insert(states.KIND, name, f"arn:{name}", status,
                                      {"ProcessingJobName": name, "ProcessingJobStatus": status},
                                      lease=None if status == "Completed" else "lease")
        assert platform.processing.recover() == 2
        running = platform.processing.describe("running")
        assert running["ProcessingJobStatus"] == "Failed" and running["FailureReason"] == SERVER_STOPPED
        assert "ProcessingEndTime" in running
        assert platform.processing.describe("stopping")["ProcessingJobStatus"] == "Stopped"
        assert platform.processing.describe("done")["ProcessingJobStatus"] == "Completed"
        assert platform.resources.get(states.KIND, "running").lease is None
    finally:
        platform.close()
