"""Column types in the catalog's (Hive) spelling, and their translations.

The catalog stores Hive type strings (`bigint`, `decimal(10,2)`, `array<struct<a:int>>`), as Glue does.
Crawlers and CTAS produce them from Arrow schemas; the query engine turns them into DuckDB types; query
results are described with Athena's type names.
"""

from __future__ import annotations

import dataclasses
import re

import pyarrow as pa

from sagelab.errors import InvalidInput

_PRIMITIVE_TO_DUCKDB = {
    "string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "tinyint": "TINYINT", "smallint": "SMALLINT",
    "int": "INTEGER", "integer": "INTEGER", "bigint": "BIGINT", "float": "FLOAT", "real": "FLOAT",
    "double": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "binary": "BLOB",
    "decimal": "DECIMAL",
}

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|`[^`]*`|\d+|[<>(),:])")


@dataclasses.dataclass(frozen=True)
class HiveType:
    name: str  # primitive name, or array / map / struct
    params: tuple[int, ...] = ()
    children: tuple[tuple[str, HiveType], ...] = ()


def parse_hive_type(text: str) -> HiveType:
    """Parse a Hive type string; raises InvalidInput naming the type when it is not one."""
    tokens = [m.group(1) for m in _TOKEN.finditer(text)]
    if "".join(tokens).replace("`", "") != re.sub(r"\s+", "", text).replace("`", ""):
        raise InvalidInput(f"Column type {text!r} is not a valid Hive type.")
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise InvalidInput(f"Column type {text!r} ends early: expected {expected or 'a type'}.")
        token = tokens[pos]
        if expected is not None and token != expected:
            raise InvalidInput(f"Column type {text!r}: expected {expected!r}, got {token!r}.")
        pos += 1
        return token

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def one() -> HiveType:
        name = take().lower()
        if name == "array":
            take("<")
            child = one()
            take(">")
            return HiveType("array", children=(("element", child),))
        if name == "map":
            take("<")
            key = one()
            take(",")
            value = one()
            take(">")
            return HiveType("map", children=(("key", key), ("value", value)))
        if name == "struct":
            take("<")
            fields = []
            while True:
                field = take().strip("`")
                take(":")
                fields.append((field, one()))
                if peek() == ",":
                    take(",")
                    continue
                take(">")
                return HiveType("struct", children=tuple(fields))
        if name not in _PRIMITIVE_TO_DUCKDB:
            raise InvalidInput(f"Column type {text!r}: unknown type {name!r}.")
        params: list[int] = []
        if peek() == "(":
            take("(")
            while True:
                value = take()
                if not value.isdigit():
                    raise InvalidInput(f"Column type {text!r}: expected a number, got {value!r}.")
                params.append(int(value))
                if peek() == ",":
                    take(",")
                    continue
                take(")")
                break
        return HiveType(name, tuple(params))

    parsed = one()
    if pos != len(tokens):
        raise InvalidInput(f"Column type {text!r} has unexpected text after the type: {tokens[pos]!r}.")
    return parsed


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_type(hive: str | HiveType) -> str:
    """The DuckDB type for a Hive type string."""
    t = parse_hive_type(hive) if isinstance(hive, str) else hive
    if t.name == "array":
        return duckdb_type(t.children[0][1]) + "[]"
    if t.name == "map":
        return f"MAP({duckdb_type(t.children[0][1])}, {duckdb_type(t.children[1][1])})"
    if t.name == "struct":
        return "STRUCT(" + ", ".join(f"{_quote(n)} {duckdb_type(c)}" for n, c in t.children) + ")"
    if t.name == "decimal":
        precision, scale = (t.params + (10, 0)[len(t.params):])[:2] if t.params else (10, 0)
        return f"DECIMAL({precision}, {scale})"
    return _PRIMITIVE_TO_DUCKDB[t.name]


def hive_type(arrow: pa.DataType) -> str:
    """The Hive type Glue would record for an Arrow type (as read from Parquet, CSV or JSON)."""
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_int8(arrow):
        return "tinyint"
    if pa.types.is_int16(arrow) or pa.types.is_uint8(arrow):
        return "smallint"
    if pa.types.is_int32(arrow) or pa.types.is_uint16(arrow):
        return "int"
    if pa.types.is_int64(arrow) or pa.types.is_uint32(arrow):
        return "bigint"
    if pa.types.is_uint64(arrow):
        return "decimal(20,0)"
    if pa.types.is_float16(arrow) or pa.types.is_float32(arrow):
        return "float"
    if pa.types.is_float64(arrow):
        return "double"
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow) or pa.types.is_fixed_size_binary(arrow):
        return "binary"
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow) or pa.types.is_fixed_size_list(arrow):
        return f"array<{hive_type(arrow.value_type)}>"
    if pa.types.is_map(arrow):
        return f"map<{hive_type(arrow.key_type)},{hive_type(arrow.item_type)}>"
    if pa.types.is_struct(arrow):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.type)}" for f in arrow) + ">"
    if pa.types.is_dictionary(arrow):
        return hive_type(arrow.value_type)
    return "string"


