"""The operation tables: every answered operation has an entry, and every entry is right about AWS.

Checked against botocore's service models (names, input members) and against what IAM's Service
Authorization Reference and CloudTrail's service pages say (actions, audit classes). The dispatch tests send
real requests through the faces' resolve step, on a platform that is never opened.
"""

from __future__ import annotations

import asyncio
import functools
import re
from pathlib import Path

import botocore.session
import pytest

from sagelab.api.app import SagelabApp
from sagelab.api.faces import build_faces, face_classes, operation_tables
from sagelab.api.http import Request
from sagelab.api.operations import ANY, Audit, Operation, OperationTable, member, placeholders
from sagelab.api.runtime import RuntimeFace
from sagelab.api.s3 import ROUTES, VARIANTS, S3Face
from sagelab.errors import SagelabError, UnknownOperation, ValidationError
from sagelab.platform import Platform
from sagelab.settings import load_settings
from sagelab.support_table import answered_operations

TABLES = operation_tables()
BY_MODEL = {table.model_name: table for table in TABLES}
ENTRIES = [pytest.param(table, operation, id=f"{table.model_name}:{operation.name}")
           for table in TABLES for operation in table]
#: botocore service -> the IAM prefix of its actions.
PREFIXES = {"sagemaker": "sagemaker", "sagemaker-runtime": "sagemaker", "s3": "s3", "glue": "glue",
            "athena": "athena", "logs": "logs", "sts": "sts", "kinesis": "kinesis",
            "firehose": "firehose", "kinesisanalytics": "kinesisanalytics", "iam": "iam", "kms": "kms",
            "cloudtrail": "cloudtrail", "cloudwatch": "cloudwatch", "lakeformation": "lakeformation",
            "dms": "dms", "application-autoscaling": "application-autoscaling"}
REGION, ACCOUNT_ID = "us-east-1", "123456789012"


@functools.cache
def _model(name: str):
    return botocore.session.get_session().get_service_model(name)


def _request(method: str = "POST", path: str = "/", *, query: str = "", headers: dict[str, str] | None = None,
             body: bytes = b"") -> Request:
    return Request(method=method, raw_path=path, raw_query=query, headers=dict(headers or {}), body=body,
                   request_id="test", account_id=ACCOUNT_ID, region=REGION)


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    """A platform that is never opened: faces built on it must touch no disk until a handler runs."""
    return Platform(load_settings({"home": str(tmp_path / "home")}, environ={}))


def test_faces_built_on_an_unopened_platform_build_no_service_and_touch_no_disk(platform: Platform):
    before = dict(vars(platform))
    faces = build_faces(platform)
    assert set(faces) == set(face_classes())
    assert vars(platform) == before, "a face reached a service (a cached property) at construction"
    assert not Path(platform.settings.home).exists()


# --- every answered operation has one entry, and it is a real AWS operation -----------------------------
def test_there_is_a_table_for_every_face_and_the_support_table_reads_them():
    assert set(BY_MODEL) == set(PREFIXES)
    assert answered_operations() == {table.model_name: table.names for table in TABLES}
    assert {name: cls.operations.signing_name for name, cls in face_classes().items()} == {
        name: name for name in face_classes()}
    assert RuntimeFace.operations.signing_name == "sagemaker"


def test_the_wire_protocols_dispatch_through_the_faces_own_tables():
    for cls in face_classes().values():
        wire = getattr(cls, "wire", None)
        if wire is not None:  # JSON and query faces; S3 and the runtime resolve for themselves
            assert wire.operations is cls.operations, cls.__name__


@pytest.mark.parametrize(("table", "operation"), ENTRIES)
def test_every_entry_is_an_operation_of_its_botocore_service(table: OperationTable, operation: Operation):
    assert operation.name in _model(table.model_name).operation_names


@pytest.mark.parametrize(("table", "operation"), ENTRIES)
def test_every_placeholder_names_a_member_of_the_operations_input(table: OperationTable,
                                                                  operation: Operation):
    shape = _model(table.model_name).operation_model(operation.name).input_shape
    for access in operation.accesses:
        assert not access.resource.startswith("arn:"), "templates leave out the ARN's prefix"
        assert access.when is None or access.when in shape.members, f"{operation.name}: when={access.when}"
        for path in placeholders(access.resource):
            current = shape
            for name in path.split("."):
                assert current is not None and current.type_name == "structure", (operation.name, path)
                assert name in current.members, f"{operation.name}: {name} is not an input member ({path})"
                current = current.members[name]


