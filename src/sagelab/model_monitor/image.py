"""SageMaker's `sagemaker-model-monitor-analyzer` image as a built-in processing image.

The image does two jobs, told apart by its Environment as the prebuilt container tells them apart:

- a baselining job (`DefaultModelMonitor.suggest_baseline`): no captured data and no baseline; the
  profiler writes statistics.json and constraints.json (`sagelab.profiling.analyzer`);
- a monitoring execution (a schedule fired): `dataset_format` is `sagemakerCaptureJson`, with
  `baseline_constraints` / `baseline_statistics`, `start_time` / `end_time` and the endpoint and schedule
  names. It writes statistics.json and constraint_violations.json for the window, publishes the
  per-feature metrics to CloudWatch (namespace `aws/sagemaker/Endpoints/data-metrics`, dimensions
  Endpoint and MonitoringSchedule) when `publish_cloudwatch_metrics` is Enabled, and leaves the
  ExitMessage AWS gives: `CompletedWithViolations: ...` when there are violations.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sagelab.algorithms.base import DataError
from sagelab.containers.paths import host_path

METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
#: CloudWatch takes at most this many data points per call.
_METRICS_PER_CALL = 1000


def is_monitoring_execution(env: dict[str, str]) -> bool:
    return "sagemakerCaptureJson" in env.get("dataset_format", "") or "baseline_constraints" in env


def run_model_monitor(ctx) -> None:
    if not is_monitoring_execution(ctx.environment):
        from sagelab.profiling.analyzer import run_analyzer

        run_analyzer(ctx)
        return
    run_monitoring(ctx)


def _local(ctx, container_path: str) -> Path:
    if ctx.opt_ml is None:  # pragma: no cover - the processing runner always gives it
        raise DataError("the job's /opt/ml folder is unknown")
    return host_path(ctx.opt_ml, container_path)


def _timestamp(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def _read_json(ctx, env_name: str) -> dict[str, Any] | None:
    container_path = ctx.environment.get(env_name)
    if not container_path:
        return None
    path = _local(ctx, container_path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{env_name} {container_path} does not exist: the baseline file was not provided.") from None
    except ValueError as exc:
        raise DataError(f"{env_name} {container_path} is not JSON: {exc}") from None


def run_monitoring(ctx) -> None:
    from sagelab.model_monitor import violations
    from sagelab.model_monitor.captured import read_captured
    from sagelab.profiling import profile
    from sagelab.profiling.monitor_formats import statistics as statistics_document

    env = ctx.environment
    constraints = _read_json(ctx, "baseline_constraints")
    baseline = _read_json(ctx, "baseline_statistics")
    names = [f["name"] for f in (baseline or constraints or {}).get("features", [])]
    source = _local(ctx, env.get("dataset_source", "/opt/ml/processing/input/endpoint"))
    start, end = _timestamp(env.get("start_time")), _timestamp(env.get("end_time"))
    ctx.print(f"sagelab model monitor: reading captured data under {source} from {env.get('start_time')} to "
              f"{env.get('end_time')}")
    table = read_captured(source, names, start, end)
    current = statistics_document(profile(table))
    distances = violations.drift_distances(table, baseline or {})
    found = violations.check(table, constraints, baseline, distances)
    output = _local(ctx, env.get("output_path", "/opt/ml/processing/output"))
    output.mkdir(parents=True, exist_ok=True)
    (output / "statistics.json").write_text(json.dumps(current, indent=2, allow_nan=False))
    (output / "constraint_violations.json").write_text(
        json.dumps({"violations": [v.to_dict() for v in found]}, indent=2))
    ctx.print(f"sagelab model monitor: {table.num_rows} records, {len(found)} violation(s)")
    for violation in found:
        ctx.print(f"  {violation.constraint_check_type} {violation.feature_name}: {violation.description}")
    if env.get("publish_cloudwatch_metrics", "Disabled") == "Enabled":
        _publish(ctx, current, distances)
    message = (f"CompletedWithViolations: Job completed successfully with {len(found)} violations." if found
               else "Completed: Job completed successfully with no violations.")
    message_file = _local(ctx, "/opt/ml/output/message")
    message_file.parent.mkdir(parents=True, exist_ok=True)
    message_file.write_text(message)


def _publish(ctx, current: dict[str, Any], distances: dict[str, float]) -> None:
    from sagelab.monitoring.metrics import MetricStore

    env = ctx.environment
    dimensions = [{"Name": "Endpoint", "Value": env.get("sagemaker_endpoint_name") or "unknown"},
                  {"Name": "MonitoringSchedule", "Value": env.get("sagemaker_monitoring_schedule_name") or "unknown"}]
    at = _timestamp(env.get("metric_time"))
    data = []
    for feature in current["features"]:
        name = feature["name"]
        common = (feature.get("numerical_statistics") or feature.get("string_statistics") or {}).get("common", {})
        present, missing = common.get("num_present", 0), common.get("num_missing", 0)
        values = {"feature_non_null": present, "feature_null": missing, "feature_total_counts": present + missing,
                  {"Integral": "feature_integral_counts", "Fractional": "feature_fractional_counts",
                   "String": "feature_string_counts"}.get(feature["inferred_type"], "feature_unknown_counts"): present}
        if name in distances:
            values["feature_baseline_drift"] = distances[name]
        for metric, value in values.items():
            datum = {"MetricName": f"{metric}_{name}"[:255], "Dimensions": dimensions, "Value": float(value)}
            if at is not None:
                datum["Timestamp"] = at
            data.append(datum)
    store = MetricStore(ctx.parts.db)
    for i in range(0, len(data), _METRICS_PER_CALL):
        store.record(METRICS_NAMESPACE, data[i:i + _METRICS_PER_CALL])
    ctx.print(f"sagelab model monitor: published {len(data)} metrics to {METRICS_NAMESPACE}")
