"""Server-side verification of AWS Signature Version 4, using botocore's own canonicalisation.

We rebuild the request exactly as the client signed it (the signed headers with their received values,
the raw path and query, the raw body) and let botocore compute the signature it would have sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from sagelab.errors import (
    ContentHashMismatch,
    IncompleteSignature,
    MissingAuthentication,
    RequestExpired,
    SignatureMismatch,
    UnrecognizedClient,
)

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})\s*$")
#: x-amz-content-sha256 values that do not carry the body's hash.
UNHASHED_PAYLOADS = frozenset({
    "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
})


@dataclasses.dataclass(frozen=True)
class Principal:
    access_key_id: str
    region: str
    service: str


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


def service_of(headers: Mapping[str, str]) -> str | None:
    """The service named in the credential scope, or None for an unsigned request."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256"):
        return None
    try:
        return parse_scope(auth)[3]
    except IncompleteSignature:
        return None


class SigV4Verifier:
    def __init__(self, lookup_secret: Callable[[str], str | None], max_skew_seconds: int = 900,
                 now: Callable[[], dt.datetime] | None = None):
        self._lookup_secret = lookup_secret
        self._max_skew = max_skew_seconds
        self._now = now or (lambda: dt.datetime.now(dt.UTC))

    def verify(self, request: SignedRequest) -> Principal:
        authorization = request.headers.get("authorization")
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
        return Principal(akid, region, service)

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
