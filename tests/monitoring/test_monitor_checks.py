"""Model Monitor's pure parts: schedule expressions and the data quality checks against a baseline."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sagelab.errors import ValidationError
from sagelab.model_monitor import schedule_expressions, violations
from sagelab.profiling import profile
from sagelab.profiling.monitor_formats import constraints, statistics


@pytest.mark.parametrize(("expression", "hours"), [
    ("cron(0 * ? * * *)", set(range(24))),
    ("cron(0 12 ? * * *)", {12}),
    ("cron(0 8-11 ? * * *)", {8, 9, 10, 11}),
    ("cron(0 0/6 ? * * *)", {0, 6, 12, 18}),
    ("cron(0 1,13 ? * * *)", {1, 13}),
])
def test_cron_forms_model_monitor_accepts(expression, hours):
    schedule = schedule_expressions.parse_schedule(expression)
    assert schedule.hours == hours
    first = schedule.next_after(0.5, 10.0)  # 10 s schedule hours
    assert (first / 10.0) % 24 in hours
    assert first > 0.5


def test_a_daily_schedule_fires_once_a_schedule_day():
    schedule = schedule_expressions.parse_schedule("cron(0 3 ? * * *)")
    first = schedule.next_after(0.0, 1.0)
    assert first == 3.0 and schedule.next_after(first, 1.0) == 27.0


def test_offsets_are_iso_durations_in_schedule_hours():
    assert schedule_expressions.parse_offset("-PT1H", "f") == -1
    assert schedule_expressions.parse_offset("-P1DT30M", "f") == -24.5
    with pytest.raises(ValidationError, match="DataAnalysisStartTime"):
        schedule_expressions.parse_offset("1 hour", "DataAnalysisStartTime")


def test_each_check_names_its_feature_and_type():
    baseline = pa.table({"n": [1, 2, 3, 4] * 25, "x": [0.5, 1.5, 2.5, 3.5] * 25, "colour": ["red", "blue"] * 50})
    base_profile = profile(baseline)
    current = pa.table({"n": [1.5, 2.5] * 10, "x": [None, 1.0] * 10, "colour": ["green"] * 20, "extra": [1] * 20})
    stats = statistics(base_profile)
    distances = violations.drift_distances(current, stats)
    found = {(v.feature_name, v.constraint_check_type) for v in
             violations.check(current, constraints(base_profile), stats, distances)}
    assert {("n", "data_type_check"), ("x", "completeness_check"), ("colour", "categorical_values_check"),
            ("extra", "extra_column_check"), ("colour", "baseline_drift_check")} <= found
    same = violations.check(baseline, constraints(base_profile), stats,
                            violations.drift_distances(baseline, stats))
    assert same == []
