"""The errors DMS answers with, in its own codes (botocore's `dms` model names the faults)."""

from __future__ import annotations

from sagelab.errors import SagelabError


class ResourceNotFoundFault(SagelabError):
    code = "ResourceNotFoundFault"


class ResourceAlreadyExistsFault(SagelabError):
    code = "ResourceAlreadyExistsFault"


class InvalidResourceStateFault(SagelabError):
    code = "InvalidResourceStateFault"


class InvalidParameterValue(SagelabError):
    """Not in botocore's model, but what DMS answers for a value its shapes allow and it refuses."""

    code = "InvalidParameterValueException"
