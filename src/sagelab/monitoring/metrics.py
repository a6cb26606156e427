"""CloudWatch metrics: PutMetricData's points, stored in `metric_points`, and the statistics read from them.

A metric is a namespace, a name and a set of dimensions (stored as sorted JSON, so that a set is one
string). Each PutMetricData datum is one row: its statistic set (count, sum, min, max), its unit, its
storage resolution, and the values with their counts, from which percentiles are computed exactly. A
standard-resolution datum is stored at the start of its minute; a high-resolution one at its second.
SageMaker's own endpoint metrics (`hosting/invocation_metrics.py`) are rows of the same table, one per
minute with p50/p90/p99 and no distribution: they are read here like any other metric.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from sagelab.monitoring.metric_errors import (
    InvalidParameterCombination,
    InvalidParameterValue,
    MissingParameter,
)
from sagelab.storage import tables
from sagelab.storage.db import Database

MAX_DATUMS = 1000
MAX_DIMENSIONS = 30
MAX_VALUES = 150
MAX_DATAPOINTS = 1440
BASIC_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d{1,10})?|100(?:\.0{1,10})?)")
_LIMIT = 2.0 ** 360
_SECOND_PERIODS = (1, 5, 10, 30)


def dimensions_key(dimensions: Iterable[Mapping[str, str]] | Mapping[str, str] | None) -> str:
    if isinstance(dimensions, Mapping):
        pairs = dict(dimensions)
    else:
        pairs = {d["Name"]: d["Value"] for d in dimensions or ()}
    return json.dumps(pairs, sort_keys=True)


def dimensions_list(key: str) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in json.loads(key).items()]


def percentile_of(stat: str) -> float | None:
    """`p99.9` -> 99.9; None for anything that is not a percentile statistic."""
    match = _PERCENTILE.fullmatch(stat)
    return float(match[1]) if match else None


def check_period(period: int, field: str = "Period") -> None:
    if period <= 0 or (period not in _SECOND_PERIODS and period % 60):
        raise InvalidParameterValue(f"The parameter {field} must be 1, 5, 10, 30, 60 or a multiple of 60 "
                                    f"seconds; got {period}.")


def check_statistic(stat: str, field: str) -> None:
    if stat not in BASIC_STATISTICS and percentile_of(stat) is None:
        raise InvalidParameterValue(f"The parameter {field} must be one of {', '.join(BASIC_STATISTICS)} or a "
                                    f"percentile pNN(.NN); got {stat!r}.")


@dataclasses.dataclass
class Bucket:
    """The points of one metric in one period, merged."""

    count: float = 0.0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    values: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    stored_percentiles: list[dict[str, float]] = dataclasses.field(default_factory=list)
    unit: str | None = None

    def add(self, row: Any) -> None:
        self.count += row.sample_count
        self.total += row.sum
        self.low = min(self.low, row.minimum)
        self.high = max(self.high, row.maximum)
        self.unit = self.unit or row.unit
        if row.distribution:
            self.values.extend((v, c) for v, c in json.loads(row.distribution))
        elif row.p50 is not None:
            self.stored_percentiles.append({"p50": row.p50, "p90": row.p90, "p99": row.p99})

    def statistic(self, stat: str) -> float | None:
        if stat == "SampleCount":
            return self.count
        if stat == "Sum":
            return self.total
        if stat == "Minimum":
            return self.low
        if stat == "Maximum":
            return self.high
        if stat == "Average":
            return self.total / self.count if self.count else None
        q = percentile_of(stat)
        if q is None:
            return None
        if self.values:
            values = np.array([v for v, _ in self.values])
            counts = np.array([max(1, round(c)) for _, c in self.values])
            return float(np.percentile(np.repeat(values, counts), q))
        stored = [p[f"p{q:g}"] for p in self.stored_percentiles if p.get(f"p{q:g}") is not None]
        return float(np.mean(stored)) if stored else None


def _finite(value: Any, field: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or (
            value != 0 and not (2.0 ** -260 <= abs(value) <= _LIMIT)):
        raise InvalidParameterValue(f"The value {value!r} for parameter {field} is invalid: CloudWatch accepts "
                                    "finite numbers between 8.5e-109 and 1.2e108 in magnitude (or 0).")
    return float(value)


def _check_name(value: str, field: str) -> None:
    if not 1 <= len(value) <= 255:
        raise InvalidParameterValue(f"The parameter {field} must be 1 to 255 characters long; got {len(value)}.")


class MetricStore:
    def __init__(self, db: Database):
        self.db = db

    # --- writing --------------------------------------------------------------------------------------
    def put(self, namespace: str | None, data: Sequence[Mapping[str, Any]], now: float | None = None) -> int:
        if not namespace:
            raise MissingParameter("The parameter Namespace is required.")
        _check_name(namespace, "Namespace")
        if namespace.startswith("AWS/"):
            raise InvalidParameterValue(f"The value {namespace!r} for parameter Namespace is invalid: namespaces "
                                        "starting with AWS/ are reserved for AWS services.")
        return self.record(namespace, data, now)

    def record(self, namespace: str, data: Sequence[Mapping[str, Any]], now: float | None = None) -> int:
        """Store data in any namespace (sagelab's own publishers write `/aws/sagemaker/...` through this)."""
        if not data:
            raise MissingParameter("The parameter MetricData is required.")
        if len(data) > MAX_DATUMS:
            raise InvalidParameterValue(f"The collection MetricData must not have more than {MAX_DATUMS} "
                                        f"members; got {len(data)}.")
        now = time.time() if now is None else now
        rows = [self._row(namespace, datum, f"MetricData.member.{i + 1}", now) for i, datum in enumerate(data)]
        with self.db.write() as conn:
            conn.execute(tables.metric_points.insert(), rows)
        return len(rows)

    def _row(self, namespace: str, datum: Mapping[str, Any], field: str, now: float) -> dict[str, Any]:
        name = datum.get("MetricName")
        if not name:
            raise MissingParameter(f"The parameter {field}.MetricName is required.")
        _check_name(name, f"{field}.MetricName")
        dims = datum.get("Dimensions") or []
        if len(dims) > MAX_DIMENSIONS:
            raise InvalidParameterValue(f"The collection {field}.Dimensions must not have more than "
                                        f"{MAX_DIMENSIONS} members; got {len(dims)}.")
        for j, dim in enumerate(dims):
            _check_name(dim.get("Name") or "", f"{field}.Dimensions.member.{j + 1}.Name")
            _check_name(dim.get("Value") or "", f"{field}.Dimensions.member.{j + 1}.Value")
        if len({d["Name"] for d in dims}) != len(dims):
            raise InvalidParameterValue(f"The collection {field}.Dimensions names a dimension twice.")
        resolution = datum.get("StorageResolution", 60)
        if resolution not in (1, 60):
            raise InvalidParameterValue(f"The value {resolution} for parameter {field}.StorageResolution is "
                                        "invalid: it must be 1 (high resolution) or 60 (standard).")
        stamp = datum.get("Timestamp")
        stamp = now if stamp is None else float(stamp)
        if stamp < now - 14 * 86400 or stamp > now + 2 * 3600:
            raise InvalidParameterValue(f"The parameter {field}.Timestamp must be within the past two weeks and "
                                        "the next two hours.")
        stamp = math.floor(stamp) if resolution == 1 else math.floor(stamp / 60) * 60
        given = [k for k in ("Value", "Values", "StatisticValues") if datum.get(k) is not None]
        if len(given) > 1:
            raise InvalidParameterCombination(f"The parameters {field}.{' and '.join(given)} are mutually "
                                              "exclusive: give one of Value, Values or StatisticValues.")
        if not given:
            raise MissingParameter(f"The parameter {field} needs one of Value, Values or StatisticValues.")
        row: dict[str, Any] = {"namespace": namespace, "metric_name": name, "dimensions": dimensions_key(dims),
                               "timestamp": float(stamp), "storage_resolution": resolution,
                               "unit": datum.get("Unit") or "None", "p50": None, "p90": None, "p99": None,
                               "distribution": None}
        if given[0] == "StatisticValues":
            s = datum["StatisticValues"]
            count = _finite(s["SampleCount"], f"{field}.StatisticValues.SampleCount")
            low = _finite(s["Minimum"], f"{field}.StatisticValues.Minimum")
            high = _finite(s["Maximum"], f"{field}.StatisticValues.Maximum")
            if count <= 0 or low > high:
                raise InvalidParameterValue(f"The parameter {field}.StatisticValues is inconsistent: SampleCount "
                                            f"must be positive and Minimum <= Maximum; got {dict(s)}.")
            row.update(sample_count=count, sum=_finite(s["Sum"], f"{field}.StatisticValues.Sum"),
                       minimum=low, maximum=high)
            return row
        if given[0] == "Value":
            values, counts = [_finite(datum["Value"], f"{field}.Value")], [1.0]
        else:
            values = [_finite(v, f"{field}.Values.member.{k + 1}") for k, v in enumerate(datum["Values"])]
            if not values or len(values) > MAX_VALUES:
                raise InvalidParameterValue(f"The collection {field}.Values must have 1 to {MAX_VALUES} members; "
                                            f"got {len(values)}.")
            counts = [float(c) for c in datum.get("Counts") or [1.0] * len(values)]
            if len(counts) != len(values):
                raise InvalidParameterValue(f"The collections {field}.Values and {field}.Counts must have as many "
                                            f"members; got {len(values)} values and {len(counts)} counts.")
            if any(c <= 0 or not math.isfinite(c) for c in counts):
                raise InvalidParameterValue(f"The collection {field}.Counts must hold positive numbers.")
        row.update(sample_count=sum(counts), sum=float(np.dot(values, counts)), minimum=min(values),
                   maximum=max(values), distribution=json.dumps([[v, c] for v, c in zip(values, counts, strict=True)]))
        return row

    # --- reading --------------------------------------------------------------------------------------
    def list_metrics(self, namespace: str | None, name: str | None, filters: Sequence[Mapping[str, Any]],
                     since: float | None = None) -> list[dict[str, Any]]:
        t = tables.metric_points
        query = sa.select(t.c.namespace, t.c.metric_name, t.c.dimensions).distinct()
        if namespace:
            query = query.where(t.c.namespace == namespace)
        if name:
            query = query.where(t.c.metric_name == name)
        if since is not None:
            query = query.where(t.c.timestamp >= since)
        with self.db.read() as conn:
            found = conn.execute(query.order_by(t.c.namespace, t.c.metric_name, t.c.dimensions)).all()
        out = []
        for ns, metric, key in found:
            dims = json.loads(key)
            if all(f["Name"] in dims and (f.get("Value") is None or dims[f["Name"]] == f["Value"]) for f in filters):
                out.append({"Namespace": ns, "MetricName": metric, "Dimensions": dimensions_list(key)})
        return out

    def buckets(self, namespace: str, name: str, dimensions: Any, start: float, end: float, period: int,
                unit: str | None = None) -> dict[float, Bucket]:
        """The metric's points in [start, end), merged per period (keyed by each period's start): periods
        are counted from `start`, as CloudWatch counts them from StartTime."""
        t = tables.metric_points
        query = sa.select(t).where(t.c.namespace == namespace, t.c.metric_name == name,
                                   t.c.dimensions == dimensions_key(dimensions),
                                   t.c.timestamp >= start, t.c.timestamp < end)
        if period < 60:
            query = query.where(t.c.storage_resolution == 1)
        out: dict[float, Bucket] = {}
        with self.db.read() as conn:
            for row in conn.execute(query):
                if unit and (row.unit or "None") != unit:
                    continue
                key = float(start + math.floor((row.timestamp - start) / period) * period)
                out.setdefault(key, Bucket()).add(row)
        return dict(sorted(out.items()))

    def statistics(self, params: Mapping[str, Any]) -> dict[str, Any]:
        for required in ("Namespace", "MetricName", "StartTime", "EndTime", "Period"):
            if params.get(required) is None:
                raise MissingParameter(f"The parameter {required} is required.")
        stats = list(params.get("Statistics") or [])
        extended = list(params.get("ExtendedStatistics") or [])
        if not stats and not extended:
            raise MissingParameter("The parameter Statistics or ExtendedStatistics is required.")
        if stats and extended:
            raise InvalidParameterCombination("The parameters Statistics and ExtendedStatistics are mutually "
                                              "exclusive; give one of them.")
        for i, stat in enumerate(extended):
            if percentile_of(stat) is None:
                raise InvalidParameterValue(f"The value {stat!r} for parameter ExtendedStatistics.member.{i + 1} "
                                            "is invalid: expected a percentile such as p99 or p99.9.")
        period = params["Period"]
        check_period(period)
        start, end = float(params["StartTime"]), float(params["EndTime"])
        if end <= start:
            raise InvalidParameterValue("The parameter StartTime must be earlier than EndTime.")
        if (end - start) / period > MAX_DATAPOINTS:
            raise InvalidParameterCombination(f"You have requested up to {math.ceil((end - start) / period)} "
                                              f"datapoints, which exceeds the limit of {MAX_DATAPOINTS}.")
        unit = params.get("Unit")
        points = []
        for stamp, bucket in self.buckets(params["Namespace"], params["MetricName"], params.get("Dimensions"),
                                          start, end, period, unit).items():
            point: dict[str, Any] = {"Timestamp": stamp, "Unit": unit or bucket.unit or "None"}
            for stat in stats:
                point[stat] = bucket.statistic(stat)
            if extended:
                values = {stat: bucket.statistic(stat) for stat in extended}
                point["ExtendedStatistics"] = {k: v for k, v in values.items() if v is not None}
            points.append(point)
        return {"Label": params["MetricName"], "Datapoints": points}

    def series(self, metric: Mapping[str, Any], period: int, stat: str, start: float, end: float,
               unit: str | None = None) -> dict[float, float]:
        """One statistic per period: what a MetricStat (GetMetricData, alarms) reads."""
        buckets = self.buckets(metric["Namespace"], metric["MetricName"], metric.get("Dimensions"), start, end,
                               period, unit)
        out = {}
        for stamp, bucket in buckets.items():
            value = bucket.statistic(stat)
            if value is not None:
                out[stamp] = value
        return out
