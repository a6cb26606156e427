"""A server that dies mid-tuning leaves nothing InProgress forever: the next server resumes the job."""

from __future__ import annotations

import time

import pytest
from tuning_helpers import all_trials, config, definition, upload_slow_set, wait_tuning

from sagelab.embedded import ServerProcess


@pytest.mark.slow
def test_a_restarted_server_resumes_the_tuning_job(tmp_path):
    home = tmp_path / "home"
    first = ServerProcess(home).start()
    try:
        s3, sm = first.client("s3"), first.client("sagemaker")
        s3.create_bucket(Bucket="resume")
        upload_slow_set(s3, "resume", tmp_path)
        ranges = {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "5"}]}
        sm.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="resumed",
            HyperParameterTuningJobConfig=config("Random", ranges, max_jobs=3, parallel=1, RandomSeed=4),
            TrainingJobDefinition=definition("resume", {"num_round": "150", "objective": "binary:logistic"},
                                             data="slow"))
        deadline = time.monotonic() + 180
        while True:  # kill the server while the second trial trains
            trials = all_trials(sm, "resumed")
            if len(trials) >= 2 and sm.describe_training_job(
                    TrainingJobName=trials[-1]["TrainingJobName"])["SecondaryStatus"] == "Training":
                break
            assert time.monotonic() < deadline, trials
            time.sleep(0.1)
    finally:
        first.kill()

    second = ServerProcess(home).start()
    try:
        sm = second.client("sagemaker")
        desc = wait_tuning(sm, "resumed", timeout=240)
        assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
        counters = desc["TrainingJobStatusCounters"]
        # The trial the crash interrupted failed for sagelab's reason, not its own: it is retried, not charged.
        assert counters["Completed"] == 3 and counters["NonRetryableError"] == 0 and counters["InProgress"] == 0
        assert counters["RetryableError"] <= 1
        trials = all_trials(sm, "resumed")
        assert len(trials) == 3 + counters["RetryableError"]
        for trial in trials:
            if trial["TrainingJobStatus"] == "Failed":
                assert "server stopped" in trial["FailureReason"]
    finally:
        second.stop()
