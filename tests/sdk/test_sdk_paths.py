"""SageMaker Python SDK paths the examples do not cover, run in this process against a real server."""

from __future__ import annotations

import botocore.exceptions
import pytest
import sagemaker  # a test extra: a missing SDK must fail, not skip
from conftest import unique
from helpers import job_request, upload_breast_cancer, wait_job


@pytest.fixture(scope="module")
def trained_job(sm, s3, tmp_path_factory):
    bucket = unique("sdk-paths")
    s3.create_bucket(Bucket=bucket)
    upload_breast_cancer(s3, bucket, tmp_path_factory.mktemp("data"))
    name = unique("sdk-attach")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {
        "objective": "binary:logistic", "num_round": "8", "max_depth": "2", "eval_metric": "auc"}))
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    sm.add_tags(ResourceArn=desc["TrainingJobArn"], Tags=[{"Key": "team", "Value": "lab"}])
    return desc


def test_default_bucket_is_the_accounts_sagemaker_bucket_and_exists(sdk_env, s3):
    session = sagemaker.Session()
    account = sdk_env.client("sts").get_caller_identity()["Account"]
    bucket = session.default_bucket()
    assert bucket == f"sagemaker-us-east-1-{account}"
    s3.head_bucket(Bucket=bucket)


def test_a_session_given_a_default_bucket_creates_it_on_demand(sdk_env, s3):
    name = unique("my-default")
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_bucket(Bucket=name)
    assert sagemaker.Session(default_bucket=name).default_bucket() == name
    s3.head_bucket(Bucket=name)


def test_s3_uploader_and_downloader_round_trip(sdk_env, tmp_path):
    from sagemaker.s3 import S3Downloader, S3Uploader

    session = sagemaker.Session()
    base = f"s3://{session.default_bucket()}/{unique('sdk-s3')}"
    S3Uploader.upload_string_as_file_body("a,b\n1,2\n", f"{base}/table.csv", sagemaker_session=session)
    (tmp_path / "local.txt").write_text("local file")
    S3Uploader.upload(str(tmp_path / "local.txt"), f"{base}/files", sagemaker_session=session)
    assert sorted(S3Downloader.list(base, sagemaker_session=session)) == [f"{base}/files/local.txt",
                                                                         f"{base}/table.csv"]
    assert S3Downloader.read_file(f"{base}/table.csv", sagemaker_session=session) == "a,b\n1,2\n"
    S3Downloader.download(f"{base}/files", str(tmp_path / "back"), sagemaker_session=session)
    assert (tmp_path / "back" / "local.txt").read_text() == "local file"


@pytest.mark.slow
def test_attach_rebuilds_the_estimator_and_prints_the_jobs_log(sdk_env, trained_job, capsys):
    from sagemaker.estimator import Estimator

    session = sagemaker.Session()
    estimator = Estimator.attach(trained_job["TrainingJobName"], sagemaker_session=session)
    assert estimator.model_data == trained_job["ModelArtifacts"]["S3ModelArtifacts"]
    assert estimator.image_uri == trained_job["AlgorithmSpecification"]["TrainingImage"]
    assert estimator.hyperparameters()["num_round"] == "8"
    assert estimator.output_path == trained_job["OutputDataConfig"]["S3OutputPath"]
    assert estimator.tags == [{"Key": "team", "Value": "lab"}]
    capsys.readouterr()
    session.logs_for_job(trained_job["TrainingJobName"], wait=True, poll=1)
    printed = capsys.readouterr().out
    log = (sdk_env.home / "logs" / "TrainingJobs" / f"{trained_job['TrainingJobName']}.log").read_text()
    for line in log.splitlines():
        assert line in printed
    assert "Training seconds:" in printed


def test_an_sdk_call_sagelab_lacks_names_the_operation(sdk_env):
    session = sagemaker.Session()
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        session.describe_feature_group("customers")
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "DescribeFeatureGroup" in raised.value.response["Error"]["Message"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
