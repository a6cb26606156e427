"""Every setting sagelab reads, in one table, resolved once: flags > SAGELAB_* environment > file.

The file is `<home>/sagelab.toml` (flat `name = value` pairs). Nothing here is read at import time:
`load_settings` is called by the CLI (or a test) and the resulting frozen `Settings` is passed down.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagelab.errors import ValidationError


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: type = str


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "~/.sagelab", "Folder holding the metadata database, the lake, logs and credentials."),
    Setting("host", "127.0.0.1", "Address the server listens on."),
    Setting("port", 8080, "Port the server listens on.", int),
    Setting("database_url", "", "SQLAlchemy URL of the metadata store; empty means SQLite in the home folder."),
    Setting("lake_url", "", "Where lake objects live: `file:///folder`, or `s3://<bucket>/<prefix>` for an external "
            "S3-compatible store; empty means the folder `<home>/lake`."),
    Setting("lake_endpoint_url", "", "Endpoint of the S3-compatible store an `s3://` lake_url names (MinIO, Ceph, "
            "...); empty means AWS S3's own endpoints."),
    Setting("lake_access_key_id", "", "Access key id for the `s3://` lake's store; empty means boto3's usual "
            "credential chain."),
    Setting("lake_secret_access_key", "", "Secret access key of lake_access_key_id."),
    Setting("lake_region", "", "Region of the `s3://` lake's store; empty means the `region` setting."),
    Setting("engine", "local", "Compute engine for jobs: `local` (one OS process per job), `inline`, `ray` (a "
            "Ray instance on this machine) or `ray://host:port` (a Ray cluster sharing the home folder).", str),
    Setting("max_concurrent_jobs", 0, "Jobs run at once by the local engine; 0 means one per CPU core.", int),
    Setting("region", "us-east-1", "Region used when a request names none.", str),
    Setting("auth", True, "Require SigV4-signed requests. Turning this off is an explicit opt-out.", bool),
    Setting("root_access_key_id", "", "Root access key id; empty means generate one on first start.", str),
    Setting("root_secret_access_key", "", "Root secret access key; empty means generate one on first start.", str),
    Setting("clock_skew_seconds", 900, "Largest accepted difference between a request's X-Amz-Date and now.", int),
    Setting("kinesis_shard_limits", False, "Refuse Kinesis writes past 1,000 records or 1 MiB per second per shard "
            "(ProvisionedThroughputExceededException), as AWS does; off by default.", bool),
    Setting("spot_interruption_after_seconds", 0.0, "Interrupt every managed spot training job this many seconds "
            "into its first attempt's training, so it restarts from its checkpoints; 0 means never.", float),
    Setting("cloudtrail_delivery_seconds", 5.0, "How often logging trails deliver log files to their buckets.",
            float),
    Setting("cloudtrail_digest_seconds", 3600.0, "How often trails with log file validation deliver a digest.",
            float),
    Setting("alarm_evaluation_seconds", 60.0, "How often CloudWatch alarms are evaluated against their metrics.",
            float),
    Setting("serverless_idle_seconds", 300.0, "Idle seconds after which a serverless endpoint's instance is stopped "
            "(scale to zero); its next request starts one again (a cold start).", float),
    Setting("endpoint_metric_period_seconds", 60, "The period of SageMaker's endpoint metrics (invocations, "
            "instance utilization) and of target tracking alarms; below 60 they are high-resolution (for tests).",
            int),
    Setting("lifecycle_day_seconds", 86400.0, "How long a day of an S3 lifecycle rule lasts, in seconds (tests make "
            "it short).", float),
    Setting("lifecycle_scan_seconds", 3600.0, "How often the S3 lifecycle rules are applied to the buckets' objects.",
            float),
    Setting("capture_flush_seconds", 5.0, "How often endpoints' captured invocations (DataCaptureConfig) are "
            "written to the lake.", float),
    Setting("monitoring_hour_seconds", 3600.0, "How many seconds an hour of a monitoring schedule lasts: cron "
            "schedules fire and their analysis windows are measured in it (tests shrink it).", float),
    Setting("tls", False, "Serve HTTPS (a self-signed certificate in `<home>/tls` unless tls_cert is given).", bool),
    Setting("tls_cert", "", "PEM certificate (chain) for HTTPS; empty means the home's self-signed one.", str),
    Setting("tls_key", "", "PEM private key of tls_cert.", str),
    Setting("multi_model_memory_mb", 1024.0, "Memory each instance of a multi-model endpoint may fill with loaded "
            "models; past it the least recently used are unloaded.", float),
    Setting("multi_model_max_loaded", 50, "Most models one multi-model endpoint instance keeps loaded at once.", int),
    Setting("takeover_scan_seconds", 5.0, "How often a server sharing a PostgreSQL database with others looks for a "
            "server that died, to take over the jobs it left.", float),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path
    host: str
    port: int
    database_url: str
    lake_url: str
    engine: str
    max_concurrent_jobs: int
    region: str
    auth: bool
    root_access_key_id: str
    root_secret_access_key: str
    clock_skew_seconds: int
    kinesis_shard_limits: bool = False
    spot_interruption_after_seconds: float = 0.0
    cloudtrail_delivery_seconds: float = 5.0
    cloudtrail_digest_seconds: float = 3600.0
    alarm_evaluation_seconds: float = 60.0
    serverless_idle_seconds: float = 300.0
    endpoint_metric_period_seconds: int = 60
    lifecycle_day_seconds: float = 86400.0
    lifecycle_scan_seconds: float = 3600.0
    capture_flush_seconds: float = 5.0
    monitoring_hour_seconds: float = 3600.0
    tls: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    multi_model_memory_mb: float = 1024.0
    multi_model_max_loaded: int = 50
    takeover_scan_seconds: float = 5.0
    lake_endpoint_url: str = ""
    lake_access_key_id: str = ""
    lake_secret_access_key: str = ""
    lake_region: str = ""

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'sagelab.db'}"

    @property
    def job_concurrency(self) -> int:
        return self.max_concurrent_jobs or (os.cpu_count() or 1)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Settings:
        """Rebuild settings handed to a job process (see `to_dict`)."""
        return cls(**{**values, "home": Path(values["home"])})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: str(v) if isinstance(v, Path) else v for f, v in
                ((f, getattr(self, f.name)) for f in dataclasses.fields(self))}


def _coerce(setting: Setting, value: Any, source: str) -> Any:
    if setting.kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValidationError(f"Setting {setting.name!r} from {source} must be true or false, got {value!r}.")
    if setting.kind in (int, float):
        try:
            return setting.kind(value)
        except (TypeError, ValueError):
            noun = "an integer" if setting.kind is int else "a number"
            raise ValidationError(
                f"Setting {setting.name!r} from {source} must be {noun}, got {value!r}.") from None
    return str(value)


def load_settings(flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting: explicit flags win, then SAGELAB_<NAME>, then the home folder's file."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    unknown = set(flags) - set(_BY_NAME)
    if unknown:
        raise ValidationError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")

    def pick(name: str, file_values: Mapping[str, Any]) -> Any:
        setting = _BY_NAME[name]
        if name in flags:
            return _coerce(setting, flags[name], "the command line")
        env_name = f"SAGELAB_{name.upper()}"
        if env_name in environ:
            return _coerce(setting, environ[env_name], f"${env_name}")
        if name in file_values:
            return _coerce(setting, file_values[name], "sagelab.toml")
        return setting.default

    home = Path(str(pick("home", {}))).expanduser().resolve()
    file_values: dict[str, Any] = {}
    config_file = home / "sagelab.toml"
    if config_file.exists():
        file_values = tomllib.loads(config_file.read_text())
    values = {s.name: pick(s.name, file_values) for s in SETTINGS if s.name != "home"}
    return Settings(home=home, **values)
