"""A crawl acts as its crawler's Role when that role is one of the server's: it cannot read what the role may not."""

from __future__ import annotations

import json

import pyarrow as pa
from conftest import unique
from lake_helpers import crawl, put_parquet

GLUE_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _role(iam, bucket: str, *actions: str) -> dict:
    role = iam.create_role(RoleName=unique("crawler-role"), AssumeRolePolicyDocument=GLUE_TRUST)["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="lake", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": list(actions) or "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}/*"},
        ]}))
    return role


def test_a_crawl_whose_role_cannot_read_the_target_fails_naming_the_action_and_object(server, glue, bucket):
    put_parquet(server.client("s3"), bucket, "sales/part-0.parquet", pa.table({"id": [1, 2]}))
    role = _role(server.client("iam"), bucket)
    name = unique("denied-crawler")
    glue.create_crawler(Name=name, Role=role["Arn"], DatabaseName=unique("db"),
                        Targets={"S3Targets": [{"Path": f"s3://{bucket}/sales/"}]})
    last = crawl(glue, name)["LastCrawl"]
    assert last["Status"] == "FAILED"
    assert last["ErrorMessage"] == (f"Access denied: role {role['Arn']} is not authorized to perform "
                                    f"s3:GetObject on arn:aws:s3:::{bucket}/sales/part-0.parquet")


def test_a_crawler_named_by_role_name_whose_role_may_read_creates_its_table(server, glue, bucket):
    put_parquet(server.client("s3"), bucket, "orders/part-0.parquet", pa.table({"id": [1, 2]}))
    role = _role(server.client("iam"), bucket, "s3:GetObject")
    name, database = unique("allowed-crawler"), unique("db")
    glue.create_crawler(Name=name, Role=role["RoleName"], DatabaseName=database,
                        Targets={"S3Targets": [{"Path": f"s3://{bucket}/orders/"}]})
    last = crawl(glue, name)["LastCrawl"]
    assert last["Status"] == "SUCCEEDED", last.get("ErrorMessage")
    assert [t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]] == ["orders"]
