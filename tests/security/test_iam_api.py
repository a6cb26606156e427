"""The IAM API through a real boto3 client: round trips, AWS's error codes, pagination, and a restart."""

from __future__ import annotations

import json

import pytest
from iam_kit import User, allow, error_of, name, policy

from sagelab.embedded import ServerProcess


@pytest.fixture(scope="module")
def iam(server):
    return server.client("iam")


def test_users_round_trip_and_their_names_are_unique(iam):
    user = name("alice")
    created = iam.create_user(UserName=user, Path="/team/")["User"]
    assert created["UserName"] == user and created["Path"] == "/team/"
    assert created["Arn"].endswith(f":user/team/{user}") and created["UserId"].startswith("AIDA")
    assert iam.get_user(UserName=user)["User"] == created
    assert user in [u["UserName"] for u in iam.list_users(PathPrefix="/team/")["Users"]]
    duplicate = error_of(lambda: iam.create_user(UserName=user))
    assert (duplicate["status"], duplicate["Code"]) == (409, "EntityAlreadyExists")
    assert duplicate["Message"] == f"User with name {user} already exists."
    iam.delete_user(UserName=user)
    missing = error_of(lambda: iam.get_user(UserName=user))
    assert (missing["status"], missing["Code"]) == (404, "NoSuchEntity")
    assert missing["Message"] == f"The user with name {user} cannot be found."


def test_inputs_that_would_narrow_a_principal_and_are_not_enforced_are_refused(iam):
    boundary = error_of(lambda: iam.create_user(UserName=name("bounded"),
                                                PermissionsBoundary="arn:aws:iam::aws:policy/ReadOnlyAccess"))
    assert (boundary["status"], boundary["Code"]) == (400, "InvalidInput")
    assert "PermissionsBoundary" in boundary["Message"]


def test_get_user_without_a_name_answers_the_caller(server, iam):
    account = server.client("sts").get_caller_identity()["Account"]
    root = iam.get_user()["User"]
    assert (root["UserId"], root["Arn"]) == (account, f"arn:aws:iam::{account}:root")
    user = User(server, iam, allow("iam:GetUser", f"arn:aws:iam::{account}:user/${{aws:username}}"))
    assert user.client("iam").get_user()["User"]["Arn"] == user.arn


def test_list_users_pages_with_marker_and_max_items(iam):
    prefix = f"/{name('page')}/"
    names = sorted(iam.create_user(UserName=name("u"), Path=prefix)["User"]["UserName"] for _ in range(5))
    first = iam.list_users(PathPrefix=prefix, MaxItems=2)
    assert first["IsTruncated"] and [u["UserName"] for u in first["Users"]] == names[:2]
    second = iam.list_users(PathPrefix=prefix, MaxItems=2, Marker=first["Marker"])
    assert [u["UserName"] for u in second["Users"]] == names[2:4]
    paged = [u["UserName"] for p in iam.get_paginator("list_users").paginate(
        PathPrefix=prefix, PaginationConfig={"PageSize": 2}) for u in p["Users"]]
    assert paged == names


def test_access_keys_are_real_credentials_and_at_most_two_per_user(server, iam):
    user = User(server, iam, allow("sts:GetCallerIdentity"))
    assert user.access_key_id.startswith("AKIA") and len(user.secret) == 40
    identity = user.client("sts").get_caller_identity()
    assert identity["Arn"] == user.arn and identity["UserId"].startswith("AIDA")
    listed = iam.list_access_keys(UserName=user.name)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [(user.access_key_id, "Active")]
    assert "SecretAccessKey" not in listed[0]
    iam.create_access_key(UserName=user.name)
    limit = error_of(lambda: iam.create_access_key(UserName=user.name))
    assert (limit["status"], limit["Code"]) == (409, "LimitExceeded")
    iam.delete_access_key(UserName=user.name, AccessKeyId=user.access_key_id)
    gone = error_of(lambda: user.client("sts").get_caller_identity())
    assert (gone["status"], gone["Code"]) == (403, "InvalidClientTokenId")


def test_a_user_with_keys_or_policies_cannot_be_deleted(server, iam):
    user = User(server, iam, allow("s3:ListAllMyBuckets"))
    conflict = error_of(lambda: iam.delete_user(UserName=user.name))
    assert (conflict["status"], conflict["Code"]) == (409, "DeleteConflict")
    assert "access keys" in conflict["Message"]
    iam.delete_access_key(UserName=user.name, AccessKeyId=user.access_key_id)
    assert "policies" in error_of(lambda: iam.delete_user(UserName=user.name))["Message"]
    iam.delete_user_policy(UserName=user.name, PolicyName="inline")
    iam.delete_user(UserName=user.name)


