"""The console's pages and JSON feeds. Each takes a `View` (the signed-in principal's gateway, the request's
query and form) and reads or acts only through the gateway, so IAM decides what each user sees."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections.abc import Mapping
from typing import Any

from sagelab.algorithms.base import MetricDefinition
from sagelab.console.gateway import Gateway
from sagelab.console.html import Safe, error_box, esc, form, join, link, seg, table, tag, url
from sagelab.errors import SagelabError
from sagelab.training.metrics import TRAINING_NAMESPACE, metric_series

#: How much of an object the lake browser previews.
PREVIEW_BYTES = 1024
#: A report shown inline is read whole; past this it is offered as a link only.
REPORT_BYTES = 20 * 1024 * 1024
TRAINING_DONE = {"Completed", "Failed", "Stopped"}
ATHENA_DONE = {"SUCCEEDED", "FAILED", "CANCELLED"}
#: Where SageMaker (and sagelab) writes training jobs' logs, one stream per host.
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@dataclasses.dataclass
class View:
    gateway: Gateway
    csrf: str
    who: str
    query: Mapping[str, str]
    form: Mapping[str, str]
    path_params: Mapping[str, str]


@dataclasses.dataclass
class Html:
    title: str
    body: object
    status: int = 200
    refresh: int | None = None


@dataclasses.dataclass
class Redirect:
    location: str


@dataclasses.dataclass
class Raw:
    body: bytes
    content_type: str
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def when(epoch: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(epoch))) if epoch not in (None, "") else ""


def status_cell(status: object) -> Safe:
    return tag("span", status, class_=f"status-{status}")


def plot(src: str, *, live: bool = False, label: str = "") -> Safe:
    return tag("svg", "", class_="plot", data_src=src, data_live="true" if live else "false", aria_label=label,
               role="img")


# --- training -------------------------------------------------------------------------------------------
def training_jobs(view: View) -> Html:
    summaries = view.gateway.json("sagemaker", "ListTrainingJobs", {"MaxResults": 100})["TrainingJobSummaries"]
    rows = [(link(s["TrainingJobName"], f"/training-jobs/{seg(s['TrainingJobName'])}"),
             status_cell(s["TrainingJobStatus"]), when(s.get("CreationTime")), when(s.get("TrainingEndTime")))
            for s in summaries]
    return Html("Training jobs", table(["Name", "Status", "Created", "Ended"], rows, id="training-jobs"))


def training_job(view: View) -> Html:
    name = view.path_params["name"]
    job = view.gateway.json("sagemaker", "DescribeTrainingJob", {"TrainingJobName": name})
    status = job["TrainingJobStatus"]
    transitions = table(["Status", "Started", "Ended", "Message"], [
        (t["Status"], when(t.get("StartTime")), when(t.get("EndTime")), t.get("StatusMessage", ""))
        for t in job.get("SecondaryStatusTransitions", [])], id="transitions")
    final = table(["Metric", "Value"], [(m["MetricName"], m["Value"]) for m in job.get("FinalMetricDataList", [])],
                  id="final-metrics")
    facts = table([], [
        ("Status", Safe(f'<span id="status" class="status-{esc(status)}">{esc(status)}</span>')),
        ("Secondary status", tag("span", job.get("SecondaryStatus", ""), id="secondary")),
        ("Algorithm", job["AlgorithmSpecification"].get("TrainingImage")
         or job["AlgorithmSpecification"].get("AlgorithmName", "")),
        ("Failure reason", job.get("FailureReason", "")),
        ("Model artifacts", (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts", "")),
        ("Created", when(job.get("CreationTime"))), ("Ended", when(job.get("TrainingEndTime")))])
    body = join([facts, tag("h2", "Metrics over time"),
                 plot(url(f"/api/training-jobs/{seg(name)}"), live=status not in TRAINING_DONE,
                      label="metric curves"),
                 tag("h2", "Final metrics"), final, tag("h2", "Secondary status transitions"), transitions])
    return Html(f"Training job {name}", body)


def training_job_feed(view: View) -> dict[str, Any]:
    name = view.path_params["name"]
    job = view.gateway.json("sagemaker", "DescribeTrainingJob", {"TrainingJobName": name})
    try:
        series, x = _log_curves(view.gateway, job), "value number in the log (round, epoch, ...)"
    except SagelabError:  # no logs:FilterLogEvents: what CloudWatch metrics keep, one average a second
        series, x = _cloudwatch_curves(view.gateway, job), "seconds since training started"
    return {"status": job["TrainingJobStatus"], "secondary": job.get("SecondaryStatus", ""),
            "done": job["TrainingJobStatus"] in TRAINING_DONE, "x": x, "series": series,
            "empty": "no metrics yet"}


def _log_curves(gateway: Gateway, job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every value each MetricDefinition finds in the job's log so far, in order: the whole curve even when
    rounds finish faster than CloudWatch's one-second resolution, and live while the job runs."""
    definitions = [MetricDefinition(d["Name"], d["Regex"])
                   for d in job["AlgorithmSpecification"].get("MetricDefinitions", [])]
    lines: list[str] = []
    token = None
    while True:
        params: dict[str, Any] = {"logGroupName": TRAINING_LOG_GROUP, "logStreamNamePrefix": f"{job['TrainingJobName']}/"}
        if token:
            params["nextToken"] = token
        try:
            page = gateway.json("logs", "FilterLogEvents", params)
        except SagelabError as missing:
            if missing.code_for("json") == "ResourceNotFoundException":  # no job has logged yet
                return []
            raise
        lines += [event["message"] for event in page.get("events", [])]
        token = page.get("nextToken")
        if not token:
            break
    curves: dict[str, list[list[float]]] = {}
    for metric, value in metric_series(lines, definitions):
        points = curves.setdefault(metric, [])
        points.append([len(points) + 1, value])
    return [{"name": metric, "points": points} for metric, points in sorted(curves.items())]


