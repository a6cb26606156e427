"""Typed reads and writes of AWS resource documents (training jobs, models, endpoints, ...)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from sagelab.storage import tables
from sagelab.storage.db import Database


@dataclasses.dataclass
class Resource:
    kind: str
    name: str
    arn: str
    status: str
    created_at: float
    modified_at: float
    lease: str | None
    doc: dict[str, Any]


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """A Describe document without sagelab's private fields (names starting with '_')."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


class AlreadyExists(Exception):
    pass


class NotFound(Exception):
    pass


class LeaseLost(Exception):
    """The writer no longer owns the resource (it was stopped or taken over)."""


_SORT_COLUMNS = {"Name": tables.resources.c.name, "CreationTime": tables.resources.c.created_at,
                 "Status": tables.resources.c.status, "LastModifiedTime": tables.resources.c.modified_at}


def lease_owner(lease: str | None) -> str | None:
    """The server that issued a lease ("<server id>.<nonce>"); None for one issued outside a server."""
    if not lease or "." not in lease:
        return None
    return lease.partition(".")[0]


def _row_to_resource(row: Any) -> Resource:
    return Resource(kind=row.kind, name=row.name, arn=row.arn, status=row.status, created_at=row.created_at,
                    modified_at=row.modified_at, lease=row.lease, doc=dict(row.doc))