def test_inline_policies_come_back_decoded_and_malformed_ones_are_refused(iam):
    user = iam.create_user(UserName=name("inline"))["User"]["UserName"]
    document = policy(allow("s3:GetObject", "arn:aws:s3:::data/*"))
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=document)
    got = iam.get_user_policy(UserName=user, PolicyName="read")
    assert got["PolicyDocument"] == json.loads(document)  # sent URL-encoded, decoded by boto3
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["read"]
    bad = error_of(lambda: iam.put_user_policy(UserName=user, PolicyName="bad", PolicyDocument='{"Statement": ['))
    assert (bad["status"], bad["Code"]) == (400, "MalformedPolicyDocument")
    assert bad["Message"].startswith("Syntax errors in policy.")
    missing = error_of(lambda: iam.get_user_policy(UserName=user, PolicyName="nope"))
    assert missing["Code"] == "NoSuchEntity"


def test_managed_policies_attach_count_and_refuse_deletion_while_attached(iam):
    user = iam.create_user(UserName=name("managed"))["User"]["UserName"]
    document = policy(allow("sagemaker:List*"))
    created = iam.create_policy(PolicyName=name("lister"), PolicyDocument=document, Description="lists")["Policy"]
    arn = created["Arn"]
    assert created["DefaultVersionId"] == "v1" and created["AttachmentCount"] == 0
    assert error_of(lambda: iam.create_policy(PolicyName=created["PolicyName"],
                                              PolicyDocument=document))["Code"] == "EntityAlreadyExists"
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert version["Document"] == json.loads(document) and version["IsDefaultVersion"]
    assert arn in [p["Arn"] for p in iam.list_policies(Scope="Local", OnlyAttached=True)["Policies"]]
    assert iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == [
        {"PolicyName": created["PolicyName"], "PolicyArn": arn}]
    conflict = error_of(lambda: iam.delete_policy(PolicyArn=arn))
    assert (conflict["status"], conflict["Code"]) == (409, "DeleteConflict")
    iam.detach_user_policy(UserName=user, PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)
    assert error_of(lambda: iam.get_policy(PolicyArn=arn))["Code"] == "NoSuchEntity"


def test_roles_keep_their_trust_policy_and_refuse_a_malformed_one(iam):
    role = name("trainer")
    trust = policy({"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole"})
    created = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust, MaxSessionDuration=7200)["Role"]
    assert created["RoleId"].startswith("AROA") and created["MaxSessionDuration"] == 7200
    assert iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"] == json.loads(trust)
    assert role in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    iam.put_role_policy(RoleName=role, PolicyName="read", PolicyDocument=policy(allow("s3:GetObject")))
    assert iam.get_role_policy(RoleName=role, PolicyName="read")["PolicyName"] == "read"
    assert error_of(lambda: iam.delete_role(RoleName=role))["Code"] == "DeleteConflict"
    iam.delete_role_policy(RoleName=role, PolicyName="read")
    iam.delete_role(RoleName=role)
    # A trust policy must name a principal.
    bad = error_of(lambda: iam.create_role(RoleName=name("bad"), AssumeRolePolicyDocument=policy(
        allow("sts:AssumeRole"))))
    assert bad["Code"] == "MalformedPolicyDocument"


def test_groups_list_their_members(iam):
    group = iam.create_group(GroupName=name("team"))["Group"]["GroupName"]
    user = iam.create_user(UserName=name("member"))["User"]["UserName"]
    iam.add_user_to_group(GroupName=group, UserName=user)
    assert [u["UserName"] for u in iam.get_group(GroupName=group)["Users"]] == [user]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=user)["Groups"]] == [group]
    assert error_of(lambda: iam.delete_group(GroupName=group))["Code"] == "DeleteConflict"
    iam.remove_user_from_group(GroupName=group, UserName=user)
    iam.delete_group(GroupName=group)


def test_a_restart_keeps_users_keys_policies_bucket_policies_and_sessions(tmp_path):
    with ServerProcess(tmp_path / "home") as server:
        iam = server.client("iam")
        user = User(server, iam, allow("sagemaker:ListModels"))
        arn = iam.create_policy(PolicyName="lister", PolicyDocument=policy(allow("sagemaker:ListModels")))[
            "Policy"]["Arn"]
        iam.attach_user_policy(UserName=user.name, PolicyArn=arn)
        server.client("s3").create_bucket(Bucket="kept-bucket")
        server.client("s3").put_bucket_policy(Bucket="kept-bucket", Policy=policy({
            "Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::kept-bucket"}))
        session = user.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    with ServerProcess(tmp_path / "home") as server:
        iam = server.client("iam")
        assert iam.get_user(UserName=user.name)["User"]["Arn"] == user.arn
        assert iam.list_user_policies(UserName=user.name)["PolicyNames"] == ["inline"]
        assert iam.list_attached_user_policies(UserName=user.name)["AttachedPolicies"][0]["PolicyArn"] == arn
        user.server = server
        assert user.client("sagemaker").list_models()["Models"] == []  # the key still signs, the policy allows
        assert error_of(lambda: user.client("sagemaker").list_endpoints())["Code"] == "AccessDeniedException"
        assert user.client("s3").list_objects_v2(Bucket="kept-bucket")["KeyCount"] == 0  # the bucket policy
        temporary = server.client("sts", aws_access_key_id=session["AccessKeyId"],
                                  aws_secret_access_key=session["SecretAccessKey"],
                                  aws_session_token=session["SessionToken"])
        assert temporary.get_caller_identity()["Arn"] == user.arn
