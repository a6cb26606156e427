"""Policies through the server: Deny beats Allow, conditions, bucket policies, groups, roles and sessions."""

from __future__ import annotations

import pytest
from conftest import unique
from iam_kit import User, allow, deny, error_of, name, policy

from sagelab.account import Account
from sagelab.iam.sessions import SessionStore
from sagelab.storage.db import Database
from sagelab.storage.resources import ResourceStore


@pytest.fixture(scope="module")
def iam(server):
    return server.client("iam")


@pytest.fixture(scope="module")
def account(server) -> str:
    return server.client("sts").get_caller_identity()["Account"]


def test_an_explicit_deny_beats_an_allow(server, iam, s3, bucket):
    s3.put_object(Bucket=bucket, Key="open.csv", Body=b"1")
    s3.put_object(Bucket=bucket, Key="secret.csv", Body=b"2")
    user = User(server, iam, allow("s3:GetObject", f"arn:aws:s3:::{bucket}/*"),
                deny("s3:GetObject", f"arn:aws:s3:::{bucket}/secret.csv"))
    client = user.client("s3")
    assert client.get_object(Bucket=bucket, Key="open.csv")["Body"].read() == b"1"
    refused = error_of(lambda: client.get_object(Bucket=bucket, Key="secret.csv"))
    assert (refused["status"], refused["Code"]) == (403, "AccessDenied")
    assert refused["Message"] == (f'User: {user.arn} is not authorized to perform: s3:GetObject on resource: '
                                  f'"arn:aws:s3:::{bucket}/secret.csv" with an explicit deny in an identity-based '
                                  "policy")


