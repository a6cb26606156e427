"""The model registry: model package groups, and model packages versioned inside them with an approval status.

A versioned package lives in a group and gets the group's next version (1, 2, ...; never reused), the ARN
`model-package/<group>/<version>` and `ModelApprovalStatus` (default PendingManualApproval). An unversioned
package has a name of its own and no approval status. Approval gates deployment: `CreateModel` accepts a
container naming a package only when the package is Approved (`expand_model_containers`).
"""

from __future__ import annotations

import time
from typing import Any

from sagelab.account import Account
from sagelab.algorithms.registry import AlgorithmRegistry
from sagelab.errors import ConflictError, ValidationError
from sagelab.hosting.artifacts import check_container
from sagelab.lake.blobs import BlobStore
from sagelab.storage.resources import AlreadyExists, Resource, ResourceStore, public

GROUP = "model-package-group"
PACKAGE = "model-package"
APPROVED = "Approved"
DEFAULT_APPROVAL = "PendingManualApproval"
_PACKAGE_OPTIONALS = ("ModelPackageDescription", "MetadataProperties", "ModelMetrics", "CustomerMetadataProperties",
                      "DriftCheckBaselines", "Domain", "Task", "SamplePayloadUrl", "AdditionalInferenceSpecifications",
                      "SkipModelValidation", "SourceUri", "ModelCard", "ModelLifeCycle", "ModelPackageRegistrationType",
                      "ValidationSpecification")


def _name_from(value: str, kind: str) -> str:
    """`arn:aws:sagemaker:<region>:<account>:<kind>/<name>` or a plain name -> the name."""
    if value.startswith("arn:"):
        resource = value.split(":", 5)[-1]
        prefix = f"{kind}/"
        if not resource.startswith(prefix):
            raise ValidationError(f"{value!r} is not a {kind} ARN.")
        return resource[len(prefix):]
    return value


