"""Kinesis Data Analytics (SQL) applications: continuous SQL over a Kinesis stream, on DuckDB.

An application is a resource document (what DescribeApplication answers, plus its read positions); a
running one has an `ApplicationRunner` that one thread ticks every `TICK_SECONDS`: the records that arrived
on the input stream since the last tick go through the pumps, and what the pumps produce is written to the
outputs (a Kinesis stream or a Firehose delivery stream) as JSON lines or CSV. Positions are saved after
each tick, so an application that was RUNNING when the server stopped resumes where it was (tumbling
windows open at the time restart from their first row after it). Output is written before the positions
are saved: a crash in between writes that tick's output again (at least once).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sagelab.account import Account
from sagelab.analytics.runner import ApplicationRunner, InputSpec, arrow_type
from sagelab.analytics.sql import Plan, parse
from sagelab.errors import SagelabError, ValidationError
from sagelab.storage.resources import AlreadyExists, NotFound, ResourceStore
from sagelab.streams.errors import InvalidArgument, ResourceNotFoundError, StreamInUse

if TYPE_CHECKING:
    from sagelab.firehose.service import DeliveryStreamService
    from sagelab.streams.service import StreamService

KIND = "kinesisanalytics-application"
#: The statuses of an application whose runner a server keeps.
RUNNING = ("RUNNING", "STARTING")
TICK_SECONDS = 1.0


class CodeValidation(SagelabError):
    code = "CodeValidationException"


class AnalyticsService:
    def __init__(self, *, resources: ResourceStore, account: Account, streams: StreamService,
                 firehose: DeliveryStreamService, clock: Callable[[], float] = time.time):
        self.resources, self.account, self.streams, self.firehose, self.clock = (
            resources, account, streams, firehose, clock)
        self._runners: dict[str, tuple[ApplicationRunner, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------------------
    def recover(self, left_by: str | None = None) -> None:
        """Start again the applications a stopped server ran: every one, or those of the server `left_by`."""
        for resource in self.resources.left_behind(KIND, RUNNING, left_by):
            self._launch(resource.name, resource.doc, "LAST_STOPPED_POINT")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            runners, self._runners = list(self._runners.values()), {}
        for runner, _ in runners:
            runner.close()

    # --- applications -------------------------------------------------------------------------------------
    def create(self, params: dict[str, Any], region: str) -> dict[str, Any]:
        name = params["ApplicationName"]
        code = params.get("ApplicationCode", "")
        if code:
            self._plan(code)
        inputs = params.get("Inputs", [])
        if len(inputs) > 1:
            raise InvalidArgument("An application has at most one input.")
        for given in inputs:
            if "KinesisStreamsInput" not in given:
                raise InvalidArgument("sagelab reads Kinesis streams only: give KinesisStreamsInput.")
            self.streams.describe_stream_summary(given["KinesisStreamsInput"]["ResourceARN"])
            for column in given["InputSchema"]["RecordColumns"]:
                try:
                    arrow_type(column["SqlType"])
                except ValueError as exc:
                    raise InvalidArgument(f"RecordColumn {column['Name']}: {exc}") from None
        now = self.clock()
        arn = self.account.arn("kinesisanalytics", f"application/{name}", region)
        doc = {"ApplicationName": name, "ApplicationDescription": params.get("ApplicationDescription", ""),
               "ApplicationARN": arn, "CreateTimestamp": now, "LastUpdateTimestamp": now, "ApplicationVersionId": 1,
               "ApplicationCode": code,
               "InputDescriptions": [{"InputId": f"{i + 1}.1", "NamePrefix": x["NamePrefix"],
                                      "InAppStreamNames": [f"{x['NamePrefix']}_001"],
                                      "KinesisStreamsInputDescription": x["KinesisStreamsInput"],
                                      "InputSchema": x["InputSchema"],
                                      "InputParallelism": {"Count": 1},
                                      "InputStartingPositionConfiguration": {}} for i, x in enumerate(inputs)],
               "OutputDescriptions": [{"OutputId": f"{i + 1}.1", "Name": x["Name"], "DestinationSchema":
                                       x["DestinationSchema"], **{
                                           f"{k}Description": v for k, v in x.items()
                                           if k in ("KinesisStreamsOutput", "KinesisFirehoseOutput")}}
                                      for i, x in enumerate(params.get("Outputs", []))],
               "_positions": {}}
        try:
            self.resources.insert(KIND, name, arn, "READY", doc, created_at=now)
        except AlreadyExists:
            raise StreamInUse(f"Application {name} already exists.") from None
        return {"ApplicationSummary": {"ApplicationName": name, "ApplicationARN": arn, "ApplicationStatus": "READY"}}

    def describe(self, name: str) -> dict[str, Any]:
        resource = self._resource(name)
        return {"ApplicationDetail": {**{k: v for k, v in resource.doc.items() if not k.startswith("_")},
                                      "ApplicationStatus": resource.status}}

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        resources = sorted(self.resources.list(KIND), key=lambda r: r.name)
        if params.get("ExclusiveStartApplicationName"):
            resources = [r for r in resources if r.name > params["ExclusiveStartApplicationName"]]
        size = params.get("Limit") or 50
        return {"ApplicationSummaries": [{"ApplicationName": r.name, "ApplicationARN": r.arn,
                                          "ApplicationStatus": r.status} for r in resources[:size]],
                "HasMoreApplications": len(resources) > size}

    def delete(self, name: str, created: Any) -> None:
        resource = self._resource(name)
        if abs(float(created) - resource.doc["CreateTimestamp"]) > 1:
            raise InvalidArgument(f"CreateTimestamp does not match application {name}'s creation time.")
        self._halt(name)
        self.resources.delete(KIND, name)

    def start(self, name: str, configurations: list[dict[str, Any]]) -> None:
        resource = self._resource(name)
        if resource.status == "RUNNING":
            raise StreamInUse(f"Application {name} is already running.")
        doc = resource.doc
        if not doc["InputDescriptions"] or not doc["ApplicationCode"]:
            raise ValidationError(f"Application {name} needs an input and application code to start.")
        position = "NOW"
        for config in configurations:
            position = config.get("InputStartingPositionConfiguration", {}).get("InputStartingPosition", position)
        self._launch(name, doc, position)

    def stop(self, name: str) -> None:
        self._resource(name)
        self._halt(name)
        self.resources.update(KIND, name, lambda r: setattr(r, "status", "READY"))

    # --- running ------------------------------------------------------------------------------------------
    def _launch(self, name: str, doc: dict[str, Any], position: str) -> None:
        lease = self.resources.new_lease()  # names this server: if it dies, another one launches it again
        with contextlib.suppress(NotFound):
            self.resources.update(KIND, name, lambda r: setattr(r, "lease", lease))
        given = doc["InputDescriptions"][0]
        schema = given["InputSchema"]
        record_format = schema["RecordFormat"]
        csv = record_format.get("MappingParameters", {}).get("CSVMappingParameters", {})
        source = InputSpec(
            stream=given["KinesisStreamsInputDescription"]["ResourceARN"], in_app=given["InAppStreamNames"][0],
            columns=[(c["Name"], c["SqlType"], (c.get("Mapping") or c["Name"]).rsplit(".", 1)[-1])
                     for c in schema["RecordColumns"]],
            format=record_format["RecordFormatType"], row_delimiter=csv.get("RecordRowDelimiter", "\n"),
            column_delimiter=csv.get("RecordColumnDelimiter", ","))
        outputs = {o["Name"].upper(): o for o in doc["OutputDescriptions"]}
        state: dict[str, Any] = {"source": source.stream, "positions": {}}
        for shard in self.streams.shard_numbers(source.stream):
            saved = doc["_positions"].get(str(shard))
            if position == "LAST_STOPPED_POINT" and saved is not None:
                state["positions"][shard] = saved
            elif position == "TRIM_HORIZON":
                state["positions"][shard] = -1
            else:
                state["positions"][shard] = self.streams.latest_counter(source.stream)
        runner = ApplicationRunner(self._plan(doc["ApplicationCode"]), source,
                                   lambda target, rows: self._emit(outputs, target, rows))
        with self._lock:
            old = self._runners.pop(name, None)
            self._runners[name] = (runner, state)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="analytics", daemon=True)
                self._thread.start()
        if old is not None:
            old[0].close()
        self.resources.update(KIND, name, lambda r: (setattr(r, "status", "RUNNING"), r.doc.update(
            InputDescriptions=[{**given, "InputStartingPositionConfiguration": {
                "InputStartingPosition": position}}])))

    def _halt(self, name: str) -> None:
        with self._lock:
            entry = self._runners.pop(name, None)
        if entry is not None:
            entry[0].close()

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                running = list(self._runners.items())
            for name, (runner, state) in running:
                try:
                    self.tick(name, runner, state)
                except Exception as exc:  # noqa: BLE001 - one application's failure must not stop the others
                    print(f"analytics: application {name} failed a tick: {type(exc).__name__}: {exc}",
                          file=sys.stderr)

    def tick(self, name: str, runner: ApplicationRunner, state: dict[str, Any]) -> None:
        records = []
        for shard in self.streams.shard_numbers(state["source"]):
            after = state["positions"].get(shard, -1)
            read = self.streams.read_shard(state["source"], shard, after, 10_000)
            if read:
                state["positions"][shard] = read[-1].counter
                records += [(r.arrival_ms, r.data) for r in read]
        records.sort(key=lambda item: item[0])
        with self._lock:
            if self._runners.get(name, (None,))[0] is not runner:
                return
            runner.tick(records, self.clock())
        if records:
            self.resources.update(KIND, name, lambda r: r.doc.update(
                _positions={str(k): v for k, v in state["positions"].items()}))

    def _emit(self, outputs: dict[str, dict[str, Any]], target: str, rows: list[dict[str, Any]]) -> None:
        output = outputs.get(target.upper())
        if output is None:
            return  # an in-app stream no output reads
        as_csv = output["DestinationSchema"]["RecordFormatType"] == "CSV"
        lines = [(",".join("" if v is None else str(v) for v in row.values()) if as_csv
                  else json.dumps(row, default=_jsonable)).encode() + b"\n" for row in rows]
        for start in range(0, len(lines), 500):
            chunk = lines[start:start + 500]
            if "KinesisStreamsOutputDescription" in output:
                arn = output["KinesisStreamsOutputDescription"]["ResourceARN"]
                self.streams.put_records(arn, [(uuid.uuid4().hex, line, None) for line in chunk])
            elif "KinesisFirehoseOutputDescription" in output:
                arn = output["KinesisFirehoseOutputDescription"]["ResourceARN"]
                self.firehose.put(arn.rsplit("/", 1)[-1], chunk)

    # --- helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def _plan(code: str) -> Plan:
        try:
            return parse(code)
        except ValidationError as exc:
            raise CodeValidation(exc.message) from None

    def _resource(self, name: str):
        resource = self.resources.get(KIND, name)
        if resource is None:
            raise ResourceNotFoundError(f"Application {name} under account {self.account.id} not found.")
        return resource


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
    return str(value)
