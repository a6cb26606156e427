"""The web console at /console, driven by Debian's Chromium (Playwright) and by plain HTTP against a real
server: login, a training job finishing on its page, approval through IAM, Athena, the lake, and the
session's defences (CSRF, a tampered cookie, escaping of user data)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import requests
from conftest import unique
from helpers import IMAGES, ROLE, channel, job_request, upload_breast_cancer, wait_job

from sagelab.catalog.formats import storage_descriptor
from sagelab.embedded import ServerProcess

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
EVIL = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    # Endpoint metrics in 2-second periods, so that invocations reach CloudWatch within the test.
    proc = ServerProcess(tmp_path_factory.mktemp("console-home"),
                         env={"SAGELAB_ENDPOINT_METRIC_PERIOD_SECONDS": "2"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    folder = os.environ.get("SAGELAB_TEST_ARTIFACTS")
    if folder:
        path = Path(folder) / "console"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("console-screens")


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api", reason="the test extra's playwright is not installed")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, srv):
    """A logged-in page as the server's root key; no request leaves 127.0.0.1 and no script errs."""
    context = browser.new_context()
    problems: list[str] = []
    tab = context.new_page()
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.on("request", lambda r: problems.append(f"fetched {r.url}") if not r.url.startswith((srv.url, "data:")) else None)
    key, secret = srv.credentials()
    tab.goto(f"{srv.url}/console/")
    tab.fill("input[name=access_key_id]", key)
    tab.fill("input[name=secret_access_key]", secret)
    tab.click("button[type=submit]")
    tab.wait_for_url(re.compile(r".*/console/training-jobs$"))
    yield tab
    context.close()
    assert problems == []


@pytest.fixture(scope="module")
def lake_bucket(srv) -> str:
    s3 = srv.client("s3")
    name = unique("console")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="people/p.csv", Body=b"id,name\n1,ann\n2,bob\n3,cy\n")
    s3.put_object(Bucket=name, Key=f"odd/{EVIL}.txt", Body=f"hello {EVIL}".encode())
    s3.put_object(Bucket=name, Key="reports/report.html", Body=b"<html><body><h1>profile</h1></body></html>")
    rows = "".join(f"{i},{i % 7 * 1.5},{'ab'[i % 2]}\n" for i in range(60))
    s3.put_object(Bucket=name, Key="raw/data.csv", Body=f"id,x,label\n{rows}".encode())
    return name


@pytest.fixture(scope="module")
def profiled(srv, lake_bucket) -> str:
    """A profiler processing job (report.html, statistics.json) started early; its name."""
    job = unique("profile")
    srv.client("sagemaker").create_processing_job(
        ProcessingJobName=job, RoleArn=ROLE, AppSpecification={"ImageUri": "sagelab-profiler:latest"},
        Environment={"target": "label", "dataset_format": '{"csv": {"header": true}}'},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 5}},
        ProcessingInputs=[{"InputName": "data", "S3Input": {
            "S3Uri": f"s3://{lake_bucket}/raw/", "LocalPath": "/opt/ml/processing/input/data",
            "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        ProcessingOutputConfig={"Outputs": [{"OutputName": "output", "S3Output": {
            "S3Uri": f"s3://{lake_bucket}/profile/{job}", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]})
    return job


@pytest.fixture(scope="module")
def trained(srv, lake_bucket, profiled, tmp_path_factory) -> dict:
    sm = srv.client("sagemaker")
    upload_breast_cancer(srv.client("s3"), lake_bucket, tmp_path_factory.mktemp("bc"))
    job = unique("xgb")
    sm.create_training_job(**job_request(job, "xgboost", lake_bucket, {
        "objective": "binary:logistic", "num_round": "6", "max_depth": "2", "eval_metric": "auc"}))
    return {"job": job, "sm": sm}


