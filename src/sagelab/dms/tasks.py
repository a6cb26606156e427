"""Replication tasks: a full load and/or CDC from a source endpoint into an s3 target endpoint in the lake.

A started task runs on a thread of the server, not on the compute engine: a CDC task runs until it is
stopped, its work is waiting on SQL and writing objects, and what it must remember (per-table state and
counts in the task's resource document, the CDC position in the source's own replication slot) is
written as it goes. A server that stops leaves the task `running`; the next one's `recover()` resumes it:
tables whose full load had not completed are loaded again (their LOAD files overwritten), and CDC
continues from the slot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from sagelab.account import Account
from sagelab.dms import cdc, describing, mappings, sources
from sagelab.dms.endpoints import EndpointService, check_identifier, resource_id
from sagelab.dms.errors import (
    InvalidParameterValue,
    InvalidResourceStateFault,
    ResourceAlreadyExistsFault,
    ResourceNotFoundFault,
)
from sagelab.dms.target import S3Target
from sagelab.lake.blobs import BlobStore
from sagelab.storage.resources import AlreadyExists, NotFound, Resource, ResourceStore, public

TASK = "dms-replication-task"
_STARTABLE = ("ready", "stopped", "failed")
ACTIVE = ("starting", "running", "stopping")
_CDC = ("cdc", "full-load-and-cdc")
_DEFAULT_SETTINGS = '{"TargetMetadata":{"TargetSchema":"","SupportLobs":true,"LobChunkSize":64},' \
                    '"FullLoadSettings":{"TargetTablePrepMode":"DROP_AND_CREATE"},"Logging":{"EnableLogging":false}}'


def _new_table(schema: str, table: str) -> dict[str, Any]:
    return {"SchemaName": schema, "TableName": table, "Inserts": 0, "Deletes": 0, "Updates": 0, "Ddls": 0,
            "FullLoadRows": 0, "FullLoadCondtnlChkFailedRows": 0, "FullLoadErrorRows": 0,
            "TableState": "Before load", "ValidationPendingRecords": 0, "ValidationFailedRecords": 0,
            "ValidationSuspendedRecords": 0, "ValidationState": "Not enabled"}


@dataclasses.dataclass
class _Plan:
    """How one selected source table is written: its target names and columns, in source order."""

    source: tuple[str, str]
    target: mappings.TargetTable
    table: sa.Table
    columns: list[tuple[str, sa.types.TypeEngine[Any]]]  # (source column, type), removed columns left out

    @property
    def target_columns(self) -> list[tuple[str, sa.types.TypeEngine[Any]]]:
        return [(self.target.columns[name], kind) for name, kind in self.columns]


class ReplicationTaskService:
    def __init__(self, *, resources: ResourceStore, account: Account, blobs: BlobStore, endpoints: EndpointService,
                 poll_seconds: float = 0.5, clock: Callable[[], float] = time.time):
        self.resources = resources
        self.account = account
        self.blobs = blobs
        self.endpoints = endpoints
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._runs: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()

    # --- life cycle -------------------------------------------------------------------------------------
    def recover(self, left_by: str | None = None) -> None:
        """Resume the tasks a stopped server left running (a stopping one is stopped): every one, or those of
        the server `left_by`."""
        for resource in self.resources.left_behind(TASK, ACTIVE, left_by):
            if resource.status == "stopping":
                self._finish(resource.name, "stopped", "Stop Reason NORMAL")
            else:
                self._launch(resource.name, reload=False)

    def close(self) -> None:
        """Stop the runs without marking their tasks stopped: the next server resumes them."""
        self._closing.set()
        with self._lock:
            runs = list(self._runs.values())
        for _, stop in runs:
            stop.set()
        for thread, _ in runs:
            thread.join(timeout=30)

    # --- requests ---------------------------------------------------------------------------------------
    def create(self, params: dict[str, Any], region: str) -> dict[str, Any]:
        identifier = params["ReplicationTaskIdentifier"].lower()
        check_identifier(identifier, "ReplicationTaskIdentifier")
        replication_instance = self.endpoints.instance(params["ReplicationInstanceArn"])
        if replication_instance.status != "available":
            raise InvalidResourceStateFault(f"ReplicationInstanceArn {replication_instance.arn} is "
                                            f"{replication_instance.status}, not available.")
        source = self.endpoints.endpoint(params["SourceEndpointArn"], "SourceEndpointArn")
        target = self.endpoints.endpoint(params["TargetEndpointArn"], "TargetEndpointArn")
        if source.doc["EndpointType"] != "SOURCE":
            raise InvalidParameterValue(f"SourceEndpointArn {source.arn} is a target endpoint, not a source.")
        if target.doc["EndpointType"] != "TARGET":
            raise InvalidParameterValue(f"TargetEndpointArn {target.arn} is a source endpoint, not a target.")
        mappings.parse(params["TableMappings"])
        if params["MigrationType"] in _CDC and source.doc["EngineName"] != "postgres":
            raise InvalidParameterValue(f"MigrationType {params['MigrationType']!r} needs change data capture, "
                                        f"which sagelab reads from postgres sources only; the source is "
                                        f"{source.doc['EngineName']}.")
        arn = self.account.arn("dms", f"task:{resource_id(params.get('ResourceIdentifier'))}", region)
        now = self.clock()
        doc: dict[str, Any] = {
            "ReplicationTaskIdentifier": identifier, "SourceEndpointArn": source.arn, "TargetEndpointArn": target.arn,
            "ReplicationInstanceArn": params["ReplicationInstanceArn"], "MigrationType": params["MigrationType"],
            "TableMappings": params["TableMappings"],
            "ReplicationTaskSettings": params.get("ReplicationTaskSettings") or _DEFAULT_SETTINGS,
            "Status": "creating", "ReplicationTaskCreationDate": now, "ReplicationTaskArn": arn,
            "_settles_at": now + self.endpoints.settle_seconds, "_tables": {}, "_started": False}
        for field in ("CdcStartPosition", "CdcStopPosition", "TaskData"):
            if params.get(field):
                doc[field] = params[field]
        try:
            self.resources.insert(TASK, identifier, arn, "creating", doc)
        except AlreadyExists:
            raise ResourceAlreadyExistsFault(f"ReplicationTaskIdentifier {identifier!r} is already used by a "
                                             "replication task.") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return self._public(doc)

    def describe(self, params: dict[str, Any]) -> dict[str, Any]:
        docs = [self._settled(r).doc for r in self.resources.list(TASK, descending=False)]
        docs = describing.matching(docs, params.get("Filters"), {
            "replication-task-arn": lambda d: d["ReplicationTaskArn"],
            "replication-task-id": lambda d: d["ReplicationTaskIdentifier"],
            "migration-type": lambda d: d["MigrationType"],
            "endpoint-arn": lambda d: (d["SourceEndpointArn"] if d["SourceEndpointArn"] in _filter_values(
                params, "endpoint-arn") else d["TargetEndpointArn"]),
            "replication-instance-arn": lambda d: d["ReplicationInstanceArn"]}, "replication tasks")
        chosen, marker = describing.page(docs, params)
        answered = [self._public(d) for d in chosen]
        if params.get("WithoutSettings"):
            answered = [{k: v for k, v in d.items() if k not in ("TableMappings", "ReplicationTaskSettings")}
                        for d in answered]
        return describing.described("ReplicationTasks", answered, marker)

    def start(self, arn: str, kind: str) -> dict[str, Any]:
        resource = self.task(arn)
        if resource.status not in _STARTABLE:
            raise InvalidResourceStateFault(f"Replication task {arn} is {resource.status}: it can be started only "
                                            f"when {', '.join(_STARTABLE)}.")
        if kind == "start-replication" and resource.doc["_started"]:
            raise InvalidResourceStateFault(f"Replication task {arn} has run before: StartReplicationTaskType "
                                            "start-replication is for a first start; use resume-processing or "
                                            "reload-target.")
        reload = kind != "resume-processing"

        def starting(r: Resource) -> None:
            r.status = r.doc["Status"] = "starting"
            r.doc["_started"] = True
            r.doc["ReplicationTaskStartDate"] = self.clock()
            r.doc.pop("LastFailureMessage", None)
            r.doc.pop("StopReason", None)
            kept = {} if reload else {k: v for k, v in r.doc.get("_stats", {}).items() if k.startswith("FullLoad")}
            r.doc["_stats"] = {**kept, "StartDate": self.clock()}
            if reload:
                r.doc["_tables"] = {}

        updated = self.resources.update(TASK, resource.name, starting)
        self._launch(resource.name, reload=reload)
        return self._public(updated.doc)

    def stop(self, arn: str) -> dict[str, Any]:
        resource = self.task(arn)
        if resource.status not in ("starting", "running"):
            raise InvalidResourceStateFault(f"Replication task {arn} is {resource.status}, not running.")

        def stopping(r: Resource) -> None:
            r.status = r.doc["Status"] = "stopping"

        updated = self.resources.update(TASK, resource.name, stopping)
        with self._lock:
            run = self._runs.get(resource.name)
        if run is not None:
            run[1].set()
        else:  # nothing runs it (a failed start left it): it stops at once
            self._finish(resource.name, "stopped", "Stop Reason NORMAL")
        return self._public(updated.doc)

    def delete(self, arn: str) -> dict[str, Any]:
        resource = self.task(arn)
        if resource.status in ACTIVE:
            raise InvalidResourceStateFault(f"Replication task {arn} is {resource.status}: stop it before deleting "
                                            "it.")
        if resource.doc["MigrationType"] in _CDC and resource.doc["_started"]:
            self._drop_slot(resource)
        self.resources.delete(TASK, resource.name)
        return self._public(resource.doc) | {"Status": "deleting"}

    def table_statistics(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = self.task(params["ReplicationTaskArn"])
        tables = sorted(resource.doc["_tables"].values(), key=lambda t: (t["SchemaName"], t["TableName"]))
        tables = describing.matching(tables, params.get("Filters"), {
            "schema-name": lambda t: t["SchemaName"], "table-name": lambda t: t["TableName"],
            "table-state": lambda t: t["TableState"]}, "table statistics")
        chosen, marker = describing.page(tables, params, least=10, most=500)  # its own documented bounds
        return {"ReplicationTaskArn": resource.arn, **describing.described("TableStatistics", chosen, marker)}

    def task(self, arn: str) -> Resource:
        resource = self.resources.get_by_arn(arn)
        if resource is None or resource.kind != TASK:
            raise ResourceNotFoundFault(f"ReplicationTaskArn {arn!r} does not name a replication task.")
        return self._settled(resource)

    def using(self, arn: str) -> str | None:
        """The identifier of a task that uses this endpoint or instance, or None."""
        for resource in self.resources.list(TASK):
            doc = resource.doc
            if arn in (doc["SourceEndpointArn"], doc["TargetEndpointArn"], doc["ReplicationInstanceArn"]):
                return resource.name
        return None

    # --- documents --------------------------------------------------------------------------------------
    def _settled(self, resource: Resource) -> Resource:
        if resource.status != "creating" or self.clock() < resource.doc.get("_settles_at", 0):
            return resource

        def settle(r: Resource) -> None:
            r.status = r.doc["Status"] = "ready"

        return self.resources.update(TASK, resource.name, settle)

    def _public(self, doc: dict[str, Any]) -> dict[str, Any]:
        answer = public(doc)
        if doc["_started"]:
            answer["ReplicationTaskStats"] = self._stats(doc)
        return answer

    @staticmethod
    def _stats(doc: dict[str, Any]) -> dict[str, Any]:
        states = [t["TableState"] for t in doc["_tables"].values()]
        loaded = states.count("Table completed")
        stats = {"FullLoadProgressPercent": 100 if states and loaded == len(states) else
                 int(100 * loaded / len(states)) if states else 0,
                 "TablesLoaded": loaded, "TablesLoading": states.count("Full load"),
                 "TablesQueued": states.count("Before load"), "TablesErrored": states.count("Table error")}
        recorded = doc.get("_stats", {})
        start, stop = recorded.get("StartDate"), recorded.get("StopDate")
        stats["ElapsedTimeMillis"] = int(1000 * ((stop or time.time()) - start)) if start else 0
        stats.update({k: v for k, v in recorded.items() if v is not None})
        return stats

    # --- runs -------------------------------------------------------------------------------------------
    def _launch(self, name: str, *, reload: bool) -> None:
        lease = self.resources.new_lease()  # names this server: if it dies, another one resumes the task
        with contextlib.suppress(NotFound):
            self.resources.update(TASK, name, lambda r: setattr(r, "lease", lease))
        stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(name, reload, stop), name=f"dms-task-{name}", daemon=True)
        with self._lock:
            self._runs[name] = (thread, stop)
        thread.start()

    def _run(self, name: str, reload: bool, stop: threading.Event) -> None:
        engine: sa.Engine | None = None
        try:
            resource = self.resources.get(TASK, name)
            if resource is None:
                return
            doc = resource.doc
            source = self.endpoints.endpoint(doc["SourceEndpointArn"], "SourceEndpointArn").doc
            target = S3Target.from_settings(
                self.endpoints.endpoint(doc["TargetEndpointArn"], "TargetEndpointArn").doc["S3Settings"])
            rules = mappings.parse(doc["TableMappings"])
            engine = self.endpoints.source_spec(source).connect()
            with_cdc = doc["MigrationType"] in _CDC
            slot = cdc.slot_name(resource.arn)
            if with_cdc:
                if reload:  # a fresh load: the changes the old slot kept are in the snapshot already
                    cdc.drop_slot(engine, slot)
                cdc.ensure_slot(engine, slot)  # before the snapshot: no change falls between the two
            plans = self._plans(engine, source["EngineName"], rules)
            self._set(name, _running)
            if doc["MigrationType"] != "cdc":
                self._full_load(name, engine, target, plans, reload, stop)
            if not with_cdc:
                if not stop.is_set():
                    self._finish(name, "stopped", "Stop Reason FULL_LOAD_ONLY_FINISHED")
                elif not self._closing.is_set():
                    self._finish(name, "stopped", "Stop Reason NORMAL")
                return
            self._capture(name, engine, source["EngineName"], target, rules, plans, slot, stop)
            if not self._closing.is_set():
                self._finish(name, "stopped", "Stop Reason NORMAL")
        except NotFound:
            return  # deleted while it ran
        except Exception as failure:  # noqa: BLE001 - a task's failure is its LastFailureMessage
            if not self._closing.is_set():
                message = f"{type(failure).__name__}: {_first_line(failure)}"
                print(f"dms: replication task {name} failed: {message}", file=sys.stderr)
                self._finish(name, "failed", "Stop Reason FATAL_ERROR", message)
        finally:
            if engine is not None:
                engine.dispose()
            with self._lock:
                if self._runs.get(name, (None,))[0] is threading.current_thread():
                    del self._runs[name]

    def _plans(self, engine: sa.Engine, engine_name: str, rules: mappings.TableMappings,
               names: list[tuple[str, str]] | None = None) -> dict[tuple[str, str], _Plan]:
        """How each selected table (of `names`, or of the whole source) is written."""
        chosen = [n for n in (sources.tables(engine, engine_name) if names is None else names) if rules.selects(*n)]
        plans = {}
        for (schema, table), reflected in sources.reflect(engine, engine_name, chosen).items():
            target = rules.target(schema, table, [c.name for c in reflected.columns])
            plans[(schema, table)] = _Plan((schema, table), target, reflected, [
                (c.name, c.type) for c in reflected.columns if c.name in target.columns])
        return plans

    def _full_load(self, name: str, engine: sa.Engine, target: S3Target,
                   plans: dict[tuple[str, str], _Plan], reload: bool, stop: threading.Event) -> None:
        def queue(r: Resource) -> None:
            for (schema, table) in plans:
                key = f"{schema}.{table}"
                if reload or key not in r.doc["_tables"]:
                    r.doc["_tables"][key] = _new_table(schema, table)
            r.doc["_stats"].setdefault("FullLoadStartDate", self.clock())  # a resumed load keeps its start

        doc = self._set(name, queue).doc
        for (schema, table), plan in plans.items():
            key = f"{schema}.{table}"
            if stop.is_set():
                return
            if doc["_tables"][key]["TableState"] == "Table completed":
                continue
            self._set(name, lambda r, k=key: r.doc["_tables"][k].update(
                {"TableState": "Full load", "FullLoadStartTime": self.clock()}))
            prefix = target.table_prefix(plan.target.schema, plan.target.table) + "LOAD"
            for old in list(self.blobs.list(target.bucket, prefix)):
                self.blobs.delete(target.bucket, old.key)
            count = 0
            for number, batch in enumerate(sources.rows(engine, [plan.table.c[c] for c, _ in plan.columns]), 1):
                body = target.full_load_body(plan.target_columns, batch, self.clock())
                self.blobs.put(target.bucket, target.load_key(plan.target.schema, plan.target.table, number), [body])
                count += len(batch)
            now = self.clock()
            self._set(name, lambda r, k=key, n=count, t=now: r.doc["_tables"][k].update(
                {"TableState": "Table completed", "FullLoadRows": n, "FullLoadEndTime": t, "LastUpdateTime": t}))
        self._set(name, lambda r: r.doc["_stats"].setdefault("FullLoadFinishDate", self.clock()))

    def _capture(self, name: str, engine: sa.Engine, engine_name: str, target: S3Target, rules: mappings.TableMappings,
                 plans: dict[tuple[str, str], _Plan], slot: str, stop: threading.Event) -> None:
        def known(r: Resource) -> None:
            for (schema, table) in plans:
                r.doc["_tables"].setdefault(f"{schema}.{table}", _new_table(schema, table) | {
                    "TableState": "Table completed"})

        self._set(name, known)
        while not stop.is_set():
            changes, confirmed = cdc.peek(engine, slot)
            if confirmed is not None:
                self._deliver(name, engine, engine_name, target, rules, plans, changes)
                cdc.advance(engine, slot, confirmed)  # only once the files are in the lake
            if not changes:
                stop.wait(self.poll_seconds)

    def _deliver(self, name: str, engine: sa.Engine, engine_name: str, target: S3Target,
                 rules: mappings.TableMappings, plans: dict[tuple[str, str], _Plan], changes: list[cdc.Change]) -> None:
        by_table: dict[tuple[str, str], list[cdc.Change]] = {}
        for change in changes:
            key = (change.schema, change.table)
            if key not in plans and rules.selects(*key):  # a table created since the start
                plans.update(self._plans(engine, engine_name, rules, [key]))
            if key in plans:
                by_table.setdefault(key, []).append(change)
        counts: dict[str, dict[str, int]] = {}
        for key, table_changes in by_table.items():
            plan = plans[key]
            rows = [(c.op, c.committed_at, [c.values.get(column) for column, _ in plan.columns]) for c in table_changes]
            body = target.cdc_body(plan.target_columns, rows)
            self.blobs.put(target.bucket, target.cdc_key(plan.target.schema, plan.target.table, self.clock()), [body])
            ops = [c.op for c in table_changes]
            counts[f"{key[0]}.{key[1]}"] = {"Inserts": ops.count("I"), "Updates": ops.count("U"),
                                            "Deletes": ops.count("D")}

        def count(r: Resource) -> None:
            now = self.clock()
            for key, added in counts.items():
                schema, table = key.split(".", 1)
                entry = r.doc["_tables"].setdefault(key, _new_table(schema, table) | {"TableState": "Table completed"})
                for field, value in added.items():
                    entry[field] += value
                entry["LastUpdateTime"] = now

        if counts:
            self._set(name, count)

    def _finish(self, name: str, status: str, reason: str, failure: str | None = None) -> None:
        def finish(r: Resource) -> None:
            r.status = r.doc["Status"] = status
            r.doc["StopReason"] = reason
            r.doc.setdefault("_stats", {})["StopDate"] = self.clock()
            if failure:
                r.doc["LastFailureMessage"] = failure

        with contextlib.suppress(NotFound):  # deleted meanwhile: nothing left to finish
            self._set(name, finish)

    def _set(self, name: str, mutate: Callable[[Resource], Any]) -> Resource:
        return self.resources.update(TASK, name, mutate)

    def _drop_slot(self, resource: Resource) -> None:
        try:
            source = self.endpoints.endpoint(resource.doc["SourceEndpointArn"]).doc
            engine = self.endpoints.source_spec(source).connect()
        except (ResourceNotFoundFault, ImportError):
            return
        try:
            cdc.drop_slot(engine, cdc.slot_name(resource.arn))
        except sa.exc.SQLAlchemyError as failure:  # the source is gone: the slot went with it or waits for a DBA
            print(f"dms: could not drop slot of {resource.name}: {_first_line(failure)}", file=sys.stderr)
        finally:
            engine.dispose()


def _running(r: Resource) -> None:
    if r.status == "starting":  # a stop asked for meanwhile stays asked for
        r.status = r.doc["Status"] = "running"


def _filter_values(params: dict[str, Any], name: str) -> set[str]:
    return {v for f in params.get("Filters") or [] if f["Name"] == name for v in f["Values"]}


def _first_line(failure: BaseException) -> str:
    text = str(getattr(failure, "orig", None) or failure).strip()
    return text.splitlines()[0] if text else type(failure).__name__
