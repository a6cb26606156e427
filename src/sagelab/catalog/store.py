"""The catalog's documents: databases, tables and partitions, stored in the metadata database.

Each entity is kept as the document GetDatabase / GetTable / GetPartition answer with. Glue folds names to
lower case, and so does this store. Deleting a database deletes its tables; deleting a table deletes its
partitions (the data in the lake stays, as in Glue).
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sagelab.catalog.expressions import parse_partition_filter
from sagelab.catalog.types import parse_hive_type
from sagelab.errors import AlreadyExistsError, EntityNotFound, InvalidInput
from sagelab.storage import tables
from sagelab.storage.db import Database

_DB = tables.glue_databases
_TABLE = tables.glue_tables
_PART = tables.glue_partitions


def _values_key(values: Iterable[str]) -> str:
    return json.dumps(list(values), separators=(",", ":"))


def _check_columns(columns: Iterable[dict[str, Any]], where: str) -> None:
    for column in columns:
        if column.get("Type"):
            try:
                parse_hive_type(column["Type"])
            except InvalidInput as exc:
                raise InvalidInput(f"{where}: column {column.get('Name')!r}: {exc.message}") from None


def hive_pattern(expression: str) -> re.Pattern[str]:
    """GetTables' Expression: a regular expression in which a bare `*` means "anything" (Hive style)."""
    text = re.sub(r"(?<![.\\\]])\*", ".*", expression)
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error as exc:
        raise InvalidInput(f"Expression {expression!r} is not a valid pattern: {exc}.") from None