class ResourceStore:
    """`owner` is the id of the server using the store: the leases it issues name it, so that when it dies
    another server sharing the database knows whose work to take over."""

    def __init__(self, db: Database, *, owner: str | None = None):
        self.db = db
        self.owner = owner

    def new_lease(self) -> str:
        nonce = uuid.uuid4().hex
        return f"{self.owner}.{nonce}" if self.owner else nonce

    def insert(self, kind: str, name: str, arn: str, status: str, doc: dict[str, Any],
               *, created_at: float | None = None, lease: str | None = None) -> Resource:
        now = created_at if created_at is not None else time.time()
        t = tables.resources
        try:
            with self.db.write() as conn:
                exists = conn.execute(sa.select(t.c.name).where(t.c.kind == kind, t.c.name == name)).first()
                if exists:
                    raise AlreadyExists(name)
                conn.execute(t.insert().values(kind=kind, name=name, arn=arn, status=status, created_at=now,
                                               modified_at=now, lease=lease, doc=doc))
        except sa.exc.IntegrityError:
            # A concurrent writer (another server, on PostgreSQL) inserted it between our look and our insert.
            if self.get(kind, name) is None and self.get_by_arn(arn) is None:
                raise
            raise AlreadyExists(name) from None
        return Resource(kind, name, arn, status, now, now, lease, doc)

    def get(self, kind: str, name: str) -> Resource | None:
        t = tables.resources
        with self.db.read() as conn:
            row = conn.execute(sa.select(t).where(t.c.kind == kind, t.c.name == name)).first()
        return _row_to_resource(row) if row else None

    def get_by_arn(self, arn: str) -> Resource | None:
        t = tables.resources
        with self.db.read() as conn:
            row = conn.execute(sa.select(t).where(t.c.arn == arn)).first()
        return _row_to_resource(row) if row else None

    def update(self, kind: str, name: str, mutate: Callable[[Resource], None],
               *, lease: str | None = None) -> Resource:
        """Read-modify-write in one transaction. With `lease`, refuse unless the caller still owns it.

        The row is locked from the read on (FOR UPDATE), so a concurrent writer waits and then mutates what
        this one wrote: no update is lost and a lease checked here cannot change before the write."""
        t = tables.resources
        with self.db.write() as conn:
            row = conn.execute(sa.select(t).where(t.c.kind == kind, t.c.name == name).with_for_update()).first()
            if row is None:
                raise NotFound(name)
            res = _row_to_resource(row)
            if lease is not None and res.lease != lease:
                raise LeaseLost(name)
            mutate(res)
            res.modified_at = time.time()
            conn.execute(t.update().where(t.c.kind == kind, t.c.name == name).values(
                status=res.status, modified_at=res.modified_at, lease=res.lease, doc=res.doc))
        return res

    def delete(self, kind: str, name: str) -> bool:
        t = tables.resources
        with self.db.write() as conn:
            row = conn.execute(sa.select(t.c.arn).where(t.c.kind == kind, t.c.name == name)).first()
            if row is None:
                return False
            conn.execute(t.delete().where(t.c.kind == kind, t.c.name == name))
            conn.execute(tables.tags.delete().where(tables.tags.c.arn == row.arn))
        return True

    def list(self, kind: str, *, name_contains: str | None = None, status: str | None = None,
             created_after: float | None = None, created_before: float | None = None,
             modified_after: float | None = None, modified_before: float | None = None,
             sort_by: str = "CreationTime", descending: bool = True,
             where: Iterable[sa.ColumnElement[bool]] = ()) -> list[Resource]:
        t = tables.resources
        query = sa.select(t).where(t.c.kind == kind, *where)
        if name_contains:
            # Case-insensitive on every backend (SQLite's LIKE is, PostgreSQL's is not), as SageMaker's is.
            query = query.where(t.c.name.icontains(name_contains, autoescape=True))
        if status:
            query = query.where(t.c.status == status)
        if created_after is not None:
            query = query.where(t.c.created_at > created_after)
        if created_before is not None:
            query = query.where(t.c.created_at < created_before)
        if modified_after is not None:
            query = query.where(t.c.modified_at > modified_after)
        if modified_before is not None:
            query = query.where(t.c.modified_at < modified_before)
        column = _SORT_COLUMNS.get(sort_by, t.c.created_at)
        query = query.order_by(column.desc() if descending else column.asc(), t.c.name.asc())
        with self.db.read() as conn:
            return [_row_to_resource(r) for r in conn.execute(query)]

    def list_for_request(self, kind: str, params: dict[str, Any]) -> list[Resource]:
        """Rows matching a SageMaker List* request's standard filters and sort order."""
        return self.list(
            kind, name_contains=params.get("NameContains"), status=params.get("StatusEquals"),
            created_after=params.get("CreationTimeAfter"), created_before=params.get("CreationTimeBefore"),
            modified_after=params.get("LastModifiedTimeAfter"), modified_before=params.get("LastModifiedTimeBefore"),
            sort_by=params.get("SortBy", "CreationTime"), descending=params.get("SortOrder", "Descending") == "Descending")

    def in_status(self, kind: str, statuses: Iterable[str]) -> list[Resource]:
        t = tables.resources
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.kind == kind, t.c.status.in_(list(statuses))))
            return [_row_to_resource(r) for r in rows]

    def left_behind(self, kind: str, statuses: Iterable[str], owner: str | None = None) -> list[Resource]:
        """Resources in `statuses` whose work a server left: those whose lease `owner` issued, or all of them
        when no owner is named (a server starting alone on its database)."""
        found = self.in_status(kind, statuses)
        return found if owner is None else [r for r in found if lease_owner(r.lease) == owner]

    def lease_owners(self, active: dict[str, Iterable[str]]) -> set[str]:
        """The servers whose leases hold resources of each kind in one of its active statuses."""
        t = tables.resources
        where = sa.or_(*(sa.and_(t.c.kind == kind, t.c.status.in_(list(statuses)))
                         for kind, statuses in active.items()))
        with self.db.read() as conn:
            leases = conn.execute(sa.select(t.c.lease).where(where, t.c.lease.is_not(None)).distinct()).scalars()
            return {owner for owner in map(lease_owner, leases) if owner}

    # --- tags -------------------------------------------------------------------------------------
    def put_tags(self, arn: str, tags: dict[str, str]) -> None:
        if not tags:
            return
        t = tables.tags
        # An upsert: two writers tagging one key at once would both find nothing to replace and both insert.
        # SQLite and PostgreSQL spell it alike (INSERT ... ON CONFLICT DO UPDATE).
        dialect = postgresql if self.db.is_postgres else sqlite
        statement = dialect.insert(t).values([{"arn": arn, "key": k, "value": v} for k, v in tags.items()])
        statement = statement.on_conflict_do_update(index_elements=[t.c.arn, t.c.key],
                                                    set_={"value": statement.excluded.value})
        with self.db.write() as conn:
            conn.execute(statement)

    def get_tags(self, arn: str) -> dict[str, str]:
        t = tables.tags
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.c.key, t.c.value).where(t.c.arn == arn).order_by(t.c.key))
            return {r.key: r.value for r in rows}

    def delete_tags(self, arn: str, keys: Iterable[str]) -> None:
        t = tables.tags
        with self.db.write() as conn:
            conn.execute(t.delete().where(t.c.arn == arn, t.c.key.in_(list(keys))))

    # --- small key/value facts (account id, ...) --------------------------------------------------
    def get_or_create_value(self, key: str, make: Callable[[], str]) -> str:
        t = tables.settings_kv
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.c.value).where(t.c.key == key)).first()
            if row:
                return row.value

        def create(conn: Connection) -> str:
            row = conn.execute(sa.select(t.c.value).where(t.c.key == key)).first()
            if row:
                return row.value
            value = make()
            conn.execute(t.insert().values(key=key, value=value))
            return value

        # Servers starting together race to create it: the loser runs again and reads the winner's value.
        return self.db.write_retrying(create)