@pytest.mark.parametrize(("table", "operation"), ENTRIES)
def test_every_action_is_the_services_prefix_and_an_action_name(table: OperationTable, operation: Operation):
    for access in operation.accesses:
        prefix, _, action = access.action.partition(":")
        assert prefix == PREFIXES[table.model_name]
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", action), access.action


@pytest.mark.parametrize(("table", "operation"), ENTRIES)
def test_describe_list_get_and_head_operations_are_read_only(table: OperationTable, operation: Operation):
    # InvokeEndpoint changes nothing (IAM classes it Read), though CloudTrail records no event for it.
    # CloudTrail marks AssumeRole and SimulatePrincipalPolicy read-only: they change no resource; so are KMS's
    # cryptographic calls and CloudTrail's LookupEvents (CloudTrail's readOnly: true).
    reads = operation.name.startswith(("Describe", "List", "Get", "BatchGet", "Head", "Filter", "Invoke",
                                       "Simulate", "Assume", "Encrypt", "Decrypt", "GenerateDataKey",
                                       "LookupEvents"))
    writes = operation.name.startswith(("Create", "Update", "Delete", "Put", "Start", "Stop", "Add", "Reset",
                                        "Copy", "Upload", "Complete", "Abort", "BatchCreate", "BatchDelete",
                                        "BatchStop", "Split", "Merge", "Increase", "Decrease", "Attach", "Detach",
                                        "Remove", "Retry", "Enable", "Disable", "Schedule", "Cancel", "Rotate",
                                        "Set", "Tag", "Untag", "Restore", "Register", "Deregister", "Grant",
                                        "Revoke", "BatchGrant", "BatchRevoke", "Modify", "Test"))
    assert reads or writes, f"{operation.name}: say in this test whether it reads or writes"
    assert operation.read_only == reads, operation.name


# --- IAM actions and CloudTrail classes that differ from the obvious --------------------------------------
def test_s3s_iam_actions_are_not_its_operation_names():
    s3 = BY_MODEL["s3"]
    expected = {
        "ListBuckets": "s3:ListAllMyBuckets", "HeadBucket": "s3:ListBucket", "ListObjects": "s3:ListBucket",
        "ListObjectsV2": "s3:ListBucket", "HeadObject": "s3:GetObject", "CopyObject": "s3:PutObject",
        "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
        "UploadPartCopy": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
        "ListParts": "s3:ListMultipartUploadParts",
        "ListMultipartUploads": "s3:ListBucketMultipartUploads", "DeleteObjects": "s3:DeleteObject",
    }
    assert {name: s3[name].action for name in expected} == expected
    for name in ("CopyObject", "UploadPartCopy"):  # both also read their source object
        assert ("s3:GetObject", "{CopySource}") in [(a.action, a.resource) for a in s3[name].also]
    for name in ("PutObject", "CopyObject", "CreateMultipartUpload"):  # and tagging what they write needs more
        assert ("s3:PutObjectTagging", "{Bucket}/{Key}", "Tagging") in [
            (a.action, a.resource, a.when) for a in s3[name].also]


def test_s3_object_operations_are_data_events_and_bucket_management_is_not():
    s3 = BY_MODEL["s3"]
    for operation in s3:
        if "{Key}" in operation.resource:
            assert operation.audit is Audit.DATA, operation.name
    for name in ("CreateBucket", "DeleteBucket", "ListBuckets", "GetBucketLocation", "ListMultipartUploads"):
        assert s3[name].audit is Audit.MANAGEMENT, name
    # CloudTrail logs these bucket-level calls as data events on the bucket's objects.
    for name in ("HeadBucket", "ListObjects", "ListObjectsV2", "DeleteObjects"):
        assert s3[name].audit is Audit.DATA, name


def test_kinesis_record_operations_are_data_events_and_the_rest_management():
    kinesis = BY_MODEL["kinesis"]
    data = {o.name for o in kinesis if o.audit is Audit.DATA}
    assert data == {"PutRecord", "PutRecords", "GetRecords", "GetShardIterator"}
    assert all(o.audit is Audit.MANAGEMENT for o in kinesis if o.name not in data)


