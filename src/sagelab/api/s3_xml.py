"""The XML documents of the S3 REST API: responses rendered, request bodies (Delete, Complete) parsed.

Element names and order follow botocore's S3 model. Text is escaped with `xml.sax.saxutils.escape`; for
listings asked with `encoding-type=url`, names are URL-encoded first, exactly the fields botocore decodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from urllib.parse import quote_plus
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from sagelab.api.http import iso8601
from sagelab.errors import S3Error
from sagelab.lake.blobs import BucketInfo, ObjectInfo
from sagelab.lake.listing import ListingPage
from sagelab.lake.multipart import Part, Upload

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
CONTENT_TYPE = "application/xml"


def _el(name: str, value: object) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def _opt(name: str, value: object) -> str:
    """An element only when there is a value to put in it."""
    return "" if value is None or value == "" else _el(name, value)


def _doc(root: str, *inner: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NAMESPACE}">{"".join(inner)}</{root}>'.encode()


def quote_etag(etag: str) -> str:
    return f'"{etag}"'


def _owner(owner_id: str) -> str:
    return f"<Owner>{_el('ID', owner_id)}{_el('DisplayName', owner_id)}</Owner>"


def _url_encoder(enabled: bool) -> Callable[[str], str]:
    return (lambda s: quote_plus(s, safe="/")) if enabled else (lambda s: s)


#: The builders for the documents other S3 modules render (versions, lifecycle).
element, optional, url_encoder, document = _el, _opt, _url_encoder, _doc


# --- buckets ---------------------------------------------------------------------------------------
def list_buckets(buckets: Iterable[BucketInfo], owner_id: str) -> bytes:
    items = "".join(f"<Bucket>{_el('Name', b.name)}{_el('CreationDate', iso8601(b.created))}</Bucket>"
                    for b in buckets)
    return _doc("ListAllMyBucketsResult", _owner(owner_id), f"<Buckets>{items}</Buckets>")


def location(region: str) -> bytes:
    return _doc("LocationConstraint", escape(region))


# --- listings --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ListingRequest:
    bucket: str
    prefix: str
    delimiter: str
    max_keys: int
    url_encode: bool


def _listing_body(page: ListingPage, encode: Callable[[str], str]) -> str:
    contents = "".join(
        f"<Contents>{_el('Key', encode(o.key))}{_el('LastModified', iso8601(o.last_modified))}"
        f"{_el('ETag', quote_etag(o.etag))}{_el('Size', o.size)}{_el('StorageClass', o.storage_class)}</Contents>"
        for o in page.objects)
    prefixes = "".join(f"<CommonPrefixes>{_el('Prefix', encode(p))}</CommonPrefixes>" for p in page.prefixes)
    return contents + prefixes


def list_objects_v2(req: ListingRequest, page: ListingPage, *, continuation_token: str | None,
                    next_token: str | None, start_after: str | None) -> bytes:
    encode = _url_encoder(req.url_encode)
    return _doc(
        "ListBucketResult", _el("Name", req.bucket), _el("Prefix", encode(req.prefix)),
        _opt("Delimiter", encode(req.delimiter)), _el("MaxKeys", req.max_keys),
        _opt("EncodingType", "url" if req.url_encode else None),
        _el("KeyCount", len(page.objects) + len(page.prefixes)), _el("IsTruncated", page.is_truncated),
        _opt("ContinuationToken", continuation_token), _opt("NextContinuationToken", next_token),
        _opt("StartAfter", encode(start_after) if start_after else None), _listing_body(page, encode))


def list_objects_v1(req: ListingRequest, page: ListingPage, *, marker: str) -> bytes:
    # botocore decodes Delimiter, Marker, NextMarker and keys but not Prefix in v1 listings: so do we encode.
    encode = _url_encoder(req.url_encode)
    next_marker = encode(page.next_marker) if page.next_marker else None
    return _doc(
        "ListBucketResult", _el("Name", req.bucket), _el("Prefix", req.prefix), _el("Marker", encode(marker)),
        _opt("NextMarker", next_marker), _el("MaxKeys", req.max_keys), _opt("Delimiter", encode(req.delimiter)),
        _opt("EncodingType", "url" if req.url_encode else None), _el("IsTruncated", page.is_truncated),
        _listing_body(page, encode))


# --- objects ---------------------------------------------------------------------------------------
def copy_object_result(info: ObjectInfo) -> bytes:
    return _doc("CopyObjectResult", _el("ETag", quote_etag(info.etag)),
                _el("LastModified", iso8601(info.last_modified)))


def post_response(location_url: str, bucket: str, info: ObjectInfo) -> bytes:
    """A browser upload's answer when its form asks for success_action_status 201."""
    return _doc("PostResponse", _el("Location", location_url), _el("Bucket", bucket), _el("Key", info.key),
                _el("ETag", quote_etag(info.etag)))


@dataclasses.dataclass(frozen=True)
class DeleteFailure:
    key: str
    code: str
    message: str
    version_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Deleted:
    """One object a DeleteObjects call deleted: the version it named, or the delete marker it wrote."""

    key: str
    version_id: str | None = None
    delete_marker: bool = False
    marker_version_id: str | None = None


def delete_result(deleted: Iterable[Deleted], failures: Iterable[DeleteFailure]) -> bytes:
    done = "".join(f"<Deleted>{_el('Key', d.key)}{_opt('VersionId', d.version_id)}"
                   f"{_el('DeleteMarker', True) if d.delete_marker else ''}"
                   f"{_opt('DeleteMarkerVersionId', d.marker_version_id)}</Deleted>" for d in deleted)
    failed = "".join(f"<Error>{_el('Key', f.key)}{_opt('VersionId', f.version_id)}{_el('Code', f.code)}"
                     f"{_el('Message', f.message)}</Error>" for f in failures)
    return _doc("DeleteResult", done, failed)


