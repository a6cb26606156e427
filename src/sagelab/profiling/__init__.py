"""Data-quality profiles: descriptive and multivariate statistics, Model Monitor baseline files, an HTML report.

    from sagelab.profiling import profile, profile_to_folder, write_outputs
    result = profile(frame_or_path, target="label")
    write_outputs(result, Path("out"))   # statistics.json, constraints.json, report.html
    result, paths = profile_to_folder(frame_or_path, Path("out"), target="label")   # both, overlapped
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.profiling.compute import profile
from sagelab.profiling.model import Profile

if TYPE_CHECKING:
    from sagelab.profiling.report import AttributeFigures

__all__ = ["OUTPUT_FILES", "Profile", "profile", "profile_to_folder", "write_outputs"]

OUTPUT_FILES = ("statistics.json", "constraints.json", "report.html")


def write_outputs(result: Profile, folder: Path, *, source: str | None = None,
                  figures: AttributeFigures | None = None) -> list[Path]:
    """The profile's three files in `folder`: Model Monitor's baseline pair and the HTML report (whose
    attribute figures may have been drawn ahead, see `profile_to_folder`)."""
    from sagelab.profiling.monitor_formats import write_baseline
    from sagelab.profiling.report import write_report

    statistics, constraints = write_baseline(result, folder)
    report = write_report(result, folder / "report.html", source=source, figures=figures)
    return [statistics, constraints, report]


def profile_to_folder(data: Any, folder: Path, *, target: str | None = None, source: str | None = None,
                      file_format: str | None = None, header: bool = True) -> tuple[Profile, list[Path]]:
    """`profile` and `write_outputs` in one, each attribute's figure drawn while the profiler's worker
    threads are still computing other columns: what the command line and the profiler image run."""
    from sagelab.profiling import plots
    from sagelab.profiling.report import AttributeFigures

    figures = AttributeFigures()
    with plots.style():
        result = profile(data, target=target, file_format=file_format, header=header, on_attribute=figures.draw)
        return result, write_outputs(result, folder, source=source, figures=figures)
