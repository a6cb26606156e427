"""The Glue face (AWS JSON 1.1, target prefix `AWSGlue`): Data Catalog, crawlers, pythonshell jobs.
Translation only: the catalog, the crawler service and the job service do the work."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.api.operations import GLUE, Call, OperationTable
from sagelab.pagination import page

if TYPE_CHECKING:
    from sagelab.platform import Platform

op = GLUE.op
# Data Catalog ARNs: IAM also checks the catalog and the database above a table; the table is what is named.
DATABASE = "database/{Name}"
TABLE = "table/{DatabaseName}/{Name}"
PARTITIONS = "table/{DatabaseName}/{TableName}"
CRAWLER = "crawler/{Name}"
JOB = "job/{JobName}"


class GlueFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform

    # The services are reached per call, after the platform is open.
    @property
    def catalog(self):  # -> CatalogStore
        return self.platform.catalog

    @property
    def crawlers(self):  # -> CrawlerService
        return self.platform.crawlers

    @property
    def jobs(self):  # -> GlueJobService
        return self.platform.glue_jobs

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    def _held(self, request: Request):  # -> CallerView | None: what Lake Formation lets the caller see
        from sagelab.lakeformation.access import view_for

        return view_for(self.platform.lakeformation, request.caller)

    def get_database(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        doc = self.catalog.get_database(params["Name"])
        view = self._held(request)
        return {"Database": doc if view is None else view.database(doc)}

    def get_databases(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        docs = self.catalog.list_databases()
        view = self._held(request)
        return self._page("DatabaseList", docs if view is None else view.databases(docs), params, 100)

    def create_database(self, params: dict[str, Any], request: Request) -> None:
        spec = params["DatabaseInput"]
        if "CreateTableDefaultPermissions" not in spec:  # new databases take the data lake's defaults
            spec = {**spec, "CreateTableDefaultPermissions":
                    self.platform.lakeformation.settings()["CreateTableDefaultPermissions"]}
        self.catalog.create_database(spec)

    def delete_database(self, params: dict[str, Any], request: Request) -> None:
        view = self._held(request)
        if view is not None:
            view.require("DROP", self.catalog.get_database(params["Name"]))
        self.catalog.delete_database(params["Name"])

    def create_table(self, params: dict[str, Any], request: Request) -> None:
        view = self._held(request)
        if view is not None:
            view.require("CREATE_TABLE", self.catalog.get_database(params["DatabaseName"]))
        doc = self.catalog.create_table(params["DatabaseName"], params["TableInput"])
        if view is not None:  # as in AWS, whoever makes a table holds everything on it
            view.made(doc)

    def update_table(self, params: dict[str, Any], request: Request) -> None:
        view = self._held(request)
        if view is not None:
            view.require("ALTER", self.catalog.get_table(params["DatabaseName"], params["TableInput"]["Name"]))
        self.catalog.update_table(params["DatabaseName"], params["TableInput"])

    def delete_table(self, params: dict[str, Any], request: Request) -> None:
        view = self._held(request)
        if view is not None:
            view.require("DROP", self.catalog.get_table(params["DatabaseName"], params["Name"]))
        self.catalog.delete_table(params["DatabaseName"], params["Name"])

    def get_table(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        doc = self.catalog.get_table(params["DatabaseName"], params["Name"])
        view = self._held(request)
        return {"Table": doc if view is None else view.table(doc)}

    def get_tables(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        docs = self.catalog.list_tables(params["DatabaseName"], params.get("Expression"))
        view = self._held(request)
        if view is not None:
            view.database(self.catalog.get_database(params["DatabaseName"]))
        return self._page("TableList", docs if view is None else view.tables(docs), params, 100)

    def _readable_partitions(self, params: dict[str, Any], request: Request) -> None:
        """Partitions belong to their table: hidden with it from a caller Lake Formation does not let see it."""
        view = self._held(request)
        if view is not None:
            view.table(self.catalog.get_table(params["DatabaseName"], params["TableName"]))

    @staticmethod
    def _page(key: str, items: list[Any], params: dict[str, Any], max_size: int) -> dict[str, Any]:
        chunk, more = page(items, params, default_size=max_size, max_size=max_size)
        return {key: chunk, **more}

    def batch_delete_table(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        errors = []
        for name in params["TablesToDelete"]:
            try:
                self.catalog.delete_table(params["DatabaseName"], name)
            except Exception as exc:  # noqa: BLE001 - reported per table, as Glue does
                code = getattr(exc, "code", "InternalServiceException")
                errors.append({"TableName": name, "ErrorDetail": {"ErrorCode": code, "ErrorMessage": str(exc)}})
        return {"Errors": errors}

    def get_partitions(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        self._readable_partitions(params, request)
        partitions = self.catalog.list_partitions(params["DatabaseName"], params["TableName"],
                                                           params.get("Expression"))
        if params.get("ExcludeColumnSchema"):
            for partition in partitions:
                partition["StorageDescriptor"].pop("Columns", None)
        return self._page("Partitions", partitions, params, 1000)

    def get_partition(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        self._readable_partitions(params, request)
        return {"Partition": self.catalog.get_partition(params["DatabaseName"], params["TableName"],
                                                        params["PartitionValues"])}

    def create_partition(self, params: dict[str, Any], request: Request) -> None:
        from sagelab.errors import AlreadyExistsError, InvalidInput

        errors = self.catalog.create_partitions(params["DatabaseName"], params["TableName"],
                                                         [params["PartitionInput"]])
        if errors:
            detail = errors[0]["ErrorDetail"]
            error_type = AlreadyExistsError if detail["ErrorCode"] == "AlreadyExistsException" else InvalidInput
            raise error_type(detail["ErrorMessage"])

    def delete_partition(self, params: dict[str, Any], request: Request) -> None:
        from sagelab.errors import EntityNotFound

        errors = self.catalog.delete_partitions(params["DatabaseName"], params["TableName"],
                                                         [params["PartitionValues"]])
        if errors:
            raise EntityNotFound(errors[0]["ErrorDetail"]["ErrorMessage"])

    operations = OperationTable("glue", GLUE, (
        # --- Data Catalog -------------------------------------------------------------------------------
        op("CreateDatabase", create_database, "database/{DatabaseInput.Name}"),
        op("GetDatabase", get_database, DATABASE, read_only=True),
        op("GetDatabases", get_databases, "catalog", read_only=True),
        op("UpdateDatabase", lambda face, p, r: face.catalog.update_database(p["Name"], p["DatabaseInput"]),
           DATABASE),
        op("DeleteDatabase", delete_database, DATABASE),
        op("CreateTable", create_table, "table/{DatabaseName}/{TableInput.Name}"),
        op("GetTable", get_table, TABLE, read_only=True),
        op("GetTables", get_tables, "database/{DatabaseName}", read_only=True),
        op("UpdateTable", update_table, "table/{DatabaseName}/{TableInput.Name}"),
        op("DeleteTable", delete_table, TABLE),
        # Each table named in TablesToDelete is a table/{DatabaseName}/<name> resource of the same action.
        op("BatchDeleteTable", batch_delete_table, "database/{DatabaseName}"),
        op("CreatePartition", create_partition, PARTITIONS),
        op("BatchCreatePartition", lambda face, p, r: {"Errors": face.catalog.create_partitions(
            p["DatabaseName"], p["TableName"], p["PartitionInputList"])}, PARTITIONS),
        op("GetPartition", get_partition, PARTITIONS, read_only=True),
        op("GetPartitions", get_partitions, PARTITIONS, read_only=True),
        op("DeletePartition", delete_partition, PARTITIONS),
        op("BatchDeletePartition", lambda face, p, r: {"Errors": face.catalog.delete_partitions(
            p["DatabaseName"], p["TableName"], [e["Values"] for e in p["PartitionsToDelete"]])}, PARTITIONS),
        # --- crawlers -----------------------------------------------------------------------------------
        op("CreateCrawler", lambda face, p, r: face.crawlers.create(p, region=r.region), CRAWLER),
        op("UpdateCrawler", lambda face, p, r: face.crawlers.update(p), CRAWLER),
        op("StartCrawler", lambda face, p, r: face.crawlers.start(p["Name"]), CRAWLER),
        op("StopCrawler", lambda face, p, r: face.crawlers.stop(p["Name"]), CRAWLER),
        op("GetCrawler", lambda face, p, r: {"Crawler": face.crawlers.describe(p["Name"])}, CRAWLER,
           read_only=True),
        op("GetCrawlers", lambda face, p, r: face._page("Crawlers", face.crawlers.list(), p, 100),
           read_only=True),
        op("ListCrawlers", lambda face, p, r: face._page(
            "CrawlerNames", [c["Name"] for c in face.crawlers.list()], p, 100), read_only=True),
        op("GetCrawlerMetrics", lambda face, p, r: face._page("CrawlerMetricsList", face.crawlers.metrics(
            p.get("CrawlerNameList")), p, 100), read_only=True),
        op("DeleteCrawler", lambda face, p, r: face.crawlers.delete(p["Name"]), CRAWLER),
        # --- jobs, their runs and bookmarks: all scoped to the job ---------------------------------------
        op("CreateJob", lambda face, p, r: {"Name": face.jobs.create(p, region=r.region)}, "job/{Name}"),
        op("UpdateJob", lambda face, p, r: {"JobName": face.jobs.update(p["JobName"], p["JobUpdate"])}, JOB),
        op("GetJob", lambda face, p, r: {"Job": face.jobs.describe(p["JobName"])}, JOB, read_only=True),
        op("GetJobs", lambda face, p, r: face._page("Jobs", face.jobs.list(), p, 100), read_only=True),
        op("ListJobs", lambda face, p, r: face._page(
            "JobNames", [j["Name"] for j in face.jobs.list()], p, 100), read_only=True),
        op("DeleteJob", lambda face, p, r: {"JobName": face.jobs.delete(p["JobName"])}, JOB),
        op("StartJobRun", lambda face, p, r: {"JobRunId": face.jobs.start_run(p)}, JOB),
        op("GetJobRun", lambda face, p, r: {"JobRun": face.jobs.describe_run(p["JobName"], p["RunId"])}, JOB,
           read_only=True),
        op("GetJobRuns", lambda face, p, r: face._page("JobRuns", face.jobs.list_runs(p["JobName"]), p, 200),
           JOB, read_only=True),
        op("BatchStopJobRun", lambda face, p, r: face.jobs.stop_runs(p["JobName"], p["JobRunIds"]), JOB),
        op("GetJobBookmark", lambda face, p, r: {"JobBookmarkEntry": face.jobs.bookmark(p["JobName"])}, JOB,
           read_only=True),
        op("ResetJobBookmark", lambda face, p, r: {
            "JobBookmarkEntry": face.jobs.reset_bookmark(p["JobName"])}, JOB),
    ))
    wire = JsonService("AWSGlue", operations)
