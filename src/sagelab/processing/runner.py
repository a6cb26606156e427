"""What runs inside a processing job's process: copy the inputs in, run the script or built-in, upload the
outputs, complete.

The job gets a folder standing in for the container's `/opt/ml` (see `container_paths`). A user script runs
as a child process of the job process, with the same Python (so numpy, pandas and scikit-learn import), the
job's Environment, and its stdout and stderr in the job's log; a non-zero exit fails the job with the last
lines of its stderr. A built-in image runs in this process. Every write to the job's document is fenced by
its lease: once the job is stopped (or a restarted server has settled it), this process cannot change it.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

import sagelab
from sagelab.algorithms.base import DataError
from sagelab.compute.engine import resolve_target
from sagelab.errors import SagelabError
from sagelab.iam.role_access import RoleAccess, RoleAccessDenied
from sagelab.jobs.process import JobFailure, JobRun, run_in_job_process
from sagelab.process_parts import ProcessParts
from sagelab.processing import container_paths, states
from sagelab.processing.builtin import ProcessingContext
from sagelab.processing.service import PROCESSING_JOB
from sagelab.processing.spec import ProcessingJobSpec, parse_processing_job
from sagelab.processing.transfer import download_input, upload_output
from sagelab.storage.resources import LeaseLost

#: Lines of the script's stderr kept for the FailureReason.
STDERR_TAIL_LINES = 12
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
        # The server's own SAGELAB_* settings (root credentials among them) are not the script's business.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAGELAB_")}
        env.update({k: container_paths.rewrite_argument(self.root, v) for k, v in spec.environment.items()})
        # The script runs in its own folder: relative import paths (PYTHONPATH=src) must not lose their way.
        import_paths = [str(Path(sagelab.__file__).resolve().parent.parent)]
        import_paths += [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(import_paths))
        env.update({"PYTHONUNBUFFERED": "1", "SAGELAB_OPT_ML": str(self.root),
                    "SAGELAB_PROCESSING_JOB_NAME": self.job_name})
        for item in spec.inputs:
            if item.local_path:
                env[f"SAGELAB_INPUT_{container_paths.env_name(item.name)}"] = str(self.local(item.local_path))
        for item in spec.outputs:
            env[f"SAGELAB_OUTPUT_{container_paths.env_name(item.name)}"] = str(self.local(item.local_path))
        return env

    # --- the work ----------------------------------------------------------------------------------------
    def _run_script(self, spec: ProcessingJobSpec) -> None:
        command = [container_paths.rewrite_argument(self.root, a) for a in (*spec.command, *spec.arguments)]
        if command[0] not in ("-m", "-c") and not Path(command[0]).is_file():
            raise JobFailure(f"ClientError: the entrypoint script {spec.command[0]} does not exist: no "
                             "ProcessingInput provided it (upload the script and add an input whose "
                             "LocalPath contains it).")
        self._say(f"Running {' '.join(['python3', *spec.command, *spec.arguments])}")
        self.log.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", "sagelab.processing.launcher", str(self.root), *command],
            cwd=self.work_dir, env=self._environment(spec), stdin=subprocess.DEVNULL, stdout=None,
            stderr=subprocess.PIPE)
        tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        reader = threading.Thread(target=self._tee, args=(process.stderr, tail), name="stderr-tee", daemon=True)
        reader.start()
        code = process.wait()
        reader.join()
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            last = "".join(tail).rstrip()
            raise JobFailure(f"AlgorithmError: the processing script {how}." +
                             (f" Last lines of its stderr:\n{last}" if last else " It wrote nothing to stderr."))

    def _tee(self, stream, tail: collections.deque[str]) -> None:
        """Copy the script's stderr into the job log, keeping its last lines for the FailureReason."""
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            tail.append(line)
            self.log.write(line)
            self.log.flush()
        stream.close()

    def _run_builtin(self, spec: ProcessingJobSpec) -> None:
        scratch = self.work_dir / "scratch"
        scratch.mkdir()
        ctx = ProcessingContext(
            job_name=self.job_name,
            inputs={i.name: self.local(i.local_path) for i in spec.inputs if i.local_path},
            input_uris={i.name: str(i.uri) for i in spec.inputs},
            outputs={o.name: self.local(o.local_path) for o in spec.outputs},
            environment=dict(spec.environment), arguments=list(spec.arguments), work_dir=scratch, log=self.log,
            parts=self.parts)
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
