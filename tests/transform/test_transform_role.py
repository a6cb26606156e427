"""A transform job acts as its model's execution role when that role is one of the server's."""

from __future__ import annotations

import json

from conftest import unique
from helpers import IMAGES, job_request, upload_breast_cancer, wait_job
from test_transform_jobs import csv_bytes, transform_request, wait_transform

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def test_a_transform_job_whose_model_role_cannot_read_the_input_fails_naming_the_object(server, sm, s3, bucket,
                                                                                       tmp_path):
    splits = upload_breast_cancer(s3, bucket, tmp_path)
    job = unique("tf-role-xgb")
    sm.create_training_job(**job_request(job, "xgboost", bucket, {"num_round": "2",
                                                                  "objective": "binary:logistic"}))
    artifact = wait_job(sm, job)["ModelArtifacts"]["S3ModelArtifacts"]
    iam = server.client("iam")
    role = iam.create_role(RoleName=unique("tf-role"), AssumeRolePolicyDocument=TRUST)["Role"]
    # The role may read the model data (the job loads the model as the role) but not the input.
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": artifact.replace("s3://", "arn:aws:s3:::")}]}))
    model = unique("tf-role-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=role["Arn"],
                    PrimaryContainer={"Image": IMAGES["xgboost"], "ModelDataUrl": artifact})
    s3.put_object(Bucket=bucket, Key="batch/in/test.csv", Body=csv_bytes(splits["test"][:, 1:]))
    name = unique("tf-denied")
    sm.create_transform_job(**transform_request(name, model, f"s3://{bucket}/batch/in/",
                                                f"s3://{bucket}/batch/out"))
    desc = wait_transform(sm, name)
    assert desc["TransformJobStatus"] == "Failed"
    assert desc["FailureReason"] == (f"ClientError: Access denied: role {role['Arn']} is not authorized to "
                                     f"perform s3:GetObject on arn:aws:s3:::{bucket}/batch/in/test.csv")
