"""What a Lake Formation permission is on, and who it is for: wire shapes read once into typed values.

A `Resource` member of GrantPermissions names exactly one of Catalog, Database, Table (one table or every
table of a database: TableWildcard), TableWithColumns (named columns, or every column but the excluded
ones), DataLocation and DataCellsFilter. Each becomes a frozen value with a `key` that identifies it in the
store (two grants on the same thing merge) and a `wire` form that ListPermissions answers with.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from sagelab.errors import InvalidInput

IAM_ALLOWED_PRINCIPALS = "IAM_ALLOWED_PRINCIPALS"
PERMISSIONS = ("ALL", "SELECT", "ALTER", "DROP", "DELETE", "INSERT", "DESCRIBE", "CREATE_DATABASE",
               "CREATE_TABLE", "DATA_LOCATION_ACCESS")
#: Which permissions each kind of resource can carry (Lake Formation's permissions reference).
ALLOWED = {
    "Catalog": frozenset({"ALL", "CREATE_DATABASE", "DESCRIBE", "ALTER", "DROP"}),
    "Database": frozenset({"ALL", "ALTER", "DROP", "DESCRIBE", "CREATE_TABLE"}),
    "Table": frozenset({"ALL", "SELECT", "ALTER", "DROP", "DELETE", "INSERT", "DESCRIBE"}),
    "TableWithColumns": frozenset({"SELECT"}),
    "DataLocation": frozenset({"DATA_LOCATION_ACCESS"}),
    "DataCellsFilter": frozenset({"SELECT", "DESCRIBE", "DROP"}),
}
_PRINCIPAL = re.compile(r"arn:aws:iam::\d{12}:(user|role|group)/[\w+=,.@/-]+|\d{12}")
_S3_ARN = re.compile(r"arn:aws:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?")


def principal_id(principal: Any, field: str) -> str:
    """The DataLakePrincipalIdentifier of a DataLakePrincipal, checked."""
    value = (principal or {}).get("DataLakePrincipalIdentifier") if isinstance(principal, Mapping) else None
    if not value:
        raise InvalidInput(f"{field}.DataLakePrincipalIdentifier is required: an IAM user or role ARN, an "
                           f"account id or {IAM_ALLOWED_PRINCIPALS}.")
    if value != IAM_ALLOWED_PRINCIPALS and not _PRINCIPAL.fullmatch(value):
        raise InvalidInput(f"{field}.DataLakePrincipalIdentifier must be an IAM user or role ARN "
                           f"(arn:aws:iam::<account>:user/<name>), an account id or {IAM_ALLOWED_PRINCIPALS}; "
                           f"got {value!r}.")
    return value


def s3_location_arn(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _S3_ARN.fullmatch(value):
        raise InvalidInput(f"{field} must be the ARN of an Amazon S3 location (arn:aws:s3:::bucket/prefix); "
                           f"got {value!r}.")
    return value.rstrip("/")


@dataclasses.dataclass(frozen=True)
class Resource:
    """One thing permissions are granted on. `kind` is the Resource member's name."""

    kind: str
    database: str = ""
    #: The table's name; "" for a TableWildcard.
    table: str = ""
    #: TableWithColumns: the named columns, or (with `column_wildcard`) the excluded ones.
    columns: tuple[str, ...] = ()
    column_wildcard: bool = False
    location: str = ""
    filter_name: str = ""

    @property
    def key(self) -> str:
        parts = {"Catalog": "catalog", "Database": f"database/{self.database}",
                 "Table": f"table/{self.database}/{self.table or '*'}",
                 "TableWithColumns": f"columns/{self.database}/{self.table}/{'-' if self.column_wildcard else '+'}"
                                     f"{','.join(self.columns)}",
                 "DataLocation": f"location/{self.location}",
                 "DataCellsFilter": f"filter/{self.database}/{self.table}/{self.filter_name}"}
        return parts[self.kind]

    @property
    def wildcard(self) -> bool:
        return self.kind == "Table" and not self.table

    def on_table(self, database: str, table: str) -> bool:
        """Whether the resource is the table, its columns, a filter of it, or every table of its database."""
        return (self.kind in ("Table", "TableWithColumns", "DataCellsFilter") and self.database == database
                and self.table in ("", table))

    def wire(self, catalog_id: str) -> dict[str, Any]:
        if self.kind == "Catalog":
            return {"Catalog": {}}
        if self.kind == "Database":
            return {"Database": {"CatalogId": catalog_id, "Name": self.database}}
        if self.kind == "Table":
            named = {"Name": self.table} if self.table else {"TableWildcard": {}}
            return {"Table": {"CatalogId": catalog_id, "DatabaseName": self.database, **named}}
        if self.kind == "TableWithColumns":
            columns = ({"ColumnWildcard": {"ExcludedColumnNames": list(self.columns)}} if self.column_wildcard
                       else {"ColumnNames": list(self.columns)})
            return {"TableWithColumns": {"CatalogId": catalog_id, "DatabaseName": self.database,
                                         "Name": self.table, **columns}}
        if self.kind == "DataLocation":
            return {"DataLocation": {"CatalogId": catalog_id, "ResourceArn": self.location}}
        return {"DataCellsFilter": {"TableCatalogId": catalog_id, "DatabaseName": self.database,
                                    "TableName": self.table, "Name": self.filter_name}}

    def selected_columns(self, all_columns: list[str]) -> list[str]:
        """The columns of a TableWithColumns resource, in the table's order."""
        if self.column_wildcard:
            excluded = set(self.columns)
            return [c for c in all_columns if c not in excluded]
        named = set(self.columns)
        return [c for c in all_columns if c in named]


