"""Scaling policies as Application Auto Scaling defines them: what a policy's configuration must hold, the
CloudWatch alarms a target tracking policy owns, and the capacity an alarm's breach asks for.

Pure functions over documents; `service.py` stores them and `controller.py` acts on them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sagelab.errors import ValidationError

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
#: A target tracking policy's AlarmHigh and AlarmLow, as AWS creates them: scale out after 3 breaching
#: periods, scale in after 15 periods below 90 % of the target.
HIGH_PERIODS = 3
LOW_PERIODS = 15
LOW_FRACTION = 0.9


def check_target_tracking(config: Mapping[str, Any]) -> None:
    target = config["TargetValue"]
    if not 8.515920e-109 <= target <= 1.174271e108:
        raise ValidationError(f"TargetTrackingScalingPolicyConfiguration.TargetValue must be a positive number; "
                              f"got {target}.")
    predefined, custom = config.get("PredefinedMetricSpecification"), config.get("CustomizedMetricSpecification")
    if (predefined is None) == (custom is None):
        raise ValidationError("TargetTrackingScalingPolicyConfiguration must have exactly one of "
                              "PredefinedMetricSpecification and CustomizedMetricSpecification.")
    if predefined is not None and predefined["PredefinedMetricType"] != "SageMakerVariantInvocationsPerInstance":
        raise ValidationError(f"PredefinedMetricType {predefined['PredefinedMetricType']!r} is not valid for "
                              "ScalableDimension sagemaker:variant:DesiredInstanceCount; expected "
                              "SageMakerVariantInvocationsPerInstance.")
    if custom is not None:
        single = custom.get("MetricName") is not None or custom.get("Namespace") is not None
        if single == bool(custom.get("Metrics")):
            raise ValidationError("CustomizedMetricSpecification must have either MetricName, Namespace and "
                                  "Statistic, or Metrics (a metric math query); got "
                                  f"{sorted(k for k in custom if custom[k] is not None)}.")
        if single:
            for field in ("MetricName", "Namespace", "Statistic"):
                if not custom.get(field):
                    raise ValidationError(f"CustomizedMetricSpecification.{field} is required for a single metric.")
        else:
            returned = [m for m in custom["Metrics"] if m.get("ReturnData", True)]
            if len(returned) != 1:
                raise ValidationError("CustomizedMetricSpecification.Metrics must have exactly one query with "
                                      f"ReturnData true; got {len(returned)}.")


def check_step_scaling(config: Mapping[str, Any] | None) -> None:
    if config is None:
        raise ValidationError("StepScalingPolicyConfiguration is required for PolicyType StepScaling.")
    if not config.get("AdjustmentType"):
        raise ValidationError("StepScalingPolicyConfiguration.AdjustmentType is required.")
    steps = config.get("StepAdjustments") or []
    if not steps:
        raise ValidationError("StepScalingPolicyConfiguration.StepAdjustments must have at least one step.")
    if config.get("MinAdjustmentMagnitude") is not None and config["AdjustmentType"] != "PercentChangeInCapacity":
        raise ValidationError("MinAdjustmentMagnitude is valid only with AdjustmentType PercentChangeInCapacity; "
                              f"got {config['AdjustmentType']}.")
    bounds = sorted((s.get("MetricIntervalLowerBound", -math.inf), s.get("MetricIntervalUpperBound", math.inf))
                    for s in steps)
    for (low, high) in bounds:
        if low >= high:
            raise ValidationError(f"A step adjustment's MetricIntervalLowerBound ({low}) must be below its "
                                  f"MetricIntervalUpperBound ({high}).")
    for (_, high), (low, _) in zip(bounds, bounds[1:], strict=False):
        if high != low:
            raise ValidationError(f"Step adjustments must not overlap or leave gaps: one ends at {high}, the next "
                                  f"starts at {low}.")
    if sum(1 for low, high in bounds if math.isinf(low) or math.isinf(high)) == 0:
        raise ValidationError("One step adjustment must have an unbounded MetricIntervalLowerBound or "
                              "MetricIntervalUpperBound.")


def variant_dimensions(resource_id: str) -> list[dict[str, str]]:
    """`endpoint/<name>/variant/<variant>` -> SageMaker's EndpointName and VariantName dimensions."""
    _, endpoint, _, variant = resource_id.split("/", 3)
    return [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]


