"""The Database Migration Service face (AWS JSON 1.1, target prefix `AmazonDMSv20160101`). Translation only.

Endpoints, replication instances and connection tests live in `sagelab.dms.endpoints`; replication tasks,
which copy a source database into the lake, in `sagelab.dms.tasks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request
from sagelab.api.json_protocol import JsonService
from sagelab.api.operations import DMS, Call, OperationTable

if TYPE_CHECKING:
    from sagelab.api.http import Response
    from sagelab.dms.endpoints import EndpointService
    from sagelab.dms.tasks import ReplicationTaskService
    from sagelab.platform import Platform

op = DMS.op


class DmsFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def endpoints(self) -> EndpointService:
        return self.platform.dms_endpoints

    @property
    def tasks(self) -> ReplicationTaskService:
        return self.platform.dms_tasks

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    # --- handlers -------------------------------------------------------------------------------------
    def create_endpoint(self, p: dict[str, Any], r: Request) -> dict[str, Any]:
        return {"Endpoint": self.endpoints.create_endpoint(p, r.region)}

    def delete_endpoint(self, p: dict[str, Any], r: Request) -> dict[str, Any]:
        return {"Endpoint": self.endpoints.delete_endpoint(p["EndpointArn"], self.tasks.using)}

    def delete_replication_instance(self, p: dict[str, Any], r: Request) -> dict[str, Any]:
        return {"ReplicationInstance": self.endpoints.delete_instance(p["ReplicationInstanceArn"], self.tasks.using)}

    operations = OperationTable("dms", DMS, (
        op("CreateEndpoint", create_endpoint),
        op("DescribeEndpoints", lambda face, p, r: face.endpoints.describe_endpoints(p), read_only=True),
        op("ModifyEndpoint", lambda face, p, r: {"Endpoint": face.endpoints.modify_endpoint(p)}, "{EndpointArn}"),
        op("DeleteEndpoint", delete_endpoint, "{EndpointArn}"),
        op("TestConnection", lambda face, p, r: {"Connection": face.endpoints.test_connection(
            p["ReplicationInstanceArn"], p["EndpointArn"])}, "{ReplicationInstanceArn}"),
        op("DescribeConnections", lambda face, p, r: face.endpoints.describe_connections(p), read_only=True),
        op("CreateReplicationInstance", lambda face, p, r: {
            "ReplicationInstance": face.endpoints.create_instance(p, r.region)}),
        op("DescribeReplicationInstances", lambda face, p, r: face.endpoints.describe_instances(p), read_only=True),
        op("DeleteReplicationInstance", delete_replication_instance, "{ReplicationInstanceArn}"),
        op("CreateReplicationTask", lambda face, p, r: {"ReplicationTask": face.tasks.create(p, r.region)}),
        op("DescribeReplicationTasks", lambda face, p, r: face.tasks.describe(p), read_only=True),
        op("DeleteReplicationTask", lambda face, p, r: {"ReplicationTask": face.tasks.delete(p["ReplicationTaskArn"])},
           "{ReplicationTaskArn}"),
        op("StartReplicationTask", lambda face, p, r: {"ReplicationTask": face.tasks.start(
            p["ReplicationTaskArn"], p["StartReplicationTaskType"])}, "{ReplicationTaskArn}"),
        op("StopReplicationTask", lambda face, p, r: {"ReplicationTask": face.tasks.stop(p["ReplicationTaskArn"])},
           "{ReplicationTaskArn}"),
        op("DescribeTableStatistics", lambda face, p, r: face.tasks.table_statistics(p), "{ReplicationTaskArn}",
           read_only=True),
    ))
    wire = JsonService("AmazonDMSv20160101", operations)