@pytest.fixture(scope="module")
def tuned(trained, lake_bucket) -> str:
    """A two-trial grid over max_depth on the same data, started once the data is there; its name."""
    name = unique("grid")
    trained["sm"].create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, HyperParameterTuningJobConfig={
            "Strategy": "Grid", "ResourceLimits": {"MaxParallelTrainingJobs": 2},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ParameterRanges": {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["1", "2"]}]}},
        TrainingJobDefinition={
            "StaticHyperParameters": {"num_round": "3", "objective": "binary:logistic", "eval_metric": "auc"},
            "AlgorithmSpecification": {"TrainingImage": IMAGES["xgboost"], "TrainingInputMode": "File"},
            "RoleArn": ROLE, "InputDataConfig": [channel("train", f"s3://{lake_bucket}/data/train/"),
                                                 channel("validation", f"s3://{lake_bucket}/data/validation/")],
            "OutputDataConfig": {"S3OutputPath": f"s3://{lake_bucket}/tuning-output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}})
    return name


@pytest.fixture
def login(srv):
    """Logs a plain HTTP client in (as root, or with the key pair given); every client is closed after."""
    clients: list[requests.Session] = []

    def logged_in(key: str | None = None, secret: str | None = None) -> requests.Session:
        if key is None:
            key, secret = srv.credentials()
        http = requests.Session()
        clients.append(http)
        answer = http.post(f"{srv.url}/console/login", data={"access_key_id": key, "secret_access_key": secret})
        assert answer.status_code == 200 and answer.url.endswith("/console/training-jobs")
        return http

    yield logged_in
    for http in clients:
        http.close()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


# --- in the browser -------------------------------------------------------------------------------------
def test_login_refuses_a_wrong_secret_and_admits_the_right_one(browser, srv, screens):
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(f"{srv.url}/console/lake")
        assert "/console/login" in tab.url
        key, secret = srv.credentials()
        tab.fill("input[name=access_key_id]", key)
        tab.fill("input[name=secret_access_key]", secret[:-1] + ("x" if secret[-1] != "x" else "y"))
        tab.click("button[type=submit]")
        assert "not valid" in tab.locator("[role=alert]").inner_text()
        tab.screenshot(path=str(screens / "login-refused.png"))
        assert not [c for c in context.cookies() if c["name"] == "sagelab_console"]
        tab.fill("input[name=access_key_id]", key)
        tab.fill("input[name=secret_access_key]", secret)
        tab.click("button[type=submit]")
        tab.wait_for_url(re.compile(r".*/console/lake$"))  # back where the user was going
        [cookie] = [c for c in context.cookies() if c["name"] == "sagelab_console"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
        tab.click("form.logout button")
        tab.wait_for_url(re.compile(r".*/console/login$"))
    finally:
        context.close()


@pytest.mark.slow
def test_a_training_job_finishes_on_its_page(page, trained, tuned, screens):
    job = trained["job"]
    page.goto(page.url.rsplit("/console/", 1)[0] + f"/console/training-jobs/{job}")
    page.wait_for_function("document.getElementById('status').textContent === 'Completed'", timeout=240_000)
    page.wait_for_selector("svg.plot[data-final=true]", timeout=30_000)  # the page reloaded, done
    assert "validation:auc" in page.locator("#final-metrics").inner_text()
    assert "Completed" in page.locator("#transitions").inner_text()
    # Every round's train:auc and validation:auc, read from the job's log by its MetricDefinitions.
    assert int(page.locator("svg.plot").get_attribute("data-points")) == 2 * 6
    assert page.locator("svg.plot polyline").count() >= 1
    page.screenshot(path=str(screens / "training-job.png"), full_page=True)
    page.click("text=Training")
    assert job in page.locator("#training-jobs").inner_text()


@pytest.mark.slow
def test_a_tuning_job_shows_each_trials_objective_and_the_best_so_far(page, srv, tuned, screens):
    sm = srv.client("sagemaker")
    for _ in range(300):
        described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuned)
        if described["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(0.5)
    assert described["HyperParameterTuningJobStatus"] == "Completed", described.get("FailureReason")
    page.click("text=Tuning")
    page.click(f"#tuning-jobs a:text-is('{tuned}')")
    page.wait_for_selector("svg.plot[data-final=true]")
    assert page.locator("svg.plot polyline").count() == 2  # the objective per trial, the best so far
    assert page.locator("svg.plot .legend").all_text_contents() == ["validation:auc", "best so far"]
    assert page.locator("#trials tbody tr").count() == 2
    best = described["BestTrainingJob"]
    assert best["TrainingJobName"] in page.locator("main table").first.inner_text()
    page.screenshot(path=str(screens / "tuning-job.png"), full_page=True)


@pytest.mark.slow
def test_approve_a_model_package(page, srv, trained, lake_bucket, screens):
    sm = trained["sm"]
    artifact = wait_job(sm, trained["job"])["ModelArtifacts"]["S3ModelArtifacts"]
    srv.client("s3").put_object(Bucket=lake_bucket, Key="evaluation/evaluation.json", Body=json.dumps(
        {"binary_classification_metrics": {"accuracy": {"value": 0.93, "standard_deviation": "NaN"}}}).encode())
    group = unique("group")
    sm.create_model_package_group(ModelPackageGroupName=group)
    arn = sm.create_model_package(
        ModelPackageGroupName=group, InferenceSpecification={
            "Containers": [{"Image": IMAGES["xgboost"], "ModelDataUrl": artifact}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        ModelMetrics={"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": f"s3://{lake_bucket}/evaluation/evaluation.json"}}},
        ModelApprovalStatus="PendingManualApproval")["ModelPackageArn"]
    page.click("text=Registry")
    row = page.locator(f"table[data-group='{group}'] tr", has_text="PendingManualApproval")
    row.locator("button", has_text="Approve").click()
    page.wait_for_selector(f"table[data-group='{group}'] .status-Approved")
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    page.locator(f"table[data-group='{group}'] a", has_text="1").click()
    assert "0.93" in page.locator("table.evaluation").inner_text()  # evaluation.json inline
    page.screenshot(path=str(screens / "model-package.png"), full_page=True)


def test_run_an_athena_query_and_see_rows(page, srv, lake_bucket, screens):
    glue = srv.client("glue")
    database = unique("consoledb").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=database, TableInput={
        "Name": "people", "Parameters": {"skip.header.line.count": "1"},
        "StorageDescriptor": storage_descriptor("csv", f"s3://{lake_bucket}/people/", [
            {"Name": "id", "Type": "bigint"}, {"Name": "name", "Type": "string"}])})
    page.click("text=Athena")
    page.fill("textarea[name=query]", "SELECT name FROM people WHERE id >= 2 ORDER BY id")
    page.fill("input[name=database]", database)
    page.fill("input[name=output]", f"s3://{lake_bucket}/athena-results/")
    page.click("#editor button[type=submit]")
    page.wait_for_selector("#results", timeout=60_000)
    assert page.locator("#state").inner_text() == "SUCCEEDED"
    assert page.locator("#results tbody tr").all_inner_texts() == ["bob", "cy"]
    page.screenshot(path=str(screens / "athena.png"), full_page=True)


def test_browse_the_lake(page, lake_bucket, screens):
    page.click("text=Lake")
    page.click(f"#buckets a:text-is('{lake_bucket}')")
    page.click("#objects a:text-is('people/')")
    page.click("#objects a:text-is('p.csv')")
    assert page.locator("#preview tr").all_inner_texts() == ["id\tname", "1\tann", "2\tbob", "3\tcy"]
    page.screenshot(path=str(screens / "lake-object.png"), full_page=True)
    page.click(f"a:text-is('back to s3://{lake_bucket}/people')")
    page.click(f".crumbs a:text-is('{lake_bucket}')")
    page.click("#objects a:text-is('odd/')")
    assert page.locator("#objects a", has_text="onerror").inner_text() == f"{EVIL}.txt"  # shown, not run
    assert page.evaluate("window.__pwned") is None


@pytest.mark.slow
def test_a_profile_report_shows_inline(page, srv, profiled, screens):
    sm = srv.client("sagemaker")
    sm.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=profiled, WaiterConfig={"Delay": 1, "MaxAttempts": 240})
    described = sm.describe_processing_job(ProcessingJobName=profiled)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    page.click("text=Reports")
    frame = page.frame_locator(f"iframe.report[title$='profile/{profiled}/report.html']")
    assert frame.locator("section").count() >= 2
    page.screenshot(path=str(screens / "reports.png"), full_page=True)


# --- plain HTTP -----------------------------------------------------------------------------------------
def test_a_post_without_the_sessions_csrf_token_is_refused(srv, login):
    http = login()
    approval = f"{srv.url}/console/model-packages/approval"
    assert http.post(approval, data={"arn": "x", "status": "Approved"}).status_code == 403
    assert http.post(approval, data={"arn": "x", "status": "Approved", "csrf_token": "forged"}).status_code == 403
    # A token from another session does not fit this one.
    other = csrf_of(login().get(f"{srv.url}/console/athena").text)
    assert http.post(approval, data={"arn": "x", "status": "Approved", "csrf_token": other}).status_code == 403


def test_a_tampered_or_foreign_cookie_sends_back_to_login(srv, login):
    http = login()
    cookie = http.cookies["sagelab_console"]
    key_id, expires, nonce, mac = cookie.split(".")
    forged = [f"{key_id}.{int(expires) + 3600}.{nonce}.{mac}", f"{key_id}.{expires}.{nonce}.{mac[:-2]}AA",
              f"AKIAOTHERKEY00000000.{expires}.{nonce}.{mac}", "garbage"]
    for value in forged:
        answer = requests.get(f"{srv.url}/console/lake", cookies={"sagelab_console": value}, allow_redirects=False)
        assert answer.status_code == 303 and "/console/login" in answer.headers["location"], value
        feed = requests.get(f"{srv.url}/console/api/training-jobs/x", cookies={"sagelab_console": value})
        assert feed.status_code == 401
    assert http.get(f"{srv.url}/console/lake", allow_redirects=False).status_code == 200


def test_user_data_is_escaped_and_reports_are_sandboxed(srv, lake_bucket, login):
    http = login()
    listing = http.get(f"{srv.url}/console/lake/{lake_bucket}", params={"prefix": "odd/"}).text
    assert "&lt;img src=x onerror=" in listing and "<img" not in listing
    shown = http.get(f"{srv.url}/console/lake/{lake_bucket}/object", params={"key": f"odd/{EVIL}.txt"}).text
    assert "hello &lt;img" in shown and "<img" not in shown
    sql = http.get(f"{srv.url}/console/athena", params={"query": "SELECT '</textarea><script>x()</script>'"}).text
    assert "&lt;/textarea&gt;&lt;script&gt;" in sql and "<script>x()" not in sql
    raw = http.get(f"{srv.url}/console/lake/{lake_bucket}/raw", params={"key": "reports/report.html"})
    assert raw.headers["content-security-policy"].startswith("sandbox") and b"<h1>profile</h1>" in raw.content
    assert http.get(f"{srv.url}/console/lake").headers["x-frame-options"] == "DENY"


def test_the_console_acts_as_the_user_and_iam_decides(srv, trained, login):
    iam, sm = srv.client("iam"), trained["sm"]
    name = unique("viewer")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*",
                                                "Action": ["sagemaker:List*", "sagemaker:Describe*"]}]}))
    group = unique("group")
    sm.create_model_package_group(ModelPackageGroupName=group)
    artifact = wait_job(sm, trained["job"])["ModelArtifacts"]["S3ModelArtifacts"]
    arn = sm.create_model_package(ModelPackageGroupName=group, InferenceSpecification={
        "Containers": [{"Image": IMAGES["xgboost"], "ModelDataUrl": artifact}],
        "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        ModelApprovalStatus="PendingManualApproval")["ModelPackageArn"]
    http = login(key["AccessKeyId"], key["SecretAccessKey"])
    registry = http.get(f"{srv.url}/console/model-packages")
    assert registry.status_code == 200 and group in registry.text
    refused = http.post(f"{srv.url}/console/model-packages/approval",
                        data={"arn": arn, "status": "Approved", "csrf_token": csrf_of(registry.text)})
    assert "AccessDenied" in refused.text and "sagemaker:UpdateModelPackage" in refused.text
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"
    lake = http.get(f"{srv.url}/console/lake")  # no s3:ListAllMyBuckets: the page says so, as AWS would
    assert lake.status_code == 403 and "AccessDenied" in lake.text
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    gone = http.get(f"{srv.url}/console/model-packages", allow_redirects=False)
    assert gone.status_code == 303  # a deleted key's session ends


def test_missing_things_are_the_apis_errors_escaped(srv, login):
    http = login()
    for path in ("/console/endpoints", "/console/tuning-jobs", "/console/training-jobs", "/console/reports"):
        assert http.get(f"{srv.url}{path}").status_code == 200, path
    missing = http.get(f"{srv.url}/console/endpoints/{EVIL}")
    assert missing.status_code == 400 and "ValidationException" in missing.text
    assert "&lt;img" in missing.text and "<img" not in missing.text
    feed = http.get(f"{srv.url}/console/api/training-jobs/nope")
    assert feed.status_code == 400 and "ValidationException" in feed.json()["error"]
    assert http.get(f"{srv.url}/console/api/endpoints/nope").json()["series"] == []  # no invocations yet


@pytest.mark.slow
def test_an_endpoint_shows_its_variants_and_invocations(page, srv, trained, screens):
    sm = trained["sm"]
    artifact = wait_job(sm, trained["job"])["ModelArtifacts"]["S3ModelArtifacts"]
    name = unique("ep")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": IMAGES["xgboost"], "ModelDataUrl": artifact})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})
    runtime = srv.client("sagemaker-runtime")
    for _ in range(3):
        runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=",".join(["1.0"] * 30))
    page.click("text=Endpoints")
    page.click(f"#endpoints a:text-is('{name}')")
    assert page.locator("#variants tbody tr").all_inner_texts()[0].split("\t")[:3] == ["AllTraffic", "1", "1"]
    for _ in range(60):  # the server flushes invocation counts every half period (1 s here)
        page.reload()
        page.wait_for_selector("svg.plot[data-final=true]")
        if page.locator("svg.plot polyline").count():
            break
        time.sleep(0.5)
    assert page.locator("svg.plot .legend").all_text_contents() == ["AllTraffic"]
    page.screenshot(path=str(screens / "endpoint.png"), full_page=True)
    sm.delete_endpoint(EndpointName=name)


def test_console_calls_are_in_cloudtrail_as_the_console(srv, login):
    http = login()
    registry = http.get(f"{srv.url}/console/model-packages")
    http.post(f"{srv.url}/console/model-packages/approval", data={
        "arn": "arn:aws:sagemaker:us-east-1:000000000000:model-package/none/1", "status": "Approved",
        "csrf_token": csrf_of(registry.text)})
    events = srv.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "UpdateModelPackage"}])["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    assert any(r["userAgent"] == "sagelab-console" and r.get("errorCode") for r in records)
