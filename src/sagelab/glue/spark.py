"""How a `glueetl` run gets its Spark: a local PySpark sized from the job's workers, started by the script.

Glue gives a Spark job NumberOfWorkers workers, one of them the driver; here the executors' vCPUs become
the threads of one `local[N]` Spark, capped at this machine's cores, and the driver's memory is one
worker's, capped at a quarter of this machine's memory. The script starts Spark itself (`SparkContext()`,
as Glue scripts do): PYSPARK_SUBMIT_ARGS carries the master and the settings to the JVM that PySpark
launches. PySpark is an optional extra (`sagelab[spark]`); sagelab never imports it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from sagelab.glue.spec import SPARK_WORKER_TYPES

#: Memory of one worker, GB, by its DPUs (a DPU is 4 vCPUs and 16 GB; R types have twice the memory).
_GB_PER_DPU = 16
NO_PYSPARK = ("glueetl jobs need PySpark, which is not installed with this sagelab: install the spark extra "
              "(pip install 'sagelab[spark]') and Java 17.")


def have_pyspark() -> bool:
    return importlib.util.find_spec("pyspark") is not None


def local_threads(worker_type: str, workers: int, cores: int | None = None) -> int:
    """N of `local[N]`: the executors' vCPUs (every worker but the driver), at most this machine's cores."""
    vcpus, _ = SPARK_WORKER_TYPES[worker_type]
    return max(1, min(cores or os.cpu_count() or 1, (workers - 1) * vcpus))


def driver_memory_gb(worker_type: str) -> int:
    _, dpus = SPARK_WORKER_TYPES[worker_type]
    worker_gb = int(dpus * _GB_PER_DPU * (2 if worker_type.startswith("R.") else 1))
    machine_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 30)
    return max(1, min(worker_gb, machine_gb // 4))


def spark_conf(threads: int, work_dir: Path) -> dict[str, str]:
    """Settings for a one-machine Spark: no UI, scratch in the run's folder, shuffles as wide as the threads."""
    return {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.local.dir": str(work_dir / "spark-local"),
        "spark.sql.warehouse.dir": str(work_dir / "spark-warehouse"),
        "spark.driver.extraJavaOptions": f"-Djava.io.tmpdir={work_dir / 'spark-tmp'} -Dderby.system.home="
                                         f"{work_dir / 'spark-tmp'}",
        "spark.sql.shuffle.partitions": str(max(2, threads * 2)),
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
    }


def submit_args(threads: int, memory_gb: int, conf: dict[str, str]) -> str:
    """PYSPARK_SUBMIT_ARGS: what `SparkContext()` in the script hands to spark-submit."""
    parts = [f"--master local[{threads}]", f"--driver-memory {memory_gb}g"]
    parts += [f"--conf {key}={value}" for key, value in conf.items() if " " not in value]
    return " ".join(parts) + " pyspark-shell"


def spark_environment(job: dict[str, Any], work_dir: Path) -> dict[str, str]:
    """The variables a glueetl script's process gets on top of a pythonshell one's."""
    worker_type, workers = job["WorkerType"], int(job["NumberOfWorkers"])
    threads = local_threads(worker_type, workers)
    conf = spark_conf(threads, work_dir)
    for folder in ("spark-local", "spark-tmp", "staging"):
        (work_dir / folder).mkdir(parents=True, exist_ok=True)
    java_options = conf.pop("spark.driver.extraJavaOptions")
    return {
        "PYSPARK_SUBMIT_ARGS": f"--driver-java-options '{java_options}' "
                               + submit_args(threads, driver_memory_gb(worker_type), conf),
        "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SAGELAB_GLUE_STAGING": str(work_dir / "staging"),
    }
