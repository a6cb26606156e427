"""S3 lifecycle configurations on the wire: Put/Get/DeleteBucketLifecycleConfiguration.

The XML is read into `lake.lifecycle_rules` types (MalformedXML for what the schema refuses), validated
there (InvalidArgument with S3's messages), and kept with the bucket's facts; the lifecycle scheduler
(`lake.lifecycle`) applies it.
"""

from __future__ import annotations

import calendar
import datetime as dt
from xml.etree import ElementTree

from sagelab.api import s3_xml
from sagelab.api.http import Response, iso8601
from sagelab.api.s3_context import BucketCall, LakeFace
from sagelab.api.s3_payload import read_payload
from sagelab.errors import S3Error
from sagelab.lake.lifecycle import LIFECYCLE
from sagelab.lake.lifecycle_rules import (
    DEFAULT_MIN_SIZE,
    TRANSITION_CLASSES,
    LifecycleConfiguration,
    LifecycleRule,
    NoncurrentTransition,
    Transition,
    invalid,
)

MIN_SIZE_HEADER = "x-amz-transition-default-minimum-object-size"


def no_configuration(bucket: str) -> S3Error:
    return S3Error("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist", 404,
                   BucketName=bucket)


# --- reading the XML -----------------------------------------------------------------------------------
def _text(node: ElementTree.Element, name: str) -> str | None:
    found = node.find(name)
    return None if found is None else (found.text or "").strip()


