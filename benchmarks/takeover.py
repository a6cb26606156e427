"""The kill test, bigger: one server of two on a shared PostgreSQL database is SIGKILLed under load.

Two sagelab servers share a PostgreSQL database (a throwaway cluster this script initdb's, as the tests do:
Debian's `postgresql` package must be installed) and a home. Script-mode training jobs with a RetryStrategy
are created on both; once every job of one server runs, that server is SIGKILLed and more jobs go to the
other. It prints, side by side in one run, the counts of lost jobs (acknowledged, not Completed) and doubled
ones (ran to their end twice, or retried while an earlier attempt lived) — target 0 and 0 — and how long the
survivor took to notice: from the kill to each retry being recorded, at the default scan period
(`takeover_scan_seconds`, 5 s) and at a short one (0.3 s); the ratio of the medians to the period says that
the takeover waits for the scan and nothing else.

Run: .venv/bin/python benchmarks/takeover.py [--jobs 24] [--after 8]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import uuid
from pathlib import Path

from sagelab.testing.kill_load import run_kill_test
from sagelab.testing.postgres import start_cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24, help="jobs created before the kill (half on each server)")
    parser.add_argument("--after", type=int, default=8, help="jobs created on the survivor after the kill")
    args = parser.parse_args()
    cluster = start_cluster()
    try:
        results = []
        for scan in (5.0, 0.3):
            with tempfile.TemporaryDirectory() as folder:
                url = cluster.create_database(f"kill_{uuid.uuid4().hex[:10]}")
                report = run_kill_test(url, Path(folder), before=args.jobs, after=args.after, job_seconds=6,
                                       scan_seconds=scan, concurrency=args.jobs // 2, timeout=600)
            results.append((scan, report))
            print(f"scan every {scan:>4} s: {report.summary()}", flush=True)
        for scan, report in results:
            median = statistics.median(report.takeover_seconds) if report.takeover_seconds else float("nan")
            print(f"scan {scan} s: lost {len(report.lost)}, doubled {len(report.doubled)} (target 0, 0); "
                  f"kill to retry median {median:.3f} s = {median / scan:.2f} x the scan period")
    finally:
        cluster.stop()
        shutil.rmtree(cluster.folder, ignore_errors=True)


if __name__ == "__main__":
    main()
