"""IAM's own error codes (query protocol), with AWS's wording."""

from __future__ import annotations

from sagelab.errors import SagelabError


class NoSuchEntity(SagelabError):
    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(SagelabError):
    code = "EntityAlreadyExists"
    status = 409


class DeleteConflict(SagelabError):
    code = "DeleteConflict"
    status = 409


class LimitExceeded(SagelabError):
    code = "LimitExceeded"
    status = 409


class InvalidIamInput(SagelabError):
    """IAM's bad input beyond what the model's shapes catch (an unknown policy version, a bad ARN)."""

    code = "InvalidInput"