def test_what_cloudtrail_does_not_record_and_what_iam_cannot_refuse():
    invoke = BY_MODEL["sagemaker-runtime"]["InvokeEndpoint"]
    assert (invoke.action, invoke.resource, invoke.audit) == (
        "sagemaker:InvokeEndpoint", "endpoint/{EndpointName}", Audit.NOT_RECORDED)
    logs = BY_MODEL["logs"]
    assert logs["GetLogEvents"].audit is logs["FilterLogEvents"].audit is Audit.NOT_RECORDED
    assert logs["DescribeLogStreams"].audit is Audit.MANAGEMENT
    not_recorded = {(t.model_name, o.name) for t in TABLES for o in t if o.audit is Audit.NOT_RECORDED}
    # CloudTrail logs every SageMaker action "with the exception of InvokeEndpoint and InvokeEndpointAsync".
    assert not_recorded == {("sagemaker-runtime", "InvokeEndpoint"), ("sagemaker-runtime", "InvokeEndpointAsync"),
                            ("logs", "GetLogEvents"),
                            ("logs", "FilterLogEvents"), ("firehose", "PutRecord"), ("firehose", "PutRecordBatch")}
    always = {(t.model_name, o.name) for t in TABLES for o in t if o.always_allowed}
    # GetSessionToken: "No permissions are required for users to perform this operation" (STS reference).
    assert always == {("sts", "GetCallerIdentity"), ("sts", "GetSessionToken")}
    assert BY_MODEL["sts"]["GetCallerIdentity"].action == "sts:GetCallerIdentity"


def test_unscoped_actions_name_no_resource():
    for model, name in [("s3", "ListBuckets"), ("sts", "GetCallerIdentity"),
                        ("sagemaker", "ListTrainingJobs"), ("glue", "GetCrawlers"),
                        ("athena", "ListWorkGroups")]:
        assert BY_MODEL[model][name].resource == ANY
    # ... but a List* of one tuning job's training jobs is scoped to that tuning job.
    assert BY_MODEL["sagemaker"]["ListTrainingJobsForHyperParameterTuningJob"].resource == (
        "hyper-parameter-tuning-job/{HyperParameterTuningJobName}")


# --- resource ARNs ---------------------------------------------------------------------------------------
def _arn(model: str, name: str, params: dict) -> str:
    return BY_MODEL[model].resource_arn(name, params, region=REGION, account=ACCOUNT_ID)


