"""SageMaker model registry operations (model package groups and packages), merged into the SageMaker face's
handler table. Translation only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.api.json_protocol import Handler
from sagelab.pagination import page

if TYPE_CHECKING:
    from sagelab.platform import Platform


def registry_operations(platform: Platform) -> dict[str, Handler]:
    def packages():
        return platform.model_packages

    def list_groups(params: dict[str, Any], request: Any) -> dict[str, Any]:
        items, more = page(packages().list_groups(params), params)
        return {"ModelPackageGroupSummaryList": items, **more}

    def list_packages(params: dict[str, Any], request: Any) -> dict[str, Any]:
        items, more = page(packages().list(params), params)
        return {"ModelPackageSummaryList": items, **more}

    return {
        "CreateModelPackageGroup": lambda p, r: {
            "ModelPackageGroupArn": packages().create_group(p, region=r.region)},
        "DescribeModelPackageGroup": lambda p, r: packages().describe_group(p["ModelPackageGroupName"]),
        "ListModelPackageGroups": list_groups,
        "DeleteModelPackageGroup": lambda p, r: packages().delete_group(p["ModelPackageGroupName"]),
        "CreateModelPackage": lambda p, r: {"ModelPackageArn": packages().create(p, region=r.region)},
        "DescribeModelPackage": lambda p, r: packages().describe(p["ModelPackageName"]),
        "ListModelPackages": list_packages,
        "UpdateModelPackage": lambda p, r: {"ModelPackageArn": packages().update(p)},
        "DeleteModelPackage": lambda p, r: packages().delete(p["ModelPackageName"]),
    }