def tracking_alarms(policy: Mapping[str, Any], period: int) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for the alarms a target tracking policy owns (none for scale-in when
    DisableScaleIn is set), each acting on the policy."""
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    custom = config.get("CustomizedMetricSpecification")
    if custom is None:
        metric: dict[str, Any] = {"Namespace": SAGEMAKER_NAMESPACE, "MetricName": "InvocationsPerInstance",
                                  "Dimensions": variant_dimensions(policy["ResourceId"]), "Statistic": "Sum",
                                  "Period": period}
    elif custom.get("Metrics"):
        metric = {"Metrics": [_alarm_query(q, period) for q in custom["Metrics"]]}
    else:
        metric = {"Namespace": custom["Namespace"], "MetricName": custom["MetricName"],
                  "Dimensions": custom.get("Dimensions") or [], "Statistic": custom["Statistic"], "Period": period}
        if custom.get("Unit"):
            metric["Unit"] = custom["Unit"]
    target = config["TargetValue"]
    base = f"TargetTracking-{policy['ResourceId']}"
    description = f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy['PolicyARN']}."
    alarms = [{"AlarmName": f"{base}-AlarmHigh-{uuid.uuid4()}", "AlarmDescription": description,
               "AlarmActions": [policy["PolicyARN"]], "EvaluationPeriods": HIGH_PERIODS,
               "DatapointsToAlarm": HIGH_PERIODS, "Threshold": target,
               "ComparisonOperator": "GreaterThanThreshold", **metric}]
    if not config.get("DisableScaleIn"):
        alarms.append({"AlarmName": f"{base}-AlarmLow-{uuid.uuid4()}", "AlarmDescription": description,
                       "AlarmActions": [policy["PolicyARN"]], "EvaluationPeriods": LOW_PERIODS,
                       "DatapointsToAlarm": LOW_PERIODS, "Threshold": target * LOW_FRACTION,
                       "ComparisonOperator": "LessThanThreshold", **metric})
    return alarms


def _alarm_query(query: Mapping[str, Any], period: int) -> dict[str, Any]:
    out = {k: v for k, v in query.items() if k in ("Id", "Expression", "Label", "ReturnData")}
    if query.get("MetricStat"):
        out["MetricStat"] = {**query["MetricStat"], "Period": period}
    return out


def tracking_capacity(current: int, high: bool, value: float | None, target: float) -> int:
    """What a target tracking alarm asks for: out in proportion to metric/target, in by one instance."""
    if not high:
        return current - 1
    if value is None or current <= 0:
        return current + 1
    return max(current + 1, math.ceil(current * value / target - 1e-9))


def step_capacity(current: int, config: Mapping[str, Any], value: float, threshold: float) -> int | None:
    """The capacity a step scaling policy sets for a metric value, or None when no step covers it."""
    offset = value - threshold
    for step in config["StepAdjustments"]:
        low = step.get("MetricIntervalLowerBound", -math.inf)
        high = step.get("MetricIntervalUpperBound", math.inf)
        # Intervals are closed at their lower bound, except that a breach of a less-than alarm lands
        # exactly on the upper bound 0 of the step below the threshold.
        if low <= offset < high or offset == high == 0:
            return _adjusted(current, config, step["ScalingAdjustment"])
    return None


def _adjusted(current: int, config: Mapping[str, Any], adjustment: int) -> int:
    kind = config["AdjustmentType"]
    if kind == "ExactCapacity":
        return adjustment
    if kind == "ChangeInCapacity":
        return current + adjustment
    change = current * adjustment / 100
    change = math.floor(change) if change > 0 else math.ceil(change)  # AWS rounds toward zero
    minimum = config.get("MinAdjustmentMagnitude") or 0
    if adjustment and abs(change) < minimum:
        change = minimum if adjustment > 0 else -minimum
    if adjustment and change == 0:
        change = 1 if adjustment > 0 else -1
    return current + change


def aggregate(values: Sequence[float], how: str | None) -> float:
    if how == "Minimum":
        return min(values)
    if how == "Maximum":
        return max(values)
    return sum(values) / len(values)
