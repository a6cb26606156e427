"""Script mode overhead: a framework training job against the same script run directly, and an
`inference.py` endpoint against the same functions behind bare uvicorn.

Run: .venv/bin/python benchmarks/script_mode.py [--rounds 3] [--duration 10] [--warmup 2] [--connections 16]

Training: one `train.py` (a scikit-learn random forest on 20,000 x 20 synthetic rows, one process, one
core) runs two ways on the same CSV, alternating, `--rounds` times each:
  - direct: `python train.py --n-estimators ...` with the SM_* variables pointing at local folders;
  - sagelab: CreateTrainingJob on the scikit-learn framework image (the SDK's request shape: sourcedir.tar.gz
    on S3, JSON-encoded hyperparameters), timed from the call until Describe says Completed (polled every
    50 ms), so it includes the download, the model.tar.gz upload and the job's own bookkeeping.
The ratio sagelab/direct of the medians is printed (target <= 1.10).

Serving: `inference.py` (model_fn loading a joblib logistic regression, input_fn reading JSON, predict_fn,
output_fn writing JSON) is deployed as an SKLearnModel endpoint and also imported by a one-worker Starlette
app on uvicorn (uvloop, httptools) that calls the same four functions; both are loaded with wrk with the same
one-row JSON body, via `benchmarks/serving.py`'s helpers. The throughput ratio sagelab/bare of the medians
is printed (target >= 0.8).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import check_once, lua_script, run_wrk, signed_headers, start_app, wait_in_service  # noqa: E402
from training import wait_for_training_job  # noqa: E402

from sagelab.embedded import ServerProcess  # noqa: E402

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::000000000000:role/bench"
ENDPOINT = "bench-inference-py"
ROWS, COLUMNS = 20_000, 20

TRAIN = textwrap.dedent('''
    import argparse, os
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    parser = argparse.ArgumentParser()
    parser.add_argument("--n-estimators", type=int)
    parser.add_argument("--max-depth", type=int)
    args = parser.parse_args()
    data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",")
    model = RandomForestClassifier(n_estimators=args.n_estimators, max_depth=args.max_depth, n_jobs=1,
                                   random_state=0).fit(data[:, 1:], data[:, 0])
    print(f"train:accuracy={model.score(data[:, 1:], data[:, 0]):.4f}")
    joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
''')
HYPERPARAMETERS = {"n-estimators": 60, "max-depth": 12}

INFERENCE = textwrap.dedent('''
    import json, os
    import joblib
    import numpy as np


    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))


    def input_fn(body, content_type):
        return np.array(json.loads(body)["instances"], dtype=np.float64)


    def predict_fn(data, model):
        return model.predict_proba(data)[:, 1]


    def output_fn(prediction, accept):
        return json.dumps({"scores": prediction.tolist()}), "application/json"
''')

BARE_APP = textwrap.dedent('''
    import importlib.util, sys

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    spec = importlib.util.spec_from_file_location("inference", sys.argv[1])
    inference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inference)
    model = inference.model_fn(sys.argv[2])


    async def invocations(request):
        data = inference.input_fn(await request.body(), request.headers.get("content-type"))
        body, content_type = inference.output_fn(inference.predict_fn(data, model), request.headers.get("accept"))
        return Response(body, media_type=content_type)


    async def ping(request):
        return Response(b"")


    app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"]),
                            Route("/ping", ping, methods=["GET"])])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), workers=1, log_level="warning",
                loop="uvloop", http="httptools", access_log=False)
''')


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def synthetic(path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, COLUMNS))
    y = (x[:, :4] @ rng.normal(size=4) + rng.normal(scale=0.5, size=ROWS) > 0).astype(float)
    np.savetxt(path, np.column_stack([y, x]), delimiter=",", fmt="%.6g")


# --- training -------------------------------------------------------------------------------------------
def run_direct(tmp: Path, data_dir: Path) -> float:
    model_dir = tmp / "direct-model"
    model_dir.mkdir(exist_ok=True)
    env = {**os.environ, "SM_CHANNEL_TRAIN": str(data_dir), "SM_MODEL_DIR": str(model_dir),
           "OMP_NUM_THREADS": "1"}
    args = [a for name, value in sorted(HYPERPARAMETERS.items()) for a in (f"--{name}", str(value))]
    started = time.perf_counter()
    subprocess.run([sys.executable, str(tmp / "train.py"), *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run_job(sm, number: int) -> float:
    name = f"bench-script-{number}-{int(time.time())}"
    hyperparameters = {"sagemaker_program": '"train.py"',
                       "sagemaker_submit_directory": '"s3://bench/code/sourcedir.tar.gz"',
                       "sagemaker_container_log_level": "20", "sagemaker_region": '"us-east-1"',
                       **{k: json.dumps(v) for k, v in HYPERPARAMETERS.items()}}
    started = time.perf_counter()
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE, HyperParameters=hyperparameters,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://bench/data/"}}}],
        OutputDataConfig={"S3OutputPath": "s3://bench/output"}, Environment={"OMP_NUM_THREADS": "1"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    wait_for_training_job(sm, name)
    return time.perf_counter() - started


def bench_training(server: ServerProcess, tmp: Path, rounds: int) -> tuple[float, float]:
    s3, sm = server.client("s3"), server.client("sagemaker")
    data_dir = tmp / "data"
    data_dir.mkdir()
    synthetic(data_dir / "train.csv")
    (tmp / "train.py").write_text(TRAIN)
    s3.upload_file(str(data_dir / "train.csv"), "bench", "data/train.csv")
    s3.put_object(Bucket="bench", Key="code/sourcedir.tar.gz", Body=tarball({"train.py": TRAIN.encode()}))
    run_job(sm, 0)  # the first job pays for the job process's warm-up, as the direct run's page cache warms
    run_direct(tmp, data_dir)
    times: dict[str, list[float]] = {"direct": [], "sagelab": []}
    for number in range(1, rounds + 1):
        times["direct"].append(run_direct(tmp, data_dir))
        times["sagelab"].append(run_job(sm, number))
        print(f"  round {number} training: direct {times['direct'][-1]:6.2f} s   sagelab job "
              f"{times['sagelab'][-1]:6.2f} s")
    return statistics.median(times["direct"]), statistics.median(times["sagelab"])


# --- serving --------------------------------------------------------------------------------------------
def deploy(server: ServerProcess, tmp: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, COLUMNS))
    model = LogisticRegression(max_iter=500).fit(x, (x[:, 0] + x[:, 1] > 0).astype(int))
    joblib.dump(model, tmp / "model" / "model.joblib")
    (tmp / "model" / "code").mkdir()
    (tmp / "model" / "code" / "inference.py").write_text(INFERENCE)
    s3, sm = server.client("s3"), server.client("sagemaker")
    s3.put_object(Bucket="bench", Key="model/model.tar.gz", Body=tarball({
        "model.joblib": (tmp / "model" / "model.joblib").read_bytes(), "code/inference.py": INFERENCE.encode()}))
    sm.create_model(ModelName="bench-inference", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": IMAGE, "ModelDataUrl": "s3://bench/model/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}})
    sm.create_endpoint_config(EndpointConfigName="bench-inference", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "bench-inference", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="bench-inference")
    wait_in_service(sm, ENDPOINT)


def bench_serving(server: ServerProcess, tmp: Path, args: argparse.Namespace) -> tuple[float, float]:
    (tmp / "model").mkdir()
    deploy(server, tmp)
    body = json.dumps({"instances": [[0.5] * COLUMNS]}).encode()
    path = f"/endpoints/{ENDPOINT}/invocations"
    headers = signed_headers(server, path, body, content_type="application/json")
    sagelab_url = f"http://127.0.0.1:{server.port}{path}"
    expected = json.loads(check_once(sagelab_url, headers, body))
    bare, base = start_app(tmp, BARE_APP, str(tmp / "model" / "code" / "inference.py"), str(tmp / "model"))
    try:
        bare_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if json.loads(check_once(base + "/invocations", bare_headers, body)) != expected:
            raise SystemExit("the bare app and the endpoint answer differently")
        targets = {"bare": (base + "/invocations", lua_script(tmp / "bare.lua", "/invocations", bare_headers, body)),
                   "sagelab": (sagelab_url, lua_script(tmp / "sagelab.lua", path, headers, body))}
        rps: dict[str, list[float]] = {"bare": [], "sagelab": []}
        for number in range(1, args.rounds + 1):
            for name, (url, script) in targets.items():
                run_wrk(url, script, args.warmup, args.connections)
                result, output, _ = run_wrk(url, script, args.duration, args.connections)
                if result["non2xx"] or result["socket_errors"]:
                    raise SystemExit(f"{name}: {result['non2xx']} non-2xx, {result['socket_errors']} socket "
                                     f"errors:\n{output}")
                rps[name].append(result["rps"])
                print(f"  round {number} serving {name:8s} {result['rps']:9.1f} req/s  p50 {result['p50']:6.2f} ms"
                      f"  p99 {result['p99']:6.2f} ms")
    finally:
        bare.terminate()
        bare.wait(10)
    return statistics.median(rps["bare"]), statistics.median(rps["sagelab"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; training: random forest {HYPERPARAMETERS} on {ROWS} x {COLUMNS}, "
          f"{args.rounds} rounds; serving: wrk -t1 -c{args.connections}, {args.warmup} s warm-up + "
          f"{args.duration} s, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = ServerProcess(tmp / "home").start()
        try:
            server.client("s3").create_bucket(Bucket="bench")
            direct, job = bench_training(server, tmp, args.rounds)
            bare, endpoint = bench_serving(server, tmp, args)
        finally:
            server.stop()
    print()
    print(f"training: direct {direct:.2f} s, sagelab job {job:.2f} s (medians); "
          f"ratio sagelab/direct: {job / direct:.3f} (target <= 1.10)")
    print(f"serving: bare uvicorn {bare:.1f} req/s, sagelab endpoint {endpoint:.1f} req/s (medians); "
          f"throughput ratio sagelab/bare: {endpoint / bare:.3f} (target >= 0.8)")


if __name__ == "__main__":
    main()
