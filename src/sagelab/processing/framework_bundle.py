"""The SageMaker SDK's FrameworkProcessor entrypoint (`runproc.sh`), done without a shell.

FrameworkProcessor (and SKLearnProcessor/PyTorchProcessor given a source_dir) uploads the user's code as
`sourcedir.tar.gz` into the `code` input and runs a generated `runproc.sh` that unpacks it there, installs
its requirements.txt and runs `<command> <script> "$@"`. sagelab reads that last line, unpacks the bundle
safely, installs the requirements into an environment of their own (never into sagelab's interpreter) and
runs the script with Python. Any other shell script is refused: sagelab runs Python scripts only.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TextIO

from sagelab.containers.archives import ArchiveError, unpack
from sagelab.containers.requirements import RequirementsError, python_for

_RUN_LINE = re.compile(r'^\s*(?P<command>(?:\S*/)?python[0-9.]*(?:\s+-[uBEsO]+)*)\s+(?P<script>\S+)\s+"\$@"\s*$')
_CODE_DIR = re.compile(r"^\s*cd\s+(?P<folder>/opt/ml/processing/\S+?)/?\s*$")


class BundleError(Exception):
    """The entrypoint is not a runproc.sh sagelab can follow, or its bundle cannot be used."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    #: The container folder the bundle is unpacked into (the script's working folder).
    code_dir: str
    script: str


def read_runproc(text: str, name: str) -> Bundle:
    code_dir = next((m["folder"] for m in map(_CODE_DIR.match, text.splitlines()) if m), None)
    run = next((m for m in map(_RUN_LINE.match, reversed(text.splitlines())) if m), None)
    if code_dir is None or run is None or "sourcedir.tar.gz" not in text:
        raise BundleError(f"the entrypoint {name} is not the SageMaker SDK's FrameworkProcessor runproc.sh; "
                          "sagelab runs Python scripts only (use python3 <script> as the ContainerEntrypoint).")
    return Bundle(code_dir=code_dir, script=run["script"])


def prepare(code_dir: Path, cache: Path, log: TextIO) -> str | None:
    """Unpack sourcedir.tar.gz in `code_dir` and install its requirements; returns the interpreter to use
    (None: sagelab's own)."""
    archive = code_dir / "sourcedir.tar.gz"
    if not archive.is_file():
        raise BundleError(f"the code input has no sourcedir.tar.gz ({code_dir.name}/ holds: "
                          f"{', '.join(sorted(p.name for p in code_dir.glob('*'))) or 'nothing'}).")
    try:
        unpack(archive, code_dir, "the code input's sourcedir.tar.gz", what="source bundle")
    except ArchiveError as exc:
        raise BundleError(str(exc)) from exc
    requirements = code_dir / "requirements.txt"
    if not requirements.is_file():
        return None
    try:
        return python_for(requirements, cache, log)
    except RequirementsError as exc:
        raise BundleError(f"InstallRequirementsError: {exc}") from exc
