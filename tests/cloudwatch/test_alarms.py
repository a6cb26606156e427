"""CloudWatch metric alarms through boto3, against a server that evaluates alarms every second."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError


def _name(prefix: str = "alarm") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _state(cw, name: str) -> str:
    return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


def _wait_state(cw, name: str, state: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        [alarm] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        if alarm["StateValue"] == state:
            return alarm
        assert time.monotonic() < deadline, f"{name} stayed {alarm['StateValue']}, expected {state}"
        time.sleep(0.3)


def _code(info: pytest.ExceptionInfo) -> str:
    return info.value.response["Error"]["Code"]


def test_an_alarm_goes_from_insufficient_data_to_alarm_to_ok_as_points_arrive(cw):
    ns, name = f"Test/{uuid.uuid4().hex[:8]}", _name()
    dims = [{"Name": "Queue", "Value": "q"}]
    cw.put_metric_alarm(AlarmName=name, Namespace=ns, MetricName="Depth", Dimensions=dims, Statistic="Average",
                        Period=60, EvaluationPeriods=2, DatapointsToAlarm=1, Threshold=5.0,
                        ComparisonOperator="GreaterThanThreshold", AlarmActions=["arn:aws:sns:us-east-1:1:t"],
                        AlarmDescription="deep queue")
    [alarm] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert alarm["StateValue"] == "INSUFFICIENT_DATA" and alarm["StateReason"] == "Unchecked: Initial alarm creation"
    assert alarm["AlarmArn"].startswith("arn:aws:cloudwatch:us-east-1:") and alarm["AlarmArn"].endswith(f":alarm:{name}")
    assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (5.0, 2, 1)
    time.sleep(1.5)
    assert _state(cw, name) == "INSUFFICIENT_DATA"  # no data yet: evaluated, still unknown

    stamp = dt.datetime.now(dt.UTC)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Depth", "Dimensions": dims, "Value": 12.0,
                                                  "Timestamp": stamp}])
    alarmed = _wait_state(cw, name, "ALARM")
    assert "Threshold Crossed" in alarmed["StateReason"] and "12.0" in alarmed["StateReason"]
    reason = json.loads(alarmed["StateReasonData"])
    assert reason["threshold"] == 5.0 and reason["recentDatapoints"] == [12.0] and reason["statistic"] == "Average"

    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Depth", "Dimensions": dims, "Values": [0.0],
                                                  "Counts": [5], "Timestamp": stamp}])  # average 2.0
    _wait_state(cw, name, "OK")

    history = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate",
                                        ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [h["HistorySummary"] for h in history] == ["Alarm updated from INSUFFICIENT_DATA to ALARM",
                                                      "Alarm updated from ALARM to OK"]
    first = json.loads(history[0]["HistoryData"])
    assert first["version"] == "1.0"
    assert first["oldState"] == {"stateValue": "INSUFFICIENT_DATA", "stateReason": "Unchecked: Initial alarm creation"}
    assert first["newState"]["stateValue"] == "ALARM" and first["newState"]["stateReasonData"]["threshold"] == 5.0
    everything = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    kinds = {h["HistoryItemType"] for h in everything}
    assert kinds == {"ConfigurationUpdate", "StateUpdate", "Action"}  # the SNS action is recorded, not sent
    assert everything[-1]["HistorySummary"] == f'Alarm "{name}" created'  # newest first
    assert cw.describe_alarms_for_metric(Namespace=ns, MetricName="Depth", Dimensions=dims)["MetricAlarms"][0][
        "AlarmName"] == name
    assert cw.describe_alarms_for_metric(Namespace=ns, MetricName="Depth", Statistic="Sum")["MetricAlarms"] == []


def test_missing_data_math_alarms_and_set_state(cw):
    ns = f"Test/{uuid.uuid4().hex[:8]}"
    missing, breaching, math_alarm = _name("missing"), _name("breaching"), _name("math")
    common = {"Namespace": ns, "MetricName": "Nothing", "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1,
              "Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold"}
    cw.put_metric_alarm(AlarmName=missing, **common)
    cw.put_metric_alarm(AlarmName=breaching, TreatMissingData="breaching", **common)
    cw.put_metric_alarm(AlarmName=math_alarm, EvaluationPeriods=1, Threshold=10.0,
                        ComparisonOperator="GreaterThanThreshold", Metrics=[
                            {"Id": "m", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Load"},
                                                       "Period": 60, "Stat": "Maximum"}, "ReturnData": False},
                            {"Id": "doubled", "Expression": "m * 2", "Label": "twice", "ReturnData": True}])
    _wait_state(cw, breaching, "ALARM")
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Load", "Value": 6.0}])
    _wait_state(cw, math_alarm, "ALARM")  # 6 * 2 > 10
    assert _state(cw, missing) == "INSUFFICIENT_DATA"  # an alarm on a missing metric stays unknown

    cw.set_alarm_state(AlarmName=missing, StateValue="ALARM", StateReason="testing",
                       StateReasonData=json.dumps({"why": "test"}))
    [item] = cw.describe_alarm_history(AlarmName=missing, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    data = json.loads(item["HistoryData"])
    assert data["newState"] == {"stateValue": "ALARM", "stateReason": "testing", "stateReasonData": {"why": "test"}}
    _wait_state(cw, missing, "INSUFFICIENT_DATA")  # the next evaluation puts it back
    with pytest.raises(cw.exceptions.ResourceNotFound):
        cw.set_alarm_state(AlarmName=_name("nope"), StateValue="OK", StateReason="x")
    with pytest.raises(ClientError) as bad:
        cw.set_alarm_state(AlarmName=missing, StateValue="OK", StateReason="x", StateReasonData="{not json")
    assert _code(bad) == "InvalidFormat"

    cw.disable_alarm_actions(AlarmNames=[missing])
    assert cw.describe_alarms(AlarmNames=[missing])["MetricAlarms"][0]["ActionsEnabled"] is False
    cw.enable_alarm_actions(AlarmNames=[missing])
    assert cw.describe_alarms(AlarmNames=[missing])["MetricAlarms"][0]["ActionsEnabled"] is True
    cw.delete_alarms(AlarmNames=[missing, breaching, math_alarm])
    assert cw.describe_alarms(AlarmNames=[missing, breaching, math_alarm])["MetricAlarms"] == []
    with pytest.raises(cw.exceptions.ResourceNotFound):
        cw.delete_alarms(AlarmNames=[missing])


def test_describe_alarms_filters_and_pages(cw):
    prefix = _name("page")
    for i in range(7):
        cw.put_metric_alarm(AlarmName=f"{prefix}-{i}", Namespace="Test/Pages", MetricName="M", Statistic="Sum",
                            Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="LessThanThreshold",
                            TreatMissingData="ignore")
    names = [a["AlarmName"] for page in cw.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=prefix, PaginationConfig={"PageSize": 3}) for a in page["MetricAlarms"]]
    assert names == [f"{prefix}-{i}" for i in range(7)]
    assert len(cw.describe_alarms(AlarmNamePrefix=prefix, MaxRecords=3)["MetricAlarms"]) == 3
    assert len(cw.describe_alarms(AlarmNamePrefix=prefix, StateValue="INSUFFICIENT_DATA")["MetricAlarms"]) == 7
    assert cw.describe_alarms(AlarmNamePrefix=prefix, StateValue="OK")["MetricAlarms"] == []
    with pytest.raises(ClientError) as bad:
        cw.describe_alarms(NextToken="junk")
    assert _code(bad) == "InvalidNextToken"


@pytest.mark.parametrize(("extra", "code", "word"), [
    ({"DatapointsToAlarm": 3}, "InvalidParameterValue", "DatapointsToAlarm"),
    ({"Period": 45}, "InvalidParameterValue", "Period"),
    ({"ExtendedStatistic": "p99"}, "InvalidParameterCombination", "ExtendedStatistic"),
    ({"Metrics": [{"Id": "m", "Expression": "1"}]}, "InvalidParameterCombination", "Metrics"),
    ({"ComparisonOperator": "Sideways"}, "InvalidParameterValue", "comparisonOperator"),
])
def test_bad_alarms_are_refused_naming_the_field(cw, extra, code, word):
    params = {"AlarmName": _name("bad"), "Namespace": "Test/Bad", "MetricName": "M", "Statistic": "Sum",
              "Period": 60, "EvaluationPeriods": 2, "Threshold": 1.0, "ComparisonOperator": "LessThanThreshold"}
    with pytest.raises(ClientError) as bad:
        cw.put_metric_alarm(**{**params, **extra})
    assert _code(bad) == code and word in bad.value.response["Error"]["Message"], bad.value.response["Error"]


def test_alarm_calls_are_recorded_by_cloudtrail(cw_server, cw):
    name = _name("trail")
    cw.put_metric_alarm(AlarmName=name, Namespace="Test/Trail", MetricName="M", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    trail = cw_server.client("cloudtrail")
    deadline = time.monotonic() + 10
    while True:
        events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name}])
        if events["Events"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    [event] = events["Events"]
    record = json.loads(event["CloudTrailEvent"])
    assert (record["eventSource"], record["eventName"]) == ("monitoring.amazonaws.com", "PutMetricAlarm")
    assert {r["ResourceType"] for r in event["Resources"]} == {"AWS::CloudWatch::Alarm"}
    assert record["requestParameters"]["alarmName"] == name


def test_alarm_tags(cw):
    name = _name("tagged")
    cw.put_metric_alarm(AlarmName=name, Namespace="Test/Tags", MetricName="M", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
                        Tags=[{"Key": "team", "Value": "ml"}])
    arn = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "stage", "Value": "prod"}, {"Key": "team", "Value": "ops"}])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "stage", "Value": "prod"},
                                                                  {"Key": "team", "Value": "ops"}]
    cw.untag_resource(ResourceARN=arn, TagKeys=["stage"])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "ops"}]
    with pytest.raises(cw.exceptions.ResourceNotFoundException):
        cw.list_tags_for_resource(ResourceARN=arn.replace(name, _name("gone")))
