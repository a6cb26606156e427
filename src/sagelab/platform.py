"""The composition root: builds every part of sagelab from `Settings`, once, and holds them.

Nothing is created at import time. `Platform(settings)` only stores the settings; `open()` creates the
home folder, migrates the database, loads credentials and wires the services. A job process builds a
`Platform` of its own from the same settings (without a compute engine) to reach the store and the lake.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

from sagelab.algorithms.registry import AlgorithmRegistry, builtin_algorithms
from sagelab.client_setup import write_sdk_defaults
from sagelab.compute.engine import ComputeEngine
from sagelab.lake.blobs import BlobStore, LocalBlobStore
from sagelab.security.credentials import Credentials, ensure_root_credentials, new_account_id
from sagelab.settings import Settings
from sagelab.storage.db import Database
from sagelab.storage.resources import ResourceStore

#: Libraries the job forkserver imports once, so each job process starts warm.
JOB_PRELOAD = ("numpy", "pyarrow", "pyarrow.csv", "pyarrow.parquet", "scipy.sparse", "sklearn", "sklearn.metrics",
               "xgboost", "sagelab.platform", "sagelab.training.runner", "sagelab.algorithms.xgboost.algorithm",
               "sagelab.algorithms.linear_learner.algorithm", "sagelab.transform.runner")
JOB_PRELOAD += ("sklearn.cluster", "sklearn.decomposition", "sklearn.neighbors", "sklearn.random_projection",
                "sagelab.algorithms.kmeans.algorithm", "sagelab.algorithms.pca.algorithm",
                "sagelab.algorithms.knn.algorithm")
#: SQLAlchemy imports a database's dialect on the first connection; every job connects to the metadata store.
JOB_PRELOAD += ("sqlite3", "sqlalchemy.dialects.sqlite")

#: What the engine's stand-by job process runs before it is handed a job (see compute/local.py).
JOB_WARMUP = "sagelab.compute.warmup:warm_job_process"

#: How often per-minute invocation metrics are written to the metadata store.
METRICS_FLUSH_SECONDS = 10.0


class Platform:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._db: Database | None = None
        self._engine: ComputeEngine | None = None
        self.credentials: Credentials | None = None
        self._stop_flushing: threading.Event | None = None
        self.account_id = ""

    # --- building blocks ------------------------------------------------------------------------------
    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.settings.resolved_database_url)
        return self._db

    @functools.cached_property
    def resources(self) -> ResourceStore:
        return ResourceStore(self.db)

    @functools.cached_property
    def blobs(self) -> BlobStore:
        if self.settings.lake_url and not self.settings.lake_url.startswith("file://"):
            raise NotImplementedError(f"lake_url {self.settings.lake_url!r}: only the local folder store exists yet.")
        root = Path(self.settings.lake_url.removeprefix("file://")) if self.settings.lake_url else self.home / "lake"
        return LocalBlobStore(root)

    @functools.cached_property
    def algorithms(self) -> AlgorithmRegistry:
        return AlgorithmRegistry(builtin_algorithms())

    @property
    def engine(self) -> ComputeEngine:
        if self._engine is None:
            self._engine = self._make_engine()
        return self._engine

    def _make_engine(self) -> ComputeEngine:
        if self.settings.engine == "inline":
            from sagelab.compute.inline import InlineEngine

            return InlineEngine()
        if self.settings.engine == "local":
            from sagelab.compute.local import LocalProcessEngine

            return LocalProcessEngine(self.settings.job_concurrency, preload=JOB_PRELOAD, warmup=JOB_WARMUP)
        raise ValueError(f"Unknown engine {self.settings.engine!r}: expected 'local' or 'inline'.")

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def work_dir(self) -> Path:
        return self.home / "work"

    # --- services -------------------------------------------------------------------------------------
    @functools.cached_property
    def training(self):  # -> TrainingService
        from sagelab.training.service import TrainingService

        return TrainingService(self)

    @functools.cached_property
    def models(self):  # -> ModelService
        from sagelab.hosting.models import ModelService

        return ModelService(self)

    @functools.cached_property
    def endpoint_configs(self):  # -> EndpointConfigService
        from sagelab.hosting.models import EndpointConfigService

        return EndpointConfigService(self)

    @functools.cached_property
    def transforms(self):  # -> TransformService
        from sagelab.transform.service import TransformService

        return TransformService(self)

    @functools.cached_property
    def processing(self):  # -> ProcessingService
        from sagelab.processing.service import ProcessingService

        return ProcessingService(self)

    @functools.cached_property
    def model_packages(self):  # -> ModelPackageService
        from sagelab.registry.packages import ModelPackageService

        return ModelPackageService(self)

    @functools.cached_property
    def endpoints(self):  # -> EndpointService
        from sagelab.hosting.endpoints import EndpointService

        return EndpointService(self)

    @functools.cached_property
    def fleet(self):  # -> Fleet
        from sagelab.hosting.fleet import Fleet

        return Fleet(self)

    @functools.cached_property
    def tuning(self):  # -> TuningService
        from sagelab.tuning.service import TuningService

        return TuningService(self)

    @functools.cached_property
    def invocation_metrics(self):  # -> InvocationMetrics
        from sagelab.hosting.invocation_metrics import InvocationMetrics

        return InvocationMetrics(self.db)

    @functools.cached_property
    def catalog(self):  # -> CatalogStore
        from sagelab.catalog.store import CatalogStore

        return CatalogStore(self.db, lambda: self.account_id)

    @functools.cached_property
    def crawlers(self):  # -> CrawlerService
        from sagelab.catalog.crawlers import CrawlerService

        return CrawlerService(self)

    @functools.cached_property
    def glue_jobs(self):  # -> GlueJobService
        from sagelab.glue.service import GlueJobService

        return GlueJobService(self)

    @functools.cached_property
    def athena(self):  # -> AthenaService
        from sagelab.athena.service import AthenaService

        return AthenaService(self)

    # --- life cycle -----------------------------------------------------------------------------------
    def open(self) -> Platform:
        """Prepare the home (database schema, credentials, account id). Safe to call in job processes."""
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        self.db.upgrade()
        self.account_id = self.resources.get_or_create_value("account_id", new_account_id)
        return self

    def attach(self) -> Platform:
        """For job processes: use a home the server has already prepared (no migrations, no writes)."""
        self.account_id = self.resources.get_or_create_value("account_id", new_account_id)
        return self

    def start_serving(self) -> None:
        """What only the server does: credentials, and settling jobs a previous server left running."""
        self.credentials = ensure_root_credentials(self.home, self.settings.root_access_key_id,
                                                   self.settings.root_secret_access_key)
        write_sdk_defaults(self.home, self.settings.region, self.account_id)
        self.training.recover()
        self.tuning.recover()
        self.transforms.recover()
        self.processing.recover()
        self.endpoints.recover()
        self.crawlers.recover()
        self.glue_jobs.recover()
        self.athena.recover()
        self._stop_flushing = threading.Event()
        threading.Thread(target=self._flush_metrics, name="metrics-flush", daemon=True).start()

    def _flush_metrics(self) -> None:
        while not self._stop_flushing.wait(METRICS_FLUSH_SECONDS):
            self.invocation_metrics.flush()

    def lookup_secret(self, access_key_id: str) -> str | None:
        if self.credentials and access_key_id == self.credentials.access_key_id:
            return self.credentials.secret_access_key
        return None

    def close(self) -> None:
        if self._stop_flushing is not None:
            self._stop_flushing.set()
            self._stop_flushing = None
            self.invocation_metrics.flush()
        if "tuning" in self.__dict__:
            self.tuning.close()  # before the engine: a driver must not launch trials on a closed engine
        if "fleet" in self.__dict__:
            self.fleet.close()
        if "athena" in self.__dict__:
            self.athena.close()
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._db is not None:
            self._db.close()
