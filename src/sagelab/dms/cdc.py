"""Change data capture from PostgreSQL through logical decoding, polled over SQL.

A task owns one replication slot (`test_decoding`), created when the task first starts, before its full
load, so no change between the snapshot and the first poll is lost. Each poll *peeks* the slot's
changes; only once their files are in the lake is the slot advanced past them. A crash in between replays
those changes again (at least once, as DMS's own recovery does), and a crash before loses nothing: the
slot keeps what was not confirmed, across restarts of sagelab and of Postgres.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from typing import Any

import sqlalchemy as sa

#: A decoded row change: `table public.items: UPDATE: id[integer]:1 name[text]:'x'`.
_CHANGE = re.compile(r'table (?P<schema>"(?:[^"]|"")*"|[^.]+)\.(?P<table>"(?:[^"]|"")*"|[^:]+): '
                     r"(?P<op>INSERT|UPDATE|DELETE): (?P<rest>.*)", re.DOTALL)
_VALUE = re.compile(r'(?P<name>"(?:[^"]|"")*"|[^\[\s]+)\[(?P<type>[^\]]+(?:\[\])?)\]:'
                    r"(?P<value>'(?:[^']|'')*'|\S+)", re.DOTALL)
_COMMIT_AT = re.compile(r"COMMIT \d+ \(at (?P<at>[^)]+)\)")
_OPS = {"INSERT": "I", "UPDATE": "U", "DELETE": "D"}
#: Changes taken from the slot per poll.
MAX_CHANGES = 10_000


@dataclasses.dataclass(frozen=True)
class Change:
    schema: str
    table: str
    op: str
    values: dict[str, Any]
    committed_at: float


def slot_name(task_arn: str) -> str:
    return "sagelab_dms_" + hashlib.sha256(task_arn.encode()).hexdigest()[:20]


def ensure_slot(engine: sa.Engine, slot: str) -> None:
    with engine.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_replication_slots WHERE slot_name = :s"), {"s": slot}).first()
        if exists is None:
            conn.execute(sa.text("SELECT pg_create_logical_replication_slot(:s, 'test_decoding')"), {"s": slot})
            conn.commit()


def drop_slot(engine: sa.Engine, slot: str) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                             "WHERE slot_name = :s AND NOT active"), {"s": slot})
        conn.commit()


def peek(engine: sa.Engine, slot: str) -> tuple[list[Change], str | None]:
    """The committed changes the slot holds (whole transactions) and the LSN to confirm them up to."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT lsn::text, data FROM pg_logical_slot_peek_changes(:s, NULL, :n, 'include-timestamp', 'on', "
            "'include-xids', 'off')"), {"s": slot, "n": MAX_CHANGES}).all()
    changes: list[Change] = []
    pending: list[tuple[str, str, str, dict[str, Any]]] = []
    confirmed: str | None = None
    for lsn, data in rows:
        if data.startswith("BEGIN"):
            pending = []
        elif data.startswith("COMMIT"):
            at = _COMMIT_AT.match(data)
            when = _commit_time(at["at"]) if at else 0.0
            changes.extend(Change(s, t, op, v, when) for s, t, op, v in pending)
            pending, confirmed = [], lsn
        else:
            parsed = _CHANGE.match(data)
            if parsed:  # anything else (a TRUNCATE, a message) is not a row change
                pending.append((_ident(parsed["schema"]), _ident(parsed["table"]), _OPS[parsed["op"]],
                                _values(parsed["rest"])))
    return changes, confirmed


def advance(engine: sa.Engine, slot: str, lsn: str) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_replication_slot_advance(:s, CAST(:l AS pg_lsn))"), {"s": slot, "l": lsn})
        conn.commit()


def _ident(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


def _values(text: str) -> dict[str, Any]:
    if text.strip() == "(no-tuple-data)":
        return {}
    if "new-tuple: " in text:  # an UPDATE that changed the key also shows the old key first
        text = text.split("new-tuple: ", 1)[1]
    values: dict[str, Any] = {}
    for match in _VALUE.finditer(text):
        raw = match["value"]
        if raw == "null":
            value: Any = None
        elif raw.startswith("'"):
            value = raw[1:-1].replace("''", "'")
        else:
            value = raw
        values[_ident(match["name"])] = value
    return values


def _commit_time(text: str) -> float:
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0