_WIDENING = ("tinyint", "smallint", "int", "bigint", "double")


def widen(a: str, b: str) -> str:
    """The type that holds values of both (how a re-crawl merges a column seen with two types)."""
    if a == b:
        return a
    if a in _WIDENING and b in _WIDENING:
        return max(a, b, key=_WIDENING.index)
    if {a, b} <= {"float", "double"} or ({a, b} & {"float"} and {a, b} & set(_WIDENING)):
        return "double"
    return "string"


@dataclasses.dataclass(frozen=True)
class AthenaType:
    name: str
    precision: int
    scale: int = 0
    case_sensitive: bool = False


def athena_type(arrow: pa.DataType) -> AthenaType:
    """How Athena names a result column's type in ColumnInfo."""
    if pa.types.is_boolean(arrow):
        return AthenaType("boolean", 0)
    for check, name, precision in ((pa.types.is_int8, "tinyint", 3), (pa.types.is_int16, "smallint", 5),
                                   (pa.types.is_int32, "integer", 10), (pa.types.is_int64, "bigint", 19),
                                   (pa.types.is_uint8, "smallint", 5), (pa.types.is_uint16, "integer", 10),
                                   (pa.types.is_uint32, "bigint", 19)):
        if check(arrow):
            return AthenaType(name, precision)
    if pa.types.is_floating(arrow):
        return AthenaType("double", 17) if pa.types.is_float64(arrow) else AthenaType("float", 17)
    if pa.types.is_decimal(arrow):
        return AthenaType("decimal", arrow.precision, arrow.scale)
    if pa.types.is_uint64(arrow):
        return AthenaType("decimal", 20, 0)
    if pa.types.is_date(arrow):
        return AthenaType("date", 0)
    if pa.types.is_timestamp(arrow):
        return AthenaType("timestamp", 3)
    if pa.types.is_time(arrow):
        return AthenaType("time", 3)
    if pa.types.is_duration(arrow) or pa.types.is_interval(arrow):
        return AthenaType("interval day to second", 0)
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow) or pa.types.is_fixed_size_binary(arrow):
        return AthenaType("varbinary", 2147483647)
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow) or pa.types.is_fixed_size_list(arrow):
        return AthenaType("array", 0)
    if pa.types.is_map(arrow):
        return AthenaType("map", 0)
    if pa.types.is_struct(arrow):
        return AthenaType("row", 0)
    if pa.types.is_null(arrow):
        return AthenaType("unknown", 0)
    if pa.types.is_dictionary(arrow):
        return athena_type(arrow.value_type)
    return AthenaType("varchar", 2147483647, case_sensitive=True)


_DUCKDB_SCALARS = {
    "BOOLEAN": AthenaType("boolean", 0), "TINYINT": AthenaType("tinyint", 3), "SMALLINT": AthenaType("smallint", 5),
    "INTEGER": AthenaType("integer", 10), "BIGINT": AthenaType("bigint", 19), "UTINYINT": AthenaType("smallint", 5),
    "USMALLINT": AthenaType("integer", 10), "UINTEGER": AthenaType("bigint", 19),
    "UBIGINT": AthenaType("decimal", 20), "HUGEINT": AthenaType("decimal", 38), "UHUGEINT": AthenaType("decimal", 38),
    "FLOAT": AthenaType("float", 17), "DOUBLE": AthenaType("double", 17), "DATE": AthenaType("date", 0),
    "TIME": AthenaType("time", 3), "INTERVAL": AthenaType("interval day to second", 0),
    "BLOB": AthenaType("varbinary", 2147483647), '"NULL"': AthenaType("unknown", 0), "NULL": AthenaType("unknown", 0),
    "JSON": AthenaType("json", 2147483647, case_sensitive=True),
}


def athena_type_of_duckdb(type_name: str) -> AthenaType:
    """Athena's name for a DuckDB result type (as DuckDB spells it: `DECIMAL(18,3)`, `INTEGER[]`, ...)."""
    text = type_name.strip().upper()
    if text.endswith("]"):
        return AthenaType("array", 0)
    if text.startswith("STRUCT") or text.startswith("UNION"):
        return AthenaType("row", 0)
    if text.startswith("MAP"):
        return AthenaType("map", 0)
    if text.startswith("DECIMAL"):
        match = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", text)
        return AthenaType("decimal", int(match.group(1)), int(match.group(2))) if match else AthenaType("decimal", 18, 3)
    if text.startswith("TIMESTAMP"):
        return AthenaType("timestamp with time zone" if "TIME ZONE" in text else "timestamp", 3)
    return _DUCKDB_SCALARS.get(text, AthenaType("varchar", 2147483647, case_sensitive=True))