def _cloudwatch_curves(gateway: Gateway, job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each metric the job published to CloudWatch, as (seconds since start, value) points."""
    host = [{"Name": "Host", "Value": f"{job['TrainingJobName']}/algo-1"}]
    metrics = gateway.json("monitoring", "ListMetrics", {"Namespace": TRAINING_NAMESPACE,
                                                         "Dimensions": host})["Metrics"]
    start = float(job.get("TrainingStartTime") or job["CreationTime"])
    end = float(job.get("TrainingEndTime") or time.time()) + 2
    series = []
    for name in sorted({m["MetricName"] for m in metrics}):
        points = gateway.json("monitoring", "GetMetricStatistics", {
            "Namespace": TRAINING_NAMESPACE, "MetricName": name, "Dimensions": host, "StartTime": start - 2,
            "EndTime": end, "Period": 1, "Statistics": ["Average"]})["Datapoints"]
        points = sorted((float(p["Timestamp"]) - start, p["Average"]) for p in points)
        series.append({"name": name, "points": [list(p) for p in points]})
    return series


# --- tuning ---------------------------------------------------------------------------------------------
def tuning_jobs(view: View) -> Html:
    summaries = view.gateway.json("sagemaker", "ListHyperParameterTuningJobs",
                                  {"MaxResults": 100})["HyperParameterTuningJobSummaries"]
    rows = [(link(s["HyperParameterTuningJobName"], f"/tuning-jobs/{seg(s['HyperParameterTuningJobName'])}"),
             status_cell(s["HyperParameterTuningJobStatus"]), s.get("Strategy", ""),
             (s.get("TrainingJobStatusCounters") or {}).get("Completed", 0), when(s.get("CreationTime")))
            for s in summaries]
    return Html("Tuning jobs", table(["Name", "Status", "Strategy", "Trials completed", "Created"], rows,
                                     id="tuning-jobs"))


def _trials(gateway: Gateway, name: str) -> list[dict[str, Any]]:
    trials: list[dict[str, Any]] = []
    token = None
    while True:
        params: dict[str, Any] = {"HyperParameterTuningJobName": name, "MaxResults": 100}
        if token:
            params["NextToken"] = token
        page = gateway.json("sagemaker", "ListTrainingJobsForHyperParameterTuningJob", params)
        trials += page["TrainingJobSummaries"]
        token = page.get("NextToken")
        if not token:
            return sorted(trials, key=lambda t: float(t.get("CreationTime") or 0))


def tuning_job(view: View) -> Html:
    name = view.path_params["name"]
    job = view.gateway.json("sagemaker", "DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": name})
    objective = job["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective") or {}
    best = (job.get("BestTrainingJob") or {})
    rows = []
    for trial in _trials(view.gateway, name):
        value = (trial.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value", "")
        rows.append((link(trial["TrainingJobName"], f"/training-jobs/{seg(trial['TrainingJobName'])}"),
                     status_cell(trial["TrainingJobStatus"]), value,
                     ", ".join(f"{k}={v}" for k, v in sorted((trial.get("TunedHyperParameters") or {}).items()))))
    facts = table([], [
        ("Status", status_cell(job["HyperParameterTuningJobStatus"])),
        ("Objective", f"{objective.get('Type', '')} {objective.get('MetricName', '')}"),
        ("Best trial", best.get("TrainingJobName", "")),
        ("Best objective", (best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value", ""))])
    body = join([facts, tag("h2", "Objective per trial and best so far"),
                 plot(url(f"/api/tuning-jobs/{seg(name)}"), live=False, label="objective per trial"),
                 tag("h2", "Trials"), table(["Training job", "Status", "Objective", "Hyperparameters"], rows,
                                             id="trials")])
    return Html(f"Tuning job {name}", body)


def tuning_job_feed(view: View) -> dict[str, Any]:
    name = view.path_params["name"]
    job = view.gateway.json("sagemaker", "DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": name})
    objective = job["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective") or {}
    better = max if objective.get("Type") == "Maximize" else min
    per_trial, best_so_far, best = [], [], None
    for i, trial in enumerate(_trials(view.gateway, name), start=1):
        value = (trial.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")
        if value is None:
            continue
        per_trial.append([i, value])
        best = value if best is None else better(best, value)
        best_so_far.append([i, best])
    return {"status": job["HyperParameterTuningJobStatus"], "done": True, "x": "trial",
            "series": [{"name": objective.get("MetricName", "objective"), "points": per_trial},
                       {"name": "best so far", "points": best_so_far, "dash": True}]}


# --- endpoints ------------------------------------------------------------------------------------------
def endpoints(view: View) -> Html:
    listed = view.gateway.json("sagemaker", "ListEndpoints", {"MaxResults": 100})["Endpoints"]
    rows = [(link(e["EndpointName"], f"/endpoints/{seg(e['EndpointName'])}"), status_cell(e["EndpointStatus"]),
             when(e.get("CreationTime"))) for e in listed]
    return Html("Endpoints", table(["Name", "Status", "Created"], rows, id="endpoints"))


def endpoint(view: View) -> Html:
    name = view.path_params["name"]
    described = view.gateway.json("sagemaker", "DescribeEndpoint", {"EndpointName": name})
    variants = table(["Variant", "Current instances", "Desired instances", "Current weight", "Desired weight"], [
        (v["VariantName"], v.get("CurrentInstanceCount", ""), v.get("DesiredInstanceCount", ""),
         v.get("CurrentWeight", ""), v.get("DesiredWeight", "")) for v in described.get("ProductionVariants", [])],
        id="variants")
    facts = table([], [("Status", status_cell(described["EndpointStatus"])),
                             ("Config", described.get("EndpointConfigName", "")),
                             ("Failure reason", described.get("FailureReason", ""))])
    body = join([facts, tag("h2", "Production variants"), variants, tag("h2", "Invocations (CloudWatch)"),
                 plot(url(f"/api/endpoints/{seg(name)}"), label="invocations")])
    return Html(f"Endpoint {name}", body)


def endpoint_feed(view: View) -> dict[str, Any]:
    name = view.path_params["name"]
    now = time.time()
    metrics = view.gateway.json("monitoring", "ListMetrics", {
        "Namespace": "AWS/SageMaker", "MetricName": "Invocations",
        "Dimensions": [{"Name": "EndpointName", "Value": name}]})["Metrics"]
    series = []
    for metric in metrics:
        variant = next((d["Value"] for d in metric["Dimensions"] if d["Name"] == "VariantName"), "")
        points = view.gateway.json("monitoring", "GetMetricStatistics", {
            "Namespace": "AWS/SageMaker", "MetricName": "Invocations", "Dimensions": metric["Dimensions"],
            "StartTime": now - 3 * 3600, "EndTime": now + 60, "Period": 60, "Statistics": ["Sum"]})["Datapoints"]
        series.append({"name": variant, "points": sorted([(float(p["Timestamp"]) - now) / 60, p["Sum"]]
                                                         for p in points)})
    return {"done": True, "x": "minutes from now", "series": series, "empty": "no invocations recorded"}


# --- model registry -------------------------------------------------------------------------------------
def model_packages(view: View) -> Html:
    groups = view.gateway.json("sagemaker", "ListModelPackageGroups", {"MaxResults": 100})
    sections = []
    for group in groups["ModelPackageGroupSummaryList"]:
        name = group["ModelPackageGroupName"]
        packages = view.gateway.json("sagemaker", "ListModelPackages", {
            "ModelPackageGroupName": name, "MaxResults": 100})["ModelPackageSummaryList"]
        rows = [(link(p.get("ModelPackageVersion", ""), "/model-package", arn=p["ModelPackageArn"]),
                 status_cell(p.get("ModelApprovalStatus", "")), when(p.get("CreationTime")),
                 approval_buttons(view, p["ModelPackageArn"], p.get("ModelApprovalStatus", "")))
                for p in packages]
        sections.append(join([tag("h2", name), table(["Version", "Approval", "Created", ""], rows,
                                                     data_group=name)]))
    message = view.query.get("message")
    return Html("Model registry", join([error_box(message) if message else "", *sections]))


def approval_buttons(view: View, arn: str, current: str) -> Safe:
    buttons = [tag("button", label, type="submit", name="status", value=status)
               for status, label in (("Approved", "Approve"), ("Rejected", "Reject")) if status != current]
    fields = join([Safe(f'<input type="hidden" name="arn" value="{esc(arn)}">'), *buttons])
    return form(url("/model-packages/approval"), view.csrf, fields, class_="approval")


def set_approval(view: View) -> Redirect:
    status = view.form.get("status", "")
    if status not in ("Approved", "Rejected", "PendingManualApproval"):
        raise SagelabError(f"Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum "
                           "value set: [Approved, Rejected, PendingManualApproval]")
    try:
        view.gateway.json("sagemaker", "UpdateModelPackage", {"ModelPackageArn": view.form.get("arn", ""),
                                                              "ModelApprovalStatus": status})
    except SagelabError as refused:
        return Redirect(url("/model-packages", message=f"{refused.code_for('json')}: {refused.message}"))
    return Redirect(url("/model-packages"))


def model_package(view: View) -> Html:
    arn = view.query.get("arn", "")
    package = view.gateway.json("sagemaker", "DescribeModelPackage", {"ModelPackageName": arn})
    containers = (package.get("InferenceSpecification") or {}).get("Containers", [])
    facts = table([], [
        ("Group", package.get("ModelPackageGroupName", "")), ("Version", package.get("ModelPackageVersion", "")),
        ("Approval", status_cell(package.get("ModelApprovalStatus", ""))),
        ("Description", package.get("ModelPackageDescription", "")),
        ("Images", ", ".join(c.get("Image", "") for c in containers)),
        ("Model data", ", ".join(c.get("ModelDataUrl", "") for c in containers))])
    parts: list[object] = [facts, approval_buttons(view, arn, package.get("ModelApprovalStatus", ""))]
    quality = ((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}
    if quality.get("S3Uri"):
        parts += [tag("h2", "Evaluation"), evaluation_report(view.gateway, quality["S3Uri"])]
    return Html(f"Model package {package.get('ModelPackageGroupName', '')} v{package.get('ModelPackageVersion', '')}",
                join(parts))


# --- reports --------------------------------------------------------------------------------------------
def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def evaluation_report(gateway: Gateway, uri: str) -> Safe:
    """evaluation.json's metrics (SageMaker's model-quality shape: {problem: {metric: {value, ...}}})."""
    try:
        document = json.loads(gateway.get_object(*split_s3(uri), max_bytes=REPORT_BYTES))
    except Exception as missing:  # noqa: BLE001 - a missing or unreadable report is shown, not raised
        return error_box(f"{uri}: {missing}")
    rows = []
    for problem, metrics in document.items():
        if not isinstance(metrics, dict):
            continue
        for metric, value in metrics.items():
            shown = value.get("value", value) if isinstance(value, dict) else value
            if isinstance(shown, (dict, list)):
                shown = json.dumps(shown)[:300]
            rows.append((problem, metric, shown))
    return join([tag("p", link(uri, f"/lake/{seg(split_s3(uri)[0])}/object", key=split_s3(uri)[1])),
                 table(["Problem type", "Metric", "Value"], rows, class_="evaluation")])


def profile_report(bucket: str, key: str) -> Safe:
    # A sandboxed frame: the report's own script and styles run, but never with the console's origin.
    return tag("iframe", "", class_="report", sandbox="allow-scripts", title=f"{bucket}/{key}",
               src=url(f"/lake/{seg(bucket)}/raw", key=key))


def reports(view: View) -> Html:
    """Every processing job's outputs that hold a profile (report.html) or an evaluation (evaluation.json)."""
    jobs = view.gateway.json("sagemaker", "ListProcessingJobs", {"MaxResults": 100})["ProcessingJobSummaries"]
    sections: list[object] = []
    for summary in jobs:
        job = view.gateway.json("sagemaker", "DescribeProcessingJob",
                                {"ProcessingJobName": summary["ProcessingJobName"]})
        found: list[object] = []
        for output in (job.get("ProcessingOutputConfig") or {}).get("Outputs", []):
            uri = (output.get("S3Output") or {}).get("S3Uri", "")
            if not uri:
                continue
            bucket, prefix = split_s3(uri.rstrip("/") + "/")
            try:
                _, objects = view.gateway.list_objects(bucket, prefix)
            except Exception:  # noqa: BLE001 - an output this user may not read, or that is gone, is skipped
                continue
            for key, _, _ in objects:
                if key.endswith("/report.html") or key == "report.html":
                    found += [tag("h3", f"Profile report: s3://{bucket}/{key}"), profile_report(bucket, key)]
                elif key.endswith("evaluation.json"):
                    found += [tag("h3", f"Evaluation: s3://{bucket}/{key}"),
                              evaluation_report(view.gateway, f"s3://{bucket}/{key}")]
        if found:
            sections += [tag("h2", f"{job['ProcessingJobName']} ({job['ProcessingJobStatus']})"), *found]
    return Html("Reports", join(sections) if sections else tag("p", "No processing job has written a report yet."))


