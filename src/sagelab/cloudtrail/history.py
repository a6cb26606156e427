"""The event history: recorded calls kept durably, read by LookupEvents and by trail delivery.

Writes are group-committed: `HistoryWriter.submit` queues a record and returns an event that is set once
the transaction holding it has committed; the face waits on it before the answer is sent, so a call whose
answer the client saw is never missing from the history, while concurrent calls share one commit.
"""

from __future__ import annotations

import base64
import calendar
import json
import queue
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from sagelab.cloudtrail.errors import InvalidLookupAttributes, InvalidNextToken, InvalidTimeRange
from sagelab.storage import tables
from sagelab.storage.db import Database

#: LookupAttributes' keys -> the column (or resource column) each filters.
_ATTRIBUTE_COLUMNS = {"EventName": "event_name", "EventSource": "event_source", "ReadOnly": "read_only",
                      "Username": "username", "AccessKeyId": "access_key_id", "EventId": "event_id"}
_RESOURCE_ATTRIBUTES = {"ResourceName": "resource_name", "ResourceType": "resource_type"}
MAX_RESULTS = 50


class EventHistory:
    def __init__(self, db: Database):
        self.db = db

    def append(self, entries: Iterable[tuple[dict[str, Any], Mapping[str, Any]]]) -> None:
        """Store (record, columns) pairs in one transaction."""
        t, r = tables.cloudtrail_events, tables.cloudtrail_event_resources
        with self.db.write() as conn:
            # Trails deliver from a cursor on `id`, so ids must be taken in commit order: concurrent writers
            # (several servers on PostgreSQL) would otherwise commit a lower id after a reader moved past it.
            self.db.serialize(conn, "cloudtrail_events")
            for record, columns in entries:
                conn.execute(t.insert().values(
                    event_id=record["eventID"], event_time=columns["event_time"], event_name=record["eventName"],
                    event_source=record["eventSource"], read_only=record["readOnly"],
                    management=record["managementEvent"], username=columns["username"],
                    access_key_id=columns["access_key_id"], record=json.dumps(record, separators=(",", ":"))))
                for name, kind in {name: kind for kind, name in columns["resources"]}.items():
                    conn.execute(r.insert().values(event_id=record["eventID"], resource_name=name,
                                                   resource_type=kind))

    def lookup(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """LookupEvents: management events newest first, filtered by one attribute and a time range."""
        t = tables.cloudtrail_events
        query = sa.select(t.c.id, t.c.record).where(t.c.management.is_(True))
        attributes = params.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise InvalidLookupAttributes("LookupAttributes takes one attribute at a time.")
        for attribute in attributes:
            key, value = attribute["AttributeKey"], attribute["AttributeValue"]
            if key in _ATTRIBUTE_COLUMNS:
                column = t.c[_ATTRIBUTE_COLUMNS[key]]
                if key == "ReadOnly":
                    if value.lower() not in ("true", "false"):
                        raise InvalidLookupAttributes(f"ReadOnly must be true or false, got {value!r}.")
                    query = query.where(column.is_(value.lower() == "true"))
                else:
                    query = query.where(column == value)
            elif key in _RESOURCE_ATTRIBUTES:
                r = tables.cloudtrail_event_resources
                query = query.where(t.c.event_id.in_(sa.select(r.c.event_id).where(
                    r.c[_RESOURCE_ATTRIBUTES[key]] == value)))
            else:
                raise InvalidLookupAttributes(f"AttributeKey {key!r} is not one CloudTrail looks events up by.")
        start, end = _epoch(params.get("StartTime")), _epoch(params.get("EndTime"))
        if start is not None and end is not None and start > end:
            raise InvalidTimeRange("StartTime must not be after EndTime.")
        if start is not None:
            query = query.where(t.c.event_time >= start)
        if end is not None:
            query = query.where(t.c.event_time <= end)
        before = _token_position(params.get("NextToken"))
        if before is not None:
            query = query.where(t.c.id < before)
        size = int(params.get("MaxResults") or MAX_RESULTS)
        size = max(1, min(size, MAX_RESULTS))
        query = query.order_by(t.c.id.desc()).limit(size + 1)
        with self.db.read() as conn:
            rows = list(conn.execute(query))
        events = [_lookup_entry(json.loads(row.record)) for row in rows[:size]]
        answer: dict[str, Any] = {"Events": events}
        if len(rows) > size:
            answer["NextToken"] = base64.urlsafe_b64encode(json.dumps({"before": rows[size - 1].id}).encode()).decode()
        return answer

    def since(self, row_id: int, limit: int = 5000) -> list[tuple[int, dict[str, Any]]]:
        """(row id, record) of events committed after `row_id`, oldest first: what a trail delivers next."""
        t = tables.cloudtrail_events
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.record).where(t.c.id > row_id).order_by(t.c.id).limit(limit))
            return [(row.id, json.loads(row.record)) for row in rows]

    def last_id(self) -> int:
        t = tables.cloudtrail_events
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.max(t.c.id))).scalar() or 0)


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def _token_position(token: str | None) -> int | None:
    if not token:
        return None
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["before"])
    except (ValueError, KeyError, TypeError):
        raise InvalidNextToken(f"NextToken {token!r} was not issued by LookupEvents.") from None


def _lookup_entry(record: dict[str, Any]) -> dict[str, Any]:
    identity = record.get("userIdentity") or {}
    name = "root" if identity.get("type") == "Root" else identity.get("userName") or identity.get("arn", "")
    return {
        "EventId": record["eventID"], "EventName": record["eventName"], "ReadOnly": str(record["readOnly"]).lower(),
        "AccessKeyId": identity.get("accessKeyId", ""), "EventTime": _parse_iso(record["eventTime"]),
        "EventSource": record["eventSource"], "Username": name,
        "Resources": [{"ResourceType": r["type"], "ResourceName": r["ARN"]} for r in record.get("resources") or []],
        "CloudTrailEvent": json.dumps(record, separators=(",", ":")),
    }


def _parse_iso(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


class HistoryWriter:
    """Group commit: one thread writes whatever records are queued, in one transaction per batch."""

    def __init__(self, history: EventHistory):
        self.history = history
        self._queue: queue.SimpleQueue[tuple[dict[str, Any], Mapping[str, Any], threading.Event] | None] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, record: dict[str, Any], columns: Mapping[str, Any]) -> threading.Event:
        self._ensure_thread()
        done = threading.Event()
        self._queue.put((record, columns, done))
        return done

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="cloudtrail-history", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < 500:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._commit(batch)
                    return
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[tuple[dict[str, Any], Mapping[str, Any], threading.Event]]) -> None:
        try:
            self.history.append((record, columns) for record, columns, _ in batch)
        except Exception:  # noqa: BLE001 - a failed batch is retried one by one, so one bad record loses no other
            for record, columns, _ in batch:
                try:
                    self.history.append([(record, columns)])
                except Exception as exc:  # noqa: BLE001 - reported, and the caller is released
                    print(f"cloudtrail: could not record {record.get('eventName')}: {exc}", file=sys.stderr)
        for _, _, done in batch:
            done.set()

    def close(self) -> None:
        """Commit everything queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
