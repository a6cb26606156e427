"""The profiler as a built-in processing image: SageMaker's `sagemaker-model-monitor-analyzer` (a baselining
job, as `DefaultModelMonitor.suggest_baseline` starts it) and `sagelab-profiler`.

Settings come from the job's Environment, under the analyzer's own names: `dataset_source` (the container
path of the input), `output_path` (of the output), `dataset_format` (`{"csv": {"header": true}}`,
`{"json": {"lines": true}}` or `{"parquet": {}}`), plus sagelab's `target` (the label column). Without
paths, the job's only input and output are used. The output gets statistics.json, constraints.json and
report.html.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sagelab.errors import ValidationError


def _pick(folders: dict[str, Path], container_path: str | None, what: str) -> Path:
    if container_path:
        relative = container_path.rstrip("/").removeprefix("/opt/ml")
        for folder in folders.values():
            if str(folder).rstrip("/").endswith(relative):
                return folder
        raise ValidationError(f"{what} {container_path!r} is not the LocalPath of any of the job's "
                              f"{'inputs' if what == 'dataset_source' else 'outputs'} ({', '.join(folders)}).")
    if len(folders) == 1:
        return next(iter(folders.values()))
    raise ValidationError(f"the job has {len(folders)} {'inputs' if what == 'dataset_source' else 'outputs'}; set "
                          f"the environment variable {what} to the LocalPath of the one to use.")


def parse_dataset_format(text: str | None) -> tuple[str | None, bool]:
    """Model Monitor's dataset_format JSON -> (file format, CSV has a header)."""
    if not text:
        return None, True
    try:
        spec: dict[str, Any] = json.loads(text)
    except ValueError:
        raise ValidationError(f"dataset_format must be JSON such as {{\"csv\": {{\"header\": true}}}}, got "
                              f"{text!r}.") from None
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in ("csv", "json", "parquet"):
        raise ValidationError(f"dataset_format must name one of csv, json, parquet, got {text!r}.")
    fmt, options = next(iter(spec.items()))
    header = bool((options or {}).get("header", True)) if fmt == "csv" else True
    return fmt, header


def run_analyzer(ctx) -> None:
    from sagelab.profiling import profile_to_folder

    env = ctx.environment
    source = _pick(ctx.inputs, env.get("dataset_source"), "dataset_source")
    output = _pick(ctx.outputs, env.get("output_path"), "output_path")
    file_format, header = parse_dataset_format(env.get("dataset_format"))
    ctx.print(f"sagelab profiler: reading {source}")
    uri = next(iter(ctx.input_uris.values()), None)
    result, written = profile_to_folder(source, output, target=env.get("target") or None, source=uri,
                                        file_format=file_format, header=header)
    ctx.print(f"sagelab profiler: {result.overview.rows} rows, {result.overview.columns} columns, "
              f"{len(result.alerts)} warnings")
    for alert in result.alerts:
        ctx.print(f"  warning: {alert.message}")
    for path in written:
        ctx.print(f"sagelab profiler: wrote {path.name}")