# --- the lake -------------------------------------------------------------------------------------------
def buckets(view: View) -> Html:
    rows = [(link(name, f"/lake/{seg(name)}"),) for name in view.gateway.list_buckets()]
    return Html("Lake", table(["Bucket"], rows, id="buckets"))


def bucket(view: View) -> Html:
    name = view.path_params["bucket"]
    prefix = view.query.get("prefix", "")
    prefixes, objects = view.gateway.list_objects(name, prefix)
    crumbs: list[object] = [link(name, f"/lake/{seg(name)}")]
    walked = ""
    for part in [p for p in prefix.split("/") if p]:
        walked += part + "/"
        crumbs += [" / ", link(part, f"/lake/{seg(name)}", prefix=walked)]
    rows = [(link(p.removeprefix(prefix), f"/lake/{seg(name)}", prefix=p), "", "") for p in prefixes]
    rows += [(link(k.removeprefix(prefix), f"/lake/{seg(name)}/object", key=k), size, modified)
             for k, size, modified in objects]
    return Html(f"s3://{name}/{prefix}", join([tag("p", join(crumbs), class_="crumbs"),
                                              table(["Name", "Size", "Last modified"], rows, id="objects")]))


def lake_object(view: View) -> Html:
    name, key = view.path_params["bucket"], view.query.get("key", "")
    head = view.gateway.get_object(name, key, max_bytes=PREVIEW_BYTES)
    parent = key.rpartition("/")[0]
    parts: list[object] = [tag("p", link(f"back to s3://{name}/{parent}", f"/lake/{seg(name)}",
                                         prefix=f"{parent}/" if parent else None))]
    text = head.decode("utf-8", "replace")
    if key.endswith(".csv"):
        lines = text.splitlines()[:-1] if len(head) == PREVIEW_BYTES else text.splitlines()
        rows = list(csv.reader(io.StringIO("\n".join(lines))))
        parts += [tag("h2", f"First {len(head)} bytes as CSV"), table([], rows, id="preview")]
    else:
        parts += [tag("h2", f"First {len(head)} bytes"), tag("pre", text, id="preview")]
    if key.endswith(".html"):
        parts += [tag("h2", "Rendered"), profile_report(name, key)]
    if key.endswith("evaluation.json"):
        parts += [tag("h2", "Evaluation"), evaluation_report(view.gateway, f"s3://{name}/{key}")]
    return Html(f"s3://{name}/{key}", join(parts))


