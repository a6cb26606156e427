"""Application Auto Scaling through boto3: targets, policies, activities, their shapes and their errors."""

from __future__ import annotations

import re
import time

import pytest
from botocore.exceptions import ClientError

NS, DIM = "sagemaker", "sagemaker:variant:DesiredInstanceCount"


@pytest.fixture(scope="module")
def resource_id(scaling_server, deploy) -> str:
    rid = deploy("scaling-api")
    yield rid
    scaling_server.client("sagemaker").delete_endpoint(EndpointName="scaling-api")


def _error(excinfo) -> tuple[str, str]:
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def test_register_describe_and_deregister_a_target(aas, scaling_server, resource_id):
    arn = aas.register_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
                                       MinCapacity=1, MaxCapacity=3)["ScalableTargetARN"]
    assert re.fullmatch(r"arn:aws:application-autoscaling:us-east-1:\d{12}:scalable-target/[0-9a-f]+", arn)
    [target] = aas.describe_scalable_targets(ServiceNamespace=NS, ResourceIds=[resource_id])["ScalableTargets"]
    assert target["MinCapacity"] == 1 and target["MaxCapacity"] == 3 and target["ScalableTargetARN"] == arn
    assert target["RoleARN"].endswith("AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
    assert target["SuspendedState"] == {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                                        "ScheduledScalingSuspended": False}
    # Registering again updates the target in place, keeping what the request leaves out.
    again = aas.register_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
                                         MaxCapacity=4, SuspendedState={"DynamicScalingInSuspended": True})
    assert again["ScalableTargetARN"] == arn
    [target] = aas.describe_scalable_targets(ServiceNamespace=NS)["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    assert target["SuspendedState"]["DynamicScalingInSuspended"] is True
    assert aas.describe_scalable_targets(ServiceNamespace=NS, ResourceIds=["endpoint/x/variant/y"])[
        "ScalableTargets"] == []
    aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM)
    assert aas.describe_scalable_targets(ServiceNamespace=NS)["ScalableTargets"] == []
    with pytest.raises(ClientError) as missing:
        aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM)
    code, message = _error(missing)
    assert code == "ObjectNotFoundException" and resource_id in message


def test_bad_targets_are_refused_naming_the_field(aas, resource_id):
    cases = [({"ResourceId": "endpoint/nope/variant/main", "MinCapacity": 1, "MaxCapacity": 2}, "nope"),
             ({"ResourceId": "my-endpoint", "MinCapacity": 1, "MaxCapacity": 2}, "endpoint/<EndpointName>"),
             ({"ResourceId": resource_id, "MinCapacity": 3, "MaxCapacity": 2}, "MaxCapacity"),
             ({"ResourceId": resource_id}, "MinCapacity and MaxCapacity are required"),
             ({"ResourceId": resource_id, "ScalableDimension": "sagemaker:variant:DesiredProvisionedConcurrency",
               "MinCapacity": 1, "MaxCapacity": 2}, "DesiredProvisionedConcurrency")]
    for extra, words in cases:
        with pytest.raises(ClientError) as bad:
            aas.register_scalable_target(**{"ServiceNamespace": NS, "ScalableDimension": DIM, **extra})
        code, message = _error(bad)
        assert code == "ValidationException" and words in message, (extra, message)


