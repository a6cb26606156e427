"""One running analytics application: reads its input Kinesis stream, runs its pumps on DuckDB, writes
what they produce to its outputs.

Each tick appends the new input rows (parsed with the input schema; ROWTIME is the record's arrival time)
to a DuckDB table of the source in-app stream, then runs every pump over a view of that table named like
the in-app stream: the new rows (per-row pumps), the rows of the windows that closed since the last tick
(tumbling; a window closes `GRACE_SECONDS` after its end, so records still being written are counted in
it), or the new rows with the range before them (sliding). Rows older than any pump needs are dropped.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from sagelab.algorithms.random_cut_forest.model import Forest as RandomCutForest
from sagelab.analytics.sql import Forest, Plan, Pump

GRACE_SECONDS = 1.0
_ARROW = {"VARCHAR": pa.string(), "CHAR": pa.string(), "INTEGER": pa.int32(), "INT": pa.int32(),
          "BIGINT": pa.int64(), "SMALLINT": pa.int16(), "TINYINT": pa.int8(), "DOUBLE": pa.float64(),
          "REAL": pa.float32(), "FLOAT": pa.float64(), "DECIMAL": pa.float64(), "NUMERIC": pa.float64(),
          "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("ms"), "DATE": pa.date32()}


def arrow_type(sql_type: str) -> pa.DataType:
    base = sql_type.split("(", 1)[0].strip().upper()
    if base not in _ARROW:
        raise ValueError(f"SqlType {sql_type} is not one sagelab reads: {', '.join(sorted(_ARROW))}.")
    return _ARROW[base]


@dataclasses.dataclass
class InputSpec:
    stream: str
    in_app: str
    columns: list[tuple[str, str, str]]  # (name, SQL type, mapping key)
    format: str  # JSON | CSV
    row_delimiter: str = "\n"
    column_delimiter: str = ","


class _ForestState:
    """RANDOM_CUT_FOREST over a stream: a forest grown on the recent rows scores each new row, which then
    joins the sample (the most recent `time_decay` rows, at most 10,000)."""

    def __init__(self, spec: Forest):
        self.spec = spec
        self.history = np.empty((0, 0))

    def score(self, points: np.ndarray) -> np.ndarray:
        if not len(points):
            return np.empty(0)
        shingled = self._shingle(points)
        reference = shingled if len(self.history) < 16 else self.history
        forest = RandomCutForest.build(reference, num_trees=self.spec.trees,
                                       samples_per_tree=self.spec.sub_sample, seed=len(self.history))
        scores = forest.scores(shingled)
        keep = min(self.spec.time_decay, 10_000)
        self.history = (np.vstack([self.history, shingled]) if len(self.history) else shingled)[-keep:]
        return scores

    def _shingle(self, points: np.ndarray) -> np.ndarray:
        size = self.spec.shingle
        if size <= 1:
            return points
        previous = self.history[-1:, :points.shape[1]] if len(self.history) else points[:1]
        rows = np.vstack([np.repeat(previous, size - 1, axis=0), points])
        return np.hstack([rows[i:len(rows) - size + 1 + i] for i in range(size)])


class ApplicationRunner:
    def __init__(self, plan: Plan, source: InputSpec, emit: Callable[[str, list[dict[str, Any]]], None]):
        self.plan, self.source, self.emit = plan, source, emit
        self.db = duckdb.connect()
        self.schema = pa.schema([pa.field("__seq", pa.int64()), pa.field("ROWTIME", pa.timestamp("ms"))]
                                + [pa.field(name, arrow_type(kind)) for name, kind, _ in source.columns])
        self.table = f"{source.in_app}__rows"
        self.db.register("__empty", self.schema.empty_table())
        self.db.execute(f'CREATE TABLE "{self.table}" AS SELECT * FROM __empty')
        self.db.unregister("__empty")
        self.seq = 0
        self.emitted_until: dict[str, float] = {}
        self.forests = {f.table: _ForestState(f) for p in plan.pumps for f in p.forests}

    def close(self) -> None:
        self.db.close()

    # --- one tick ---------------------------------------------------------------------------------------
    def tick(self, records: list[tuple[int, bytes]], now: float) -> int:
        """Add the new (arrival ms, data) records and run every pump; returns the rows emitted."""
        first_new = self.seq
        rows = [row for arrival, data in records for row in self._rows(arrival, data)]
        if rows:
            batch = pa.Table.from_pylist(rows, schema=self.schema)
            self.db.register("__batch", batch)
            self.db.execute(f'INSERT INTO "{self.table}" SELECT * FROM __batch')
            self.db.unregister("__batch")
        emitted = 0
        for pump in self.plan.pumps:
            out = self._run(pump, first_new, now)
            if out:
                self.emit(pump.target, out)
                emitted += len(out)
        self._forget(now)
        return emitted

    def _rows(self, arrival_ms: int, data: bytes) -> list[dict[str, Any]]:
        text = data.decode("utf-8", errors="replace")
        out = []
        if self.source.format == "JSON":
            try:
                doc = json.loads(text)
            except ValueError:
                return []
            values = [[doc.get(key) if isinstance(doc, dict) else None for _, _, key in self.source.columns]]
        else:
            values = [line.split(self.source.column_delimiter)
                      for line in text.split(self.source.row_delimiter) if line.strip()]
        for row in values:
            record: dict[str, Any] = {"__seq": self.seq, "ROWTIME": datetime.datetime.fromtimestamp(
                arrival_ms / 1000, datetime.UTC).replace(tzinfo=None)}
            self.seq += 1
            for (name, kind, _), value in zip(self.source.columns, row, strict=False):
                record[name] = _coerce(value, kind)
            out.append(record)
        return out

    def _run(self, pump: Pump, first_new: int, now: float) -> list[dict[str, Any]]:
        view, select = self.source.in_app, pump.select
        if pump.kind == "tumbling":
            closed = (now - GRACE_SECONDS) // pump.seconds * pump.seconds
            start = self.emitted_until.get(pump.name)
            if start is None:
                oldest = self.db.execute(f'SELECT epoch(min("ROWTIME")) FROM "{self.table}" WHERE "__seq" >= ?',
                                         [first_new]).fetchone()[0]
                if oldest is None:
                    return []
                start = oldest // pump.seconds * pump.seconds
                self.emitted_until[pump.name] = start
            if closed <= start:
                return []
            where = f'epoch("ROWTIME") >= {start} AND epoch("ROWTIME") < {closed}'
            self.emitted_until[pump.name] = closed
        elif pump.kind == "sliding":
            where = (f'epoch("ROWTIME") >= (SELECT coalesce(min(epoch("ROWTIME")), 0) FROM "{self.table}" '
                     f'WHERE "__seq" >= {first_new}) - {pump.seconds}')
            select = _mark_new(select, first_new)
        else:
            where = f'"__seq" >= {first_new}'
        self.db.execute(f'CREATE OR REPLACE TEMP VIEW "{view}" AS SELECT * FROM "{self.table}" WHERE {where} '
                        'ORDER BY "__seq"')
        for forest in pump.forests:
            self._score(forest)
        result = self.db.execute(select).arrow()
        if hasattr(result, "read_all"):
            result = result.read_all()
        if pump.kind == "sliding":
            keep = result.column("__new").to_pylist()
            result = result.drop_columns(["__new"]).filter(pa.array(keep))
        names = list(pump.columns)
        return [dict(zip(names, row, strict=False)) for row in zip(*(c.to_pylist() for c in result.columns),
                                                                   strict=True)]

    def _score(self, forest: Forest) -> None:
        cursor = self.db.execute(forest.cursor).arrow()
        if hasattr(cursor, "read_all"):
            cursor = cursor.read_all()
        numeric = [c for c, f in zip(cursor.column_names, cursor.schema, strict=True)
                   if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]
        points = np.column_stack([np.nan_to_num(cursor.column(c).to_numpy(zero_copy_only=False).astype(float))
                                  for c in numeric]) if numeric and cursor.num_rows else np.empty((0, 1))
        scores = self.forests[forest.table].score(points) if cursor.num_rows else np.empty(0)
        self.db.register(f"__scored_{forest.table}", cursor.append_column("ANOMALY_SCORE", pa.array(scores)))
        self.db.execute(f'CREATE OR REPLACE TEMP VIEW "{forest.table}" AS SELECT * FROM "__scored_{forest.table}"')

    def _forget(self, now: float) -> None:
        keep = max([p.seconds for p in self.plan.pumps] + [0]) * 2 + 60
        self.db.execute(f'DELETE FROM "{self.table}" WHERE epoch("ROWTIME") < {now - keep}')


def _mark_new(select: str, first_new: int) -> str:
    """Add `"__seq" >= first_new AS "__new"` as the SELECT's first column (sliding pumps answer new rows)."""
    head = select.lstrip()
    return f'SELECT ("__seq" >= {first_new}) AS "__new", ' + head[len("SELECT"):].lstrip()


def _coerce(value: Any, sql_type: str) -> Any:
    if value is None or value == "":
        return None
    kind = arrow_type(sql_type)
    try:
        if pa.types.is_integer(kind):
            return int(value)
        if pa.types.is_floating(kind):
            return float(value)
        if pa.types.is_boolean(kind):
            return value if isinstance(value, bool) else str(value).lower() == "true"
        if pa.types.is_timestamp(kind):
            return datetime.datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return str(value) if not isinstance(value, str) else value