def _name(spec: Mapping[str, Any], member: str, field: str) -> str:
    value = spec.get(member)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field}.{member} is required.")
    return value.lower()


def read_resource(spec: Any, field: str = "Resource") -> Resource:
    """The one resource a Resource member names; InvalidInputException naming the member otherwise."""
    given = [k for k, v in (spec or {}).items() if v is not None] if isinstance(spec, Mapping) else []
    known = [k for k in given if k in ALLOWED]
    if len(known) != 1:
        raise InvalidInput(f"{field} must name exactly one of {', '.join(ALLOWED)}; got "
                           f"{', '.join(given) or 'none'}.")
    kind = known[0]
    body = spec[kind]
    where = f"{field}.{kind}"
    if kind == "Catalog":
        return Resource("Catalog")
    if kind == "Database":
        return Resource("Database", database=_name(body, "Name", where))
    if kind == "Table":
        database = _name(body, "DatabaseName", where)
        if body.get("Name") and body.get("TableWildcard") is not None:
            raise InvalidInput(f"{where} must name either Name or TableWildcard, not both.")
        if body.get("TableWildcard") is not None:
            return Resource("Table", database=database)
        return Resource("Table", database=database, table=_name(body, "Name", where))
    if kind == "TableWithColumns":
        database, table = _name(body, "DatabaseName", where), _name(body, "Name", where)
        names, wildcard = body.get("ColumnNames"), body.get("ColumnWildcard")
        if (names is None) == (wildcard is None):
            raise InvalidInput(f"{where} must name either ColumnNames or ColumnWildcard.")
        if wildcard is not None:
            excluded = tuple(sorted(c.lower() for c in wildcard.get("ExcludedColumnNames") or []))
            return Resource("TableWithColumns", database=database, table=table, columns=excluded,
                            column_wildcard=True)
        if not names:
            raise InvalidInput(f"{where}.ColumnNames must name at least one column.")
        return Resource("TableWithColumns", database=database, table=table,
                        columns=tuple(sorted({c.lower() for c in names})))
    if kind == "DataLocation":
        return Resource("DataLocation", location=s3_location_arn(body.get("ResourceArn"), f"{where}.ResourceArn"))
    return Resource("DataCellsFilter", database=_name(body, "DatabaseName", where),
                    table=_name(body, "TableName", where), filter_name=_name(body, "Name", where))


def read_permissions(values: Any, resource: Resource, field: str) -> tuple[str, ...]:
    """The permissions named, each one that resource can carry."""
    permissions = tuple(dict.fromkeys(values or []))
    allowed = ALLOWED[resource.kind]
    wrong = [p for p in permissions if p not in allowed]
    if wrong:
        raise InvalidInput(f"{field}: {', '.join(wrong)} cannot be granted on a {resource.kind} resource; it "
                           f"takes {', '.join(sorted(allowed))}.")
    return permissions
