"""What runs inside a training job's process: download, train, extract metrics, upload, complete.

Every write is fenced by the job's lease: once a job is stopped (or a restarted server has settled it),
this process can no longer change it. Failures are raised with SageMaker's prefixes ("ClientError:" for
bad input data, "AlgorithmError:" for the rest); the service records them as the FailureReason.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any, TextIO

from sagelab.algorithms.base import DataError, TrainingContext
from sagelab.errors import SagelabError
from sagelab.jobs.process import JobFailure, JobRun, run_in_job_process
from sagelab.storage.resources import LeaseLost
from sagelab.training import states
from sagelab.training.channels import materialize
from sagelab.training.metrics import extract_metrics, final_metric_list
from sagelab.training.service import TRAINING_JOB
from sagelab.training.spec import TrainingJobSpec, parse_training_job


def run_training_job(log: TextIO, *, settings: dict[str, Any], job_name: str, lease: str) -> None:
    run_in_job_process(log, settings, lambda parts: TrainingRun(parts, job_name, lease, log).run())


class TrainingRun(JobRun):
    kind = TRAINING_JOB

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
        shutil.rmtree(self.work_dir, ignore_errors=True)
        try:
            self._secondary("Downloading", TrainingStartTime=time.time())
            channels = self._download(spec)
            self._secondary("Training")
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
            self.log.flush()
            metrics = self._metrics(spec)
            self._secondary("Uploading")
            artifact = self._upload(spec, model_dir, output_dir)
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)

        def complete(res) -> None:
            res.doc["ModelArtifacts"] = {"S3ModelArtifacts": artifact}
            res.doc["FinalMetricDataList"] = final_metric_list(metrics)
            states.finish(res, "Completed", "Completed")

        self._update(complete)

    def _download(self, spec: TrainingJobSpec):
        channels = {}
        defaults = {name: c.default_content_type for c in spec.algorithm.channels for name in (c.name, *c.aliases)}
        for config in spec.channels:
            try:
                channels[config.name] = materialize(self.parts.blobs, config, self.work_dir,
                                                    defaults.get(config.name, "application/octet-stream"))
            except DataError as exc:
                raise JobFailure(f"ClientError: {exc}") from exc
        return channels

    def _metrics(self, spec: TrainingJobSpec) -> dict[str, float]:
        log_path = TRAINING_JOB.log_path(self.parts.home.logs, self.job_name)
        if not log_path.exists():
            return {}
        with log_path.open(encoding="utf-8", errors="replace") as f:
            return extract_metrics(f, spec.metric_definitions)

    def _upload(self, spec: TrainingJobSpec, model_dir: Path, output_dir: Path) -> str:
        target = spec.output.join(self.job_name, "output", "model.tar.gz")
        self._put_tar(target.bucket, target.key, model_dir)
        if any(output_dir.iterdir()):
            out = spec.output.join(self.job_name, "output", "output.tar.gz")
            self._put_tar(out.bucket, out.key, output_dir)
        return str(target)

    def _put_tar(self, bucket: str, key: str, folder: Path) -> None:
        buffer = io.BytesIO()
        # Model files are already compact binary formats; fast compression keeps uploads cheap.
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
        try:
            self.parts.blobs.put(bucket, key, [buffer.getvalue()], content_type="application/x-tar")
        except SagelabError as exc:
            raise JobFailure(f"ClientError: cannot write the model artifact to s3://{bucket}/{key}: "
                             f"{exc.message}") from exc