class CatalogStore:
    def __init__(self, db: Database, account_id: Callable[[], str]):
        self.db = db
        self._account_id = account_id

    # --- databases ----------------------------------------------------------------------------------
    def create_database(self, spec: dict[str, Any]) -> dict[str, Any]:
        name = spec["Name"].lower()
        now = time.time()
        # An explicit empty list is kept: the data lake's settings may give new tables no default grant.
        defaults = spec.get("CreateTableDefaultPermissions")
        doc = {"Name": name, "CreateTime": now, "CatalogId": self._account_id(),
               "CreateTableDefaultPermissions": defaults if defaults is not None else [
                   {"Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, "Permissions": ["ALL"]}]}
        for optional in ("Description", "LocationUri", "Parameters", "TargetDatabase", "FederatedDatabase"):
            if spec.get(optional) is not None:
                doc[optional] = spec[optional]
        try:
            with self.db.write() as conn:
                if conn.execute(sa.select(_DB.c.name).where(_DB.c.name == name)).first():
                    raise AlreadyExistsError(f"Database already exists: {name}")
                conn.execute(_DB.insert().values(name=name, created_at=now, doc=doc))
        except sa.exc.IntegrityError:  # a concurrent writer (another server) created it after our look
            raise AlreadyExistsError(f"Database already exists: {name}") from None
        return doc

    def get_database(self, name: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(sa.select(_DB.c.doc).where(_DB.c.name == name.lower())).first()
        if row is None:
            raise EntityNotFound(f"Database {name.lower()} not found.")
        return dict(row.doc)

    def database_exists(self, name: str) -> bool:
        with self.db.read() as conn:
            return conn.execute(sa.select(_DB.c.name).where(_DB.c.name == name.lower())).first() is not None

    def list_databases(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return [dict(r.doc) for r in conn.execute(sa.select(_DB.c.doc).order_by(_DB.c.name))]

    def update_database(self, name: str, spec: dict[str, Any]) -> None:
        name = name.lower()
        with self.db.write() as conn:
            # Locked from the read on: a concurrent update waits and then applies on top of this one.
            row = conn.execute(sa.select(_DB.c.doc).where(_DB.c.name == name).with_for_update()).first()
            if row is None:
                raise EntityNotFound(f"Database {name} not found.")
            if spec["Name"].lower() != name:
                raise InvalidInput(f"DatabaseInput.Name {spec['Name']!r} must match Name {name!r}: databases "
                                   "cannot be renamed.")
            doc = {k: v for k, v in dict(row.doc).items() if k in ("Name", "CreateTime", "CatalogId")}
            doc["CreateTableDefaultPermissions"] = dict(row.doc).get("CreateTableDefaultPermissions", [])
            for optional in ("Description", "LocationUri", "Parameters", "CreateTableDefaultPermissions"):
                if spec.get(optional) is not None:
                    doc[optional] = spec[optional]
            conn.execute(_DB.update().where(_DB.c.name == name).values(doc=doc))

    def delete_database(self, name: str) -> None:
        name = name.lower()
        with self.db.write() as conn:
            if conn.execute(sa.delete(_DB).where(_DB.c.name == name)).rowcount == 0:
                raise EntityNotFound(f"Database {name} not found.")
            conn.execute(sa.delete(_TABLE).where(_TABLE.c.database == name))
            conn.execute(sa.delete(_PART).where(_PART.c.database == name))

    # --- tables -------------------------------------------------------------------------------------
    def _table_doc(self, database: str, spec: dict[str, Any], *, created: float, version: int,
                   created_by: str | None) -> dict[str, Any]:
        name = spec["Name"].lower()
        sd = copy.deepcopy(spec.get("StorageDescriptor") or {})
        _check_columns(sd.get("Columns") or [], f"Table {name}")
        _check_columns(spec.get("PartitionKeys") or [], f"Table {name} partition keys")
        doc: dict[str, Any] = {
            "Name": name, "DatabaseName": database, "CreateTime": created, "UpdateTime": time.time(),
            "Retention": spec.get("Retention", 0), "StorageDescriptor": sd,
            "PartitionKeys": spec.get("PartitionKeys") or [], "TableType": spec.get("TableType", "EXTERNAL_TABLE"),
            "Parameters": spec.get("Parameters") or {}, "IsRegisteredWithLakeFormation": False,
            "CatalogId": self._account_id(), "VersionId": str(version),
        }
        if created_by:
            doc["CreatedBy"] = created_by
        for optional in ("Description", "Owner", "LastAccessTime", "LastAnalyzedTime", "ViewOriginalText",
                         "ViewExpandedText", "TargetTable"):
            if spec.get(optional) is not None:
                doc[optional] = spec[optional]
        return doc

    def create_table(self, database: str, spec: dict[str, Any], *, created_by: str | None = None) -> dict[str, Any]:
        database = database.lower()
        now = time.time()
        doc = self._table_doc(database, spec, created=now, version=0, created_by=created_by)
        try:
            with self.db.write() as conn:
                # FOR SHARE: the database cannot be deleted under the new table before this commits.
                found = sa.select(_DB.c.name).where(_DB.c.name == database).with_for_update(read=True)
                if conn.execute(found).first() is None:
                    raise EntityNotFound(f"Database {database} not found.")
                if conn.execute(sa.select(_TABLE.c.name).where(_TABLE.c.database == database,
                                                              _TABLE.c.name == doc["Name"])).first():
                    raise AlreadyExistsError(f"Table already exists: {database}.{doc['Name']}")
                conn.execute(_TABLE.insert().values(database=database, name=doc["Name"], created_at=now,
                                                    updated_at=now, doc=doc))
        except sa.exc.IntegrityError:  # a concurrent writer (another server) created it after our look
            raise AlreadyExistsError(f"Table already exists: {database}.{doc['Name']}") from None
        return doc

    def get_table(self, database: str, name: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(sa.select(_TABLE.c.doc).where(_TABLE.c.database == database.lower(),
                                                             _TABLE.c.name == name.lower())).first()
            if row is None:
                if conn.execute(sa.select(_DB.c.name).where(_DB.c.name == database.lower())).first() is None:
                    raise EntityNotFound(f"Database {database.lower()} not found.")
                raise EntityNotFound(f"Table {name.lower()} not found.")
        return dict(row.doc)

    def find_table(self, database: str, name: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(_TABLE.c.doc).where(_TABLE.c.database == database.lower(),
                                                             _TABLE.c.name == name.lower())).first()
        return dict(row.doc) if row else None

    def list_tables(self, database: str, expression: str | None = None) -> list[dict[str, Any]]:
        database = database.lower()
        self.get_database(database)
        pattern = hive_pattern(expression) if expression else None
        with self.db.read() as conn:
            rows = conn.execute(sa.select(_TABLE.c.doc).where(_TABLE.c.database == database).order_by(_TABLE.c.name))
            docs = [dict(r.doc) for r in rows]
        return [d for d in docs if pattern is None or pattern.fullmatch(d["Name"])]

    def table_names(self, database: str) -> list[str]:
        with self.db.read() as conn:
            return [r.name for r in conn.execute(sa.select(_TABLE.c.name).where(_TABLE.c.database == database.lower()))]

    def update_table(self, database: str, spec: dict[str, Any]) -> dict[str, Any]:
        database, name = database.lower(), spec["Name"].lower()
        with self.db.write() as conn:
            # Locked from the read on, so concurrent updates each get their own VersionId.
            row = conn.execute(sa.select(_TABLE).where(_TABLE.c.database == database, _TABLE.c.name == name)
                               .with_for_update()).first()
            if row is None:
                raise EntityNotFound(f"Table {name} not found.")
            old = dict(row.doc)
            doc = self._table_doc(database, spec, created=old["CreateTime"],
                                  version=int(old.get("VersionId", "0")) + 1, created_by=old.get("CreatedBy"))
            conn.execute(_TABLE.update().where(_TABLE.c.database == database, _TABLE.c.name == name).values(
                updated_at=doc["UpdateTime"], doc=doc))
        return doc

    def delete_table(self, database: str, name: str) -> None:
        database, name = database.lower(), name.lower()
        with self.db.write() as conn:
            deleted = conn.execute(sa.delete(_TABLE).where(_TABLE.c.database == database, _TABLE.c.name == name))
            if deleted.rowcount == 0:
                raise EntityNotFound(f"Table {name} not found.")
            conn.execute(sa.delete(_PART).where(_PART.c.database == database, _PART.c.table_name == name))

    # --- partitions ---------------------------------------------------------------------------------
    def _partition_doc(self, table: dict[str, Any], spec: dict[str, Any], now: float) -> dict[str, Any]:
        values = list(spec.get("Values") or [])
        keys = table.get("PartitionKeys") or []
        if len(values) != len(keys):
            raise InvalidInput(f"The number of partition values ({len(values)}) does not match the number of "
                               f"partition keys of table {table['Name']} ({len(keys)}: "
                               f"{', '.join(k['Name'] for k in keys) or 'none'}).")
        sd = copy.deepcopy(spec.get("StorageDescriptor") or {})
        _check_columns(sd.get("Columns") or [], f"Partition {values}")
        doc = {"Values": values, "DatabaseName": table["DatabaseName"], "TableName": table["Name"],
               "CreationTime": now, "StorageDescriptor": sd, "Parameters": spec.get("Parameters") or {},
               "CatalogId": self._account_id()}
        for optional in ("LastAccessTime", "LastAnalyzedTime"):
            if spec.get(optional) is not None:
                doc[optional] = spec[optional]
        return doc

    def create_partitions(self, database: str, table_name: str, specs: list[dict[str, Any]],
                          *, replace: bool = False) -> list[dict[str, Any]]:
        """Add partitions; returns Glue's PartitionError entries for the ones that could not be added."""
        table = self.get_table(database, table_name)
        now = time.time()

        def add(conn: Connection) -> list[dict[str, Any]]:
            errors: list[dict[str, Any]] = []
            for spec in specs:
                try:
                    doc = self._partition_doc(table, spec, now)
                except InvalidInput as exc:
                    errors.append(_partition_error(spec.get("Values") or [], "InvalidInputException", exc.message))
                    continue
                key = _values_key(doc["Values"])
                where = (_PART.c.database == table["DatabaseName"], _PART.c.table_name == table["Name"],
                         _PART.c.values_key == key)
                if conn.execute(sa.select(_PART.c.values_key).where(*where)).first():
                    if not replace:
                        errors.append(_partition_error(doc["Values"], "AlreadyExistsException",
                                                       "Partition already exists."))
                        continue
                    conn.execute(sa.delete(_PART).where(*where))
                conn.execute(_PART.insert().values(database=table["DatabaseName"], table_name=table["Name"],
                                                   values_key=key, created_at=now, doc=doc))
            return errors

        # Two writers adding one partition at once both find it absent; the loser runs again and sees it.
        return self.db.write_retrying(add)

    def get_partition(self, database: str, table_name: str, values: list[str]) -> dict[str, Any]:
        table = self.get_table(database, table_name)
        with self.db.read() as conn:
            row = conn.execute(sa.select(_PART.c.doc).where(
                _PART.c.database == table["DatabaseName"], _PART.c.table_name == table["Name"],
                _PART.c.values_key == _values_key(values))).first()
        if row is None:
            raise EntityNotFound("Cannot find partition.")
        return dict(row.doc)

    def list_partitions(self, database: str, table_name: str, expression: str | None = None,
                        *, table: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        table = table or self.get_table(database, table_name)
        keys = table.get("PartitionKeys") or []
        predicate = parse_partition_filter(expression, {k["Name"]: k.get("Type", "string") for k in keys})
        with self.db.read() as conn:
            rows = conn.execute(sa.select(_PART.c.doc).where(
                _PART.c.database == table["DatabaseName"], _PART.c.table_name == table["Name"]).order_by(
                _PART.c.created_at, _PART.c.values_key))
            docs = [dict(r.doc) for r in rows]
        names = [k["Name"].lower() for k in keys]
        return [d for d in docs if predicate(dict(zip(names, d["Values"], strict=False)))]

    def delete_partitions(self, database: str, table_name: str, values_list: list[list[str]]) -> list[dict[str, Any]]:
        table = self.get_table(database, table_name)
        errors = []
        with self.db.write() as conn:
            for values in values_list:
                deleted = conn.execute(sa.delete(_PART).where(
                    _PART.c.database == table["DatabaseName"], _PART.c.table_name == table["Name"],
                    _PART.c.values_key == _values_key(values)))
                if deleted.rowcount == 0:
                    errors.append(_partition_error(values, "EntityNotFoundException", "Cannot find partition."))
        return errors


def _partition_error(values: list[str], code: str, message: str) -> dict[str, Any]:
    return {"PartitionValues": list(values), "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message}}
