"""Lake Formation's state: data lake settings, registered locations, grants and data cells filters.

Everything is a `resources` row, so a grant survives a restart once GrantPermissions has answered:

    lakeformation-settings        one document, DataLakeSettings' shape
    lakeformation-location        a registered S3 location, by its ARN
    lakeformation-permission      (principal, resource): the permissions and those with grant option
    lakeformation-cells-filter    a data cells filter, by database/table/name
    lakeformation-defaults        that a database or table got its default grants (and when it was made)

A database or table gets its default grants (CreateDatabaseDefaultPermissions of the settings,
CreateTableDefaultPermissions of its database: by default ALL to IAM_ALLOWED_PRINCIPALS, which leaves IAM
alone in charge, as AWS does) the first time Lake Formation looks at it, rather than by a hook in every
path that creates catalog entries (Glue, crawlers, CTAS). A table dropped and made again is told by its
CreateTime: its old grants go, as AWS drops them with the table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from sagelab.account import Account
from sagelab.catalog.store import CatalogStore
from sagelab.catalog.types import duckdb_type
from sagelab.errors import AccessDenied, AlreadyExistsError, EntityNotFound, InvalidInput
from sagelab.lakeformation.filters import DataCellsFilter, read_filter
from sagelab.lakeformation.resources import (
    IAM_ALLOWED_PRINCIPALS,
    Resource,
    principal_id,
    read_permissions,
    read_resource,
    s3_location_arn,
)
from sagelab.pagination import page
from sagelab.storage.resources import AlreadyExists, NotFound, ResourceStore

SETTINGS_KIND = "lakeformation-settings"
LOCATION_KIND = "lakeformation-location"
GRANT_KIND = "lakeformation-permission"
FILTER_KIND = "lakeformation-cells-filter"
DEFAULTS_KIND = "lakeformation-defaults"
SERVICE_LINKED_ROLE = "role/aws-service-role/lakeformation.amazonaws.com/AWSServiceRoleForLakeFormationDataAccess"
_IAP_ALL = [{"Principal": {"DataLakePrincipalIdentifier": IAM_ALLOWED_PRINCIPALS}, "Permissions": ["ALL"]}]


def default_settings() -> dict[str, Any]:
    return {"DataLakeAdmins": [], "ReadOnlyAdmins": [], "CreateDatabaseDefaultPermissions": list(_IAP_ALL),
            "CreateTableDefaultPermissions": list(_IAP_ALL), "Parameters": {"CROSS_ACCOUNT_VERSION": "1"},
            "TrustedResourceOwners": [], "AllowExternalDataFiltering": False,
            "AllowFullTableExternalDataAccess": False, "ExternalDataFilteringAllowList": [],
            "AuthorizedSessionTagValueList": []}


@dataclasses.dataclass(frozen=True)
class Grant:
    principal: str
    resource: Resource
    permissions: frozenset[str]
    grantable: frozenset[str]
    updated: float = 0.0
    updated_by: str = ""


def _grant_name(principal: str, resource: Resource) -> str:
    # Column lists make keys longer than a row name may be: the row is named by a digest of them.
    return hashlib.sha256(f"{principal}\n{resource.key}".encode()).hexdigest()[:48]


def _grant_of(doc: dict[str, Any]) -> Grant:
    resource = Resource(**{**doc["Resource"], "columns": tuple(doc["Resource"].get("columns") or ())})
    return Grant(doc["Principal"], resource, frozenset(doc["Permissions"]), frozenset(doc["Grantable"]),
                 doc.get("LastUpdated", 0.0), doc.get("LastUpdatedBy", ""))


class LakeFormationService:
    def __init__(self, *, resources: ResourceStore, account: Account, catalog: CatalogStore):
        self.resources = resources
        self.account = account
        self.catalog = catalog

    # --- data lake settings ----------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        res = self.resources.get(SETTINGS_KIND, "settings")
        return {**default_settings(), **(res.doc if res is not None else {})}

    def put_settings(self, spec: dict[str, Any]) -> None:
        doc = default_settings()
        for member in ("DataLakeAdmins", "ReadOnlyAdmins"):
            doc[member] = [{"DataLakePrincipalIdentifier": principal_id(p, f"DataLakeSettings.{member}[{i}]")}
                           for i, p in enumerate(spec.get(member) or [])]
        for member in ("CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions"):
            entries = []
            for i, entry in enumerate(spec.get(member) or []):
                where = f"DataLakeSettings.{member}[{i}]"
                principal = principal_id(entry.get("Principal"), f"{where}.Principal")
                kind = "Database" if member.startswith("CreateDatabase") else "Table"
                permissions = read_permissions(entry.get("Permissions"), Resource(kind), f"{where}.Permissions")
                entries.append({"Principal": {"DataLakePrincipalIdentifier": principal},
                                "Permissions": list(permissions)})
            doc[member] = entries
        for member in ("Parameters", "TrustedResourceOwners", "AllowExternalDataFiltering",
                       "AllowFullTableExternalDataAccess", "ExternalDataFilteringAllowList",
                       "AuthorizedSessionTagValueList"):
            if spec.get(member) is not None:
                doc[member] = spec[member]
        self._put(SETTINGS_KIND, "settings", self.account.arn("lakeformation", "settings"), doc)

    def admins(self) -> set[str]:
        return {p["DataLakePrincipalIdentifier"] for p in self.settings()["DataLakeAdmins"]}

    def _put(self, kind: str, name: str, arn: str, doc: dict[str, Any]) -> None:
        def replace(res: Any) -> None:
            res.doc = doc

        try:
            self.resources.update(kind, name, replace)
        except NotFound:
            try:
                self.resources.insert(kind, name, arn, "", doc)
            except AlreadyExists:  # made at the same time: this write still wins
                self.resources.update(kind, name, replace)

    # --- registered locations --------------------------------------------------------------------------
    def register(self, params: dict[str, Any]) -> None:
        arn = s3_location_arn(params.get("ResourceArn"), "ResourceArn")
        if params.get("UseServiceLinkedRole"):
            role = f"arn:aws:iam::{self.account.id}:{SERVICE_LINKED_ROLE}"
        elif params.get("RoleArn"):
            role = params["RoleArn"]
        else:
            raise InvalidInput("RegisterResource needs RoleArn, or UseServiceLinkedRole set to true.")
        doc = {"ResourceArn": arn, "RoleArn": role, "LastModified": time.time(),
               "WithFederation": bool(params.get("WithFederation")),
               "HybridAccessEnabled": bool(params.get("HybridAccessEnabled")),
               "WithPrivilegedAccess": bool(params.get("WithPrivilegedAccess"))}
        try:
            self.resources.insert(LOCATION_KIND, arn, f"sagelab:lakeformation:location:{arn}", "", doc)
        except AlreadyExists:
            raise AlreadyExistsError("Resource is already registered") from None

    def _location(self, value: Any) -> dict[str, Any]:
        arn = s3_location_arn(value, "ResourceArn")
        res = self.resources.get(LOCATION_KIND, arn)
        if res is None:
            raise EntityNotFound(f"Entity not found: {arn} is not registered with Lake Formation.")
        return res.doc

    def deregister(self, value: Any) -> None:
        arn = self._location(value)["ResourceArn"]
        self.resources.delete(LOCATION_KIND, arn)

    def describe_location(self, value: Any) -> dict[str, Any]:
        return self._location(value)

    def list_locations(self, params: dict[str, Any]) -> dict[str, Any]:
        found = [r.doc for r in self.resources.list(LOCATION_KIND, sort_by="Name", descending=False)]
        for i, condition in enumerate(params.get("FilterConditionList") or []):
            found = [d for d in found if _matches(d, condition, f"FilterConditionList[{i}]")]
        items, more = page(found, params, default_size=100, max_size=1000)
        return {"ResourceInfoList": items, **more}

    # --- grants ----------------------------------------------------------------------------------------
    def grants(self) -> list[Grant]:
        return [_grant_of(r.doc) for r in self.resources.list(GRANT_KIND, sort_by="CreationTime", descending=False)]

    def checked_resource(self, spec: Any, field: str = "Resource") -> Resource:
        """The resource, once its database, table, columns, filter or location are known to exist."""
        resource = read_resource(spec, field)
        if resource.kind == "DataLocation":
            self._location(resource.location)
        elif resource.kind == "DataCellsFilter":
            self._filter(resource.database, resource.table, resource.filter_name)
        elif resource.kind != "Catalog":
            self.ensure_defaults(resource.database, resource.table or None)
            if resource.kind == "TableWithColumns":
                names = column_names(self.catalog.get_table(resource.database, resource.table))
                unknown = [c for c in resource.columns if c not in names]
                if unknown:
                    member = "ColumnWildcard.ExcludedColumnNames" if resource.column_wildcard else "ColumnNames"
                    raise InvalidInput(f"{field}.TableWithColumns.{member}: {', '.join(unknown)} are not columns "
                                       f"of {resource.database}.{resource.table}; it has {', '.join(names)}.")
        return resource

    def grant(self, entry: dict[str, Any], *, by: str, grantor: set[str] | None,
              field: str = "") -> None:
        """Adds permissions. `grantor`: the caller's principals when it is no admin, who then needs the
        grant option on each permission it passes on."""
        principal, resource, permissions, grantable = self._entry(entry, field)
        if grantor is not None:
            self._check_grant_option(grantor, resource, permissions | grantable)

        def add(doc: dict[str, Any]) -> None:
            doc["Permissions"] = sorted(set(doc["Permissions"]) | permissions)
            doc["Grantable"] = sorted(set(doc["Grantable"]) | grantable)

        self._change(principal, resource, add, by=by)

    def revoke(self, entry: dict[str, Any], *, by: str, grantor: set[str] | None, field: str = "") -> None:
        principal, resource, permissions, grantable = self._entry(entry, field)
        if grantor is not None:
            self._check_grant_option(grantor, resource, permissions | grantable)
        held = {g.resource.key: g for g in self.grants() if g.principal == principal}.get(resource.key)
        if held is None or not permissions <= held.permissions | held.grantable:
            raise InvalidInput(f"{field}Principal {principal} does not hold {', '.join(sorted(permissions))} on "
                               f"{resource.key}: there is nothing to revoke.")

        def remove(doc: dict[str, Any]) -> None:
            doc["Permissions"] = sorted(set(doc["Permissions"]) - permissions)
            doc["Grantable"] = sorted(set(doc["Grantable"]) - grantable - permissions)

        self._change(principal, resource, remove, by=by)

    def _entry(self, entry: dict[str, Any], field: str) -> tuple[str, Resource, frozenset[str], frozenset[str]]:
        principal = principal_id(entry.get("Principal"), f"{field}Principal")
        resource = self.checked_resource(entry.get("Resource"), f"{field}Resource")
        permissions = frozenset(read_permissions(entry.get("Permissions"), resource, f"{field}Permissions"))
        grantable = frozenset(read_permissions(entry.get("PermissionsWithGrantOption"), resource,
                                               f"{field}PermissionsWithGrantOption"))
        if not permissions:
            raise InvalidInput(f"{field}Permissions must name at least one permission.")
        if not grantable <= permissions:
            raise InvalidInput(f"{field}PermissionsWithGrantOption must be a subset of Permissions; "
                               f"{', '.join(sorted(grantable - permissions))} are not in Permissions.")
        return principal, resource, permissions, grantable

    def _check_grant_option(self, grantor: set[str], resource: Resource, permissions: Iterable[str]) -> None:
        held: set[str] = set()
        for g in self.grants():
            if g.principal in grantor and g.resource.key == resource.key:
                held |= g.grantable
        missing = sorted(p for p in permissions if p not in held and "ALL" not in held)
        if missing:
            raise AccessDenied(f"Insufficient Lake Formation permission(s): Required Grant Option on "
                               f"{resource.key} for {', '.join(missing)}")

    def _change(self, principal: str, resource: Resource, change: Callable[[dict[str, Any]], None], *,
                by: str) -> None:
        name = _grant_name(principal, resource)
        fresh = {"Principal": principal, "Resource": dataclasses.asdict(resource), "Permissions": [],
                 "Grantable": []}

        def mutate(res: Any) -> None:
            change(res.doc)
            res.doc["LastUpdated"], res.doc["LastUpdatedBy"] = time.time(), by

        for _ in range(2):
            try:
                res = self.resources.update(GRANT_KIND, name, mutate)
            except NotFound:
                change(fresh)
                if not fresh["Permissions"]:
                    return
                fresh["LastUpdated"], fresh["LastUpdatedBy"] = time.time(), by
                try:
                    self.resources.insert(GRANT_KIND, name, f"sagelab:lakeformation:permission:{name}", "", fresh)
                    return
                except AlreadyExists:  # granted at the same time: merge into that row
                    fresh = {**fresh, "Permissions": [], "Grantable": []}
                    continue
            if not res.doc["Permissions"]:
                self.resources.delete(GRANT_KIND, name)
            return

    def list_permissions(self, params: dict[str, Any]) -> dict[str, Any]:
        self.ensure_all_defaults()
        principal = (principal_id(params["Principal"], "Principal") if params.get("Principal") else None)
        wanted = read_resource(params["Resource"]) if params.get("Resource") else None
        kind = params.get("ResourceType")
        kinds = {"CATALOG": {"Catalog"}, "DATABASE": {"Database"}, "TABLE": {"Table", "TableWithColumns"},
                 "DATA_LOCATION": {"DataLocation"}, "DATA_CELLS_FILTER": {"DataCellsFilter"}}
        if kind and kind not in kinds:
            raise InvalidInput(f"ResourceType {kind} is not supported by sagelab; use one of {', '.join(kinds)}.")
        found = []
        for g in self.grants():
            if principal is not None and g.principal != principal:
                continue
            if kind and g.resource.kind not in kinds[kind]:
                continue
            if wanted is not None and not _covers(wanted, g.resource):
                continue
            found.append({"Principal": {"DataLakePrincipalIdentifier": g.principal},
                          "Resource": g.resource.wire(self.account.id),
                          "Permissions": sorted(g.permissions), "PermissionsWithGrantOption": sorted(g.grantable),
                          "LastUpdated": g.updated, "LastUpdatedBy": g.updated_by})
        items, more = page(found, params, default_size=100, max_size=1000)
        return {"PrincipalResourcePermissions": items, **more}

    # --- default grants --------------------------------------------------------------------------------
    def ensure_defaults(self, database: str, table: str | None = None) -> None:
        """Gives a database (and table) their default grants once; EntityNotFound names what is missing."""
        try:
            db = self.catalog.get_database(database)
        except EntityNotFound:
            raise EntityNotFound(f"Database {database} not found.") from None
        self._seed(f"database/{database}", db.get("CreateTime"), lambda r: r.database == database and
                   r.kind != "DataLocation",
                   [(e, Resource("Database", database=database))
                    for e in self.settings()["CreateDatabaseDefaultPermissions"]])
        if table is not None:
            doc = self.catalog.find_table(database, table)
            if doc is None:
                raise EntityNotFound(f"Table {table} not found in database {database}.")
            self._seed_table(doc, db)

    def grant_creator(self, doc: dict[str, Any], principal: str) -> None:
        self.ensure_table_defaults(doc)

        def everything(grant: dict[str, Any]) -> None:
            grant["Permissions"] = sorted(set(grant["Permissions"]) | {"ALL"})
            grant["Grantable"] = sorted(set(grant["Grantable"]) | {"ALL"})

        self._change(principal, Resource("Table", database=doc["DatabaseName"], table=doc["Name"]), everything,
                     by=principal)

    def ensure_table_defaults(self, doc: dict[str, Any]) -> bool:
        """Gives a table (and its database) their default grants unless they have them: whether it did."""
        marker = self.resources.get(DEFAULTS_KIND, f"table/{doc['DatabaseName']}/{doc['Name']}")
        if marker is not None and marker.doc.get("CreateTime") == doc.get("CreateTime"):
            return False
        self.ensure_defaults(doc["DatabaseName"], doc["Name"])
        return True

    def ensure_all_defaults(self) -> None:
        for db in self.catalog.list_databases():
            self.ensure_defaults(db["Name"])
            for doc in self.catalog.list_tables(db["Name"]):
                self._seed_table(doc, db)

    def _seed_table(self, doc: dict[str, Any], db: dict[str, Any]) -> None:
        database, table = doc["DatabaseName"], doc["Name"]
        self._seed(f"table/{database}/{table}", doc.get("CreateTime"),
                   lambda r: r.database == database and r.table == table,
                   [(e, Resource("Table", database=database, table=table))
                    for e in db.get("CreateTableDefaultPermissions") or []])

    def _seed(self, name: str, created: Any, owned: Callable[[Resource], bool],
              defaults: list[tuple[dict[str, Any], Resource]]) -> None:
        marker = self.resources.get(DEFAULTS_KIND, name)
        if marker is not None and marker.doc.get("CreateTime") == created:
            return
        if marker is not None:  # made again since its grants were given: those went with the old one
            for res in self.resources.list(GRANT_KIND):
                if owned(_grant_of(res.doc).resource):
                    self.resources.delete(GRANT_KIND, res.name)
            for res in self.resources.list(FILTER_KIND):
                if owned(Resource("DataCellsFilter", database=res.doc["DatabaseName"], table=res.doc["TableName"])):
                    self.resources.delete(FILTER_KIND, res.name)
        # Grants first, then the marker: a crash in between gives the defaults again, which merge.
        for entry, resource in defaults:
            permissions = set(entry.get("Permissions") or [])
            principal = entry["Principal"]["DataLakePrincipalIdentifier"]

            def add(doc: dict[str, Any], permissions: set[str] = permissions) -> None:
                doc["Permissions"] = sorted(set(doc["Permissions"]) | permissions)

            self._change(principal, resource, add, by=f"arn:aws:iam::{self.account.id}:root")
        doc = {"CreateTime": created}
        if marker is not None:
            self._put(DEFAULTS_KIND, name, f"sagelab:lakeformation:defaults:{name}", doc)
        else:
            with contextlib.suppress(AlreadyExists):
                self.resources.insert(DEFAULTS_KIND, name, f"sagelab:lakeformation:defaults:{name}", "", doc)

    # --- data cells filters ----------------------------------------------------------------------------
    def create_filter(self, spec: dict[str, Any]) -> None:
        database, table = str(spec["DatabaseName"]).lower(), str(spec["TableName"]).lower()
        self.ensure_defaults(database, table)
        doc = self.catalog.get_table(database, table)
        cells = read_filter(spec, [(c["Name"].lower(), duckdb_type(c.get("Type") or "string"))
                                   for c in table_columns(doc)])
        stored = {"Filter": dataclasses.asdict(cells), "VersionId": "1", "DatabaseName": database,
                  "TableName": table}
        try:
            self.resources.insert(FILTER_KIND, cells.key, f"sagelab:lakeformation:filter:{cells.key}", "", stored)
        except AlreadyExists:
            raise AlreadyExistsError(f"Data cells filter {cells.name} already exists on {database}.{table}.") from None

    def _filter(self, database: str, table: str, name: str) -> DataCellsFilter:
        res = self.resources.get(FILTER_KIND, f"{database.lower()}/{table.lower()}/{name.lower()}")
        if res is None:
            raise EntityNotFound(f"Data cells filter {name} not found on table {database}.{table}.")
        return _filter_of(res.doc)

    def get_filter(self, params: dict[str, Any]) -> dict[str, Any]:
        cells = self._filter(params["DatabaseName"], params["TableName"], params["Name"])
        return cells.wire(params.get("TableCatalogId") or self.account.id, "1")

    def filters(self) -> dict[str, DataCellsFilter]:
        return {r.name: _filter_of(r.doc) for r in self.resources.list(FILTER_KIND)}

    def list_filters(self, params: dict[str, Any]) -> dict[str, Any]:
        table = params.get("Table") or {}
        database = (table.get("DatabaseName") or "").lower()
        name = "" if table.get("TableWildcard") is not None else (table.get("Name") or "").lower()
        found = [f.wire(self.account.id, "1") for f in self.filters().values()
                 if (not database or f.database == database) and (not name or f.table == name)]
        items, more = page(found, params, default_size=100, max_size=1000)
        return {"DataCellsFilters": items, **more}

    def delete_filter(self, params: dict[str, Any]) -> None:
        cells = self._filter(params["DatabaseName"], params["TableName"], params["Name"])
        self.resources.delete(FILTER_KIND, cells.key)
        for res in self.resources.list(GRANT_KIND):
            resource = _grant_of(res.doc).resource
            if resource.kind == "DataCellsFilter" and resource.key == f"filter/{cells.key}":
                self.resources.delete(GRANT_KIND, res.name)


def _filter_of(doc: dict[str, Any]) -> DataCellsFilter:
    spec = doc["Filter"]
    return DataCellsFilter(**{**spec, "columns": tuple(spec["columns"])})


def table_columns(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Data columns then partition keys: every column a grant may name."""
    return list((doc.get("StorageDescriptor") or {}).get("Columns") or []) + list(doc.get("PartitionKeys") or [])


