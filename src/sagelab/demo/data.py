"""Demo stage: from raw, messy data to SageMaker-ready channels, through the AWS data services.

The raw table is scikit-learn's breast-cancer data with what real exports carry: missing values, an
ordinal column (a size class with an "N/A"), a nominal column (the clinic), exam dates written in mixed
formats, and duplicated rows. A Glue crawler catalogs it, Athena queries it, a profiling job writes the
data-quality report, and a recipe job cleans it into train/validation/test channels (label first, no header).
"""

from __future__ import annotations

import io
import json

import numpy as np

from sagelab.demo.common import BUCKET, ROLE, wait_for

DATABASE = "sagelab_demo"
TABLE = "patients"
RECIPE = {
    "target": "benign",
    "steps": [
        {"step": "deduplicate"},
        {"step": "parse_dates", "column": "exam_date", "drop": True},
        {"step": "impute", "columns": ["mean_texture", "mean_smoothness", "worst_area"], "strategy": "median",
         "indicator": True},
        {"step": "ordinal", "column": "size_class", "mapping": {"S": 1, "M": 2, "L": 3, "N/A": 0}},
        {"step": "one_hot", "columns": ["clinic"]},
        {"step": "scale", "columns": ["worst_area", "mean_area"], "method": "robust"},
        {"step": "split", "stratify": True, "seed": 7},
    ],
}


