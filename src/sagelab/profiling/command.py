"""`sagelab profile SOURCE [--target COL] [--output DEST]`: profile lake data or local files."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sagelab.lake.client import fetch, is_s3, open_lake, publish

DEFAULT_OUTPUT = "sagelab-profile"


def run_profile(source: str, *, target: str | None = None, output: str | None = None, file_format: str | None = None,
                header: bool = True, endpoint_url: str | None = None, home: str | None = None) -> list[str]:
    from sagelab.profiling import profile, write_outputs

    output = output or DEFAULT_OUTPUT
    needs_lake = is_s3(source) or is_s3(output)
    lake = open_lake(endpoint_url=endpoint_url, home=home) if needs_lake else None
    with tempfile.TemporaryDirectory(prefix="sagelab-profile-") as scratch:
        local = fetch(lake, source, Path(scratch) / "input") if lake else Path(source)
        result = profile(local, target=target, file_format=file_format, header=header)
        if lake is None or not is_s3(output):
            return [str(p) for p in write_outputs(result, Path(output), source=source)]
        written = write_outputs(result, Path(scratch) / "output", source=source)
        return publish(lake, written[0].parent, output)
