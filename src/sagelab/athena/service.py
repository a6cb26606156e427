"""Athena's control plane: work groups and query executions, run on a small thread pool in the server.

A query execution is a resource document (QueryExecution's shape) moving QUEUED -> RUNNING ->
SUCCEEDED | FAILED | CANCELLED. Results go to `<OutputLocation>/<QueryExecutionId>.csv` with a
`.csv.metadata` file beside it; GetQueryResults pages through them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import threading
import time
import uuid
from typing import Any

import duckdb
import pyarrow as pa

from sagelab.account import Account
from sagelab.athena import results as result_files
from sagelab.athena.engine import Outcome, QueryEngine
from sagelab.athena.query import QueryContext, QueryFailed, TableGate
from sagelab.athena.statements import StatementError, parse_statement
from sagelab.catalog.store import CatalogStore
from sagelab.errors import InvalidRequest, SagelabError
from sagelab.lake.blobs import BlobStore
from sagelab.lake.uris import parse_s3_uri
from sagelab.pagination import decode_token, encode_token, page
from sagelab.storage.resources import AlreadyExists, NotFound, Resource, ResourceStore, public

QUERY_KIND = "athena-query"
#: The states of a query some server is running.
ACTIVE_QUERY = ("QUEUED", "RUNNING")
WORKGROUP_KIND = "athena-workgroup"
PRIMARY = "primary"
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")
#: Queries run at once; more wait in QUEUED.
CONCURRENT_QUERIES = 4
ENGINE_VERSION = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}
SERVER_STOPPED = "sagelab server stopped while the query was running; run the query again."


class AthenaService:
    def __init__(self, *, resources: ResourceStore, account: Account, blobs: BlobStore, catalog: CatalogStore):
        self.resources = resources
        self.account = account
        self.blobs = blobs
        self.engine = QueryEngine(blobs=blobs, catalog=catalog)
        self.results = result_files.ResultCache()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._connections: dict[str, duckdb.DuckDBPyConnection] = {}
        self._tokens: dict[str, str] = {}
        self._live: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(CONCURRENT_QUERIES, thread_name_prefix="athena")
            return self._pool

    # --- work groups -----------------------------------------------------------------------------------
    def _ensure_primary(self, region: str) -> None:
        if self.resources.get(WORKGROUP_KIND, PRIMARY) is None:
            doc = {"Name": PRIMARY, "State": "ENABLED", "Description": "", "CreationTime": time.time(),
                   "Configuration": {"EnforceWorkGroupConfiguration": False, "PublishCloudWatchMetricsEnabled": False,
                                     "RequesterPaysEnabled": False, "EngineVersion": ENGINE_VERSION}}
            with contextlib.suppress(AlreadyExists):
                self.resources.insert(WORKGROUP_KIND, PRIMARY, self._workgroup_arn(region, PRIMARY), "ENABLED", doc)

    def _workgroup_arn(self, region: str, name: str) -> str:
        return self.account.arn("athena", f"workgroup/{name}", region)

    def workgroup(self, name: str, region: str) -> Resource:
        self._ensure_primary(region)
        res = self.resources.get(WORKGROUP_KIND, name)
        if res is None:
            raise InvalidRequest(f"WorkGroup {name} is not found.", "INVALID_INPUT")
        return res

    def create_workgroup(self, params: dict[str, Any], region: str) -> None:
        self._ensure_primary(region)
        name = params["Name"]
        configuration = dict(params.get("Configuration") or {})
        configuration.setdefault("EnforceWorkGroupConfiguration", True)
        configuration.setdefault("PublishCloudWatchMetricsEnabled", True)
        configuration.setdefault("RequesterPaysEnabled", False)
        configuration["EngineVersion"] = ENGINE_VERSION
        if (configuration.get("ResultConfiguration") or {}).get("OutputLocation"):
            self._check_output(configuration["ResultConfiguration"]["OutputLocation"])
        doc = {"Name": name, "State": "ENABLED", "Configuration": configuration,
               "Description": params.get("Description", ""), "CreationTime": time.time()}
        arn = self._workgroup_arn(region, name)
        try:
            self.resources.insert(WORKGROUP_KIND, name, arn, "ENABLED", doc)
        except AlreadyExists:
            raise InvalidRequest("WorkGroup is already created", "INVALID_INPUT") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})

    def get_workgroup(self, name: str, region: str) -> dict[str, Any]:
        return public(self.workgroup(name, region).doc)

    def list_workgroups(self, region: str) -> list[dict[str, Any]]:
        self._ensure_primary(region)
        return [{k: r.doc[k] for k in ("Name", "State", "Description", "CreationTime") if k in r.doc}
                | {"EngineVersion": ENGINE_VERSION}
                for r in self.resources.list(WORKGROUP_KIND, sort_by="Name", descending=False)]

    def update_workgroup(self, params: dict[str, Any], region: str) -> None:
        self.workgroup(params["WorkGroup"], region)
        updates = params.get("ConfigurationUpdates") or {}
        if (updates.get("ResultConfigurationUpdates") or {}).get("OutputLocation"):
            self._check_output(updates["ResultConfigurationUpdates"]["OutputLocation"])

        def mutate(res: Resource) -> None:
            if "State" in params:
                res.doc["State"] = res.status = params["State"]
            if "Description" in params:
                res.doc["Description"] = params["Description"]
            config = res.doc.setdefault("Configuration", {})
            for key in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled",
                        "BytesScannedCutoffPerQuery", "RequesterPaysEnabled"):
                if key in updates:
                    config[key] = updates[key]
            if updates.get("RemoveBytesScannedCutoffPerQuery"):
                config.pop("BytesScannedCutoffPerQuery", None)
            result_updates = updates.get("ResultConfigurationUpdates") or {}
            result_config = config.setdefault("ResultConfiguration", {})
            if result_updates.get("RemoveOutputLocation"):
                result_config.pop("OutputLocation", None)
            if result_updates.get("OutputLocation"):
                result_config["OutputLocation"] = result_updates["OutputLocation"]

        self.resources.update(WORKGROUP_KIND, params["WorkGroup"], mutate)

    def delete_workgroup(self, name: str, region: str, recursive: bool) -> None:
        self.workgroup(name, region)
        if name == PRIMARY:
            raise InvalidRequest("Cannot delete primary workgroup", "INVALID_INPUT")
        running = [r for r in self.resources.in_status(QUERY_KIND, ("QUEUED", "RUNNING"))
                   if r.doc.get("WorkGroup") == name]
        if running and not recursive:
            raise InvalidRequest(f"WorkGroup {name} has running queries; use RecursiveDeleteOption.", "INVALID_INPUT")
        for res in running:
            self.stop(res.name)
        self.resources.delete(WORKGROUP_KIND, name)

    @staticmethod
    def _check_output(location: str) -> None:
        try:
            parse_s3_uri(location, field="OutputLocation")
        except SagelabError as exc:
            raise InvalidRequest(exc.message, "INVALID_INPUT") from None

    # --- query executions ------------------------------------------------------------------------------
    def start(self, params: dict[str, Any], region: str, gate: TableGate | None = None) -> str:
        """Queues a query; `gate` says what its caller may read of each table (None: everything)."""
        token = params.get("ClientRequestToken")
        with self._lock:
            if token and token in self._tokens:
                return self._tokens[token]
        group = self.workgroup(params.get("WorkGroup") or PRIMARY, region)
        if group.doc.get("State") == "DISABLED":
            raise InvalidRequest(f"WorkGroup {group.name} is disabled.", "INVALID_INPUT")
        config = group.doc.get("Configuration") or {}
        group_output = (config.get("ResultConfiguration") or {}).get("OutputLocation")
        requested = params.get("ResultConfiguration") or {}
        output = group_output if config.get("EnforceWorkGroupConfiguration") and group_output else (
            requested.get("OutputLocation") or group_output)
        if not output:
            raise InvalidRequest("No output location provided. An output location is required either through the "
                                 "Workgroup result configuration setting or as an API input.", "INVALID_INPUT")
        self._check_output(output)
        text = _bind_parameters(params["QueryString"], params.get("ExecutionParameters") or [])
        context = dict(params.get("QueryExecutionContext") or {})
        database = (context.get("Database") or "default").lower()
        context.setdefault("Catalog", "AwsDataCatalog")
        query_id = str(uuid.uuid4())
        now = time.time()
        try:
            statement = parse_statement(text)
            statement_type, substatement, failure = statement.statement_type, statement.substatement, None
        except StatementError as exc:
            statement, statement_type, substatement, failure = None, "DML", "SELECT", exc
        output_file = f"{output.rstrip('/')}/{query_id}.csv"
        submitted = time.perf_counter()
        doc = {"QueryExecutionId": query_id, "Query": params["QueryString"], "StatementType": statement_type,
               "SubstatementType": substatement,
               "ResultConfiguration": {**requested, "OutputLocation": output_file},
               "ResultReuseConfiguration": {"ResultReuseByAgeConfiguration": {"Enabled": False}},
               "QueryExecutionContext": context, "Status": {"State": "QUEUED", "SubmissionDateTime": now},
               "Statistics": {"EngineExecutionTimeInMillis": 0, "DataScannedInBytes": 0,
                              "TotalExecutionTimeInMillis": 0, "QueryQueueTimeInMillis": 0,
                              "ServicePreProcessingTimeInMillis": 0, "QueryPlanningTimeInMillis": 0,
                              "ServiceProcessingTimeInMillis": 0,
                              "ResultReuseInformation": {"ReusedPreviousResult": False}},
               "WorkGroup": group.name, "EngineVersion": ENGINE_VERSION,
               "QueryResultsS3AccessGrantsConfiguration": {"EnableS3AccessGrants": False},
               "_Output": output}
        if params.get("ExecutionParameters"):
            doc["ExecutionParameters"] = params["ExecutionParameters"]
        arn = self.account.arn("athena", f"queryexecution/{query_id}", region)
        self.resources.insert(QUERY_KIND, query_id, arn, "QUEUED", doc, created_at=now,
                              lease=self.resources.new_lease())
        if token:
            with self._lock:
                self._tokens[token] = query_id
        if failure is not None:
            self._finish(query_id, "FAILED", reason=f"{failure.category}: {failure.message}")
        else:
            ctx = QueryContext(query_id, text, statement, database, output, gate=gate)
            self._executor().submit(self._execute, ctx, submitted)
        return query_id

    def _execute(self, ctx: QueryContext, submitted: float) -> None:
        started = time.perf_counter()
        res = self.resources.get(QUERY_KIND, ctx.query_id)
        if res is None or res.status != "QUEUED":
            return  # cancelled while queued
        # RUNNING is kept in memory (shown by GetQueryExecution) rather than written: one durable write
        # less per query; a server that dies leaves the row QUEUED and `recover` fails it.
        with self._lock:
            self._live[ctx.query_id] = {"State": "RUNNING",
                                        "QueryQueueTimeInMillis": int((started - submitted) * 1000)}
        try:
            outcome = self.engine.run(ctx, lambda c: self._track(ctx.query_id, c))
            written = time.perf_counter()
            self._store_results(ctx, outcome)
            outcome_ms = int((time.perf_counter() - written) * 1000)
            self._finish(ctx.query_id, "SUCCEEDED", outcome=outcome, service_ms=outcome_ms, submitted=submitted)
        except QueryFailed as exc:
            self._finish(ctx.query_id, "FAILED", reason=exc.reason, category=exc.category, submitted=submitted)
        except SagelabError as exc:
            self._finish(ctx.query_id, "FAILED", reason=exc.message, submitted=submitted)
        except Exception as exc:  # noqa: BLE001 - any failure ends the query with its reason
            self._finish(ctx.query_id, "FAILED", reason=f"GENERIC_INTERNAL_ERROR: {type(exc).__name__}: {exc}",
                         category=1, submitted=submitted)
        finally:
            with self._lock:
                self._live.pop(ctx.query_id, None)

    def _public(self, res: Resource) -> dict[str, Any]:
        doc = public(res.doc)
        with self._lock:
            live = self._live.get(res.name) if res.status == "QUEUED" else None
        if live is not None:
            doc["Status"] = {**doc["Status"], "State": live["State"]}
            doc["Statistics"] = {**doc["Statistics"], "QueryQueueTimeInMillis": live["QueryQueueTimeInMillis"]}
        return doc

    def _track(self, query_id: str, connection: duckdb.DuckDBPyConnection | None) -> None:
        with self._lock:
            if connection is None:
                self._connections.pop(query_id, None)
            else:
                self._connections[query_id] = connection

    def _store_results(self, ctx: QueryContext, outcome: Outcome) -> None:
        target = parse_s3_uri(f"{ctx.output_location.rstrip('/')}/{ctx.query_id}.csv", field="OutputLocation")
        text = outcome.text if outcome.text is not None else pa.table({})
        writes = [(target.key + ".metadata", result_files.metadata_document(outcome.columns, outcome.header),
                   "application/json")]
        if text.num_columns:
            data = result_files.to_csv(text)
            if not outcome.header:
                data = data.split(b"\n", 1)[1] if b"\n" in data else b""
            writes.append((target.key, data, "text/csv"))
        if outcome.manifest:  # the files a CTAS or INSERT INTO wrote, as Athena lists them
            writes.append((target.key.removesuffix(".csv") + "-manifest.csv",
                           "".join(f"{uri}\n" for uri in outcome.manifest).encode(), "text/csv"))

        def put(key: str, body: bytes, content_type: str) -> None:
            self.blobs.put(target.bucket, key, [body], content_type=content_type)

        # Each durable put waits on the disk; the two files are written side by side.
        with concurrent.futures.ThreadPoolExecutor(len(writes)) as writers:
            futures = [writers.submit(put, *w) for w in writes]
        for future in futures:
            try:
                future.result()
            except SagelabError as exc:
                raise QueryFailed(f"Unable to write the query results to {ctx.output_location}: "
                                  f"{exc.message}") from exc
        self.results.put(ctx.query_id, result_files.StoredResult(text, outcome.columns, outcome.header))

    def _finish(self, query_id: str, state: str, *, reason: str | None = None, category: int = 2,
                outcome: Outcome | None = None, service_ms: int = 0, submitted: float | None = None) -> None:
        now = time.time()

        def mutate(res: Resource) -> None:
            if res.status in FINISHED:
                return
            res.status = state
            with self._lock:
                queued_ms = (self._live.get(query_id) or {}).get("QueryQueueTimeInMillis")
            if queued_ms is not None:
                res.doc["Statistics"]["QueryQueueTimeInMillis"] = queued_ms
            status = res.doc["Status"]
            status.update(State=state, CompletionDateTime=now)
            stats = res.doc["Statistics"]
            if submitted is not None:
                stats["TotalExecutionTimeInMillis"] = int((time.perf_counter() - submitted) * 1000)
            if reason:
                status["StateChangeReason"] = reason
                status["AthenaError"] = {"ErrorCategory": category, "ErrorType": 1000 if category == 2 else 1,
                                         "Retryable": category == 1, "ErrorMessage": reason}
            if outcome is not None:
                stats.update(EngineExecutionTimeInMillis=outcome.engine_ms + outcome.planning_ms,
                             QueryPlanningTimeInMillis=outcome.planning_ms, DataScannedInBytes=outcome.bytes_scanned,
                             ServiceProcessingTimeInMillis=service_ms)
                if outcome.update_count is not None:
                    res.doc["_UpdateCount"] = outcome.update_count
                if outcome.manifest:
                    stats["DataManifestLocation"] = res.doc["ResultConfiguration"]["OutputLocation"].removesuffix(
                        ".csv") + "-manifest.csv"

        with contextlib.suppress(NotFound):
            self.resources.update(QUERY_KIND, query_id, mutate)

    def _get(self, query_id: str) -> Resource:
        res = self.resources.get(QUERY_KIND, query_id)
        if res is None:
            raise InvalidRequest(f"QueryExecution {query_id} was not found", "INVALID_INPUT")
        return res

    def describe(self, query_id: str) -> dict[str, Any]:
        return self._public(self._get(query_id))

    def batch_describe(self, ids: list[str]) -> dict[str, Any]:
        found, missing = [], []
        for query_id in ids:
            res = self.resources.get(QUERY_KIND, query_id)
            if res is None:
                missing.append({"QueryExecutionId": query_id, "ErrorCode": "INVALID_INPUT",
                                "ErrorMessage": f"QueryExecution {query_id} was not found"})
            else:
                found.append(self._public(res))
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def list(self, params: dict[str, Any], region: str) -> dict[str, Any]:
        group = self.workgroup(params.get("WorkGroup") or PRIMARY, region)
        rows = [r.name for r in self.resources.list(QUERY_KIND) if r.doc.get("WorkGroup") == group.name]
        items, more = page(rows, params, default_size=50, max_size=50)
        return {"QueryExecutionIds": items, **more}

    def stop(self, query_id: str) -> None:
        res = self._get(query_id)
        if res.status in FINISHED:
            return
        self._finish(query_id, "CANCELLED", reason="Query cancelled by user")
        with self._lock:
            connection = self._connections.get(query_id)
        if connection is not None:
            connection.interrupt()

    def get_results(self, params: dict[str, Any]) -> dict[str, Any]:
        res = self._get(params["QueryExecutionId"])
        if res.status != "SUCCEEDED":
            if res.status in ("QUEUED", "RUNNING"):
                raise InvalidRequest(f"Query has not yet finished. Current state: {res.status}", "INVALID_INPUT")
            raise InvalidRequest(f"Query did not finish successfully. Final query state: {res.status}",
                                 "INVALID_INPUT")
        stored = self.results.get(res.name) or self._load_result(res)
        start = _decode_offset(params.get("NextToken"))
        size = int(params.get("MaxResults") or 1000)
        rows = stored.rows(start, size)
        answer: dict[str, Any] = {"ResultSet": {"Rows": rows, "ResultSetMetadata": {"ColumnInfo": stored.columns}},
                                  "UpdateCount": res.doc.get("_UpdateCount", 0)}
        if start + size < stored.total_rows:
            answer["NextToken"] = _encode_offset(start + size)
        return answer

    def _load_result(self, res: Resource) -> result_files.StoredResult:
        location = parse_s3_uri(res.doc["ResultConfiguration"]["OutputLocation"], field="OutputLocation")
        try:
            meta = b"".join(self.blobs.read(location.bucket, location.key + ".metadata"))
            document = json.loads(meta)
            data = b"".join(self.blobs.read(location.bucket, location.key)) if document["ColumnInfo"] else b""
        except SagelabError:
            raise InvalidRequest(f"The query results of {res.name} are no longer at "
                                 f"{res.doc['ResultConfiguration']['OutputLocation']}.", "INVALID_INPUT") from None
        header = document.get("HeaderRow", True)
        text = result_files.from_csv(data if header else b"\n" + data, document["ColumnInfo"])
        stored = result_files.StoredResult(text, document["ColumnInfo"], header)
        self.results.put(res.name, stored)
        return stored

    # --- life cycle ------------------------------------------------------------------------------------
    def recover(self, left_by: str | None = None) -> None:
        """Fail the queries a stopped server was running: every one, or those of the server `left_by`."""
        for res in self.resources.left_behind(QUERY_KIND, ACTIVE_QUERY, left_by):
            self._finish(res.name, "FAILED", reason=SERVER_STOPPED, category=1)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            connections = list(self._connections.values())
        for connection in connections:
            connection.interrupt()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _encode_offset(offset: int) -> str:
    return encode_token(offset)


def _decode_offset(token: str | None) -> int:
    try:
        return decode_token(token)
    except SagelabError:
        raise InvalidRequest(f"NextToken {token!r} was not issued by this service.", "INVALID_INPUT") from None


def _bind_parameters(text: str, parameters: list[str]) -> str:
    """Athena's `?` placeholders, replaced in order by ExecutionParameters (SQL literals), outside strings."""
    if not parameters:
        return text
    out, index, quote = [], 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            if index >= len(parameters):
                raise InvalidRequest(f"The query has more ? placeholders than the {len(parameters)} "
                                     "ExecutionParameters given.", "INVALID_INPUT")
            out.append(parameters[index])
            index += 1
            continue
        out.append(char)
    if index != len(parameters):
        raise InvalidRequest(f"ExecutionParameters has {len(parameters)} values but the query has {index} "
                             "? placeholders.", "INVALID_INPUT")
    return "".join(out)
