"""S3 CORS on the wire: the `CORSConfiguration` document (Put/Get/DeleteBucketCors), the answer to a
browser's preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) and the
`Access-Control-*` headers on ordinary answers to a matching `Origin`.

A rule matches when the origin matches one of its AllowedOrigin patterns (each may hold one `*`), the
method is one of its AllowedMethods, and every header the preflight asks for matches an AllowedHeader
pattern; the first rule that matches answers, as S3 evaluates them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from sagelab.api.s3_xml import NAMESPACE, malformed, read_document
from sagelab.errors import S3Error

METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100
#: The rule's fields as kept with the bucket (botocore's CORSRule member names).
LISTS = ("AllowedHeaders", "AllowedMethods", "AllowedOrigins", "ExposeHeaders")
_ELEMENTS = {"AllowedHeaders": "AllowedHeader", "AllowedMethods": "AllowedMethod",
             "AllowedOrigins": "AllowedOrigin", "ExposeHeaders": "ExposeHeader"}
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"


def _one_wildcard(kind: str, value: str) -> None:
    if value.count("*") > 1:
        raise S3Error("InvalidRequest", f'{kind} "{value}" can not have more than one wildcard.', 400)


def parse_configuration(body: bytes) -> list[dict]:
    """A PutBucketCors body -> the rules kept with the bucket, refused as S3 refuses them."""
    root = read_document(body)
    found = root.findall("CORSRule") if root.tag == "CORSConfiguration" else []
    if not found:
        raise malformed("a CORSConfiguration holds at least one CORSRule")
    if len(found) > MAX_RULES:
        raise S3Error("InvalidRequest", f"The CORS configuration must contain no more than {MAX_RULES} rules.", 400)
    rules = []
    for node in found:
        rule: dict = {name: [(e.text or "").strip() for e in node.findall(element)]
                      for name, element in _ELEMENTS.items()}
        if not rule["AllowedMethods"] or not rule["AllowedOrigins"]:
            raise malformed("every CORSRule has at least one AllowedMethod and one AllowedOrigin")
        for method in rule["AllowedMethods"]:
            if method not in METHODS:
                raise S3Error("InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported "
                              f"method is {method}", 400)
        for origin in rule["AllowedOrigins"]:
            _one_wildcard("AllowedOrigin", origin)
        for header in rule["AllowedHeaders"]:
            _one_wildcard("AllowedHeader", header)
        if (rule_id := node.findtext("ID")) is not None:
            rule["ID"] = rule_id.strip()
        if (max_age := node.findtext("MaxAgeSeconds")) is not None:
            if not max_age.strip().isdigit():
                raise malformed(f"MaxAgeSeconds is a whole number of seconds, got {max_age!r}")
            rule["MaxAgeSeconds"] = int(max_age)
        rules.append({k: v for k, v in rule.items() if v != []})
    return rules


def render_configuration(rules: list[dict]) -> bytes:
    body = ""
    for rule in rules:
        inner = f"<ID>{escape(rule['ID'])}</ID>" if "ID" in rule else ""
        for name in LISTS:
            inner += "".join(f"<{_ELEMENTS[name]}>{escape(v)}</{_ELEMENTS[name]}>" for v in rule.get(name, []))
        if "MaxAgeSeconds" in rule:
            inner += f"<MaxAgeSeconds>{rule['MaxAgeSeconds']}</MaxAgeSeconds>"
        body += f"<CORSRule>{inner}</CORSRule>"
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<CORSConfiguration xmlns="{NAMESPACE}">{body}</CORSConfiguration>'.encode()


def no_configuration(bucket: str) -> S3Error:
    return S3Error("NoSuchCORSConfiguration", "The CORS configuration does not exist", 404, BucketName=bucket)


def _matches(pattern: str, value: str) -> bool:
    """S3's patterns: literal text with at most one `*` that stands for any run of characters."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, re.DOTALL) is not None


def matching_rule(rules: list[dict] | None, origin: str, method: str, headers: Sequence[str] = ()) -> dict | None:
    for rule in rules or []:
        if (any(_matches(o, origin) for o in rule["AllowedOrigins"]) and method in rule["AllowedMethods"]
                and all(any(_matches(p.lower(), h.lower()) for p in rule.get("AllowedHeaders", []))
                        for h in headers)):
            return rule
    return None


def _allow_headers(rule: dict, origin: str) -> list[tuple[str, str]]:
    wildcard = rule["AllowedOrigins"] == ["*"]
    answer = [("Access-Control-Allow-Origin", "*" if wildcard else origin),
              ("Access-Control-Allow-Methods", ", ".join(rule["AllowedMethods"]))]
    if not wildcard:
        answer.append(("Access-Control-Allow-Credentials", "true"))
    if rule.get("ExposeHeaders"):
        answer.append(("Access-Control-Expose-Headers", ", ".join(rule["ExposeHeaders"])))
    if "MaxAgeSeconds" in rule:
        answer.append(("Access-Control-Max-Age", str(rule["MaxAgeSeconds"])))
    return answer


def preflight(rules: list[dict] | None, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The headers that answer a preflight, or the refusal S3 gives."""
    origin = headers.get("origin")
    if not origin:
        raise S3Error("BadRequest", "Insufficient information. Origin request header needed.", 400)
    method = headers.get("access-control-request-method")
    if method not in METHODS:
        raise S3Error("BadRequest", f"Invalid Access-Control-Request-Method: {method}", 400)
    if not rules:
        raise S3Error("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.", 403,
                      Method=method, ResourceType="BUCKET")
    asked = [h.strip() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()]
    rule = matching_rule(rules, origin, method, asked)
    if rule is None:
        raise S3Error("AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually because "
                      "the evalution of Origin, request method / Access-Control-Request-Method or "
                      "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.", 403,
                      Method=method, ResourceType="OBJECT")
    answer = _allow_headers(rule, origin)
    if asked:
        answer.append(("Access-Control-Allow-Headers", ", ".join(h.lower() for h in asked)))
    return [*answer, ("Vary", VARY)]


def response_headers(rules: list[dict] | None, origin: str, method: str) -> list[tuple[str, str]]:
    """The headers an ordinary answer carries for a request from a matching origin (none otherwise)."""
    rule = matching_rule(rules, origin, method)
    return [] if rule is None else [*_allow_headers(rule, origin), ("Vary", VARY)]
