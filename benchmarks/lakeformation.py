"""What Lake Formation enforcement costs: Glue GetTable and an Athena query by an IAM user on a table held to
column grants vs the same user on a table IAM alone governs, and vs the root key (which neither IAM nor Lake
Formation holds), side by side in one run.

Run: .venv/bin/python benchmarks/lakeformation.py [--rows 200000] [--calls 200] [--queries 5]

Two catalog tables over the same Parquet file of `--rows` rows: `held` is put under Lake Formation (its
IAM_ALLOWED_PRINCIPALS grant revoked) and the user is granted SELECT on two of its three columns; `open` keeps
its default grant, so IAM alone decides. Each round times `--calls` GetTable calls and `--queries` Athena
queries (`SELECT sum(a), count(b)`, which reads only granted columns) for each side, in an order that rotates.
The held side's GetTable reads its grants and trims the columns; its query reads the table through a view of
the granted columns. Printed: the median latency of each side, and the ratios held/open (Lake Formation's own
cost) and held/root (with IAM's), best round and median of rounds.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sagelab.catalog.formats import storage_descriptor
from sagelab.embedded import ServerProcess

POLICY = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["glue:*", "athena:*", "s3:*"], '
          '"Resource": "*"}]}')


def wait(athena, query_id: str) -> None:
    while True:
        state = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"]
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            assert state == "SUCCEEDED", state
            return
        time.sleep(0.01)


def time_calls(glue, athena, table: str, calls: int, queries: int) -> tuple[float, float]:
    started = time.perf_counter()
    for _ in range(calls):
        glue.get_table(DatabaseName="bench", Name=table)
    get_table = (time.perf_counter() - started) / calls
    started = time.perf_counter()
    for _ in range(queries):
        wait(athena, athena.start_query_execution(
            QueryString=f"SELECT sum(a), count(b) FROM {table}", QueryExecutionContext={"Database": "bench"},
            ResultConfiguration={"OutputLocation": "s3://bench/results/"})["QueryExecutionId"])
    return get_table, (time.perf_counter() - started) / queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, ServerProcess(Path(folder) / "home") as server:
        s3, glue, lf, iam = (server.client(s) for s in ("s3", "glue", "lakeformation", "iam"))
        s3.create_bucket(Bucket="bench")
        body = io.BytesIO()
        pq.write_table(pa.table({"a": list(range(args.rows)), "b": [str(i % 97) for i in range(args.rows)],
                                 "c": [float(i) for i in range(args.rows)]}), body)
        s3.put_object(Bucket="bench", Key="t/part-0.parquet", Body=body.getvalue())
        glue.create_database(DatabaseInput={"Name": "bench"})
        for table in ("held", "open"):
            glue.create_table(DatabaseName="bench", TableInput={"Name": table, "StorageDescriptor": storage_descriptor(
                "parquet", "s3://bench/t/", [{"Name": "a", "Type": "bigint"}, {"Name": "b", "Type": "string"},
                                             {"Name": "c", "Type": "double"}])})
        user = iam.create_user(UserName="analyst")["User"]["Arn"]
        key = iam.create_access_key(UserName="analyst")["AccessKey"]
        iam.put_user_policy(UserName="analyst", PolicyName="lake", PolicyDocument=POLICY)
        lf.revoke_permissions(Principal={"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
                              Resource={"Table": {"DatabaseName": "bench", "Name": "held"}}, Permissions=["ALL"])
        lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": user}, Resource={"TableWithColumns": {
            "DatabaseName": "bench", "Name": "held", "ColumnNames": ["a", "b"]}}, Permissions=["SELECT"])
        held = {s: server.client(s, aws_access_key_id=key["AccessKeyId"],
                                 aws_secret_access_key=key["SecretAccessKey"]) for s in ("glue", "athena")}
        sides = {"root": (glue, server.client("athena"), "held"), "open": (held["glue"], held["athena"], "open"),
                 "held": (held["glue"], held["athena"], "held")}
        for side in sides.values():  # warm every path once
            time_calls(*side, 5, 1)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        names = list(sides)
        for round_number in range(args.rounds):
            for side in names[round_number % 3:] + names[:round_number % 3]:
                results[side].append(time_calls(*sides[side], args.calls, args.queries))
    for index, what in enumerate(("GetTable", "Athena query")):
        seen = {side: [r[index] for r in rounds] for side, rounds in results.items()}
        medians = {side: statistics.median(values) for side, values in seen.items()}
        print(f"{what}: root {medians['root'] * 1000:.2f} ms, IAM-only table {medians['open'] * 1000:.2f} ms, "
              f"column-granted table {medians['held'] * 1000:.2f} ms")
        for base in ("open", "root"):
            print(f"  held/{base}: best {min(seen['held']) / min(seen[base]):.2f}, "
                  f"median {medians['held'] / medians[base]:.2f}")


if __name__ == "__main__":
    main()