# --- multipart -------------------------------------------------------------------------------------
def initiate_multipart_upload(upload: Upload) -> bytes:
    return _doc("InitiateMultipartUploadResult", _el("Bucket", upload.bucket), _el("Key", upload.key),
                _el("UploadId", upload.upload_id))


def copy_part_result(part: Part) -> bytes:
    return _doc("CopyPartResult", _el("ETag", quote_etag(part.etag)), _el("LastModified", iso8601(part.last_modified)))


def complete_multipart_upload(location_url: str, bucket: str, info: ObjectInfo) -> bytes:
    return _doc("CompleteMultipartUploadResult", _el("Location", location_url), _el("Bucket", bucket),
                _el("Key", info.key), _el("ETag", quote_etag(info.etag)))


def list_parts(upload: Upload, parts: list[Part], *, marker: int, max_parts: int, owner_id: str) -> bytes:
    shown = [p for p in parts if p.number > marker]
    truncated = len(shown) > max_parts
    shown = shown[:max_parts]
    items = "".join(f"<Part>{_el('PartNumber', p.number)}{_el('LastModified', iso8601(p.last_modified))}"
                    f"{_el('ETag', quote_etag(p.etag))}{_el('Size', p.size)}</Part>" for p in shown)
    return _doc("ListPartsResult", _el("Bucket", upload.bucket), _el("Key", upload.key),
                _el("UploadId", upload.upload_id), _el("PartNumberMarker", marker),
                _opt("NextPartNumberMarker", shown[-1].number if truncated else None), _el("MaxParts", max_parts),
                _el("IsTruncated", truncated), f"<Initiator>{_el('ID', owner_id)}{_el('DisplayName', owner_id)}"
                "</Initiator>", _owner(owner_id), _el("StorageClass", upload.storage_class), items)


def list_multipart_uploads(bucket: str, uploads: list[Upload], owner_id: str) -> bytes:
    items = "".join(f"<Upload>{_el('Key', u.key)}{_el('UploadId', u.upload_id)}"
                    f"<Initiator>{_el('ID', owner_id)}{_el('DisplayName', owner_id)}</Initiator>{_owner(owner_id)}"
                    f"{_el('StorageClass', u.storage_class)}{_el('Initiated', iso8601(u.initiated))}</Upload>"
                    for u in uploads)
    return _doc("ListMultipartUploadsResult", _el("Bucket", bucket), "<KeyMarker></KeyMarker>",
                "<UploadIdMarker></UploadIdMarker>", _el("MaxUploads", max(1000, len(uploads))),
                _el("IsTruncated", False), items)


# --- request bodies --------------------------------------------------------------------------------
def malformed(why: str) -> S3Error:
    return S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                   f"published schema: {why}.", 400)


def read_document(body: bytes) -> ElementTree.Element:
    """A request body's XML with the S3 namespace taken off every tag (clients send it or not)."""
    try:
        element = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise malformed(str(exc)) from None
    for node in element.iter():
        node.tag = node.tag.rsplit("}", 1)[-1]
    return element


def _parse(body: bytes, root: str) -> ElementTree.Element:
    element = read_document(body)
    if element.tag != root:
        raise malformed(f"expected a <{root}> document, got <{element.tag}>")
    return element


def parse_delete(body: bytes, *, max_objects: int = 1000) -> tuple[list[tuple[str, str | None]], bool]:
    """A DeleteObjects body -> ([(key, version id or None)], quiet)."""
    root = _parse(body, "Delete")
    keys = []
    for obj in root.findall("Object"):
        key = obj.findtext("Key")
        if key is None:
            raise malformed("every <Object> needs a <Key>")
        keys.append((key, obj.findtext("VersionId")))
    if not keys or len(keys) > max_objects:
        raise malformed(f"a Delete request names 1 to {max_objects} objects, got {len(keys)}")
    return keys, (root.findtext("Quiet") or "").strip().lower() == "true"


def parse_complete(body: bytes) -> list[tuple[int, str]]:
    """A CompleteMultipartUpload body -> [(part number, ETag)] in the order given."""
    parts = []
    for part in _parse(body, "CompleteMultipartUpload").findall("Part"):
        number, etag = part.findtext("PartNumber"), part.findtext("ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise malformed("every <Part> needs a numeric <PartNumber> and an <ETag>")
        parts.append((int(number), etag))
    return parts


def parse_restore(body: bytes) -> int:
    """A RestoreObject body -> the days the restored copy lives (S3 Select restores are not answered)."""
    root = _parse(body, "RestoreRequest")
    if (root.findtext("Type") or "").strip() == "SELECT" or root.find("SelectParameters") is not None:
        raise S3Error("NotImplemented", "sagelab's S3 does not implement RestoreObject of Type SELECT.", 501)
    days = (root.findtext("Days") or "").strip()
    if not days.isdigit() or int(days) < 1:
        raise malformed(f"a RestoreRequest names a whole number of Days of at least 1, got {days or None!r}")
    tier = (root.findtext("GlacierJobParameters/Tier") or "Standard").strip()
    if tier not in ("Standard", "Bulk", "Expedited"):
        raise malformed(f"GlacierJobParameters Tier is Standard, Bulk or Expedited, got {tier!r}")
    return int(days)
