"""Per-variant invocation metrics, as SageMaker publishes them to CloudWatch (namespace AWS/SageMaker).

Invocations, InvocationsPerInstance (each invocation counts 1 / the variant's instance count at the time),
Invocation4XXErrors, Invocation5XXErrors, ModelLatency and OverheadLatency (microseconds,
SageMaker's unit), and for multi-model endpoints the model cache's metrics, are aggregated per minute in
memory and written to the metadata store by `flush` (per `period` seconds when a test scales time down:
below a minute they are stored high-resolution). Every flush also writes a zero Invocations and
InvocationsPerInstance point for each variant that is serving (`serving` names them) and had no request, as
SageMaker reports an idle variant: a target tracking policy's AlarmLow needs those points to see that the
load is gone.
ModelLatency is the time the model took as seen from the server (the request to the serving instance and
back); OverheadLatency is the rest of the request's time inside sagelab (authentication, routing, I/O).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import sqlalchemy as sa

from sagelab.storage import tables
from sagelab.storage.db import Database

NAMESPACE = "AWS/SageMaker"
#: Units of the samples `observe` takes where they are not Microseconds: ratios and counts.
_UNITS = {"ServerlessConcurrentExecutionsUtilization": "None", "ModelCacheHit": "None", "LoadedModelCount": "None"}


class InvocationMetrics:
    def __init__(self, db: Database, *, period: int = 60,
                 serving: Callable[[], Iterable[tuple[str, str]]] = tuple):
        self.db = db
        self.period = max(1, int(period))
        self.serving = serving
        #: (endpoint, variant) -> the last period it has a point for, so an idle period gets one zero only.
        self._covered: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, float, str], float] = defaultdict(float)
        self._samples: dict[tuple[str, str, float, str], list[float]] = defaultdict(list)

    def record(self, endpoint: str, variant: str, status: int, model_seconds: float, total_seconds: float,
               instances: int = 1) -> None:
        minute = float(int(time.time() // self.period) * self.period)
        key = (endpoint, variant, minute)
        with self._lock:
            self._counts[(*key, "Invocations")] += 1
            self._counts[(*key, "InvocationsPerInstance")] += 1 / max(1, instances)
            if 400 <= status < 500:
                self._counts[(*key, "Invocation4XXErrors")] += 1
            elif status >= 500:
                self._counts[(*key, "Invocation5XXErrors")] += 1
            if status < 400:
                self._samples[(*key, "ModelLatency")].append(model_seconds * 1e6)
                self._samples[(*key, "OverheadLatency")].append(max(0.0, total_seconds - model_seconds) * 1e6)

    def observe(self, endpoint: str, variant: str, name: str, value: float) -> None:
        """One sample of a per-variant metric other than the invocation ones (ModelSetupTime, ...)."""
        bucket = float(int(time.time() // self.period) * self.period)
        with self._lock:
            self._samples[(endpoint, variant, bucket, name)].append(value)

    def record_multi_model(self, endpoint: str, variant: str, visit: dict[str, Any]) -> None:
        """What a multi-model instance found for one request (see hosting/multi_model.CacheVisit):
        ModelCacheHit (1 or 0 per request: its Average is the hit rate), LoadedModelCount, and on a miss
        ModelLoadingWaitTime, ModelDownloadingTime, ModelLoadingTime and, when models were unloaded to make
        room, ModelUnloadingTime (microseconds)."""
        self.observe(endpoint, variant, "ModelCacheHit", 1.0 if visit.get("hit") else 0.0)
        self.observe(endpoint, variant, "LoadedModelCount", float(visit.get("loaded", 0)))
        if not visit.get("hit"):
            for name, field in _MULTI_MODEL_TIMES:
                self.observe(endpoint, variant, name, float(visit.get(field, 0.0)) * 1e6)
        if visit.get("unload_seconds"):
            self.observe(endpoint, variant, "ModelUnloadingTime", float(visit["unload_seconds"]) * 1e6)

    def flush(self) -> int:
        """Write what was gathered since the last flush; returns the number of points written."""
        now = float(int(time.time() // self.period) * self.period)
        with self._lock:
            counts, self._counts = self._counts, defaultdict(float)
            samples, self._samples = self._samples, defaultdict(list)
        for endpoint, variant, period, _ in counts:
            self._covered[(endpoint, variant)] = max(period, self._covered.get((endpoint, variant), period))
        serving = set(self.serving())
        idle = [pair for pair in serving if self._covered.get(pair, -1.0) < now]
        self._covered = {pair: period for pair, period in self._covered.items() if pair in serving}
        for pair in idle:
            self._covered[pair] = now
        resolution = 1 if self.period < 60 else 60
        rows: list[dict[str, Any]] = []
        for (endpoint, variant, minute, name), value in counts.items():
            rows.append(_row(endpoint, variant, minute, name, np.array([float(value)]), unit_sum=True))
        for endpoint, variant in idle:
            for name in ("Invocations", "InvocationsPerInstance"):
                rows.append(_row(endpoint, variant, now, name, np.array([0.0]), unit_sum=True))
        for (endpoint, variant, minute, name), values in samples.items():
            rows.append(_row(endpoint, variant, minute, name, np.asarray(values)))
        for row in rows:
            row["storage_resolution"] = resolution
        if rows:
            with self.db.write() as conn:
                conn.execute(tables.metric_points.insert(), rows)
        return len(rows)

    def query(self, endpoint: str, name: str, variant: str | None = None) -> list[dict[str, Any]]:
        t = tables.metric_points
        dims = {"EndpointName": endpoint, **({"VariantName": variant} if variant else {})}
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.namespace == NAMESPACE, t.c.metric_name == name)
                                .order_by(t.c.timestamp))
            return [dict(r._mapping) for r in rows if all(json.loads(r.dimensions).get(k) == v for k, v in dims.items())]


#: Multi-model timings taken on every cache miss: (metric, CacheVisit field in seconds).
_MULTI_MODEL_TIMES = (("ModelLoadingWaitTime", "wait_seconds"), ("ModelDownloadingTime", "download_seconds"),
                      ("ModelLoadingTime", "load_seconds"))


def _row(endpoint: str, variant: str, minute: float, name: str, values: np.ndarray, unit_sum: bool = False):
    dimensions = json.dumps({"EndpointName": endpoint, "VariantName": variant}, sort_keys=True)
    if unit_sum:
        total = float(values[0])
        each = 1.0 if total else 0.0
        return {"namespace": NAMESPACE, "metric_name": name, "dimensions": dimensions, "timestamp": minute,
                "sample_count": total, "sum": total, "minimum": each, "maximum": each,
                "p50": None, "p90": None, "p99": None, "unit": "None"}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"namespace": NAMESPACE, "metric_name": name, "dimensions": dimensions, "timestamp": minute,
            "sample_count": float(len(values)), "sum": float(values.sum()), "minimum": float(values.min()),
            "maximum": float(values.max()), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "unit": _UNITS.get(name, "Microseconds")}

