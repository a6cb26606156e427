"""CloudTrail's error codes."""

from __future__ import annotations

from sagelab.errors import SagelabError


class TrailNotFound(SagelabError):
    code = "TrailNotFoundException"


class TrailAlreadyExists(SagelabError):
    code = "TrailAlreadyExistsException"


class BucketDoesNotExist(SagelabError):
    code = "S3BucketDoesNotExistException"


class InvalidTrailName(SagelabError):
    code = "InvalidTrailNameException"


class InvalidLookupAttributes(SagelabError):
    code = "InvalidLookupAttributesException"


class InvalidTimeRange(SagelabError):
    code = "InvalidTimeRangeException"


class InvalidNextToken(SagelabError):
    code = "InvalidNextTokenException"


class InvalidEventSelectors(SagelabError):
    code = "InvalidEventSelectorsException"
