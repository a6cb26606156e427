"""Athena query overhead: a filter + group-by over 10,000,000 rows of Parquet (4 Hive partitions, 8 files),
run as an Athena query through boto3 against sagelab and, in the same run, by DuckDB called directly on
the same lake files. Prints the fixed start-up cost of a query (target < 0.3 s) and the ratio sagelab/direct
with and, last, without it (target <= 1.2 plus the fixed start-up).

Run: .venv/bin/python benchmarks/query.py [--rows 10000000] [--repeats 5]
The Athena time runs from StartQueryExecution until GetQueryExecution reports SUCCEEDED (polled every
10 ms) plus GetQueryResults; the direct time connects DuckDB, runs the same SQL over
`read_parquet(<the lake's files>, hive_partitioning=true)` and fetches the rows. The start-up cost is the
Athena latency of `SELECT 1` (no data read). The table is catalogued by a Glue crawler first.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sagelab.embedded import ServerProcess

REGIONS = ("eu", "us", "apac", "latam")
FILES_PER_REGION = 2
QUERY = """SELECT category, count(*) AS n, sum(amount) AS total, avg(quantity) AS mean_quantity
FROM sales WHERE amount > 50 AND quantity < 9 GROUP BY category ORDER BY category"""


def make_files(folder: Path, rows: int, seed: int = 0) -> list[tuple[str, Path]]:
    """(lake key, local file) for each Parquet file; rows are spread evenly over files and regions."""
    rng = np.random.default_rng(seed)
    per_file = rows // (len(REGIONS) * FILES_PER_REGION)
    categories = pa.array([f"cat{i:02d}" for i in range(20)])
    out = []
    for region in REGIONS:
        for part in range(FILES_PER_REGION):
            table = pa.table({
                "id": np.arange(per_file, dtype=np.int64),
                "category": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 20, per_file, dtype=np.int32)),
                                                           categories),
                "amount": rng.gamma(2.0, 30.0, per_file),
                "quantity": rng.integers(1, 12, per_file, dtype=np.int32),
            })
            path = folder / f"{region}-{part}.parquet"
            pq.write_table(table, path, row_group_size=1 << 20)
            out.append((f"sales/region={region}/part-{part}.parquet", path))
    return out


def athena_query(athena, sql: str) -> tuple[float, list]:
    started = time.perf_counter()
    query_id = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "bench"},
                                            ResultConfiguration={"OutputLocation": "s3://bench/results/"})[
        "QueryExecutionId"]
    while True:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.01)
    if status["State"] != "SUCCEEDED":
        raise SystemExit(f"query {query_id} ended {status['State']}: {status.get('StateChangeReason')}")
    rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
    return time.perf_counter() - started, rows


def direct_query(files: list[str]) -> tuple[float, list]:
    started = time.perf_counter()
    connection = duckdb.connect()
    listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    connection.execute(f"CREATE VIEW sales AS SELECT * FROM read_parquet({listing}, hive_partitioning=true)")
    rows = connection.execute(QUERY).fetchall()
    connection.close()
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp), args.rows)
        size = sum(p.stat().st_size for _, p in files)
        print(f"data: {args.rows:,} rows of Parquet, {len(files)} files in {len(REGIONS)} partitions, "
              f"{size / 1e6:.0f} MB")
        with ServerProcess(Path(tmp) / "home") as server:
            s3, glue, athena = server.client("s3"), server.client("glue"), server.client("athena")
            s3.create_bucket(Bucket="bench")
            for key, path in files:
                s3.upload_file(str(path), "bench", key)
            glue.create_crawler(Name="bench", Role="arn:aws:iam::000000000000:role/bench", DatabaseName="bench",
                                Targets={"S3Targets": [{"Path": "s3://bench/sales/"}]})
            glue.start_crawler(Name="bench")
            while glue.get_crawler(Name="bench")["Crawler"]["State"] != "READY" or "LastCrawl" not in glue.get_crawler(
                    Name="bench")["Crawler"]:
                time.sleep(0.1)
            lake_files = sorted(str(p) for p in (server.home / "lake" / "bench" / "sales").rglob("@data"))
            athena_query(athena, QUERY)  # warm-up: first query, page cache
            direct_query(lake_files)
            ours, theirs, ratios, net_ratios, startups = [], [], [], [], []
            for i in range(args.repeats):
                a, a_rows = athena_query(athena, QUERY)
                d, d_rows = direct_query(lake_files)
                s, _ = athena_query(athena, "SELECT 1")
                assert len(a_rows) == len(d_rows) + 1, "both answers have one row per category"
                ours.append(a)
                theirs.append(d)
                ratios.append(a / d)
                net_ratios.append((a - s) / d)
                startups.append(s)
                print(f"  run {i + 1}: athena {a:.3f} s   direct {d:.3f} s   ratio {a / d:.3f}   "
                      f"SELECT 1 {s * 1000:.0f} ms")
    print(f"median athena {statistics.median(ours):.3f} s, median direct {statistics.median(theirs):.3f} s")
    print(f"fixed start-up (SELECT 1 through Athena, median): {statistics.median(startups) * 1000:.0f} ms "
          "(target < 300 ms)")
    print(f"ratio sagelab/direct including the start-up (median of pairs): {statistics.median(ratios):.3f}")
    # The target reads "<= 1.2 plus a fixed start-up": the query's own cost against DuckDB's, once the fixed
    # start-up measured beside it (SELECT 1 through Athena) is taken off.
    print(f"ratio sagelab/direct net of the fixed start-up (median of pairs): {statistics.median(net_ratios):.3f}"
          "  (target <= 1.2)")


if __name__ == "__main__":
    main()
