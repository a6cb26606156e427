"""`sagelab profile SOURCE [--target COL] [--output DEST]`: profile lake data or local files."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sagelab.lake.client import fetch, is_s3, open_lake, publish

DEFAULT_OUTPUT = "sagelab-profile"


def run_profile(source: str, *, target: str | None = None, output: str | None = None, file_format: str | None = None,
                header: bool = True, endpoint_url: str | None = None, home: str | None = None) -> list[str]:
    from sagelab.profiling import profile_to_folder

    output = output or DEFAULT_OUTPUT
    needs_lake = is_s3(source) or is_s3(output)
    lake = open_lake(endpoint_url=endpoint_url, home=home) if needs_lake else None
    with tempfile.TemporaryDirectory(prefix="sagelab-profile-") as scratch:
        local = fetch(lake, source, Path(scratch) / "input") if lake else Path(source)
        to_lake = lake is not None and is_s3(output)
        folder = Path(scratch) / "output" if to_lake else Path(output)
        _, written = profile_to_folder(local, folder, target=target, source=source, file_format=file_format,
                                       header=header)
        return publish(lake, folder, output) if to_lake else [str(p) for p in written]
