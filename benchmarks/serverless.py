"""Serverless cold start against a warm invoke, and a warm serverless invoke against a real-time endpoint.

Run: .venv/bin/python benchmarks/serverless.py [--rounds 3] [--warm 20]

One small XGBoost booster (3 features, depth 2, 5 rounds) is written as model.tar.gz and deployed twice on
one sagelab server started with `serverless_idle_seconds=1`: as a serverless endpoint (2048 MB,
MaxConcurrency 5) and as a real-time endpoint (1 instance). Each round waits until the serverless variant has
scaled to zero (its instance process is gone), times one InvokeEndpoint (the cold start: an instance process
starts, loads the model and answers), then `--warm` invokes in a row on each endpoint, alternating. After the
rounds the server is stopped (metrics flush) and ModelSetupTime, the cold-start share SageMaker publishes, is
read from the database. Printed: median cold and warm latencies, cold/warm, and serverless-warm/real-time.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import xgboost as xgb

from sagelab.embedded import ServerProcess
from sagelab.hosting.invocation_metrics import InvocationMetrics
from sagelab.storage.db import Database

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::000000000000:role/bench"
BODY = "0.5,-1.0,2.0"


def model_tar() -> bytes:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(x, label=x[:, 0] > 0), 5)
    raw = bytes(booster.save_raw("json"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def live_instances(home: Path, endpoint: str) -> int:
    logs_dir = str(home / "logs" / "Endpoints" / endpoint)
    count = 0
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            count += any(os.readlink(fd).startswith(logs_dir) for fd in fd_dir.iterdir())
        except OSError:
            continue
    return count


def timed(rt, endpoint: str) -> float:
    started = time.perf_counter()
    rt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=BODY)["Body"].read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="sagelab-bench-serverless-")) / "home"
    cold, warm_serverless, warm_realtime = [], [], []
    with ServerProcess(home, env={"SAGELAB_SERVERLESS_IDLE_SECONDS": "1"}) as server:
        s3, sm, rt = server.client("s3"), server.client("sagemaker"), server.client("sagemaker-runtime")
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="model.tar.gz", Body=model_tar())
        sm.create_model(ModelName="m", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bench/model.tar.gz"})
        sm.create_endpoint_config(EndpointConfigName="serverless", ProductionVariants=[
            {"VariantName": "v", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}])
        sm.create_endpoint_config(EndpointConfigName="realtime", ProductionVariants=[
            {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        for name in ("serverless", "realtime"):
            sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
            sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        timed(rt, "realtime")
        for _ in range(args.rounds):
            deadline = time.monotonic() + 60
            while live_instances(home, "serverless"):
                if time.monotonic() > deadline:
                    sys.exit("the serverless instance never scaled to zero")
                time.sleep(0.1)
            cold.append(timed(rt, "serverless"))
            for _ in range(args.warm):
                warm_serverless.append(timed(rt, "serverless"))
                warm_realtime.append(timed(rt, "realtime"))
    setup = InvocationMetrics(Database(f"sqlite:///{home / 'sagelab.db'}")).query("serverless", "ModelSetupTime", "v")
    setup_ms = [r["p50"] / 1000 for r in setup]
    c, w, r = (statistics.median(v) * 1000 for v in (cold, warm_serverless, warm_realtime))
    print(f"cold start (first invoke after scale to zero): median {c:.1f} ms over {len(cold)} rounds")
    print(f"ModelSetupTime published: {', '.join(f'{m:.1f}' for m in setup_ms)} ms")
    print(f"warm serverless invoke: median {w:.2f} ms; warm real-time invoke: median {r:.2f} ms")
    print(f"cold/warm = {c / w:.1f}x; serverless-warm/real-time = {w / r:.2f}")


if __name__ == "__main__":
    main()
