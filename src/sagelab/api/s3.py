"""The S3 REST face (protocol "s3"): routes S3 requests to the blob store and multipart uploads.

Requests are addressed path-style (`/bucket/key`), or virtual-host style when the Host is
`<bucket>.localhost`. The operation is chosen by method, by whether a bucket and a key are named, and by
the subresource in the query (`?uploads`, `?delete`, `?location`, ...): `ROUTES` names it, `VARIANTS` tells
apart the operations that share a route, and the face's operation table says who answers it. Handlers parse
headers and query, call the lake, and render XML through `s3_xml`; failures are raised as `S3Error` and
rendered elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import email.utils
import functools
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from sagelab.api import s3_cors, s3_encryption, s3_lifecycle, s3_tagging, s3_versioning, s3_xml
from sagelab.api.http import Request, Response, http_date
from sagelab.api.operations import S3, Access, Audit, Call, OperationTable
from sagelab.api.s3_payload import read_payload
from sagelab.errors import S3Error, UnknownOperation
from sagelab.lake.blobs import ARCHIVE_CLASSES, STORAGE_CLASSES, BlobStore, ObjectInfo
from sagelab.lake.encryption import Encryption
from sagelab.lake.listing import list_page
from sagelab.lake.multipart import MultipartUploads
from sagelab.security import post_form

if TYPE_CHECKING:
    from sagelab.platform import Platform

#: Query names that select an operation other than the plain one (from botocore's S3 request URIs).
SUBRESOURCES = frozenset({
    "abac", "accelerate", "acl", "analytics", "annotation", "attributes", "cors", "delete", "encryption",
    "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
    "metadataAnnotationTable", "metadataConfiguration", "metadataInventoryTable", "metadataJournalTable",
    "metadataTable", "metrics", "notification", "object-lock", "ownershipControls", "policy", "policyStatus",
    "publicAccessBlock", "renameObject", "replication", "requestPayment", "restore", "retention", "select",
    "session", "tagging", "torrent", "uploadId", "uploads", "versioning", "versions", "website",
})
META_PREFIX = "x-amz-meta-"
STORAGE_CLASS_HEADER = "x-amz-storage-class"
MAX_METADATA_BYTES = 2048
MAX_KEYS = 1000
#: GetObject query parameters that override response headers.
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type", "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding", "response-content-language": "Content-Language",
    "response-cache-control": "Cache-Control", "response-expires": "Expires",
}
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_VIRTUAL_HOST_RE = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.\-]*)\.localhost$")

#: (face, the resolved request) -> the response.
Handler = Callable[["S3Face", "S3Call"], Response]
ACCOUNT, BUCKET, OBJECT = "account", "bucket", "object"
#: (what the path names, method, subresource) -> the operation that request is, in botocore's name.
ROUTES: dict[tuple[str, str, str | None], str] = {
    (ACCOUNT, "GET", None): "ListBuckets",
    (BUCKET, "PUT", None): "CreateBucket", (BUCKET, "DELETE", None): "DeleteBucket",
    (BUCKET, "HEAD", None): "HeadBucket", (BUCKET, "GET", None): "ListObjects",
    (BUCKET, "GET", "location"): "GetBucketLocation", (BUCKET, "GET", "uploads"): "ListMultipartUploads",
    (BUCKET, "POST", "delete"): "DeleteObjects",
    (BUCKET, "PUT", "policy"): "PutBucketPolicy", (BUCKET, "GET", "policy"): "GetBucketPolicy",
    (BUCKET, "DELETE", "policy"): "DeleteBucketPolicy",
    (BUCKET, "PUT", "encryption"): "PutBucketEncryption", (BUCKET, "GET", "encryption"): "GetBucketEncryption",
    (BUCKET, "DELETE", "encryption"): "DeleteBucketEncryption",
    (BUCKET, "PUT", "tagging"): "PutBucketTagging", (BUCKET, "GET", "tagging"): "GetBucketTagging",
    (BUCKET, "DELETE", "tagging"): "DeleteBucketTagging",
    (BUCKET, "PUT", "cors"): "PutBucketCors", (BUCKET, "GET", "cors"): "GetBucketCors",
    (BUCKET, "DELETE", "cors"): "DeleteBucketCors",
    (BUCKET, "PUT", "versioning"): "PutBucketVersioning", (BUCKET, "GET", "versioning"): "GetBucketVersioning",
    (BUCKET, "GET", "versions"): "ListObjectVersions",
    (BUCKET, "PUT", "lifecycle"): "PutBucketLifecycleConfiguration",
    (BUCKET, "GET", "lifecycle"): "GetBucketLifecycleConfiguration", (BUCKET, "DELETE", "lifecycle"): "DeleteBucketLifecycle",
    (OBJECT, "PUT", None): "PutObject", (OBJECT, "GET", None): "GetObject",
    (OBJECT, "HEAD", None): "HeadObject", (OBJECT, "DELETE", None): "DeleteObject",
    (OBJECT, "PUT", "tagging"): "PutObjectTagging", (OBJECT, "GET", "tagging"): "GetObjectTagging",
    (OBJECT, "DELETE", "tagging"): "DeleteObjectTagging",
    (OBJECT, "POST", "restore"): "RestoreObject",
    (OBJECT, "POST", "uploads"): "CreateMultipartUpload",
    (OBJECT, "PUT", "uploadId"): "UploadPart", (OBJECT, "POST", "uploadId"): "CompleteMultipartUpload",
    (OBJECT, "DELETE", "uploadId"): "AbortMultipartUpload", (OBJECT, "GET", "uploadId"): "ListParts",
}
#: Operations sent on another's route: routed operation -> (the sibling, whether (query, headers) ask for it).
VARIANTS: dict[str, tuple[str, Callable[[Mapping[str, str], Mapping[str, str]], bool]]] = {
    "ListObjects": ("ListObjectsV2", lambda query, headers: query.get("list-type") == "2"),
    "PutObject": ("CopyObject", lambda query, headers: "x-amz-copy-source" in headers),
    "UploadPart": ("UploadPartCopy", lambda query, headers: "x-amz-copy-source" in headers),
}
OBJECT_ARN = "{Bucket}/{Key}"
#: A copy also reads its source object, which `x-amz-copy-source` names as CopySource.
READ_SOURCE = Access("s3:GetObject", "{CopySource}")
#: A write that tags the object it makes (`x-amz-tagging`, botocore's Tagging) also needs s3:PutObjectTagging.
TAG_OBJECT = Access("s3:PutObjectTagging", OBJECT_ARN, when="Tagging")

_TAGGED_WRITES = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})
_COPIES = frozenset({"CopyObject", "UploadPartCopy"})
#: Calls after which the bucket may be gone (or not there yet): no CORS rules to read.
_BUCKET_LIFETIME = frozenset({"CreateBucket", "DeleteBucket"})


def _of_version(action: str) -> Access:
    """A call that names a version (`versionId`, botocore's VersionId) also needs the action's Version form."""
    return Access(action, OBJECT_ARN, when="VersionId")


def routed_operation(level: str, method: str, subresource: str | None, query: Mapping[str, str],
                     headers: Mapping[str, str]) -> str | None:
    """The operation a request is, by botocore's name; None when S3 has it but sagelab routes none there."""
    name = ROUTES.get((level, method, subresource))
    variant = VARIANTS.get(name or "")
    if variant is not None and variant[1](query, headers):
        return variant[0]
    return name


@dataclasses.dataclass(frozen=True)
class S3Call(Call):
    """One request resolved to its operation, with the bucket, key and subresource it addresses worked out."""

    request: Request
    bucket: str
    key: str
    query: dict[str, str]
    subresource: str | None
    #: A browser upload's form (POST to the bucket, `generate_presigned_post`): PutObject from its fields.
    form: post_form.PostForm | None = None

    @property
    def headers(self) -> dict[str, str]:
        return self.request.headers


def address(request: Request) -> tuple[str, str]:
    """-> (bucket, key) the request names; either may be empty."""
    path = request.path
    host = request.headers.get("host", "").lower()
    hostname = host if host.startswith("[") else host.rsplit(":", 1)[0]
    virtual = _VIRTUAL_HOST_RE.match(hostname)
    if virtual:
        return virtual["bucket"], path[1:]
    bucket, _, key = path[1:].partition("/")
    return bucket, key


def subresource(query: Mapping[str, str]) -> str | None:
    named = [name for name in query if name in SUBRESOURCES]
    if len(named) > 1:
        raise UnknownOperation(f"S3 request names several subresources at once: {', '.join(sorted(named))}.")
    return named[0] if named else None


# --- request parsing helpers -----------------------------------------------------------------------
def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    metadata = {name[len(META_PREFIX):]: value for name, value in headers.items() if name.startswith(META_PREFIX)}
    if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA_BYTES:
        raise S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.", 400,
                      MaxSizeAllowed=str(MAX_METADATA_BYTES))
    return metadata


