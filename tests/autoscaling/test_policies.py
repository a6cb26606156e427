"""The capacity a scaling policy asks for, as Application Auto Scaling computes it."""

from __future__ import annotations

import pytest

from sagelab.autoscaling.policies import check_step_scaling, step_capacity, tracking_capacity
from sagelab.errors import ValidationError


def test_target_tracking_scales_out_in_proportion_and_in_by_one():
    assert tracking_capacity(1, True, 30.0, 10.0) == 3
    assert tracking_capacity(2, True, 10.5, 10.0) == 3  # always at least one more when AlarmHigh fires
    assert tracking_capacity(2, True, None, 10.0) == 3
    assert tracking_capacity(3, False, 0.0, 10.0) == 2


STEPS = {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
    {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
    {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 3}]}


@pytest.mark.parametrize(("config", "current", "value", "expected"), [
    (STEPS, 2, 55.0, 3),            # 5 above the threshold of 50: the first step
    (STEPS, 2, 75.0, 5),            # 25 above: the unbounded step
    (STEPS, 2, 45.0, None),         # below the threshold: no step covers it
    ({**STEPS, "AdjustmentType": "ExactCapacity"}, 2, 75.0, 3),
    ({"AdjustmentType": "PercentChangeInCapacity", "MinAdjustmentMagnitude": 2, "StepAdjustments": [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 10}]}, 4, 60.0, 6),
    ({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
        {"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}]}, 3, 50.0, 2),  # a less-than alarm's breach
])
def test_step_scaling_picks_the_step_the_breach_falls_in(config, current, value, expected):
    assert step_capacity(current, config, value, 50.0) == expected


def test_step_adjustments_must_be_contiguous_and_one_unbounded():
    with pytest.raises(ValidationError, match="overlap or leave gaps"):
        check_step_scaling({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
            {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 5, "ScalingAdjustment": 1},
            {"MetricIntervalLowerBound": 4, "ScalingAdjustment": 2}]})
    with pytest.raises(ValidationError, match="unbounded"):
        check_step_scaling({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
            {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 5, "ScalingAdjustment": 1}]})
