"""The Athena face (AWS JSON 1.1, target prefix `AmazonAthena`). Translation only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.api.operations import ATHENA, Call, OperationTable
from sagelab.pagination import page

if TYPE_CHECKING:
    from sagelab.platform import Platform

op = ATHENA.op
WORKGROUP = "workgroup/{WorkGroup}"
# A query execution is named by its id, and IAM scopes it by its workgroup, which only the execution knows.
EXECUTION = "*"


class AthenaFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def athena(self):  # -> AthenaService, resolved per call
        return self.platform.athena

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    def start_query_execution(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        from sagelab.lakeformation.access import view_for

        # The query reads each table as far as the caller's Lake Formation grants let it.
        view = view_for(self.platform.lakeformation, request.caller)
        gate = None if view is None else view.access
        return {"QueryExecutionId": self.athena.start(params, request.region, gate=gate)}

    def list_workgroups(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        items, more = page(self.athena.list_workgroups(request.region), params, default_size=50, max_size=50)
        return {"WorkGroups": items, **more}

    operations = OperationTable("athena", ATHENA, (
        op("StartQueryExecution", start_query_execution, WORKGROUP),
        op("GetQueryExecution", lambda face, p, r: {
            "QueryExecution": face.athena.describe(p["QueryExecutionId"])}, EXECUTION, read_only=True),
        op("BatchGetQueryExecution", lambda face, p, r: face.athena.batch_describe(p["QueryExecutionIds"]),
           EXECUTION, read_only=True),
        op("ListQueryExecutions", lambda face, p, r: face.athena.list(p, r.region), WORKGROUP,
           read_only=True),
        op("StopQueryExecution", lambda face, p, r: face.athena.stop(p["QueryExecutionId"]), EXECUTION),
        op("GetQueryResults", lambda face, p, r: face.athena.get_results(p), EXECUTION, read_only=True),
        op("CreateWorkGroup", lambda face, p, r: face.athena.create_workgroup(p, r.region),
           "workgroup/{Name}"),
        op("GetWorkGroup", lambda face, p, r: {
            "WorkGroup": face.athena.get_workgroup(p["WorkGroup"], r.region)}, WORKGROUP, read_only=True),
        op("ListWorkGroups", list_workgroups, read_only=True),
        op("UpdateWorkGroup", lambda face, p, r: face.athena.update_workgroup(p, r.region), WORKGROUP),
        op("DeleteWorkGroup", lambda face, p, r: face.athena.delete_workgroup(
            p["WorkGroup"], r.region, bool(p.get("RecursiveDeleteOption"))), WORKGROUP),
    ))
    wire = JsonService("AmazonAthena", operations)
