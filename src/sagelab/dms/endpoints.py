"""DMS endpoints, replication instances and connection tests, kept as resource documents.

An endpoint is a source database (postgres, mysql, or sqlite, a sagelab extension) or an s3 target in the
lake. Its password is sealed (see `passwords.py`) in the document's private part and never answered back,
as DMS omits it.
A replication instance has nothing real behind it: replication runs in the server (see `tasks.py`); it
is answered `creating` and then `available`, so waiters and scripts that wait for it work.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable
from typing import Any

from sagelab.account import Account
from sagelab.dms import describing
from sagelab.dms.errors import (
    InvalidParameterValue,
    InvalidResourceStateFault,
    ResourceAlreadyExistsFault,
    ResourceNotFoundFault,
)
from sagelab.dms.passwords import EndpointPasswords
from sagelab.dms.sources import SOURCE_ENGINES, SourceSpec, check
from sagelab.dms.target import S3_DEFAULTS, S3Target
from sagelab.errors import SagelabError
from sagelab.lake.blobs import BlobStore
from sagelab.storage.resources import AlreadyExists, Resource, ResourceStore, public

ENDPOINT = "dms-endpoint"
INSTANCE = "dms-replication-instance"
CONNECTION = "dms-connection"
TARGET_ENGINES = {"s3": "Amazon S3"}
_ID_CHARS = string.ascii_uppercase + string.digits
_CONNECTION_FIELDS = ("Username", "ServerName", "Port", "DatabaseName")


def resource_id(given: str | None) -> str:
    """The id that ends a DMS ARN: the caller's ResourceIdentifier, or 26 random letters and digits as DMS."""
    return given or "".join(secrets.choice(_ID_CHARS) for _ in range(26))


def check_identifier(value: str, field: str) -> None:
    """DMS identifiers: 1-255 letters, digits and hyphens, a letter first, no two hyphens in a row or at the end."""
    ok = (0 < len(value) <= 255 and value[0].isascii() and value[0].isalpha() and not value.endswith("-")
          and "--" not in value and all(c.isascii() and (c.isalnum() or c == "-") for c in value))
    if not ok:
        raise InvalidParameterValue(f"{field} must begin with a letter and contain only ASCII letters, digits "
                                    f"and hyphens, not end with a hyphen or hold two in a row; got {value!r}.")


