"""Tags, CORS rules, storage classes, versions and lifecycle rules are kept on disk: a restarted server answers them the same."""

from __future__ import annotations

from sagelab.embedded import ServerProcess


def test_management_state_survives_a_restart(tmp_path):
    with ServerProcess(tmp_path / "home") as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="k", Body=b"x", Tagging="a=1", StorageClass="GLACIER")
        s3.restore_object(Bucket="kept", Key="k", RestoreRequest={"Days": 1})
        s3.put_bucket_tagging(Bucket="kept", Tagging={"TagSet": [{"Key": "env", "Value": "dev"}]})
        s3.put_bucket_cors(Bucket="kept", CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]})
        s3.put_bucket_versioning(Bucket="kept", VersioningConfiguration={"Status": "Enabled"})
        old = s3.put_object(Bucket="kept", Key="v", Body=b"old")["VersionId"]
        s3.put_object(Bucket="kept", Key="v", Body=b"new")
        marker = s3.delete_object(Bucket="kept", Key="v")["VersionId"]
        s3.put_bucket_lifecycle_configuration(Bucket="kept", LifecycleConfiguration={"Rules": [
            {"ID": "old", "Status": "Enabled", "Filter": {}, "NoncurrentVersionExpiration": {"NoncurrentDays": 9}}]})
        port = server.port
    with ServerProcess(tmp_path / "home", port=port) as server:
        s3 = server.client("s3")
        assert s3.get_object_tagging(Bucket="kept", Key="k")["TagSet"] == [{"Key": "a", "Value": "1"}]
        head = s3.head_object(Bucket="kept", Key="k")
        assert head["StorageClass"] == "GLACIER" and head["Restore"].startswith('ongoing-request="false"')
        assert s3.get_object(Bucket="kept", Key="k")["Body"].read() == b"x"
        assert s3.get_bucket_tagging(Bucket="kept")["TagSet"] == [{"Key": "env", "Value": "dev"}]
        assert s3.get_bucket_cors(Bucket="kept")["CORSRules"] == [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]
        assert s3.get_bucket_versioning(Bucket="kept")["Status"] == "Enabled"
        assert s3.get_object(Bucket="kept", Key="v", VersionId=old)["Body"].read() == b"old"
        versions = s3.list_object_versions(Bucket="kept", Prefix="v")
        assert len(versions["Versions"]) == 2 and versions["DeleteMarkers"][0]["VersionId"] == marker
        assert s3.get_bucket_lifecycle_configuration(Bucket="kept")["Rules"][0]["ID"] == "old"
