"""The errors Kinesis answers with, in its own codes."""

from __future__ import annotations

from sagelab.errors import ResourceNotFoundError, SagelabError

__all__ = ["ExpiredIterator", "InvalidArgument", "LimitExceeded", "ProvisionedThroughputExceeded", "ResourceNotFoundError", "StreamInUse"]


class InvalidArgument(SagelabError):
    code = "InvalidArgumentException"


class ExpiredIterator(SagelabError):
    code = "ExpiredIteratorException"


class StreamInUse(SagelabError):
    code = "ResourceInUseException"


class LimitExceeded(SagelabError):
    code = "LimitExceededException"


class ProvisionedThroughputExceeded(SagelabError):
    code = "ProvisionedThroughputExceededException"
