"""An endpoint's instances act as the model's execution role when that role is one of the server's: an
instance whose role cannot read the model data does not load it, and the endpoint says why."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest
from conftest import unique
from helpers import IMAGES, job_request, upload_breast_cancer, wait_job

SAGEMAKER_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


@pytest.mark.slow
def test_an_endpoint_whose_model_role_cannot_read_the_model_data_fails_naming_the_object(server, sm, s3, bucket,
                                                                                        tmp_path):
    upload_breast_cancer(s3, bucket, tmp_path)
    job = unique("ep-role-xgb")
    sm.create_training_job(**job_request(job, "xgboost", bucket, {"num_round": "2",
                                                                  "objective": "binary:logistic"}))
    artifact = wait_job(sm, job)["ModelArtifacts"]["S3ModelArtifacts"]
    iam = server.client("iam")
    role = iam.create_role(RoleName=unique("ep-role"), AssumeRolePolicyDocument=SAGEMAKER_TRUST)["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                                                "Resource": f"arn:aws:s3:::{bucket}"}]}))
    model, config, endpoint = unique("ep-role-model"), unique("ep-role-config"), unique("ep-role")
    sm.create_model(ModelName=model, ExecutionRoleArn=role["Arn"],
                    PrimaryContainer={"Image": IMAGES["xgboost"], "ModelDataUrl": artifact})
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "a", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    with pytest.raises(botocore.exceptions.WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    desc = sm.describe_endpoint(EndpointName=endpoint)
    assert desc["EndpointStatus"] == "Failed"
    key = artifact.removeprefix(f"s3://{bucket}/")
    assert (f"Access denied: role {role['Arn']} is not authorized to perform s3:GetObject on "
            f"arn:aws:s3:::{bucket}/{key}") in desc["FailureReason"]
    sm.delete_endpoint(EndpointName=endpoint)