def column_names(doc: dict[str, Any]) -> list[str]:
    return [c["Name"].lower() for c in table_columns(doc)]


def _covers(wanted: Resource, held: Resource) -> bool:
    """Whether ListPermissions on `wanted` lists a grant on `held` (a table lists its column grants too)."""
    if wanted.kind == "Table" and held.kind in ("Table", "TableWithColumns"):
        return held.database == wanted.database and (not wanted.table or held.table == wanted.table)
    return wanted.key == held.key


def _matches(doc: dict[str, Any], condition: dict[str, Any], field: str) -> bool:
    member = {"RESOURCE_ARN": "ResourceArn", "ROLE_ARN": "RoleArn"}.get(condition.get("Field", ""))
    if member is None:
        raise InvalidInput(f"{field}.Field {condition.get('Field')!r} is not supported by sagelab; use "
                           "RESOURCE_ARN or ROLE_ARN.")
    value, values = doc.get(member, ""), list(condition.get("StringValueList") or [])
    tests = {"EQ": lambda: value in values[:1], "NE": lambda: value not in values[:1],
             "CONTAINS": lambda: any(v in value for v in values),
             "NOT_CONTAINS": lambda: not any(v in value for v in values),
             "BEGINS_WITH": lambda: any(value.startswith(v) for v in values), "IN": lambda: value in values}
    test = tests.get(condition.get("ComparisonOperator", ""))
    if test is None:
        raise InvalidInput(f"{field}.ComparisonOperator {condition.get('ComparisonOperator')!r} is not "
                           f"supported; use one of {', '.join(tests)}.")
    return test()
