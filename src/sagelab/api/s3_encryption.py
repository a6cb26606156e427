"""S3 server-side encryption on the wire: the SSE request headers, the headers S3 answers with, and the
bucket default encryption document (Put/Get/DeleteBucketEncryption).

A request's own `x-amz-server-side-encryption` wins; else the bucket's default rule applies; else the
object is stored as sent. SSE-KMS names its key by `x-amz-server-side-encryption-aws-kms-key-id` (any of
KMS's KeyId forms) or uses S3's default key `alias/aws/s3`, created on first use as AWS does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from xml.sax.saxutils import escape

from sagelab.api.s3_xml import NAMESPACE, malformed, read_document
from sagelab.errors import S3Error
from sagelab.lake.encryption import SSE_KMS, SSE_S3, Encryption

ALGORITHM_HEADER = "x-amz-server-side-encryption"
KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id"
BUCKET_KEY_HEADER = "x-amz-server-side-encryption-bucket-key-enabled"
ALGORITHMS = (SSE_S3, SSE_KMS)
#: (algorithm, KMS key id as given) -> the key's ARN (None for SSE-S3); raises KMS.NotFoundException.
ResolveKey = Callable[[str, "str | None"], "str | None"]


def _invalid(message: str, name: str, value: str | None) -> S3Error:
    return S3Error("InvalidArgument", message, 400, ArgumentName=name, ArgumentValue=str(value))


def requested(headers: Mapping[str, str], default: dict | None, resolve: ResolveKey) -> Encryption | None:
    """The encryption a write asks for: its own headers, else the bucket's default rule, else none."""
    algorithm, key_id = headers.get(ALGORITHM_HEADER), headers.get(KEY_HEADER)
    if algorithm is None and key_id is not None:
        raise _invalid("Server Side Encryption with AWS KMS managed key requires HTTP header "
                       "x-amz-server-side-encryption : aws:kms", KEY_HEADER, key_id)
    if algorithm is None and default is not None:
        algorithm, key_id = default["SSEAlgorithm"], default.get("KMSMasterKeyID")
    if algorithm is None:
        return None
    if algorithm not in ALGORITHMS:
        raise _invalid(f"The encryption method specified is not supported: {algorithm!r}; sagelab answers "
                       f"{' and '.join(ALGORITHMS)}.", ALGORITHM_HEADER, algorithm)
    if algorithm == SSE_S3 and headers.get(KEY_HEADER):
        raise _invalid("x-amz-server-side-encryption-aws-kms-key-id is only valid with "
                       "x-amz-server-side-encryption: aws:kms.", KEY_HEADER, key_id)
    return Encryption(algorithm, resolve(algorithm, key_id))


def response_headers(encryption: Mapping[str, str]) -> list[tuple[str, str]]:
    """What S3 says about a stored object's encryption (nothing for a plain object)."""
    if not encryption:
        return []
    headers = [("x-amz-server-side-encryption", encryption["algorithm"])]
    if encryption.get("kms_key_arn"):
        headers.append((KEY_HEADER, encryption["kms_key_arn"]))
    return headers


def planned_headers(encryption: Encryption | None) -> list[tuple[str, str]]:
    """The same headers for an object not written yet (CreateMultipartUpload, UploadPart)."""
    if encryption is None:
        return []
    return response_headers({"algorithm": encryption.algorithm, "kms_key_arn": encryption.kms_key_id or ""})


# --- the bucket's default: ServerSideEncryptionConfiguration ----------------------------------------
def parse_configuration(body: bytes, resolve: ResolveKey) -> dict:
    """A PutBucketEncryption body -> the rule kept with the bucket: SSEAlgorithm, KMSMasterKeyID, BucketKeyEnabled."""
    root = read_document(body)
    rules = root.findall("Rule") if root.tag == "ServerSideEncryptionConfiguration" else []
    if len(rules) != 1 or rules[0].find("ApplyServerSideEncryptionByDefault") is None:
        raise malformed("a ServerSideEncryptionConfiguration holds one Rule with ApplyServerSideEncryptionByDefault")
    default = rules[0].find("ApplyServerSideEncryptionByDefault")
    algorithm = (default.findtext("SSEAlgorithm") or "").strip()
    key_id = (default.findtext("KMSMasterKeyID") or "").strip() or None
    if algorithm not in ALGORITHMS:
        raise malformed(f"SSEAlgorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if algorithm == SSE_S3 and key_id:
        raise _invalid("KMSMasterKeyID is only valid with SSEAlgorithm aws:kms.", "KMSMasterKeyID", key_id)
    if key_id:
        resolve(algorithm, key_id)  # an unknown key is refused now, not at the first write
    rule = {"SSEAlgorithm": algorithm}
    if key_id:
        rule["KMSMasterKeyID"] = key_id
    rule["BucketKeyEnabled"] = (rules[0].findtext("BucketKeyEnabled") or "").strip().lower() == "true"
    return rule


def render_configuration(rule: dict) -> bytes:
    key = f"<KMSMasterKeyID>{escape(rule['KMSMasterKeyID'])}</KMSMasterKeyID>" if rule.get("KMSMasterKeyID") else ""
    bucket_key = "true" if rule.get("BucketKeyEnabled") else "false"
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ServerSideEncryptionConfiguration xmlns="{NAMESPACE}">'
            f"<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>{rule['SSEAlgorithm']}</SSEAlgorithm>{key}"
            f"</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>{bucket_key}</BucketKeyEnabled></Rule>"
            "</ServerSideEncryptionConfiguration>").encode()


def no_configuration(bucket: str) -> S3Error:
    return S3Error("ServerSideEncryptionConfigurationNotFoundError",
                   "The server side encryption configuration was not found", 404, BucketName=bucket)
