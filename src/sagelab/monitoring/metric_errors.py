"""CloudWatch's error codes (metrics and alarms).

CloudWatch is a query-protocol service answered also in JSON and CBOR; botocore's model marks it
`awsQueryCompatible`, so each error has two spellings: the query code (`InvalidParameterValue`), which
clients see as `Error.Code`, and the shape name (`InvalidParameterValueException`) sent as `__type` in JSON
and CBOR bodies beside an `x-amzn-query-error: <query code>;Sender` header. `code` is the query code;
`shape` the shape name (see `api/errors.py`).
"""

from __future__ import annotations

from sagelab.errors import SagelabError


class CloudWatchError(SagelabError):
    shape = "InternalServiceFault"

    def code_for(self, protocol: str) -> str:
        return self.shape if protocol in ("cbor", "json-1.0") else self.code


class InvalidParameterValue(CloudWatchError):
    code, shape = "InvalidParameterValue", "InvalidParameterValueException"


class InvalidParameterCombination(CloudWatchError):
    code, shape = "InvalidParameterCombination", "InvalidParameterCombinationException"


class MissingParameter(CloudWatchError):
    code, shape = "MissingParameter", "MissingRequiredParameterException"


class InvalidNextToken(CloudWatchError):
    code, shape = "InvalidNextToken", "InvalidNextToken"


class LimitExceeded(CloudWatchError):
    code, shape = "LimitExceeded", "LimitExceededFault"


class AlarmNotFound(CloudWatchError):
    code, shape, status = "ResourceNotFound", "ResourceNotFound", 404


class InvalidFormat(CloudWatchError):
    code, shape = "InvalidFormat", "InvalidFormatFault"


class TaggedResourceNotFound(CloudWatchError):
    """TagResource, UntagResource, ListTagsForResource on an ARN that names no alarm."""

    code, shape, status = "ResourceNotFoundException", "ResourceNotFoundException", 404
