"""GetMetricData: MetricStat and Expression queries, evaluated together, and their results paged.

Queries are evaluated in dependency order (an expression may name another expression's id). A scalar
result is spread over every timestamp the request's metrics have. Results carry the queries whose
ReturnData is not false; pages cut the results' datapoints, in ScanBy order, at MaxDatapoints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sagelab.errors import ValidationError
from sagelab.monitoring.metric_errors import InvalidNextToken, InvalidParameterValue, MissingParameter
from sagelab.monitoring.metric_math import Series, evaluate
from sagelab.monitoring.metrics import MetricStore, check_period, check_statistic
from sagelab.pagination import decode_token, encode_token

MAX_QUERIES = 500
_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")


class QuerySet:
    """The queries of one request (or one alarm), by id, with each one's series worked out on demand."""

    def __init__(self, store: MetricStore, queries: list[Mapping[str, Any]], start: float, end: float,
                 field: str = "MetricDataQueries"):
        self.store, self.start, self.end = store, start, end
        if not queries:
            raise MissingParameter(f"The parameter {field} is required.")
        if len(queries) > MAX_QUERIES:
            raise InvalidParameterValue(f"The collection {field} must not have more than {MAX_QUERIES} members.")
        self.queries: dict[str, Mapping[str, Any]] = {}
        for i, query in enumerate(queries):
            where = f"{field}.member.{i + 1}"
            qid = query.get("Id") or ""
            if not _ID.fullmatch(qid):
                raise InvalidParameterValue(f"The value {qid!r} for parameter {where}.Id is invalid: an id starts "
                                            "with a lowercase letter and holds letters, digits and underscores.")
            if qid in self.queries:
                raise InvalidParameterValue(f"The value {qid!r} for parameter {where}.Id is used twice.")
            has_stat, has_expr = query.get("MetricStat") is not None, bool(query.get("Expression"))
            if has_stat == has_expr:
                raise InvalidParameterValue(f"The parameter {where} must have exactly one of MetricStat and "
                                            "Expression.")
            if has_stat:
                stat = query["MetricStat"]
                check_period(stat["Period"], f"{where}.MetricStat.Period")
                check_statistic(stat["Stat"], f"{where}.MetricStat.Stat")
            self.queries[qid] = query
        self._values: dict[str, Series] = {}
        self._busy: set[str] = set()

    def metric_ids(self) -> list[str]:
        return [qid for qid, q in self.queries.items() if q.get("MetricStat") is not None]

    def value(self, qid: str) -> Series:
        if qid in self._values:
            return self._values[qid]
        if qid in self._busy:
            raise InvalidParameterValue(f"The expression of query {qid!r} refers to itself through other queries.")
        self._busy.add(qid)
        query = self.queries[qid]
        if query.get("MetricStat") is not None:
            stat = query["MetricStat"]
            result = self.store.series(stat["Metric"], stat["Period"], stat["Stat"], self.start, self.end,
                                       stat.get("Unit"))
        else:
            expression = query["Expression"]
            known = {other: _Lazy(self, other) for other in self.queries if other != qid}
            value = evaluate(expression, _LazyMap(known), [self.value(m) for m in self.metric_ids()
                                                           if m != qid and "METRICS" in expression.upper()])
            if isinstance(value, list):
                raise InvalidParameterValue(f"The expression {expression!r} of query {qid!r} gives a list of "
                                            "time series; wrap it in SUM, AVG, MIN or MAX.")
            if not isinstance(value, dict):
                stamps = sorted(set().union(*(self.value(m).keys() for m in self.metric_ids()))) or []
                value = {t: float(value) for t in stamps}
            result = value
        self._busy.discard(qid)
        self._values[qid] = result
        return result


class _Lazy:
    def __init__(self, queries: QuerySet, qid: str):
        self.queries, self.qid = queries, qid


class _LazyMap(Mapping[str, Series]):
    """Ids to series, each worked out only when the expression names it."""

    def __init__(self, known: dict[str, _Lazy]):
        self.known = known

    def __getitem__(self, key: str) -> Series:
        lazy = self.known[key]
        return lazy.queries.value(lazy.qid)

    def __contains__(self, key: object) -> bool:
        return key in self.known

    def __iter__(self):
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


def get_metric_data(store: MetricStore, params: Mapping[str, Any]) -> dict[str, Any]:
    start, end = float(params["StartTime"]), float(params["EndTime"])
    if end <= start:
        raise InvalidParameterValue("The parameter StartTime must be earlier than EndTime.")
    queries = QuerySet(store, list(params["MetricDataQueries"]), start, end)
    descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    limit = params.get("MaxDatapoints") or 100800
    try:
        offset = decode_token(params.get("NextToken"))
    except ValidationError as bad:
        raise InvalidNextToken(bad.message) from None
    results, flat = [], 0
    remaining_before = offset
    budget = limit
    truncated = False
    for qid, query in queries.queries.items():
        series = queries.value(qid)
        if query.get("ReturnData") is False:
            continue
        stamps = sorted(series, reverse=descending)
        skip = min(remaining_before, len(stamps))
        remaining_before -= skip
        chunk = stamps[skip:skip + budget]
        budget -= len(chunk)
        if skip + len(chunk) < len(stamps):
            truncated = True
        flat += len(chunk)
        label = query.get("Label") or (query["MetricStat"]["Metric"]["MetricName"] if query.get("MetricStat")
                                       else qid)
        results.append({"Id": qid, "Label": label, "Timestamps": chunk, "Values": [series[t] for t in chunk],
                        "StatusCode": "PartialData" if skip + len(chunk) < len(stamps) else "Complete",
                        "Messages": []})
    out: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
    if truncated:
        out["NextToken"] = encode_token(offset + flat)
    return out
