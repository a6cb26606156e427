"""One serving instance of a production variant: a process that loads the model and answers frames.

It runs as a task on the serving engine. The Unix socket is bound only once the model is loaded, so a
successful connection means the instance is ready; a model that cannot be loaded ends the task with the
reason, which becomes the endpoint's FailureReason. A multi-model instance is ready at once: its models
are loaded by the requests that name them (see `multi_model`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any, TextIO

import uvloop

from sagelab.algorithms.base import InferenceError, Predictor
from sagelab.errors import InvocationValidationError
from sagelab.hosting import wire
from sagelab.hosting.artifacts import (
    ModelLoadError,
    containers_of,
    is_multi_model,
    load_direct,
    load_predictor,
)
from sagelab.hosting.multi_model import MultiModelHost
from sagelab.hosting.pipeline import DirectContainers, is_direct


def serve_instance(log: TextIO, *, settings: dict[str, Any], model_name: str, socket_path: str,
                   work_dir: str, memory_limit_mb: int | None = None) -> None:
    from sagelab.hosting.models import StoredModels
    from sagelab.iam.role_access import RoleAccess
    from sagelab.process_parts import attach

    parts = attach(settings)
    model = StoredModels(parts.resources, parts.account).get(model_name)
    # An endpoint's instances act as the model's execution role, when that is one of this server's roles.
    role = RoleAccess.for_role(parts.resources, parts.account, model.doc.get("ExecutionRoleArn"))
    containers = containers_of(model.doc)
    host: Predictor | MultiModelHost | DirectContainers
    if len(containers) == 1 and is_multi_model(containers[0]):
        # Models are loaded while serving, so the parts (and the role's policies) stay at hand.
        host = MultiModelHost(blobs=parts.blobs, registry=parts.algorithms, container=containers[0],
                              work_dir=Path(work_dir), cache_dir=parts.home.cache, role=role,
                              budget_bytes=int(parts.settings.multi_model_memory_mb * 1024 * 1024),
                              max_models=parts.settings.multi_model_max_loaded)
    elif is_direct(model.doc):
        host = load_direct(parts.blobs, parts.algorithms, model.doc, Path(work_dir), cache_dir=parts.home.cache,
                           role=role)
        parts.close()
    else:
        host = load_predictor(parts.blobs, parts.algorithms, model.doc, Path(work_dir), threads=1,
                              cache_dir=parts.home.cache, role=role)
        parts.close()
    if memory_limit_mb:
        log.write(f"sagelab: {_check_memory(memory_limit_mb):.0f} MB in use at most, of MemorySizeInMB "
                  f"{memory_limit_mb}\n")
    log.write(f"sagelab: model {model_name} loaded; serving on {socket_path}\n")
    log.flush()
    try:
        uvloop.run(_serve(host, socket_path))
    finally:
        parts.close()
        shutil.rmtree(work_dir, ignore_errors=True)


def _check_memory(limit_mb: int) -> float:
    """A serverless variant's MemorySizeInMB: the loaded model must fit (ru_maxrss is in KiB on Linux);
    -> the peak in MB."""
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if peak_mb > limit_mb:
        raise MemoryError(f"the model needs {peak_mb:.0f} MB once loaded, more than the variant's "
                          f"ServerlessConfig.MemorySizeInMB ({limit_mb} MB)")
    return peak_mb


async def _serve(host: Any, socket_path: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    header, body = await wire.read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                writer.write(_answer(host, header, body))
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    tmp_path = socket_path + ".binding"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp_path)
    server = await asyncio.start_unix_server(handle, path=tmp_path)
    os.replace(tmp_path, socket_path)  # appear only when ready
    async with server:
        await server.serve_forever()


def _answer(host: Any, header: dict[str, Any], body: bytes) -> bytes:
    """One request. A multi-model host first finds (or loads) the TargetModel; what it found goes back in
    the header as `multi_model`; a Direct-mode model runs only the TargetContainerHostname container. A
    request the endpoint refuses (no such TargetModel or container, either on an endpoint that has none) goes
    back as `validation_error`, which the server answers as sagemaker-runtime's
    ValidationError rather than the model's error."""
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    target = header.get("target_model") or None
    visit = None
    try:
        if isinstance(host, MultiModelHost):
            predictor, visit = host.predictor_for(target)
        elif target:
            raise InvocationValidationError(f"TargetModel {target!r} was given, but this endpoint is not a "
                                            "multi-model endpoint: its model's container has Mode SingleModel. "
                                            "Leave TargetModel out.")
        elif isinstance(host, DirectContainers):
            predictor = host.stage(header.get("target_container"))
        elif header.get("target_container"):
            raise InvocationValidationError(f"TargetContainerHostname {header['target_container']!r} was given, "
                                            "but this endpoint's model does not run its containers in Direct mode "
                                            "(InferenceExecutionConfig). Leave TargetContainerHostname out.")
        else:
            predictor = host
        accept = header.get("accept") or predictor.default_accept
        payload, content_type = predictor.invoke(body, header.get("content_type") or "", accept)
        status = 200
    except InvocationValidationError as exc:
        status, payload, content_type = 400, exc.message.encode(), "text/plain"
        extra["validation_error"] = True
    except InferenceError as exc:
        status, payload, content_type = exc.status, exc.message.encode(), "text/plain"
    except ModelLoadError as exc:
        status, payload, content_type = 500, str(exc).encode(), "text/plain"
    except Exception as exc:  # noqa: BLE001 - a model bug is the model's 500, the instance keeps serving
        status, payload, content_type = 500, f"{type(exc).__name__}: {exc}".encode(), "text/plain"
    if visit is not None:  # the model was found or loaded, whatever it answered
        host.after_invoke(target, visit)
        extra["multi_model"] = visit.to_header()
    return wire.encode({"status": status, "content_type": content_type,
                        "model_seconds": time.perf_counter() - started, **extra}, payload)
