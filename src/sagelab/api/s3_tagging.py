"""S3 tagging on the wire: the `Tagging` document (Put/Get Object and Bucket Tagging), the `x-amz-tagging`
header of PutObject and CopyObject, and the limits S3 holds tag sets to.

An object holds at most 10 tags, a bucket 50; a key is 1 to 128 characters, a value up to 256, both of
letters, digits, spaces and `+ - = . _ : / @`; keys are unique and not prefixed `aws:`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from sagelab.api.s3_xml import NAMESPACE, malformed, read_document
from sagelab.errors import S3Error

HEADER = "x-amz-tagging"
DIRECTIVE_HEADER = "x-amz-tagging-directive"
COUNT_HEADER = "x-amz-tagging-count"
MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256
_ALLOWED = re.compile(r"^[\w\s+\-=.:/@]*$")


def _invalid_tag(message: str, key: str | None = None) -> S3Error:
    fields = {"TagKey": key} if key is not None else {}
    return S3Error("InvalidTag", message, 400, **fields)


def check(tags: list[tuple[str, str]], *, bucket: bool) -> dict[str, str]:
    """A tag set as sent -> the one to keep, refused as S3 refuses it."""
    limit = MAX_BUCKET_TAGS if bucket else MAX_OBJECT_TAGS
    if len(tags) > limit:
        raise S3Error("BadRequest", f"Bucket tag count cannot be greater than {limit}" if bucket
                      else f"Object tags cannot be greater than {limit}", 400)
    kept: dict[str, str] = {}
    for key, value in tags:
        if not key or not _ALLOWED.match(key):
            raise _invalid_tag("The TagKey you have provided is invalid", key)
        if len(key) > MAX_KEY:
            raise _invalid_tag(f"The TagKey you have provided is too long, max {MAX_KEY}", key)
        if not _ALLOWED.match(value):
            raise _invalid_tag("The TagValue you have provided is invalid", key)
        if len(value) > MAX_VALUE:
            raise _invalid_tag(f"The TagValue you have provided is too long, max {MAX_VALUE}", key)
        if key.lower().startswith("aws:"):
            raise _invalid_tag("System tags cannot be added/updated by requester" if bucket
                               else "Your TagKey cannot be prefixed with aws:", key)
        if key in kept:
            raise _invalid_tag("Cannot provide multiple Tags with the same key", key)
        kept[key] = value
    return kept


def parse(body: bytes, *, bucket: bool) -> dict[str, str]:
    """A `<Tagging><TagSet><Tag><Key/><Value/></Tag>...` body -> the tag set, checked."""
    root = read_document(body)
    tag_set = root.find("TagSet") if root.tag == "Tagging" else None
    if tag_set is None:
        raise malformed("a Tagging document holds one TagSet")
    tags = []
    for tag in tag_set.findall("Tag"):
        key, value = tag.findtext("Key"), tag.findtext("Value")
        if key is None or value is None:
            raise malformed("every Tag has a Key and a Value")
        tags.append((key, value))
    return check(tags, bucket=bucket)


def from_header(header: str) -> dict[str, str]:
    """`x-amz-tagging: k1=v1&k2=v2` (URL-encoded query form) -> the tag set, checked as an object's."""
    pairs = parse_qsl(header, keep_blank_values=True)
    if len({k for k, _ in pairs}) != len(pairs):
        raise S3Error("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded "
                      "URL query parameters without tag name duplicates.", 400, ArgumentName=HEADER,
                      ArgumentValue=header)
    return check(pairs, bucket=False)


def count_headers(tags: dict[str, str]) -> list[tuple[str, str]]:
    """GetObject and HeadObject say how many tags an object has, when it has any."""
    return [(COUNT_HEADER, str(len(tags)))] if tags else []


def render(tags: dict[str, str]) -> bytes:
    items = "".join(f"<Tag><Key>{escape(k)}</Key><Value>{escape(v)}</Value></Tag>" for k, v in tags.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Tagging xmlns="{NAMESPACE}"><TagSet>{items}</TagSet>'
            "</Tagging>").encode()


def no_tag_set(bucket: str) -> S3Error:
    return S3Error("NoSuchTagSet", "The TagSet does not exist", 404, BucketName=bucket)
