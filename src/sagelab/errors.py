"""sagelab's error tree. Each error names the AWS error code it is answered with.

    SagelabError                      code, HTTP status; rendered by api/errors.py only
    ├── ValidationError               ValidationException (400)   bad input, missing SageMaker resource
    ├── ResourceNotFound              ResourceNotFound (400)       ops that model it (Stop*, tuning)
    ├── ResourceInUse                 ResourceInUse (400)          duplicate job names
    ├── ResourceLimitExceeded         ResourceLimitExceeded (400)
    ├── ConflictError                 ConflictException (400)
    ├── UnknownOperation              UnknownOperationException (400)
    ├── InternalError                 InternalFailure (500)
    ├── AuthError                     rejected credentials or signature (400/403)
    │   ├── MissingAuthentication     MissingAuthenticationTokenException
    │   ├── IncompleteSignature       IncompleteSignatureException
    │   ├── UnrecognizedClient        UnrecognizedClientException   (S3: InvalidAccessKeyId, query: InvalidClientTokenId)
    │   ├── SignatureMismatch         InvalidSignatureException     (S3: SignatureDoesNotMatch)
    │   ├── RequestExpired            InvalidSignatureException     (S3: RequestTimeTooSkewed)
    │   ├── ContentHashMismatch       (S3: XAmzContentSHA256Mismatch)
    │   ├── PresignedUrlExpired       AccessDenied (403)            a presigned URL past X-Amz-Date + X-Amz-Expires
    │   ├── QueryAuthParameterError   AuthorizationQueryParametersError (400)  a malformed presigned URL
    │   ├── InvalidSessionToken       InvalidClientTokenId (query), UnrecognizedClientException (JSON), InvalidToken (S3)
    │   └── ExpiredSessionToken       ExpiredToken (query, S3), ExpiredTokenException (JSON)
    ├── AccessDenied                  AccessDenied (S3, query), AccessDeniedException (JSON) (403): IAM refused
    ├── S3Error                       S3's own codes (NoSuchBucket, NoSuchKey, ...), XML-rendered
    ├── InvocationValidationError     ValidationError (400)        sagemaker-runtime's bad request
    ├── ModelError                    ModelError (424)             the model answered 4xx/5xx
    ├── Throttling                    ThrottlingException (400)    a serverless variant is at its MaxConcurrency
    ├── EntityNotFound                EntityNotFoundException      Glue: no such database, table, job, ...
    ├── AlreadyExistsError            AlreadyExistsException       Glue: the name is taken
    ├── InvalidInput                  InvalidInputException        Glue: bad input beyond the model's shapes
    ├── CrawlerRunning                CrawlerRunningException      Glue: StartCrawler on a running crawler
    ├── CrawlerNotRunning             CrawlerNotRunningException   Glue: StopCrawler on an idle crawler
    ├── ConcurrentRunsExceeded        ConcurrentRunsExceededException  Glue: MaxConcurrentRuns reached
    ├── InvalidRequest                InvalidRequestException      Athena, with its AthenaErrorCode
    ├── ResourceNotFoundError         ResourceNotFoundException (400)   CloudWatch Logs and others
    └── InvalidParameter              InvalidParameterException (400)   CloudWatch Logs
"""

from __future__ import annotations


class SagelabError(Exception):
    code: str = "InternalFailure"
    status: int = 400
    #: S3 spells some shared failures differently; None means "same as code".
    s3_code: str | None = None

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def code_for(self, protocol: str) -> str:
        if protocol == "s3" and self.s3_code:
            return self.s3_code
        return self.code

    def message_for(self, protocol: str) -> str:
        """The message in the protocol's own wording (the same for most errors)."""
        return self.message


class ValidationError(SagelabError):
    code = "ValidationException"
    s3_code = "InvalidArgument"


class ResourceNotFound(SagelabError):
    code = "ResourceNotFound"


class ResourceInUse(SagelabError):
    code = "ResourceInUse"


class ResourceLimitExceeded(SagelabError):
    code = "ResourceLimitExceeded"


class ConflictError(SagelabError):
    code = "ConflictException"


class UnknownOperation(SagelabError):
    code = "UnknownOperationException"
    s3_code = "NotImplemented"
    status = 400


class InternalError(SagelabError):
    code = "InternalFailure"
    s3_code = "InternalError"
    status = 500


class AuthError(SagelabError):
    status = 403


class MissingAuthentication(AuthError):
    code = "MissingAuthenticationTokenException"
    s3_code = "AccessDenied"


class IncompleteSignature(AuthError):
    code = "IncompleteSignatureException"
    s3_code = "AuthorizationHeaderMalformed"
    status = 400


class UnrecognizedClient(AuthError):
    code = "UnrecognizedClientException"
    s3_code = "InvalidAccessKeyId"

    def code_for(self, protocol: str) -> str:
        # IAM and STS name an unknown key the way they name a bad token.
        return "InvalidClientTokenId" if protocol == "query" else super().code_for(protocol)


