"""CloudWatch metrics through boto3 (Smithy RPC v2 CBOR): put, statistics, math, listing, bad input."""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid

import numpy as np
import pytest
from botocore.exceptions import ClientError


def _namespace() -> str:
    return f"Test/{uuid.uuid4().hex[:8]}"


def _error(info: pytest.ExceptionInfo) -> tuple[str, str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def _minute(offset: int = 0) -> dt.datetime:
    now = math.floor(time.time() / 60) * 60 - 600
    return dt.datetime.fromtimestamp(now + offset * 60, dt.UTC)


DIMS = [{"Name": "Host", "Value": "a"}]


def test_statistics_match_numpy_at_one_minute(cw):
    ns = _namespace()
    rng = np.random.default_rng(7)
    values = rng.normal(10, 3, size=(3, 40)).round(3)
    for i, row in enumerate(values):
        cw.put_metric_data(Namespace=ns, MetricData=[
            {"MetricName": "Latency", "Dimensions": DIMS, "Timestamp": _minute(i) + dt.timedelta(seconds=s),
             "Value": float(v), "Unit": "Milliseconds"} for s, v in enumerate(row)])
    out = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=DIMS, StartTime=_minute(0),
                                   EndTime=_minute(3), Period=60,
                                   Statistics=["SampleCount", "Average", "Sum", "Minimum", "Maximum"])
    points = sorted(out["Datapoints"], key=lambda p: p["Timestamp"])
    assert out["Label"] == "Latency" and [p["Timestamp"] for p in points] == [_minute(i) for i in range(3)]
    for point, row in zip(points, values, strict=True):
        assert point["SampleCount"] == len(row) and point["Unit"] == "Milliseconds"
        assert point["Sum"] == pytest.approx(row.sum()) and point["Average"] == pytest.approx(row.mean())
        assert (point["Minimum"], point["Maximum"]) == (row.min(), row.max())
    whole = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=DIMS, StartTime=_minute(0),
                                     EndTime=_minute(3), Period=180, ExtendedStatistics=["p50", "p90", "p99.5"])
    [point] = whole["Datapoints"]
    for stat, q in (("p50", 50), ("p90", 90), ("p99.5", 99.5)):
        assert point["ExtendedStatistics"][stat] == pytest.approx(np.percentile(values.ravel(), q))
    # Other dimensions, another unit, an unknown namespace: empty, not an error.
    for extra in ({"Dimensions": [{"Name": "Host", "Value": "b"}]}, {"Dimensions": DIMS, "Unit": "Seconds"}):
        assert cw.get_metric_statistics(Namespace=ns, MetricName="Latency", StartTime=_minute(0),
                                        EndTime=_minute(3), Period=60, Statistics=["Sum"], **extra)["Datapoints"] == []
    assert cw.get_metric_statistics(Namespace="Nope/None", MetricName="x", StartTime=_minute(0), EndTime=_minute(3),
                                    Period=60, Statistics=["Sum"])["Datapoints"] == []


def test_values_with_counts_statistic_sets_and_high_resolution(cw):
    ns = _namespace()
    start = _minute(0)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Hits", "Values": [1.0, 2.0, 5.0], "Counts": [2, 1, 3], "Timestamp": start,
         "StorageResolution": 1},
        {"MetricName": "Hits", "StatisticValues": {"SampleCount": 4, "Sum": 20, "Minimum": 2, "Maximum": 9},
         "Timestamp": start + dt.timedelta(seconds=7), "StorageResolution": 1},
        {"MetricName": "Hits", "Value": 100.0, "Timestamp": start + dt.timedelta(seconds=30)},  # standard: minute
    ])
    per_second = cw.get_metric_statistics(Namespace=ns, MetricName="Hits", StartTime=start,
                                          EndTime=start + dt.timedelta(seconds=60), Period=1,
                                          Statistics=["Sum", "SampleCount", "Maximum"])["Datapoints"]
    by_time = {p["Timestamp"]: p for p in per_second}
    assert sorted(by_time) == [start, start + dt.timedelta(seconds=7)]  # the standard point is not at 1 s
    assert (by_time[start]["Sum"], by_time[start]["SampleCount"], by_time[start]["Maximum"]) == (19.0, 6.0, 5.0)
    assert by_time[start + dt.timedelta(seconds=7)]["Sum"] == 20.0
    [minute] = cw.get_metric_statistics(Namespace=ns, MetricName="Hits", StartTime=start,
                                        EndTime=start + dt.timedelta(seconds=60), Period=60,
                                        Statistics=["Sum", "SampleCount", "Minimum"])["Datapoints"]
    assert (minute["Sum"], minute["SampleCount"], minute["Minimum"]) == (139.0, 11.0, 1.0)
    ten = cw.get_metric_statistics(Namespace=ns, MetricName="Hits", StartTime=start,
                                   EndTime=start + dt.timedelta(seconds=60), Period=10,
                                   Statistics=["Sum"])["Datapoints"]
    assert [p["Sum"] for p in ten] == [39.0]


