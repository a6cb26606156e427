"""DescribeTrainingJob echoes the request with the defaults SageMaker fills in (SDK's attach() reads them)."""

from __future__ import annotations

from conftest import unique
from helpers import channel, job_request


def test_describe_echoes_the_request_with_sagemakers_defaults(sm, bucket):
    name = unique("echo")
    request = job_request(name, "xgboost", bucket, {"num_round": "2"}, channels=[
        channel("train", f"s3://{bucket}/nothing/"),
        {**channel("validation", f"s3://{bucket}/nothing-either/"), "CompressionType": "Gzip"}])
    sm.create_training_job(**request)
    desc = sm.describe_training_job(TrainingJobName=name)
    assert desc["OutputDataConfig"] == {"KmsKeyId": "", "CompressionType": "GZIP",
                                        "S3OutputPath": f"s3://{bucket}/output"}
    train, validation = desc["InputDataConfig"]
    assert train["CompressionType"] == "None" and train["RecordWrapperType"] == "None"
    assert train["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    assert validation["CompressionType"] == "Gzip"  # what the request said wins
    assert desc["ResourceConfig"] == request["ResourceConfig"]
    assert desc["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}
    assert desc["AlgorithmSpecification"]["TrainingImage"] == request["AlgorithmSpecification"]["TrainingImage"]
    assert desc["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert desc["SecondaryStatusTransitions"][0]["StatusMessage"]


def test_a_kms_key_in_the_request_is_kept(sm, bucket):
    name = unique("echo-kms")
    request = job_request(name, "xgboost", bucket, {"num_round": "2"})
    request["OutputDataConfig"]["KmsKeyId"] = "alias/my-key"
    sm.create_training_job(**request)
    assert sm.describe_training_job(TrainingJobName=name)["OutputDataConfig"]["KmsKeyId"] == "alias/my-key"