class EndpointService:
    def __init__(self, *, resources: ResourceStore, account: Account, blobs: BlobStore, passwords: EndpointPasswords,
                 settle_seconds: float = 0.2, clock: Callable[[], float] = time.time):
        self.resources = resources
        self.account = account
        self.blobs = blobs
        self.passwords = passwords
        self.settle_seconds = settle_seconds
        self.clock = clock

    # --- endpoints -------------------------------------------------------------------------------------
    def create_endpoint(self, params: dict[str, Any], region: str) -> dict[str, Any]:
        identifier = params["EndpointIdentifier"]
        check_identifier(identifier, "EndpointIdentifier")
        arn = self.account.arn("dms", f"endpoint:{resource_id(params.get('ResourceIdentifier'))}", region)
        doc = self._endpoint_doc({}, params, arn) | {"EndpointArn": arn}
        try:
            self.resources.insert(ENDPOINT, identifier, arn, "active", doc)
        except AlreadyExists:
            raise ResourceAlreadyExistsFault(f"EndpointIdentifier {identifier!r} is already used by an "
                                             "endpoint.") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return public(doc)

    def modify_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = self.endpoint(params["EndpointArn"])
        changes = {k: v for k, v in params.items() if k not in ("EndpointArn", "ExactSettings")}
        exact = bool(params.get("ExactSettings"))
        merged = {**(_required(resource.doc, changes) if exact else _as_request(resource.doc)), **changes}
        if not exact:  # a settings structure changes member by member, as DMS merges it
            for key in ("S3Settings", "PostgreSQLSettings"):
                if key in changes and key in resource.doc:
                    merged[key] = {**resource.doc[key], **changes[key]}
        doc = self._endpoint_doc(resource.doc, merged, resource.arn) | {"EndpointArn": resource.arn}
        name = doc["EndpointIdentifier"]
        if name == resource.name:
            self.resources.update(ENDPOINT, name, lambda r: setattr(r, "doc", doc))
            return public(doc)
        check_identifier(name, "EndpointIdentifier")
        if self.resources.get(ENDPOINT, name):
            raise ResourceAlreadyExistsFault(f"EndpointIdentifier {name!r} is already used by an endpoint.")
        tags = self.resources.get_tags(resource.arn)  # the ARN stays, and so do its tags
        self.resources.delete(ENDPOINT, resource.name)
        self.resources.insert(ENDPOINT, name, resource.arn, "active", doc, created_at=resource.created_at)
        if tags:
            self.resources.put_tags(resource.arn, tags)
        return public(doc)

    def _endpoint_doc(self, base: dict[str, Any], params: dict[str, Any], arn: str) -> dict[str, Any]:
        kind = params["EndpointType"].lower()
        engine = params["EngineName"].lower()
        engines = SOURCE_ENGINES if kind == "source" else TARGET_ENGINES
        if engine not in engines:
            raise InvalidParameterValue(f"EngineName {params['EngineName']!r} is not supported for a {kind} "
                                        f"endpoint: expected one of {', '.join(engines)}.")
        doc: dict[str, Any] = {"EndpointIdentifier": params["EndpointIdentifier"], "EndpointType": kind.upper(),
                               "EngineName": engine, "EngineDisplayName": engines[engine], "Status": "active",
                               "SslMode": params.get("SslMode", "none")}
        for field in ("KmsKeyId", "ExtraConnectionAttributes", "CertificateArn", "ServiceAccessRoleArn"):
            if params.get(field):
                doc[field] = params[field]
        if kind == "source":
            settings = dict(params.get("PostgreSQLSettings") or {}) if engine == "postgres" else {}
            for field in _CONNECTION_FIELDS:
                value = params.get(field, settings.get(field))
                if value is not None:
                    doc[field] = value
            password = params.get("Password", settings.pop("Password", None))
            sealed = self.passwords.seal(arn, password) if password is not None else base.get("_password")
            if sealed is not None:
                doc["_password"] = sealed
            if engine == "postgres":
                doc["PostgreSQLSettings"] = {k: v for k, v in settings.items() if k not in _CONNECTION_FIELDS}
            if engine == "sqlite" and not doc.get("DatabaseName"):
                raise InvalidParameterValue("DatabaseName is required for a sqlite source endpoint: the path of "
                                            "the database file.")
            if engine != "sqlite" and not doc.get("ServerName"):
                raise InvalidParameterValue(f"ServerName is required for a {engine} source endpoint.")
        else:
            s3 = params.get("S3Settings") or {}
            S3Target.from_settings(s3)  # refuses what cannot be written before the endpoint exists
            doc["S3Settings"] = {**S3_DEFAULTS, **s3}
        return doc

    def describe_endpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        docs = [r.doc for r in self.resources.list(ENDPOINT, sort_by="CreationTime", descending=False)]
        # DMS answers the type in upper case and takes it either way in a filter.
        filters = [{**f, "Values": [v.upper() for v in f["Values"]]} if f["Name"] == "endpoint-type" else f
                   for f in params.get("Filters") or []]
        docs = describing.matching(docs, filters, {
            "endpoint-arn": lambda d: d["EndpointArn"], "endpoint-type": lambda d: d["EndpointType"],
            "endpoint-id": lambda d: d["EndpointIdentifier"], "engine-name": lambda d: d["EngineName"]},
            "endpoints")
        chosen, marker = describing.page(docs, params)
        return describing.described("Endpoints", [public(d) for d in chosen], marker)

    def delete_endpoint(self, arn: str, in_use: Callable[[str], str | None]) -> dict[str, Any]:
        resource = self.endpoint(arn)
        task = in_use(arn)
        if task:
            raise InvalidResourceStateFault(f"Endpoint {arn} is used by replication task {task}: delete the task "
                                            "first.")
        self.resources.delete(ENDPOINT, resource.name)
        for connection in self.resources.list(CONNECTION):
            if connection.doc["EndpointArn"] == arn:
                self.resources.delete(CONNECTION, connection.name)
        return public(resource.doc) | {"Status": "deleting"}

    def endpoint(self, arn: str, field: str = "EndpointArn") -> Resource:
        resource = self.resources.get_by_arn(arn)
        if resource is None or resource.kind != ENDPOINT:
            raise ResourceNotFoundFault(f"{field} {arn!r} does not name an endpoint.")
        return resource

    def source_spec(self, doc: dict[str, Any]) -> SourceSpec:
        sealed = doc.get("_password")
        password = self.passwords.open(doc["EndpointArn"], sealed) if sealed else None
        return SourceSpec(doc["EngineName"], doc.get("ServerName"), doc.get("Port"), doc.get("DatabaseName"),
                          doc.get("Username"), password)

    # --- replication instances --------------------------------------------------------------------------
    def create_instance(self, params: dict[str, Any], region: str) -> dict[str, Any]:
        identifier = params["ReplicationInstanceIdentifier"].lower()  # DMS stores it in lower case
        check_identifier(identifier, "ReplicationInstanceIdentifier")
        if not params["ReplicationInstanceClass"].startswith("dms."):
            raise InvalidParameterValue("ReplicationInstanceClass must be a DMS instance class such as "
                                        f"dms.t3.medium; got {params['ReplicationInstanceClass']!r}.")
        arn = self.account.arn("dms", f"rep:{resource_id(params.get('ResourceIdentifier'))}", region)
        now = self.clock()
        doc = {"ReplicationInstanceIdentifier": identifier,
               "ReplicationInstanceClass": params["ReplicationInstanceClass"],
               "ReplicationInstanceStatus": "creating", "AllocatedStorage": params.get("AllocatedStorage", 50),
               "InstanceCreateTime": now, "VpcSecurityGroups": [
                   {"VpcSecurityGroupId": g, "Status": "active"} for g in params.get("VpcSecurityGroupIds", [])],
               "AvailabilityZone": params.get("AvailabilityZone", f"{region}a"),
               "PreferredMaintenanceWindow": params.get("PreferredMaintenanceWindow", "sun:06:00-sun:06:30"),
               "PendingModifiedValues": {}, "MultiAZ": params.get("MultiAZ", False),
               "EngineVersion": params.get("EngineVersion", "3.5.3"),
               "AutoMinorVersionUpgrade": params.get("AutoMinorVersionUpgrade", True),
               "ReplicationInstanceArn": arn, "ReplicationInstancePrivateIpAddress": "127.0.0.1",
               "ReplicationInstancePrivateIpAddresses": ["127.0.0.1"], "ReplicationInstancePublicIpAddresses": [],
               "PubliclyAccessible": params.get("PubliclyAccessible", False),
               "NetworkType": params.get("NetworkType", "IPV4"), "_settles_at": now + self.settle_seconds}
        if params.get("KmsKeyId"):
            doc["KmsKeyId"] = params["KmsKeyId"]
        try:
            self.resources.insert(INSTANCE, identifier, arn, "creating", doc)
        except AlreadyExists:
            raise ResourceAlreadyExistsFault(f"ReplicationInstanceIdentifier {identifier!r} is already used by a "
                                             "replication instance.") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return public(doc)

    def describe_instances(self, params: dict[str, Any]) -> dict[str, Any]:
        docs = [self._settled(r).doc for r in self.resources.list(INSTANCE, descending=False)]
        docs = describing.matching(docs, params.get("Filters"), {
            "replication-instance-arn": lambda d: d["ReplicationInstanceArn"],
            "replication-instance-id": lambda d: d["ReplicationInstanceIdentifier"],
            "replication-instance-class": lambda d: d["ReplicationInstanceClass"],
            "engine-version": lambda d: d["EngineVersion"]}, "replication instances")
        chosen, marker = describing.page(docs, params)
        return describing.described("ReplicationInstances", [public(d) for d in chosen], marker)

    def delete_instance(self, arn: str, in_use: Callable[[str], str | None]) -> dict[str, Any]:
        resource = self.instance(arn)
        task = in_use(arn)
        if task:
            raise InvalidResourceStateFault(f"Replication instance {arn} is used by replication task {task}: "
                                            "delete the task first.")
        self.resources.delete(INSTANCE, resource.name)
        return public(resource.doc) | {"ReplicationInstanceStatus": "deleting"}

    def instance(self, arn: str, field: str = "ReplicationInstanceArn") -> Resource:
        resource = self.resources.get_by_arn(arn)
        if resource is None or resource.kind != INSTANCE:
            raise ResourceNotFoundFault(f"{field} {arn!r} does not name a replication instance.")
        return self._settled(resource)

    def _settled(self, resource: Resource) -> Resource:
        """The instance, `available` once its creation has had its (short) time."""
        if resource.status != "creating" or self.clock() < resource.doc.get("_settles_at", 0):
            return resource

        def settle(r: Resource) -> None:
            r.status = r.doc["ReplicationInstanceStatus"] = "available"

        return self.resources.update(INSTANCE, resource.name, settle)

    # --- connections ------------------------------------------------------------------------------------
    def test_connection(self, instance_arn: str, endpoint_arn: str) -> dict[str, Any]:
        instance = self.instance(instance_arn)
        if instance.status != "available":
            raise InvalidResourceStateFault(f"Replication instance {instance_arn} is {instance.status}, not "
                                            "available.")
        endpoint = self.endpoint(endpoint_arn)
        failure = self._probe(endpoint.doc)
        doc = {"ReplicationInstanceArn": instance_arn, "EndpointArn": endpoint_arn,
               "Status": "failed" if failure else "successful",
               "EndpointIdentifier": endpoint.doc["EndpointIdentifier"],
               "ReplicationInstanceIdentifier": instance.doc["ReplicationInstanceIdentifier"]}
        if failure:
            doc["LastFailureMessage"] = failure
        name = f"{instance_arn}|{endpoint_arn}"
        if self.resources.get(CONNECTION, name):
            self.resources.update(CONNECTION, name, lambda r: setattr(r, "doc", doc))
        else:
            self.resources.insert(CONNECTION, name, f"{instance_arn}/connection/{endpoint_arn}", doc["Status"], doc)
        # DMS answers while the test is under way; DescribeConnections gives its outcome.
        return {k: v for k, v in doc.items() if k != "LastFailureMessage"} | {"Status": "testing"}

    def _probe(self, doc: dict[str, Any]) -> str | None:
        if doc["EndpointType"] == "SOURCE":
            return check(self.source_spec(doc))
        bucket = doc["S3Settings"]["BucketName"]
        try:
            self.blobs.head_bucket(bucket)
        except SagelabError as missing:
            return f"Cannot reach S3 bucket {bucket!r}: {missing.message}"
        return None

    def describe_connections(self, params: dict[str, Any]) -> dict[str, Any]:
        docs = [r.doc for r in self.resources.list(CONNECTION, descending=False)]
        docs = describing.matching(docs, params.get("Filters"), {
            "endpoint-arn": lambda d: d["EndpointArn"], "replication-instance-arn": lambda d: d["ReplicationInstanceArn"]},
            "connections")
        chosen, marker = describing.page(docs, params)
        return describing.described("Connections", chosen, marker)


def _as_request(doc: dict[str, Any]) -> dict[str, Any]:
    """An endpoint document read back as the CreateEndpoint request that makes it (for ModifyEndpoint)."""
    request = {k: v for k, v in public(doc).items() if k not in ("EngineDisplayName", "Status", "EndpointArn")}
    request["EndpointType"] = doc["EndpointType"].lower()
    return request


def _required(doc: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """With ExactSettings, what the change leaves out still keeps the endpoint's identity and engine."""
    return {k: doc[k] if k != "EndpointType" else doc[k].lower()
            for k in ("EndpointIdentifier", "EndpointType", "EngineName") if k not in changes}