def lake_raw(view: View) -> Raw:
    """An HTML report, whole, for a sandboxed frame: the CSP sandbox keeps it off the console's origin even if
    opened directly."""
    body = view.gateway.get_object(view.path_params["bucket"], view.query.get("key", ""), max_bytes=REPORT_BYTES)
    return Raw(body, "text/html; charset=utf-8", {"content-security-policy": "sandbox allow-scripts",
                                                   "x-content-type-options": "nosniff"})


# --- Athena ---------------------------------------------------------------------------------------------
def athena_editor(view: View, *, error: object = None, status: int = 200) -> Html:
    sql = view.form.get("query", view.query.get("query", ""))
    database = view.form.get("database", view.query.get("database", "default"))
    output = view.form.get("output", view.query.get("output", ""))
    workgroup = view.form.get("workgroup", view.query.get("workgroup", "primary"))
    fields = Safe(
        f'<label>SQL<textarea name="query" rows="8">{esc(sql)}</textarea></label>'
        f'<label>Database <input name="database" value="{esc(database)}"></label> '
        f'<label>Work group <input name="workgroup" value="{esc(workgroup)}"></label> '
        f'<label>Output location <input name="output" size="40" placeholder="s3://bucket/prefix/" '
        f'value="{esc(output)}"></label> <button type="submit">Run</button>')
    history = view.gateway.json("athena", "ListQueryExecutions", {"MaxResults": 10, "WorkGroup": workgroup})
    recent = [(link(q, f"/athena/{seg(q)}"),) for q in history.get("QueryExecutionIds", [])]
    return Html("Athena query editor", join([error_box(error) if error else "",
                                             form(url("/athena"), view.csrf, fields, id="editor"),
                                             tag("h2", "Recent queries"), table(["Query execution"], recent)]),
                status=status)


