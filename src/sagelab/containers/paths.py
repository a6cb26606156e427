"""The container's `/opt/ml/...` paths, mapped onto a job's own folder.

SageMaker runs a processing script in a container where inputs appear under `/opt/ml/processing/...`.
sagelab runs it as a plain process, so every job gets a folder standing in for `/opt/ml`; paths in the
entrypoint, the arguments and the Environment values are rewritten into it, environment variables name it, and, for scripts that
spell the paths in their own code, `install()` makes Python's file functions translate them too.

`install()` covers what goes through Python's `open`/`os` functions (pandas, numpy, csv, json, pathlib,
glob, shutil). Native code that opens a path itself (e.g. pyarrow reading Parquet by path) does not see the
mapping: such scripts should take their paths from the arguments or `SAGELAB_INPUT_<NAME>` variables.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CONTAINER_PREFIX = "/opt/ml"
_IN_ARGUMENT = re.compile(r"(^|[=:])/opt/ml(?=/|$)")


def host_path(root: Path, container_path: str) -> Path:
    """`/opt/ml/processing/input` -> `<root>/processing/input`."""
    relative = container_path[len(CONTAINER_PREFIX):].lstrip("/")
    return root / relative if relative else root


def rewrite_argument(root: Path, argument: str) -> str:
    """Rewrite container paths in an argument or environment value: alone, after `--name=`, or in a
    `:`-separated list such as PYTHONPATH."""
    return _IN_ARGUMENT.sub(lambda m: m.group(1) + str(root), argument)


def env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


# --- translation inside the script's process ------------------------------------------------------------
_ONE_PATH = ("stat", "lstat", "listdir", "scandir", "mkdir", "rmdir", "remove", "unlink", "chdir", "access",
             "utime", "chmod", "readlink", "truncate", "open")
_TWO_PATHS = ("rename", "replace", "link", "symlink")


def install(root: str) -> None:
    """Make this process's Python file functions read and write `/opt/ml/...` inside `root`."""
    import builtins
    import io

    prefix, prefix_bytes = CONTAINER_PREFIX, CONTAINER_PREFIX.encode()
    root_bytes = os.fsencode(root)

    def translate(path):
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if isinstance(path, str) and (path == prefix or path.startswith(prefix + "/")):
            return root + path[len(prefix):]
        if isinstance(path, bytes) and (path == prefix_bytes or path.startswith(prefix_bytes + b"/")):
            return root_bytes + path[len(prefix_bytes):]
        return path

    def one_path(function):
        def wrapper(path=None, *args, **kwargs):
            if path is None and function.__name__ in ("listdir", "scandir"):
                return function(*args, **kwargs)
            return function(translate(path), *args, **kwargs)

        wrapper.__name__ = wrapper.__qualname__ = function.__name__
        wrapper.__doc__ = function.__doc__
        return wrapper

    def two_paths(function):
        def wrapper(source, target, *args, **kwargs):
            return function(translate(source), translate(target), *args, **kwargs)

        wrapper.__name__ = wrapper.__qualname__ = function.__name__
        wrapper.__doc__ = function.__doc__
        return wrapper

    for name in _ONE_PATH:
        if hasattr(os, name):
            setattr(os, name, one_path(getattr(os, name)))
    for name in _TWO_PATHS:
        if hasattr(os, name):
            setattr(os, name, two_paths(getattr(os, name)))
    python_open = io.open

    def open_translated(file, *args, **kwargs):
        return python_open(translate(file), *args, **kwargs)

    builtins.open = io.open = open_translated