def messy_patients(seed: int = 7):
    """The breast-cancer table as a messy export (pandas DataFrame, header row, target `benign`)."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(data.data, columns=[name.replace(" ", "_") for name in data.feature_names])
    n = len(frame)
    frame["size_class"] = pd.cut(frame["mean_radius"], [0, 12, 16, 100], labels=["S", "M", "L"]).astype(str)
    frame.loc[rng.random(n) < 0.05, "size_class"] = "N/A"
    frame["clinic"] = rng.choice(["north", "south", "east"], n)
    days = rng.integers(0, 1500, n)
    dates = pd.Timestamp("2021-01-01") + pd.to_timedelta(days, unit="D")
    formats = rng.choice(["%Y-%m-%d", "%m/%d/%Y", "%b %d, %Y"], n)
    frame["exam_date"] = [d.strftime(f) for d, f in zip(dates, formats, strict=True)]
    for column in ("mean_texture", "mean_smoothness", "worst_area"):
        frame.loc[rng.random(n) < 0.05, column] = np.nan
    frame["benign"] = data.target
    return pd.concat([frame, frame.sample(6, random_state=seed)], ignore_index=True)


def upload_raw(s3, out) -> str:
    frame = messy_patients()
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    s3.put_object(Bucket=BUCKET, Key=f"raw/{TABLE}/{TABLE}.csv", Body=buffer.getvalue().encode())
    missing = int(frame.isna().sum().sum())
    out.write(f"Uploaded a messy export of the breast-cancer data: s3://{BUCKET}/raw/{TABLE}/{TABLE}.csv "
              f"({len(frame)} rows, {frame.shape[1]} columns, {missing} missing values, mixed date formats)\n")
    return f"s3://{BUCKET}/raw/{TABLE}/"


def catalog_and_query(glue, athena, crawler: str, out) -> bool:
    """Catalog the raw folder with a crawler, then ask Athena a question about it."""
    glue.create_database(DatabaseInput={"Name": DATABASE})
    glue.create_crawler(Name=crawler, Role=ROLE, DatabaseName=DATABASE,
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/raw/"}]})
    glue.start_crawler(Name=crawler)
    out.write(f"\nCataloging s3://{BUCKET}/raw/ with the Glue crawler {crawler} ...\n")
    wait_for([crawler], lambda n: glue.get_crawler(Name=n)["Crawler"],
             lambda c: "Completed" if c["State"] == "READY" and c.get("LastCrawl") else c["State"], out)
    table = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    columns = table["StorageDescriptor"]["Columns"]
    out.write(f"  table {DATABASE}.{TABLE}: {len(columns)} columns, e.g. "
              + ", ".join(f"{c['Name']} {c['Type']}" for c in columns[-4:]) + "\n")
    query = (f"SELECT clinic, count(*) AS patients, round(avg(benign), 3) AS benign_share, "
             f"count(*) - count(worst_area) AS missing_worst_area FROM {TABLE} GROUP BY clinic ORDER BY clinic")
    query_id = athena.start_query_execution(
        QueryString=query, QueryExecutionContext={"Database": DATABASE},
        ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena/"})["QueryExecutionId"]
    out.write(f"Athena: {query}\n")
    state = wait_for([query_id], lambda q: athena.get_query_execution(QueryExecutionId=q)["QueryExecution"],
                     lambda e: {"SUCCEEDED": "Completed", "FAILED": "Failed", "CANCELLED": "Stopped"}.get(
                         e["Status"]["State"], e["Status"]["State"]), out)[query_id]
    if state["Status"]["State"] != "SUCCEEDED":
        out.write(f"  {state['Status']['State']}: {state['Status'].get('StateChangeReason', '')}\n")
        return False
    rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
    for row in rows:
        out.write("  " + "".join(f"{cell.get('VarCharValue', ''):>20}" for cell in row["Data"]) + "\n")
    return True


def _processing_request(name: str, image: str, inputs: dict[str, str], output: str,
                        environment: dict[str, str]) -> dict:
    return {
        "ProcessingJobName": name, "RoleArn": ROLE, "AppSpecification": {"ImageUri": image},
        "Environment": environment,
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 5}},
        "ProcessingInputs": [{"InputName": key, "S3Input": {
            "S3Uri": uri, "LocalPath": f"/opt/ml/processing/input/{key}", "S3DataType": "S3Prefix",
            "S3InputMode": "File"}} for key, uri in inputs.items()],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "output", "S3Output": {
            "S3Uri": output, "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
    }


def _run_processing(sm, request: dict, out) -> bool:
    name = request["ProcessingJobName"]
    sm.create_processing_job(**request)
    desc = wait_for([name], lambda n: sm.describe_processing_job(ProcessingJobName=n),
                    lambda d: d["ProcessingJobStatus"], out)[name]
    if desc["ProcessingJobStatus"] != "Completed":
        out.write(f"  {desc['ProcessingJobStatus']}: {desc.get('FailureReason', '')}\n")
        return False
    return True


def profile(sm, s3, name: str, raw: str, out) -> bool:
    """The data-quality report (Model Monitor's statistics/constraints plus report.html)."""
    output = f"s3://{BUCKET}/profile/{name}"
    out.write(f"\nProfiling the raw data (processing job {name}, image sagelab-profiler) ...\n")
    if not _run_processing(sm, _processing_request(name, "sagelab-profiler:latest", {"data": raw}, output,
                                                   {"target": "benign",
                                                    "dataset_format": '{"csv": {"header": true}}'}), out):
        return False
    stats = json.loads(s3.get_object(Bucket=BUCKET, Key=f"profile/{name}/statistics.json")["Body"].read())
    incomplete = [f["name"] for f in stats["features"]
                  if f.get("numerical_statistics", f.get("string_statistics", {})).get("common", {}).get(
                      "num_missing", 0)]
    out.write(f"  {stats['dataset']['item_count']} rows, {len(stats['features'])} attributes; missing values in "
              f"{', '.join(incomplete) or 'none'}\n")
    out.write(f"  statistics.json, constraints.json and report.html in {output}/\n")
    return True


def prepare(sm, s3, name: str, raw: str, out) -> str | None:
    """Run the cleaning recipe as a processing job; returns the prefix holding train/validation/test."""
    s3.put_object(Bucket=BUCKET, Key=f"recipes/{name}/recipe.json", Body=json.dumps(RECIPE, indent=2).encode())
    output = f"s3://{BUCKET}/prepared/{name}"
    out.write(f"\nCleaning and splitting with a feature-processing recipe (processing job {name}) ...\n")
    for step in RECIPE["steps"]:
        out.write(f"  - {json.dumps(step)}\n")
    if not _run_processing(sm, _processing_request(name, "sagelab-recipe:latest", {
            "data": raw, "recipe": f"s3://{BUCKET}/recipes/{name}/"}, output, {}), out):
        return None
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=f"prepared/{name}/summary.json")["Body"].read())
    out.write(f"  {len(summary['feature_columns'])} features; channels in {output}/{{train,validation,test}}/\n")
    return output


def read_test_rows(s3, prefix: str) -> np.ndarray:
    bucket, key = prefix.removeprefix("s3://").split("/", 1)
    body = s3.get_object(Bucket=bucket, Key=f"{key}/test/test.csv")["Body"].read().decode()
    return np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2)
