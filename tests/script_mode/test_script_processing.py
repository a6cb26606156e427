"""Processing with the SDK's script processors, unchanged: SKLearnProcessor (one script) and
FrameworkProcessor (a source folder with requirements.txt and helper modules, run through runproc.sh)."""

from __future__ import annotations

import pytest
from conftest import unique
from script_helpers import ROLE, write_source

PREPROCESS = """
import argparse, os
import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--factor", type=float)
args = parser.parse_args()
frame = pd.read_csv("/opt/ml/processing/input/data/raw.csv", header=None)
os.makedirs("/opt/ml/processing/output", exist_ok=True)
(frame * args.factor).to_csv("/opt/ml/processing/output/scaled.csv", header=False, index=False)
"""

BUNDLED = """
import os, sys
import tabulate
from helpers import double

rows = [[double(int(v))] for v in open("/opt/ml/processing/input/data/raw.csv").read().split()]
with open("/opt/ml/processing/output/table.txt", "w") as f:
    f.write(tabulate.tabulate(rows) + "\\n" + " ".join(sys.argv[1:]))
"""


def _wait(sm, name: str) -> dict:
    sm.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    return sm.describe_processing_job(ProcessingJobName=name)


@pytest.mark.slow
def test_sklearn_processor_and_framework_processor_run_unchanged(sdk_env, s3, tmp_path):
    from sagemaker.processing import FrameworkProcessor, ProcessingInput, ProcessingOutput
    from sagemaker.sklearn import SKLearn, SKLearnProcessor

    sm = sdk_env.client("sagemaker")
    bucket = unique("script-processing")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="raw/raw.csv", Body=b"1\n2\n3\n")
    inputs = [ProcessingInput(source=f"s3://{bucket}/raw/", destination="/opt/ml/processing/input/data")]

    code = write_source(tmp_path / "single", {"preprocess.py": PREPROCESS})
    processor = SKLearnProcessor(framework_version="1.2-1", role=ROLE, instance_type="ml.m5.large",
                                 instance_count=1)
    processor.run(code=str(code / "preprocess.py"), inputs=inputs, arguments=["--factor", "2"], wait=False,
                  outputs=[ProcessingOutput(source="/opt/ml/processing/output",
                                            destination=f"s3://{bucket}/scaled")])
    desc = _wait(sm, processor.latest_job.job_name)
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    assert s3.get_object(Bucket=bucket, Key="scaled/scaled.csv")["Body"].read().split() == [b"2.0", b"4.0", b"6.0"]

    source = write_source(tmp_path / "bundle", {"process.py": BUNDLED, "helpers.py": "def double(v): return 2 * v\n",
                                                "requirements.txt": "tabulate==0.10.0\n"})
    framework = FrameworkProcessor(estimator_cls=SKLearn, framework_version="1.2-1", role=ROLE,
                                   instance_type="ml.m5.large", instance_count=1)
    framework.run(code="process.py", source_dir=str(source), inputs=inputs, arguments=["--mode", "full"],
                  wait=False, outputs=[ProcessingOutput(source="/opt/ml/processing/output",
                                                        destination=f"s3://{bucket}/table")])
    desc = _wait(sm, framework.latest_job.job_name)
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["AppSpecification"]["ContainerEntrypoint"][0] == "/bin/bash"
    table = s3.get_object(Bucket=bucket, Key="table/table.txt")["Body"].read().decode()
    assert "2\n4\n6" in table and table.endswith("--mode full")
