"""Per-variant invocation metrics, as SageMaker publishes them to CloudWatch (namespace AWS/SageMaker).

Invocations, InvocationsPerInstance (each invocation counts 1 / the variant's instance count at the time),
Invocation4XXErrors, Invocation5XXErrors, ModelLatency and OverheadLatency (microseconds,
SageMaker's unit), and for multi-model endpoints the model cache's metrics, are aggregated per minute in memory and written to the metadata store by `flush`.
ModelLatency is the time the model took as seen from the server (the request to the serving instance and
back); OverheadLatency is the rest of the request's time inside sagelab (authentication, routing, I/O).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import numpy as np
import sqlalchemy as sa

from sagelab.storage import tables
from sagelab.storage.db import Database

NAMESPACE = "AWS/SageMaker"


class InvocationMetrics:
    def __init__(self, db: Database):
        self.db = db
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, float, str], float] = defaultdict(float)
        self._samples: dict[tuple[str, str, float, str], list[float]] = defaultdict(list)

    def record(self, endpoint: str, variant: str, status: int, model_seconds: float, total_seconds: float,
               instances: int = 1) -> None:
        minute = float(int(time.time() // 60) * 60)
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

    def record_multi_model(self, endpoint: str, variant: str, visit: dict[str, Any]) -> None:
        """What a multi-model instance found for one request (see hosting/multi_model.CacheVisit):
        ModelCacheHit (1 or 0 per request: its Average is the hit rate), LoadedModelCount, and on a miss
        ModelLoadingWaitTime, ModelDownloadingTime, ModelLoadingTime and, when models were unloaded to make
        room, ModelUnloadingTime (microseconds)."""
        minute = float(int(time.time() // 60) * 60)
        key = (endpoint, variant, minute)
        with self._lock:
            self._samples[(*key, "ModelCacheHit")].append(1.0 if visit.get("hit") else 0.0)
            self._samples[(*key, "LoadedModelCount")].append(float(visit.get("loaded", 0)))
            if not visit.get("hit"):
                for name, field in _MULTI_MODEL_TIMES:
                    self._samples[(*key, name)].append(float(visit.get(field, 0.0)) * 1e6)
            if visit.get("unload_seconds"):
                self._samples[(*key, "ModelUnloadingTime")].append(float(visit["unload_seconds"]) * 1e6)

    def flush(self) -> int:
        """Write what was gathered since the last flush; returns the number of points written."""
        with self._lock:
            counts, self._counts = self._counts, defaultdict(float)
            samples, self._samples = self._samples, defaultdict(list)
        rows: list[dict[str, Any]] = []
        for (endpoint, variant, minute, name), value in counts.items():
            rows.append(_row(endpoint, variant, minute, name, np.array([float(value)]), unit_sum=True))
        for (endpoint, variant, minute, name), values in samples.items():
            rows.append(_row(endpoint, variant, minute, name, np.asarray(values)))
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
#: Sampled metrics that are counts, not microseconds.
_COUNT_SAMPLES = frozenset({"ModelCacheHit", "LoadedModelCount"})


def _row(endpoint: str, variant: str, minute: float, name: str, values: np.ndarray, unit_sum: bool = False):
    dimensions = json.dumps({"EndpointName": endpoint, "VariantName": variant}, sort_keys=True)
    if unit_sum:
        total = float(values[0])
        return {"namespace": NAMESPACE, "metric_name": name, "dimensions": dimensions, "timestamp": minute,
                "sample_count": total, "sum": total, "minimum": 1.0, "maximum": 1.0,
                "p50": None, "p90": None, "p99": None, "unit": "None"}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"namespace": NAMESPACE, "metric_name": name, "dimensions": dimensions, "timestamp": minute,
            "sample_count": float(len(values)), "sum": float(values.sum()), "minimum": float(values.min()),
            "maximum": float(values.max()), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "unit": "None" if name in _COUNT_SAMPLES else "Microseconds"}