def test_get_metric_data_math_labels_and_pages(cw):
    ns = _namespace()
    a = [3.0, 5.0, 9.0, 4.0]
    b = [1.0, 1.0, 3.0, 2.0]
    data = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        data += [{"MetricName": "A", "Value": x, "Timestamp": _minute(i)},
                 {"MetricName": "B", "Value": y, "Timestamp": _minute(i)}]
    cw.put_metric_data(Namespace=ns, MetricData=data)

    def stat(name: str) -> dict:
        return {"Metric": {"Namespace": ns, "MetricName": name}, "Period": 60, "Stat": "Sum"}

    queries = [{"Id": "a", "MetricStat": stat("A"), "ReturnData": False},
               {"Id": "b", "MetricStat": stat("B"), "Label": "bee"},
               {"Id": "ratio", "Expression": "(a - b) / b", "Label": "ratio"},
               {"Id": "total", "Expression": "SUM([a, b])"},
               {"Id": "avg", "Expression": "AVG(a)"},
               {"Id": "big", "Expression": "MAX([a, b * 4])"},
               {"Id": "rate", "Expression": "RATE(a)"},
               {"Id": "metrics", "Expression": "MIN(METRICS())"}]
    out = cw.get_metric_data(MetricDataQueries=queries, StartTime=_minute(0), EndTime=_minute(4),
                             ScanBy="TimestampAscending")
    results = {r["Id"]: r for r in out["MetricDataResults"]}
    assert "a" not in results and results["b"]["Label"] == "bee" and results["total"]["Label"] == "total"
    assert results["b"]["Timestamps"] == [_minute(i) for i in range(4)]
    assert results["ratio"]["Values"] == pytest.approx([(x - y) / y for x, y in zip(a, b, strict=True)])
    assert results["total"]["Values"] == [x + y for x, y in zip(a, b, strict=True)]
    assert results["avg"]["Values"] == [np.mean(a)] * 4
    assert results["big"]["Values"] == [max(x, 4 * y) for x, y in zip(a, b, strict=True)]
    assert results["rate"]["Values"] == pytest.approx([(y - x) / 60 for x, y in zip(a, a[1:], strict=False)])
    assert results["metrics"]["Values"] == [min(x, y) for x, y in zip(a, b, strict=True)]
    assert all(r["StatusCode"] == "Complete" for r in results.values())
    descending = cw.get_metric_data(MetricDataQueries=[{"Id": "b", "MetricStat": stat("B")}],
                                    StartTime=_minute(0), EndTime=_minute(4))["MetricDataResults"][0]
    assert descending["Timestamps"] == [_minute(i) for i in (3, 2, 1, 0)]

    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = cw.get_metric_data(MetricDataQueries=[{"Id": "b", "MetricStat": stat("B")}], StartTime=_minute(0),
                                  EndTime=_minute(4), MaxDatapoints=3, ScanBy="TimestampAscending", **kwargs)
        pages.append(page["MetricDataResults"][0]["Values"])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == [b[:3], b[3:]]
    with pytest.raises(ClientError) as bad:
        cw.get_metric_data(MetricDataQueries=[{"Id": "x", "Expression": "nosuch + 1"}], StartTime=_minute(0),
                           EndTime=_minute(4))
    code, message, status = _error(bad)
    assert (code, status) == ("InvalidParameterValue", 400) and "'nosuch'" in message


