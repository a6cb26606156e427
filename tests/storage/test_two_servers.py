"""Several servers, one platform: two `sagelab server` processes on one PostgreSQL database and one home (lake).

What holds: a write acknowledged by one server is read by the other at once; a job runs once, on the server
that took it, whichever server is asked about it; a server that starts while another is up leaves that
server's running jobs alone; when one dies, the other settles the job it was running (Failed, "server
stopped", with no RetryStrategy) exactly once, as a restart does on SQLite (tests/storage/test_takeover.py
has the retries under load).
"""

from __future__ import annotations

import gzip
import json
import time
import uuid

import pytest
from helpers import channel, job_request, wait_job

from sagelab.embedded import ServerProcess
from sagelab.training.service import SERVER_STOPPED

pytestmark = pytest.mark.slow


def _wait_secondary(sm, name: str, wanted: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] != wanted:
        assert time.monotonic() < deadline, f"{name} never reached {wanted}"
        time.sleep(0.1)


def test_two_servers_share_one_platform(postgres_cluster, tmp_path):
    url = postgres_cluster.create_database(f"two_{uuid.uuid4().hex[:10]}").replace("postgresql+psycopg://",
                                                                                   "postgresql://", 1)
    home = tmp_path / "home"
    env = {"SAGELAB_DATABASE_URL": url, "SAGELAB_CLOUDTRAIL_DELIVERY_SECONDS": "0.3",
           "SAGELAB_TAKEOVER_SCAN_SECONDS": "0.5"}
    first = ServerProcess(home, env=env).start()
    servers = [first]
    try:
        s3_a, sm_a = first.client("s3"), first.client("sagemaker")
        s3_a.create_bucket(Bucket="shared")
        s3_a.put_object(Bucket="shared", Key="data/train.csv", Body=b"1,1.0\n0,0.0\n" * 500)
        s3_a.create_bucket(Bucket="trail-logs")
        first.client("cloudtrail").create_trail(Name="both", S3BucketName="trail-logs")
        first.client("cloudtrail").start_logging(Name="both")
        # A long job on the first server; the second starts meanwhile and must leave it running.
        sm_a.create_training_job(**job_request("long", "xgboost", "shared",
                                               {"num_round": "1000000", "max_depth": "10"},
                                               channels=[channel("train", "s3://shared/data/")]))
        _wait_secondary(sm_a, "long", "Training")
        second = ServerProcess(home, env=env).start()
        servers.append(second)
        s3_b, sm_b = second.client("s3"), second.client("sagemaker")
        assert sm_b.describe_training_job(TrainingJobName="long")["TrainingJobStatus"] == "InProgress"

        # Read-after-write across servers: the object, the job, its tags and its listing.
        assert s3_b.get_object(Bucket="shared", Key="data/train.csv")["Body"].read().startswith(b"1,1.0\n")
        request = job_request("once", "xgboost", "shared", {"num_round": "2"},
                              channels=[channel("train", "s3://shared/data/")])
        arn = sm_a.create_training_job(**request, Tags=[{"Key": "team", "Value": "a"}])["TrainingJobArn"]
        assert sm_b.describe_training_job(TrainingJobName="once")["TrainingJobArn"] == arn
        assert sm_b.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
        with pytest.raises(sm_b.exceptions.ResourceInUse):
            sm_b.create_training_job(**request)
        done = wait_job(sm_b, "once")
        assert done["TrainingJobStatus"] == "Completed"
        listed = sm_b.list_training_jobs(SortBy="Name", SortOrder="Ascending")["TrainingJobSummaries"]
        assert [(j["TrainingJobName"], j["TrainingJobStatus"]) for j in listed] == [
            ("long", "InProgress"), ("once", "Completed")]
        # It ran once: one process wrote one log with one training pass, and one model.
        log = (home / "logs" / "TrainingJobs" / "once.log").read_text()
        assert log.count("Downloading input data") == 1 and log.count("Uploading generated training model") == 1
        models = s3_b.list_objects_v2(Bucket="shared", Prefix="output/once/")["Contents"]
        assert [m["Key"] for m in models] == ["output/once/output/model.tar.gz"]
        assert sm_b.describe_training_job(TrainingJobName="long")["TrainingJobStatus"] == "InProgress"

        # Both servers deliver the one trail, taking turns: every recorded call is in the logs exactly once.
        second.client("cloudtrail").stop_logging(Name="both")
        time.sleep(1)  # the round under way finishes
        event_ids = []
        for item in s3_b.list_objects_v2(Bucket="trail-logs", Prefix="AWSLogs/")["Contents"]:
            body = gzip.decompress(s3_b.get_object(Bucket="trail-logs", Key=item["Key"])["Body"].read())
            event_ids += [record["eventID"] for record in json.loads(body)["Records"]]
        names = {record["eventName"] for record in json.loads(body)["Records"]}
        assert len(event_ids) == len(set(event_ids)) > 5, names

        # The first server dies with the job. The second, already up, notices and settles it, once.
        first.kill()
        assert "Traceback" not in first.log_path.read_text()
        deadline = time.monotonic() + 30
        while (settled := sm_b.describe_training_job(TrainingJobName="long"))["TrainingJobStatus"] == "InProgress":
            assert time.monotonic() < deadline, "the live server never took the dead one's job over"
            time.sleep(0.2)
        assert settled["TrainingJobStatus"] == "Failed" and SERVER_STOPPED in settled["FailureReason"]

        # A server that starts later leaves it as it is.
        second.stop()
        third = ServerProcess(home, env=env).start()
        servers.append(third)
        sm_c = third.client("sagemaker")
        time.sleep(1)
        again = sm_c.describe_training_job(TrainingJobName="long")
        assert (again["TrainingJobStatus"], again["LastModifiedTime"]) == ("Failed", settled["LastModifiedTime"])
        assert sm_c.describe_training_job(TrainingJobName="once")["TrainingJobStatus"] == "Completed"
    finally:
        for server in servers:
            server.stop()