def test_delete_objects_is_authorized_key_by_key(server, iam, s3, bucket):
    for key in ("tmp/a", "tmp/b", "keep/c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    user = User(server, iam, allow("s3:DeleteObject", f"arn:aws:s3:::{bucket}/tmp/*"))
    answer = user.client("s3").delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "tmp/a"}, {"Key": "keep/c"}, {"Key": "tmp/b"}]})
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["tmp/a", "tmp/b"]
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("keep/c", "AccessDenied")]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["keep/c"]


def test_a_condition_on_the_source_ip_reads_the_clients_address(server, iam):
    user = User(server, iam,
                allow("sagemaker:ListModels", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}),
                allow("sagemaker:ListEndpoints", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    sm = user.client("sagemaker")
    assert isinstance(sm.list_models()["Models"], list)  # allowed; others' tests share the server
    assert error_of(sm.list_endpoints)["Code"] == "AccessDeniedException"


def test_a_condition_on_s3_prefix_scopes_a_listing(server, iam, s3, bucket):
    s3.put_object(Bucket=bucket, Key="home/alice/a.csv", Body=b"a")
    s3.put_object(Bucket=bucket, Key="home/bob/b.csv", Body=b"b")
    user = User(server, iam, allow("s3:ListBucket", f"arn:aws:s3:::{bucket}",
                                   Condition={"StringLike": {"s3:prefix": "home/alice/*"}}))
    client = user.client("s3")
    listed = client.list_objects_v2(Bucket=bucket, Prefix="home/alice/")
    assert [o["Key"] for o in listed["Contents"]] == ["home/alice/a.csv"]
    assert client.list_objects(Bucket=bucket, Prefix="home/alice/x")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert error_of(lambda: client.list_objects_v2(Bucket=bucket, Prefix="home/bob/"))["Code"] == "AccessDenied"
    assert error_of(lambda: client.list_objects_v2(Bucket=bucket))["Code"] == "AccessDenied"


def test_a_policy_variable_names_the_callers_own_folder(server, iam, s3, bucket):
    statement = allow("s3:PutObject", f"arn:aws:s3:::{bucket}/home/${{aws:username}}/*")
    alice, bob = User(server, iam, statement), User(server, iam, statement)
    alice.client("s3").put_object(Bucket=bucket, Key=f"home/{alice.name}/notes.txt", Body=b"mine")
    refused = error_of(lambda: bob.client("s3").put_object(Bucket=bucket, Key=f"home/{alice.name}/x", Body=b"x"))
    assert refused["Code"] == "AccessDenied"
    bob.client("s3").put_object(Bucket=bucket, Key=f"home/{bob.name}/notes.txt", Body=b"his")


def test_a_condition_on_instance_types_limits_what_may_be_asked_for(server, iam):
    user = User(server, iam, allow("sagemaker:CreateEndpointConfig", Condition={
        "ForAllValues:StringLike": {"sagemaker:InstanceTypes": ["ml.m5.*"]}}))
    sm = user.client("sagemaker")

    def config(instance_type: str):
        return lambda: sm.create_endpoint_config(EndpointConfigName=unique("cfg"), ProductionVariants=[{
            "VariantName": "main", "ModelName": "absent-model", "InstanceType": instance_type,
            "InitialInstanceCount": 1}])

    assert error_of(config("ml.p3.2xlarge"))["Code"] == "AccessDeniedException"
    allowed = error_of(config("ml.m5.large"))  # admitted: the model it names does not exist
    assert allowed["Code"] == "ValidationException" and "absent-model" in allowed["Message"]


def test_a_bucket_policy_grants_another_user_until_it_is_deleted(server, iam, s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared.csv", Body=b"shared")
    user = User(server, iam)
    client = user.client("s3")
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="shared.csv"))["Code"] == "AccessDenied"
    document = policy({"Sid": "share", "Effect": "Allow", "Principal": {"AWS": user.arn},
                       "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"})
    s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == document
    assert client.get_object(Bucket=bucket, Key="shared.csv")["Body"].read() == b"shared"
    assert error_of(lambda: client.put_object(Bucket=bucket, Key="x", Body=b"x"))["Code"] == "AccessDenied"
    s3.delete_bucket_policy(Bucket=bucket)
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="shared.csv"))["Code"] == "AccessDenied"
    missing = error_of(lambda: s3.get_bucket_policy(Bucket=bucket))
    assert (missing["status"], missing["Code"]) == (404, "NoSuchBucketPolicy")
    malformed = error_of(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=policy(allow("s3:GetObject"))))
    assert (malformed["status"], malformed["Code"]) == (400, "MalformedPolicy")


def test_a_bucket_policys_deny_holds_root_too_but_root_can_always_remove_it(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy({"Effect": "Deny", "Principal": "*",
                                                      "Action": "s3:GetObject",
                                                      "Resource": f"arn:aws:s3:::{bucket}/*"}))
    refused = error_of(lambda: s3.get_object(Bucket=bucket, Key="k"))
    assert refused["Code"] == "AccessDenied" and "explicit deny in a resource-based policy" in refused["Message"]
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def test_group_policies_apply_to_members_while_they_are_members(server, iam):
    group = iam.create_group(GroupName=name("readers"))["Group"]["GroupName"]
    iam.put_group_policy(GroupName=group, PolicyName="list", PolicyDocument=policy(allow("sagemaker:ListEndpoints")))
    user = User(server, iam)
    sm = user.client("sagemaker")
    assert error_of(sm.list_endpoints)["Code"] == "AccessDeniedException"
    iam.add_user_to_group(GroupName=group, UserName=user.name)
    assert isinstance(sm.list_endpoints()["Endpoints"], list)  # allowed; others' tests share the server
    iam.remove_user_from_group(GroupName=group, UserName=user.name)
    assert error_of(sm.list_endpoints)["Code"] == "AccessDeniedException"


def _role(iam, principal: dict, *statements, **kwargs) -> str:
    role = name("role")
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=policy(
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}), **kwargs)["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=role, PolicyName="perms", PolicyDocument=policy(*statements))
    return arn


def _session_client(server, service: str, credentials: dict, **kwargs):
    return server.client(service, aws_access_key_id=credentials["AccessKeyId"],
                         aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"], **kwargs)


def test_assume_role_with_a_trust_policy_naming_the_user_acts_with_the_roles_permissions(server, iam, account):
    user = User(server, iam)
    role_arn = _role(iam, {"AWS": user.arn}, allow("sagemaker:ListModels"), MaxSessionDuration=7200)
    assumed = user.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="nightly", DurationSeconds=7200)
    role_name = role_arn.rsplit("/", 1)[1]
    session_arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/nightly"
    assert assumed["AssumedRoleUser"]["Arn"] == session_arn
    assert assumed["AssumedRoleUser"]["AssumedRoleId"].endswith(":nightly")
    credentials = assumed["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert _session_client(server, "sts", credentials).get_caller_identity()["Arn"] == session_arn
    sm = _session_client(server, "sagemaker", credentials)
    assert isinstance(sm.list_models()["Models"], list)  # allowed; others' tests share the server
    refused = error_of(sm.list_endpoints)
    assert refused["Code"] == "AccessDeniedException" and refused["Message"].startswith(f"User: {session_arn} ")
    too_long = error_of(lambda: user.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="job",
                                                                DurationSeconds=7201))
    assert (too_long["status"], too_long["Code"]) == (400, "ValidationError")


def test_assume_role_is_refused_unless_the_trust_policy_allows_the_caller(server, iam, account):
    user = User(server, iam)
    other = _role(iam, {"AWS": f"arn:aws:iam::{account}:user/someone-else"})
    refused = error_of(lambda: user.client("sts").assume_role(RoleArn=other, RoleSessionName="job"))
    assert (refused["status"], refused["Code"]) == (403, "AccessDenied")
    assert f"sts:AssumeRole on resource: {other}" in refused["Message"]
    # A trust policy naming the account delegates to the account's identity policies.
    delegated = _role(iam, {"AWS": f"arn:aws:iam::{account}:root"})
    assert error_of(lambda: user.client("sts").assume_role(RoleArn=delegated, RoleSessionName="job"))[
        "Code"] == "AccessDenied"
    allowed = User(server, iam, allow("sts:AssumeRole", delegated))
    assert allowed.client("sts").assume_role(RoleArn=delegated, RoleSessionName="job")["Credentials"]
    root = error_of(lambda: server.client("sts").assume_role(RoleArn=delegated, RoleSessionName="job"))
    assert root["Code"] == "AccessDenied" and root["Message"] == "Roles may not be assumed by root accounts."
    missing = error_of(lambda: allowed.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/absent", RoleSessionName="job"))
    assert missing["Code"] == "AccessDenied"


def test_a_trust_policy_can_require_an_external_id_and_session_policies_are_refused(server, iam):
    user = User(server, iam)
    role_arn = _role(iam, {"AWS": user.arn})
    guarded = name("guarded")
    guarded_arn = iam.create_role(RoleName=guarded, AssumeRolePolicyDocument=policy(
        {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"sts:ExternalId": "s3cret"}}}))["Role"]["Arn"]
    sts = user.client("sts")
    assert error_of(lambda: sts.assume_role(RoleArn=guarded_arn, RoleSessionName="job"))["Code"] == "AccessDenied"
    assert sts.assume_role(RoleArn=guarded_arn, RoleSessionName="job", ExternalId="s3cret")["Credentials"]
    narrowed = error_of(lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="job",
                                                 Policy=policy(allow("s3:GetObject"))))
    assert (narrowed["status"], narrowed["Code"]) == (400, "ValidationError") and "Policy" in narrowed["Message"]


def test_get_session_token_acts_as_the_user_and_refuses_session_credentials(server, iam):
    user = User(server, iam, allow("sagemaker:ListModels"))
    credentials = user.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    session_sts = _session_client(server, "sts", credentials)
    assert session_sts.get_caller_identity()["Arn"] == user.arn
    # Allowed (the shared server may hold other tests' models, so the list need not be empty).
    assert isinstance(_session_client(server, "sagemaker", credentials).list_models()["Models"], list)
    again = error_of(lambda: session_sts.get_session_token())
    assert (again["status"], again["Code"]) == (403, "AccessDenied")


def _expired_session(server, account: str, user_name: str) -> dict:
    """A session of the user that expired a minute ago, issued the way the server issues them."""
    db = Database(server.env.get("SAGELAB_DATABASE_URL") or f"sqlite:///{server.home / 'sagelab.db'}")
    try:
        store = SessionStore(resources=ResourceStore(db), account=Account(account, "us-east-1"))
        return store.issue(-60, user_name=user_name).credentials
    finally:
        db.close()


@pytest.mark.parametrize(("service", "call", "expired_code", "invalid_code"), [
    ("sts", lambda c: c.get_caller_identity(), "ExpiredToken", "InvalidClientTokenId"),
    ("sagemaker", lambda c: c.list_models(), "ExpiredTokenException", "UnrecognizedClientException"),
    ("s3", lambda c: c.list_buckets(), "ExpiredToken", "InvalidToken"),
])
def test_expired_and_tampered_session_tokens_are_refused_in_each_protocols_shape(
        server, iam, account, service, call, expired_code, invalid_code):
    user = User(server, iam, allow(["sagemaker:ListModels", "s3:ListAllMyBuckets"]))
    expired = _expired_session(server, account, user.name)
    refused = error_of(lambda: call(_session_client(server, service, expired)))
    assert (refused["status"], refused["Code"]) == (403, expired_code)
    assert refused["Message"] == ("The provided token has expired." if service == "s3" else
                                  "The security token included in the request is expired")
    live = user.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    assert call(_session_client(server, service, live))["ResponseMetadata"]["HTTPStatusCode"] == 200
    tampered = {**live, "SessionToken": live["SessionToken"][:-4] + "AAAA"}
    refused = error_of(lambda: call(_session_client(server, service, tampered)))
    assert (refused["status"], refused["Code"]) == (403, invalid_code)
    assert refused["Message"] == ("The provided token is malformed or otherwise invalid." if service == "s3" else
                                  "The security token included in the request is invalid.")


def test_simulate_principal_policy_answers_what_the_enforcer_decides(server, iam, account):
    user = User(server, iam, allow("sagemaker:List*"), deny("sagemaker:ListEndpoints"))
    sm = user.client("sagemaker")
    calls = {"sagemaker:ListModels": sm.list_models, "sagemaker:ListEndpoints": sm.list_endpoints,
             "sagemaker:ListTrainingJobs": sm.list_training_jobs,
             "sagemaker:DescribeModel": lambda: sm.describe_model(ModelName="absent")}
    simulated = iam.simulate_principal_policy(PolicySourceArn=user.arn, ActionNames=list(calls))
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in simulated["EvaluationResults"]}
    assert decisions == {"sagemaker:ListModels": "allowed", "sagemaker:ListEndpoints": "explicitDeny",
                         "sagemaker:ListTrainingJobs": "allowed", "sagemaker:DescribeModel": "implicitDeny"}
    for action, call in calls.items():
        try:
            call()
            enforced = "allowed"
        except sm.exceptions.ClientError as error:
            enforced = "denied" if error.response["Error"]["Code"] == "AccessDeniedException" else "allowed"
        assert enforced == ("allowed" if decisions[action] == "allowed" else "denied"), action
    matched = {r["EvalActionName"]: r["MatchedStatements"] for r in simulated["EvaluationResults"]}
    assert matched["sagemaker:ListEndpoints"] == [{"SourcePolicyId": "inline", "SourcePolicyType": "user"}]
    assert matched["sagemaker:DescribeModel"] == []
    # Context entries feed the conditions, as a request's keys would.
    conditional = User(server, iam, allow("sagemaker:ListModels",
                                          Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    for ip, decision in (("10.1.2.3", "allowed"), ("192.168.0.1", "implicitDeny")):
        result = iam.simulate_principal_policy(PolicySourceArn=conditional.arn, ActionNames=["sagemaker:ListModels"],
                                               ContextEntries=[{"ContextKeyName": "aws:SourceIp",
                                                                "ContextKeyValues": [ip],
                                                                "ContextKeyType": "ip"}])
        assert result["EvaluationResults"][0]["EvalDecision"] == decision
