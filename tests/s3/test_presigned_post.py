"""Browser uploads: boto3's generate_presigned_post, posted as multipart/form-data by a plain HTTP client."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
import uuid
from xml.etree import ElementTree

import botocore.config
import pytest

V4 = botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"})


@pytest.fixture(scope="module", params=["default", "s3v4"])
def signer(request, server):
    return server.client("s3", **({"config": V4} if request.param == "s3v4" else {}))


@dataclasses.dataclass
class Answer:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode()


def send_form(url: str, data: dict, files: dict | None = None, timeout: float = 30) -> Answer:
    """POST `data` and `files` ({name: (filename or None, bytes or str)}) as multipart/form-data, as a browser
    does (files last)."""
    boundary = uuid.uuid4().hex
    body = b""
    parts = [(name, None, value) for name, value in data.items()]
    parts += [(name, filename, value) for name, (filename, value) in (files or {}).items()]
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        value = value.encode() if isinstance(value, str) else value
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Answer(answer.status, answer.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read())


def code_of(answer: Answer) -> tuple[str, str]:
    root = ElementTree.fromstring(answer.content)
    return root.findtext("Code"), root.findtext("Message")


def test_a_presigned_post_uploads_the_file(s3, signer, bucket):
    form = signer.generate_presigned_post(bucket, "uploads/${filename}", ExpiresIn=300,
                                          Conditions=[["starts-with", "$key", "uploads/"]])
    answer = send_form(form["url"], data=form["fields"], files={"file": ("a.csv", b"1,2\n")}, timeout=30)
    assert answer.status_code == 204, answer.text
    assert s3.get_object(Bucket=bucket, Key="uploads/a.csv")["Body"].read() == b"1,2\n"


def test_fields_in_the_policy_set_type_metadata_and_status(s3, signer, bucket):
    fields = {"Content-Type": "text/csv", "x-amz-meta-owner": "ml", "success_action_status": "201"}
    form = signer.generate_presigned_post(bucket, "k.csv", Fields=fields, Conditions=[
        {"Content-Type": "text/csv"}, {"x-amz-meta-owner": "ml"}, {"success_action_status": "201"},
        ["content-length-range", 1, 100]])
    answer = send_form(form["url"], data=form["fields"], files={"file": ("x", b"a,b\n")}, timeout=30)
    assert answer.status_code == 201, answer.text
    assert ElementTree.fromstring(answer.content).findtext("{http://s3.amazonaws.com/doc/2006-03-01/}Key") == "k.csv"
    head = s3.head_object(Bucket=bucket, Key="k.csv")
    assert head["ContentType"] == "text/csv" and head["Metadata"] == {"owner": "ml"}


def test_a_form_the_policy_does_not_allow_is_refused(s3, signer, bucket):
    form = signer.generate_presigned_post(bucket, "fixed.csv", Conditions=[["content-length-range", 1, 4]])
    too_big = send_form(form["url"], data=form["fields"], files={"file": ("x", b"123456")}, timeout=30)
    assert (too_big.status_code, code_of(too_big)[0]) == (400, "EntityTooLarge")
    other_key = send_form(form["url"], data={**form["fields"], "key": "elsewhere.csv"},
                              files={"file": ("x", b"1")}, timeout=30)
    assert other_key.status_code == 403
    assert code_of(other_key) == ("AccessDenied", 'Invalid according to Policy: Policy Condition failed: '
                                                  '["eq", "$key", "fixed.csv"]')
    extra = send_form(form["url"], data={**form["fields"], "x-amz-meta-sneaky": "1"},
                          files={"file": ("x", b"1")}, timeout=30)
    assert code_of(extra) == ("AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_a_tampered_or_expired_policy_is_refused(s3, signer, bucket):
    form = signer.generate_presigned_post(bucket, "k")
    fields = dict(form["fields"])
    fields["policy"] = fields["policy"][:-4] + ("AAAA" if not fields["policy"].endswith("AAAA") else "BBBB")
    forged = send_form(form["url"], data=fields, files={"file": ("x", b"1")}, timeout=30)
    assert (forged.status_code, code_of(forged)[0]) == (403, "SignatureDoesNotMatch")
    expired = signer.generate_presigned_post(bucket, "k", ExpiresIn=-60)
    answer = send_form(expired["url"], data=expired["fields"], files={"file": ("x", b"1")}, timeout=30)
    assert (answer.status_code, *code_of(answer)) == (403, "AccessDenied",
                                                       "Invalid according to Policy: Policy expired.")
    no_file = send_form(form["url"], data=form["fields"], files={"x-ignore-pad": (None, "1")}, timeout=30)
    assert (no_file.status_code, *code_of(no_file)) == (400, "InvalidArgument",
                                                         "POST requires exactly one file upload per request.")


def test_the_enforcer_sees_the_user_behind_a_presigned_post(server, s3, bucket):
    iam = server.client("iam")
    name = f"poster-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    statement = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/inbox/*"}
    iam.put_user_policy(UserName=name, PolicyName="p",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    user_s3 = server.client("s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                            config=V4)
    allowed = user_s3.generate_presigned_post(bucket, "inbox/a")
    assert send_form(allowed["url"], data=allowed["fields"], files={"file": ("x", b"1")},
                         timeout=30).status_code == 204
    refused = user_s3.generate_presigned_post(bucket, "private/a")
    answer = send_form(refused["url"], data=refused["fields"], files={"file": ("x", b"1")}, timeout=30)
    assert answer.status_code == 403 and "is not authorized to perform: s3:PutObject" in code_of(answer)[1]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["inbox/a"]
