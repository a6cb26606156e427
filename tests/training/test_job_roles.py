"""A training job acts as its role when the role is one of the server's: it cannot read what the role may not."""

from __future__ import annotations

import json

from conftest import unique
from helpers import job_request, upload_breast_cancer, wait_failed, wait_job

XGBOOST = {"num_round": "2", "objective": "binary:logistic"}
SAGEMAKER_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _role(iam, *statements: dict) -> str:
    role = unique("job-role")
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=SAGEMAKER_TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="lake", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))
    return arn


def test_a_job_whose_role_cannot_read_its_channel_fails_naming_the_action_and_object(server, sm, s3, bucket,
                                                                                    tmp_path):
    upload_breast_cancer(s3, bucket, tmp_path)
    iam = server.client("iam")
    role = _role(iam, {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"})
    name = unique("denied")
    sm.create_training_job(**{**job_request(name, "xgboost", bucket, XGBOOST), "RoleArn": role})
    desc = wait_failed(sm, name)
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["FailureReason"] == (f"ClientError: Access denied: role {role} is not authorized to perform "
                                     f"s3:GetObject on arn:aws:s3:::{bucket}/data/train/train.csv")


def test_a_job_whose_role_may_read_and_write_trains(server, sm, s3, bucket, tmp_path):
    upload_breast_cancer(s3, bucket, tmp_path)
    role = _role(server.client("iam"),
                 {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
                 {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                  "Resource": f"arn:aws:s3:::{bucket}/*"})
    name = unique("allowed")
    sm.create_training_job(**{**job_request(name, "xgboost", bucket, XGBOOST), "RoleArn": role})
    assert wait_job(sm, name)["TrainingJobStatus"] == "Completed"


def test_a_job_whose_role_may_not_write_its_output_fails_before_uploading(server, sm, s3, bucket, tmp_path):
    upload_breast_cancer(s3, bucket, tmp_path)
    role = _role(server.client("iam"),
                 {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
                  "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]})
    name = unique("readonly")
    sm.create_training_job(**{**job_request(name, "xgboost", bucket, XGBOOST), "RoleArn": role})
    desc = wait_failed(sm, name)
    assert desc["FailureReason"] == (f"ClientError: Access denied: role {role} is not authorized to perform "
                                     f"s3:PutObject on arn:aws:s3:::{bucket}/output/{name}/output/model.tar.gz")
