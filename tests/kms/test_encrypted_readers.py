"""Everything that reads the lake still reads objects encrypted at rest: training channels, Athena, crawlers."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from conftest import unique
from helpers import job_request, wait_failed, wait_job
from lake_helpers import crawl, put_parquet, select

from sagelab.catalog.formats import storage_descriptor
from sagelab.demo import split_dataset, write_csv


def _lake_holds(server, needle: bytes) -> list[Path]:
    """Every file under the lake folder (objects, metadata, staging, caches) whose bytes contain `needle`."""
    return [p for p in (Path(server.home) / "lake").rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_training_reads_sse_kms_channels_and_writes_its_artifact_under_the_jobs_kms_key(sm, s3, kms, server,
                                                                                      bucket, tmp_path):
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    for name, rows in split_dataset().items():
        path = tmp_path / f"{name}.csv"
        write_csv(path, rows)
        s3.upload_file(str(path), bucket, f"data/{name}/{name}.csv",
                       ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_arn})
    assert s3.head_object(Bucket=bucket, Key="data/train/train.csv")["ServerSideEncryption"] == "aws:kms"
    name = unique("kms-job")
    request = job_request(name, "xgboost", bucket, {"num_round": "5", "objective": "binary:logistic"})
    request["OutputDataConfig"]["KmsKeyId"] = key_arn
    request["ResourceConfig"]["VolumeKmsKeyId"] = key_arn  # accepted: the job's work folder is temporary
    sm.create_training_job(**request)
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["OutputDataConfig"]["KmsKeyId"] == key_arn
    artifact = desc["ModelArtifacts"]["S3ModelArtifacts"].removeprefix(f"s3://{bucket}/")
    head = s3.head_object(Bucket=bucket, Key=artifact)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)
    stored = (Path(server.home) / "lake" / bucket / artifact / "@data").read_bytes()
    assert not stored.startswith(b"\x1f\x8b"), "the artifact's bytes on disk are not the gzip the client reads"
    assert s3.get_object(Bucket=bucket, Key=artifact)["Body"].read().startswith(b"\x1f\x8b")


def test_athena_and_a_crawler_read_encrypted_objects_and_leave_no_plain_copy(s3, glue, athena, server, bucket):
    marker = b"zebra-confidential"
    body = b"id,word\n" + b"".join(b"%d,%s-%d\n" % (i, marker, i) for i in range(50))
    s3.put_object(Bucket=bucket, Key="words/w.csv", Body=body, ServerSideEncryption="AES256")
    database = unique("enc").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    sd = storage_descriptor("csv", f"s3://{bucket}/words/", [{"Name": "id", "Type": "bigint"},
                                                            {"Name": "word", "Type": "string"}])
    glue.create_table(DatabaseName=database, TableInput={"Name": "words", "StorageDescriptor": sd,
                                                         "Parameters": {"skip.header.line.count": "1"}})
    rows = select(athena, "SELECT count(*), max(word) FROM words", database, f"s3://{bucket}/results/")
    assert rows[1] == ["50", f"{marker.decode()}-9"]
    crawler = unique("enc-crawler")
    glue.create_crawler(Name=crawler, Role="arn:aws:iam::000000000000:role/GlueRole", DatabaseName=database,
                        TablePrefix="crawled_", Targets={"S3Targets": [{"Path": f"s3://{bucket}/words/"}]})
    crawl(glue, crawler)
    table = glue.get_table(DatabaseName=database, Name="crawled_words")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "word"]
    # Query results are plain objects (no encryption asked for); the data itself never lies in plain on disk.
    leaked = [p for p in _lake_holds(server, marker) if "results" not in p.parts]
    assert leaked == []


def test_a_tool_that_opens_the_lake_folder_without_the_server_refuses_encrypted_objects_clearly(s3, server,
                                                                                                bucket, tmp_path):
    import pytest

    from sagelab.errors import ValidationError
    from sagelab.lake.client import fetch, open_lake

    s3.put_object(Bucket=bucket, Key="plain.csv", Body=b"a\n1\n")
    s3.put_object(Bucket=bucket, Key="sealed.csv", Body=b"a\n1\n", ServerSideEncryption="AES256")
    lake = open_lake(home=str(server.home))
    assert fetch(lake, f"s3://{bucket}/plain.csv", tmp_path / "p").read_bytes() == b"a\n1\n"
    with pytest.raises(ValidationError, match="--endpoint-url"):
        fetch(lake, f"s3://{bucket}/sealed.csv", tmp_path / "s")


def test_a_training_job_whose_kms_key_does_not_exist_fails_and_says_why(sm, s3, bucket, tmp_path):
    for name, rows in split_dataset().items():
        path = tmp_path / f"{name}.csv"
        write_csv(path, rows)
        s3.upload_file(str(path), bucket, f"data/{name}/{name}.csv")
    name = unique("bad-kms-job")
    request = job_request(name, "xgboost", bucket, {"num_round": "2", "objective": "binary:logistic"})
    request["OutputDataConfig"]["KmsKeyId"] = "alias/no-such-key"
    sm.create_training_job(**request)
    desc = wait_failed(sm, name)
    assert desc["TrainingJobStatus"] == "Failed"
    assert "KMS.NotFoundException" in desc["FailureReason"] or "alias/no-such-key" in desc["FailureReason"]


def test_a_processing_job_reads_an_encrypted_input_and_writes_its_outputs_under_its_kms_key(sm, s3, kms, bucket):
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    script = b"import pathlib\n" \
             b"text = pathlib.Path('/opt/ml/processing/input/data/in.txt').read_text()\n" \
             b"pathlib.Path('/opt/ml/processing/output/out.txt').write_text(text.upper())\n"
    s3.put_object(Bucket=bucket, Key="code/job.py", Body=script)
    s3.put_object(Bucket=bucket, Key="in/in.txt", Body=b"sealed input", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=key_arn)
    name = unique("kms-processing")
    code, data = "/opt/ml/processing/input/code", "/opt/ml/processing/input/data"
    sm.create_processing_job(
        ProcessingJobName=name, RoleArn="arn:aws:iam::000000000000:role/SageMakerRole",
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 5, "VolumeKmsKeyId": key_arn}},
        AppSpecification={"ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1",
                          "ContainerEntrypoint": ["python3", f"{code}/job.py"]},
        StoppingCondition={"MaxRuntimeInSeconds": 120},
        ProcessingInputs=[
            {"InputName": "code", "S3Input": {"S3Uri": f"s3://{bucket}/code/job.py", "LocalPath": code,
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "data", "S3Input": {"S3Uri": f"s3://{bucket}/in/", "LocalPath": data,
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        ProcessingOutputConfig={"KmsKeyId": key_arn, "Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": f"s3://{bucket}/out", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]})
    sm.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    desc = sm.describe_processing_job(ProcessingJobName=name)
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    head = s3.head_object(Bucket=bucket, Key="out/out.txt")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)
    assert s3.get_object(Bucket=bucket, Key="out/out.txt")["Body"].read() == b"SEALED INPUT"


def test_athena_reads_a_partitioned_table_encrypted_at_rest(s3, glue, athena, bucket):
    """The plain copies of encrypted objects keep their keys' paths, where DuckDB reads the partition values."""
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    for year in (2023, 2024):
        put_parquet(s3, bucket, f"sales/year={year}/part-0.parquet", pa.table({"amount": [1.0, float(year - 2020)]}))
    database = unique("enc_parts").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=database, TableInput={
        "Name": "sales", "PartitionKeys": [{"Name": "year", "Type": "int"}],
        "StorageDescriptor": storage_descriptor("parquet", f"s3://{bucket}/sales/", [
            {"Name": "amount", "Type": "double"}])})
    glue.batch_create_partition(DatabaseName=database, TableName="sales", PartitionInputList=[
        {"Values": [str(year)], "StorageDescriptor": storage_descriptor(
            "parquet", f"s3://{bucket}/sales/year={year}/", [{"Name": "amount", "Type": "double"}])}
        for year in (2023, 2024)])
    rows = select(athena, "SELECT year, sum(amount) FROM sales GROUP BY year ORDER BY year", database,
                  f"s3://{bucket}/results/")
    assert rows[1:] == [["2023", "4.0"], ["2024", "5.0"]]
