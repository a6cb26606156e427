"""IAM policy evaluation cost per request: a principal with 5 policies of 5 statements each (wildcard actions
and resources, a policy variable, IpAddress/Bool/StringLike/Date conditions, Denies), evaluated uncached,
through the DecisionCache, and, side by side in the same run, the SigV4 verification every request already
pays for.

Run: .venv/bin/python benchmarks/iam_policies.py [--number 20000]

Prints microseconds per call and the ratio of each evaluation to SigV4 verification. The server's target is an
overhead of at most 5 % of a request; SigV4 verification is a small part of a request, so a ratio well under 1
leaves a large margin.
"""

from __future__ import annotations

import argparse
import json
import timeit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sagelab.security.policy_document import parse_policy
from sagelab.security.policy_evaluation import DecisionCache, PolicySet, RequestContext
from sagelab.security.sigv4 import SignedRequest, SigV4Verifier

ACCOUNT = "111122223333"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
MODEL = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/churn"


def _policies() -> PolicySet:
    def policy(*statements: dict) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})

    documents = {
        "S3Home": policy(
            {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:GetBucketLocation"], "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::lake",
             "Condition": {"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]}}},
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::lake/home/${aws:username}/*"},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
             "Resource": "arn:aws:s3:::lake/shared/*"},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ),
        "SageMakerRead": policy(
            {"Effect": "Allow", "Action": ["sagemaker:Describe*", "sagemaker:List*"], "Resource": "*"},
            {"Effect": "Allow", "Action": "sagemaker:Search", "Resource": "*"},
            {"Effect": "Allow", "Action": "sagemaker:GetRecord",
             "Resource": f"arn:aws:sagemaker:*:{ACCOUNT}:*"},
            {"Effect": "Allow", "Action": "cloudwatch:GetMetricData", "Resource": "*"},
            {"Effect": "Allow", "Action": "logs:GetLogEvents",
             "Resource": f"arn:aws:logs:*:{ACCOUNT}:log-group:*"},
        ),
        "SageMakerTrain": policy(
            {"Effect": "Allow", "Action": "sagemaker:CreateTrainingJob", "Resource": "*",
             "Condition": {"ForAllValues:StringLike": {"sagemaker:InstanceTypes": ["ml.m5.*", "ml.c5.*"]}}},
            {"Effect": "Allow", "Action": ["sagemaker:CreateModel", "sagemaker:DeleteModel"],
             "Resource": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/*"},
            {"Effect": "Allow", "Action": "iam:PassRole",
             "Resource": f"arn:aws:iam::{ACCOUNT}:role/sagemaker-*"},
            {"Effect": "Deny", "Action": "sagemaker:*", "Resource": "*",
             "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.0/8"]}}},
            {"Effect": "Allow", "Action": "sagemaker:StopTrainingJob",
             "Resource": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/*"},
        ),
        "Glue": policy(
            {"Effect": "Allow", "Action": "glue:Get*", "Resource": "*"},
            {"Effect": "Allow", "Action": ["glue:CreateTable", "glue:UpdateTable"],
             "Resource": [f"arn:aws:glue:us-east-1:{ACCOUNT}:catalog",
                          f"arn:aws:glue:us-east-1:{ACCOUNT}:database/*",
                          f"arn:aws:glue:us-east-1:{ACCOUNT}:table/*/*"]},
            {"Effect": "Allow", "Action": "glue:StartJobRun",
             "Resource": f"arn:aws:glue:*:{ACCOUNT}:job/etl-*"},
            {"Effect": "Allow", "Action": "glue:StartCrawler", "Resource": "*"},
            {"Effect": "Deny", "Action": "glue:Delete*", "Resource": "*"},
        ),
        "Athena": policy(
            {"Effect": "Allow", "Action": ["athena:StartQueryExecution", "athena:GetQuery*"],
             "Resource": f"arn:aws:athena:*:{ACCOUNT}:workgroup/primary"},
            {"Effect": "Allow", "Action": "athena:List*", "Resource": "*"},
            {"Effect": "Allow", "Action": "athena:StopQueryExecution", "Resource": "*",
             "Condition": {"StringEquals": {"aws:PrincipalTag/team": "analytics"}}},
            {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*",
             "Condition": {"DateLessThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}},
            {"Effect": "Deny", "Action": "athena:DeleteWorkGroup", "Resource": "*"},
        ),
    }
    return PolicySet({name: parse_policy(text) for name, text in documents.items()})


def _request(action: str = "sagemaker:DescribeModel", resource: str = MODEL) -> RequestContext:
    return RequestContext(action, resource, principal_arn=USER, keys={
        "aws:username": "alice", "aws:SourceIp": "10.1.2.3", "aws:SecureTransport": True,
        "aws:PrincipalArn": USER, "aws:CurrentTime": "2026-07-01T12:00:00Z"})


def _signed() -> tuple[SigV4Verifier, SignedRequest]:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    body = json.dumps({"ModelName": "churn"}).encode()
    request = AWSRequest(method="POST", url="http://127.0.0.1:9000/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.DescribeModel"})
    SigV4Auth(Credentials("AKIAEXAMPLE", secret), "sagemaker", "us-east-1").add_auth(request)  # signs "now"
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers["host"] = "127.0.0.1:9000"
    signed = SignedRequest("POST", "127.0.0.1:9000", "/", "", headers, body)
    verifier = SigV4Verifier(lambda akid: secret if akid == "AKIAEXAMPLE" else None)
    verifier.verify(signed)  # fails loudly if the benchmark's request is not valid
    return verifier, signed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per measurement")
    args = parser.parse_args()

    policies = _policies()
    cache = DecisionCache()
    verifier, signed = _signed()
    requests = [_request(), _request("s3:GetObject", "arn:aws:s3:::lake/home/alice/data.csv"),
                _request("glue:DeleteTable", f"arn:aws:glue:us-east-1:{ACCOUNT}:table/db/t"),
                _request("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/mallory")]
    for request in requests:
        assert policies.evaluate(request) == cache.evaluate(policies, request)

    def per_call(statement, number: int) -> float:
        return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6

    sigv4 = per_call(lambda: verifier.verify(signed), max(1, args.number // 10))
    rows = [("SigV4 verification (baseline)", sigv4)]
    for request in requests:
        rows.append((f"evaluate {request.action} ({policies.evaluate(request).decision})",
                     per_call(lambda r=request: policies.evaluate(r), args.number)))
    rows.append(("build RequestContext + evaluate",
                 per_call(lambda: policies.evaluate(_request()), args.number)))
    rows.append(("DecisionCache hit", per_call(lambda: cache.evaluate(policies, requests[0]), args.number)))
    rows.append(("build RequestContext + cache hit",
                 per_call(lambda: cache.evaluate(policies, _request()), args.number)))
    print(f"{'measurement':<56} {'us/call':>9} {'vs SigV4':>9}")
    for name, micros in rows:
        print(f"{name:<56} {micros:>9.2f} {micros / sigv4:>9.3f}")


if __name__ == "__main__":
    main()
