"""The Athena face (AWS JSON 1.1, target prefix `AmazonAthena`). Translation only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.pagination import page

if TYPE_CHECKING:
    from sagelab.platform import Platform


class AthenaFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        athena = lambda: platform.athena  # noqa: E731 - resolved per call
        self.json = JsonService("athena", "AmazonAthena", {
            "StartQueryExecution": lambda p, r: {"QueryExecutionId": athena().start(p, r.region)},
            "GetQueryExecution": lambda p, r: {"QueryExecution": athena().describe(p["QueryExecutionId"])},
            "BatchGetQueryExecution": lambda p, r: athena().batch_describe(p["QueryExecutionIds"]),
            "ListQueryExecutions": lambda p, r: athena().list(p, r.region),
            "StopQueryExecution": lambda p, r: athena().stop(p["QueryExecutionId"]),
            "GetQueryResults": lambda p, r: athena().get_results(p),
            "CreateWorkGroup": lambda p, r: athena().create_workgroup(p, r.region),
            "GetWorkGroup": lambda p, r: {"WorkGroup": athena().get_workgroup(p["WorkGroup"], r.region)},
            "ListWorkGroups": self.list_workgroups,
            "UpdateWorkGroup": lambda p, r: athena().update_workgroup(p, r.region),
            "DeleteWorkGroup": lambda p, r: athena().delete_workgroup(
                p["WorkGroup"], r.region, bool(p.get("RecursiveDeleteOption"))),
        })
        self.platform = platform

    def handle(self, request: Request) -> Response:
        return self.json.handle(request)

    def list_workgroups(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        items, more = page(self.platform.athena.list_workgroups(request.region), params, default_size=50, max_size=50)
        return {"WorkGroups": items, **more}