def athena_submit(view: View) -> Html | Redirect:
    params: dict[str, Any] = {"QueryString": view.form.get("query", ""),
                              "WorkGroup": view.form.get("workgroup") or "primary",
                              "QueryExecutionContext": {"Database": view.form.get("database") or "default"}}
    if view.form.get("output"):
        params["ResultConfiguration"] = {"OutputLocation": view.form["output"]}
    try:
        started = view.gateway.json("athena", "StartQueryExecution", params)
    except SagelabError as refused:
        return athena_editor(view, error=f"{refused.code_for('json')}: {refused.message}", status=refused.status)
    return Redirect(url(f"/athena/{seg(started['QueryExecutionId'])}"))


def athena_query(view: View) -> Html:
    query_id = view.path_params["query_id"]
    execution = view.gateway.json("athena", "GetQueryExecution", {"QueryExecutionId": query_id})["QueryExecution"]
    state = execution["Status"]["State"]
    facts = table([], [("State", Safe(f'<span id="state" class="status-{esc(state)}">{esc(state)}</span>')),
                             ("Query", tag("pre", execution.get("Query", ""))),
                             ("Reason", execution["Status"].get("StateChangeReason", "")),
                             ("Output", (execution.get("ResultConfiguration") or {}).get("OutputLocation", ""))])
    again = link("Edit this query", "/athena", query=execution.get("Query", ""),
                 database=(execution.get("QueryExecutionContext") or {}).get("Database", ""),
                 workgroup=execution.get("WorkGroup", "primary"),
                 output=((execution.get("ResultConfiguration") or {}).get("OutputLocation", "")).rpartition("/")[0]
                 + "/")
    parts: list[object] = [facts, tag("p", again)]
    if state == "SUCCEEDED":
        result = view.gateway.json("athena", "GetQueryResults", {"QueryExecutionId": query_id, "MaxResults": 1000})
        rows = [[d.get("VarCharValue", "") for d in row["Data"]] for row in result["ResultSet"]["Rows"]]
        header, rows = (rows[0], rows[1:]) if rows else ([], [])
        parts += [tag("h2", f"{len(rows)} rows"), table(header, rows, id="results")]
    return Html(f"Query {query_id}", join(parts), refresh=None if state in ATHENA_DONE else 1)
