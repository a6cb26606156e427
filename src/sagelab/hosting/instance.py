"""One serving instance of a production variant: a process that loads the model and answers frames.

It runs as a task on the serving engine. The Unix socket is bound only once the model is loaded, so a
successful connection means the instance is ready; a model that cannot be loaded ends the task with the
reason, which becomes the endpoint's FailureReason.
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
from sagelab.hosting import wire


def serve_instance(log: TextIO, *, settings: dict[str, Any], model_name: str, socket_path: str,
                   work_dir: str, memory_limit_mb: int | None = None) -> None:
    from sagelab.hosting.artifacts import load_predictor
    from sagelab.hosting.models import StoredModels
    from sagelab.iam.role_access import RoleAccess
    from sagelab.process_parts import attach

    parts = attach(settings)
    model = StoredModels(parts.resources, parts.account).get(model_name)
    # An endpoint's instances act as the model's execution role, when that is one of this server's roles.
    role = RoleAccess.for_role(parts.resources, parts.account, model.doc.get("ExecutionRoleArn"))
    predictor = load_predictor(parts.blobs, parts.algorithms, model.doc, Path(work_dir), threads=1,
                               cache_dir=parts.home.cache, role=role)
    parts.close()
    if memory_limit_mb:
        log.write(f"sagelab: {_check_memory(memory_limit_mb):.0f} MB in use at most, of MemorySizeInMB "
                  f"{memory_limit_mb}\n")
    log.write(f"sagelab: model {model_name} loaded; serving on {socket_path}\n")
    log.flush()
    try:
        uvloop.run(_serve(predictor, socket_path))
    finally:
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


async def _serve(predictor: Predictor, socket_path: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    header, body = await wire.read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                writer.write(_answer(predictor, header, body))
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


def _answer(predictor: Predictor, header: dict[str, Any], body: bytes) -> bytes:
    started = time.perf_counter()
    try:
        accept = header.get("accept") or predictor.default_accept
        payload, content_type = predictor.invoke(body, header.get("content_type") or "", accept)
        status = 200
    except InferenceError as exc:
        status, payload, content_type = exc.status, exc.message.encode(), "text/plain"
    except Exception as exc:  # noqa: BLE001 - a model bug is the model's 500, the instance keeps serving
        status, payload, content_type = 500, f"{type(exc).__name__}: {exc}".encode(), "text/plain"
    return wire.encode({"status": status, "content_type": content_type,
                        "model_seconds": time.perf_counter() - started}, payload)
