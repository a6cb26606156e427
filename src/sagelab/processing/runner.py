"""What runs inside a processing job's process: copy the inputs in, run the script or built-in, upload the
outputs, complete.

The job gets a folder standing in for the container's `/opt/ml` (see `sagelab.containers`). A user script runs
as a child process of the job process, with the same Python (so numpy, pandas and scikit-learn import), the
job's Environment, and its stdout and stderr in the job's log; a non-zero exit fails the job with the last
lines of its stderr. A built-in image runs in this process. Every write to the job's document is fenced by
its lease: once the job is stopped (or a restarted server has settled it), this process cannot change it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, TextIO

from sagelab.algorithms.base import DataError
from sagelab.compute.engine import resolve_target
from sagelab.containers import paths as container_paths
from sagelab.containers import user_process
from sagelab.errors import SagelabError
from sagelab.iam.role_access import RoleAccess, RoleAccessDenied
from sagelab.jobs.process import JobFailure, JobRun, run_in_job_process
from sagelab.process_parts import ProcessParts
from sagelab.processing import framework_bundle, states
from sagelab.processing.builtin import ProcessingContext
from sagelab.processing.service import PROCESSING_JOB
from sagelab.processing.spec import BASH_SCRIPT, ProcessingJobSpec, parse_processing_job
from sagelab.processing.transfer import download_input, upload_output
from sagelab.storage.resources import LeaseLost

#: Where a container may leave a message for DescribeProcessingJob's ExitMessage.
EXIT_MESSAGE_FILE = "/opt/ml/output/message"


def run_processing_job(log: TextIO, *, settings: dict[str, Any], job_name: str, lease: str) -> None:
    run_in_job_process(log, settings, lambda parts: ProcessingRun(parts, job_name, lease, log).run())


class ProcessingRun(JobRun):
    kind = PROCESSING_JOB

    def __init__(self, parts: ProcessParts, job_name: str, lease: str, log: TextIO):
        super().__init__(parts, job_name, lease, log)
        #: The folder standing in for the container's /opt/ml.
        self.root = self.work_dir / "opt-ml"

    def local(self, container_path: str) -> Path:
        return container_paths.host_path(self.root, container_path)

    def run(self) -> None:
        resource = self.parts.resources.get(states.KIND, self.job_name)
        request = resource.doc["_Request"]
        spec = parse_processing_job(request)
        # The job acts as its role when the role is one of this server's (else it may read anything).
        self.role = RoleAccess.for_role(self.parts.resources, self.parts.account, request.get("RoleArn"))
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self._update(states.start)
        try:
            self._prepare(spec, request)
            if spec.builtin:
                self._run_builtin(spec)
            else:
                self._run_script(spec)
            exit_message = self._exit_message()
            self._check_lease()
            self._upload(spec)
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        self._update(lambda res: states.finish(res, "Completed", exit_message=exit_message))
        self._say("Completed")

    # --- before -----------------------------------------------------------------------------------------
    def _prepare(self, spec: ProcessingJobSpec, request: dict[str, Any]) -> None:
        self.root.mkdir(parents=True)
        for item in spec.inputs:
            if item.app_managed:
                continue
            try:
                if self.role is not None:
                    self.role.require_read(self.parts.blobs, item.uri)
                count = download_input(self.parts.blobs, item, self.local(item.local_path))
            except (DataError, RoleAccessDenied) as exc:
                raise JobFailure(f"ClientError: {exc}") from exc
            self._say(f"Input {item.name}: {count} object(s) from {item.uri} at {item.local_path}")
        for item in spec.outputs:
            self.local(item.local_path).mkdir(parents=True, exist_ok=True)
        (self.root / "output").mkdir(exist_ok=True)
        # The files SageMaker gives every processing container.
        config = self.root / "config"
        config.mkdir()
        (config / "processingjobconfig.json").write_text(json.dumps(request, indent=2, default=str))
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))

    def _environment(self, spec: ProcessingJobSpec) -> dict[str, str]:
        env = user_process.base_environment(
            {k: container_paths.rewrite_argument(self.root, v) for k, v in spec.environment.items()})
        env.update({"SAGELAB_OPT_ML": str(self.root), "SAGELAB_PROCESSING_JOB_NAME": self.job_name})
        for item in spec.inputs:
            if item.local_path:
                env[f"SAGELAB_INPUT_{container_paths.env_name(item.name)}"] = str(self.local(item.local_path))
        for item in spec.outputs:
            env[f"SAGELAB_OUTPUT_{container_paths.env_name(item.name)}"] = str(self.local(item.local_path))
        return env

    # --- the work ----------------------------------------------------------------------------------------
    def _run_script(self, spec: ProcessingJobSpec) -> None:
        python, cwd = None, self.work_dir
        if spec.command[0] == BASH_SCRIPT:
            python, cwd, spec = self._framework_bundle(spec)
        command = [container_paths.rewrite_argument(self.root, a) for a in (*spec.command, *spec.arguments)]
        if command[0] not in ("-m", "-c") and not Path(command[0]).is_file():
            raise JobFailure(f"ClientError: the entrypoint script {spec.command[0]} does not exist: no "
                             "ProcessingInput provided it (upload the script and add an input whose "
                             "LocalPath contains it).")
        self._say(f"Running {' '.join(['python3', *spec.command, *spec.arguments])}")
        ended = user_process.run(self.root, command, cwd=cwd, env=self._environment(spec), log=self.log,
                                 python=python)
        if ended.code != 0:
            raise JobFailure(f"AlgorithmError: the processing script {ended.how}." +
                             (f" Last lines of its stderr:\n{ended.stderr_tail}" if ended.stderr_tail
                              else " It wrote nothing to stderr."))

    def _framework_bundle(self, spec: ProcessingJobSpec) -> tuple[str | None, Path, ProcessingJobSpec]:
        """Follow the SDK's runproc.sh: the interpreter, working folder and spec of the script it runs."""
        runproc = self.local(spec.command[1])
        if not runproc.is_file():
            raise JobFailure(f"ClientError: the entrypoint script {spec.command[1]} does not exist: no "
                             "ProcessingInput provided it.")
        try:
            bundle = framework_bundle.read_runproc(runproc.read_text(errors="replace"), spec.command[1])
            python = framework_bundle.prepare(self.local(bundle.code_dir), self.parts.home.cache / "requirements",
                                              self.log)
        except framework_bundle.BundleError as exc:
            failure = "AlgorithmError" if str(exc).startswith("InstallRequirementsError") else "ClientError"
            raise JobFailure(f"{failure}: {exc}") from exc
        script = f"{bundle.code_dir}/{bundle.script}"
        return python, self.local(bundle.code_dir), dataclasses.replace(spec, command=(script,))

    def _run_builtin(self, spec: ProcessingJobSpec) -> None:
        scratch = self.work_dir / "scratch"
        scratch.mkdir()
        ctx = ProcessingContext(
            job_name=self.job_name,
            inputs={i.name: self.local(i.local_path) for i in spec.inputs if i.local_path},
            input_uris={i.name: str(i.uri) for i in spec.inputs},
            outputs={o.name: self.local(o.local_path) for o in spec.outputs},
            environment=dict(spec.environment), arguments=list(spec.arguments), work_dir=scratch, log=self.log,
            parts=self.parts, opt_ml=self.root)
        self._say(f"Running the built-in image {spec.image} ({spec.builtin})")
        try:
            resolve_target(spec.builtin)(ctx)
        except LeaseLost:
            raise
        except (DataError, SagelabError) as exc:
            raise JobFailure(f"ClientError: {exc}") from exc
        except Exception as exc:
            raise JobFailure(f"AlgorithmError: {type(exc).__name__}: {exc}") from exc
        finally:
            self.log.flush()

    # --- after ---------------------------------------------------------------------------------------------
    def _exit_message(self) -> str | None:
        path = self.local(EXIT_MESSAGE_FILE)
        if not path.is_file():
            return None
        return path.read_text(errors="replace").strip() or None

    def _upload(self, spec: ProcessingJobSpec) -> None:
        for item in spec.outputs:
            folder = self.local(item.local_path)
            try:
                if self.role is not None:
                    for path in sorted(folder.rglob("*")):
                        if path.is_file():
                            self.role.require_write(item.uri.join(*path.relative_to(folder).parts))
                written = upload_output(self.parts.blobs, item, folder)
            except (DataError, RoleAccessDenied) as exc:
                raise JobFailure(f"ClientError: {exc}") from exc
            self._say(f"Output {item.name}: {len(written)} file(s) uploaded to {item.uri}")
