"""KMS's error codes, each a `SagelabError` so the one error layer renders it."""

from __future__ import annotations

from sagelab.errors import SagelabError


class KmsError(SagelabError):
    """A KMS failure; `code` is KMS's own exception name."""


class KeyNotFound(KmsError):
    code = "NotFoundException"


class KeyDisabled(KmsError):
    code = "DisabledException"


class InvalidKeyState(KmsError):
    code = "KMSInvalidStateException"


class InvalidCiphertext(KmsError):
    code = "InvalidCiphertextException"


class IncorrectKey(KmsError):
    code = "IncorrectKeyException"


class MalformedKeyPolicy(KmsError):
    code = "MalformedPolicyDocumentException"


class AliasExists(KmsError):
    code = "AlreadyExistsException"


class InvalidAliasName(KmsError):
    code = "InvalidAliasNameException"


class KmsValidation(KmsError):
    code = "ValidationException"
