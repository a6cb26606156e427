"""S3 versioning on the wire: Put/GetBucketVersioning, ListObjectVersions, and the version headers.

The versions themselves are kept by the lake (`lake.versions`); this module parses the versioning
configuration, reads `versionId` from a request, and renders the version listing in botocore's shape.
MFA delete is refused when asked for (sagelab has no MFA devices to check a code against).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from sagelab.api import s3_xml
from sagelab.api.http import Response, iso8601
from sagelab.api.s3_context import BucketCall, LakeFace
from sagelab.api.s3_payload import read_payload
from sagelab.errors import S3Error
from sagelab.lake.blobs import ObjectInfo
from sagelab.lake.listing import VersionPage, version_page
from sagelab.lake.versions import ENABLED, SUSPENDED, DeleteOutcome, check_version_id, name_of

VERSION_HEADER = "x-amz-version-id"
MAX_KEYS = 1000


def version_id(call: BucketCall) -> str | None:
    """The `versionId` a request names, checked; None when it names none."""
    asked = call.query.get("versionId")
    return None if asked is None else check_version_id(asked)


def copy_source_version(header: str) -> str | None:
    """The `versionId` in `x-amz-copy-source` (`bucket/key?versionId=...`), checked; None without one."""
    _, _, query = header.partition("?")
    asked = parse_qs(query).get("versionId")
    return check_version_id(asked[0]) if asked else None


def headers_of(info: ObjectInfo) -> list[tuple[str, str]]:
    """`x-amz-version-id` for an object written to a versioned bucket; nothing for one never versioned."""
    return [] if info.version_id is None else [(VERSION_HEADER, info.version_id)]


def delete_headers(outcome: DeleteOutcome) -> list[tuple[str, str]]:
    headers = [("x-amz-delete-marker", "true")] if outcome.delete_marker else []
    return headers + ([(VERSION_HEADER, outcome.version_id)] if outcome.version_id else [])


# --- PutBucketVersioning / GetBucketVersioning -------------------------------------------------------
def parse_configuration(body: bytes) -> str:
    """A VersioningConfiguration body -> the status it sets."""
    root = s3_xml.read_document(body)
    if root.tag != "VersioningConfiguration":
        raise s3_xml.malformed(f"expected a <VersioningConfiguration> document, got <{root.tag}>")
    status = (root.findtext("Status") or "").strip()
    if status not in (ENABLED, SUSPENDED):
        raise s3_xml.malformed(f"VersioningConfiguration Status is Enabled or Suspended, got {status or None!r}")
    mfa = (root.findtext("MfaDelete") or "Disabled").strip()
    if mfa == "Enabled":
        raise S3Error("InvalidRequest", "sagelab has no MFA devices: MfaDelete cannot be Enabled (send Disabled "
                      "or leave MfaDelete out).", 400, ArgumentName="MfaDelete", ArgumentValue=mfa)
    if mfa != "Disabled":
        raise s3_xml.malformed(f"VersioningConfiguration MfaDelete is Enabled or Disabled, got {mfa!r}")
    return status


def put_bucket_versioning(face: LakeFace, call: BucketCall) -> Response:
    face.blobs.head_bucket(call.bucket)
    status = parse_configuration(read_payload(call.headers, call.request.body).data)
    face.blobs.set_bucket_config(call.bucket, "versioning", status)
    return Response()


def get_bucket_versioning(face: LakeFace, call: BucketCall) -> Response:
    status = face.blobs.versioning(call.bucket)
    body = "" if status is None else f"<Status>{status}</Status>"  # MfaDelete: only once it was ever enabled
    return Response(body=s3_xml.document("VersioningConfiguration", body), content_type=s3_xml.CONTENT_TYPE)


# --- ListObjectVersions ------------------------------------------------------------------------------
def list_object_versions(face: LakeFace, call: BucketCall) -> Response:
    query = call.query
    encoding = query.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", 400,
                      ArgumentName="encoding-type", ArgumentValue=encoding)
    key_marker, version_marker = query.get("key-marker", ""), query.get("version-id-marker", "")
    if version_marker and not key_marker:
        raise S3Error("InvalidArgument", "A version-id marker cannot be specified without a key marker.", 400,
                      ArgumentName="version-id-marker", ArgumentValue=version_marker)
    if version_marker:
        check_version_id(version_marker)
    raw_max = query.get("max-keys", str(MAX_KEYS))
    if not raw_max.isdigit():
        raise S3Error("InvalidArgument", f"Provided max-keys {raw_max!r} is not an integer of at least 0.", 400,
                      ArgumentName="max-keys", ArgumentValue=raw_max)
    max_keys = min(int(raw_max), MAX_KEYS)
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    page = version_page(face.blobs.list_versions(call.bucket, prefix), prefix=prefix, delimiter=delimiter,
                        key_marker=key_marker, version_id_marker=version_marker, max_keys=max_keys)
    body = render_listing(call.bucket, page, prefix=prefix, delimiter=delimiter, key_marker=key_marker,
                          version_marker=version_marker, max_keys=max_keys, url_encode=encoding == "url",
                          owner_id=call.request.account_id)
    return Response(body=body, content_type=s3_xml.CONTENT_TYPE)


def render_listing(bucket: str, page: VersionPage, *, prefix: str, delimiter: str, key_marker: str,
                   version_marker: str, max_keys: int, url_encode: bool, owner_id: str) -> bytes:
    el, opt, encode = s3_xml.element, s3_xml.optional, s3_xml.url_encoder(url_encode)
    owner = f"<Owner>{el('ID', owner_id)}{el('DisplayName', owner_id)}</Owner>"
    items = []
    for entry in page.entries:
        info = entry.info
        common = (f"{el('Key', encode(info.key))}{el('VersionId', name_of(info.version_id))}"
                  f"{el('IsLatest', entry.is_latest)}{el('LastModified', iso8601(info.last_modified))}")
        if info.delete_marker:
            items.append(f"<DeleteMarker>{owner}{common}</DeleteMarker>")
        else:
            items.append(f"<Version>{el('ETag', s3_xml.quote_etag(info.etag))}{el('Size', info.size)}"
                         f"{el('StorageClass', info.storage_class)}{common}{owner}</Version>")
    prefixes = "".join(f"<CommonPrefixes>{el('Prefix', encode(p))}</CommonPrefixes>" for p in page.prefixes)
    return s3_xml.document(
        "ListVersionsResult", el("Name", bucket), el("Prefix", encode(prefix)), el("KeyMarker", encode(key_marker)),
        el("VersionIdMarker", version_marker), opt("NextKeyMarker", encode(page.next_key_marker or "")),
        opt("NextVersionIdMarker", page.next_version_id_marker), el("MaxKeys", max_keys),
        opt("Delimiter", encode(delimiter)), opt("EncodingType", "url" if url_encode else None),
        el("IsTruncated", page.is_truncated), "".join(items), prefixes)