def storage_class(headers: Mapping[str, str]) -> str:
    """The storage class a write asks for (`x-amz-storage-class`), STANDARD when it asks for none."""
    asked = headers.get(STORAGE_CLASS_HEADER, "STANDARD")
    if asked not in STORAGE_CLASSES:
        raise S3Error("InvalidStorageClass", "The storage class you specified is not valid", 400,
                      StorageClassRequested=asked)
    return asked


def readable(info: ObjectInfo) -> ObjectInfo:
    """The object, if its bytes may be read: an archived one must be restored first, as on S3."""
    if not info.readable(time.time()):
        raise S3Error("InvalidObjectState", "The operation is not valid for the object's storage class", 403,
                      StorageClass=info.storage_class)
    return info


def restore_header(info: ObjectInfo) -> list[tuple[str, str]]:
    """`x-amz-restore` for an archived object with a restored copy (restores complete at once here)."""
    if info.restored_until is None:
        return []
    return [("x-amz-restore", f'ongoing-request="false", expiry-date="{http_date(info.restored_until)}"')]


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte a Range header asks for; None for the whole object."""
    match = _RANGE_RE.match(header.strip()) if header else None
    if not match or match.groups() == ("", ""):
        return None  # absent or not a single byte range: S3 answers with the whole object
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
        if int(last) == 0 or size == 0:
            raise _invalid_range(header, size)
    else:
        start, end = int(first), size - 1 if last == "" else min(int(last), size - 1)
        if last != "" and int(last) < start:
            return None
        if start >= size:
            raise _invalid_range(header, size)
    return start, end


def _invalid_range(header: str | None, size: int) -> S3Error:
    return S3Error("InvalidRange", "The requested range is not satisfiable", 416, RangeRequested=str(header),
                   ActualObjectSize=str(size))


def _int_param(query: Mapping[str, str], name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low:
        raise S3Error("InvalidArgument", f"Provided {name} {raw!r} is not an integer of at least {low}.", 400,
                      ArgumentName=name, ArgumentValue=raw)
    return value if high is None else min(value, high)


def _http_time(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def _etag_matches(condition: str, etag: str) -> bool:
    return any(c.strip() in ("*", f'"{etag}"', etag) for c in condition.split(","))


def _precondition_failed(condition: str) -> S3Error:
    return S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412,
                   Condition=condition)


def check_preconditions(headers: Mapping[str, str], info: ObjectInfo, prefix: str = "") -> bool:
    """RFC 7232 order. -> False when the caller should answer 304 Not Modified; raises on 412."""
    if_match, if_none_match = headers.get(prefix + "if-match"), headers.get(prefix + "if-none-match")
    if if_match is not None:
        if not _etag_matches(if_match, info.etag):
            raise _precondition_failed(prefix + "If-Match")
    elif ((since := _http_time(headers.get(prefix + "if-unmodified-since", ""))) is not None
          and int(info.last_modified) > since):
        raise _precondition_failed(prefix + "If-Unmodified-Since")
    if if_none_match is not None:
        return not _etag_matches(if_none_match, info.etag)
    since = _http_time(headers.get(prefix + "if-modified-since", ""))
    return since is None or int(info.last_modified) > since


def copy_source_path(header: str) -> str:
    """`x-amz-copy-source` (`[/]bucket/key[?versionId=..]`, URL-encoded) -> `bucket/key`, unchecked."""
    return unquote(header.split("?", 1)[0]).lstrip("/")


def copy_source(header: str) -> tuple[str, str]:
    """`x-amz-copy-source` -> (bucket, key), refused when either is missing."""
    bucket, _, key = copy_source_path(header).partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                      "sourcebucket/sourcekey.", 400, ArgumentName="x-amz-copy-source", ArgumentValue=header)
    return bucket, key


def _header_value(param: str, value: str) -> str:
    """A query value that is to be sent back as a header: printable Latin-1 only."""
    if not all(" " <= c <= "\xff" and c != "\x7f" for c in value):
        raise S3Error("InvalidArgument", f"{param} must be printable Latin-1 text to be sent as a header.", 400,
                      ArgumentName=param)
    return value


def _continuation_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode()


def _continuation_marker(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect", 400,
                      ArgumentName="continuation-token") from None


def object_headers(info: ObjectInfo) -> list[tuple[str, str]]:
    return [("ETag", s3_xml.quote_etag(info.etag)), ("Last-Modified", http_date(info.last_modified)),
            ("Content-Type", info.content_type), ("Accept-Ranges", "bytes"),
            *s3_encryption.response_headers(info.encryption), *s3_tagging.count_headers(info.tags),
            *([(STORAGE_CLASS_HEADER, info.storage_class)] if info.storage_class != "STANDARD" else []),
            *restore_header(info), *s3_versioning.headers_of(info),
            *((META_PREFIX + name, value) for name, value in info.metadata.items())]


def _xml(body: bytes, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(body=body, content_type=s3_xml.CONTENT_TYPE, headers=list(headers or []))


class S3Face:
    protocol = "s3"

    def __init__(self, platform: Platform):
        self.platform = platform

    # The lake is reached per call, after the platform is open.
    @property
    def blobs(self) -> BlobStore:
        return self.platform.blobs

    @functools.cached_property
    def uploads(self) -> MultipartUploads:
        return MultipartUploads(self.blobs)

    def resolve(self, request: Request) -> S3Call:
        bucket, key = address(request)
        query = request.query
        sub = subresource(query)
        expected_owner = request.headers.get("x-amz-expected-bucket-owner")
        if bucket and expected_owner is not None and expected_owner != request.account_id:
            raise S3Error("AccessDenied", f"Access Denied: bucket {bucket!r} is not owned by account "
                          f"{expected_owner!r} (x-amz-expected-bucket-owner).", 403)
        level = OBJECT if key else BUCKET if bucket else ACCOUNT
        form = None
        if level == BUCKET and sub is None and post_form.is_post_form(request.method, request.headers):
            form, key = self._post_form(request)  # a browser upload: PutObject of the key the form names
        name = "PutObject" if form else routed_operation(level, request.method, sub, query, request.headers)
        operation = self.operations.get(name) if name else None
        if operation is None:
            target = f"/{bucket}/{key}" if key else f"/{bucket}"
            asked = f"{target}?{sub}" if sub else target
            raise UnknownOperation(f"sagelab's S3 does not implement {request.method} {asked} "
                                   f"({'an object' if key else 'a bucket' if bucket else 'an account'}-level request).")
        params = {"Bucket": bucket, "Key": key} if key else {"Bucket": bucket} if bucket else {}
        if operation.name in _COPIES:
            params["CopySource"] = copy_source_path(request.headers["x-amz-copy-source"])
        if operation.name in _TAGGED_WRITES and request.headers.get(s3_tagging.HEADER):
            params["Tagging"] = request.headers[s3_tagging.HEADER]
        if key and "versionId" in query:
            params["VersionId"] = query["versionId"]
        return S3Call(operation=operation, params=params, request=request, bucket=bucket, key=key,
                      query=query, subresource=sub, form=form)

    @staticmethod
    def _post_form(request: Request) -> tuple[post_form.PostForm, str]:
        form = post_form.parse(request.headers["content-type"], request.body)
        key = form.fields.get("key")
        if not key:
            raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is specified, "
                          "please check the order of the fields.", 400, ArgumentName="key", ArgumentValue="")
        return form, key.replace("${filename}", form.filename)

    def answer(self, call: S3Call, request: Request) -> Response:
        response = call.operation.handler(self, call)
        origin = request.headers.get("origin")
        if origin and call.bucket and call.operation.name not in _BUCKET_LIFETIME:
            response.headers += s3_cors.response_headers(self.blobs.bucket_config(call.bucket, "cors"), origin,
                                                         request.method)
        return response

    def preflight(self, request: Request) -> Response:
        """A browser's CORS preflight (`OPTIONS`): unauthenticated, as on S3, and answered from the bucket's
        rules before any operation is resolved (S3's API has no operation for it)."""
        bucket, _ = address(request)
        if not bucket:
            raise S3Error("BadRequest", "Insufficient information. A CORS preflight names a bucket.", 400)
        headers = s3_cors.preflight(self.blobs.bucket_config(bucket, "cors"), request.headers)
        return Response(headers=headers)

    def _encryption(self, call: S3Call) -> Encryption | None:
        """How the object a write makes is to be encrypted at rest: its headers, else the bucket's default."""
        return s3_encryption.requested(call.headers, self.blobs.bucket_encryption(call.bucket),
                                       self.platform.lake_keys.resolve)

    # --- service and buckets --------------------------------------------------------------------------
    def list_buckets(self, call: S3Call) -> Response:
        prefix = call.query.get("prefix", "")
        buckets = [b for b in self.blobs.list_buckets() if b.name.startswith(prefix)]
        return _xml(s3_xml.list_buckets(buckets, call.request.account_id))

    def create_bucket(self, call: S3Call) -> Response:
        try:
            self.blobs.create_bucket(call.bucket)  # CreateBucketConfiguration is ignored: the lake has no regions
        except S3Error as exc:
            # In us-east-1, S3 answers 200 to the owner re-creating a bucket (a legacy rule clients rely on: the
            # SageMaker SDK's default_bucket() races itself when several sessions start at once).
            if exc.code != "BucketAlreadyOwnedByYou" or call.request.region != "us-east-1":
                raise
        return Response(headers=[("Location", f"/{call.bucket}")])

    def delete_bucket(self, call: S3Call) -> Response:
        stale = self.uploads.uploads(call.bucket)
        self.blobs.delete_bucket(call.bucket)
        self.platform.bucket_policies.delete(call.bucket)
        for upload in stale:
            self.uploads.abort(upload.upload_id, upload.bucket, upload.key)
        return Response(status=204)

    def head_bucket(self, call: S3Call) -> Response:
        self.blobs.head_bucket(call.bucket)
        return Response(headers=[("x-amz-bucket-region", call.request.region)])

    # --- bucket policies: the resource policy the enforcer evaluates for the bucket's calls ---------------
    def put_bucket_policy(self, call: S3Call) -> Response:
        self.blobs.head_bucket(call.bucket)
        body = read_payload(call.headers, call.request.body).data
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise S3Error("MalformedPolicy", "Policies must be valid JSON text in UTF-8.", 400) from None
        self.platform.bucket_policies.put(call.bucket, text)
        return Response(status=204)

    def get_bucket_policy(self, call: S3Call) -> Response:
        self.blobs.head_bucket(call.bucket)
        return Response(body=self.platform.bucket_policies.text(call.bucket).encode(),
                        content_type="application/json")

    def delete_bucket_policy(self, call: S3Call) -> Response:
        self.blobs.head_bucket(call.bucket)
        self.platform.bucket_policies.delete(call.bucket)
        return Response(status=204)

    def get_bucket_location(self, call: S3Call) -> Response:
        self.blobs.head_bucket(call.bucket)
        region = call.request.region
        return _xml(s3_xml.location("" if region == "us-east-1" else region))

    def list_objects(self, call: S3Call) -> Response:
        query = call.query
        version = query.get("list-type", "1")
        if version not in ("1", "2"):
            raise S3Error("InvalidArgument", f"Invalid list-type {version!r}: expected 2.", 400,
                          ArgumentName="list-type", ArgumentValue=version)
        encoding = query.get("encoding-type")
        if encoding not in (None, "url"):
            raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", 400,
                          ArgumentName="encoding-type", ArgumentValue=encoding)
        listing = s3_xml.ListingRequest(call.bucket, query.get("prefix", ""), query.get("delimiter", ""),
                                        _int_param(query, "max-keys", MAX_KEYS, high=MAX_KEYS), encoding == "url")
        token = query.get("continuation-token") if version == "2" else None
        start_after = query.get("start-after") if version == "2" else None
        if version == "1":
            marker = query.get("marker", "")
        else:
            marker = _continuation_marker(token) if token is not None else start_after or ""
        page = list_page(self.blobs.list(call.bucket, listing.prefix), prefix=listing.prefix,
                         delimiter=listing.delimiter, marker=marker, max_keys=listing.max_keys)
        if version == "1":
            return _xml(s3_xml.list_objects_v1(listing, page, marker=marker))
        next_token = _continuation_token(page.next_marker) if page.next_marker else None
        return _xml(s3_xml.list_objects_v2(listing, page, continuation_token=token, next_token=next_token,
                                           start_after=start_after))

    def delete_objects(self, call: S3Call) -> Response:
        keys, quiet = s3_xml.parse_delete(read_payload(call.headers, call.request.body).data)
        self.blobs.head_bucket(call.bucket)
        deleted, failures = [], []
        may = call.request.may
        for key, version in keys:
            action = "s3:DeleteObject" if version is None else "s3:DeleteObjectVersion"
            if may is not None and not may(action, f"arn:aws:s3:::{call.bucket}/{key}"):
                failures.append(s3_xml.DeleteFailure(key, "AccessDenied", "Access Denied", version))
                continue
            try:
                outcome = self.blobs.delete(call.bucket, key, version)
            except S3Error as error:
                failures.append(s3_xml.DeleteFailure(key, error.code, error.message, version))
            else:
                marker = outcome.version_id if outcome.delete_marker else None
                deleted.append(s3_xml.Deleted(key, version, outcome.delete_marker, marker))
        return _xml(s3_xml.delete_result([] if quiet else deleted, failures))

    # --- objects --------------------------------------------------------------------------------------
    def put_object(self, call: S3Call) -> Response:
        if call.form is not None:
            return self._post_object(call, call.form)
        payload = read_payload(call.headers, call.request.body)
        if call.headers.get("if-none-match", "").strip() == "*" and self._exists(call.bucket, call.key):
            raise _precondition_failed("If-None-Match")
        tags = s3_tagging.from_header(call.headers.get(s3_tagging.HEADER, ""))
        info = self.blobs.put(call.bucket, call.key, [payload.data], content_type=call.headers.get("content-type"),
                              metadata=user_metadata(call.headers), encryption=self._encryption(call), tags=tags,
                              storage_class=storage_class(call.headers))
        return Response(headers=[("ETag", s3_xml.quote_etag(info.etag)), *payload.checksums.items(),
                                 *s3_encryption.response_headers(info.encryption), *s3_versioning.headers_of(info)])

    def _post_object(self, call: S3Call, form: post_form.PostForm) -> Response:
        """A browser upload: the policy's conditions hold the fields, which say what PutObject's headers say."""
        fields = form.fields
        if "policy" in fields:  # always, unless auth is off
            post_form.PostPolicy.decode(fields["policy"]).check(form, call.bucket, dt.datetime.now(dt.UTC))
        encryption = s3_encryption.requested(fields, self.blobs.bucket_encryption(call.bucket),
                                             self.platform.lake_keys.resolve)
        info = self.blobs.put(call.bucket, call.key, [form.file],
                              content_type=fields.get("content-type") or form.file_content_type,
                              metadata=user_metadata(fields), encryption=encryption,
                              storage_class=storage_class(fields))
        location = f"http://{call.headers.get('host', 'localhost')}/{call.bucket}/{quote(call.key)}"
        headers = [("ETag", s3_xml.quote_etag(info.etag)), ("Location", location),
                   *s3_encryption.response_headers(info.encryption), *s3_versioning.headers_of(info)]
        status = fields.get("success_action_status", "204")
        if status == "201":
            return Response(status=201, body=s3_xml.post_response(location, call.bucket, info),
                            content_type=s3_xml.CONTENT_TYPE, headers=headers)
        return Response(status=200 if status == "200" else 204, headers=headers)

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            self.blobs.head(bucket, key)
        except S3Error as error:
            if error.code == "NoSuchKey":
                return False
            raise
        return True

    def copy_object(self, call: S3Call) -> Response:
        src_bucket, src_key = copy_source(call.headers["x-amz-copy-source"])
        directive = call.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise S3Error("InvalidArgument", f"Unknown metadata directive {directive!r}: expected COPY or REPLACE.",
                          400, ArgumentName="x-amz-metadata-directive", ArgumentValue=directive)
        tagging = call.headers.get(s3_tagging.DIRECTIVE_HEADER, "COPY").upper()
        if tagging not in ("COPY", "REPLACE"):
            raise S3Error("InvalidArgument", f"Unknown tagging directive {tagging!r}: expected COPY or REPLACE.",
                          400, ArgumentName=s3_tagging.DIRECTIVE_HEADER, ArgumentValue=tagging)
        src_version = s3_versioning.copy_source_version(call.headers["x-amz-copy-source"])
        source = readable(self._copy_source(src_bucket, src_key, src_version))
        if not check_preconditions(call.headers, source, prefix="x-amz-copy-source-"):
            raise _precondition_failed("x-amz-copy-source-If-None-Match")
        tags = (s3_tagging.from_header(call.headers.get(s3_tagging.HEADER, "")) if tagging == "REPLACE"
                else source.tags)
        target_class = storage_class(call.headers)  # a copy is STANDARD unless it asks, as on S3
        if ((src_bucket, src_key) == (call.bucket, call.key) and directive == "COPY" and src_version is None
                and s3_encryption.ALGORITHM_HEADER not in call.headers  # re-encrypting in place is a change
                and STORAGE_CLASS_HEADER not in call.headers):  # and so is a new storage class
            raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object "
                          "to itself without changing the object's metadata, storage class, website redirect "
                          "location or encryption attributes.", 400)
        if directive == "REPLACE":
            content_type, metadata = call.headers.get("content-type"), user_metadata(call.headers)
        else:
            content_type, metadata = source.content_type, source.metadata
        info = self.blobs.put(call.bucket, call.key, self.blobs.read(src_bucket, src_key, version_id=src_version),
                              content_type=content_type, metadata=metadata, encryption=self._encryption(call),
                              tags=tags, storage_class=target_class)
        copied = [] if source.version_id is None else [("x-amz-copy-source-version-id", source.version_id)]
        return _xml(s3_xml.copy_object_result(info), [*s3_encryption.response_headers(info.encryption), *copied,
                                                      *s3_versioning.headers_of(info)])

    def _copy_source(self, bucket: str, key: str, version: str | None) -> ObjectInfo:
        try:
            return self.blobs.head(bucket, key, version)
        except S3Error as error:
            if error.code == "MethodNotAllowed":  # a delete marker named by its version id
                raise S3Error("InvalidRequest", "The source of a copy request may not specifically refer to a "
                              "delete marker by version id.", 400) from None
            raise

    def head_object(self, call: S3Call) -> Response:
        info = self.blobs.head(call.bucket, call.key, s3_versioning.version_id(call))
        if not check_preconditions(call.headers, info):
            return Response(status=304, headers=object_headers(info)[:2])
        span = byte_range(call.headers.get("range"), info.size)
        headers = object_headers(info)
        if span is None:
            return Response(headers=[*headers, ("Content-Length", str(info.size))])
        start, end = span
        return Response(status=206, headers=[*headers, ("Content-Length", str(end - start + 1)),
                                             ("Content-Range", f"bytes {start}-{end}/{info.size}")])

    def get_object(self, call: S3Call) -> Response:
        if "partNumber" in call.query:
            raise UnknownOperation("sagelab's S3 does not implement GetObject with partNumber.")
        version = s3_versioning.version_id(call)
        info = readable(self.blobs.head(call.bucket, call.key, version))
        if not check_preconditions(call.headers, info):
            return Response(status=304, headers=object_headers(info)[:2])
        overrides = {header: _header_value(param, call.query[param])
                     for param, header in RESPONSE_OVERRIDES.items() if param in call.query}
        headers = [(k, v) for k, v in object_headers(info) if k not in overrides] + list(overrides.items())
        span = byte_range(call.headers.get("range"), info.size)
        if span is None:
            return Response(body=self.blobs.read(call.bucket, call.key, version_id=version),
                            headers=[*headers, ("Content-Length", str(info.size))])
        start, end = span
        return Response(status=206, body=self.blobs.read(call.bucket, call.key, start, end, version),
                        headers=[*headers, ("Content-Length", str(end - start + 1)),
                                 ("Content-Range", f"bytes {start}-{end}/{info.size}")])

    def restore_object(self, call: S3Call) -> Response:
        """Restore an archived object's copy for `Days`: at once (S3 takes hours), 202 the first time and 200
        when a restored copy's life is extended."""
        days = s3_xml.parse_restore(read_payload(call.headers, call.request.body).data)
        version = s3_versioning.version_id(call)
        info = self.blobs.head(call.bucket, call.key, version)
        if info.storage_class not in ARCHIVE_CLASSES:
            raise S3Error("InvalidObjectState", "Restore is not allowed for the object's current storage class",
                          403, StorageClass=info.storage_class)
        already = info.restored_until is not None and time.time() < info.restored_until
        self.blobs.set_restored_until(call.bucket, call.key, time.time() + days * 86400, version)
        return Response(status=200 if already else 202)

    def delete_object(self, call: S3Call) -> Response:
        outcome = self.blobs.delete(call.bucket, call.key, s3_versioning.version_id(call))
        return Response(status=204, headers=s3_versioning.delete_headers(outcome))

    # --- multipart uploads ----------------------------------------------------------------------------
    def create_multipart_upload(self, call: S3Call) -> Response:
        encryption = self._encryption(call)
        upload = self.uploads.create(call.bucket, call.key, content_type=call.headers.get("content-type"),
                                     metadata=user_metadata(call.headers), encryption=encryption,
                                     tags=s3_tagging.from_header(call.headers.get(s3_tagging.HEADER, "")),
                                     storage_class=storage_class(call.headers))
        echo = [(h, call.headers[h]) for h in ("x-amz-checksum-algorithm", "x-amz-checksum-type") if h in call.headers]
        echo += s3_encryption.planned_headers(encryption)
        return _xml(s3_xml.initiate_multipart_upload(upload), echo)

    def upload_part(self, call: S3Call) -> Response:
        number = _int_param(call.query, "partNumber", 0)
        upload_id = call.query["uploadId"]
        payload = read_payload(call.headers, call.request.body)
        part = self.uploads.put_part(upload_id, call.bucket, call.key, number, [payload.data])
        upload = self.uploads.get(upload_id, call.bucket, call.key)
        return Response(headers=[("ETag", s3_xml.quote_etag(part.etag)), *payload.checksums.items(),
                                 *s3_encryption.planned_headers(upload.object_encryption)])

    def upload_part_copy(self, call: S3Call) -> Response:
        number = _int_param(call.query, "partNumber", 0)
        upload_id = call.query["uploadId"]
        src_bucket, src_key = copy_source(call.headers["x-amz-copy-source"])
        self.uploads.get(upload_id, call.bucket, call.key)
        src_version = s3_versioning.copy_source_version(call.headers["x-amz-copy-source"])
        source = readable(self._copy_source(src_bucket, src_key, src_version))
        if not check_preconditions(call.headers, source, prefix="x-amz-copy-source-"):
            raise _precondition_failed("x-amz-copy-source-If-None-Match")
        span = byte_range(call.headers.get("x-amz-copy-source-range"), source.size)
        chunks = self.blobs.read(src_bucket, src_key, *(span or (0, None)), version_id=src_version)
        part = self.uploads.put_part(upload_id, call.bucket, call.key, number, chunks)
        copied = [] if source.version_id is None else [("x-amz-copy-source-version-id", source.version_id)]
        return _xml(s3_xml.copy_part_result(part), copied)

    def complete_multipart_upload(self, call: S3Call) -> Response:
        # Any x-amz-checksum-* header here describes the whole object, not this XML body: not checked.
        chosen = s3_xml.parse_complete(call.request.body)
        info = self.uploads.complete(call.query["uploadId"], call.bucket, call.key, chosen)
        host = call.headers.get("host", "localhost")
        return _xml(s3_xml.complete_multipart_upload(f"http://{host}/{call.bucket}/{call.key}", call.bucket, info),
                    [*s3_encryption.response_headers(info.encryption), *s3_versioning.headers_of(info)])

    def abort_multipart_upload(self, call: S3Call) -> Response:
        self.uploads.abort(call.query["uploadId"], call.bucket, call.key)
        return Response(status=204)

    def list_parts(self, call: S3Call) -> Response:
        upload = self.uploads.get(call.query["uploadId"], call.bucket, call.key)
        return _xml(s3_xml.list_parts(upload, self.uploads.parts(upload),
                                      marker=_int_param(call.query, "part-number-marker", 0),
                                      max_parts=_int_param(call.query, "max-parts", 1000, high=1000),
                                      owner_id=call.request.account_id))

    def list_multipart_uploads(self, call: S3Call) -> Response:
        return _xml(s3_xml.list_multipart_uploads(call.bucket, self.uploads.uploads(call.bucket),
                                                  call.request.account_id))

    # --- default encryption -------------------------------------------------------------------------
    def put_bucket_encryption(self, call: S3Call) -> Response:
        self.blobs.head_bucket(call.bucket)
        rule = s3_encryption.parse_configuration(read_payload(call.headers, call.request.body).data,
                                                 self.platform.lake_keys.resolve)
        self.blobs.set_bucket_encryption(call.bucket, rule)
        return Response()

    def get_bucket_encryption(self, call: S3Call) -> Response:
        rule = self.blobs.bucket_encryption(call.bucket)
        if rule is None:
            raise s3_encryption.no_configuration(call.bucket)
        return _xml(s3_encryption.render_configuration(rule))

    def delete_bucket_encryption(self, call: S3Call) -> Response:
        self.blobs.set_bucket_encryption(call.bucket, None)
        return Response(status=204)

    # --- tagging: an object's tag set lives in its metadata, a bucket's with the bucket ----------------
    def put_object_tagging(self, call: S3Call) -> Response:
        tags = s3_tagging.parse(read_payload(call.headers, call.request.body).data, bucket=False)
        info = self.blobs.set_tags(call.bucket, call.key, tags, s3_versioning.version_id(call))
        return Response(headers=s3_versioning.headers_of(info))

    def get_object_tagging(self, call: S3Call) -> Response:
        info = self.blobs.head(call.bucket, call.key, s3_versioning.version_id(call))
        return _xml(s3_tagging.render(info.tags), s3_versioning.headers_of(info))

    def delete_object_tagging(self, call: S3Call) -> Response:
        info = self.blobs.set_tags(call.bucket, call.key, {}, s3_versioning.version_id(call))
        return Response(status=204, headers=s3_versioning.headers_of(info))

    def put_bucket_tagging(self, call: S3Call) -> Response:
        self.blobs.head_bucket(call.bucket)
        tags = s3_tagging.parse(read_payload(call.headers, call.request.body).data, bucket=True)
        self.blobs.set_bucket_config(call.bucket, "tags", tags)
        return Response(status=204)

    def get_bucket_tagging(self, call: S3Call) -> Response:
        tags = self.blobs.bucket_config(call.bucket, "tags")
        if not tags:
            raise s3_tagging.no_tag_set(call.bucket)
        return _xml(s3_tagging.render(tags))

    def delete_bucket_tagging(self, call: S3Call) -> Response:
        self.blobs.set_bucket_config(call.bucket, "tags", None)
        return Response(status=204)

    # --- CORS: the rules a browser's cross-origin requests are answered by ---------------------------
    def put_bucket_cors(self, call: S3Call) -> Response:
        self.blobs.head_bucket(call.bucket)
        rules = s3_cors.parse_configuration(read_payload(call.headers, call.request.body).data)
        self.blobs.set_bucket_config(call.bucket, "cors", rules)
        return Response()

    def get_bucket_cors(self, call: S3Call) -> Response:
        rules = self.blobs.bucket_config(call.bucket, "cors")
        if not rules:
            raise s3_cors.no_configuration(call.bucket)
        return _xml(s3_cors.render_configuration(rules))

    def delete_bucket_cors(self, call: S3Call) -> Response:
        self.blobs.set_bucket_config(call.bucket, "cors", None)
        return Response(status=204)

    # --- the operation table ------------------------------------------------------------------------
    # Object operations are CloudTrail data events; their IAM actions are not always their names.
    operations = OperationTable("s3", S3, (
        S3.op("ListBuckets", list_buckets, action="ListAllMyBuckets", read_only=True),
        S3.op("CreateBucket", create_bucket, "{Bucket}"),
        S3.op("DeleteBucket", delete_bucket, "{Bucket}"),
        # Bucket-level calls, yet CloudTrail logs these three as data events (on the bucket's objects).
        S3.op("HeadBucket", head_bucket, "{Bucket}", action="ListBucket", audit=Audit.DATA, read_only=True),
        S3.op("ListObjects", list_objects, "{Bucket}", action="ListBucket", audit=Audit.DATA, read_only=True),
        S3.op("ListObjectsV2", list_objects, "{Bucket}", action="ListBucket", audit=Audit.DATA,
              read_only=True),
        S3.op("GetBucketLocation", get_bucket_location, "{Bucket}", read_only=True),
        S3.op("PutBucketPolicy", put_bucket_policy, "{Bucket}"),
        S3.op("GetBucketPolicy", get_bucket_policy, "{Bucket}", read_only=True),
        S3.op("DeleteBucketPolicy", delete_bucket_policy, "{Bucket}"),
        S3.op("ListMultipartUploads", list_multipart_uploads, "{Bucket}", action="ListBucketMultipartUploads",
              read_only=True),
        S3.op("PutBucketEncryption", put_bucket_encryption, "{Bucket}", action="PutEncryptionConfiguration"),
        S3.op("GetBucketEncryption", get_bucket_encryption, "{Bucket}", action="GetEncryptionConfiguration",
              read_only=True),
        S3.op("DeleteBucketEncryption", delete_bucket_encryption, "{Bucket}", action="PutEncryptionConfiguration"),
        S3.op("PutBucketTagging", put_bucket_tagging, "{Bucket}"),
        S3.op("GetBucketTagging", get_bucket_tagging, "{Bucket}", read_only=True),
        S3.op("DeleteBucketTagging", delete_bucket_tagging, "{Bucket}", action="PutBucketTagging"),
        S3.op("PutBucketCors", put_bucket_cors, "{Bucket}", action="PutBucketCORS"),
        S3.op("GetBucketCors", get_bucket_cors, "{Bucket}", action="GetBucketCORS", read_only=True),
        S3.op("DeleteBucketCors", delete_bucket_cors, "{Bucket}", action="PutBucketCORS"),
        S3.op("PutBucketVersioning", s3_versioning.put_bucket_versioning, "{Bucket}"),
        S3.op("GetBucketVersioning", s3_versioning.get_bucket_versioning, "{Bucket}", read_only=True),
        S3.op("ListObjectVersions", s3_versioning.list_object_versions, "{Bucket}", action="ListBucketVersions",
              audit=Audit.DATA, read_only=True),
        S3.op("PutBucketLifecycleConfiguration", s3_lifecycle.put_configuration, "{Bucket}",
              action="PutLifecycleConfiguration"),
        S3.op("GetBucketLifecycleConfiguration", s3_lifecycle.get_configuration, "{Bucket}",
              action="GetLifecycleConfiguration", read_only=True),
        S3.op("DeleteBucketLifecycle", s3_lifecycle.delete_configuration, "{Bucket}",
              action="PutLifecycleConfiguration"),
        # One s3:DeleteObject per key in the body, each on {Bucket}/<key>: only the handler reads the body,
        # so it authorizes each key, and reports refused ones in the answer's Errors as S3 does.
        S3.op("DeleteObjects", delete_objects, "{Bucket}", action="DeleteObject", audit=Audit.DATA,
              per_item=True),
        S3.op("PutObject", put_object, OBJECT_ARN, audit=Audit.DATA, also=[TAG_OBJECT]),
        S3.op("CopyObject", copy_object, OBJECT_ARN, action="PutObject", audit=Audit.DATA,
              also=[READ_SOURCE, TAG_OBJECT]),
        S3.op("GetObject", get_object, OBJECT_ARN, audit=Audit.DATA, read_only=True,
              also=[_of_version("s3:GetObjectVersion")]),
        S3.op("HeadObject", head_object, OBJECT_ARN, action="GetObject", audit=Audit.DATA, read_only=True,
              also=[_of_version("s3:GetObjectVersion")]),
        S3.op("DeleteObject", delete_object, OBJECT_ARN, audit=Audit.DATA,
              also=[_of_version("s3:DeleteObjectVersion")]),
        S3.op("RestoreObject", restore_object, OBJECT_ARN, audit=Audit.DATA),
        S3.op("PutObjectTagging", put_object_tagging, OBJECT_ARN, audit=Audit.DATA,
              also=[_of_version("s3:PutObjectVersionTagging")]),
        S3.op("GetObjectTagging", get_object_tagging, OBJECT_ARN, audit=Audit.DATA, read_only=True,
              also=[_of_version("s3:GetObjectVersionTagging")]),
        S3.op("DeleteObjectTagging", delete_object_tagging, OBJECT_ARN, audit=Audit.DATA,
              also=[_of_version("s3:DeleteObjectVersionTagging")]),
        # Every step of a multipart upload is authorized as writing the object it builds.
        S3.op("CreateMultipartUpload", create_multipart_upload, OBJECT_ARN, action="PutObject",
              audit=Audit.DATA, also=[TAG_OBJECT]),
        S3.op("UploadPart", upload_part, OBJECT_ARN, action="PutObject", audit=Audit.DATA),
        S3.op("UploadPartCopy", upload_part_copy, OBJECT_ARN, action="PutObject", audit=Audit.DATA,
              also=[READ_SOURCE]),
        S3.op("CompleteMultipartUpload", complete_multipart_upload, OBJECT_ARN, action="PutObject",
              audit=Audit.DATA),
        S3.op("AbortMultipartUpload", abort_multipart_upload, OBJECT_ARN, audit=Audit.DATA),
        S3.op("ListParts", list_parts, OBJECT_ARN, action="ListMultipartUploadParts", audit=Audit.DATA,
              read_only=True),
    ))
