"""The Glue face (AWS JSON 1.1, target prefix `AWSGlue`): Data Catalog, crawlers, pythonshell jobs.
Translation only: the catalog, the crawler service and the job service do the work."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.http import Request, Response
from sagelab.api.json_protocol import JsonService
from sagelab.pagination import page

if TYPE_CHECKING:
    from sagelab.platform import Platform


class GlueFace:
    protocol = "json"

    def __init__(self, platform: Platform):
        self.platform = platform
        catalog = lambda: platform.catalog  # noqa: E731 - resolved per call, after the platform is open
        self.json = JsonService("glue", "AWSGlue", {
            "CreateDatabase": lambda p, r: catalog().create_database(p["DatabaseInput"]) and None,
            "GetDatabase": lambda p, r: {"Database": catalog().get_database(p["Name"])},
            "GetDatabases": lambda p, r: self._page("DatabaseList", catalog().list_databases(), p, 100),
            "UpdateDatabase": lambda p, r: catalog().update_database(p["Name"], p["DatabaseInput"]),
            "DeleteDatabase": lambda p, r: catalog().delete_database(p["Name"]),
            "CreateTable": lambda p, r: catalog().create_table(p["DatabaseName"], p["TableInput"]) and None,
            "GetTable": lambda p, r: {"Table": catalog().get_table(p["DatabaseName"], p["Name"])},
            "GetTables": lambda p, r: self._page("TableList", catalog().list_tables(
                p["DatabaseName"], p.get("Expression")), p, 100),
            "UpdateTable": lambda p, r: catalog().update_table(p["DatabaseName"], p["TableInput"]) and None,
            "DeleteTable": lambda p, r: catalog().delete_table(p["DatabaseName"], p["Name"]),
            "BatchDeleteTable": self.batch_delete_table,
            "CreatePartition": self.create_partition,
            "BatchCreatePartition": lambda p, r: {"Errors": catalog().create_partitions(
                p["DatabaseName"], p["TableName"], p["PartitionInputList"])},
            "GetPartition": lambda p, r: {"Partition": catalog().get_partition(
                p["DatabaseName"], p["TableName"], p["PartitionValues"])},
            "GetPartitions": self.get_partitions,
            "DeletePartition": self.delete_partition,
            "BatchDeletePartition": lambda p, r: {"Errors": catalog().delete_partitions(
                p["DatabaseName"], p["TableName"], [e["Values"] for e in p["PartitionsToDelete"]])},
            "CreateCrawler": lambda p, r: platform.crawlers.create(p, region=r.region),
            "UpdateCrawler": lambda p, r: platform.crawlers.update(p),
            "StartCrawler": lambda p, r: platform.crawlers.start(p["Name"]),
            "StopCrawler": lambda p, r: platform.crawlers.stop(p["Name"]),
            "GetCrawler": lambda p, r: {"Crawler": platform.crawlers.describe(p["Name"])},
            "GetCrawlers": lambda p, r: self._page("Crawlers", platform.crawlers.list(), p, 100),
            "ListCrawlers": lambda p, r: self._page("CrawlerNames", [c["Name"] for c in platform.crawlers.list()],
                                                    p, 100),
            "GetCrawlerMetrics": lambda p, r: self._page("CrawlerMetricsList", platform.crawlers.metrics(
                p.get("CrawlerNameList")), p, 100),
            "DeleteCrawler": lambda p, r: platform.crawlers.delete(p["Name"]),
            "CreateJob": lambda p, r: {"Name": platform.glue_jobs.create(p, region=r.region)},
            "UpdateJob": lambda p, r: {"JobName": platform.glue_jobs.update(p["JobName"], p["JobUpdate"])},
            "GetJob": lambda p, r: {"Job": platform.glue_jobs.describe(p["JobName"])},
            "GetJobs": lambda p, r: self._page("Jobs", platform.glue_jobs.list(), p, 100),
            "ListJobs": lambda p, r: self._page("JobNames", [j["Name"] for j in platform.glue_jobs.list()], p, 100),
            "DeleteJob": lambda p, r: {"JobName": platform.glue_jobs.delete(p["JobName"])},
            "StartJobRun": lambda p, r: {"JobRunId": platform.glue_jobs.start_run(p)},
            "GetJobRun": lambda p, r: {"JobRun": platform.glue_jobs.describe_run(p["JobName"], p["RunId"])},
            "GetJobRuns": lambda p, r: self._page("JobRuns", platform.glue_jobs.list_runs(p["JobName"]), p, 200),
            "BatchStopJobRun": lambda p, r: platform.glue_jobs.stop_runs(p["JobName"], p["JobRunIds"]),
            "GetJobBookmark": lambda p, r: {"JobBookmarkEntry": platform.glue_jobs.bookmark(p["JobName"])},
            "ResetJobBookmark": lambda p, r: {"JobBookmarkEntry": platform.glue_jobs.reset_bookmark(p["JobName"])},
        })

    def handle(self, request: Request) -> Response:
        return self.json.handle(request)

    @staticmethod
    def _page(key: str, items: list[Any], params: dict[str, Any], max_size: int) -> dict[str, Any]:
        chunk, more = page(items, params, default_size=max_size, max_size=max_size)
        return {key: chunk, **more}

    def batch_delete_table(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        errors = []
        for name in params["TablesToDelete"]:
            try:
                self.platform.catalog.delete_table(params["DatabaseName"], name)
            except Exception as exc:  # noqa: BLE001 - reported per table, as Glue does
                code = getattr(exc, "code", "InternalServiceException")
                errors.append({"TableName": name, "ErrorDetail": {"ErrorCode": code, "ErrorMessage": str(exc)}})
        return {"Errors": errors}

    def get_partitions(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        partitions = self.platform.catalog.list_partitions(params["DatabaseName"], params["TableName"],
                                                           params.get("Expression"))
        if params.get("ExcludeColumnSchema"):
            for partition in partitions:
                partition["StorageDescriptor"].pop("Columns", None)
        return self._page("Partitions", partitions, params, 1000)

    def create_partition(self, params: dict[str, Any], request: Request) -> None:
        from sagelab.errors import AlreadyExistsError, InvalidInput

        errors = self.platform.catalog.create_partitions(params["DatabaseName"], params["TableName"],
                                                         [params["PartitionInput"]])
        if errors:
            detail = errors[0]["ErrorDetail"]
            error_type = AlreadyExistsError if detail["ErrorCode"] == "AlreadyExistsException" else InvalidInput
            raise error_type(detail["ErrorMessage"])

    def delete_partition(self, params: dict[str, Any], request: Request) -> None:
        from sagelab.errors import EntityNotFound

        errors = self.platform.catalog.delete_partitions(params["DatabaseName"], params["TableName"],
                                                         [params["PartitionValues"]])
        if errors:
            raise EntityNotFound(errors[0]["ErrorDetail"]["ErrorMessage"])
