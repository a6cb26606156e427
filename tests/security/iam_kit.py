"""Helpers for the IAM tests: users with keys and policies on a running server, and their clients."""

from __future__ import annotations

import json
import uuid
from typing import Any

import botocore.config
import botocore.exceptions
import pytest

NO_RETRY = botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class User:
    """An IAM user created through the real IAM API, with one access key."""

    def __init__(self, server, iam, *statements: dict[str, Any], user_name: str | None = None):
        self.server = server
        self.name = user_name or name("user")
        self.arn = iam.create_user(UserName=self.name)["User"]["Arn"]
        key = iam.create_access_key(UserName=self.name)["AccessKey"]
        self.access_key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        if statements:
            iam.put_user_policy(UserName=self.name, PolicyName="inline", PolicyDocument=policy(*statements))

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.server.client(service, aws_access_key_id=self.access_key_id,
                                  aws_secret_access_key=self.secret, config=kwargs.pop("config", NO_RETRY),
                                  **kwargs)


def error_of(call) -> dict[str, Any]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response = raised.value.response
    return {"status": response["ResponseMetadata"]["HTTPStatusCode"], **response["Error"]}
