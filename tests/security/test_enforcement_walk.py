"""Every answered operation of every face is enforced: a user without policies is refused each one.

The requests are built generically from botocore's input shapes (every required member, with a placeholder
value), sent by real boto3 clients. A refusal comes before any business rule and before input validation
(AWS authorizes first), so placeholders that no handler would accept are refused for want of permission,
never answered as invalid input.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import botocore.config
import pytest
from botocore.model import Shape
from iam_kit import User, allow

from sagelab.api.faces import face_classes, operation_tables

#: The code each protocol refuses with.
DENIED_CODE = {"json": "AccessDeniedException", "rest-json": "AccessDeniedException", "s3": "AccessDenied",
               "query": "AccessDenied", "cbor": "AccessDenied"}
CONFIG = botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"},
                                parameter_validation=False)


def _protocols() -> dict[str, str]:
    from sagelab.api.runtime import RuntimeFace

    found = {cls.operations.model_name: cls.protocol for cls in face_classes().values()}
    return {**found, RuntimeFace.operations.model_name: RuntimeFace.protocol}


def placeholder(shape: Shape, depth: int = 0) -> Any:
    """A value of the shape: required members only, strings and lists as long as their minimum asks."""
    kind = shape.type_name
    minimum = shape.metadata.get("min", 0)
    if kind == "structure":
        return {member: placeholder(shape.members[member], depth + 1) for member in shape.required_members}
    if kind == "list":
        return [placeholder(shape.member, depth + 1) for _ in range(max(1, int(minimum)))]
    if kind == "map":
        return {"placeholder": placeholder(shape.value, depth + 1)}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        return "placeholder".ljust(int(minimum), "x")
    if kind in ("integer", "long"):
        return max(1, int(minimum))
    if kind in ("float", "double"):
        return float(max(1, minimum))
    if kind == "boolean":
        return False
    if kind == "timestamp":
        return dt.datetime.now(dt.UTC)
    if kind == "blob":
        return b"x" * max(1, int(minimum))
    raise AssertionError(f"no placeholder for a {kind}")


def request_for(client, operation: str) -> dict[str, Any]:
    shape = client.meta.service_model.operation_model(operation).input_shape
    params = placeholder(shape) if shape is not None else {}
    if "CopySource" in params:
        params["CopySource"] = "placeholder-bucket/placeholder"
    if "Bucket" in params:
        params["Bucket"] = "placeholder-bucket"
    return params


ENTRIES = [pytest.param(table.model_name, operation, id=f"{table.model_name}:{operation.name}")
           for table in operation_tables() for operation in table]


@pytest.fixture(scope="module")
def placeholder_bucket(server):
    """The bucket every S3 request names: DeleteObjects authorizes its keys only once the bucket is found."""
    server.client("s3").create_bucket(Bucket="placeholder-bucket")


@pytest.fixture(scope="module")
def nobody(server, placeholder_bucket):
    return User(server, server.client("iam"))


@pytest.fixture(scope="module")
def lister(server, placeholder_bucket):
    return User(server, server.client("iam"), allow("sagemaker:ListModels"))


def _refusal(model: str, operation) -> tuple[int, str]:
    if operation.per_item:  # DeleteObjects answers 200 and refuses each key in its Errors, as S3 does
        return 200, "AccessDenied"
    # A HEAD answer has no body: botocore names its error by the status alone.
    return 403, "403" if operation.name.startswith("Head") else DENIED_CODE[_protocols()[model]]


def _send(user: User, model: str, operation: str) -> tuple[int, str]:
    """(status, error code); an operation that authorizes item by item reports its first item's code."""
    client = user.client(model, config=CONFIG)
    method = getattr(client, _method_name(client, operation))
    try:
        response = method(**request_for(client, operation))
    except client.exceptions.ClientError as error:
        return error.response["ResponseMetadata"]["HTTPStatusCode"], error.response["Error"]["Code"]
    items = response.get("Errors", [])
    return response["ResponseMetadata"]["HTTPStatusCode"], items[0]["Code"] if items else ""


def _method_name(client, operation: str) -> str:
    return next(method for method, api in client.meta.method_to_api_mapping.items() if api == operation)


@pytest.mark.parametrize(("model", "operation"), ENTRIES)
def test_a_user_without_policies_is_refused_every_operation_but_the_always_allowed(nobody, model, operation):
    status, code = _send(nobody, model, operation.name)
    if operation.always_allowed:
        assert (status, code) == (200, ""), f"{operation.name} needs no permission"
        return
    assert (status, code) == _refusal(model, operation), operation.name


@pytest.mark.parametrize(("model", "operation"), ENTRIES)
def test_a_user_allowed_one_action_gets_it_and_is_refused_the_rest(lister, model, operation):
    status, code = _send(lister, model, operation.name)
    if operation.always_allowed or operation.action == "sagemaker:ListModels":
        assert (status, code) == (200, ""), operation.name
        return
    assert (status, code) == _refusal(model, operation), operation.name


def test_the_refusal_names_the_user_the_action_and_the_resource(lister):
    s3 = lister.client("s3")
    with pytest.raises(s3.exceptions.ClientError) as raised:
        s3.get_object(Bucket="placeholder-bucket", Key="a/b.csv")
    assert raised.value.response["Error"]["Message"] == (
        f'User: {lister.arn} is not authorized to perform: s3:GetObject on resource: '
        '"arn:aws:s3:::placeholder-bucket/a/b.csv" because no identity-based policy allows the s3:GetObject action')
    sm = lister.client("sagemaker")
    with pytest.raises(sm.exceptions.ClientError) as raised:
        sm.describe_model(ModelName="Churn")
    account = lister.arn.split(":")[4]
    assert raised.value.response["Error"]["Message"] == (
        f"User: {lister.arn} is not authorized to perform: sagemaker:DescribeModel on resource: "
        f"arn:aws:sagemaker:us-east-1:{account}:model/churn because no identity-based policy allows the "
        "sagemaker:DescribeModel action")


def test_invalid_input_from_a_refused_caller_is_refused_not_corrected(lister):
    sm = lister.client("sagemaker", config=CONFIG)
    with pytest.raises(sm.exceptions.ClientError) as raised:
        sm.describe_training_job(TrainingJobName="not a valid name!")
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    # ... while an allowed caller is told what is wrong with the input.
    with pytest.raises(sm.exceptions.ClientError) as raised:
        sm.list_models(MaxResults=0)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
