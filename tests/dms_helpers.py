"""Helpers for the DMS tests: a replication instance, table mappings, and waits on a task's status."""

from __future__ import annotations

import json
import time

from conftest import unique

ALL_TABLES = json.dumps({"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "all",
                                    "rule-action": "include", "object-locator": {"schema-name": "%",
                                                                                 "table-name": "%"}}]})
#: Waiters poll every 0.2 s (botocore sleeps the Delay it is given): sagelab settles in a fraction of a second.
FAST = {"Delay": 0.2, "MaxAttempts": 300}


def instance(dms) -> dict:
    """A replication instance, once it is available."""
    made = dms.create_replication_instance(ReplicationInstanceIdentifier=unique("rep"),
                                           ReplicationInstanceClass="dms.t3.medium")["ReplicationInstance"]
    assert made["ReplicationInstanceStatus"] == "creating"
    dms.get_waiter("replication_instance_available").wait(
        Filters=[{"Name": "replication-instance-arn", "Values": [made["ReplicationInstanceArn"]]}],
        WaiterConfig=FAST)
    return made


def describe_task(dms, arn: str) -> dict:
    return dms.describe_replication_tasks(
        Filters=[{"Name": "replication-task-arn", "Values": [arn]}])["ReplicationTasks"][0]


def wait_task(dms, arn: str, status: str, timeout: float = 60) -> dict:
    """The task once it is in `status` (a failure on the way is reported with its message)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = describe_task(dms, arn)
        if task["Status"] == status:
            return task
        if task["Status"] == "failed":
            raise AssertionError(f"task failed: {task.get('LastFailureMessage')}")
        time.sleep(0.1)
    raise TimeoutError(f"{arn} is {task['Status']}, not {status}")


def wait_until(check, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(what)
