"""Serverless production variants: no instances until a request comes, at most MaxConcurrency at once.

A serverless variant is deployed with no serving instance (or one kept warm when ProvisionedConcurrency is
set). The first request starts one, a cold start whose duration is published as ModelSetupTime; later
requests reuse it; once no request has come for `serverless_idle_seconds` the fleet stops it again (scale
to zero). Requests beyond MaxConcurrency are refused with ThrottlingException, as AWS does.

MemorySizeInMB bounds the instance process's memory as far as the local engine can: the instance checks its
peak resident set after loading the model and refuses to serve (the cold start fails with the reason) when
the model does not fit. The local engine has no cgroups, so this is a check at load, not a kernel limit on
every later allocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

from sagelab.errors import Throttling, ValidationError

MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_CONCURRENCY = 200


@dataclasses.dataclass(frozen=True)
class ServerlessSpec:
    memory_mb: int
    max_concurrency: int
    provisioned_concurrency: int | None = None

    @classmethod
    def of(cls, config: dict[str, Any]) -> ServerlessSpec:
        """From a ProductionVariantServerlessConfig that `check_variant` accepted."""
        provisioned = config.get("ProvisionedConcurrency")
        return cls(int(config["MemorySizeInMB"]), int(config["MaxConcurrency"]),
                   int(provisioned) if provisioned is not None else None)

    def summary(self) -> dict[str, int]:
        """As DescribeEndpoint's CurrentServerlessConfig / DesiredServerlessConfig spell it."""
        out = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned_concurrency is not None:
            out["ProvisionedConcurrency"] = self.provisioned_concurrency
        return out


def is_serverless(variant: dict[str, Any]) -> bool:
    return variant.get("ServerlessConfig") is not None


def check_variant(variant: dict[str, Any], where: str) -> None:
    """A production variant is either instance-based or serverless, never both, never neither."""
    config = variant.get("ServerlessConfig")
    instance_fields = [f for f in ("InstanceType", "InitialInstanceCount") if variant.get(f) is not None]
    if config is None:
        if not variant.get("InitialInstanceCount"):
            raise ValidationError(f"{where}: specify either InstanceType and InitialInstanceCount (>= 1) for an "
                                  "instance-based variant, or ServerlessConfig for a serverless one; neither came.")
        return
    if instance_fields:
        raise ValidationError(f"{where}: ServerlessConfig cannot be combined with {' and '.join(instance_fields)}; "
                              "a serverless variant has no instances of its own. Specify one or the other.")
    memory = config.get("MemorySizeInMB")
    if memory not in MEMORY_SIZES:
        raise ValidationError(f"{where}.ServerlessConfig.MemorySizeInMB must be one of "
                              f"{', '.join(map(str, MEMORY_SIZES))}, got {memory!r}.")
    concurrency = config.get("MaxConcurrency")
    if not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValidationError(f"{where}.ServerlessConfig.MaxConcurrency must be an integer from 1 to "
                              f"{MAX_CONCURRENCY}, got {concurrency!r}.")
    provisioned = config.get("ProvisionedConcurrency")
    if provisioned is not None and (not isinstance(provisioned, int) or not 1 <= provisioned <= concurrency):
        raise ValidationError(f"{where}.ServerlessConfig.ProvisionedConcurrency must be an integer from 1 to "
                              f"MaxConcurrency ({concurrency}), got {provisioned!r}.")


class ServerlessState:
    """What the fleet tracks for one serverless variant. Touched on the event loop only, except `idle_for`,
    which the idle reaper reads from its thread (a stale read only delays or repeats a check)."""

    def __init__(self, spec: ServerlessSpec):
        self.spec = spec
        self.inflight = 0
        self.last_used = time.monotonic()
        self._starting: asyncio.Lock | None = None

    @property
    def keeps_warm(self) -> bool:
        return self.spec.provisioned_concurrency is not None

    @property
    def starting(self) -> asyncio.Lock:
        """Held during a cold start, so that concurrent first requests share one instance start."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        return self._starting

    @contextlib.contextmanager
    def admit(self, endpoint: str, variant: str) -> Iterator[float]:
        """Count a request in, or refuse it past MaxConcurrency; yields the utilization it brings."""
        if self.inflight >= self.spec.max_concurrency:
            raise Throttling(f"Rate exceeded: variant {variant} of serverless endpoint {endpoint} is already "
                             f"serving {self.inflight} requests, its ServerlessConfig.MaxConcurrency "
                             f"({self.spec.max_concurrency}). Retry the request with backoff.")
        self.inflight += 1
        try:
            yield self.inflight / self.spec.max_concurrency
        finally:
            self.inflight -= 1
            self.last_used = time.monotonic()

    def idle_for(self, now: float) -> float:
        return 0.0 if self.inflight else now - self.last_used
