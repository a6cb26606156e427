"""An execution survives a server restart, a crash or a graceful one: finished steps stay finished, the
step the restart cut short runs again, and the rest of the DAG runs after it."""

from __future__ import annotations

import time

import pytest
from helpers import ROLE, upload_breast_cancer
from pipeline_helpers import definition, processing_step, put_script, steps_of, training_step, wait_execution

from sagelab.embedded import ServerProcess
from sagelab.processing.service import SERVER_STOPPED

SLOW = """
import time
time.sleep(4)
"""


@pytest.mark.slow
@pytest.mark.parametrize("shutdown", ["crash", "graceful"])
def test_an_execution_resumes_where_it_was_after_a_restart(tmp_path, shutdown):
    """A crash (SIGKILL) leaves the running job to the next server, which fails it; a graceful stop
    (SIGTERM) stops it. Either way the execution reruns that step, and only that one."""
    home = tmp_path / "home"
    first = ServerProcess(home).start()
    try:
        s3, sm = first.client("s3"), first.client("sagemaker")
        s3.create_bucket(Bucket="restart")
        upload_breast_cancer(s3, "restart", tmp_path)
        steps = [training_step("First", "restart"),
                 processing_step("Slow", put_script(s3, "restart", "slow", SLOW), DependsOn=["First"]),
                 training_step("Last", "restart", DependsOn=["Slow"])]
        sm.create_pipeline(PipelineName="survivor", RoleArn=ROLE, PipelineDefinition=definition(steps))
        arn = sm.start_pipeline_execution(PipelineName="survivor")["PipelineExecutionArn"]
        deadline = time.monotonic() + 120
        while steps_of(sm, arn).get("Slow", {}).get("Metadata", {}).get("ProcessingJob", {}).get("Arn") in (None, ""):
            assert time.monotonic() < deadline, steps_of(sm, arn)
            time.sleep(0.1)
        before = steps_of(sm, arn)
    finally:
        first.kill() if shutdown == "crash" else first.stop()

    second = ServerProcess(home).start()
    try:
        sm = second.client("sagemaker")
        desc = wait_execution(sm, arn)
        assert desc["PipelineExecutionStatus"] == "Succeeded", desc.get("FailureReason")
        after = steps_of(sm, arn)
        assert after["First"] == before["First"]  # finished before the crash: kept as it was
        assert after["Slow"]["AttemptCount"] == 2 and after["Slow"]["StepStatus"] == "Succeeded"
        cut_short = sm.describe_processing_job(
            ProcessingJobName=before["Slow"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1])
        if shutdown == "crash":
            assert cut_short["ProcessingJobStatus"] == "Failed" and cut_short["FailureReason"] == SERVER_STOPPED
        else:
            assert cut_short["ProcessingJobStatus"] == "Stopped"
        assert after["Last"]["StepStatus"] == "Succeeded" and after["Last"]["StartTime"] >= after["Slow"]["EndTime"]
    finally:
        second.stop()
