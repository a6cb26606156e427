"""Application Auto Scaling's error codes (ValidationException is sagelab's ValidationError)."""

from __future__ import annotations

from sagelab.errors import SagelabError


class ObjectNotFound(SagelabError):
    code = "ObjectNotFoundException"


class InvalidNextToken(SagelabError):
    code = "InvalidNextTokenException"
