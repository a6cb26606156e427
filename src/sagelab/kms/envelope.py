"""The lake's data keys (see `lake.encryption.DataKeys`), made and opened by KMS.

SSE-KMS: each object's data key is a KMS GenerateDataKey under the object's key, with the object's ARN as
encryption context, as S3 does (`aws:s3:arn`). SSE-S3: the data key is sealed by S3's own service key,
which no API lists. A KMS refusal reaches the S3 client as S3 spells it: `KMS.<KMS's code>`, status 400.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping

from sagelab.errors import S3Error
from sagelab.kms.errors import KmsError
from sagelab.kms.service import KmsService, blob_param

SSE_S3, SSE_KMS = "AES256", "aws:kms"
#: The key S3 uses for SSE-KMS when the request names none.
DEFAULT_S3_KEY = "alias/aws/s3"


def _as_s3_error(error: KmsError) -> S3Error:
    return S3Error(f"KMS.{error.code}", error.message, 400)


class LakeKeys:
    """Built lazily from a `KmsService` factory: a process that never touches an encrypted object opens no key."""

    def __init__(self, kms: Callable[[], KmsService]):
        self._make_kms = kms
        self._kms: KmsService | None = None

    @property
    def kms(self) -> KmsService:
        if self._kms is None:
            self._kms = self._make_kms()
        return self._kms

    def resolve(self, algorithm: str, kms_key_id: str | None) -> str | None:
        """The ARN of the key SSE-KMS will use (S3's default key when none is named); None for SSE-S3."""
        if algorithm != SSE_KMS:
            return None
        try:
            found = self.kms.key_arn(kms_key_id or DEFAULT_S3_KEY)
        except KmsError as error:
            if error.code == "NotFoundException":
                raise S3Error("KMS.NotFoundException", f"Invalid keyId {kms_key_id}", 400) from None
            raise _as_s3_error(error) from None
        return found

    def generate(self, algorithm: str, kms_key_id: str | None, object_arn: str) -> tuple[bytes, dict[str, str]]:
        context = {"aws:s3:arn": object_arn}
        try:
            if algorithm == SSE_KMS:
                answer = self.kms.generate_data_key({"KeyId": kms_key_id or DEFAULT_S3_KEY, "KeySpec": "AES_256",
                                                     "EncryptionContext": context})
                return (blob_param(answer, "Plaintext"),
                        {"algorithm": SSE_KMS, "kms_key_arn": answer["KeyId"], "data_key": answer["CiphertextBlob"]})
            plain = secrets.token_bytes(32)
            sealed = self.kms.seal_with_service_key("s3", plain, context)
            return plain, {"algorithm": SSE_S3, "data_key": base64.b64encode(sealed).decode()}
        except KmsError as error:
            raise _as_s3_error(error) from None

    def unwrap(self, sealed: Mapping[str, str], object_arn: str) -> bytes:
        context = {"aws:s3:arn": object_arn}
        blob = base64.b64decode(sealed["data_key"])
        try:
            if sealed["algorithm"] == SSE_KMS:
                return self.kms.open(blob, context)[0]
            return self.kms.open_with_service_key("s3", blob, context)
        except KmsError as error:
            raise _as_s3_error(error) from None
