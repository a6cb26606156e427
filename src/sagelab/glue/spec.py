"""A Glue job definition, validated once from CreateJob / UpdateJob.

Two kinds run here: `pythonshell` (a Python script, MaxCapacity 0.0625 or 1 DPU) and `glueetl` (a PySpark
script on a local Spark, sized by WorkerType and NumberOfWorkers, or by MaxCapacity as G.1X workers).
"""

from __future__ import annotations

from typing import Any

from sagelab.errors import InvalidInput, SagelabError
from sagelab.lake.uris import parse_s3_uri

COMMAND = "pythonshell"
SPARK_COMMAND = "glueetl"
COMMANDS = (COMMAND, SPARK_COMMAND)
PYTHON_VERSIONS = ("3", "3.9")
MAX_CAPACITIES = (0.0625, 1.0)
#: Glue versions whose Spark jobs run here (all on the one local PySpark); older ones AWS no longer runs.
SPARK_GLUE_VERSIONS = ("3.0", "4.0", "5.0")
DEFAULT_SPARK_GLUE_VERSION = "3.0"
#: Spark worker types: (vCPUs, DPUs) of one worker, as Glue's pricing page lists them.
SPARK_WORKER_TYPES = {"G.1X": (4, 1.0), "G.2X": (8, 2.0), "G.4X": (16, 4.0), "G.8X": (32, 8.0),
                      "G.12X": (48, 12.0), "G.16X": (64, 16.0), "R.1X": (4, 1.0), "R.2X": (8, 2.0),
                      "R.4X": (16, 4.0), "R.8X": (32, 8.0)}
#: Worker types Glue has for other kinds of job, and what they are for (the message names it).
OTHER_WORKER_TYPES = {"Standard": "Glue 0.9 and 1.0 jobs", "G.025X": "gluestreaming jobs",
                      "Z.2X": "glueray jobs"}
SPARK_CAPACITY_RANGE = (2, 100)
DEFAULT_SPARK_WORKERS = 10
DEFAULT_TIMEOUT_MINUTES = 2880
BOOKMARK_OPTIONS = ("job-bookmark-enable", "job-bookmark-disable", "job-bookmark-pause")


def check_arguments(arguments: dict[str, str] | None, field: str) -> None:
    for key, value in (arguments or {}).items():
        if not key.startswith("--"):
            raise InvalidInput(f"{field} key {key!r} must start with '--' (Glue passes it to the script as "
                               f"'{key} <value>'): write it as '--{key}'.")
        if key == "--job-bookmark-option" and value not in BOOKMARK_OPTIONS:
            raise InvalidInput(f"{field} --job-bookmark-option must be one of {', '.join(BOOKMARK_OPTIONS)}, "
                               f"got {value!r}.")


def check_job(params: dict[str, Any]) -> None:
    """Raise InvalidInput naming the field when a job definition cannot run here."""
    command = params.get("Command") or {}
    name = command.get("Name")
    if name not in COMMANDS:
        raise InvalidInput(f"Command.Name must be one of {', '.join(COMMANDS)}: sagelab runs Python shell and "
                           f"Spark ETL jobs, got {name!r}.")
    location = command.get("ScriptLocation")
    if not location:
        raise InvalidInput("Command.ScriptLocation is required: the s3:// URI of the job's Python script.")
    try:
        parse_s3_uri(location, field="Command.ScriptLocation")
    except SagelabError as exc:
        raise InvalidInput(exc.message) from None
    if name == SPARK_COMMAND:
        _check_spark_job(params, command)
    else:
        _check_python_shell_job(params, command)
    timeout = params.get("Timeout")
    if timeout is not None and timeout < 1:
        raise InvalidInput(f"Timeout must be at least 1 minute, got {timeout!r}.")
    check_arguments(params.get("DefaultArguments"), "DefaultArguments")
    check_arguments(params.get("NonOverridableArguments"), "NonOverridableArguments")


def _check_python_shell_job(params: dict[str, Any], command: dict[str, Any]) -> None:
    version = command.get("PythonVersion")
    if version is not None and version not in PYTHON_VERSIONS:
        raise InvalidInput(f"Command.PythonVersion must be one of {', '.join(PYTHON_VERSIONS)} for pythonshell "
                           f"jobs, got {version!r}.")
    capacity = params.get("MaxCapacity")
    if capacity is not None and float(capacity) not in MAX_CAPACITIES:
        raise InvalidInput(f"MaxCapacity for a pythonshell job must be 0.0625 or 1.0, got {capacity!r}.")
    if params.get("WorkerType") or params.get("NumberOfWorkers"):
        raise InvalidInput("WorkerType and NumberOfWorkers do not apply to pythonshell jobs; set MaxCapacity.")


