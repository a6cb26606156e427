"""The KMS face (AWS JSON 1.1, target prefix `TrentService`). Translation only: the keys are `kms.service`'s.

CloudTrail records KMS's cryptographic calls (Encrypt, Decrypt, GenerateDataKey) as read-only management
events, as AWS does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.api.operations import KMS, Call, OperationTable
from sagelab.kms.service import KmsService, blob_param

if TYPE_CHECKING:
    from sagelab.platform import Platform

op = KMS.op
KEY = "key/{KeyId}"


class KmsFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def kms(self) -> KmsService:
        return self.platform.kms

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    def encrypt(self, p: dict[str, Any], request: Request) -> dict[str, Any]:
        return self.kms.encrypt(p["KeyId"], blob_param(p, "Plaintext"), p.get("EncryptionContext"))

    def decrypt(self, p: dict[str, Any], request: Request) -> dict[str, Any]:
        return self.kms.decrypt(blob_param(p, "CiphertextBlob"), p.get("EncryptionContext"), p.get("KeyId"))

    operations = OperationTable("kms", KMS, (
        op("CreateKey", lambda face, p, r: face.kms.create_key(p, r.region)),
        op("DescribeKey", lambda face, p, r: face.kms.describe_key(p["KeyId"]), KEY, read_only=True),
        op("ListKeys", lambda face, p, r: face.kms.list_keys(p), read_only=True),
        op("EnableKey", lambda face, p, r: face.kms.enable_key(p["KeyId"]), KEY),
        op("DisableKey", lambda face, p, r: face.kms.disable_key(p["KeyId"]), KEY),
        op("ScheduleKeyDeletion", lambda face, p, r: face.kms.schedule_deletion(
            p["KeyId"], p.get("PendingWindowInDays")), KEY),
        op("CancelKeyDeletion", lambda face, p, r: face.kms.cancel_deletion(p["KeyId"]), KEY),
        op("EnableKeyRotation", lambda face, p, r: face.kms.set_rotation(p["KeyId"], True), KEY),
        op("DisableKeyRotation", lambda face, p, r: face.kms.set_rotation(p["KeyId"], False), KEY),
        op("GetKeyRotationStatus", lambda face, p, r: face.kms.rotation_status(p["KeyId"]), KEY, read_only=True),
        op("RotateKeyOnDemand", lambda face, p, r: face.kms.rotate_now(p["KeyId"]), KEY),
        op("GetKeyPolicy", lambda face, p, r: face.kms.get_policy(p["KeyId"], p.get("PolicyName")), KEY,
           read_only=True),
        op("PutKeyPolicy", lambda face, p, r: face.kms.put_policy(p["KeyId"], p.get("PolicyName"), p["Policy"]),
           KEY),
        # An alias call also needs the permission on the key it points at; IAM checks the alias here.
        op("CreateAlias", lambda face, p, r: face.kms.create_alias(p["AliasName"], p["TargetKeyId"]),
           "{AliasName}"),
        op("DeleteAlias", lambda face, p, r: face.kms.delete_alias(p["AliasName"]), "{AliasName}"),
        op("ListAliases", lambda face, p, r: face.kms.list_aliases(p), read_only=True),
        op("Encrypt", encrypt, KEY, read_only=True),
        op("Decrypt", decrypt, KEY, read_only=True),
        op("GenerateDataKey", lambda face, p, r: face.kms.generate_data_key(p), KEY, read_only=True),
        op("GenerateDataKeyWithoutPlaintext", lambda face, p, r: face.kms.generate_data_key(
            p, with_plaintext=False), KEY, read_only=True),
    ))
    wire = JsonService("TrentService", operations)
