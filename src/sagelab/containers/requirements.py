"""A user's `requirements.txt`, installed into a Python environment of its own, reused across jobs.

SageMaker's framework containers `pip install -r requirements.txt` before the script runs. Here that must
not change the interpreter sagelab itself runs in, so each distinct file (by content hash, with the Python
version) gets a virtual environment under the home's cache. The environment sees the job interpreter's own
packages after its own installs, so only what is missing or pinned differently is installed, and a second
job with the same file starts at once. Builds of one file are serialised with a file lock; an environment
is only used once its build completed.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import TextIO

#: Lines of pip's output kept for the FailureReason.
PIP_TAIL_LINES = 10
_COMPLETE = ".sagelab-complete"


class RequirementsError(Exception):
    """pip could not install the requirements; the message ends with pip's last lines."""


def environment_key(requirements: Path) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"{sys.version_info[0]}.{sys.version_info[1]}:{sys.prefix}".encode())
    return digest.hexdigest()[:20]


def python_for(requirements: Path, cache: Path, log: TextIO) -> str:
    """The interpreter of the environment in which `requirements` are installed, built when it is new."""
    cache.mkdir(parents=True, exist_ok=True)
    key = environment_key(requirements)
    folder = cache / key
    python = folder / "bin" / "python"
    if (folder / _COMPLETE).exists():
        log.write(f"sagelab: requirements.txt already installed (environment {key}, reused)\n")
        return str(python)
    with _locked(cache / f"{key}.lock"):
        if not (folder / _COMPLETE).exists():
            shutil.rmtree(folder, ignore_errors=True)
            _build(folder, requirements, log)
            (folder / _COMPLETE).touch()
    return str(python)


@contextlib.contextmanager
def _locked(path: Path):
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(folder: Path, requirements: Path, log: TextIO) -> None:
    log.write(f"sagelab: installing {requirements.name} into a new environment ({folder.name})\n")
    log.flush()
    # No pip of its own: the job interpreter's pip (seen through the .pth below) installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   stdout=subprocess.DEVNULL)
    venv_site = next((folder / "lib").glob("python*/site-packages"))
    # `--system-site-packages` would expose the base interpreter's packages, not those of the (virtual)
    # environment the job runs in; a .pth appends the job interpreter's own after the new environment's.
    (venv_site / "_sagelab_job_packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    process = subprocess.Popen([str(folder / "bin" / "python"), "-m", "pip", "install", "--no-input",
                                "--disable-pip-version-check", "-r", requirements.name],
                               cwd=requirements.parent, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    tail: collections.deque[str] = collections.deque(maxlen=PIP_TAIL_LINES)
    for raw in iter(process.stdout.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        tail.append(line)
        log.write(line)
    log.flush()
    if process.wait() != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RequirementsError(f"pip could not install {requirements.name} (exit code {process.returncode}). "
                                f"Last lines of its output:\n{''.join(tail).rstrip()}")
