"""An analytics application's code, read into what the runner executes.

The code is Kinesis Data Analytics SQL: `CREATE [OR REPLACE] STREAM "S" (columns)` statements and
`CREATE [OR REPLACE] PUMP "P" AS INSERT INTO "S" SELECT STREAM ...` statements. Each pump's SELECT is
rewritten for DuckDB, and classified by how it windows:

- tumbling: `GROUP BY ..., STEP("X".ROWTIME BY INTERVAL 'n' SECOND)` (or `FLOOR("X".ROWTIME TO MINUTE)`):
  STEP becomes `time_bucket`, and a window's rows are aggregated once the window has closed;
- sliding: `... OVER (... RANGE INTERVAL 'n' SECOND PRECEDING)`: a DuckDB window frame ordered by ROWTIME;
  each new row is answered once, with the rows of the range before it;
- per row: anything else, run over the new rows only.

`TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM ...)[, numberOfTrees, subSampleSize, timeDecay,
shingleSize]))` becomes a table the runner fills: the cursor's rows with an ANOMALY_SCORE column.
"""

from __future__ import annotations

import dataclasses
import re

from sagelab.errors import ValidationError

_UNITS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_CREATE_STREAM = re.compile(r'^CREATE\s+(?:OR\s+REPLACE\s+)?STREAM\s+("[^"]+"|\w+)\s*\((.*)\)\s*$', re.I | re.S)
_CREATE_PUMP = re.compile(r'^CREATE\s+(?:OR\s+REPLACE\s+)?PUMP\s+("[^"]+"|\w+)\s+AS\s+INSERT\s+INTO\s+'
                          r'("[^"]+"|\w+)\s*(\([^)]*\))?\s*(SELECT\s.*)$', re.I | re.S)
_STEP = re.compile(r'STEP\s*\(\s*(?:(?:"[^"]+"|\w+)\s*\.\s*)?"?ROWTIME"?\s+BY\s+INTERVAL\s+\'(\d+)\'\s+'
                   r'(SECOND|MINUTE|HOUR|DAY)S?\s*\)', re.I)
_FLOOR = re.compile(r'FLOOR\s*\(\s*(?:(?:"[^"]+"|\w+)\s*\.\s*)?"?ROWTIME"?\s+TO\s+(SECOND|MINUTE|HOUR|DAY)\s*\)', re.I)
_RANGE = re.compile(r"RANGE\s+INTERVAL\s+'(\d+)'\s+(SECOND|MINUTE|HOUR|DAY)S?\s+PRECEDING", re.I)
_SELECT_STREAM = re.compile(r"\bSELECT\s+STREAM\b", re.I)
_QUALIFIED_ROWTIME = re.compile(r'(?:"[^"]+"|\w+)\s*\.\s*"?ROWTIME"?', re.I)


def _name(text: str) -> str:
    return text[1:-1] if text.startswith('"') else text.upper()


@dataclasses.dataclass(frozen=True)
class Forest:
    """One RANDOM_CUT_FOREST call: the table standing in for it and the cursor it scores."""

    table: str
    cursor: str
    trees: int = 100
    sub_sample: int = 256
    time_decay: int = 100_000
    shingle: int = 1


@dataclasses.dataclass(frozen=True)
class Pump:
    name: str
    target: str
    columns: tuple[str, ...]
    select: str
    kind: str  # per-row | tumbling | sliding
    #: The tumbling window or the sliding range, in seconds.
    seconds: int = 0
    forests: tuple[Forest, ...] = ()


@dataclasses.dataclass(frozen=True)
class Plan:
    #: In-app stream name -> its columns (name, SQL type), as CREATE STREAM declares them.
    streams: dict[str, list[tuple[str, str]]]
    pumps: list[Pump]


def statements(code: str) -> list[str]:
    """Split on semicolons outside quotes and comments."""
    out, current, quote = [], [], ""
    lines = [line.split("--", 1)[0] if "'" not in line.split("--", 1)[0] else line for line in code.splitlines()]
    for char in "\n".join(lines):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ";":
            out.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    out.append("".join(current).strip())
    return [s for s in out if s]


