"""S3 browser uploads (`generate_presigned_post`): a `multipart/form-data` POST to a bucket whose fields
carry a base64 policy document and its signature (SigV4: `x-amz-algorithm`, `x-amz-credential`,
`x-amz-date`, `x-amz-signature`; or signature version 2: `AWSAccessKeyId`, `signature`).

`parse` reads the form; `PostPolicy.check` holds the fields to the policy's conditions (`{"field": value}`,
`["eq" | "starts-with", "$field", value]`, `["content-length-range", min, max]`) as S3 does: each
condition must hold and each field must be named by one.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP

from sagelab.errors import AccessDenied, S3Error

#: Fields the policy need not name (S3's list): the signature's own, the file, and x-ignore-*.
UNCHECKED = frozenset({"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file"})


@dataclasses.dataclass(frozen=True)
class PostForm:
    #: The fields by lower-case name (S3 matches field names case-insensitively), values as sent.
    fields: dict[str, str]
    file: bytes
    filename: str
    file_content_type: str | None


def is_post_form(method: str, headers: Mapping[str, str]) -> bool:
    return method == "POST" and headers.get("content-type", "").lower().startswith("multipart/form-data")


def parse(content_type: str, body: bytes) -> PostForm:
    """The form's fields and its file (the last part, named `file`); refused as S3 refuses a bad form."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
                                                  + body)
    if not message.is_multipart():
        raise S3Error("MalformedPOSTRequest", "The body of your POST request is not well-formed "
                      "multipart/form-data.", 400)
    fields: dict[str, str] = {}
    file = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if name.lower() == "file":
            file = (payload, part.get_filename() or "", part.get_content_type() if part["content-type"] else None)
            break  # S3 ignores what follows the file
        fields[name.lower()] = payload.decode("utf-8")
    if file is None:
        raise S3Error("InvalidArgument", "POST requires exactly one file upload per request.", 400,
                      ArgumentName="file", ArgumentValue="0")
    return PostForm(fields, *file)


def _refused(why: str) -> AccessDenied:
    return AccessDenied(f"Invalid according to Policy: {why}")


@dataclasses.dataclass(frozen=True)
class PostPolicy:
    expiration: dt.datetime
    conditions: list

    @classmethod
    def decode(cls, encoded: str) -> PostPolicy:
        try:
            document = json.loads(base64.b64decode(encoded, validate=True))
            expiration = dt.datetime.strptime(document["expiration"].replace(".000Z", "Z"), "%Y-%m-%dT%H:%M:%SZ")
            conditions = document.get("conditions", [])
            if not isinstance(conditions, list):
                raise TypeError("conditions")
        except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
            raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid JSON.", 400) from None
        return cls(expiration.replace(tzinfo=dt.UTC), conditions)

    def check(self, form: PostForm, bucket: str, now: dt.datetime) -> None:
        """Every condition holds for the form's fields (and the bucket), and every field is named by one."""
        if now > self.expiration:
            raise _refused("Policy expired.")
        values = {**form.fields, "bucket": bucket}
        named = set()
        for condition in self.conditions:
            if isinstance(condition, dict) and len(condition) == 1:
                (name, expected), = condition.items()
                op, name = "eq", name.lower()
            elif isinstance(condition, list) and len(condition) == 3 and condition[0] == "content-length-range":
                low, high = int(condition[1]), int(condition[2])
                if not low <= len(form.file) <= high:
                    raise S3Error("EntityTooLarge" if len(form.file) > high else "EntityTooSmall",
                                  "Your proposed upload exceeds the maximum allowed size" if len(form.file) > high
                                  else "Your proposed upload is smaller than the minimum allowed size", 400,
                                  ProposedSize=str(len(form.file)), **(
                                      {"MaxSizeAllowed": str(high)} if len(form.file) > high
                                      else {"MinSizeAllowed": str(low)}))
                continue
            elif isinstance(condition, list) and len(condition) == 3 and str(condition[1]).startswith("$"):
                op, name, expected = str(condition[0]).lower(), str(condition[1])[1:].lower(), condition[2]
            else:
                raise S3Error("InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {condition!r}.", 400)
            named.add(name)
            got = values.get(name)
            if op == "eq" and got != expected:
                raise _refused(f'Policy Condition failed: ["eq", "${name}", "{expected}"]')
            if op == "starts-with" and (got is None or not got.startswith(str(expected))):
                raise _refused(f'Policy Condition failed: ["starts-with", "${name}", "{expected}"]')
            if op not in ("eq", "starts-with"):
                raise S3Error("InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {condition!r}.", 400)
        extra = sorted(f for f in form.fields if f not in named and f not in UNCHECKED
                       and not f.startswith("x-ignore-"))
        if extra:
            raise _refused(f"Extra input fields: {', '.join(extra)}")