def _check_spark_job(params: dict[str, Any], command: dict[str, Any]) -> None:
    version = command.get("PythonVersion")
    if version is not None and version != "3":
        raise InvalidInput(f"Command.PythonVersion must be '3' for glueetl jobs, got {version!r}.")
    glue_version = params.get("GlueVersion")
    if glue_version is not None and glue_version not in SPARK_GLUE_VERSIONS:
        raise InvalidInput(f"GlueVersion must be one of {', '.join(SPARK_GLUE_VERSIONS)} for glueetl jobs, "
                           f"got {glue_version!r}.")
    worker_type, workers, capacity = params.get("WorkerType"), params.get("NumberOfWorkers"), params.get(
        "MaxCapacity")
    if capacity is not None and (worker_type is not None or workers is not None):
        raise InvalidInput("MaxCapacity cannot be set together with WorkerType and NumberOfWorkers: set either "
                           "MaxCapacity or both WorkerType and NumberOfWorkers.")
    if (worker_type is None) != (workers is None):
        missing = "NumberOfWorkers" if workers is None else "WorkerType"
        raise InvalidInput(f"{missing} is required when {'WorkerType' if workers is None else 'NumberOfWorkers'} "
                           "is set: set both WorkerType and NumberOfWorkers.")
    if worker_type is not None:
        if worker_type in OTHER_WORKER_TYPES:
            raise InvalidInput(f"WorkerType {worker_type} is for {OTHER_WORKER_TYPES[worker_type]}, not glueetl "
                               f"jobs: use one of {', '.join(SPARK_WORKER_TYPES)}.")
        if worker_type not in SPARK_WORKER_TYPES:
            raise InvalidInput(f"WorkerType must be one of {', '.join(SPARK_WORKER_TYPES)} for glueetl jobs, "
                               f"got {worker_type!r}.")
        if workers < 2:
            raise InvalidInput(f"NumberOfWorkers must be at least 2 for a glueetl job (one driver and at least "
                               f"one executor), got {workers!r}.")
    if capacity is not None:
        low, high = SPARK_CAPACITY_RANGE
        if float(capacity) != int(capacity) or not low <= capacity <= high:
            raise InvalidInput(f"MaxCapacity for a glueetl job must be a whole number of DPUs from {low} to {high}, "
                               f"got {capacity!r}.")


def check_run_capacity(params: dict[str, Any]) -> None:
    """StartJobRun's WorkerType / NumberOfWorkers / MaxCapacity for a glueetl job, checked as CreateJob's."""
    if any(params.get(k) is not None for k in ("WorkerType", "NumberOfWorkers", "MaxCapacity")):
        _check_spark_job(params, {})


def spark_workers(params: dict[str, Any]) -> tuple[str, int]:
    """(WorkerType, NumberOfWorkers) of a checked glueetl job: MaxCapacity counts as that many G.1X workers."""
    if params.get("WorkerType"):
        return params["WorkerType"], int(params["NumberOfWorkers"])
    return "G.1X", int(params.get("MaxCapacity") or DEFAULT_SPARK_WORKERS)


def job_document(params: dict[str, Any], now: float, created: float | None = None) -> dict[str, Any]:
    spark = params["Command"]["Name"] == SPARK_COMMAND
    command = {"Name": params["Command"]["Name"], "ScriptLocation": params["Command"]["ScriptLocation"],
               "PythonVersion": params["Command"].get("PythonVersion") or ("3" if spark else "3.9")}
    doc: dict[str, Any] = {
        "Name": params["Name"], "JobMode": params.get("JobMode", "SCRIPT"), "Role": params["Role"],
        "CreatedOn": created if created is not None else now, "LastModifiedOn": now,
        "ExecutionProperty": params.get("ExecutionProperty") or {"MaxConcurrentRuns": 1}, "Command": command,
        "DefaultArguments": params.get("DefaultArguments") or {},
        "MaxRetries": params.get("MaxRetries", 0), "AllocatedCapacity": 0,
        "Timeout": params.get("Timeout") or DEFAULT_TIMEOUT_MINUTES,
        "MaxCapacity": float(params.get("MaxCapacity") or 0.0625), "GlueVersion": params.get("GlueVersion", "3.0"),
        "ExecutionClass": "STANDARD",
    }
    if spark:
        worker_type, workers = spark_workers(params)
        capacity = workers * SPARK_WORKER_TYPES[worker_type][1]
        doc.update(WorkerType=worker_type, NumberOfWorkers=workers, MaxCapacity=capacity,
                   AllocatedCapacity=int(capacity),
                   GlueVersion=params.get("GlueVersion") or DEFAULT_SPARK_GLUE_VERSION)
    for optional in ("Description", "LogUri", "NonOverridableArguments", "Connections", "SecurityConfiguration",
                     "NotificationProperty", "JobRunQueuingEnabled", "MaintenanceWindow"):
        if params.get(optional) is not None:
            doc[optional] = params[optional]
    return doc


def script_arguments(job: dict[str, Any], run: dict[str, Any]) -> dict[str, str]:
    """What the script receives: job defaults, overridden by the run's Arguments, then the fixed ones."""
    merged = {"--job-bookmark-option": "job-bookmark-disable", **(job.get("DefaultArguments") or {}),
              **(run.get("Arguments") or {}), **(job.get("NonOverridableArguments") or {})}
    return merged
