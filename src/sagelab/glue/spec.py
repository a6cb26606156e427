"""A Glue job definition, validated once from CreateJob / UpdateJob."""

from __future__ import annotations

from typing import Any

from sagelab.errors import InvalidInput, SagelabError
from sagelab.lake.uris import parse_s3_uri

COMMAND = "pythonshell"
PYTHON_VERSIONS = ("3", "3.9")
MAX_CAPACITIES = (0.0625, 1.0)
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
    if name != COMMAND:
        raise InvalidInput(f"Command.Name must be '{COMMAND}': sagelab runs Python shell jobs, got {name!r}.")
    location = command.get("ScriptLocation")
    if not location:
        raise InvalidInput("Command.ScriptLocation is required: the s3:// URI of the job's Python script.")
    try:
        parse_s3_uri(location, field="Command.ScriptLocation")
    except SagelabError as exc:
        raise InvalidInput(exc.message) from None
    version = command.get("PythonVersion")
    if version is not None and version not in PYTHON_VERSIONS:
        raise InvalidInput(f"Command.PythonVersion must be one of {', '.join(PYTHON_VERSIONS)} for pythonshell "
                           f"jobs, got {version!r}.")
    capacity = params.get("MaxCapacity")
    if capacity is not None and float(capacity) not in MAX_CAPACITIES:
        raise InvalidInput(f"MaxCapacity for a pythonshell job must be 0.0625 or 1.0, got {capacity!r}.")
    if params.get("WorkerType") or params.get("NumberOfWorkers"):
        raise InvalidInput("WorkerType and NumberOfWorkers do not apply to pythonshell jobs; set MaxCapacity.")
    timeout = params.get("Timeout")
    if timeout is not None and timeout < 1:
        raise InvalidInput(f"Timeout must be at least 1 minute, got {timeout!r}.")
    check_arguments(params.get("DefaultArguments"), "DefaultArguments")
    check_arguments(params.get("NonOverridableArguments"), "NonOverridableArguments")


def job_document(params: dict[str, Any], now: float, created: float | None = None) -> dict[str, Any]:
    command = {"Name": COMMAND, "ScriptLocation": params["Command"]["ScriptLocation"],
               "PythonVersion": params["Command"].get("PythonVersion") or "3.9"}
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
