"""A target tracking policy scales a real endpoint out under load and back in when the load is gone, while
no request is refused; the endpoint's instance metrics are published meanwhile."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from botocore.config import Config

NS, DIM = "sagemaker", "sagemaker:variant:DesiredInstanceCount"


class Load:
    """A few threads invoking the endpoint back to back until stopped (or a bound is reached)."""

    def __init__(self, rt, endpoint: str, threads: int = 3, bound_seconds: float = 60, pause: float = 0.0):
        self.rt, self.endpoint, self.pause = rt, endpoint, pause
        self.ok = self.refused = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + bound_seconds
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                self.rt.invoke_endpoint(EndpointName=self.endpoint, ContentType="text/csv", Body="0.1,0.2,0.3")
                with self._lock:
                    self.ok += 1
                self._stop.wait(self.pause)
            except Exception as exc:  # noqa: BLE001 - every refusal is counted and shown
                with self._lock:
                    self.refused += 1
                    self.errors.append(repr(exc))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def _counts(sm, name: str) -> tuple[str, int, int]:
    desc = sm.describe_endpoint(EndpointName=name)
    [variant] = desc["ProductionVariants"]
    return desc["EndpointStatus"], variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]


def _wait_for(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


@pytest.mark.slow
def test_target_tracking_scales_out_under_load_and_in_after_it(scaling_server, aas, deploy):
    sm, cw = scaling_server.client("sagemaker"), scaling_server.client("cloudwatch")
    # No retries: a refused request must show, not be hidden by botocore retrying it.
    rt = scaling_server.client("sagemaker-runtime", config=Config(retries={"max_attempts": 1, "mode": "standard"},
                                                                   max_pool_connections=8))
    resource_id = deploy("scaling-e2e")
    aas.register_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=3)
    policy = aas.put_scaling_policy(
        PolicyName="per-instance", ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 5.0, "ScaleOutCooldown": 2, "ScaleInCooldown": 2,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    seen_updating = set()

    def scaled_out():
        status, current, desired = _counts(sm, "scaling-e2e")
        seen_updating.add(status)
        return current == 3 and status == "InService"

    with Load(rt, "scaling-e2e") as load:
        _wait_for(scaled_out, 45, "the endpoint did not scale out to 3 instances under load")
        time.sleep(1)  # requests keep flowing on the grown fleet
    assert "Updating" in seen_updating
    assert load.refused == 0, load.errors[:3]
    assert load.ok > 0

    # With the load down to a trickle, AlarmLow sees 15 quiet periods and the policy scales in one instance
    # per cooldown; the trickle's requests are served while instances drain and go.
    with Load(rt, "scaling-e2e", threads=1, pause=0.5) as trickle:
        _wait_for(lambda: _counts(sm, "scaling-e2e") == ("InService", 1, 1), 60,
                  "the endpoint did not scale back in to 1 instance")
    assert trickle.refused == 0, trickle.errors[:3]
    assert trickle.ok > 0

    def settled():
        found = aas.describe_scaling_activities(ServiceNamespace=NS, ResourceId=resource_id)["ScalingActivities"]
        return found if all(a["StatusCode"] != "InProgress" for a in found) else None

    activities = _wait_for(settled, 10, "the scaling activities did not finish")
    causes = [a["Cause"] for a in activities]
    high, low = (f"TargetTracking-{resource_id}-AlarmHigh-", f"TargetTracking-{resource_id}-AlarmLow-")
    assert any(c.startswith(f"monitor alarm {high}") and c.endswith("in state ALARM triggered policy per-instance")
               for c in causes), causes
    assert sum(1 for c in causes if c.startswith(f"monitor alarm {low}")) >= 1, causes
    assert all(a["StatusCode"] == "Successful" for a in activities), activities
    assert activities[0]["Description"] == "Setting desired instance count to 1."
    history = cw.describe_alarm_history(AlarmName=policy["Alarms"][0]["AlarmName"], HistoryItemType="Action")
    assert any("Successfully executed action" in h["HistorySummary"] for h in history["AlarmHistoryItems"])

    # The instances' utilization and their model set-up time were published meanwhile.
    dims = [{"Name": "EndpointName", "Value": "scaling-e2e"}, {"Name": "VariantName", "Value": "main"}]
    now = dt.datetime.now(dt.UTC)
    window = {"Dimensions": dims, "StartTime": now - dt.timedelta(minutes=5), "EndTime": now + dt.timedelta(minutes=1),
              "Period": 60}
    for metric in ("CPUUtilization", "MemoryUtilization", "DiskUtilization"):
        points = cw.get_metric_statistics(Namespace="/aws/sagemaker/Endpoints", MetricName=metric,
                                          Statistics=["Average", "Maximum", "SampleCount"], **window)["Datapoints"]
        assert points and all(p["Unit"] == "Percent" for p in points), metric
        assert 0 <= max(p["Maximum"] for p in points) <= 100 * 64, metric
    assert max(p["Maximum"] for p in cw.get_metric_statistics(
        Namespace="/aws/sagemaker/Endpoints", MetricName="CPUUtilization", Statistics=["Maximum"],
        **window)["Datapoints"]) > 0  # the instances worked under load
    [setup] = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="ModelSetupTime",
                                       Statistics=["SampleCount", "Minimum"], **window)["Datapoints"]
    assert setup["SampleCount"] >= 3 and setup["Minimum"] > 0 and setup["Unit"] == "Microseconds"
    aas.deregister_scalable_target(ServiceNamespace=NS, ResourceId=resource_id, ScalableDimension=DIM)
    sm.delete_endpoint(EndpointName="scaling-e2e")
