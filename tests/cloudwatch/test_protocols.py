"""CloudWatch answers each protocol botocore's model lists: Smithy RPC v2 CBOR (boto3's pick), JSON 1.0 and
query (what older clients, the AWS CLI v1 among them, may speak). The JSON and query clients are botocore
clients built from the same service model with its protocol changed."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def _client(cw_server, tmp_path: Path, protocol: str):
    session = botocore.session.get_session()
    model = session.get_component("data_loader").load_service_model("cloudwatch", "service-2")
    model = {**model, "metadata": {**model["metadata"], "protocol": protocol, "protocols": [protocol]}}
    folder = tmp_path / protocol / "cloudwatch" / "2010-08-01"
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    fresh = botocore.session.Session()
    fresh.get_component("data_loader").search_paths.insert(0, str(tmp_path / protocol))
    akid, secret = cw_server.credentials()
    return boto3.Session(botocore_session=fresh).client(
        "cloudwatch", endpoint_url=cw_server.url, region_name="us-east-1", aws_access_key_id=akid,
        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "json", "query"])
def test_each_protocol_puts_reads_and_refuses(cw_server, tmp_path, protocol):
    client = _client(cw_server, tmp_path, protocol)
    assert client.meta.service_model.protocol == protocol
    ns = f"Test/{protocol}-{uuid.uuid4().hex[:6]}"
    stamp = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=2)
    client.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "M", "Dimensions": [{"Name": "K", "Value": "v"}], "Values": [1.0, 3.0], "Counts": [1, 3],
         "Timestamp": stamp, "Unit": "Count"}])
    [point] = client.get_metric_statistics(Namespace=ns, MetricName="M", Dimensions=[{"Name": "K", "Value": "v"}],
                                           StartTime=stamp, EndTime=stamp + dt.timedelta(minutes=1), Period=60,
                                           Statistics=["Sum", "SampleCount"])["Datapoints"]
    assert (point["Sum"], point["SampleCount"], point["Unit"], point["Timestamp"]) == (10.0, 4.0, "Count", stamp)
    assert client.list_metrics(Namespace=ns)["Metrics"] == [
        {"Namespace": ns, "MetricName": "M", "Dimensions": [{"Name": "K", "Value": "v"}]}]
    [result] = client.get_metric_data(StartTime=stamp, EndTime=stamp + dt.timedelta(minutes=1), MetricDataQueries=[
        {"Id": "m", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "M",
                                              "Dimensions": [{"Name": "K", "Value": "v"}]},
                                   "Period": 60, "Stat": "Average"}, "ReturnData": False},
        {"Id": "e", "Expression": "m + 1"}])["MetricDataResults"]
    assert (result["Timestamps"], result["Values"]) == ([stamp], [3.5])
    name = f"alarm-{uuid.uuid4().hex[:6]}"
    client.put_metric_alarm(AlarmName=name, Namespace=ns, MetricName="M", Statistic="Sum", Period=60,
                            EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    [alarm] = client.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert alarm["AlarmName"] == name and isinstance(alarm["AlarmConfigurationUpdatedTimestamp"], dt.datetime)
    with pytest.raises(client.exceptions.ResourceNotFound) as missing:
        client.delete_alarms(AlarmNames=["no-such-alarm"])
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(client.exceptions.InvalidParameterValueException) as bad:
        client.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "M", "Value": 1.0, "StorageResolution": 7}])
    assert bad.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "StorageResolution" in bad.value.response["Error"]["Message"]
    client.delete_alarms(AlarmNames=[name])


def test_compressed_and_unsupported_requests(cw_server, tmp_path):
    client = _client(cw_server, tmp_path, "query")
    ns = f"Test/gzip-{uuid.uuid4().hex[:6]}"
    # botocore compresses PutMetricData bodies over 10 KB (requestcompression): 400 data are well over it.
    client.put_metric_data(Namespace=ns, MetricData=[{"MetricName": f"M{i}", "Value": float(i)} for i in range(400)])
    assert len(client.list_metrics(Namespace=ns)["Metrics"]) == 400
    with pytest.raises(ClientError) as unknown:
        client.list_dashboards()
    assert unknown.value.response["Error"]["Code"] == "InvalidAction"
    assert "ListDashboards" in unknown.value.response["Error"]["Message"]
