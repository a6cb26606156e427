"""KMS through a real boto3 client: keys, aliases, policies, envelope encryption and every refusal."""

from __future__ import annotations

import json
import stat
import uuid

import pytest
from botocore.exceptions import ClientError


def _code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return info.value.response["Error"]["Code"]


@pytest.fixture
def key(kms) -> str:
    return kms.create_key(Description="test key")["KeyMetadata"]["KeyId"]


def test_create_describe_and_list_keys(kms, key, server):
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    uuid.UUID(meta["KeyId"])
    assert meta["Arn"] == f"arn:aws:kms:us-east-1:{meta['AWSAccountId']}:key/{key}"
    assert (meta["KeyState"], meta["Enabled"], meta["KeySpec"], meta["KeyManager"], meta["Description"]) == (
        "Enabled", True, "SYMMETRIC_DEFAULT", "CUSTOMER", "test key")
    listed = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1})
              for k in page["Keys"]]
    assert key in listed
    # The key's material is never stored in plain: it is sealed under a master key only the owner can read.
    master = server.home / "kms" / "master.key"
    assert stat.S_IMODE(master.stat().st_mode) == 0o600


def test_encrypt_decrypt_round_trip_with_context_and_by_every_key_name(kms, key):
    alias = f"alias/test-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key)
    arn = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    alias_arn = arn.rsplit(":", 1)[0] + ":" + alias
    for name in (key, arn, alias, alias_arn):
        blob = kms.encrypt(KeyId=name, Plaintext=b"secret", EncryptionContext={"purpose": "test"})
        assert blob["KeyId"] == arn
        # The ciphertext names its key: Decrypt needs no KeyId.
        answer = kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"purpose": "test"})
        assert (answer["Plaintext"], answer["KeyId"]) == (b"secret", arn)
    assert alias in [a["AliasName"] for a in kms.list_aliases(KeyId=key)["Aliases"]]
    kms.delete_alias(AliasName=alias)
    assert alias not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]


def test_wrong_context_and_tampered_blob_are_invalid_ciphertext(kms, key):
    blob = kms.encrypt(KeyId=key, Plaintext=b"secret", EncryptionContext={"a": "1"})["CiphertextBlob"]
    with pytest.raises(ClientError) as info:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "2"})
    assert _code(info) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as info:
        kms.decrypt(CiphertextBlob=blob)
    assert _code(info) == "InvalidCiphertextException"
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ClientError) as info:
        kms.decrypt(CiphertextBlob=tampered, EncryptionContext={"a": "1"})
    assert _code(info) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as info:
        kms.decrypt(CiphertextBlob=b"not a ciphertext at all, clearly not")
    assert _code(info) == "InvalidCiphertextException"


def test_a_key_id_that_is_not_the_blobs_key_is_incorrect(kms, key):
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as info:
        kms.decrypt(CiphertextBlob=blob, KeyId=other)
    assert _code(info) == "IncorrectKeyException"
    assert kms.decrypt(CiphertextBlob=blob, KeyId=key)["Plaintext"] == b"x"


def test_disabled_key_refuses_use_until_enabled(kms, key):
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"
    for call in (lambda: kms.decrypt(CiphertextBlob=blob), lambda: kms.encrypt(KeyId=key, Plaintext=b"x")):
        with pytest.raises(ClientError) as info:
            call()
        assert _code(info) == "DisabledException"
    kms.enable_key(KeyId=key)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_a_key_pending_deletion_refuses_use_and_cancelling_leaves_it_disabled(kms, key):
    answer = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert (answer["KeyState"], answer["PendingWindowInDays"]) == ("PendingDeletion", 7)
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and "DeletionDate" in meta
    with pytest.raises(ClientError) as info:
        kms.encrypt(KeyId=key, Plaintext=b"x")
    assert _code(info) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as info:
        kms.enable_key(KeyId=key)
    assert _code(info) == "KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"


def test_unknown_keys_and_aliases_are_not_found(kms):
    for name in (str(uuid.uuid4()), "alias/nobody-made-this", "not-a-key"):
        with pytest.raises(ClientError) as info:
            kms.describe_key(KeyId=name)
        assert _code(info) == "NotFoundException"


def test_data_keys_with_and_without_plaintext(kms, key):
    pair = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext={"k": "v"})
    assert len(pair["Plaintext"]) == 32
    opened = kms.decrypt(CiphertextBlob=pair["CiphertextBlob"], EncryptionContext={"k": "v"})
    assert opened["Plaintext"] == pair["Plaintext"]
    sealed = kms.generate_data_key_without_plaintext(KeyId=key, NumberOfBytes=16)
    assert "Plaintext" not in sealed
    assert len(kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"])["Plaintext"]) == 16


def test_rotation_keeps_old_material_for_old_ciphertexts(kms, key):
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is False
    kms.enable_key_rotation(KeyId=key)
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True
    old = kms.encrypt(KeyId=key, Plaintext=b"before")["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=key)
    new = kms.encrypt(KeyId=key, Plaintext=b"after")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"before"
    assert kms.decrypt(CiphertextBlob=new)["Plaintext"] == b"after"
    kms.disable_key_rotation(KeyId=key)
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is False


def test_key_policy_defaults_as_aws_writes_it_and_a_malformed_one_is_refused(kms, key):
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    account = kms.describe_key(KeyId=key)["KeyMetadata"]["AWSAccountId"]
    assert policy["Statement"] == [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*",
                                    "Resource": "*"}]
    policy["Statement"][0]["Sid"] = "Owner"
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    assert json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])["Statement"][0]["Sid"] == "Owner"
    for bad in ("{not json", json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]})):
        with pytest.raises(ClientError) as info:
            kms.put_key_policy(KeyId=key, PolicyName="default", Policy=bad)
        assert _code(info) == "MalformedPolicyDocumentException"


def test_alias_names_are_checked_and_unique(kms, key):
    alias = f"alias/dup-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key)
    with pytest.raises(ClientError) as info:
        kms.create_alias(AliasName=alias, TargetKeyId=key)
    assert _code(info) == "AlreadyExistsException"
    for bad in ("no-prefix", "alias/aws/reserved"):
        with pytest.raises(ClientError) as info:
            kms.create_alias(AliasName=bad, TargetKeyId=key)
        assert _code(info) == "InvalidAliasNameException"
