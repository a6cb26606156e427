"""Glue crawlers: create, start, stop, get, list, metrics; each crawl runs on a thread of the server.

State: READY -> RUNNING -> (STOPPING ->) READY, with LastCrawl telling how the crawl ended (SUCCEEDED,
FAILED with its ErrorMessage, CANCELLED). A crawl's log is kept in `<home>/logs/Crawlers/<name>.log`.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from typing import Any

from sagelab.account import Account, HomePaths
from sagelab.catalog.crawl import Crawl, CrawlCancelled
from sagelab.catalog.store import CatalogStore
from sagelab.errors import (
    AlreadyExistsError,
    CrawlerNotRunning,
    CrawlerRunning,
    EntityNotFound,
    InvalidInput,
    SagelabError,
)
from sagelab.iam.role_access import CRAWLER_SESSION, RoleAccess, RoleAccessDenied
from sagelab.lake.blobs import BlobStore
from sagelab.lake.uris import parse_s3_uri
from sagelab.storage.resources import AlreadyExists, LeaseLost, NotFound, Resource, ResourceStore, public

KIND = "glue-crawler"
LOG_GROUP = "/aws-glue/crawlers"
SERVER_STOPPED = "sagelab server stopped during the crawl; start the crawler again."
_DEFAULTS = {
    "Classifiers": [], "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVERYTHING"},
    "SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "DEPRECATE_IN_DATABASE"},
    "LineageConfiguration": {"CrawlerLineageSettings": "DISABLE"},
    "LakeFormationConfiguration": {"UseLakeFormationCredentials": False, "AccountId": ""},
}


class CrawlerService:
    def __init__(self, *, resources: ResourceStore, account: Account, home: HomePaths, blobs: BlobStore,
                 catalog: CatalogStore):
        self.resources = resources
        self.account = account
        self.home = home
        self.blobs = blobs
        self.catalog = catalog
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def log_path(self, name: str):
        return self.home.logs / "Crawlers" / f"{name}.log"

    # --- create / update / delete ---------------------------------------------------------------------
    def create(self, params: dict[str, Any], *, region: str) -> None:
        name = params["Name"]
        _check_targets(params.get("Targets") or {})
        now = time.time()
        doc: dict[str, Any] = {**_DEFAULTS, "Name": name, "Role": params["Role"], "Targets": params["Targets"],
                               "State": "READY", "CrawlElapsedTime": 0, "CreationTime": now,
                               "LastUpdated": now, "Version": 1}
        for optional in ("DatabaseName", "Description", "Classifiers", "RecrawlPolicy", "SchemaChangePolicy",
                         "LineageConfiguration", "TablePrefix", "Configuration", "CrawlerSecurityConfiguration",
                         "LakeFormationConfiguration"):
            if params.get(optional) is not None:
                doc[optional] = params[optional]
        if params.get("Schedule"):
            doc["Schedule"] = {"ScheduleExpression": params["Schedule"], "State": "SCHEDULED"}
        arn = self.account.arn("glue", f"crawler/{name}", region)
        try:
            self.resources.insert(KIND, name, arn, "READY", doc, created_at=now)
        except AlreadyExists:
            raise AlreadyExistsError(f"Crawler with name {name} has already been created") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, params["Tags"])

    def update(self, params: dict[str, Any]) -> None:
        name = params["Name"]
        if "Targets" in params:
            _check_targets(params["Targets"])

        def mutate(res: Resource) -> None:
            if res.status != "READY":
                raise CrawlerRunning(f"Crawler with name {name} is running and cannot be updated.")
            for key in ("Role", "DatabaseName", "Description", "Targets", "Classifiers", "TablePrefix",
                        "SchemaChangePolicy", "RecrawlPolicy", "LineageConfiguration", "Configuration",
                        "CrawlerSecurityConfiguration", "LakeFormationConfiguration"):
                if key in params:
                    res.doc[key] = params[key]
            res.doc["LastUpdated"] = time.time()
            res.doc["Version"] = res.doc.get("Version", 1) + 1

        self._update(name, mutate)

    def delete(self, name: str) -> None:
        res = self._get(name)
        if res.status != "READY":
            raise CrawlerRunning(f"Crawler with name {name} is running and cannot be deleted.")
        self.resources.delete(KIND, name)

    # --- read ------------------------------------------------------------------------------------------
    def _get(self, name: str) -> Resource:
        res = self.resources.get(KIND, name)
        if res is None:
            raise EntityNotFound(f"Crawler entry with name {name} does not exist")
        return res

    def _update(self, name: str, mutate, *, lease: str | None = None) -> Resource:
        try:
            return self.resources.update(KIND, name, mutate, lease=lease)
        except NotFound:
            raise EntityNotFound(f"Crawler entry with name {name} does not exist") from None

    def describe(self, name: str) -> dict[str, Any]:
        return self._public(self._get(name))

    def _public(self, res: Resource) -> dict[str, Any]:
        doc = public(res.doc)
        if res.status == "RUNNING" and res.doc.get("_StartTime"):
            doc["CrawlElapsedTime"] = int((time.time() - res.doc["_StartTime"]) * 1000)
        return doc

    def list(self) -> list[dict[str, Any]]:
        return [self._public(r) for r in self.resources.list(KIND, sort_by="Name", descending=False)]

    def metrics(self, names: list[str] | None) -> list[dict[str, Any]]:
        rows = self.resources.list(KIND, sort_by="Name", descending=False)
        if names:
            rows = [r for r in rows if r.name in set(names)]
        out = []
        for res in rows:
            runtimes = res.doc.get("_Runtimes") or []
            last = res.doc.get("_LastStats") or {}
            running = res.status == "RUNNING"
            out.append({"CrawlerName": res.name, "TimeLeftSeconds": 0.0, "StillEstimating": running,
                        "LastRuntimeSeconds": runtimes[-1] if runtimes else 0.0,
                        "MedianRuntimeSeconds": statistics.median(runtimes) if runtimes else 0.0,
                        "TablesCreated": last.get("tables_created", 0), "TablesUpdated": last.get("tables_updated", 0),
                        "TablesDeleted": last.get("tables_deleted", 0)})
        return out

    # --- start / stop ----------------------------------------------------------------------------------
    def start(self, name: str) -> None:
        lease = self.resources.new_lease()
        now = time.time()

        def running(res: Resource) -> None:
            if res.status != "READY":
                raise CrawlerRunning(f"Crawler with name {name} has already started")
            res.status = "RUNNING"
            res.lease = lease
            res.doc.update(State="RUNNING", _StartTime=now)

        res = self._update(name, running)
        cancelled = threading.Event()
        with self._lock:
            self._cancel[name] = cancelled
        threading.Thread(target=self._run, args=(name, lease, public(res.doc) | {"Name": name}, cancelled),
                         name=f"crawler-{name}", daemon=True).start()

    def stop(self, name: str) -> None:
        def stopping(res: Resource) -> None:
            if res.status != "RUNNING":
                raise CrawlerNotRunning(f"Crawler with name {name} isn't running.")
            res.status = "STOPPING"
            res.doc["State"] = "STOPPING"

        self._update(name, stopping)
        with self._lock:
            event = self._cancel.get(name)
        if event is not None:
            event.set()
        else:  # not this server's crawl (a restart): settle it here
            self._update(name, lambda r: _finish(r, "CANCELLED", None))

    def _run(self, name: str, lease: str, crawler: dict[str, Any], cancelled: threading.Event) -> None:
        path = self.log_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.time()
        with path.open("a", encoding="utf-8") as log_file:
            def log(line: str) -> None:
                log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{name}] {line}\n")
                log_file.flush()

            log("Crawl started")
            status, error, stats = "SUCCEEDED", None, None
            try:
                # A crawl acts as the crawler's Role, when that is one of this server's roles.
                role = RoleAccess.for_role(self.resources, self.account, crawler.get("Role"),
                                           session=CRAWLER_SESSION)
                stats = Crawl(self.blobs, self.catalog, crawler, log, cancelled, role).run()
                log(f"Crawl finished: {stats.tables_created} tables created, {stats.tables_updated} updated, "
                    f"{stats.tables_deleted} deleted, {stats.partitions_added} partitions added")
            except CrawlCancelled:
                status = "CANCELLED"
                log("Crawl cancelled")
            except SagelabError as exc:
                status, error = "FAILED", exc.message
                log(f"Crawl failed: {error}")
            except RoleAccessDenied as exc:
                status, error = "FAILED", str(exc)
                log(f"Crawl failed: {error}")
            except Exception as exc:  # noqa: BLE001 - any failure ends the crawl with its reason
                status, error = "FAILED", f"Internal error: {type(exc).__name__}: {exc}"
                log(f"Crawl failed: {error}")

        def finish(res: Resource) -> None:
            _finish(res, status, error, started=started, stats=stats)

        try:
            self.resources.update(KIND, name, finish, lease=lease)
        except (LeaseLost, NotFound):
            pass
        finally:
            with self._lock:
                if self._cancel.get(name) is cancelled:
                    del self._cancel[name]

    def recover(self, left_by: str | None = None) -> None:
        for res in self.resources.left_behind(KIND, ("RUNNING", "STOPPING"), left_by):
            try:
                self.resources.update(KIND, res.name, lambda r: _finish(
                    r, "CANCELLED" if r.status == "STOPPING" else "FAILED",
                    None if r.status == "STOPPING" else SERVER_STOPPED), lease=res.lease)
            except (LeaseLost, NotFound):
                continue


def _finish(res: Resource, status: str, error: str | None, *, started: float | None = None,
            stats: Any = None) -> None:
    started = started or res.doc.get("_StartTime") or time.time()
    runtime = max(0.0, time.time() - started)
    last: dict[str, Any] = {"Status": status, "LogGroup": LOG_GROUP, "LogStream": res.name,
                            "MessagePrefix": uuid.uuid4().hex, "StartTime": started}
    if error:
        last["ErrorMessage"] = error[:2048]
    res.doc["LastCrawl"] = last
    res.doc["State"] = "READY"
    res.doc["CrawlElapsedTime"] = 0
    res.doc.pop("_StartTime", None)
    if status == "SUCCEEDED":
        res.doc["_Runtimes"] = (res.doc.get("_Runtimes") or [])[-19:] + [round(runtime, 3)]
        if stats is not None:
            res.doc["_LastStats"] = {"tables_created": stats.tables_created, "tables_updated": stats.tables_updated,
                                     "tables_deleted": stats.tables_deleted}
    res.status = "READY"
    res.lease = None


def _check_targets(targets: dict[str, Any]) -> None:
    others = [k for k, v in targets.items() if k != "S3Targets" and v]
    if others:
        raise InvalidInput(f"Targets: sagelab crawls S3Targets only, got {', '.join(sorted(others))}.")
    s3_targets = targets.get("S3Targets") or []
    if not s3_targets:
        raise InvalidInput("Targets.S3Targets must list at least one S3 path to crawl.")
    for i, target in enumerate(s3_targets):
        if not target.get("Path"):
            raise InvalidInput(f"Targets.S3Targets[{i}].Path is required (an s3://bucket/prefix/ URI).")
        try:
            parse_s3_uri(target["Path"], field=f"Targets.S3Targets[{i}].Path")
        except SagelabError as exc:
            raise InvalidInput(exc.message) from None
