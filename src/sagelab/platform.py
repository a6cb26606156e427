"""The composition root: builds every part of the server from `Settings`, once, and holds them.

Nothing is created at import time. `Platform(settings)` only stores the settings; `open()` creates the
home folder, migrates the database and reads the account; each service is built on first use from the
narrow parts it needs, and this is the only module that knows them all. Job processes and serving
instances never build a `Platform`: they attach with `sagelab.process_parts`.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.account import Account, HomePaths
from sagelab.algorithms.registry import AlgorithmRegistry
from sagelab.client_setup import write_sdk_defaults
from sagelab.compute.engine import ComputeEngine
from sagelab.lake.blobs import BlobStore, open_blob_store
from sagelab.process_parts import algorithm_registry, read_account
from sagelab.security.credentials import Credentials, ensure_root_credentials
from sagelab.settings import Settings
from sagelab.storage.db import Database
from sagelab.storage.presence import ServerPresence
from sagelab.storage.resources import ResourceStore

if TYPE_CHECKING:
    from sagelab.analytics.service import AnalyticsService
    from sagelab.athena.service import AthenaService
    from sagelab.autoscaling.controller import ScalingController
    from sagelab.autoscaling.service import ScalingService
    from sagelab.catalog.crawlers import CrawlerService
    from sagelab.catalog.store import CatalogStore
    from sagelab.cloudtrail.history import EventHistory, HistoryWriter
    from sagelab.cloudtrail.recorder import Recorder
    from sagelab.cloudtrail.trails import TrailService
    from sagelab.dms.endpoints import EndpointService as DmsEndpointService
    from sagelab.dms.tasks import ReplicationTaskService
    from sagelab.firehose.service import DeliveryStreamService
    from sagelab.glue.service import GlueJobService
    from sagelab.hosting.async_inference import AsyncInferenceService
    from sagelab.hosting.capture import DataCapture
    from sagelab.hosting.endpoints import EndpointService
    from sagelab.hosting.fleet import Fleet
    from sagelab.hosting.instance_metrics import InstanceMetrics
    from sagelab.hosting.invocation_metrics import InvocationMetrics
    from sagelab.hosting.models import EndpointConfigService, ModelService
    from sagelab.iam.authorizer import Authorizer
    from sagelab.iam.directory import IamDirectory
    from sagelab.iam.sessions import SessionStore
    from sagelab.jobs.takeover import TakeoverWatch
    from sagelab.kms.envelope import LakeKeys
    from sagelab.kms.service import KmsService
    from sagelab.lake.bucket_policies import BucketPolicies
    from sagelab.lake.lifecycle import LifecycleScheduler
    from sagelab.lakeformation.service import LakeFormationService
    from sagelab.model_monitor.definitions import DataQualityDefinitions
    from sagelab.model_monitor.schedules import MonitoringSchedules
    from sagelab.monitoring.alarms import AlarmService
    from sagelab.monitoring.metrics import MetricStore
    from sagelab.pipelines.service import PipelineService
    from sagelab.processing.service import ProcessingService
    from sagelab.registry.packages import ModelPackageService
    from sagelab.streams.service import StreamService
    from sagelab.training.service import TrainingService
    from sagelab.transform.service import TransformService
    from sagelab.tuning.service import TuningService

#: Libraries the job forkserver imports once, so each job process starts warm.
JOB_PRELOAD = ("numpy", "pyarrow", "pyarrow.csv", "pyarrow.parquet", "scipy.sparse", "sklearn", "sklearn.metrics",
               "xgboost", "sagelab.process_parts", "sagelab.training.runner", "sagelab.algorithms.xgboost.algorithm",
               "sagelab.algorithms.linear_learner.algorithm", "sagelab.transform.runner")
JOB_PRELOAD += ("sklearn.cluster", "sklearn.decomposition", "sklearn.neighbors", "sklearn.random_projection",
                "sagelab.algorithms.kmeans.algorithm", "sagelab.algorithms.pca.algorithm",
                "sagelab.algorithms.knn.algorithm")
#: SQLAlchemy imports a database's dialect on the first connection; every job connects to the metadata store.
JOB_PRELOAD += ("sqlite3", "sqlalchemy.dialects.sqlite")

#: What the engine's stand-by job process runs before it is handed a job (see compute/local.py).
JOB_WARMUP = "sagelab.process_parts:warm_job_process"

#: How often per-minute invocation metrics are written to the metadata store.
METRICS_FLUSH_SECONDS = 10.0


class Platform:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.home = HomePaths(settings.home)
        self._db: Database | None = None
        self._engine: ComputeEngine | None = None
        self._account: Account | None = None
        self.credentials: Credentials | None = None
        self._stop_flushing: threading.Event | None = None

    # --- building blocks ------------------------------------------------------------------------------
    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.settings.resolved_database_url)
        return self._db

    @functools.cached_property
    def presence(self) -> ServerPresence:
        return ServerPresence(self.db)

    @functools.cached_property
    def resources(self) -> ResourceStore:
        return ResourceStore(self.db)

    @functools.cached_property
    def blobs(self) -> BlobStore:
        return open_blob_store(self.settings, self.lake_keys)

    @functools.cached_property
    def kms(self) -> KmsService:
        from sagelab.kms.master import MasterKey
        from sagelab.kms.service import KmsService

        return KmsService(resources=self.resources, account=self.account, master=MasterKey(self.home.root / "kms"))

    @functools.cached_property
    def lake_keys(self) -> LakeKeys:
        from sagelab.kms.envelope import LakeKeys

        return LakeKeys(lambda: self.kms)

    @functools.cached_property
    def algorithms(self) -> AlgorithmRegistry:
        return algorithm_registry()

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
        if (address := self._ray_address()) is not None:
            from sagelab.compute.ray_engine import RayEngine

            return RayEngine(address, num_cpus=self.settings.job_concurrency, preload=JOB_PRELOAD)
        raise ValueError(f"Unknown engine {self.settings.engine!r}: expected 'local', 'inline', 'ray' or "
                         "'ray://host:port'.")

    def _make_serving_engine(self) -> ComputeEngine:
        # Instances are long-lived and must never queue behind jobs: no concurrency limit, no stand-by.
        if self._ray_address() is not None:
            from sagelab.compute.ray_engine import RayEngine

            # On the jobs' Ray, which the jobs' engine starts (or joins) and so shuts down last, at close.
            self.engine  # noqa: B018 - built for its side effect: Ray initialised by the engine that owns it
            return RayEngine(max_concurrency=10_000, preload=JOB_PRELOAD, cpus_per_task=0)
        from sagelab.compute.local import LocalProcessEngine

        return LocalProcessEngine(max_concurrency=10_000, preload=JOB_PRELOAD)

    def _ray_address(self) -> str | None:
        """Where the `ray` engines run: "local", a `ray://` cluster, or None for the other engines."""
        engine = self.settings.engine
        return "local" if engine == "ray" else engine if engine.startswith("ray://") else None

    @property
    def account(self) -> Account:
        if self._account is None:
            raise RuntimeError("the platform is not open yet: call open() before using its services")
        return self._account

    @property
    def account_id(self) -> str:
        return self.account.id

    @property
    def logs_dir(self) -> Path:
        return self.home.logs

    def _job_parts(self) -> dict[str, Any]:
        """What every SageMaker job service is built from."""
        return {"resources": self.resources, "engine": self.engine, "account": self.account, "home": self.home,
                "settings": self.settings}

    # --- services -------------------------------------------------------------------------------------
    @functools.cached_property
    def training(self) -> TrainingService:
        from sagelab.training.service import TrainingService

        return TrainingService(algorithms=self.algorithms, **self._job_parts())

    @functools.cached_property
    def transforms(self) -> TransformService:
        from sagelab.transform.service import TransformService

        return TransformService(models=self.models, **self._job_parts())

    @functools.cached_property
    def processing(self) -> ProcessingService:
        from sagelab.processing.service import ProcessingService

        return ProcessingService(**self._job_parts())

    @functools.cached_property
    def model_packages(self) -> ModelPackageService:
        from sagelab.registry.packages import ModelPackageService

        return ModelPackageService(resources=self.resources, account=self.account, algorithms=self.algorithms,
                                   blobs=self.blobs)

    @functools.cached_property
    def models(self) -> ModelService:
        from sagelab.hosting.models import ModelService

        return ModelService(resources=self.resources, account=self.account, algorithms=self.algorithms,
                            blobs=self.blobs, expand_containers=self.model_packages.expand_model_containers)

    @functools.cached_property
    def endpoint_configs(self) -> EndpointConfigService:
        from sagelab.hosting.models import EndpointConfigService

        return EndpointConfigService(resources=self.resources, account=self.account, models=self.models)

    @functools.cached_property
    def fleet(self) -> Fleet:
        from sagelab.hosting.fleet import Fleet

        return Fleet(make_engine=self._make_serving_engine, home=self.home, settings=self.settings,
                     invocation_metrics=self.invocation_metrics,
                     on_ready=lambda instance, seconds: self.instance_metrics.model_setup_time(instance, seconds))

    @functools.cached_property
    def instance_metrics(self) -> InstanceMetrics:
        from sagelab.hosting.instance_metrics import InstanceMetrics

        return InstanceMetrics(fleet=self.fleet, record=self.metrics.record,
                               period=self.settings.endpoint_metric_period_seconds, disk_path=self.home.work)

    @functools.cached_property
    def endpoints(self) -> EndpointService:
        from sagelab.hosting.endpoints import EndpointService

        return EndpointService(resources=self.resources, account=self.account,
                               endpoint_configs=self.endpoint_configs, fleet=self.fleet,
                               capture=self.data_capture)

    @functools.cached_property
    def data_capture(self) -> DataCapture:
        from sagelab.hosting.capture import DataCapture

        return DataCapture(blobs=self.blobs, flush_seconds=self.settings.capture_flush_seconds)

    @functools.cached_property
    def async_inference(self) -> AsyncInferenceService:
        from sagelab.hosting.async_inference import AsyncInferenceService

        return AsyncInferenceService(resources=self.resources, blobs=self.blobs, fleet=self.fleet, db=self.db,
                                     invocation_metrics=self.invocation_metrics)

    @functools.cached_property
    def tuning(self) -> TuningService:
        from sagelab.tuning.service import TuningService

        return TuningService(resources=self.resources, account=self.account, algorithms=self.algorithms,
                             training=self.training)

    @functools.cached_property
    def pipelines(self) -> PipelineService:
        from sagelab.pipelines.service import PipelineService
        from sagelab.pipelines.steps import StepServices

        steps = StepServices(processing=self.processing, training=self.training, tuning=self.tuning,
                             transforms=self.transforms, models=self.models, model_packages=self.model_packages)
        return PipelineService(resources=self.resources, account=self.account, blobs=self.blobs, services=steps)

    @functools.cached_property
    def data_quality_definitions(self) -> DataQualityDefinitions:
        from sagelab.model_monitor.definitions import DataQualityDefinitions

        return DataQualityDefinitions(resources=self.resources, account=self.account)

    @functools.cached_property
    def monitoring_schedules(self) -> MonitoringSchedules:
        from sagelab.model_monitor.schedules import MonitoringSchedules

        return MonitoringSchedules(resources=self.resources, account=self.account,
                                   definitions=self.data_quality_definitions, processing=self.processing,
                                   hour_seconds=self.settings.monitoring_hour_seconds)

    @functools.cached_property
    def invocation_metrics(self) -> InvocationMetrics:
        from sagelab.hosting.invocation_metrics import InvocationMetrics

        return InvocationMetrics(self.db, period=self.settings.endpoint_metric_period_seconds,
                                 serving=lambda: self.fleet.serving() if "fleet" in self.__dict__ else ())

    @functools.cached_property
    def metrics(self) -> MetricStore:
        from sagelab.monitoring.metrics import MetricStore

        return MetricStore(self.db)

    @functools.cached_property
    def alarms(self) -> AlarmService:
        from sagelab.monitoring.alarms import AlarmService

        return AlarmService(resources=self.resources, db=self.db, metrics=self.metrics, account=self.account,
                            evaluation_seconds=self.settings.alarm_evaluation_seconds,
                            perform=lambda action, alarm: self.scaling_controller.notify(action, alarm))

    @functools.cached_property
    def scaling(self) -> ScalingService:
        from sagelab.autoscaling.service import ScalingService

        def endpoint_doc(name: str) -> dict[str, Any] | None:
            res = self.resources.get("endpoint", name)
            return None if res is None else res.doc

        return ScalingService(resources=self.resources, account=self.account, endpoint_doc=endpoint_doc,
                              update_capacity=self.endpoints.update_weights,
                              put_alarm=lambda alarm, region: self.alarms.put(alarm, region, managed=True),
                              delete_alarms=self.alarms.delete,
                              alarm_period=self.settings.endpoint_metric_period_seconds)

    @functools.cached_property
    def scaling_controller(self) -> ScalingController:
        from sagelab.autoscaling.controller import ScalingController

        return ScalingController(self.scaling, tick_seconds=min(1.0, self.settings.alarm_evaluation_seconds))

    @functools.cached_property
    def lifecycle(self) -> LifecycleScheduler:
        from sagelab.lake.lifecycle import LifecycleScheduler

        return LifecycleScheduler(blobs=self.blobs, day_seconds=self.settings.lifecycle_day_seconds,
                                  scan_seconds=self.settings.lifecycle_scan_seconds)

    @functools.cached_property
    def catalog(self) -> CatalogStore:
        from sagelab.catalog.store import CatalogStore

        return CatalogStore(self.db, lambda: self.account.id)

    @functools.cached_property
    def crawlers(self) -> CrawlerService:
        from sagelab.catalog.crawlers import CrawlerService

        return CrawlerService(resources=self.resources, account=self.account, home=self.home, blobs=self.blobs,
                              catalog=self.catalog)

    @functools.cached_property
    def glue_jobs(self) -> GlueJobService:
        from sagelab.glue.service import GlueJobService

        return GlueJobService(**self._job_parts())

    @functools.cached_property
    def athena(self) -> AthenaService:
        from sagelab.athena.service import AthenaService

        return AthenaService(resources=self.resources, account=self.account, blobs=self.blobs, catalog=self.catalog)

    @functools.cached_property
    def lakeformation(self) -> LakeFormationService:
        from sagelab.lakeformation.service import LakeFormationService

        return LakeFormationService(resources=self.resources, account=self.account, catalog=self.catalog)

    @functools.cached_property
    def streams(self) -> StreamService:
        from sagelab.streams.service import StreamService, random_key

        return StreamService(resources=self.resources, account=self.account, home=self.home,
                             iterator_key=lambda: bytes.fromhex(self.resources.get_or_create_value(
                                 "kinesis.iterator-key", lambda: random_key().hex())),
                             shard_write_limits=self.settings.kinesis_shard_limits)

    @functools.cached_property
    def firehose(self) -> DeliveryStreamService:
        from sagelab.firehose.service import DeliveryStreamService

        return DeliveryStreamService(resources=self.resources, account=self.account, home=self.home,
                                     blobs=self.blobs, catalog=self.catalog, streams=self.streams)

    @functools.cached_property
    def analytics(self) -> AnalyticsService:
        from sagelab.analytics.service import AnalyticsService

        return AnalyticsService(resources=self.resources, account=self.account, streams=self.streams,
                                firehose=self.firehose)

    @functools.cached_property
    def dms_endpoints(self) -> DmsEndpointService:
        from sagelab.dms.endpoints import EndpointService
        from sagelab.dms.passwords import EndpointPasswords

        return EndpointService(resources=self.resources, account=self.account, blobs=self.blobs,
                               passwords=EndpointPasswords(lambda: self.kms))

    @functools.cached_property
    def dms_tasks(self) -> ReplicationTaskService:
        from sagelab.dms.tasks import ReplicationTaskService

        return ReplicationTaskService(resources=self.resources, account=self.account, blobs=self.blobs,
                                      endpoints=self.dms_endpoints)

    @functools.cached_property
    def iam(self) -> IamDirectory:
        from sagelab.iam.directory import IamDirectory

        return IamDirectory(resources=self.resources, account=self.account)

    @functools.cached_property
    def sessions(self) -> SessionStore:
        from sagelab.iam.sessions import SessionStore

        return SessionStore(resources=self.resources, account=self.account)

    @functools.cached_property
    def bucket_policies(self) -> BucketPolicies:
        from sagelab.lake.bucket_policies import BucketPolicies

        return BucketPolicies(resources=self.resources)

    @functools.cached_property
    def authorizer(self) -> Authorizer:
        from sagelab.iam.authorizer import Authorizer

        root_key = self.credentials.access_key_id if self.credentials else ""
        return Authorizer(directory=self.iam, sessions=self.sessions, bucket_policies=self.bucket_policies,
                          account=self.account, root_access_key_id=root_key)

    @functools.cached_property
    def event_history(self) -> EventHistory:
        from sagelab.cloudtrail.history import EventHistory

        return EventHistory(self.db)

    @functools.cached_property
    def history_writer(self) -> HistoryWriter:
        from sagelab.cloudtrail.history import HistoryWriter

        return HistoryWriter(self.event_history)

    @functools.cached_property
    def trails(self) -> TrailService:
        from sagelab.cloudtrail.signing import DigestKey
        from sagelab.cloudtrail.trails import TrailService

        return TrailService(resources=self.resources, account=self.account, history=self.event_history,
                            blobs=self.blobs, key=DigestKey(self.home.root / "cloudtrail"),
                            delivery_seconds=self.settings.cloudtrail_delivery_seconds,
                            digest_seconds=self.settings.cloudtrail_digest_seconds)

    @functools.cached_property
    def recorder(self) -> Recorder:
        from sagelab.cloudtrail.recorder import Recorder

        return Recorder(writer=self.history_writer, wants_data_events=self.trails.wants_data_events)

    # --- life cycle -----------------------------------------------------------------------------------
    def open(self) -> Platform:
        """Prepare the home (database schema, account id); the services can be used from then on."""
        self.home.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home.root, 0o700)
        self.db.upgrade()
        self._account = read_account(self.resources, self.settings)
        return self

    def start_serving(self) -> None:
        """What only the server does: credentials, and settling jobs a previous server left running."""
        self.credentials = ensure_root_credentials(self.home.root, self.settings.root_access_key_id,
                                                   self.settings.root_secret_access_key)
        write_sdk_defaults(self.home.root, self.settings.region, self.account.id)
        with self.presence.arrival() as alone:
            self.resources.owner = self.presence.server_id  # the leases this server issues name it from now on
            if alone:  # no other server is up on this database: every active job was left behind
                self.recover_left_behind()
        if self.db.is_postgres:  # others may be up: whichever of them dies, its jobs are taken over
            self.takeover.start()
        # What each server serves itself, whoever else is up: alone, the endpoints it brings back; with others
        # up, those they serve (endpoints they are still creating or updating are theirs to finish).
        if alone:
            self.endpoints.recover()
        else:
            self.endpoints.sync_with_store()
        self.async_inference.recover()  # after the endpoints: its queue drains into their instances
        self.streams.recover()
        self.firehose.recover()
        self.trails.start()
        self.scaling_controller.start()  # before the alarms, whose scaling actions it takes
        self.alarms.start()
        self.instance_metrics.start()
        self.lifecycle.start()
        self.monitoring_schedules.start()
        self._stop_flushing = threading.Event()
        threading.Thread(target=self._flush_metrics, name="metrics-flush", daemon=True).start()

    def recover_left_behind(self) -> None:
        """Settle or take over the work a stopped server left active (jobs, runs, queries, drivers)."""
        self.take_over_from(None)
        self.sessions.purge_expired()

    def take_over_from(self, server_id: str | None) -> None:
        """Settle or resume the leased work the server `server_id` left (None: every server's), as a restart
        does: jobs end or are retried, tuning jobs and pipeline executions resume, runs, crawls and queries
        end, streaming applications and replication tasks start again, claimed async requests are requeued."""
        self.training.recover(server_id)
        self.tuning.recover(server_id)
        self.transforms.recover(server_id)
        self.processing.recover(server_id)
        self.crawlers.recover(server_id)
        self.glue_jobs.recover(server_id)
        self.athena.recover(server_id)
        self.analytics.recover(server_id)
        self.dms_tasks.recover(server_id)
        self.pipelines.recover(server_id)  # after the job services: a step whose job they settled runs again
        self.async_inference.requeue(server_id)

    @functools.cached_property
    def takeover(self) -> TakeoverWatch:
        from sagelab.analytics import service as analytics
        from sagelab.athena import service as athena
        from sagelab.catalog import crawlers
        from sagelab.dms import tasks as dms_tasks
        from sagelab.glue import states as glue_states
        from sagelab.hosting import async_inference
        from sagelab.jobs.kind import ACTIVE
        from sagelab.jobs.takeover import TakeoverWatch
        from sagelab.pipelines import states as pipeline_states
        from sagelab.tuning import states as tuning_states

        active = {service.kind.resource: ACTIVE for service in (self.training, self.transforms, self.processing)}
        active |= {tuning_states.KIND: tuning_states.ACTIVE, pipeline_states.EXECUTION: pipeline_states.ACTIVE,
                   crawlers.KIND: ("RUNNING", "STOPPING"), glue_states.RUN_KIND: glue_states.ACTIVE,
                   async_inference.KIND: (async_inference.IN_PROGRESS,), athena.QUERY_KIND: athena.ACTIVE_QUERY,
                   analytics.KIND: analytics.RUNNING, dms_tasks.TASK: dms_tasks.ACTIVE}
        return TakeoverWatch(presence=self.presence, resources=self.resources, active=active,
                             take_over=self.take_over_from, every=self.settings.takeover_scan_seconds,
                             each_scan=(self.endpoints.sync_with_store,))

    def _flush_metrics(self) -> None:
        # Twice a period when periods are scaled down, so that every period of a serving variant has a point.
        every = min(METRICS_FLUSH_SECONDS, self.settings.endpoint_metric_period_seconds / 2)
        while not self._stop_flushing.wait(every):
            self.invocation_metrics.flush()

    def lookup_secret(self, access_key_id: str) -> str | None:
        if self.credentials and access_key_id == self.credentials.access_key_id:
            return self.credentials.secret_access_key
        return self.authorizer.secret_for(access_key_id)

    def close(self) -> None:
        if "takeover" in self.__dict__:
            self.takeover.close()  # first: nothing is taken over by a server on its way out
        if "history_writer" in self.__dict__:
            self.history_writer.close()  # every recorded call is committed before the trails' last delivery
        if "trails" in self.__dict__:
            self.trails.close()
        if "alarms" in self.__dict__:
            self.alarms.close()
        if "scaling_controller" in self.__dict__:
            self.scaling_controller.close()  # after the alarms: no action arrives once it is gone
        if "instance_metrics" in self.__dict__:
            self.instance_metrics.close()
        if "lifecycle" in self.__dict__:
            self.lifecycle.close()
        if "monitoring_schedules" in self.__dict__:
            self.monitoring_schedules.close()  # before the engine: no execution starts on a closed engine
        if self._stop_flushing is not None:
            self._stop_flushing.set()
            self._stop_flushing = None
            self.invocation_metrics.flush()
        if "pipelines" in self.__dict__:
            self.pipelines.close()  # before tuning and the engine: a driver must not start steps on them
        if "tuning" in self.__dict__:
            self.tuning.close()  # before the engine: a driver must not launch trials on a closed engine
        if "async_inference" in self.__dict__:
            self.async_inference.close()  # before the fleet it sends requests to
        if "fleet" in self.__dict__:
            self.fleet.close()
        if "data_capture" in self.__dict__:
            self.data_capture.close()  # after the fleet: no invocation is captured once this flush ran
        if "athena" in self.__dict__:
            self.athena.close()
        if "analytics" in self.__dict__:
            self.analytics.close()  # before the streams and delivery streams it reads and writes
        if "firehose" in self.__dict__:
            self.firehose.close()  # before the streams it reads
        if "dms_tasks" in self.__dict__:
            self.dms_tasks.close()  # before the lake and the database its runs write to
        if "streams" in self.__dict__:
            self.streams.close()
        if "training" in self.__dict__:
            self.training.close()  # before the engine: spot jobs it ends are resumed by the next server
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if "presence" in self.__dict__:
            self.presence.leave()  # last: the next server to start alone settles what this one left
        if self._db is not None:
            self._db.close()
