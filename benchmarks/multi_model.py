"""Multi-model endpoints: the cost of a cache hit against the same model on a single-model endpoint, and the
cost of a cold load.

Run: .venv/bin/python benchmarks/multi_model.py [--duration 5] [--warmup 1] [--rounds 3] [--connections 8]
                                                [--cold 5]

One booster (binary:logistic, depth 6, 100 rounds, 20 features, as benchmarks/serving.py) is trained here and
uploaded through sagelab's S3 API twice: as the single-model endpoint's model.tar.gz and under the
multi-model endpoint's prefix. Both endpoints (1 instance each) run on one server. wrk (`-t1 --latency`)
replays the same signed 1-row CSV request to each, the multi-model one with `TargetModel: model-a.tar.gz`
(loaded once before the runs, so every measured request is a cache hit); each round runs single then
multi-model, and the medians over rounds are compared. Any non-2xx response fails the benchmark.

Cold loads: the same artifact under `--cold` more keys, each invoked once (the request that loads it), then
once again (a hit), timed from the client; the server's ModelLoadingWaitTime / ModelDownloadingTime /
ModelLoadingTime for those loads are read from its metrics after it stops. The last line is the cost ratio
of a hit: multi-model p50 latency / single-model p50 latency (target <= 1.1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import (  # noqa: E402
    ROLE,
    check_once,
    lua_script,
    model_tarball,
    run_wrk,
    signed_headers,
    train_booster,
    wait_in_service,
)

from sagelab.embedded import ServerProcess  # noqa: E402
from sagelab.hosting.invocation_metrics import InvocationMetrics  # noqa: E402
from sagelab.storage.db import Database  # noqa: E402

IMAGE = "sagemaker-xgboost:1.7-1"
SINGLE, MULTI = "bench-single", "bench-mme"
TARGET = "model-a.tar.gz"


def deploy(server: ServerProcess, tarball: bytes, cold: int) -> None:
    s3, sm = server.client("s3"), server.client("sagemaker")
    s3.create_bucket(Bucket="bench")
    s3.put_object(Bucket="bench", Key="single/model.tar.gz", Body=tarball)
    for key in [TARGET] + [f"cold-{i}.tar.gz" for i in range(cold)]:
        s3.put_object(Bucket="bench", Key=f"mme/{key}", Body=tarball)
    sm.create_model(ModelName="single-model", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": IMAGE, "ModelDataUrl": "s3://bench/single/model.tar.gz"})
    sm.create_model(ModelName="mme-model", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": IMAGE, "Mode": "MultiModel", "ModelDataUrl": "s3://bench/mme/"})
    for endpoint, model in ((SINGLE, "single-model"), (MULTI, "mme-model")):
        sm.create_endpoint_config(EndpointConfigName=f"{endpoint}-config", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-config")
    for endpoint in (SINGLE, MULTI):
        wait_in_service(sm, endpoint)


def request_for(server: ServerProcess, endpoint: str, body: bytes, target: str | None) -> tuple[str, dict]:
    path = f"/endpoints/{endpoint}/invocations"
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    if target:
        headers["X-Amzn-SageMaker-Target-Model"] = target
    return path, signed_headers(server, path, body, headers=headers)


def timed(server: ServerProcess, endpoint: str, body: bytes, target: str | None) -> tuple[float, bytes]:
    path, headers = request_for(server, endpoint, body, target)
    started = time.perf_counter()
    answer = check_once(f"http://127.0.0.1:{server.port}{path}", headers, body)
    return time.perf_counter() - started, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--cold", type=int, default=5)
    args = parser.parse_args()

    booster, x = train_booster()
    raw = bytes(booster.save_raw("json"))
    tarball = model_tarball(raw)
    body = (",".join(f"{v:.6g}" for v in x[0])).encode()
    expected = float(booster.inplace_predict(x[:1])[0])
    print(f"model: xgboost, {len(raw) / 1e3:.0f} kB JSON ({len(tarball) / 1e3:.0f} kB model.tar.gz); body: 1 CSV row; "
          f"wrk -t1 -c{args.connections}, {args.warmup} s warm-up + {args.duration} s, {args.rounds} rounds")

    results: dict[str, list[dict[str, float]]] = {SINGLE: [], MULTI: []}
    cold_s: list[float] = []
    warm_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        server = ServerProcess(home).start()
        try:
            deploy(server, tarball, args.cold)
            for index in range(args.cold):
                target = f"cold-{index}.tar.gz"
                first, answer = timed(server, MULTI, body, target)
                again, _ = timed(server, MULTI, body, target)
                if abs(float(answer.split()[0]) - expected) > 1e-5:
                    raise SystemExit(f"{target} answered {answer!r}, expected {expected}")
                cold_s.append(first)
                warm_s.append(again)
            scripts = {}
            for endpoint, target in ((SINGLE, None), (MULTI, TARGET)):
                path, headers = request_for(server, endpoint, body, target)
                answer = check_once(f"http://127.0.0.1:{server.port}{path}", headers, body)  # MME: loads it
                if abs(float(answer.split()[0]) - expected) > 1e-5:
                    raise SystemExit(f"{endpoint} answered {answer!r}, expected {expected}")
                scripts[endpoint] = (f"http://127.0.0.1:{server.port}{path}",
                                     lua_script(tmp / f"{endpoint}.lua", path, headers, body))
            for round_number in range(1, args.rounds + 1):
                for endpoint in (SINGLE, MULTI):
                    url, script = scripts[endpoint]
                    run_wrk(url, script, args.warmup, args.connections)
                    result, output, _ = run_wrk(url, script, args.duration, args.connections)
                    if result["non2xx"] or result["socket_errors"]:
                        print(output)
                        raise SystemExit(f"{endpoint}: {result['non2xx']} non-2xx responses, "
                                         f"{result['socket_errors']} socket errors: benchmark failed")
                    results[endpoint].append(result)
                    print(f"  round {round_number} {endpoint:12s} {result['rps']:9.1f} req/s  p50 "
                          f"{result['p50']:6.2f} ms  p99 {result['p99']:6.2f} ms  ({result['requests']} requests)")
        finally:
            server.stop()  # flushes the metrics
        db = Database("sqlite:///" + str(home / "sagelab.db"))
        metrics = InvocationMetrics(db)
        loads = {name: metrics.query(MULTI, name) for name in
                 ("ModelLoadingWaitTime", "ModelDownloadingTime", "ModelLoadingTime")}
        hits = metrics.query(MULTI, "ModelCacheHit")
        db.close()

    print()
    summary = {name: {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
               for name, runs in results.items()}
    for name, s in summary.items():
        print(f"{name:12s} median: {s['rps']:9.1f} req/s   p50 {s['p50']:6.2f} ms   p99 {s['p99']:6.2f} ms")
    print(f"cold load (client, first request for a model, median of {len(cold_s)}): "
          f"{statistics.median(cold_s) * 1e3:.1f} ms; the next request: {statistics.median(warm_s) * 1e3:.1f} ms")
    server_side = ", ".join(
        f"{name} {sum(r['sum'] for r in rows) / max(1.0, sum(r['sample_count'] for r in rows)) / 1e3:.1f} ms"
        for name, rows in loads.items())
    requests = sum(r["sample_count"] for r in hits)
    print(f"server's view of the {int(sum(r['sample_count'] for r in loads['ModelLoadingTime']))} loads (mean): "
          f"{server_side}; cache hit rate {sum(r['sum'] for r in hits) / max(1.0, requests):.4f} over "
          f"{int(requests)} requests")
    ratio = summary[MULTI]["p50"] / summary[SINGLE]["p50"]
    throughput = summary[SINGLE]["rps"] / summary[MULTI]["rps"]
    print(f"cache-hit cost ratio multi-model/single-model: p50 latency {ratio:.3f}, per request (1/throughput) "
          f"{throughput:.3f} (target <= 1.1)")


if __name__ == "__main__":
    main()