class ModelPackageService:
    def __init__(self, *, resources: ResourceStore, account: Account, algorithms: AlgorithmRegistry,
                 blobs: BlobStore):
        self.resources = resources
        self.account = account
        self.algorithms = algorithms
        self.blobs = blobs

    def _arn(self, kind: str, name: str, region: str | None = None) -> str:
        return self.account.sagemaker_arn(kind, name, region)

    # --- groups -----------------------------------------------------------------------------------------
    def create_group(self, params: dict[str, Any], *, region: str) -> str:
        name = params["ModelPackageGroupName"]
        arn = self._arn(GROUP, name, region)
        now = time.time()
        doc: dict[str, Any] = {"ModelPackageGroupName": name, "ModelPackageGroupArn": arn, "CreationTime": now,
                               "CreatedBy": {}, "ModelPackageGroupStatus": "Completed", "_LastVersion": 0}
        for optional in ("ModelPackageGroupDescription", "ManagedConfiguration"):
            if params.get(optional) is not None:
                doc[optional] = params[optional]
        try:
            self.resources.insert(GROUP, name, arn, "Completed", doc, created_at=now)
        except AlreadyExists:
            raise ValidationError(f"Model Package Group already exists: {arn}") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return arn

    def get_group(self, name_or_arn: str) -> Resource:
        res = (self.resources.get_by_arn(name_or_arn) if name_or_arn.startswith("arn:")
               else self.resources.get(GROUP, name_or_arn))
        if res is None or res.kind != GROUP:
            raise ValidationError(f"ModelPackageGroup {_name_from(name_or_arn, GROUP)!r} does not exist.")
        return res

    def describe_group(self, name_or_arn: str) -> dict[str, Any]:
        return public(self.get_group(name_or_arn).doc)

    def list_groups(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.resources.list_for_request(GROUP, {**params, "SortOrder": params.get("SortOrder", "Ascending")})
        keys = ("ModelPackageGroupName", "ModelPackageGroupArn", "ModelPackageGroupDescription", "CreationTime",
                "ModelPackageGroupStatus", "ManagedConfiguration")
        return [{k: r.doc[k] for k in keys if k in r.doc} for r in rows]

    def delete_group(self, name_or_arn: str) -> None:
        group = self.get_group(name_or_arn)
        versions = self._versions(group.name)
        if versions:
            raise ConflictError(f"Model Package Group {group.name!r} still holds {len(versions)} model package "
                                f"version(s) ({', '.join(str(v.doc['ModelPackageVersion']) for v in versions)}); "
                                "delete them with DeleteModelPackage before deleting the group.")
        self.resources.delete(GROUP, group.name)

    def _versions(self, group_name: str) -> list[Resource]:
        return [r for r in self.resources.list(PACKAGE, sort_by="CreationTime", descending=False)
                if r.doc.get("ModelPackageGroupName") == group_name]

    def _next_version(self, group_name: str) -> int:
        def bump(res: Resource) -> None:
            res.doc["_LastVersion"] = int(res.doc.get("_LastVersion", 0)) + 1

        return int(self.resources.update(GROUP, group_name, bump).doc["_LastVersion"])

    # --- packages ---------------------------------------------------------------------------------------
    def create(self, params: dict[str, Any], *, region: str) -> str:
        group_ref, own_name = params.get("ModelPackageGroupName"), params.get("ModelPackageName")
        if group_ref and own_name:
            raise ValidationError("Specify ModelPackageGroupName (a versioned package) or ModelPackageName (an "
                                  "unversioned package), not both.")
        if not group_ref and not own_name:
            raise ValidationError("ModelPackageGroupName is required for a versioned model package "
                                  "(or ModelPackageName for an unversioned one).")
        spec = params.get("InferenceSpecification")
        if not spec:
            raise ValidationError("InferenceSpecification is required: the containers (Image and ModelDataUrl) "
                                  "that serve the model.")
        self._check_containers(spec["Containers"], "InferenceSpecification.Containers")
        approval = params.get("ModelApprovalStatus")
        if own_name and approval:
            raise ValidationError("ModelApprovalStatus applies to versioned model packages only (created in a "
                                  "ModelPackageGroupName).")
        now = time.time()
        doc: dict[str, Any] = {"CreationTime": now, "InferenceSpecification": spec, "ModelPackageStatus": "Completed",
                               "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
                               "CertifyForMarketplace": bool(params.get("CertifyForMarketplace", False)),
                               "CreatedBy": {}, "LastModifiedTime": now}
        for optional in _PACKAGE_OPTIONALS:
            if params.get(optional) is not None:
                doc[optional] = params[optional]
        if group_ref:
            group = self.get_group(group_ref)
            token = params.get("ClientToken")
            if token:
                for existing in self._versions(group.name):
                    if existing.doc.get("_ClientToken") == token:
                        return existing.arn
            version = self._next_version(group.name)
            key = f"{group.name}/{version}"
            doc.update(ModelPackageName=group.name, ModelPackageGroupName=group.name, ModelPackageVersion=version,
                       ModelApprovalStatus=approval or DEFAULT_APPROVAL, _ClientToken=token)
        else:
            key = own_name
            doc["ModelPackageName"] = own_name
        arn = self._arn(PACKAGE, key, region)
        doc["ModelPackageArn"] = arn
        try:
            self.resources.insert(PACKAGE, key, arn, "Completed", doc, created_at=now)
        except AlreadyExists:
            raise ConflictError(f"Model package {key!r} already exists ({arn}).") from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        return arn

    def _check_containers(self, containers: list[dict[str, Any]], field: str) -> None:
        for index, container in enumerate(containers, start=1):
            check_container(container, f"{field}[{index}]", self.algorithms, self.blobs)

    def get(self, name_or_arn: str) -> Resource:
        """A package by ARN, by `<group>/<version>`, or by the name of an unversioned package."""
        res = (self.resources.get_by_arn(name_or_arn) if name_or_arn.startswith("arn:")
               else self.resources.get(PACKAGE, name_or_arn))
        if res is None or res.kind != PACKAGE:
            raise ValidationError(f"Model package {_name_from(name_or_arn, PACKAGE)!r} does not exist.")
        return res

    def describe(self, name_or_arn: str) -> dict[str, Any]:
        return public(self.get(name_or_arn).doc)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        group = self.get_group(params["ModelPackageGroupName"]).name if params.get("ModelPackageGroupName") else None
        # AWS lists unversioned packages unless asked otherwise, and a group's versions when given a group.
        kind = params.get("ModelPackageType") or ("Versioned" if group else "Unversioned")
        approval = params.get("ModelApprovalStatus")
        rows = self.resources.list_for_request(PACKAGE, {
            "CreationTimeAfter": params.get("CreationTimeAfter"), "CreationTimeBefore": params.get("CreationTimeBefore"),
            "SortBy": params.get("SortBy", "CreationTime"), "SortOrder": params.get("SortOrder", "Ascending")})
        summaries = []
        for res in rows:
            doc = res.doc
            versioned = "ModelPackageVersion" in doc
            if (kind == "Versioned" and not versioned) or (kind == "Unversioned" and versioned):
                continue
            if group is not None and doc.get("ModelPackageGroupName") != group:
                continue
            if approval and doc.get("ModelApprovalStatus") != approval:
                continue
            if params.get("NameContains") and params["NameContains"] not in doc["ModelPackageName"]:
                continue
            summaries.append({k: doc[k] for k in (
                "ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn",
                "ModelPackageDescription", "CreationTime", "ModelPackageStatus", "ModelApprovalStatus",
                "ModelLifeCycle", "ModelPackageRegistrationType") if k in doc})
        return summaries

    def update(self, params: dict[str, Any]) -> str:
        res = self.get(params["ModelPackageArn"])
        versioned = "ModelPackageVersion" in res.doc
        if params.get("ModelApprovalStatus") and not versioned:
            raise ValidationError(f"Model package {res.name!r} is unversioned: only versioned model packages have a "
                                  "ModelApprovalStatus.")
        if params.get("InferenceSpecification"):
            self._check_containers(params["InferenceSpecification"]["Containers"],
                                   "InferenceSpecification.Containers")

        def apply(r: Resource) -> None:
            doc = r.doc
            for key in ("ModelApprovalStatus", "ApprovalDescription", "ModelPackageRegistrationType",
                        "InferenceSpecification", "SourceUri", "ModelCard", "ModelLifeCycle"):
                if params.get(key) is not None:
                    doc[key] = params[key]
            metadata = {**doc.get("CustomerMetadataProperties", {}), **(params.get("CustomerMetadataProperties") or {})}
            for key in params.get("CustomerMetadataPropertiesToRemove") or []:
                metadata.pop(key, None)
            if metadata or "CustomerMetadataProperties" in doc:
                doc["CustomerMetadataProperties"] = metadata
            if params.get("AdditionalInferenceSpecificationsToAdd"):
                doc["AdditionalInferenceSpecifications"] = [*doc.get("AdditionalInferenceSpecifications", []),
                                                            *params["AdditionalInferenceSpecificationsToAdd"]]
            doc["LastModifiedTime"] = time.time()
            doc["LastModifiedBy"] = {}

        self.resources.update(PACKAGE, res.name, apply)
        return res.arn

    def delete(self, name_or_arn: str) -> None:
        res = self.get(name_or_arn)
        self.resources.delete(PACKAGE, res.name)

    # --- deployment gate --------------------------------------------------------------------------------
    def expand_model_containers(self, params: dict[str, Any]) -> dict[str, Any]:
        """A CreateModel request whose containers name model packages, with each replaced by the package's
        containers (Image, ModelDataUrl, Environment). Refuses packages that are not Approved."""
        primary = params.get("PrimaryContainer")
        if primary and primary.get("ModelPackageName"):
            containers = self._package_containers(primary, "PrimaryContainer")
            expanded = {k: v for k, v in params.items() if k != "PrimaryContainer"}
            if len(containers) == 1:
                return {**expanded, "PrimaryContainer": containers[0]}
            return {**expanded, "Containers": containers}
        if any(c.get("ModelPackageName") for c in params.get("Containers") or []):
            containers = []
            for index, container in enumerate(params["Containers"], start=1):
                containers.extend(self._package_containers(container, f"Containers[{index}]")
                                  if container.get("ModelPackageName") else [container])
            return {**params, "Containers": containers}
        return params

    def _package_containers(self, container: dict[str, Any], field: str) -> list[dict[str, Any]]:
        reference = container["ModelPackageName"]
        if container.get("InferenceSpecificationName"):
            raise ValidationError(f"{field}.InferenceSpecificationName is not supported: sagelab deploys a model "
                                  "package's main InferenceSpecification.")
        try:
            package = self.get(reference)
        except ValidationError as exc:
            raise ValidationError(f"{field}.ModelPackageName: {exc.message}") from None
        doc = package.doc
        if "ModelPackageVersion" in doc and doc.get("ModelApprovalStatus") != APPROVED:
            raise ValidationError(
                f"{field}.ModelPackageName {package.arn}: model package version {doc['ModelPackageVersion']} of "
                f"group {doc['ModelPackageGroupName']!r} is {doc.get('ModelApprovalStatus')}, and only Approved "
                "model packages can be deployed. Approve it with UpdateModelPackage(ModelApprovalStatus="
                "'Approved') first.")
        expanded = []
        for source in doc["InferenceSpecification"]["Containers"]:
            merged = {k: v for k, v in source.items() if k in ("Image", "ModelDataUrl", "ModelDataSource",
                                                               "ContainerHostname")}
            environment = {**(source.get("Environment") or {}), **(container.get("Environment") or {})}
            if environment:
                merged["Environment"] = environment
            merged["ModelPackageName"] = package.arn
            expanded.append(merged)
        return expanded
