"""The AWS CLI (v1) drives CloudWatch unchanged: put-metric-data, get-metric-statistics, alarms."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import client_env

pytest.importorskip("awscli", reason="the AWS CLI (awscli) is not installed")


def test_the_aws_cli_puts_reads_and_alarms(cw_server, tmp_path):
    env = client_env(cw_server, tmp_path)

    def aws(*args: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "awscli", "cloudwatch", *args, "--output", "json",
                               "--endpoint-url", cw_server.url], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    aws("put-metric-data", "--namespace", "Test/Cli", "--metric-name", "Jobs", "--value", "4",
        "--dimensions", "Queue=main", "--unit", "Count")
    aws("put-metric-alarm", "--alarm-name", "cli-alarm", "--namespace", "Test/Cli", "--metric-name", "Jobs",
        "--dimensions", "Name=Queue,Value=main", "--statistic", "Sum", "--period", "60",
        "--evaluation-periods", "1", "--threshold", "3", "--comparison-operator", "GreaterThanThreshold")
    listed = aws("list-metrics", "--namespace", "Test/Cli")["Metrics"]
    assert listed == [{"Namespace": "Test/Cli", "MetricName": "Jobs", "Dimensions": [{"Name": "Queue",
                                                                                      "Value": "main"}]}]
    [alarm] = aws("describe-alarms", "--alarm-names", "cli-alarm")["MetricAlarms"]
    assert alarm["AlarmName"] == "cli-alarm" and alarm["Threshold"] == 3.0