def test_target_tracking_policy_creates_its_alarms(aas, scaling_server, resource_id):
    cw = scaling_server.client("cloudwatch")
    aas.register_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=2)
    put = aas.put_scaling_policy(
        PolicyName="invocations", ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70.0, "ScaleOutCooldown": 60, "ScaleInCooldown": 120,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    assert re.fullmatch(r"arn:aws:autoscaling:us-east-1:\d{12}:scalingPolicy:[0-9a-f-]{36}:resource/sagemaker/"
                        + re.escape(resource_id) + ":policyName/invocations", put["PolicyARN"])
    names = sorted(a["AlarmName"] for a in put["Alarms"])
    assert [re.sub(r"-[0-9a-f-]{36}$", "", n) for n in names] == [
        f"TargetTracking-{resource_id}-AlarmHigh", f"TargetTracking-{resource_id}-AlarmLow"]
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    high = next(a for n, a in alarms.items() if "-AlarmHigh-" in n)
    low = next(a for n, a in alarms.items() if "-AlarmLow-" in n)
    assert high["MetricName"] == "InvocationsPerInstance" and high["Namespace"] == "AWS/SageMaker"
    assert {d["Name"]: d["Value"] for d in high["Dimensions"]} == {"EndpointName": "scaling-api",
                                                                   "VariantName": "main"}
    assert (high["Threshold"], high["ComparisonOperator"], high["EvaluationPeriods"]) == (
        70.0, "GreaterThanThreshold", 3)
    assert (low["Threshold"], low["ComparisonOperator"], low["EvaluationPeriods"]) == (
        63.0, "LessThanThreshold", 15)
    assert high["AlarmActions"] == [put["PolicyARN"]] and high["AlarmDescription"].startswith("DO NOT EDIT")
    [policy] = aas.describe_scaling_policies(ServiceNamespace=NS, ResourceId=resource_id)["ScalingPolicies"]
    assert policy["PolicyType"] == "TargetTrackingScaling" and policy["PolicyARN"] == put["PolicyARN"]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["ScaleInCooldown"] == 120
    assert sorted(a["AlarmName"] for a in policy["Alarms"]) == names
    # Putting it again with scale-in disabled keeps the ARN and leaves only the high alarm.
    again = aas.put_scaling_policy(
        PolicyName="invocations", ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 10.0, "DisableScaleIn": True, "CustomizedMetricSpecification": {
                "MetricName": "CPUUtilization", "Namespace": "/aws/sagemaker/Endpoints", "Statistic": "Average",
                "Dimensions": [{"Name": "EndpointName", "Value": "scaling-api"},
                               {"Name": "VariantName", "Value": "main"}], "Unit": "Percent"}})
    assert again["PolicyARN"] == put["PolicyARN"] and len(again["Alarms"]) == 1
    assert cw.describe_alarms(AlarmNames=names)["MetricAlarms"] == []
    [only] = cw.describe_alarms(AlarmNames=[again["Alarms"][0]["AlarmName"]])["MetricAlarms"]
    assert only["MetricName"] == "CPUUtilization" and only["Statistic"] == "Average"
    aas.delete_scaling_policy(PolicyName="invocations", ServiceNamespace=NS, ResourceId=resource_id,
                              ScalableDimension=DIM)
    assert cw.describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"] == []
    with pytest.raises(ClientError) as missing:
        aas.delete_scaling_policy(PolicyName="invocations", ServiceNamespace=NS, ResourceId=resource_id,
                                  ScalableDimension=DIM)
    code, message = _error(missing)
    assert code == "ObjectNotFoundException" and "policy name: invocations" in message
    aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM)


def test_step_scaling_policy_and_bad_policies(aas, resource_id):
    with pytest.raises(ClientError) as no_target:
        aas.put_scaling_policy(PolicyName="p", ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
                               PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration={"TargetValue": 5.0, "PredefinedMetricSpecification": {
                                   "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    code, message = _error(no_target)
    assert code == "ObjectNotFoundException" and resource_id in message
    aas.register_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=2)
    step = {"AdjustmentType": "ChangeInCapacity", "Cooldown": 30, "MetricAggregationType": "Maximum",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10,
                                 "ScalingAdjustment": 1},
                                {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 2}]}
    put = aas.put_scaling_policy(PolicyName="steps", ServiceNamespace=NS, ResourceId=resource_id,
                                 ScalableDimension=DIM, PolicyType="StepScaling",
                                 StepScalingPolicyConfiguration=step)
    assert put["Alarms"] == [] and ":policyName/steps" in put["PolicyARN"]
    [policy] = aas.describe_scaling_policies(ServiceNamespace=NS, PolicyNames=["steps"])["ScalingPolicies"]
    assert policy["StepScalingPolicyConfiguration"] == step
    tracking = {"TargetValue": 5.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget"}}
    bad = [({"PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": tracking},
            "ALBRequestCountPerTarget"),
           ({"PolicyType": "TargetTrackingScaling"}, "TargetTrackingScalingPolicyConfiguration is required"),
           ({"PolicyType": "StepScaling", "StepScalingPolicyConfiguration": {
               "AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
                   {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 5, "ScalingAdjustment": 1},
                   {"MetricIntervalLowerBound": 6, "ScalingAdjustment": 2}]}}, "gaps"),
           ({"PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {
               "TargetValue": 5.0}}, "exactly one of PredefinedMetricSpecification")]
    for extra, words in bad:
        with pytest.raises(ClientError) as refused:
            aas.put_scaling_policy(**{"PolicyName": "bad", "ServiceNamespace": NS, "ResourceId": resource_id,
                                      "ScalableDimension": DIM, **extra})
        code, message = _error(refused)
        assert code == "ValidationException" and words in message, (extra, message)
    # Deregistering the target takes its policies with it.
    aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM)
    assert aas.describe_scaling_policies(ServiceNamespace=NS)["ScalingPolicies"] == []


