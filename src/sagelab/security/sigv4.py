"""Server-side verification of AWS Signature Version 4, using botocore's own canonicalisation.

We rebuild the request exactly as the client signed it (the signed headers with their received values,
the raw path and query, the raw body) and let botocore compute the signature it would have sent.

A request is signed either in its `Authorization` header or in its query string (a presigned URL: the
`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`,
`X-Amz-Signature` and, for session credentials, `X-Amz-Security-Token` parameters, over an unsigned payload).
S3 also takes the older signature version 2 in the query (`AWSAccessKeyId`, `Signature`, `Expires`): what
boto3 presigns by default for us-east-1 with an `endpoint_url`. Both end in the same `Principal`, so whatever authorizes the call sees the same caller.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import HmacV1QueryAuth, S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials as BotoCredentials

from sagelab.errors import (
    ContentHashMismatch,
    IncompleteSignature,
    MissingAuthentication,
    PresignedUrlExpired,
    QueryAuthParameterError,
    RequestExpired,
    SignatureMismatch,
    UnrecognizedClient,
)
from sagelab.security import post_form

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})\s*$")
#: x-amz-content-sha256 values that do not carry the body's hash.
UNHASHED_PAYLOADS = frozenset({
    "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
})
#: The longest a presigned URL may stay valid: seven days, as S3 allows.
MAX_PRESIGNED_EXPIRES = 604800
QUERY_AUTH_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                     "X-Amz-Signature")


@dataclasses.dataclass(frozen=True)
class Principal:
    access_key_id: str
    region: str
    service: str
    #: The session token the request carried (header or presigned query), for session credentials.
    session_token: str | None = None


@dataclasses.dataclass(frozen=True)
class SignedRequest:
    method: str
    host: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]  # lower-case names, repeated values joined with ","
    body: bytes


def parse_scope(authorization: str) -> tuple[str, str, str, str, list[str], str]:
    """-> (access key, date, region, service, signed header names, signature)."""
    match = _AUTH_RE.match(authorization.strip())
    if not match:
        raise IncompleteSignature(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' in the "
            "AWS4-HMAC-SHA256 format.")
    parts = match["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise IncompleteSignature(
            f"Credential should be scoped to a valid region, service and date: {match['credential']!r}.")
    return parts[0], parts[1], parts[2], parts[3], match["signed"].split(";"), match["signature"]


def service_of(headers: Mapping[str, str], raw_query: str = "") -> str | None:
    """The service named in the credential scope (of the header, else of a presigned query), or None for an
    unsigned request."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256"):
        if "X-Amz-Credential=" not in raw_query:
            return None
        parts = dict(parse_qsl(raw_query, keep_blank_values=True)).get("X-Amz-Credential", "").split("/")
        return parts[3] if len(parts) == 5 else None
    try:
        return parse_scope(auth)[3]
    except IncompleteSignature:
        return None


def is_presigned(raw_query: str) -> bool:
    return "X-Amz-Signature=" in raw_query or "X-Amz-Algorithm=" in raw_query


def is_presigned_v2(raw_query: str) -> bool:
    return "AWSAccessKeyId=" in raw_query and "Signature=" in raw_query


