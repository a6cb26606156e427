"""A processing job acts as its role when the role is one of the server's."""

from __future__ import annotations

import json

from conftest import unique
from test_processing_jobs import FAILING, put_script, script_request, wait_processing

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def test_a_processing_job_whose_role_cannot_read_its_input_fails_naming_the_action(server, sm, s3, bucket):
    iam = server.client("iam")
    role = iam.create_role(RoleName=unique("proc-role"), AssumeRolePolicyDocument=TRUST)["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                                                "Resource": f"arn:aws:s3:::{bucket}"}]}))
    name = unique("proc-denied")
    script = put_script(s3, bucket, name, FAILING)
    sm.create_processing_job(**{**script_request(name, bucket, script), "RoleArn": role["Arn"]})
    desc = wait_processing(sm, name)
    assert desc["ProcessingJobStatus"] == "Failed"
    key = script.split(f"s3://{bucket}/", 1)[1]
    assert desc["FailureReason"] == (f"ClientError: Access denied: role {role['Arn']} is not authorized to "
                                     f"perform s3:GetObject on arn:aws:s3:::{bucket}/{key}")
