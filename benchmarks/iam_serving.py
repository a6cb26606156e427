"""What IAM enforcement costs on the serving path: InvokeEndpoint signed by an IAM user vs by the root key.

Run: .venv/bin/python benchmarks/iam_serving.py [--duration 10] [--warmup 2] [--rounds 3] [--connections 16]

The endpoint of `serving.py` (the same booster, deployed the same way) is loaded with wrk twice per round,
side by side in one run, with one request each signed once:
  - root: the root key, which the enforcer admits after naming the caller (root may do anything);
  - iam-user: an IAM user whose only policy allows sagemaker:InvokeEndpoint on this endpoint, so every request
    is evaluated against the user's policies (through the decision cache, as any repeated request is).
The order alternates between rounds. Under load the two sides share the machine with whatever else runs on
it, so the guard's own cost is also timed in this process, where nothing else interferes: the enforcer
admitting the same InvokeEndpoint call for each signer (microseconds per call). The throughput ratio
iam-user/root (the median of each round's pair) is printed last (target >= 0.95).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import timeit
from pathlib import Path

from serving import (
    ENDPOINT,
    check_once,
    deploy,
    lua_script,
    model_tarball,
    run_wrk,
    signed_headers,
    train_booster,
)

from sagelab.embedded import ServerProcess


def invoker(server: ServerProcess) -> tuple[str, str]:
    """An IAM user allowed exactly sagemaker:InvokeEndpoint on the benchmark's endpoint; its key."""
    iam = server.client("iam")
    account = server.client("sts").get_caller_identity()["Account"]
    iam.create_user(UserName="invoker")
    iam.put_user_policy(UserName="invoker", PolicyName="invoke", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sagemaker:InvokeEndpoint",
            "Resource": f"arn:aws:sagemaker:{server.region}:{account}:endpoint/{ENDPOINT}"}]}))
    key = iam.create_access_key(UserName="invoker")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def guard_cost(home: Path, calls: int = 20_000) -> dict[str, float]:
    """Microseconds the IAM guard takes to admit one InvokeEndpoint, per signer, on a platform of its own."""
    from sagelab.api.enforcement import IamEnforcer
    from sagelab.api.faces import service_namespaces
    from sagelab.api.http import Request
    from sagelab.api.runtime import RuntimeFace
    from sagelab.platform import Platform
    from sagelab.security.credentials import ensure_root_credentials
    from sagelab.security.sigv4 import Principal
    from sagelab.settings import load_settings

    platform = Platform(load_settings({"home": str(home)}, environ={})).open()
    platform.credentials = ensure_root_credentials(home)
    try:
        platform.iam.create_user("invoker")
        platform.iam.put_inline_policy("iam-user", "invoker", "invoke", json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint",
                                                    "Resource": f"arn:aws:sagemaker:us-east-1:{platform.account_id}:"
                                                                f"endpoint/{ENDPOINT}"}]}))
        keys = {"root": platform.credentials.access_key_id,
                "iam-user": platform.iam.create_access_key("invoker")["AccessKeyId"]}
        guard, operation = IamEnforcer(platform, service_namespaces()), RuntimeFace.operations["InvokeEndpoint"]
        params = {"EndpointName": ENDPOINT}
        cost = {}
        for name, akid in keys.items():
            request = Request(method="POST", raw_path=f"/endpoints/{ENDPOINT}/invocations", raw_query="",
                              headers={}, body=b"", request_id="bench", region="us-east-1",
                              principal=Principal(akid, "us-east-1", "sagemaker"),
                              account_id=platform.account_id, client_ip="127.0.0.1")
            guard(request, operation, params)  # fills the caches, as the first request does
            cost[name] = min(timeit.repeat(lambda r=request: guard(r, operation, params), number=calls,
                                           repeat=3)) / calls * 1e6
        return cost
    finally:
        platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    booster, x = train_booster()
    body = (",".join(f"{v:.6g}" for v in x[0])).encode()
    expected = float(booster.inplace_predict(x[:1])[0])
    print(f"InvokeEndpoint, 1 CSV row; wrk -t1 -c{args.connections}, {args.warmup} s warm-up + {args.duration} s, "
          f"{args.rounds} rounds; {os.cpu_count()} CPUs")
    results: dict[str, list[dict[str, float]]] = {"root": [], "iam-user": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = ServerProcess(tmp / "home").start()
        try:
            deploy(server, model_tarball(bytes(booster.save_raw("json"))))
            path = f"/endpoints/{ENDPOINT}/invocations"
            url = f"http://127.0.0.1:{server.port}{path}"
            signers = {"root": None, "iam-user": invoker(server)}
            scripts = {}
            for name, credentials in signers.items():
                headers = signed_headers(server, path, body, credentials=credentials)
                answer = check_once(url, headers, body)
                if abs(float(answer.split()[0]) - expected) > 1e-5:
                    raise SystemExit(f"{name}: sagelab answered {answer!r}, expected {expected}")
                scripts[name] = lua_script(tmp / f"{name}.lua", path, headers, body)
            for round_number in range(1, args.rounds + 1):
                order = ("root", "iam-user") if round_number % 2 else ("iam-user", "root")
                for name in order:
                    warm, _, _ = run_wrk(url, scripts[name], args.warmup, args.connections)
                    result, output, _ = run_wrk(url, scripts[name], args.duration, args.connections)
                    for r in (warm, result):
                        if r["non2xx"] or r["socket_errors"]:
                            print(output)
                            raise SystemExit(f"{name}: {r['non2xx']} non-2xx responses, {r['socket_errors']} "
                                             "socket errors: benchmark failed")
                    results[name].append(result)
                    print(f"  round {round_number} {name:8s} {result['rps']:9.1f} req/s  p50 {result['p50']:6.2f} ms"
                          f"  p99 {result['p99']:6.2f} ms  ({result['requests']} requests, 0 non-2xx)")
        finally:
            server.stop()
    print()
    summary = {name: {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
               for name, runs in results.items()}
    for name, s in summary.items():
        print(f"{name:8s} median: {s['rps']:9.1f} req/s   p50 {s['p50']:6.2f} ms   p99 {s['p99']:6.2f} ms")
    with tempfile.TemporaryDirectory() as tmp_name:
        cost = guard_cost(Path(tmp_name) / "home")
    print("guard per call (us, best of 3, in process): "
          + ", ".join(f"{name} {us:.1f}" for name, us in cost.items()))
    # Each round's two runs are adjacent in time: their ratio cancels most of the load the machine drifts through.
    paired = statistics.median(user["rps"] / root["rps"]
                               for user, root in zip(results["iam-user"], results["root"], strict=True))
    print(f"ratio of medians iam-user/root: {summary['iam-user']['rps'] / summary['root']['rps']:.3f}")
    print(f"throughput ratio iam-user/root (median of rounds): {paired:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
