"""The serving fleet: the instance processes behind every endpoint, and routing requests to them.

Routing state is replaced, never mutated in place: a request reads one `Route` and its variants' instance
tuples, so deployments (threads) and requests (the event loop) never need a shared lock. An instance that
dies is dropped from its variant at once and replaced in the background; a request that was using it is
retried on another instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import random
import shutil
import socket
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.account import HomePaths
from sagelab.compute.engine import ComputeEngine, Task, TaskState, TaskStatus
from sagelab.errors import SagelabError
from sagelab.hosting import wire
from sagelab.hosting.serverless import ServerlessSpec, ServerlessState, is_serverless
from sagelab.settings import Settings

if TYPE_CHECKING:
    from sagelab.hosting.invocation_metrics import InvocationMetrics

INSTANCE_TARGET = "sagelab.hosting.instance:serve_instance"
READY_TIMEOUT = 120.0
MAX_ATTEMPTS = 4


class NoCapacity(SagelabError):
    code = "ServiceUnavailable"
    status = 503


class InstanceGone(Exception):
    pass


class Instance:
    def __init__(self, variant: str, socket_path: str, task_id: str, endpoint: str = ""):
        self.variant = variant
        self.socket_path = socket_path
        self.task_id = task_id
        self.endpoint = endpoint
        #: The serving process, once it answered (read from the socket's peer credentials).
        self.pid: int | None = None
        self.started_at = time.monotonic()
        self.alive = True
        #: Stopped on purpose (deleted, scaled in, replaced by an update): never to be replaced.
        self.retired = False
        self.inflight = 0
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def exchange(self, frame: bytes) -> tuple[dict[str, Any], bytes]:
        if not self.alive:
            raise InstanceGone(self.task_id)
        self.inflight += 1
        conn = None
        try:
            conn = self._idle.pop() if self._idle else await asyncio.open_unix_connection(self.socket_path)
            reader, writer = conn
            writer.write(frame)
            header, body = await wire.read_frame(reader)
        except (OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn[1].close()
            raise InstanceGone(str(exc)) from exc
        finally:
            self.inflight -= 1
        self._idle.append(conn)
        return header, body

    def close_connections(self) -> None:
        for _, writer in self._idle:
            with contextlib.suppress(Exception):
                writer.close()
        self._idle.clear()


@dataclasses.dataclass
class Variant:
    name: str
    model_name: str
    weight: float
    desired_count: int
    instances: tuple[Instance, ...] = ()
    #: Set for a serverless variant: it scales between zero instances and one, and admits MaxConcurrency.
    serverless: ServerlessState | None = None
    _cursor: itertools.count = dataclasses.field(default_factory=itertools.count)

    def pick(self) -> Instance | None:
        live = [i for i in self.instances if i.alive]
        if not live:
            return None
        return live[next(self._cursor) % len(live)]


@dataclasses.dataclass
class Route:
    endpoint: str
    variants: dict[str, Variant]
    #: The endpoint config's AsyncInferenceConfig: such an endpoint is invoked through its queue only.
    async_inference: dict[str, Any] | None = None

    def choose(self, target: str | None) -> Variant:
        if target:
            return self.variants[target]
        weighted = [v for v in self.variants.values() if v.weight > 0]
        if len(weighted) == 1:
            return weighted[0]
        return random.choices(weighted, weights=[v.weight for v in weighted])[0]


@dataclasses.dataclass(frozen=True)
class VariantSpec:
    name: str
    model_name: str
    weight: float
    instance_count: int
    serverless: ServerlessSpec | None = None


class Fleet:
    """`make_engine` builds the engine instance processes run on, on first use: serving has an engine of its
    own, so that instances never wait in the job queue."""

    def __init__(self, *, make_engine: Callable[[], ComputeEngine], home: HomePaths, settings: Settings,
                 invocation_metrics: InvocationMetrics | None = None,
                 on_ready: Callable[[Instance, float], None] | None = None):
        self.make_engine = make_engine
        self.invocation_metrics = invocation_metrics
        self._reaper: threading.Thread | None = None
        self._stop_reaping = threading.Event()
        #: (instance, seconds it took to load its model): told once per instance, when it is ready.
        self.on_ready = on_ready
        self.home = home
        self.settings = settings
        self.routes: dict[str, Route] = {}
        self._socket_dir = Path(tempfile.mkdtemp(prefix=f"sagelab-{os.getpid()}-"))
        self._lock = threading.Lock()
        self._closing = False
        self._engine: ComputeEngine | None = None

    @property
    def engine(self) -> ComputeEngine:
        if self._engine is None:
            self._engine = self.make_engine()
        return self._engine

    # --- deployment (runs on worker threads) ---------------------------------------------------------
    def deploy(self, endpoint: str, specs: Sequence[VariantSpec]) -> Route:
        """Start every instance of every variant and wait until all are ready; returns the new route
        without installing it (the caller switches traffic with `install`)."""
        variants = {s.name: Variant(s.name, s.model_name, s.weight, s.instance_count,
                                    serverless=ServerlessState(s.serverless) if s.serverless else None)
                    for s in specs}
        started: list[Instance] = []
        try:
            for spec in specs:
                memory = spec.serverless.memory_mb if spec.serverless else None
                instances = [self._start_instance(endpoint, spec.name, spec.model_name, memory)
                             for _ in range(spec.instance_count)]
                started.extend(instances)
                variants[spec.name].instances = tuple(instances)
            for instance in started:
                self._wait_ready(instance)
        except BaseException:
            self.retire(started)
            raise
        return Route(endpoint, variants)

    def install(self, route: Route) -> Route | None:
        with self._lock:
            previous = self.routes.get(route.endpoint)
            self.routes[route.endpoint] = route
        if any(v.serverless is not None for v in route.variants.values()):
            self._start_reaper()
        return previous

    def remove(self, endpoint: str) -> Route | None:
        with self._lock:
            return self.routes.pop(endpoint, None)

    def retire(self, instances: Sequence[Instance], drain_seconds: float = 0.0) -> None:
        """Stop instances; with `drain_seconds`, first let requests already on them finish."""
        deadline = time.monotonic() + drain_seconds
        for instance in instances:
            while instance.inflight and time.monotonic() < deadline:
                time.sleep(0.01)
            instance.alive = False
            instance.retired = True
            with contextlib.suppress(KeyError):
                self.engine.stop(instance.task_id)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(instance.socket_path)

    def set_weights(self, endpoint: str, weights: dict[str, float]) -> None:
        route = self.routes.get(endpoint)
        if route is None:
            return
        new = {name: dataclasses.replace(v, weight=weights.get(name, v.weight)) for name, v in route.variants.items()}
        self.install(dataclasses.replace(route, variants=new))

    def scale(self, endpoint: str, variant_name: str, count: int) -> None:
        route = self.routes.get(endpoint)
        if route is None:
            return
        variant = route.variants[variant_name]
        variant.desired_count = count
        live = [i for i in variant.instances if i.alive]
        if count > len(live):
            fresh = [self._start_instance(endpoint, variant_name, variant.model_name) for _ in range(count - len(live))]
            for instance in fresh:
                self._wait_ready(instance)
            variant.instances = tuple(live + fresh)
        elif count < len(live):
            keep, drop = live[:count], live[count:]
            variant.instances = tuple(keep)
            self.retire(drop, drain_seconds=10)

    def _start_instance(self, endpoint: str, variant: str, model_name: str,
                        memory_limit_mb: int | None = None) -> Instance:
        instance_id = uuid.uuid4().hex[:12]
        socket_path = str(self._socket_dir / f"{instance_id}.sock")
        args = {"settings": self.settings.to_dict(), "model_name": model_name, "socket_path": socket_path,
                "work_dir": str(self.home.work / "Endpoints" / endpoint / instance_id)}
        if memory_limit_mb:
            args["memory_limit_mb"] = memory_limit_mb
        task = Task(id=f"endpoint/{endpoint}/{variant}/{instance_id}", target=INSTANCE_TARGET, args=args,
                    log_path=self.home.logs / "Endpoints" / endpoint / f"{variant}-{instance_id}.log")
        instance = Instance(variant, socket_path, task.id, endpoint)
        self.engine.submit(task, lambda t, s, e=endpoint, i=instance: self._on_exit(e, i, s))
        return instance

    def _wait_ready(self, instance: Instance) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            status = self.engine.status(instance.task_id)
            if status.state.finished:
                raise ModelLoadFailed(status.error or f"the serving instance ended ({status.state}) while loading")
            if os.path.exists(instance.socket_path):
                with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(instance.socket_path)
                    instance.pid = _peer_pid(probe)
                    if self.on_ready is not None:
                        self.on_ready(instance, time.monotonic() - instance.started_at)
                    return
            time.sleep(0.02)
        raise ModelLoadFailed(f"the serving instance was not ready within {READY_TIMEOUT:.0f} s")

    def _on_exit(self, endpoint: str, instance: Instance, status: TaskStatus) -> None:
        """An instance process ended. If it was meant to be serving, replace it."""
        instance.alive = False
        if instance.retired or self._closing or status.state is TaskState.STOPPED:
            return
        threading.Thread(target=self._replace, args=(endpoint, instance), name="replace-instance",
                         daemon=True).start()

    def _replace(self, endpoint: str, dead: Instance) -> None:
        route = self.routes.get(endpoint)
        if route is None or dead.variant not in route.variants:
            return
        variant = route.variants[dead.variant]
        if dead not in variant.instances:
            return
        if variant.serverless is not None:  # the next request cold-starts a fresh one
            variant.instances = tuple(i for i in variant.instances if i is not dead)
            return
        fresh = self._start_instance(endpoint, variant.name, variant.model_name)
        try:
            self._wait_ready(fresh)
        except ModelLoadFailed:
            self.retire([fresh])
            return
        variant.instances = tuple(i for i in variant.instances if i is not dead and i.alive) + (fresh,)

    def serving(self) -> list[tuple[str, str]]:
        """(endpoint, variant) for every variant that routes requests now."""
        return [(endpoint, name) for endpoint, route in list(self.routes.items()) for name in route.variants]

    # --- serving (runs on the event loop) --------------------------------------------------------------
    async def invoke(self, route: Route, target_variant: str | None, header: dict[str, Any],
                     body: bytes) -> tuple[str, dict[str, Any], bytes, float]:
        """-> (variant name, response header, response body, seconds spent with the model)."""
        variant = route.choose(target_variant)
        if variant.serverless is not None:
            return await self._invoke_serverless(route.endpoint, variant, header, body)
        answer = await self._exchange(variant, wire.encode(header, body), when_none=lambda: asyncio.sleep(0.05))
        if answer is None:
            raise NoCapacity(f"No healthy instance of variant {variant.name} could serve the request; instances "
                             "are being replaced. Retry the request.")
        return (variant.name, *answer)

    @staticmethod
    async def _exchange(variant: Variant, frame: bytes, when_none: Callable[[], Awaitable[None]]
                        ) -> tuple[dict[str, Any], bytes, float] | None:
        """Send one request to an instance of the variant, trying another when one is gone; `when_none` is
        awaited when it has no live instance. -> (response header, body, seconds with the model), or None."""
        for _attempt in range(MAX_ATTEMPTS):
            instance = variant.pick()
            if instance is None:
                await when_none()
                continue
            started = time.perf_counter()
            try:
                response_header, payload = await instance.exchange(frame)
            except InstanceGone:
                instance.alive = False
                continue
            return response_header, payload, time.perf_counter() - started
        return None

    # --- serverless variants: cold start on demand, scale to zero when idle ------------------------------
    async def _invoke_serverless(self, endpoint: str, variant: Variant, header: dict[str, Any],
                                 body: bytes) -> tuple[str, dict[str, Any], bytes, float]:
        state = variant.serverless
        assert state is not None
        with state.admit(endpoint, variant.name) as utilization:
            self._observe(endpoint, variant.name, "ServerlessConcurrentExecutionsUtilization", utilization)
            answer = await self._exchange(variant, wire.encode(header, body),
                                          when_none=lambda: self._cold_start(endpoint, variant))
        if answer is None:
            raise NoCapacity(f"No instance of serverless variant {variant.name} could serve the request. Retry it.")
        return (variant.name, *answer)

    async def _cold_start(self, endpoint: str, variant: Variant) -> None:
        state = variant.serverless
        assert state is not None
        async with state.starting:
            if variant.pick() is not None:  # another request's cold start got there first
                return
            try:  # its ModelSetupTime is published by on_ready, as for every instance
                instance = await asyncio.to_thread(self._start_ready, endpoint, variant)
            except ModelLoadFailed as exc:
                raise NoCapacity(f"The serverless variant {variant.name} could not start an instance: {exc}") from exc
            variant.instances = (instance,)

    def _start_ready(self, endpoint: str, variant: Variant) -> Instance:
        assert variant.serverless is not None
        instance = self._start_instance(endpoint, variant.name, variant.model_name, variant.serverless.spec.memory_mb)
        try:
            self._wait_ready(instance)
        except BaseException:
            self.retire([instance])
            raise
        return instance

    def _observe(self, endpoint: str, variant: str, metric: str, value: float) -> None:
        if self.invocation_metrics is not None:
            self.invocation_metrics.observe(endpoint, variant, metric, value)

    def _start_reaper(self) -> None:
        with self._lock:
            if self._reaper is None and not self._closing:
                self._reaper = threading.Thread(target=self._reap_idle, name="serverless-reaper", daemon=True)
                self._reaper.start()

    def _reap_idle(self) -> None:
        """Stop the instance of every serverless variant that has had no request for the idle period."""
        idle = self.settings.serverless_idle_seconds
        while not self._stop_reaping.wait(min(1.0, max(0.05, idle / 4))):
            now = time.monotonic()
            for route in list(self.routes.values()):
                for variant in route.variants.values():
                    state = variant.serverless
                    if state is None or state.keeps_warm or not variant.instances or state.idle_for(now) < idle:
                        continue
                    stopping, variant.instances = variant.instances, ()
                    # A request that picked the instance just before finishes; one after it cold-starts.
                    self.retire(stopping, drain_seconds=5)

    def close(self) -> None:
        self._closing = True
        self._stop_reaping.set()
        if self._engine is not None:
            self._engine.close()
        shutil.rmtree(self._socket_dir, ignore_errors=True)


class ModelLoadFailed(Exception):
    pass


def _peer_pid(conn: socket.socket) -> int | None:
    """The pid of the process at the other end of a Unix socket (Linux's SO_PEERCRED), if the OS says."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    pid, _, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    return pid or None


def variant_specs(config_doc: dict[str, Any]) -> list[VariantSpec]:
    return [_variant_spec(v) for v in config_doc["ProductionVariants"]]


def _variant_spec(v: dict[str, Any]) -> VariantSpec:
    weight = float(v.get("InitialVariantWeight", 1.0))
    if is_serverless(v):
        spec = ServerlessSpec.of(v["ServerlessConfig"])
        # Provisioned concurrency keeps one instance warm from the start; otherwise there is none until a request.
        return VariantSpec(v["VariantName"], v["ModelName"], weight, 1 if spec.provisioned_concurrency else 0, spec)
    return VariantSpec(v["VariantName"], v["ModelName"], weight, int(v.get("InitialInstanceCount") or 1))