class SignatureMismatch(AuthError):
    code = "InvalidSignatureException"
    s3_code = "SignatureDoesNotMatch"


class RequestExpired(AuthError):
    code = "InvalidSignatureException"
    s3_code = "RequestTimeTooSkewed"


class ContentHashMismatch(AuthError):
    code = "InvalidSignatureException"
    s3_code = "XAmzContentSHA256Mismatch"
    status = 400


class PresignedUrlExpired(AuthError):
    """A presigned URL used after X-Amz-Date + X-Amz-Expires (or before its date): S3 says AccessDenied."""

    code = "AccessDenied"

    def __init__(self, message: str, fields: dict[str, str]):
        super().__init__(message)
        self.fields = fields


class QueryAuthParameterError(AuthError):
    code = "AuthorizationQueryParametersError"
    status = 400


class _CodedPerProtocol(SagelabError):
    """An error whose code is spelled differently by each protocol family."""

    #: protocol ("s3", "query", "json", "rest-json") -> code; absent protocols use `code`.
    codes: dict[str, str] = {}

    def code_for(self, protocol: str) -> str:
        return self.codes.get(protocol, self.code)


class InvalidSessionToken(_CodedPerProtocol, AuthError):
    """A session token that no session of this server issued, or that does not belong to the access key."""

    code = "UnrecognizedClientException"
    codes = {"query": "InvalidClientTokenId", "s3": "InvalidToken"}

    def message_for(self, protocol: str) -> str:
        return "The provided token is malformed or otherwise invalid." if protocol == "s3" else self.message


class ExpiredSessionToken(_CodedPerProtocol, AuthError):
    code = "ExpiredTokenException"
    codes = {"query": "ExpiredToken", "s3": "ExpiredToken"}

    def message_for(self, protocol: str) -> str:
        return "The provided token has expired." if protocol == "s3" else self.message


class AccessDenied(_CodedPerProtocol):
    """IAM refused the call: no policy allows it, or one denies it."""

    code = "AccessDeniedException"
    codes = {"query": "AccessDenied", "s3": "AccessDenied"}
    status = 403


class S3Error(SagelabError):
    """An S3-specific failure; `code` is S3's own error code."""

    #: Headers the error answer carries besides its body (a delete marker's `x-amz-delete-marker`).
    headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, code: str, message: str, status: int = 400, **fields: str):
        super().__init__(message)
        self.code = code
        self.status = status
        self.fields = fields

    def with_headers(self, *headers: tuple[str, str]) -> S3Error:
        self.headers = (*self.headers, *headers)
        return self


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=bucket)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=key)


class InvocationValidationError(SagelabError):
    """sagemaker-runtime's own spelling: `ValidationError`, not `ValidationException`."""

    code = "ValidationError"


class ModelError(SagelabError):
    """The model container answered with an error; its status and message are passed on."""

    code = "ModelError"
    status = 424

    def __init__(self, original_status: int, original_message: str, log_stream_arn: str = ""):
        super().__init__(f"Received client error ({original_status}) from primary with message "
                         f"\"{original_message}\". See the endpoint's log for details."
                         if original_status < 500 else
                         f"Received server error ({original_status}) from primary with message "
                         f"\"{original_message}\".")
        self.fields = {"OriginalStatusCode": original_status, "OriginalMessage": original_message,
                       "LogStreamArn": log_stream_arn}


class EntityNotFound(SagelabError):
    code = "EntityNotFoundException"


class AlreadyExistsError(SagelabError):
    code = "AlreadyExistsException"


class InvalidInput(SagelabError):
    code = "InvalidInputException"


class CrawlerRunning(SagelabError):
    code = "CrawlerRunningException"


class CrawlerNotRunning(SagelabError):
    code = "CrawlerNotRunningException"


class ConcurrentRunsExceeded(SagelabError):
    code = "ConcurrentRunsExceededException"


class InvalidRequest(SagelabError):
    """Athena's client error; `AthenaErrorCode` says which rule was broken (e.g. INVALID_INPUT)."""

    code = "InvalidRequestException"

    def __init__(self, message: str, athena_error_code: str = "INVALID_INPUT"):
        super().__init__(message)
        self.fields = {"AthenaErrorCode": athena_error_code}


class ResourceNotFoundError(SagelabError):
    """The spelling of services such as CloudWatch Logs: `ResourceNotFoundException`."""

    code = "ResourceNotFoundException"


class InvalidParameter(SagelabError):
    """CloudWatch Logs' bad-input code: `InvalidParameterException`."""

    code = "InvalidParameterException"


class Throttling(SagelabError):
    """More requests at once than a serverless variant's MaxConcurrency: AWS answers ThrottlingException."""

    code = "ThrottlingException"
