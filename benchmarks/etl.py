"""Glue Spark ETL overhead: a glueetl job (CSV -> ApplyMapping -> Parquet partitioned by region) over
1,000,000 generated rows, run through boto3 against sagelab and, in the same run, as the same PySpark
work run directly by Python on the same files, with the same local[N] master and Spark settings.

Run: .venv/bin/python benchmarks/etl.py [--rows 1000000] [--repeats 1]

The job time runs from StartJobRun until GetJobRun reports SUCCEEDED (polled every 250 ms): job process
start, script fetch, Spark start, listing and copying the input out of the lake, the Spark work, and
uploading the output into the lake. The direct time runs a fresh Python process that starts the same
Spark (PYSPARK_SUBMIT_ARGS as sagelab sets them), reads the local CSV files and writes local Parquet.
The fixed start-up is the job time minus the direct time on a 10-row input: the part that does not grow
with the data. Prints both times, the ratio job/direct and the ratio with the fixed start-up taken off
the job time (target <= 1.2). Timings taken while other work shares the cores are noisy: with
--repeats > 1 the best of each side is used.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sagelab.embedded import ServerProcess
from sagelab.glue.spark import driver_memory_gb, local_threads, spark_conf, submit_args

BUCKET = "bench"
ROLE = "arn:aws:iam::000000000000:role/GlueRole"
FILES = 4
REGIONS = np.array(["eu", "us", "apac", "latam"])
MAPPINGS = [("id", "long", "order_id", "long"), ("region", "string", "region", "string"),
            ("category", "string", "category", "string"), ("amount", "double", "amount_usd", "double"),
            ("quantity", "long", "quantity", "int")]

JOB_SCRIPT = f'''
import sys
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.transforms import ApplyMapping
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "source", "target"])
glue_context = GlueContext(SparkContext())
job = Job(glue_context)
job.init(args["JOB_NAME"], args)
frame = glue_context.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={{"paths": [args["source"]]}}, format="csv",
    format_options={{"withHeader": True}})
mapped = ApplyMapping.apply(frame=frame, mappings={MAPPINGS!r})
glue_context.write_dynamic_frame.from_options(frame=mapped, connection_type="s3", format="parquet",
    connection_options={{"path": args["target"], "partitionKeys": ["region"]}})
job.commit()
'''

DIRECT_SCRIPT = f'''
import sys
from pyspark.sql import SparkSession, functions as F

spark = SparkSession.builder.getOrCreate()
df = spark.read.options(header="true", inferSchema="true").csv(sys.argv[2:])
df = df.select(*[F.col(s).cast({{"long": "bigint"}}.get(t, t)).alias(d) for s, _, d, t in {MAPPINGS!r}])
df.write.mode("overwrite").partitionBy("region").parquet(sys.argv[1])
spark.stop()
'''


def make_files(folder: Path, rows: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    per_file = max(1, rows // FILES)
    paths = []
    for part in range(FILES):
        table = pa.table({
            "id": np.arange(part * per_file, (part + 1) * per_file, dtype=np.int64),
            "region": REGIONS[rng.integers(0, len(REGIONS), per_file)],
            "category": np.char.add("cat", rng.integers(0, 20, per_file).astype(str)),
            "amount": np.round(rng.gamma(2.0, 30.0, per_file), 2),
            "quantity": rng.integers(1, 12, per_file),
        })
        path = folder / f"part-{part}.csv"
        pacsv.write_csv(table, path)
        paths.append(path)
    return paths


def job_time(glue, s3, name: str, files: list[Path], prefix: str) -> float:
    for path in files:
        s3.upload_file(str(path), BUCKET, f"{prefix}/in/{path.name}")
    started = time.perf_counter()
    run_id = glue.start_job_run(JobName=name, Arguments={
        "--source": f"s3://{BUCKET}/{prefix}/in/", "--target": f"s3://{BUCKET}/{prefix}/out/"})["JobRunId"]
    while True:
        run = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
        if run["JobRunState"] not in ("STARTING", "RUNNING", "STOPPING", "WAITING"):
            break
        time.sleep(0.25)
    elapsed = time.perf_counter() - started
    if run["JobRunState"] != "SUCCEEDED":
        raise RuntimeError(f"the benchmark job {run['JobRunState']}: {run.get('ErrorMessage')}")
    return elapsed


def direct_time(script: Path, files: list[Path], out: Path, work: Path) -> float:
    threads = local_threads("G.1X", 2)
    conf = spark_conf(threads, work)
    conf.pop("spark.driver.extraJavaOptions")
    env = {**os.environ, "PYSPARK_SUBMIT_ARGS": submit_args(threads, driver_memory_gb("G.1X"), conf),
           "PYSPARK_PYTHON": sys.executable}
    started = time.perf_counter()
    subprocess.run([sys.executable, str(script), str(out), *map(str, files)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "big").mkdir()
        (tmp / "tiny").mkdir()
        big, tiny = make_files(tmp / "big", args.rows), make_files(tmp / "tiny", 10 * FILES, seed=1)
        size = sum(p.stat().st_size for p in big) / 1e6
        script = tmp / "direct.py"
        script.write_text(DIRECT_SCRIPT)
        with ServerProcess(tmp / "home") as server:
            s3, glue = server.client("s3"), server.client("glue")
            s3.create_bucket(Bucket=BUCKET)
            s3.put_object(Bucket=BUCKET, Key="scripts/etl.py", Body=JOB_SCRIPT.encode())
            glue.create_job(Name="etl-bench", Role=ROLE, GlueVersion="4.0", WorkerType="G.1X", NumberOfWorkers=2,
                            Command={"Name": "glueetl", "ScriptLocation": f"s3://{BUCKET}/scripts/etl.py"})
            times: dict[str, list[float]] = {"job_tiny": [], "direct_tiny": [], "job": [], "direct": []}
            for repeat in range(args.repeats):
                times["job_tiny"].append(job_time(glue, s3, "etl-bench", tiny, f"tiny{repeat}"))
                times["direct_tiny"].append(direct_time(script, tiny, tmp / f"out-tiny{repeat}", tmp / "work"))
                times["job"].append(job_time(glue, s3, "etl-bench", big, f"big{repeat}"))
                times["direct"].append(direct_time(script, big, tmp / f"out-big{repeat}", tmp / "work"))
    best = {k: min(v) for k, v in times.items()}
    fixed = max(0.0, best["job_tiny"] - best["direct_tiny"])
    print(f"input: {args.rows:,} rows in {FILES} CSV files ({size:.1f} MB), local[{local_threads('G.1X', 2)}]")
    print(f"10-row input: glueetl job {best['job_tiny']:.2f} s, direct {best['direct_tiny']:.2f} s")
    print(f"fixed start-up of a glueetl job: {fixed:.2f} s")
    print(f"glueetl job: {best['job']:.2f} s   direct PySpark: {best['direct']:.2f} s")
    print(f"ratio job/direct: {best['job'] / best['direct']:.2f}")
    print(f"ratio without the fixed start-up: {(best['job'] - fixed) / best['direct']:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