def test_list_metrics_filters_and_pages(cw):
    ns = _namespace()
    data = [{"MetricName": f"M{i % 3}", "Value": 1.0, "Dimensions": [{"Name": "Host", "Value": f"h{i}"}]}
            for i in range(12)]
    data.append({"MetricName": "M0", "Value": 1.0})
    cw.put_metric_data(Namespace=ns, MetricData=data)
    everything = cw.list_metrics(Namespace=ns)["Metrics"]
    assert len(everything) == 13 and all(m["Namespace"] == ns for m in everything)
    assert len(cw.list_metrics(Namespace=ns, MetricName="M0")["Metrics"]) == 5
    assert len(cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Host"}])["Metrics"]) == 12
    assert cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Host", "Value": "h4"}])["Metrics"] == [
        {"Namespace": ns, "MetricName": "M1", "Dimensions": [{"Name": "Host", "Value": "h4"}]}]
    assert cw.list_metrics(Namespace="Nope/Nothing")["Metrics"] == []
    big = _namespace()
    for chunk in range(2):
        cw.put_metric_data(Namespace=big, MetricData=[{"MetricName": f"N{chunk}-{i:04d}", "Value": 1.0}
                                                      for i in range(300)])
    names = [m["MetricName"] for page in cw.get_paginator("list_metrics").paginate(Namespace=big)
             for m in page["Metrics"]]
    assert len(names) == 600 and len(set(names)) == 600
    first = cw.list_metrics(Namespace=big)
    assert len(first["Metrics"]) == 500 and "NextToken" in first
    with pytest.raises(ClientError) as bad:
        cw.list_metrics(Namespace=big, NextToken="garbage")
    assert _error(bad)[0] == "InvalidNextToken"


@pytest.mark.parametrize(("datum", "code", "field"), [
    ({"MetricName": "x" * 256, "Value": 1.0}, "InvalidParameterValue", "MetricName"),
    ({"MetricName": "m", "Value": 1.0, "Values": [1.0]}, "InvalidParameterCombination", "Value and Values"),
    ({"MetricName": "m"}, "MissingParameter", "MetricData.member.1"),
    ({"MetricName": "m", "Values": [1.0, 2.0], "Counts": [1.0]}, "InvalidParameterValue", "Counts"),
    ({"MetricName": "m", "Value": 1.0, "StorageResolution": 5}, "InvalidParameterValue", "StorageResolution"),
    ({"MetricName": "m", "Value": 1.0, "Dimensions": [{"Name": f"d{i}", "Value": "v"} for i in range(31)]},
     "InvalidParameterValue", "Dimensions"),
])
def test_bad_metric_data_is_refused_naming_the_field(cw, datum, code, field):
    with pytest.raises(ClientError) as bad:
        cw.put_metric_data(Namespace=_namespace(), MetricData=[datum])
    got, message, status = _error(bad)
    assert (got, status) == (code, 400) and field.lower() in message.lower(), message


def test_limits_and_bad_statistics_requests(cw):
    with pytest.raises(ClientError) as bad:
        cw.put_metric_data(Namespace=_namespace(), MetricData=[{"MetricName": "m", "Value": 1.0}] * 1001)
    assert _error(bad)[0] == "InvalidParameterValue" and "1000" in _error(bad)[1]
    with pytest.raises(cw.exceptions.InvalidParameterValueException) as bad:
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert "AWS/" in _error(bad)[1]
    base = {"Namespace": "X", "MetricName": "m", "StartTime": _minute(0), "EndTime": _minute(3)}
    for extra, code, word in (({"Period": 45, "Statistics": ["Sum"]}, "InvalidParameterValue", "Period"),
                              ({"Period": 60}, "MissingParameter", "Statistics"),
                              ({"Period": 60, "Statistics": ["Sum"], "ExtendedStatistics": ["p9"]},
                               "InvalidParameterCombination", "ExtendedStatistics"),
                              ({"Period": 60, "ExtendedStatistics": ["median"]}, "InvalidParameterValue", "p99"),
                              ({"Period": 1, "Statistics": ["Sum"], "StartTime": _minute(-60)},
                               "InvalidParameterCombination", "1440")):
        with pytest.raises(ClientError) as bad:
            cw.get_metric_statistics(**{**base, **extra})
        assert _error(bad)[0] == code and word in _error(bad)[1], _error(bad)
