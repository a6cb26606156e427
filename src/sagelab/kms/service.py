"""KMS keys: their life cycle, aliases, policies, and envelope encryption under them.

A key is a `resources` row (kind `kms-key`, named by its UUID) whose document holds AWS's KeyMetadata and,
privately, its policy, its rotation flag and its material: one 256-bit AES key per rotation, each sealed
under the home's `MasterKey`. Encrypt uses the newest material; a ciphertext names the version it was made
with, so Decrypt still opens what older material encrypted. Aliases are rows of kind `kms-alias`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

from sagelab.account import Account
from sagelab.kms import ciphertext
from sagelab.kms.errors import (
    AliasExists,
    IncorrectKey,
    InvalidAliasName,
    InvalidCiphertext,
    InvalidKeyState,
    KeyDisabled,
    KeyNotFound,
    KmsValidation,
    MalformedKeyPolicy,
)
from sagelab.kms.master import MasterKey
from sagelab.security.policy_document import MalformedPolicyDocument, PolicyKind, parse_policy
from sagelab.storage.resources import AlreadyExists, Resource, ResourceStore

KEY, ALIAS, SERVICE_KEY = "kms-key", "kms-alias", "kms-service-key"
ENABLED, DISABLED, PENDING_DELETION = "Enabled", "Disabled", "PendingDeletion"
ALGORITHM = "SYMMETRIC_DEFAULT"
DATA_KEY_BYTES = {"AES_256": 32, "AES_128": 16}
_ALIAS_RE = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: Aliases AWS creates for its own services' keys, on first use.
AWS_MANAGED = {"alias/aws/s3": "Default key that protects my S3 objects when no other key is defined"}


def default_key_policy(account_id: str) -> str:
    """The policy AWS gives a key created without one: the account's IAM policies decide."""
    return json.dumps({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [{
        "Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}, "Action": "kms:*", "Resource": "*"}]}, indent=4)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def blob_param(params: Mapping[str, Any], name: str) -> bytes:
    """A blob member as botocore sends it in JSON (base64 text)."""
    try:
        return base64.b64decode(params[name], validate=True)
    except (ValueError, TypeError):
        raise KmsValidation(f"{name} must be base64-encoded binary data.") from None


class KmsService:
    def __init__(self, *, resources: ResourceStore, account: Account, master: MasterKey):
        self.resources = resources
        self.account = account
        self.master = master

    # --- keys -------------------------------------------------------------------------------------
    def create_key(self, params: Mapping[str, Any], region: str, *, manager: str = "CUSTOMER",
                   description: str | None = None) -> dict[str, Any]:
        spec = params.get("KeySpec") or params.get("CustomerMasterKeySpec") or ALGORITHM
        usage = params.get("KeyUsage", "ENCRYPT_DECRYPT")
        if spec != ALGORITHM or usage != "ENCRYPT_DECRYPT":
            raise KmsValidation(f"sagelab's KMS makes symmetric encryption keys only: KeySpec {spec!r} and "
                                f"KeyUsage {usage!r} were asked for, {ALGORITHM} and ENCRYPT_DECRYPT are supported.")
        if params.get("Origin", "AWS_KMS") != "AWS_KMS":
            raise KmsValidation("Origin must be AWS_KMS: sagelab does not import or store external key material.")
        policy = params.get("Policy") or default_key_policy(self.account.id)
        check_policy(policy)
        key_id = str(uuid.uuid4())
        arn = self.account.arn("kms", f"key/{key_id}", region)
        metadata = {
            "AWSAccountId": self.account.id, "KeyId": key_id, "Arn": arn, "CreationDate": time.time(),
            "Enabled": True, "Description": description if description is not None else params.get("Description", ""),
            "KeyUsage": usage, "KeyState": ENABLED, "Origin": "AWS_KMS", "KeyManager": manager,
            "CustomerMasterKeySpec": ALGORITHM, "KeySpec": ALGORITHM, "EncryptionAlgorithms": [ALGORITHM],
            "MultiRegion": False,
        }
        doc = {"KeyMetadata": metadata, "_policy": policy, "_rotation": manager == "AWS",
               "_material": [self._new_material(key_id)]}
        self.resources.insert(KEY, key_id, arn, ENABLED, doc)
        tags = {t["TagKey"]: t["TagValue"] for t in params.get("Tags", [])}
        if tags:
            self.resources.put_tags(arn, tags)
        return {"KeyMetadata": metadata}

    def _new_material(self, key_id: str) -> str:
        return _b64(self.master.seal(secrets.token_bytes(32), key_id))

    def describe_key(self, key: str) -> dict[str, Any]:
        return {"KeyMetadata": self._key(key).doc["KeyMetadata"]}

    def list_keys(self, params: Mapping[str, Any]) -> dict[str, Any]:
        keys = sorted(self.resources.list(KEY), key=lambda r: r.created_at)
        entries = [{"KeyId": r.name, "KeyArn": r.arn} for r in keys]
        return _marker_page(entries, params, "Keys")

    def _key(self, key: str) -> Resource:
        """The key a KeyId names: a key id, a key ARN, an alias name or an alias ARN."""
        if not key:
            raise KmsValidation("KeyId must name a key: a key id, key ARN, alias name or alias ARN.")
        name = key.split(":", 5)[5] if key.startswith("arn:") and key.count(":") >= 5 else key
        if name.startswith("alias/"):
            alias = self.resources.get(ALIAS, name)
            if alias is None and name in AWS_MANAGED:
                return self._aws_managed(name)
            if alias is None:
                raise KeyNotFound(f"Alias {self._alias_arn(name)} is not found.")
            name = alias.doc["TargetKeyId"]
        key_id = name.removeprefix("key/")
        found = self.resources.get(KEY, key_id) if _UUID_RE.match(key_id) else None
        if found is not None and self._deletion_due(found):
            found = None
        if found is None:
            raise KeyNotFound(f"Key '{self.account.arn('kms', 'key/' + key_id)}' does not exist")
        return found

    def _deletion_due(self, key: Resource) -> bool:
        """A key whose deletion window has passed is deleted when next named, with its aliases: what it
        encrypted can no longer be decrypted, as in AWS."""
        metadata = key.doc["KeyMetadata"]
        if metadata["KeyState"] != PENDING_DELETION or metadata.get("DeletionDate", float("inf")) > time.time():
            return False
        self.resources.delete(KEY, key.name)
        for alias in self.resources.list(ALIAS):
            if alias.doc["TargetKeyId"] == key.name:
                self.resources.delete(ALIAS, alias.name)
        return True

    def _aws_managed(self, alias: str) -> Resource:
        """An AWS managed key (alias/aws/s3), created the first time a service asks for it."""
        created = self.create_key({}, self.account.region, manager="AWS", description=AWS_MANAGED[alias])
        key_id = created["KeyMetadata"]["KeyId"]
        try:
            self._insert_alias(alias, key_id)
        except AliasExists:  # another request made it meanwhile: keep theirs, drop ours
            self.resources.delete(KEY, key_id)
        return self._key(alias)

    def key_arn(self, key: str) -> str:
        return self._key(key).arn

    def _usable(self, key: str) -> Resource:
        found = self._key(key)
        state = found.doc["KeyMetadata"]["KeyState"]
        if state == DISABLED:
            raise KeyDisabled(f"{found.arn} is disabled.")
        if state != ENABLED:
            raise InvalidKeyState(f"{found.arn} is {'pending deletion' if state == PENDING_DELETION else state}.")
        return found

    def _set_state(self, key: str, change: Any) -> Resource:
        found = self._key(key)

        def mutate(resource: Resource) -> None:
            change(resource.doc)
            resource.status = resource.doc["KeyMetadata"]["KeyState"]
        return self.resources.update(KEY, found.name, mutate)

    def _customer_key(self, key: str) -> Resource:
        found = self._key(key)
        if found.doc["KeyMetadata"]["KeyManager"] == "AWS":
            raise KmsValidation(f"{found.arn} is an AWS managed key: its state, rotation and policy are AWS's.")
        return found

    def enable_key(self, key: str) -> None:
        found = self._customer_key(key)
        self._refuse_pending(found)
        self._set_state(found.name, lambda doc: doc["KeyMetadata"].update(KeyState=ENABLED, Enabled=True))

    def disable_key(self, key: str) -> None:
        found = self._customer_key(key)
        self._refuse_pending(found)
        self._set_state(found.name, lambda doc: doc["KeyMetadata"].update(KeyState=DISABLED, Enabled=False))

    @staticmethod
    def _refuse_pending(found: Resource) -> None:
        if found.doc["KeyMetadata"]["KeyState"] == PENDING_DELETION:
            raise InvalidKeyState(f"{found.arn} is pending deletion.")

    def schedule_deletion(self, key: str, days: int | None) -> dict[str, Any]:
        found = self._customer_key(key)
        window = 30 if days is None else days
        if not 7 <= window <= 30:
            raise KmsValidation(f"PendingWindowInDays must be between 7 and 30, got {window}.")
        self._refuse_pending(found)
        when = time.time() + window * 86400

        def change(doc: dict[str, Any]) -> None:
            doc["KeyMetadata"].update(KeyState=PENDING_DELETION, Enabled=False, DeletionDate=when,
                                      PendingDeletionWindowInDays=window)
        self._set_state(found.name, change)
        return {"KeyId": found.arn, "DeletionDate": when, "KeyState": PENDING_DELETION,
                "PendingWindowInDays": window}

    def cancel_deletion(self, key: str) -> dict[str, Any]:
        found = self._customer_key(key)
        if found.doc["KeyMetadata"]["KeyState"] != PENDING_DELETION:
            raise InvalidKeyState(f"{found.arn} is not pending deletion.")

        def change(doc: dict[str, Any]) -> None:
            doc["KeyMetadata"].update(KeyState=DISABLED, Enabled=False)  # as AWS: cancelled keys are disabled
            doc["KeyMetadata"].pop("DeletionDate", None)
            doc["KeyMetadata"].pop("PendingDeletionWindowInDays", None)
        self._set_state(found.name, change)
        return {"KeyId": found.arn}

    # --- rotation and policy ----------------------------------------------------------------------
    def set_rotation(self, key: str, enabled: bool) -> None:
        found = self._customer_key(key)
        if enabled:
            self._usable(found.name)  # rotation is turned on only for a key in use
        else:
            self._refuse_pending(found)
        self._set_state(found.name, lambda doc: doc.update(_rotation=enabled))

    def rotation_status(self, key: str) -> dict[str, Any]:
        found = self._key(key)
        return {"KeyRotationEnabled": bool(found.doc["_rotation"]), "KeyId": found.arn}

    def rotate_now(self, key: str) -> dict[str, Any]:
        """New material for Encrypt; every older version stays, so old ciphertexts still decrypt."""
        found = self._customer_key(key)
        self._usable(found.name)
        self._set_state(found.name, lambda doc: doc["_material"].append(self._new_material(found.name)))
        return {"KeyId": found.arn}

    def get_policy(self, key: str, name: str | None) -> dict[str, Any]:
        self._check_policy_name(name)
        return {"Policy": self._key(key).doc["_policy"], "PolicyName": "default"}

    def put_policy(self, key: str, name: str | None, policy: str) -> None:
        self._check_policy_name(name)
        check_policy(policy)
        found = self._key(key)
        self._set_state(found.name, lambda doc: doc.update(_policy=policy))

    @staticmethod
    def _check_policy_name(name: str | None) -> None:
        if name not in (None, "default"):
            raise KeyNotFound(f"PolicyName {name!r} does not exist: a key has one policy, named 'default'.")

    # --- aliases ----------------------------------------------------------------------------------
    def _alias_arn(self, alias: str, region: str | None = None) -> str:
        return self.account.arn("kms", alias, region)

    def create_alias(self, alias: str, target: str) -> None:
        if not _ALIAS_RE.match(alias):
            raise InvalidAliasName(f"AliasName {alias!r} must begin with 'alias/' and hold only letters, digits, "
                                   "'/', '_' and '-'.")
        if alias.startswith("alias/aws/"):
            raise InvalidAliasName(f"AliasName {alias!r}: the prefix 'alias/aws/' is reserved for AWS managed keys.")
        key = self._customer_key(target)
        self._refuse_pending(key)
        self._insert_alias(alias, key.name)

    def _insert_alias(self, alias: str, key_id: str) -> None:
        now = time.time()
        try:
            self.resources.insert(ALIAS, alias, self._alias_arn(alias), "", {
                "AliasName": alias, "AliasArn": self._alias_arn(alias), "TargetKeyId": key_id,
                "CreationDate": now, "LastUpdatedDate": now})
        except AlreadyExists:
            raise AliasExists(f"An alias with the name {self._alias_arn(alias)} already exists") from None

    def delete_alias(self, alias: str) -> None:
        if not self.resources.delete(ALIAS, alias):
            raise KeyNotFound(f"Alias {self._alias_arn(alias)} is not found.")

    def list_aliases(self, params: Mapping[str, Any]) -> dict[str, Any]:
        aliases = sorted((r.doc for r in self.resources.list(ALIAS)), key=lambda doc: doc["AliasName"])
        if params.get("KeyId"):
            key_id = self._key(params["KeyId"]).name
            aliases = [a for a in aliases if a["TargetKeyId"] == key_id]
        return _marker_page(aliases, params, "Aliases")

    # --- cryptography -----------------------------------------------------------------------------
    def _material(self, key: Resource, version: int) -> bytes:
        sealed = key.doc["_material"]
        if not 0 <= version < len(sealed):
            raise InvalidCiphertext("The ciphertext refers to key material this key does not have.")
        return self.master.unseal(base64.b64decode(sealed[version]), key.name)

    def encrypt(self, key: str, plaintext: bytes, context: Mapping[str, str] | None) -> dict[str, Any]:
        if not 1 <= len(plaintext) <= 4096:
            raise KmsValidation(f"Plaintext must be 1 to 4096 bytes long, got {len(plaintext)}.")
        found = self._usable(key)
        version = len(found.doc["_material"]) - 1
        blob = ciphertext.seal(self._material(found, version), found.name, version, plaintext, context)
        return {"CiphertextBlob": _b64(blob), "KeyId": found.arn, "EncryptionAlgorithm": ALGORITHM}

    def decrypt(self, blob: bytes, context: Mapping[str, str] | None, key: str | None = None) -> dict[str, Any]:
        plaintext, found = self.open(blob, context, key)
        return {"Plaintext": _b64(plaintext), "KeyId": found.arn, "EncryptionAlgorithm": ALGORITHM}

    def open(self, blob: bytes, context: Mapping[str, str] | None, key: str | None = None) -> tuple[bytes, Resource]:
        parsed = ciphertext.parse(blob)
        if key is not None and self._key(key).name != parsed.key_id:
            raise IncorrectKey("The key ID in the request does not identify a CMK that can perform this operation.")
        found = self.resources.get(KEY, parsed.key_id)
        if found is None:
            raise InvalidCiphertext("The ciphertext refers to a key that does not exist.")
        self._usable(found.name)
        return ciphertext.open_blob(self._material(found, parsed.version), parsed, context), found

    def generate_data_key(self, params: Mapping[str, Any], *, with_plaintext: bool = True) -> dict[str, Any]:
        size = self._data_key_size(params)
        found = self._usable(params["KeyId"])
        plaintext = secrets.token_bytes(size)
        answer = self.encrypt(found.name, plaintext, params.get("EncryptionContext"))
        answer.pop("EncryptionAlgorithm")
        if with_plaintext:
            answer["Plaintext"] = _b64(plaintext)
        return answer

    @staticmethod
    def _data_key_size(params: Mapping[str, Any]) -> int:
        spec, count = params.get("KeySpec"), params.get("NumberOfBytes")
        if (spec is None) == (count is None):
            raise KmsValidation("Give exactly one of KeySpec (AES_256 or AES_128) and NumberOfBytes.")
        if spec is not None:
            return DATA_KEY_BYTES[spec]
        if not 1 <= count <= 1024:
            raise KmsValidation(f"NumberOfBytes must be between 1 and 1024, got {count}.")
        return int(count)

    # --- keys of sagelab's own services (SSE-S3), never listed ------------------------------------
    def service_key(self, service: str) -> Resource:
        found = self.resources.get(SERVICE_KEY, service)
        if found is not None:
            return found
        key_id = str(uuid.uuid4())
        try:
            return self.resources.insert(SERVICE_KEY, service, f"sagelab:service-key:{service}", ENABLED,
                                         {"_material": [self._new_material(key_id)], "_key_id": key_id})
        except AlreadyExists:
            return self.service_key(service)

    def seal_with_service_key(self, service: str, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        found = self.service_key(service)
        key_id = found.doc["_key_id"]
        material = self.master.unseal(base64.b64decode(found.doc["_material"][0]), key_id)
        return ciphertext.seal(material, key_id, 0, plaintext, context)

    def open_with_service_key(self, service: str, blob: bytes, context: Mapping[str, str]) -> bytes:
        found = self.service_key(service)
        key_id = found.doc["_key_id"]
        parsed = ciphertext.parse(blob)
        if parsed.key_id != key_id:
            raise InvalidCiphertext("The data key was not sealed by this service's key.")
        material = self.master.unseal(base64.b64decode(found.doc["_material"][0]), key_id)
        return ciphertext.open_blob(material, parsed, context)


def check_policy(policy: str) -> None:
    try:
        parse_policy(policy, PolicyKind.RESOURCE)
    except MalformedPolicyDocument as exc:
        raise MalformedKeyPolicy(exc.message) from None


def _marker_page(items: list[dict[str, Any]], params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """KMS's Limit/Marker pagination: Truncated says whether NextMarker follows."""
    limit = int(params.get("Limit") or 100)
    marker = params.get("Marker")
    try:
        start = int(marker) if marker else 0
    except ValueError:
        raise KmsValidation(f"Marker {marker!r} was not issued by this service.") from None
    chunk = items[start:start + limit]
    more = start + limit < len(items)
    return {name: chunk, "Truncated": more, **({"NextMarker": str(start + limit)} if more else {})}
