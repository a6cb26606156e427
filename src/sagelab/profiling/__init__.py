"""Data-quality profiles: descriptive and multivariate statistics, Model Monitor baseline files, an HTML report.

    from sagelab.profiling import profile, write_outputs
    result = profile(frame_or_path, target="label")
    write_outputs(result, Path("out"))   # statistics.json, constraints.json, report.html
"""

from __future__ import annotations

from pathlib import Path

from sagelab.profiling.compute import profile
from sagelab.profiling.model import Profile

__all__ = ["OUTPUT_FILES", "Profile", "profile", "write_outputs"]

OUTPUT_FILES = ("statistics.json", "constraints.json", "report.html")


def write_outputs(result: Profile, folder: Path, *, source: str | None = None) -> list[Path]:
    """The profile's three files in `folder`: Model Monitor's baseline pair and the HTML report."""
    from sagelab.profiling.monitor_formats import write_baseline
    from sagelab.profiling.report import write_report

    statistics, constraints = write_baseline(result, folder)
    report = write_report(result, folder / "report.html", source=source)
    return [statistics, constraints, report]
