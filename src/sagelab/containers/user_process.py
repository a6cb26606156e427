"""A user's script as a child process of a job process: its environment, its log, its exit.

The script runs through `sagelab.containers.launcher` (so `/opt/ml/...` in its own code maps onto the job's
folder and it dies with the job process), with stdout going straight to the job log and stderr copied
there too while its last lines are kept for the FailureReason.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

import sagelab

#: Lines of the script's stderr kept for the FailureReason.
STDERR_TAIL_LINES = 12


@dataclasses.dataclass(frozen=True)
class Exit:
    code: int
    #: The last lines the script wrote to stderr.
    stderr_tail: str

    @property
    def how(self) -> str:
        return f"was killed by signal {-self.code}" if self.code < 0 else f"exited with code {self.code}"


def base_environment(extra: Mapping[str, str] = ()) -> dict[str, str]:
    """The job process's environment without the server's own settings, plus `extra`, with sagelab
    importable from any working folder (the launcher is part of it)."""
    # The server's own SAGELAB_* settings (root credentials among them) are not the script's business.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGELAB_")}
    env.update(extra)
    # The script runs in its own folder: relative import paths (PYTHONPATH=src) must not lose their way.
    import_paths = [str(Path(sagelab.__file__).resolve().parent.parent)]
    import_paths += [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(import_paths))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(root: Path, command: Sequence[str], *, cwd: Path, env: Mapping[str, str],
          python: str | None = None) -> subprocess.Popen:
    """Start `python <command>` (a script path, `-m module` or `-c code`, then its arguments) with `root`
    standing in for /opt/ml; stdout goes to this process's stdout (the job log)."""
    return subprocess.Popen([python or sys.executable, "-m", "sagelab.containers.launcher", str(root), *command],
                            cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=None, stderr=subprocess.PIPE)


def wait(process: subprocess.Popen, log: TextIO) -> Exit:
    """Copy the script's stderr into `log` until it exits; returns its exit and the last stderr lines."""
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    reader = threading.Thread(target=_tee, args=(process.stderr, tail, log), name="stderr-tee", daemon=True)
    reader.start()
    code = process.wait()
    reader.join()
    return Exit(code, "".join(tail).rstrip())


def run(root: Path, command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: TextIO,
        python: str | None = None) -> Exit:
    log.flush()
    return wait(start(root, command, cwd=cwd, env=env, python=python), log)


def _tee(stream, tail: collections.deque[str], log: TextIO) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        tail.append(line)
        log.write(line)
        log.flush()
    stream.close()
