"""Data-quality profile speed: sagelab against ydata-profiling's minimal mode, side by side in one run.

Run: python benchmarks/profile.py [--rows 1000000] [--repeat 3] [--ydata-python PATH]

The table is generated here: 1,000,000 rows × 10 columns (6 float, 3 categorical, 1 integer), 5 % of every
column missing. Both tools start from the same in-memory pandas DataFrame and write an HTML report:
  - sagelab: `profile_to_folder(frame, folder)` (statistics.json, constraints.json, report.html), what
    `sagelab profile` and the profiler processing image run;
  - ydata-profiling: `ProfileReport(frame, minimal=True).to_file("report.html")`.
Imports and a warm-up on a small frame happen before the clock starts, for both. Wall-clock seconds decide
the ratio; CPU seconds (all threads of the process) are printed too, as they vary less when other work
shares the cores.

ydata-profiling cannot share sagelab's environment (every release pins numpy < 2.4 or pandas < 3), so when it
is not importable here it runs in a virtualenv of its own: `--ydata-python` names its interpreter, or else the
benchmark creates benchmarks/.ydata-venv from the exact pins of benchmarks/ydata-requirements.txt (once, about
a minute). The same frame is handed over as Parquet and timed there the same way. Each tool's best of
`--repeat` runs counts; the ratio ydata/sagelab (the target is >= 10) is printed last.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

YDATA_SCRIPT = textwrap.dedent("""
    import json, sys, time, warnings
    import pandas as pd
    warnings.filterwarnings("ignore")
    from ydata_profiling import ProfileReport
    frame = pd.read_parquet(sys.argv[1])
    ProfileReport(frame.head(1000), minimal=True, progress_bar=False).to_file(sys.argv[2])  # warm-up
    times, cpu = [], []
    for _ in range(int(sys.argv[3])):
        start, start_cpu = time.perf_counter(), time.process_time()
        ProfileReport(frame, minimal=True, progress_bar=False).to_file(sys.argv[2])
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    import ydata_profiling
    print(json.dumps({"seconds": min(times), "cpu": min(cpu), "version": ydata_profiling.__version__}))
""")


def generate(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for i in range(6):
        columns[f"float_{i}"] = rng.normal(loc=i, scale=1 + i, size=rows)
    for i, (size, prefix) in enumerate(((5, "grade"), (20, "city"), (200, "product"))):
        labels = np.array([f"{prefix}_{j}" for j in range(size)], dtype=object)
        columns[f"cat_{i}"] = labels[rng.zipf(1.6, rows) % size]
    columns["int_0"] = rng.integers(0, 1000, rows)
    frame = pd.DataFrame(columns)
    for name in frame.columns:
        missing = rng.random(rows) < 0.05
        if name == "int_0":
            frame[name] = frame[name].astype("Int64")
        frame.loc[missing, name] = None
    return frame


def _timed(run, repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds over `repeat` runs."""
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(times), min(cpu)


def time_sagelab(frame: pd.DataFrame, out: Path, repeat: int) -> tuple[float, float]:
    from sagelab.profiling import profile_to_folder

    profile_to_folder(frame.head(1000), out)  # warm-up: imports, font cache
    return _timed(lambda: profile_to_folder(frame, out), repeat)


def ydata_interpreter() -> str:
    """The interpreter of benchmarks/.ydata-venv, created from the pinned requirements the first time."""
    folder = Path(__file__).resolve().parent
    venv = folder / ".ydata-venv"
    python = venv / "bin" / "python"
    marker = venv / "installed.txt"
    requirements = (folder / "ydata-requirements.txt").read_text()
    if not marker.exists() or marker.read_text() != requirements:
        print(f"creating {venv} for ydata-profiling (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(folder / "ydata-requirements.txt")],
                       check=True)
        marker.write_text(requirements)
    return str(python)


def time_ydata(frame: pd.DataFrame, out: Path, repeat: int, python: str | None) -> tuple[float | None, float, str]:
    try:
        import ydata_profiling  # noqa: F401
    except ImportError:
        python = python or ydata_interpreter()
        data = out / "frame.parquet"
        frame.to_parquet(data, index=False)
        done = subprocess.run([python, "-c", YDATA_SCRIPT, str(data), str(out / "ydata.html"), str(repeat)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return None, 0.0, f"ydata-profiling failed: {done.stderr[-2000:]}"
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return result["seconds"], result["cpu"], f"ydata-profiling {result['version']}, separate interpreter {python}"
    from ydata_profiling import ProfileReport

    ProfileReport(frame.head(1000), minimal=True, progress_bar=False).to_file(out / "ydata.html")
    seconds, cpu = _timed(lambda: ProfileReport(frame, minimal=True, progress_bar=False).to_file(
        out / "ydata.html"), repeat)
    return seconds, cpu, "ydata-profiling, same interpreter"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per tool; the best is kept")
    parser.add_argument("--ydata-python", help="interpreter of a virtualenv with ydata-profiling installed")
    args = parser.parse_args()
    frame = generate(args.rows)
    print(f"table: {frame.shape[0]:,} rows × {frame.shape[1]} columns, "
          f"{frame.isna().mean().mean():.1%} missing cells")
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch:
        out = Path(scratch)
        sagelab_seconds, sagelab_cpu = time_sagelab(frame, out / "sagelab", args.repeat)
        size = (out / "sagelab" / "report.html").stat().st_size
        print(f"sagelab profile + report: {sagelab_seconds:.2f} s wall, {sagelab_cpu:.2f} s CPU "
              f"(report.html {size / 1024:.0f} KiB)")
        ydata_seconds, ydata_cpu, what = time_ydata(frame, out, args.repeat, args.ydata_python)
        if ydata_seconds is None:
            print(f"ydata-profiling minimal: not measured ({what})")
            return 0
        print(f"ydata-profiling minimal + report: {ydata_seconds:.2f} s wall, {ydata_cpu:.2f} s CPU [{what}]")
        print(f"CPU-time ratio ydata/sagelab: {ydata_cpu / sagelab_cpu:.1f}")
        print(f"ratio ydata/sagelab: {ydata_seconds / sagelab_seconds:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
