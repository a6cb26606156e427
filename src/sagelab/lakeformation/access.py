"""What one caller may see and read of the catalog, from its Lake Formation grants.

The account's root and the data lake administrators see everything. Anyone else is held to the grants,
except on a table that still grants IAM_ALLOWED_PRINCIPALS (every table does by default): there IAM
policies alone decide, as in AWS, so a data lake nobody has put under Lake Formation behaves as before.

For a table the decision is a `TableAccess`: whether the table is visible at all (any grant on it, its
columns or one of its filters), which columns its metadata shows (all with a table-level grant such as
DESCRIBE, otherwise the columns it may select), and what a query may read: SELECT on the table reads it
whole; column grants and data cells filters read the union of their columns, and the rows of the filters'
expressions (OR-ed; a column grant or an AllRowsWildcard filter reads every row).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sagelab.errors import AccessDenied
from sagelab.lakeformation.resources import IAM_ALLOWED_PRINCIPALS
from sagelab.lakeformation.service import Grant, LakeFormationService, column_names

if TYPE_CHECKING:
    from sagelab.iam.principals import Caller

_READS = frozenset({"SELECT", "ALL"})


@dataclasses.dataclass(frozen=True)
class TableAccess:
    visible: bool
    #: The columns GetTable shows; None: all.
    described: frozenset[str] | None
    #: Whether a query may read the table at all (Athena reads this as `readable`).
    readable: bool
    #: The columns a query may read, in the table's order; None: all.
    columns: tuple[str, ...] | None
    #: The condition on the rows a query reads; None: every row.
    row_filter: str | None


FULL = TableAccess(True, None, True, None, None)


def principals_of(caller: Caller) -> frozenset[str]:
    """The DataLakePrincipalIdentifiers a caller's grants are made to: its user, or its session's role."""
    return frozenset({caller.role_arn or caller.arn})


def decide(grants: Iterable[Grant], filters: dict[str, Any], principals: frozenset[str],
           table: dict[str, Any]) -> TableAccess:
    database, name = table["DatabaseName"], table["Name"]
    names = column_names(table)
    on_table = [g for g in grants if g.resource.on_table(database, name)]
    if any(g.principal == IAM_ALLOWED_PRINCIPALS and g.resource.kind == "Table" for g in on_table):
        return FULL
    mine = [g for g in on_table if g.principal in principals]
    table_level = [g for g in mine if g.resource.kind == "Table"]
    if any(g.permissions & _READS for g in table_level):
        return FULL
    chosen: set[str] = set()
    every_row, conditions = False, []
    for g in mine:
        if not g.permissions & _READS:
            continue
        if g.resource.kind == "TableWithColumns":
            chosen.update(g.resource.selected_columns(names))
            every_row = True
        elif g.resource.kind == "DataCellsFilter":
            cells = filters.get(f"{database}/{name}/{g.resource.filter_name}")
            if cells is None:
                continue
            chosen.update(cells.selected_columns(names))
            if cells.row_filter is None:
                every_row = True
            else:
                conditions.append(cells.row_filter)
    readable = bool(chosen)
    described = None if table_level else frozenset(chosen)
    rows = None if every_row or not conditions else " OR ".join(f"({c})" for c in conditions)
    return TableAccess(bool(table_level) or readable, described, readable,
                       tuple(c for c in names if c in chosen), rows)


def insufficient(entity: str) -> AccessDenied:
    return AccessDenied(f"Insufficient Lake Formation permission(s) on {entity}")


class CallerView:
    """The catalog as one caller held to Lake Formation sees it; its grants are read once, when it is made."""

    def __init__(self, service: LakeFormationService, principals: frozenset[str]):
        self.service = service
        self.principals = principals
        self.grants = service.grants()
        self.filters = service.filters()

    def access(self, table: dict[str, Any]) -> TableAccess:
        if self.service.ensure_table_defaults(table):
            self.grants = self.service.grants()
            self.filters = self.service.filters()
        return decide(self.grants, self.filters, self.principals, table)

    # --- Glue: GetTable(s), GetDatabase(s) --------------------------------------------------------------
    def table(self, doc: dict[str, Any]) -> dict[str, Any]:
        shown = self._shown(doc)
        if shown is None:
            raise insufficient(doc["Name"])
        return shown

    def tables(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [shown for shown in map(self._shown, docs) if shown is not None]

    def _shown(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        decision = self.access(doc)
        if not decision.visible:
            return None
        if decision.described is None:
            return doc
        keep = decision.described
        trimmed = dict(doc)
        sd = dict(doc.get("StorageDescriptor") or {})
        sd["Columns"] = [c for c in sd.get("Columns") or [] if c["Name"].lower() in keep]
        trimmed["StorageDescriptor"] = sd
        trimmed["PartitionKeys"] = [c for c in doc.get("PartitionKeys") or [] if c["Name"].lower() in keep]
        return trimmed

    # --- what the caller may change -----------------------------------------------------------------
    def require(self, permission: str, doc: dict[str, Any]) -> None:
        """Refuses unless the caller (or IAM_ALLOWED_PRINCIPALS) holds `permission` (or ALL) on the database
        or table `doc` is: CREATE_TABLE and DROP on a database, ALTER and DROP on a table."""
        if "DatabaseName" in doc:
            database, table = doc["DatabaseName"], doc["Name"]
            self.service.ensure_table_defaults(doc)
        else:
            database, table = doc["Name"], None
            self.service.ensure_defaults(database)
        held = set()
        for g in self.service.grants():
            if g.principal != IAM_ALLOWED_PRINCIPALS and g.principal not in self.principals:
                continue
            if (table is None and g.resource.kind == "Database" and g.resource.database == database) or (
                    table is not None and g.resource.kind == "Table" and g.resource.on_table(database, table)):
                held |= g.permissions
        if permission not in held and "ALL" not in held:
            raise insufficient(table or database)

    def made(self, doc: dict[str, Any]) -> None:
        """The caller made this table: it gets ALL on it, with the grant option."""
        self.service.grant_creator(doc, sorted(self.principals)[0])

    def database(self, doc: dict[str, Any]) -> dict[str, Any]:
        if not self._database_visible(doc):
            raise insufficient(doc["Name"])
        return doc

    def databases(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in docs if self._database_visible(d)]

    def _database_visible(self, doc: dict[str, Any]) -> bool:
        """A database shows to whoever holds a grant on it or on anything in it (AWS's implicit DESCRIBE)."""
        name = doc["Name"]
        self.service.ensure_defaults(name)
        self.grants = self.service.grants()
        on_database = [g for g in self.grants if g.resource.database == name and g.resource.kind != "DataLocation"]
        if any(g.principal == IAM_ALLOWED_PRINCIPALS and g.resource.kind == "Database" for g in on_database):
            return True
        if any(g.principal in self.principals for g in on_database):
            return True
        return any(self.access(t).visible for t in self.service.catalog.list_tables(name))


def view_for(service: LakeFormationService, caller: Caller | None) -> CallerView | None:
    """The view a caller is held to, or None when nothing is hidden from it (no auth, root, an admin)."""
    if caller is None or caller.is_root:
        return None
    principals = principals_of(caller)
    if principals & service.admins():
        return None
    return CallerView(service, principals)