def _columns(text: str) -> list[tuple[str, str]]:
    parts, depth, current = [], 0, []
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    columns = []
    for part in parts:
        match = re.match(r'\s*("[^"]+"|\w+)\s+(.+?)\s*$', part, re.S)
        if not match:
            raise ValidationError(f"Cannot read the column definition {part.strip()!r}.")
        columns.append((_name(match[1]) if match[1].startswith('"') else match[1], match[2]))
    return columns


def _matching(text: str, open_index: int) -> int:
    depth, quote = 0, ""
    for i in range(open_index, len(text)):
        char = text[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValidationError("Unbalanced parentheses in the application code.")


def _forests(select: str, pump: str) -> tuple[str, list[Forest]]:
    forests = []
    while True:
        match = re.search(r"TABLE\s*\(\s*RANDOM_CUT_FOREST\s*\(", select, re.I)
        if not match:
            return select, forests
        table_open = select.index("(", match.start())
        table_close = _matching(select, table_open)
        rcf_open = select.index("(", select.upper().index("RANDOM_CUT_FOREST", match.start()))
        inner = select[rcf_open + 1:_matching(select, rcf_open)]
        cursor = re.match(r"\s*CURSOR\s*\(", inner, re.I)
        if not cursor:
            raise ValidationError("RANDOM_CUT_FOREST takes CURSOR(SELECT STREAM ...) as its first argument.")
        cursor_open = inner.index("(", cursor.start())
        cursor_close = _matching(inner, cursor_open)
        numbers = [int(v) for v in re.findall(r"\d+", inner[cursor_close + 1:])]
        table = f"__rcf_{_name(pump).lower()}_{len(forests)}"
        forests.append(Forest(table, _translate(inner[cursor_open + 1:cursor_close]), *numbers[:4]))
        select = select[:match.start()] + f'"{table}"' + select[table_close + 1:]


def _translate(select: str) -> str:
    select = _SELECT_STREAM.sub("SELECT", select)
    select = _STEP.sub(lambda m: f"time_bucket(INTERVAL '{m[1]} {m[2].lower()}', \"ROWTIME\")", select)
    select = _FLOOR.sub(lambda m: f"time_bucket(INTERVAL '1 {m[1].lower()}', \"ROWTIME\")", select)
    select = _RANGE.sub(lambda m: f"ORDER BY \"ROWTIME\" RANGE BETWEEN INTERVAL '{m[1]} {m[2].lower()}' "
                                  "PRECEDING AND CURRENT ROW", select)
    return _QUALIFIED_ROWTIME.sub('"ROWTIME"', select)


def parse(code: str) -> Plan:
    streams: dict[str, list[tuple[str, str]]] = {}
    pumps: list[Pump] = []
    for statement in statements(code):
        if match := _CREATE_STREAM.match(statement):
            streams[_name(match[1])] = _columns(match[2])
        elif match := _CREATE_PUMP.match(statement):
            target = _name(match[2])
            if target not in streams:
                raise ValidationError(f"Pump {_name(match[1])} inserts into {target}, which no CREATE STREAM "
                                      "declares before it.")
            select, forests = _forests(match[4], match[1])
            step = _STEP.search(select) or _FLOOR.search(select)
            sliding = _RANGE.search(select)
            if step and sliding:
                raise ValidationError(f"Pump {_name(match[1])} mixes a tumbling and a sliding window.")
            kind, seconds = "per-row", 0
            if step:
                kind = "tumbling"
                seconds = int(step[1]) * _UNITS[step[2].upper()] if step.re is _STEP else _UNITS[step[1].upper()]
            elif sliding:
                kind, seconds = "sliding", int(sliding[1]) * _UNITS[sliding[2].upper()]
            names = tuple(_name(c.strip()) if c.strip().startswith('"') else c.strip()
                          for c in (match[3] or "").strip("()").split(",") if c.strip())
            pumps.append(Pump(_name(match[1]), target, names or tuple(c for c, _ in streams[target]),
                              _translate(select), kind, seconds, tuple(forests)))
        else:
            raise ValidationError(f"Cannot run the statement {statement[:80]!r}: sagelab runs CREATE STREAM and "
                                  "CREATE PUMP ... AS INSERT INTO ... SELECT STREAM ... statements.")
    if not pumps:
        raise ValidationError("The application code has no pump: nothing would be written anywhere.")
    return Plan(streams, pumps)
