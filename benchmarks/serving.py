"""Real-time serving overhead: a SageMaker XGBoost endpoint under load, against a bare Starlette app.

Run: .venv/bin/python benchmarks/serving.py [--duration 10] [--warmup 2] [--rounds 2] [--connections 16]

One small booster (binary:logistic, depth 6, 100 rounds, 20 features) is trained here with xgboost and
served two ways, each loaded with wrk (`-t1 -c16 --latency`) posting the same 1-row CSV body:
  - sagelab: the model is uploaded through sagelab's S3 API as model.tar.gz and deployed as an endpoint
    (1 instance); wrk replays one request signed once with botocore's SigV4Auth (a signature stays valid
    for 15 minutes, longer than the whole load);
  - bare: a one-worker Starlette app on uvicorn (uvloop, httptools, as sagelab runs) that parses the CSV
    and calls `booster.inplace_predict` (nthread 1) on the event loop, with no authentication.
Each round runs a warm-up, then a measured run, for bare then sagelab; the medians over rounds are
compared. Any non-2xx response or socket error fails the benchmark. After the load the server is stopped
(metrics flush) and its OverheadLatency/ModelLatency p50s are read from the database, weighted by the
number of samples of each stored point. CPU seconds per process (from /proc) during the measured runs show
where the time goes. The throughput ratio sagelab/bare is printed last.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import xgboost as xgb
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sagelab.embedded import ServerProcess, free_port
from sagelab.hosting.invocation_metrics import InvocationMetrics
from sagelab.storage.db import Database

FEATURES = 20
ROUNDS = 100
PARAMS = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.3, "nthread": 1}
ENDPOINT = "bench-xgb"
ROLE = "arn:aws:iam::000000000000:role/bench"

BARE_APP = textwrap.dedent('''
    import sys

    import numpy as np
    import uvicorn
    import xgboost as xgb
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    booster = xgb.Booster()
    booster.load_model(bytearray(open(sys.argv[1], "rb").read()))
    booster.set_param({"nthread": 1})


    async def invocations(request):
        text = (await request.body()).decode().strip()
        rows = np.array([line.split(",") for line in text.splitlines()], dtype=np.float32)
        scores = booster.inplace_predict(rows, validate_features=False)
        return Response("\\n".join(map(str, scores.tolist())) + "\\n", media_type="text/csv")


    async def ping(request):
        return Response(b"")


    app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"]),
                            Route("/ping", ping, methods=["GET"])])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), workers=1, log_level="warning",
                loop="uvloop", http="httptools", access_log=False)
''')


# --- the model ---------------------------------------------------------------------------------------
def train_booster(rows: int = 20_000, seed: int = 0) -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    logits = x[:, :5] @ rng.normal(size=5) + 0.5 * x[:, 5] * x[:, 6]
    y = (logits + rng.normal(scale=0.5, size=rows) > 0).astype(np.float32)
    booster = xgb.train(PARAMS, xgb.DMatrix(x, label=y), num_boost_round=ROUNDS)
    return booster, x


def model_tarball(raw: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def deploy(server: ServerProcess, tarball: bytes, capture: bool = False) -> None:
    s3, sm = server.client("s3"), server.client("sagemaker")
    s3.create_bucket(Bucket="bench")
    s3.put_object(Bucket="bench", Key="model/model.tar.gz", Body=tarball)
    sm.create_model(ModelName="bench-model", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": "sagemaker-xgboost:1.7-1",
                                      "ModelDataUrl": "s3://bench/model/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="bench-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "bench-model", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}], **({"DataCaptureConfig": {
            "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://bench/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}}} if capture else {}))
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="bench-config")
    wait_in_service(sm, ENDPOINT)


def wait_in_service(sm, endpoint: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sm.describe_endpoint(EndpointName=endpoint)
        if desc["EndpointStatus"] == "InService":
            return
        if desc["EndpointStatus"] == "Failed":
            raise SystemExit(f"endpoint failed: {desc.get('FailureReason')}")
        time.sleep(0.1)
    raise SystemExit(f"endpoint not InService within {timeout:.0f} s")


# --- the requests wrk replays --------------------------------------------------------------------------
def signed_headers(server: ServerProcess, path: str, body: bytes, *, content_type: str = "text/csv",
                   service: str = "sagemaker", headers: dict[str, str] | None = None,
                   credentials: tuple[str, str] | None = None) -> dict[str, str]:
    """Sign one POST once, for host 127.0.0.1:<port> (with the root key unless `credentials` are given); the
    headers are replayed verbatim by wrk. `headers` replaces the default Content-Type/Accept pair (Kinesis
    names its operation in X-Amz-Target)."""
    akid, secret = credentials or server.credentials()
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{server.port}{path}", data=body,
                         headers=headers or {"Content-Type": content_type, "Accept": content_type})
    SigV4Auth(Credentials(akid, secret), service, server.region).add_auth(request)  # sets X-Amz-Date now
    headers = dict(request.headers.items())
    headers["Host"] = f"127.0.0.1:{server.port}"
    return headers


def lua_script(path: Path, url_path: str, headers: dict[str, str], body: bytes) -> Path:
    def q(text: str) -> str:
        return json.dumps(text)  # ASCII JSON string escapes are valid Lua string escapes

    lines = ['wrk.method = "POST"', f"wrk.path = {q(url_path)}", f"wrk.body = {q(body.decode())}"]
    lines += [f"wrk.headers[{q(name)}] = {q(value)}" for name, value in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def check_once(url: str, headers: dict[str, str], body: bytes) -> bytes:
    send = {k: v for k, v in headers.items() if k.lower() != "host"}  # urllib sends the same Host itself
    request = urllib.request.Request(url, data=body, method="POST", headers=send)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


# --- wrk ----------------------------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> dict[str, float]:
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p50 and p99 and total):
        raise SystemExit(f"cannot parse wrk output:\n{output}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"rps": float(rps[1]), "p50": _ms(p50[1]), "p99": _ms(p99[1]), "requests": int(total[1]),
            "non2xx": int(non2xx[1]) if non2xx else 0,
            "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0}


def _cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for label, group in pids.items():
        total = 0
        for pid in group:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        out[label] = total / tick
    return out


def _machine_ticks() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def run_wrk(url: str, script: Path, seconds: int, connections: int,
            watch: dict[str, list[int]] | None = None) -> tuple[dict[str, float], str, dict[str, float]]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    before = _cpu_seconds(watch or {})
    busy_before, steal_before = _machine_ticks()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wrk_cpu = 0.0
    while process.poll() is None:  # read wrk's own CPU just before it exits
        wrk_cpu = _cpu_seconds({"wrk": [process.pid]})["wrk"] or wrk_cpu
        time.sleep(0.1)
    output = process.stdout.read()
    elapsed = time.perf_counter() - started
    after = _cpu_seconds(watch or {})
    busy_after, steal_after = _machine_ticks()
    cores = {label: (after[label] - before[label]) / elapsed for label in after}
    cores["wrk"] = wrk_cpu / elapsed
    # CPU the rest of the machine took meanwhile: other work on a shared box skews the comparison.
    cores["other processes"] = max(0.0, (busy_after - busy_before) / elapsed - sum(cores.values()))
    cores["steal"] = (steal_after - steal_before) / elapsed
    if process.returncode != 0:
        raise SystemExit(f"wrk exited {process.returncode}:\n{output}")
    return parse_wrk(output), output, cores


def start_bare(tmp: Path, model_path: Path) -> tuple[subprocess.Popen, str]:
    return start_app(tmp, BARE_APP, str(model_path))


def start_app(tmp: Path, source: str, *args: str) -> tuple[subprocess.Popen, str]:
    """Run a one-file app as `python app.py <args...> <port>`; returns it once its /ping answers."""
    script = tmp / "bare_app.py"
    script.write_text(source)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), *args, str(port)],
                               stdout=subprocess.DEVNULL, stderr=(tmp / "bare.log").open("wb"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bare app exited {process.returncode}: {(tmp / 'bare.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(base + "/ping", timeout=1):
                return process, base
        except OSError:
            time.sleep(0.1)
    raise SystemExit("bare app did not start")


def weighted_p50(rows: list[dict]) -> float:
    rows = [r for r in rows if r["p50"] is not None and r["sample_count"]]
    total = sum(r["sample_count"] for r in rows)
    return sum(r["p50"] * r["sample_count"] for r in rows) / total if total else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--capture", action="store_true",
                        help="capture every invocation (DataCaptureConfig at 100%%): what capture costs the hot path")
    args = parser.parse_args()

    booster, x = train_booster()
    raw = bytes(booster.save_raw("json"))
    body = (",".join(f"{v:.6g}" for v in x[0])).encode()
    expected = float(booster.inplace_predict(x[:1])[0])
    print(f"model: xgboost binary:logistic, {ROUNDS} rounds, depth 6, {FEATURES} features ({len(raw) / 1e3:.0f} kB "
          f"JSON); body: 1 CSV row, {len(body)} bytes; wrk -t1 -c{args.connections}, {args.warmup} s warm-up + "
          f"{args.duration} s, {args.rounds} rounds; {os.cpu_count()} CPUs"
          f"{'; data capture 100%' if args.capture else ''}")

    results: dict[str, list[dict[str, float]]] = {"bare": [], "sagelab": []}
    cpu: dict[str, list[dict[str, float]]] = {"bare": [], "sagelab": []}
    answered = {"bare": 1, "sagelab": 1}  # the check request, then every response wrk counted
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        model_path = tmp / "xgboost-model"
        model_path.write_bytes(raw)
        server = ServerProcess(home).start()
        bare = None
        try:
            deploy(server, model_tarball(raw), capture=args.capture)
            path = f"/endpoints/{ENDPOINT}/invocations"
            headers = signed_headers(server, path, body)
            sagelab_url = f"http://127.0.0.1:{server.port}{path}"
            answer = check_once(sagelab_url, headers, body)
            if abs(float(answer.split()[0]) - expected) > 1e-5:
                raise SystemExit(f"sagelab answered {answer!r}, expected {expected}")
            sagelab_script = lua_script(tmp / "sagelab.lua", path, headers, body)

            bare, bare_base = start_bare(tmp, model_path)
            bare_headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
            answer = check_once(bare_base + "/invocations", bare_headers, body)
            if abs(float(answer.split()[0]) - expected) > 1e-5:
                raise SystemExit(f"bare app answered {answer!r}, expected {expected}")
            bare_script = lua_script(tmp / "bare.lua", "/invocations", bare_headers, body)

            server_children = _descendants(server.process.pid)
            watch = {"bare": {"app": [bare.pid]},
                     "sagelab": {"server": [server.process.pid], "instance+helpers": server_children}}
            targets = {"bare": (bare_base + "/invocations", bare_script),
                       "sagelab": (sagelab_url, sagelab_script)}
            for round_number in range(1, args.rounds + 1):
                for name in ("bare", "sagelab"):
                    url, script = targets[name]
                    warm, warm_out, _ = run_wrk(url, script, args.warmup, args.connections)
                    result, output, cores = run_wrk(url, script, args.duration, args.connections, watch[name])
                    for label, r, out in (("warm-up", warm, warm_out), ("run", result, output)):
                        if r["non2xx"] or r["socket_errors"]:
                            print(out)
                            raise SystemExit(f"{name} {label}: {r['non2xx']} non-2xx responses, "
                                             f"{r['socket_errors']} socket errors: benchmark failed")
                    answered[name] += warm["requests"] + result["requests"]
                    results[name].append(result)
                    cpu[name].append(cores)
                    split = ", ".join(f"{label} {c:.2f}" for label, c in cores.items())
                    print(f"  round {round_number} {name:8s} {result['rps']:9.1f} req/s  p50 {result['p50']:6.2f} ms"
                          f"  p99 {result['p99']:6.2f} ms  ({result['requests']} requests, 0 non-2xx; "
                          f"CPU cores used: {split})")
        finally:
            if bare is not None:
                bare.terminate()
                bare.wait(10)
            server.stop()  # flushes the invocation metrics

        db = Database("sqlite:///" + str(home / "sagelab.db"))
        metrics = InvocationMetrics(db)
        overhead = metrics.query(ENDPOINT, "OverheadLatency")
        model = metrics.query(ENDPOINT, "ModelLatency")
        invocations = sum(r["sum"] for r in metrics.query(ENDPOINT, "Invocations"))
        db.close()

    print()
    summary = {}
    for name in ("bare", "sagelab"):
        runs = results[name]
        summary[name] = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
        s = summary[name]
        print(f"{name:8s} median: {s['rps']:9.1f} req/s   p50 {s['p50']:6.2f} ms   p99 {s['p99']:6.2f} ms")
    for name in ("bare", "sagelab"):
        labels = cpu[name][0].keys()
        print(f"{name:8s} CPU (cores, mean of runs): "
              + ", ".join(f"{label} {statistics.mean(c[label] for c in cpu[name]):.2f}" for label in labels))
    for name in ("bare", "sagelab"):
        labels = [label for label in cpu[name][0] if label not in ("other processes", "steal")]
        pairs = list(zip(cpu[name], results[name], strict=True))
        per_request = {label: statistics.median(c[label] / r["rps"] * 1e6 for c, r in pairs) for label in labels}
        print(f"{name:8s} CPU per request (us, median of runs): "
              + ", ".join(f"{label} {us:.0f}" for label, us in per_request.items())
              + f"; total {sum(per_request.values()):.0f}")
    print(f"sagelab OverheadLatency p50: {weighted_p50(overhead) / 1e3:.3f} ms   ModelLatency p50: "
          f"{weighted_p50(model) / 1e3:.3f} ms   (sample-weighted over {len(overhead)} stored points, "
          f"{int(invocations)} Invocations recorded for {answered['sagelab']} answers wrk counted)")
    others = max(c["other processes"] for runs in cpu.values() for c in runs)
    if others > 0.2:
        print(f"WARNING: other processes on this machine used up to {others:.2f} cores during the measured runs "
              f"({os.cpu_count()} CPUs); sagelab runs two processes per request (server and instance), so it "
              "loses more to contention than the one-process bare app and the ratio reads low.")
    ratio = summary["sagelab"]["rps"] / summary["bare"]["rps"]
    print(f"throughput ratio sagelab/bare: {ratio:.3f} (target >= 0.7)")


if __name__ == "__main__":
    main()
