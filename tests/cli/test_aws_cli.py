"""The AWS CLI (`python -m awscli`, v1 from PyPI) against a real server: S3, SageMaker, runtime, STS, Logs.

Every command passes `--endpoint-url` and reads the credentials file the server wrote; nothing else about
the CLI is configured.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import unique
from helpers import client_env, job_request

from sagelab import cli as sagelab_cli
from sagelab.demo import split_dataset, write_csv

pytest.importorskip("awscli", reason="the AWS CLI (awscli) is not installed")

XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


class Aws:
    def __init__(self, server, folder):
        self.url = server.url
        self.env = client_env(server, folder)
        del self.env["AWS_ENDPOINT_URL"]  # every call names the endpoint itself
        self.folder = folder

    def run(self, *args: str, endpoint: bool = True, check: bool = True) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "awscli", *args, "--output", "json"]
        if endpoint:
            command += ["--endpoint-url", self.url]
        done = subprocess.run(command, env=self.env, cwd=self.folder, capture_output=True, text=True, timeout=300)
        if check:
            assert done.returncode == 0, f"aws {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
        return done

    def json(self, *args: str) -> dict:
        out = self.run(*args).stdout
        return json.loads(out) if out.strip() else {}


@pytest.fixture(scope="module")
def aws(server, tmp_path_factory):
    return Aws(server, tmp_path_factory.mktemp("aws-cli"))


@pytest.fixture(scope="module")
def data(aws):
    """A bucket with the breast-cancer splits, copied in with `aws s3 cp --recursive`."""
    bucket = unique("cli")
    aws.run("s3", "mb", f"s3://{bucket}")
    splits = split_dataset()
    for name, rows in splits.items():
        (aws.folder / "data" / name).mkdir(parents=True)
        write_csv(aws.folder / "data" / name / f"{name}.csv", rows)
    aws.run("s3", "cp", "--recursive", str(aws.folder / "data"), f"s3://{bucket}/data")
    return bucket, splits


@pytest.fixture(scope="module")
def trained(aws, data):
    bucket, _ = data
    name = unique("cli-xgb")
    request = job_request(name, "xgboost", bucket, {"objective": "binary:logistic", "num_round": "20",
                                                     "max_depth": "3", "eval_metric": "auc"})
    (aws.folder / "job.json").write_text(json.dumps(request))
    created = aws.json("sagemaker", "create-training-job", "--cli-input-json", "file://job.json")
    assert created["TrainingJobArn"].endswith(f":training-job/{name}")
    deadline = time.monotonic() + 300
    while True:
        desc = aws.json("sagemaker", "describe-training-job", "--training-job-name", name)
        if desc["TrainingJobStatus"] not in ("InProgress", "Stopping") or time.monotonic() > deadline:
            return desc
        time.sleep(1)


@pytest.mark.slow
def test_s3_cp_ls_round_trip(aws, data, tmp_path):
    bucket, _ = data
    listing = aws.run("s3", "ls", "--recursive", f"s3://{bucket}/data/").stdout
    assert sorted(line.split()[-1] for line in listing.splitlines()) == [
        "data/test/test.csv", "data/train/train.csv", "data/validation/validation.csv"]
    big = tmp_path / "big.bin"
    big.write_bytes(np.random.default_rng(0).bytes(9 * 1024 * 1024))  # past the CLI's multipart threshold
    aws.run("s3", "cp", str(big), f"s3://{bucket}/blobs/big.bin")
    aws.run("s3", "cp", f"s3://{bucket}/blobs/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    assert bucket in aws.run("s3", "ls").stdout
    aws.run("s3", "rm", f"s3://{bucket}/blobs/big.bin")
    assert aws.run("s3", "ls", f"s3://{bucket}/blobs/", check=False).stdout.strip() == ""


@pytest.mark.slow
def test_create_training_job_from_cli_input_json_and_describe_it(trained):
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in trained["FinalMetricDataList"]}
    assert metrics["validation:auc"] > 0.95
    assert trained["ModelArtifacts"]["S3ModelArtifacts"].endswith("/output/model.tar.gz")
    assert trained["OutputDataConfig"]["KmsKeyId"] == ""


@pytest.mark.slow
def test_deploy_wait_list_and_invoke_an_endpoint(aws, data, trained):
    _, splits = data
    name = unique("cli-ep")
    aws.json("sagemaker", "create-model", "--model-name", name, "--execution-role-arn",
             "arn:aws:iam::111122223333:role/SageMakerRole", "--primary-container",
             json.dumps({"Image": XGB, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]}))
    aws.json("sagemaker", "create-endpoint-config", "--endpoint-config-name", name, "--production-variants",
             json.dumps([{"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
                          "InstanceType": "ml.m5.large"}]))
    aws.json("sagemaker", "create-endpoint", "--endpoint-name", name, "--endpoint-config-name", name)
    try:
        aws.run("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", name)
        endpoints = aws.json("sagemaker", "list-endpoints", "--name-contains", name)["Endpoints"]
        assert [(e["EndpointName"], e["EndpointStatus"]) for e in endpoints] == [(name, "InService")]
        rows = splits["test"][:5, 1:]
        np.savetxt(aws.folder / "rows.csv", rows, delimiter=",", fmt="%.10g")
        answer = aws.json("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", name, "--content-type",
                          "text/csv", "--body", "fileb://rows.csv", "scores.txt")
        assert answer["ContentType"].startswith("text/csv")
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        scores = [float(v) for v in (aws.folder / "scores.txt").read_text().split()]
        assert len(scores) == 5 and all(0 <= s <= 1 for s in scores)
    finally:
        aws.run("sagemaker", "delete-endpoint", "--endpoint-name", name)
    assert aws.json("sagemaker", "list-endpoints", "--name-contains", name)["Endpoints"] == []


@pytest.mark.slow
def test_sts_and_logs_commands(aws, trained):
    identity = aws.json("sts", "get-caller-identity")
    assert identity["Arn"] == f"arn:aws:iam::{identity['Account']}:root"
    found = aws.json("logs", "filter-log-events", "--log-group-name", "/aws/sagemaker/TrainingJobs",
                     "--log-stream-name-prefix", trained["TrainingJobName"] + "/", "--filter-pattern",
                     "validation-auc")["events"]
    assert len(found) == 20 and found[0]["message"].startswith("[0]\ttrain-auc:")


def test_the_endpoint_can_come_from_the_environment_instead(aws, server, tmp_path):
    env = dict(aws.env, AWS_ENDPOINT_URL=server.url)
    done = subprocess.run([sys.executable, "-m", "awscli", "sts", "get-caller-identity", "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Account"] == server.client("sts").get_caller_identity()["Account"]


def test_a_command_sagelab_does_not_answer_fails_clearly(aws):
    done = aws.run("sns", "list-topics", check=False)
    assert done.returncode != 0
    assert "UnknownOperationException" in done.stderr and "ListTopics" in done.stderr


def test_iam_users_and_their_keys_from_the_cli(aws):
    user = unique("cli-user")
    created = json.loads(aws.run("iam", "create-user", "--user-name", user).stdout)["User"]
    key = json.loads(aws.run("iam", "create-access-key", "--user-name", user).stdout)["AccessKey"]
    assert key["UserName"] == user and key["AccessKeyId"].startswith("AKIA")
    assert user in [u["UserName"] for u in json.loads(aws.run("iam", "list-users").stdout)["Users"]]
    assert created["Arn"].endswith(f":user/{user}")


def test_sagelab_env_prints_exports_for_a_home(tmp_path, capsys):
    assert sagelab_cli.main(["env", "--home", str(tmp_path), "--port", "9123"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["export AWS_ENDPOINT_URL=http://127.0.0.1:9123",
                     f"export AWS_SHARED_CREDENTIALS_FILE={tmp_path / 'credentials'}",
                     "export AWS_DEFAULT_REGION=us-east-1",
                     f"export SAGEMAKER_USER_CONFIG_OVERRIDE={tmp_path / 'sagemaker-config.yaml'}"]