class SigV4Verifier:
    def __init__(self, lookup_secret: Callable[[str], str | None], max_skew_seconds: int = 900,
                 now: Callable[[], dt.datetime] | None = None):
        self._lookup_secret = lookup_secret
        self._max_skew = max_skew_seconds
        self._now = now or (lambda: dt.datetime.now(dt.UTC))

    def verify(self, request: SignedRequest) -> Principal:
        authorization = request.headers.get("authorization")
        if not authorization and is_presigned(request.raw_query):
            return self._verify_query(request)
        if not authorization and is_presigned_v2(request.raw_query):
            return self._verify_query_v2(request)
        if not authorization and post_form.is_post_form(request.method, request.headers):
            return self._verify_post_form(request)
        if not authorization:
            raise MissingAuthentication("Missing Authentication Token: the request is not signed with SigV4.")
        akid, date, region, service, signed_headers, signature = parse_scope(authorization)
        secret = self._lookup_secret(akid)
        if secret is None:
            raise UnrecognizedClient("The security token included in the request is invalid: unknown access "
                                     f"key id {akid!r}.")
        amz_date = request.headers.get("x-amz-date", "")
        try:
            when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            raise IncompleteSignature(f"X-Amz-Date must be an ISO 8601 basic timestamp, got {amz_date!r}.") from None
        now = self._now()
        if abs((now - when).total_seconds()) > self._max_skew or date != amz_date[:8]:
            raise RequestExpired(
                f"Signature expired: {amz_date} is now earlier than "
                f"{(now - dt.timedelta(seconds=self._max_skew)).strftime('%Y%m%dT%H%M%SZ')} "
                f"({now.strftime('%Y%m%dT%H%M%SZ')} - {self._max_skew // 60} min.) or later than "
                f"{(now + dt.timedelta(seconds=self._max_skew)).strftime('%Y%m%dT%H%M%SZ')}.")
        missing = [h for h in signed_headers if h not in request.headers]
        if missing or "host" not in signed_headers:
            raise IncompleteSignature(f"Signed headers missing from the request: {', '.join(missing) or 'host'}.")

        content_sha = request.headers.get("x-amz-content-sha256")
        if (content_sha is not None and content_sha not in UNHASHED_PAYLOADS
                and not hmac.compare_digest(content_sha, hashlib.sha256(request.body).hexdigest())):
            raise ContentHashMismatch("The provided 'x-amz-content-sha256' header does not match what was "
                                      "computed from the request body.")

        expected = self._signature(request, akid, secret, region, service, signed_headers)
        if not hmac.compare_digest(expected, signature):
            raise SignatureMismatch(
                "The request signature we calculated does not match the signature you provided. Check your AWS "
                "Secret Access Key and signing method.")
        return Principal(akid, region, service, request.headers.get("x-amz-security-token"))

    def _verify_query(self, request: SignedRequest) -> Principal:
        """A presigned URL: the signature and its scope ride in the query; the payload is not signed."""
        query = dict(parse_qsl(request.raw_query, keep_blank_values=True))
        missing = [name for name in QUERY_AUTH_PARAMS if name not in query]
        if missing:
            raise QueryAuthParameterError(f"Query-string authentication version 4 requires the {', '.join(QUERY_AUTH_PARAMS)} "
                                          f"parameters; missing: {', '.join(missing)}.")
        if query["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
            raise QueryAuthParameterError("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
        scope = query["X-Amz-Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise QueryAuthParameterError("Error parsing the X-Amz-Credential parameter; the Credential is "
                                          f"mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"., "
                                          f"got {query['X-Amz-Credential']!r}.")
        akid, date, region, service = scope[:4]
        try:
            expires = int(query["X-Amz-Expires"])
        except ValueError:
            expires = -1
        if expires < 0:
            raise QueryAuthParameterError("X-Amz-Expires should be a number")
        if expires > MAX_PRESIGNED_EXPIRES:
            raise QueryAuthParameterError("X-Amz-Expires must be less than a week (in seconds) that is 604800 seconds")
        amz_date = query["X-Amz-Date"]
        try:
            when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            raise QueryAuthParameterError(f"X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", "
                                          f"got {amz_date!r}.") from None
        if date != amz_date[:8]:
            raise QueryAuthParameterError(f"Error parsing the X-Amz-Credential parameter; incorrect date. This date "
                                          f"in the credential must be in the format \"yyyyMMdd\", and match "
                                          f"X-Amz-Date ({amz_date[:8]}); got {date!r}.")
        now = self._now()
        if (when - now).total_seconds() > self._max_skew:
            raise PresignedUrlExpired("Request is not valid yet", {})
        deadline = when + dt.timedelta(seconds=expires)
        if now > deadline:
            raise PresignedUrlExpired("Request has expired", {
                "X-Amz-Expires": str(expires), "Expires": deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")})
        secret = self._lookup_secret(akid)
        if secret is None:
            raise UnrecognizedClient("The AWS Access Key Id you provided does not exist in our records: "
                                     f"{akid!r}.")
        signed_headers = query["X-Amz-SignedHeaders"].split(";")
        absent = [h for h in signed_headers if h not in request.headers]
        if absent or "host" not in signed_headers:
            raise QueryAuthParameterError(f"Signed headers missing from the request: {', '.join(absent) or 'host'}.")
        token = query.get("X-Amz-Security-Token")
        # The canonical query is every parameter but the signature, as the client had it when it signed.
        unsigned = "&".join(p for p in request.raw_query.split("&") if not p.startswith("X-Amz-Signature="))
        url = f"http://{request.headers['host']}{request.raw_path}?{unsigned}"
        aws_request = AWSRequest(method=request.method, url=url,
                                 headers={name: request.headers[name] for name in signed_headers})
        aws_request.context["timestamp"] = amz_date
        signer_cls = S3SigV4QueryAuth if service == "s3" else SigV4QueryAuth
        signer = signer_cls(BotoCredentials(akid, secret, token), service, region, expires=expires)
        canonical = signer.canonical_request(aws_request)
        expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
        if not hmac.compare_digest(expected, query["X-Amz-Signature"]):
            raise SignatureMismatch(
                "The request signature we calculated does not match the signature you provided. Check your key "
                "and signing method.")
        return Principal(akid, region, service, token)

    def _verify_query_v2(self, request: SignedRequest) -> Principal:
        """An S3 URL presigned with signature version 2 (HMAC-SHA1 over the method, type, expiry, resource)."""
        query = dict(parse_qsl(request.raw_query, keep_blank_values=True))
        akid, expires = query.get("AWSAccessKeyId", ""), query.get("Expires", "")
        if not expires.isdigit():
            raise QueryAuthParameterError(f"Query-string authentication requires the Signature, Expires and "
                                          f"AWSAccessKeyId parameters; Expires is {expires!r}.")
        now = self._now()
        if now.timestamp() > int(expires):
            raise PresignedUrlExpired("Request has expired", {
                "Expires": dt.datetime.fromtimestamp(int(expires), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")})
        secret = self._lookup_secret(akid)
        if secret is None:
            raise UnrecognizedClient("The AWS Access Key Id you provided does not exist in our records: "
                                     f"{akid!r}.")
        # What the client signed as headers rides in the query: Content-Type, Content-MD5 and x-amz-*.
        headers = HTTPHeaders()
        for name, value in query.items():
            if name.lower() in ("content-type", "content-md5") or name.lower().startswith("x-amz-"):
                headers[name.lower()] = value
        for name in ("content-type", "content-md5"):
            if name not in headers and name in request.headers:
                headers[name] = request.headers[name]
        token = query.get("x-amz-security-token")
        signer = HmacV1QueryAuth(BotoCredentials(akid, secret, token))
        signer._get_date = lambda: expires  # the Date line of the string to sign is Expires
        split = urlsplit(f"http://{request.host}{request.raw_path}?{request.raw_query}")
        expected = signer.get_signature(request.method, split, headers)
        if not hmac.compare_digest(expected, query.get("Signature", "")):
            raise SignatureMismatch(
                "The request signature we calculated does not match the signature you provided. Check your key "
                "and signing method.")
        return Principal(akid, "us-east-1", "s3", token)

    def _verify_post_form(self, request: SignedRequest) -> Principal:
        """A browser upload (`generate_presigned_post`): the form's policy, signed with SigV4 or version 2.
        The policy's expiry and conditions are held to the form by the S3 face, which knows the bucket."""
        fields = post_form.parse(request.headers["content-type"], request.body).fields
        policy = fields.get("policy")
        if policy is None:
            raise MissingAuthentication("Bucket POST must contain a policy field and its signature: anonymous "
                                        "uploads are not accepted.")
        token = fields.get("x-amz-security-token")
        if "x-amz-signature" in fields:
            scope = fields.get("x-amz-credential", "").split("/")
            if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256" or len(scope) != 5 or scope[4] != "aws4_request":
                raise QueryAuthParameterError("Bucket POST signed with SigV4 needs x-amz-algorithm "
                                              "AWS4-HMAC-SHA256 and x-amz-credential "
                                              "<key>/<YYYYMMDD>/<region>/s3/aws4_request.")
            akid, date, region, service = scope[:4]
            secret = self._secret(akid)
            key = ("AWS4" + secret).encode()
            for part in (date, region, service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            expected, given = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest(), fields["x-amz-signature"]
        elif "signature" in fields and "awsaccesskeyid" in fields:
            akid, region = fields["awsaccesskeyid"], "us-east-1"
            secret = self._secret(akid)
            expected = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
            given = fields["signature"]
        else:
            raise MissingAuthentication("Bucket POST must carry its policy's signature (x-amz-signature, or "
                                        "AWSAccessKeyId and signature).")
        if not hmac.compare_digest(expected, given):
            raise SignatureMismatch(
                "The request signature we calculated does not match the signature you provided. Check your key "
                "and signing method.")
        return Principal(akid, region, "s3", token)

    def _secret(self, akid: str) -> str:
        secret = self._lookup_secret(akid)
        if secret is None:
            raise UnrecognizedClient("The AWS Access Key Id you provided does not exist in our records: "
                                     f"{akid!r}.")
        return secret

    @staticmethod
    def _signature(request: SignedRequest, akid: str, secret: str, region: str, service: str,
                   signed_headers: list[str]) -> str:
        url = f"http://{request.headers['host']}{request.raw_path}"
        if request.raw_query:
            url += "?" + request.raw_query
        headers = {name: request.headers[name] for name in signed_headers}
        aws_request = AWSRequest(method=request.method, url=url, headers=headers, data=request.body)
        aws_request.context["timestamp"] = request.headers["x-amz-date"]
        token = request.headers.get("x-amz-security-token")
        creds = BotoCredentials(akid, secret, token)
        signer_cls = S3SigV4Auth if service == "s3" else SigV4Auth
        signer = signer_cls(creds, service, region)
        if service == "s3":
            # S3 signs the literal path as sent: botocore's S3 signer does not re-normalise it.
            aws_request.url = url
        canonical = signer.canonical_request(aws_request)
        return signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