def test_activities_page_and_registering_outside_the_range_scales(aas, scaling_server, resource_id):
    sm = scaling_server.client("sagemaker")
    aas.register_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
                                 MinCapacity=2, MaxCapacity=3)
    sm.get_waiter("endpoint_in_service").wait(EndpointName="scaling-api", WaiterConfig={"Delay": 0.5,
                                                                                        "MaxAttempts": 240})
    [variant] = sm.describe_endpoint(EndpointName="scaling-api")["ProductionVariants"]
    assert variant["CurrentInstanceCount"] == variant["DesiredInstanceCount"] == 2
    aas.register_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=1)
    sm.get_waiter("endpoint_in_service").wait(EndpointName="scaling-api", WaiterConfig={"Delay": 0.5,
                                                                                        "MaxAttempts": 240})
    paginator = aas.get_paginator("describe_scaling_activities")
    pages = list(paginator.paginate(ServiceNamespace=NS, ResourceId=resource_id, PaginationConfig={"PageSize": 1}))
    activities = [a for p in pages for a in p["ScalingActivities"]]
    assert len(pages) >= 2 and len(activities) == 2
    newest, oldest = activities
    assert oldest["Cause"] == "minimum capacity was set to 2"
    assert newest["Cause"] == "maximum capacity was set to 1"
    assert newest["Description"] == "Setting desired instance count to 1."
    for activity in activities:
        assert activity["ScalableDimension"] == DIM and activity["StartTime"]
    deadline = time.monotonic() + 60
    # An activity is marked Successful once the endpoint's update is done, a moment after InService shows.
    while not [a for a in aas.describe_scaling_activities(ServiceNamespace=NS)["ScalingActivities"]
               if a["StatusCode"] == "Successful"]:
        assert time.monotonic() < deadline, "no scaling activity ever succeeded"
        time.sleep(0.2)
    with pytest.raises(ClientError) as bad_token:
        aas.describe_scaling_activities(ServiceNamespace=NS, NextToken="nope")
    assert _error(bad_token)[0] == "InvalidNextTokenException"
    aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM)


@pytest.mark.slow
def test_targets_and_policies_survive_a_crash(aas, scaling_server, resource_id):
    aas.register_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=2)
    put = aas.put_scaling_policy(
        PolicyName="durable", ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 50.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    scaling_server.kill()
    scaling_server.start()
    [target] = aas.describe_scalable_targets(ServiceNamespace=NS)["ScalableTargets"]
    assert (target["ResourceId"], target["MaxCapacity"]) == (resource_id, 2)
    [policy] = aas.describe_scaling_policies(ServiceNamespace=NS)["ScalingPolicies"]
    assert policy["PolicyARN"] == put["PolicyARN"] and len(policy["Alarms"]) == 2
    names = [a["AlarmName"] for a in put["Alarms"]]
    assert len(scaling_server.client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]) == 2
    aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM)
    scaling_server.client("sagemaker").get_waiter("endpoint_in_service").wait(
        EndpointName="scaling-api", WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})


def test_an_alarm_naming_a_step_policy_scales_the_variant(aas, scaling_server, resource_id):
    sm, cw = scaling_server.client("sagemaker"), scaling_server.client("cloudwatch")
    aas.register_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=2)
    arn = aas.put_scaling_policy(PolicyName="steps", ServiceNamespace=NS, ResourceId=resource_id,
                                 ScalableDimension=DIM, PolicyType="StepScaling", StepScalingPolicyConfiguration={
                                     "AdjustmentType": "ChangeInCapacity", "Cooldown": 0,
                                     "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]},
                                 )["PolicyARN"]
    cw.put_metric_alarm(AlarmName="queue-deep", Namespace="Custom/Queue", MetricName="Depth", Statistic="Maximum",
                        Period=60, EvaluationPeriods=1, Threshold=100, ComparisonOperator="GreaterThanThreshold",
                        AlarmActions=[arn])
    # A policy acts only on a settled variant: an earlier test's activity may still be InProgress on a busy
    # machine, and the alarm put in ALARM by hand falls back to INSUFFICIENT_DATA before it could act again.
    deadline = time.monotonic() + 60
    while any(a["StatusCode"] == "InProgress" for a in aas.describe_scaling_activities(
            ServiceNamespace=NS, ResourceId=resource_id)["ScalingActivities"]):
        assert time.monotonic() < deadline, "an earlier scaling activity did not finish"
        time.sleep(0.25)
    cw.set_alarm_state(AlarmName="queue-deep", StateValue="ALARM", StateReason="testing the policy")

    def scaled():
        [variant] = sm.describe_endpoint(EndpointName="scaling-api")["ProductionVariants"]
        return variant["CurrentInstanceCount"] == 2
    deadline = time.monotonic() + 60
    while not scaled():
        assert time.monotonic() < deadline, "the step policy did not add an instance"
        time.sleep(0.25)
    [activity] = [a for a in aas.describe_scaling_activities(ServiceNamespace=NS, ResourceId=resource_id)[
        "ScalingActivities"] if "queue-deep" in a["Cause"]]
    assert activity["Cause"] == "monitor alarm queue-deep in state ALARM triggered policy steps"
    assert activity["Description"] == "Setting desired instance count to 2."
    cw.delete_alarms(AlarmNames=["queue-deep"])
    aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM)
