"""What runs inside a training job's process: download, train, extract metrics, upload, complete.

With a CheckpointConfig, checkpoints are restored before training and synced while it runs
(`checkpoints`); a managed spot job also watches for its interruption (`spot`).

Every write is fenced by the job's lease: once a job is stopped (or a restarted server has settled it),
this process can no longer change it. Failures are raised with SageMaker's prefixes ("ClientError:" for
bad input data, "AlgorithmError:" for the rest); the service records them as the FailureReason.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any, TextIO

from sagelab.algorithms.base import DataError, TrainingContext
from sagelab.containers.paths import host_path
from sagelab.errors import SagelabError
from sagelab.iam.role_access import RoleAccess, RoleAccessDenied
from sagelab.jobs.process import JobFailure, JobRun, run_in_job_process
from sagelab.lake.encryption import Encryption, under_kms_key
from sagelab.monitoring.metrics import MetricStore
from sagelab.storage.resources import LeaseLost
from sagelab.training import spot, states
from sagelab.training.channels import materialize
from sagelab.training.checkpoints import CheckpointSync
from sagelab.training.metrics import TRAINING_NAMESPACE, cloudwatch_data, final_metric_list, metric_series
from sagelab.training.service import TRAINING_JOB
from sagelab.training.spec import TrainingJobSpec, parse_training_job


def run_training_job(log: TextIO, *, settings: dict[str, Any], job_name: str, lease: str) -> None:
    run_in_job_process(log, settings, lambda parts: TrainingRun(parts, job_name, lease, log).run())


class TrainingRun(JobRun):
    kind = TRAINING_JOB
    #: The job's role, when it is one of this server's: what the job may read and write.
    role: RoleAccess | None = None

    def _secondary(self, status: str, **fields: Any) -> None:
        def mutate(res) -> None:
            states.set_secondary(res.doc, status)
            res.doc.update(fields)

        self._update(mutate)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
        self.log.write(f"sagelab: {stamp} {status} - {states.MESSAGES[status]}\n")
        self.log.flush()

    def run(self) -> None:
        resource = self.parts.resources.get(states.KIND, self.job_name)
        spec = parse_training_job(resource.doc["_Request"], self.parts.algorithms)
        # The job acts as its role when the role is one of this server's (else it may read anything).
        self.role = RoleAccess.for_role(self.parts.resources, self.parts.account, resource.doc.get("RoleArn"))
        shutil.rmtree(self.work_dir, ignore_errors=True)
        checkpoints = self._checkpoints(spec)
        interruptions = self._interruptions(spec, resource.doc, checkpoints)
        try:
            self._secondary("Downloading", **self._attempt_times(resource.doc))
            if checkpoints is not None:
                restored = checkpoints.restore()
                if restored:
                    self._say(f"restored {restored} checkpoint file(s) from {checkpoints.uri}")
                checkpoints.start()
            if interruptions is not None:
                interruptions.start()
            channels = self._download(spec)
            self._secondary("Training")
            training_started = time.time()
            if interruptions is not None:
                interruptions.training_started()
            model_dir = self.work_dir / "model"
            output_dir = self.work_dir / "output" / "data"
            model_dir.mkdir(parents=True)
            output_dir.mkdir(parents=True)
            ctx = TrainingContext(hyperparameters=spec.hyperparameters, channels=channels, model_dir=model_dir,
                                  output_dir=output_dir, log=self.log, container_root=self.work_dir,
                                  job_name=self.job_name, request=resource.doc["_Request"],
                                  blobs=self.parts.blobs, cache_dir=self.parts.home.cache)
            try:
                spec.algorithm.train(ctx)
            except (DataError, SagelabError) as exc:
                raise JobFailure(f"ClientError: {exc}") from exc
            except LeaseLost:
                raise
            except Exception as exc:
                raise JobFailure(f"AlgorithmError: {type(exc).__name__}: {exc}") from exc
            finally:
                if interruptions is not None:
                    interruptions.stop()
                if checkpoints is not None:
                    checkpoints.stop()
            self.log.flush()
            metrics = self._metrics(spec, training_started)
            self._secondary("Uploading")
            artifact = self._upload(spec, model_dir, output_dir)
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)

        def complete(res) -> None:
            res.doc["ModelArtifacts"] = {"S3ModelArtifacts": artifact}
            res.doc["FinalMetricDataList"] = final_metric_list(metrics)
            states.finish(res, "Completed", "Completed")

        self._update(complete)

    @staticmethod
    def _attempt_times(doc: dict[str, Any]) -> dict[str, float]:
        """TrainingStartTime is the first attempt's; each attempt records when its own work began."""
        now = time.time()
        times = {spot.ATTEMPT_START: now}
        if doc.get("TrainingStartTime") is None:
            times["TrainingStartTime"] = now
        return times

    def _checkpoints(self, spec: TrainingJobSpec) -> CheckpointSync | None:
        if spec.checkpoint is None:
            return None
        folder = host_path(self.work_dir, spec.checkpoint.local_path)
        return CheckpointSync(self.parts.blobs, spec.checkpoint.uri, folder, self.log)

    def _interruptions(self, spec: TrainingJobSpec, doc: dict[str, Any],
                       checkpoints: CheckpointSync | None) -> spot.InterruptionWatch | None:
        if spec.spot is None:
            return None
        if os.getpgrp() != os.getpid():
            self._say("spot interruptions need the local engine (a process per job); this job cannot be "
                      "interrupted")
            return None
        after = self.parts.settings.spot_interruption_after_seconds
        first_attempt = int(doc.get(spot.ATTEMPT, 1)) == 1

        def is_requested() -> bool:
            res = self.parts.resources.get(states.KIND, self.job_name)
            return res is not None and bool(res.doc.get(spot.REQUESTED))

        def record(reason: str) -> None:
            def mutate(res) -> None:
                res.doc.pop(spot.REQUESTED, None)
                res.doc[spot.INTERRUPTED] = reason
                states.set_secondary(res.doc, "Interrupted", message=f"{states.MESSAGES['Interrupted']} "
                                                                     f"({reason})")

            self._update(mutate)
            self._say(f"Interrupted - {reason}; the job restarts from its last checkpoint")

        return spot.InterruptionWatch(
            is_requested=is_requested, after_seconds=after if after > 0 and first_attempt else None,
            before_exit=checkpoints.sync if checkpoints is not None else (lambda: None), record=record)

    def _download(self, spec: TrainingJobSpec):
        channels = {}
        defaults = {name: c.default_content_type for c in spec.algorithm.channels for name in (c.name, *c.aliases)}
        for config in spec.channels:
            try:
                if self.role is not None:
                    self.role.require_read(self.parts.blobs, config.uri)
                channels[config.name] = materialize(self.parts.blobs, config, self.work_dir,
                                                    defaults.get(config.name, "application/octet-stream"))
            except (DataError, RoleAccessDenied) as exc:
                raise JobFailure(f"ClientError: {exc}") from exc
        return channels

    def _metrics(self, spec: TrainingJobSpec, training_started: float) -> dict[str, float]:
        """The final value of each metric; every value is also published to CloudWatch, as SageMaker does."""
        log_path = TRAINING_JOB.log_path(self.parts.home.logs, self.job_name)
        if not log_path.exists():
            return {}
        with log_path.open(encoding="utf-8", errors="replace") as f:
            series = metric_series(f, spec.metric_definitions)
        if series:
            data = cloudwatch_data(self.job_name, series, training_started, time.time())
            try:
                MetricStore(self.parts.db).record(TRAINING_NAMESPACE, data)
            except SagelabError as refused:  # a value CloudWatch cannot hold costs the metric, not the job
                self._say(f"metrics not published to CloudWatch: {refused.message}")
        return dict(series)

    def _upload(self, spec: TrainingJobSpec, model_dir: Path, output_dir: Path) -> str:
        target = spec.output.join(self.job_name, "output", "model.tar.gz")
        if self.role is not None:
            try:
                self.role.require_write(target)
            except RoleAccessDenied as exc:
                raise JobFailure(f"ClientError: {exc}") from exc
        encryption = under_kms_key(spec.output_kms_key_id)
        self._put_tar(target.bucket, target.key, model_dir, encryption)
        if any(output_dir.iterdir()):
            out = spec.output.join(self.job_name, "output", "output.tar.gz")
            self._put_tar(out.bucket, out.key, output_dir, encryption)
        return str(target)

    def _put_tar(self, bucket: str, key: str, folder: Path, encryption: Encryption | None) -> None:
        buffer = io.BytesIO()
        # Model files are already compact binary formats; fast compression keeps uploads cheap.
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
        try:
            self.parts.blobs.put(bucket, key, [buffer.getvalue()], content_type="application/x-tar",
                                 encryption=encryption)
        except SagelabError as exc:
            raise JobFailure(f"ClientError: cannot write the model artifact to s3://{bucket}/{key}: "
                             f"{exc.message}") from exc