def test_resource_arns_are_rendered_the_way_each_service_spells_them():
    assert _arn("sagemaker", "DescribeTrainingJob", {"TrainingJobName": "My-Job"}) == (
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/my-job")  # SageMaker lower-cases names
    assert _arn("sagemaker-runtime", "InvokeEndpoint", {"EndpointName": "Prod"}) == (
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/prod")
    assert _arn("s3", "CreateBucket", {"Bucket": "data"}) == "arn:aws:s3:::data"
    assert _arn("s3", "GetObject", {"Bucket": "data", "Key": "a/B.csv"}) == "arn:aws:s3:::data/a/B.csv"
    assert _arn("glue", "GetTable", {"DatabaseName": "Sales", "Name": "Orders"}) == (
        "arn:aws:glue:us-east-1:123456789012:table/Sales/Orders")
    assert _arn("glue", "CreateTable", {"DatabaseName": "sales", "TableInput": {"Name": "orders"}}) == (
        "arn:aws:glue:us-east-1:123456789012:table/sales/orders")
    assert _arn("athena", "GetWorkGroup", {"WorkGroup": "primary"}) == (
        "arn:aws:athena:us-east-1:123456789012:workgroup/primary")
    stream = {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "j/1"}
    assert _arn("logs", "GetLogEvents", stream) == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/TrainingJobs:log-stream:j/1")
    assert _arn("sts", "GetCallerIdentity", {}) == "*"
    # IAM is global: its ARNs name the account but no region.
    assert _arn("iam", "GetUser", {"UserName": "alice"}) == "arn:aws:iam::123456789012:user/alice"
    role = "arn:aws:iam::123456789012:role/trainer"
    assert _arn("sts", "AssumeRole", {"RoleArn": role, "RoleSessionName": "s"}) == role


def test_a_member_given_as_an_arn_names_the_resource_and_a_missing_one_any():
    group = "arn:aws:logs:eu-west-1:111111111111:log-group:/shared"
    assert _arn("logs", "GetLogEvents", {"logGroupIdentifier": group, "logStreamName": "s"}) == (
        f"{group}:log-stream:s")
    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"
    assert _arn("sagemaker", "DescribeModelPackage", {"ModelPackageName": package}) == package
    tagged = "arn:aws:sagemaker:us-east-1:123456789012:training-job/my-job"
    assert _arn("sagemaker", "ListTags", {"ResourceArn": tagged}) == tagged
    assert _arn("sagemaker", "CreateModelPackage", {"ModelPackageGroupName": "Churn"}) == (
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn")
    assert _arn("athena", "StartQueryExecution", {"QueryString": "SELECT 1"}) == (
        "arn:aws:athena:us-east-1:123456789012:workgroup/*")


def test_a_copy_needs_write_on_its_target_and_read_on_its_source():
    params = {"Bucket": "target", "Key": "copy.csv", "CopySource": "source/orig.csv"}
    assert BY_MODEL["s3"].permissions("CopyObject", params, region=REGION, account=ACCOUNT_ID) == [
        ("s3:PutObject", "arn:aws:s3:::target/copy.csv"), ("s3:GetObject", "arn:aws:s3:::source/orig.csv")]
    assert BY_MODEL["s3"].permissions("CopyObject", {**params, "Tagging": "a=1"}, region=REGION,
                                      account=ACCOUNT_ID)[-1] == ("s3:PutObjectTagging", "arn:aws:s3:::target/copy.csv")


def test_member_reads_dotted_paths():
    assert member({"TableInput": {"Name": "t"}}, "TableInput.Name") == "t"
    assert member({"TableInput": "x"}, "TableInput.Name") is None
    assert member({}, "Name") is None


def test_a_table_refuses_an_operation_declared_twice():
    entry = Operation("GetJob", lambda face, p, r: None, "glue:GetJob")
    with pytest.raises(ValueError, match="GetJob twice"):
        OperationTable("glue", BY_MODEL["glue"].namespace, (entry, entry))


# --- dispatch: a request resolves to its entry, and nothing is answered without one ---------------------
S3_REQUESTS = [  # (method, path, query, headers) that each S3 route and variant is sent as
    ("GET", "/", "", {}),
    ("PUT", "/b", "", {}), ("DELETE", "/b", "", {}), ("HEAD", "/b", "", {}), ("GET", "/b", "", {}),
    ("GET", "/b", "list-type=2", {}), ("GET", "/b", "location", {}), ("GET", "/b", "uploads", {}),
    ("POST", "/b", "delete", {}),
    ("PUT", "/b", "encryption", {}), ("GET", "/b", "encryption", {}), ("DELETE", "/b", "encryption", {}),
    ("PUT", "/b/k", "", {}), ("PUT", "/b/k", "", {"x-amz-copy-source": "/src/k2"}), ("GET", "/b/k", "", {}),
    ("HEAD", "/b/k", "", {}), ("DELETE", "/b/k", "", {}), ("POST", "/b/k", "uploads", {}),
    ("PUT", "/b/k", "partNumber=1&uploadId=u", {}),
    ("PUT", "/b/k", "partNumber=1&uploadId=u", {"x-amz-copy-source": "src/k2"}),
    ("POST", "/b/k", "uploadId=u", {}), ("DELETE", "/b/k", "uploadId=u", {}),
    ("GET", "/b/k", "uploadId=u", {}),
    ("PUT", "/b", "policy", {}), ("GET", "/b", "policy", {}), ("DELETE", "/b", "policy", {}),
    ("PUT", "/b", "tagging", {}), ("GET", "/b", "tagging", {}), ("DELETE", "/b", "tagging", {}),
    ("PUT", "/b/k", "tagging", {}), ("GET", "/b/k", "tagging", {}), ("DELETE", "/b/k", "tagging", {}),
    ("PUT", "/b", "cors", {}), ("GET", "/b", "cors", {}), ("DELETE", "/b", "cors", {}),
    ("POST", "/b/k", "restore", {}),
    ("PUT", "/b", "versioning", {}), ("GET", "/b", "versioning", {}), ("GET", "/b", "versions", {}),
    ("PUT", "/b", "lifecycle", {}), ("GET", "/b", "lifecycle", {}), ("DELETE", "/b", "lifecycle", {}),
]


def test_every_s3_route_and_variant_names_an_entry_and_every_entry_is_routed():
    routed = set(ROUTES.values()) | {sibling for sibling, _ in VARIANTS.values()}
    assert routed - S3Face.operations.names == set(), "routed, but no entry answers it"
    assert S3Face.operations.names - routed == set(), "an entry no request can reach"
    assert set(VARIANTS) <= set(ROUTES.values())


def test_every_s3_entry_is_what_its_requests_resolve_to(platform: Platform):
    face = S3Face(platform)
    resolved = {}
    for method, path, query, headers in S3_REQUESTS:
        call = face.resolve(_request(method, path, query=query, headers=headers))
        resolved[call.operation.name] = call
        assert call.operation is S3Face.operations[call.operation.name]
    assert set(resolved) == S3Face.operations.names
    assert resolved["UploadPartCopy"].params == {"Bucket": "b", "Key": "k", "CopySource": "src/k2"}
    assert resolved["CopyObject"].params["CopySource"] == "src/k2"
    assert resolved["ListObjectsV2"].params == {"Bucket": "b"} and resolved["ListBuckets"].params == {}
    versioned = face.resolve(_request("GET", "/b/k", query="versionId=null"))
    assert versioned.params["VersionId"] == "null"
    assert [a.action for a in versioned.operation.needed(versioned.params)] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert not (Path(platform.settings.home)).exists(), "resolving touched the disk"


def test_an_s3_request_without_an_entry_is_refused_before_anything_runs(platform: Platform):
    with pytest.raises(UnknownOperation, match=r"does not implement GET /b\?acl \(a bucket-level request\)"):
        S3Face(platform).resolve(_request("GET", "/b", query="acl"))
    with pytest.raises(UnknownOperation, match=r"does not implement POST / \(an account-level request\)"):
        S3Face(platform).resolve(_request("POST", "/"))


@pytest.mark.parametrize(("table", "operation"), [e for e in ENTRIES if e.values[0].model_name in
                                                   ("sagemaker", "glue", "athena", "logs")])
def test_every_json_entry_is_what_its_target_resolves_to(table: OperationTable, operation: Operation):
    cls = next(c for c in face_classes().values() if c.operations is table)
    request = _request(headers={"x-amz-target": f"{cls.wire.target_prefix}.{operation.name}"}, body=b"{}")
    try:
        call = cls.wire.resolve(request)
    except ValidationError as error:  # resolved, then refused for its missing required members
        assert "validation error" in error.message, error.message
    else:
        assert call.operation is operation and call.params == {}


def test_a_json_operation_without_an_entry_is_unknown():
    cls = face_classes()["sagemaker"]
    assert "ListAlgorithms" in _model("sagemaker").operation_names and "ListAlgorithms" not in cls.operations
    with pytest.raises(UnknownOperation, match="Operation ListAlgorithms is not supported by sagelab's"):
        cls.wire.resolve(_request(headers={"x-amz-target": "SageMaker.ListAlgorithms"}, body=b"{}"))


def test_query_and_runtime_requests_resolve_to_their_entries(platform: Platform):
    sts = face_classes()["sts"]
    call = sts.wire.resolve(_request(body=b"Action=GetCallerIdentity&Version=2011-06-15"))
    assert call.operation is sts.operations["GetCallerIdentity"]
    runtime = RuntimeFace(platform)
    call = runtime.resolve(_request("POST", "/endpoints/My%20Endpoint/invocations", body=b"1,2"))
    assert call.operation is RuntimeFace.operations["InvokeEndpoint"] and call.params == {
        "EndpointName": "My Endpoint"}


# --- the guard hook: an enforcer sees the operation and its parameters before the handler runs ------------
class Refused(SagelabError):
    code = "AccessDeniedException"
    s3_code = "AccessDenied"
    status = 403


def _send(app: SagelabApp, method: str, path: str, *, service: str, body: bytes = b"",
          headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request through the ASGI app, auth off, with a credential scope naming `service`."""
    credential = f"AKID/20240101/{REGION}/{service}/aws4_request"
    scope_headers = {"authorization": f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, "
                                      f"Signature={'0' * 64}", "host": "localhost", **(headers or {})}
    raw_path, _, query = path.partition("?")
    scope = {"type": "http", "method": method, "path": raw_path, "raw_path": raw_path.encode(),
             "query_string": query.encode(),
             "headers": [(k.encode(), v.encode()) for k, v in scope_headers.items()]}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_guards_see_each_call_before_its_handler_and_can_refuse_it(platform: Platform):
    platform.open()  # the allowed call's handler reads the account
    seen = []

    def guard(request, operation, params):
        seen.append((operation.name, dict(params), request.operation is operation))
        if operation.name != "GetCallerIdentity":
            raise Refused(f"{operation.action} on {operation.resource} is not allowed.")

    app = SagelabApp(build_faces(platform), None, default_region=REGION, account_id=ACCOUNT_ID,
                     guards=[guard])
    status, body = _send(app, "POST", "/", service="sts", body=b"Action=GetCallerIdentity&Version=2011-06-15",
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert status == 200 and b"<GetCallerIdentityResult>" in body

    status, body = _send(app, "PUT", "/bucket/key.csv", service="s3", body=b"a,b\n")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"s3:PutObject" in body

    status, body = _send(app, "POST", "/endpoints/prod/invocations", service="sagemaker", body=b"1,2",
                         headers={"content-type": "text/csv"})  # answered on the event loop
    assert status == 403 and b"AccessDeniedException" in body

    assert seen == [("GetCallerIdentity", {}, True),
                    ("PutObject", {"Bucket": "bucket", "Key": "key.csv"}, True),
                    ("InvokeEndpoint", {"EndpointName": "prod"}, True)]
    assert not (platform.home.lake / "bucket").exists(), "a refused call reached its handler"
    platform.close()