def _int(node: ElementTree.Element, name: str, where: str) -> int | None:
    raw = _text(node, name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise s3_xml.malformed(f"{where} {name} is an integer, got {raw!r}") from None


def _date(node: ElementTree.Element, where: str) -> float | None:
    raw = _text(node, "Date")
    if raw is None:
        return None
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise s3_xml.malformed(f"{where} Date is an ISO 8601 date, got {raw!r}") from None
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    when = when.astimezone(dt.UTC)
    if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
        raise invalid("'Date' must be at midnight GMT")
    return float(calendar.timegm(when.timetuple()))


def _storage_class(node: ElementTree.Element, where: str) -> str:
    asked = _text(node, "StorageClass")
    if asked not in TRANSITION_CLASSES:
        raise s3_xml.malformed(f"{where} StorageClass is one of {', '.join(TRANSITION_CLASSES)}, got {asked!r}")
    return asked  # type: ignore[return-value]


def _tag(node: ElementTree.Element) -> tuple[str, str]:
    key, value = _text(node, "Key"), _text(node, "Value")
    if key is None or value is None:
        raise s3_xml.malformed("every lifecycle filter Tag has a Key and a Value")
    return key, value


def _filter(rule: ElementTree.Element) -> dict:
    legacy = _text(rule, "Prefix")
    found = rule.find("Filter")
    if found is None:
        if legacy is None:
            raise s3_xml.malformed("a lifecycle Rule has a Filter (or the older Prefix)")
        return {"filter_form": "legacy", "prefix": legacy}
    if legacy is not None:
        raise s3_xml.malformed("a lifecycle Rule has a Filter or a Prefix, not both")
    children = list(found)
    if len(children) > 1:
        raise s3_xml.malformed("a lifecycle Filter has one condition; put several in an <And>")
    if not children:
        return {"filter_form": "empty"}
    child = children[0]
    size_where = "the lifecycle Filter"
    if child.tag == "Prefix":
        return {"filter_form": "prefix", "prefix": (child.text or "").strip()}
    if child.tag == "Tag":
        return {"filter_form": "tag", "tags": dict([_tag(child)])}
    if child.tag == "ObjectSizeGreaterThan":
        return {"filter_form": "gt", "size_greater_than": _int(found, child.tag, size_where)}
    if child.tag == "ObjectSizeLessThan":
        return {"filter_form": "lt", "size_less_than": _int(found, child.tag, size_where)}
    if child.tag == "And":
        return {"filter_form": "and", "prefix": _text(child, "Prefix") or "",
                "tags": dict(_tag(t) for t in child.findall("Tag")),
                "size_greater_than": _int(child, "ObjectSizeGreaterThan", "the lifecycle And"),
                "size_less_than": _int(child, "ObjectSizeLessThan", "the lifecycle And")}
    raise s3_xml.malformed(f"a lifecycle Filter holds Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan or "
                           f"And, got <{child.tag}>")


def _rule(node: ElementTree.Element) -> LifecycleRule:
    status = _text(node, "Status")
    if status not in ("Enabled", "Disabled"):
        raise s3_xml.malformed(f"a lifecycle Rule's Status is Enabled or Disabled, got {status!r}")
    fields: dict = {"status": status, "id": _text(node, "ID") or "", **_filter(node)}
    transitions = []
    for t in node.findall("Transition"):
        days, date = _int(t, "Days", "Transition"), _date(t, "Transition")
        if (days is None) == (date is None):
            raise s3_xml.malformed("a Transition has Days or Date, one of them")
        transitions.append(Transition(_storage_class(t, "Transition"), days, date))
    fields["transitions"] = tuple(transitions)
    expiration = node.find("Expiration")
    if expiration is not None:
        days, date = _int(expiration, "Days", "Expiration"), _date(expiration, "Expiration")
        marker = _text(expiration, "ExpiredObjectDeleteMarker")
        if marker is not None and marker not in ("true", "false"):
            raise s3_xml.malformed(f"ExpiredObjectDeleteMarker is true or false, got {marker!r}")
        if sum(x is not None for x in (days, date, marker)) != 1:
            raise s3_xml.malformed("an Expiration has one of Days, Date or ExpiredObjectDeleteMarker")
        fields.update(expiration_days=days, expiration_date=date,
                      expired_object_delete_marker=None if marker is None else marker == "true")
    noncurrent = []
    for t in node.findall("NoncurrentVersionTransition"):
        days = _int(t, "NoncurrentDays", "NoncurrentVersionTransition")
        if days is None:
            raise s3_xml.malformed("a NoncurrentVersionTransition has NoncurrentDays")
        noncurrent.append(NoncurrentTransition(_storage_class(t, "NoncurrentVersionTransition"), days,
                                               _int(t, "NewerNoncurrentVersions", "NoncurrentVersionTransition")))
    fields["noncurrent_transitions"] = tuple(noncurrent)
    expire_old = node.find("NoncurrentVersionExpiration")
    if expire_old is not None:
        days = _int(expire_old, "NoncurrentDays", "NoncurrentVersionExpiration")
        if days is None:
            raise s3_xml.malformed("a NoncurrentVersionExpiration has NoncurrentDays")
        fields.update(noncurrent_expiration_days=days,
                      noncurrent_newer_versions=_int(expire_old, "NewerNoncurrentVersions",
                                                     "NoncurrentVersionExpiration"))
    abort = node.find("AbortIncompleteMultipartUpload")
    if abort is not None:
        days = _int(abort, "DaysAfterInitiation", "AbortIncompleteMultipartUpload")
        if days is None:
            raise s3_xml.malformed("an AbortIncompleteMultipartUpload has DaysAfterInitiation")
        fields["abort_days"] = days
    return LifecycleRule(**fields)


def parse_configuration(body: bytes, minimum_size: str) -> LifecycleConfiguration:
    root = s3_xml.read_document(body)
    if root.tag != "LifecycleConfiguration":
        raise s3_xml.malformed(f"expected a <LifecycleConfiguration> document, got <{root.tag}>")
    return LifecycleConfiguration(tuple(_rule(r) for r in root.findall("Rule")), minimum_size).validate()


# --- writing the XML -----------------------------------------------------------------------------------
def _render_filter(rule: LifecycleRule) -> str:
    el, form = s3_xml.element, rule.filter_form
    tags = "".join(f"<Tag>{el('Key', k)}{el('Value', v)}</Tag>" for k, v in rule.tags.items())
    if form == "legacy":
        return el("Prefix", rule.prefix)
    inner = {"empty": "", "prefix": el("Prefix", rule.prefix), "tag": tags,
             "gt": s3_xml.optional("ObjectSizeGreaterThan", rule.size_greater_than),
             "lt": s3_xml.optional("ObjectSizeLessThan", rule.size_less_than)}.get(form)
    if inner is None:
        inner = (f"<And>{s3_xml.optional('Prefix', rule.prefix)}{tags}"
                 f"{s3_xml.optional('ObjectSizeGreaterThan', rule.size_greater_than)}"
                 f"{s3_xml.optional('ObjectSizeLessThan', rule.size_less_than)}</And>")
    return f"<Filter>{inner}</Filter>"


def _render_rule(rule: LifecycleRule) -> str:
    el, opt = s3_xml.element, s3_xml.optional
    parts = [opt("ID", rule.id), _render_filter(rule), el("Status", rule.status)]
    for t in rule.transitions:
        when = el("Days", t.days) if t.days is not None else el("Date", iso8601(t.date or 0))
        parts.append(f"<Transition>{when}{el('StorageClass', t.storage_class)}</Transition>")
    if rule.expiration_days is not None or rule.expiration_date is not None \
            or rule.expired_object_delete_marker is not None:
        parts.append(f"<Expiration>{opt('Days', rule.expiration_days)}"
                     f"{el('Date', iso8601(rule.expiration_date)) if rule.expiration_date is not None else ''}"
                     f"{opt('ExpiredObjectDeleteMarker', rule.expired_object_delete_marker)}</Expiration>")
    for t in rule.noncurrent_transitions:
        parts.append(f"<NoncurrentVersionTransition>{el('NoncurrentDays', t.days)}"
                     f"{el('StorageClass', t.storage_class)}{opt('NewerNoncurrentVersions', t.newer_versions)}"
                     "</NoncurrentVersionTransition>")
    if rule.noncurrent_expiration_days is not None:
        parts.append(f"<NoncurrentVersionExpiration>{el('NoncurrentDays', rule.noncurrent_expiration_days)}"
                     f"{opt('NewerNoncurrentVersions', rule.noncurrent_newer_versions)}</NoncurrentVersionExpiration>")
    if rule.abort_days is not None:
        parts.append(f"<AbortIncompleteMultipartUpload>{el('DaysAfterInitiation', rule.abort_days)}"
                     "</AbortIncompleteMultipartUpload>")
    return f"<Rule>{''.join(parts)}</Rule>"


def render_configuration(config: LifecycleConfiguration) -> bytes:
    return s3_xml.document("LifecycleConfiguration", *(_render_rule(r) for r in config.rules))


# --- handlers ------------------------------------------------------------------------------------------
def put_configuration(face: LakeFace, call: BucketCall) -> Response:
    face.blobs.head_bucket(call.bucket)
    minimum = call.headers.get(MIN_SIZE_HEADER, DEFAULT_MIN_SIZE)
    config = parse_configuration(read_payload(call.headers, call.request.body).data, minimum)
    face.blobs.set_bucket_config(call.bucket, LIFECYCLE, config.to_doc())
    return Response(headers=[(MIN_SIZE_HEADER, config.minimum_size)])


def get_configuration(face: LakeFace, call: BucketCall) -> Response:
    doc = face.blobs.bucket_config(call.bucket, LIFECYCLE)
    if not doc:
        raise no_configuration(call.bucket)
    config = LifecycleConfiguration.from_doc(doc)  # type: ignore[arg-type]
    return Response(body=render_configuration(config), content_type=s3_xml.CONTENT_TYPE,
                    headers=[(MIN_SIZE_HEADER, config.minimum_size)])


def delete_configuration(face: LakeFace, call: BucketCall) -> Response:
    face.blobs.set_bucket_config(call.bucket, LIFECYCLE, None)
    return Response(status=204)
