"""SageMaker model registry operations (model package groups and packages), part of the SageMaker face's
operation table. Translation only."""

from __future__ import annotations

from typing import Any

from sagelab.api.http import Request
from sagelab.api.json_protocol import Handler
from sagelab.api.operations import SAGEMAKER, Operation, PlatformFace
from sagelab.pagination import page

op = SAGEMAKER.op
GROUP = "model-package-group/{ModelPackageGroupName}"
# ModelPackageName is a name or, for a versioned package, its ARN (model-package/<group>/<version>).
PACKAGE = "model-package/{ModelPackageName}"


def _packages(face: PlatformFace):  # -> ModelPackageService, resolved per call
    return face.platform.model_packages


def list_model_package_groups(face: PlatformFace, params: dict[str, Any],
                              request: Request) -> dict[str, Any]:
    items, more = page(_packages(face).list_groups(params), params)
    return {"ModelPackageGroupSummaryList": items, **more}


def list_model_packages(face: PlatformFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
    items, more = page(_packages(face).list(params), params)
    return {"ModelPackageSummaryList": items, **more}


REGISTRY_OPERATIONS: tuple[Operation[Handler], ...] = (
    op("CreateModelPackageGroup", lambda face, p, r: {
        "ModelPackageGroupArn": _packages(face).create_group(p, region=r.region)}, GROUP),
    op("DescribeModelPackageGroup", lambda face, p, r: _packages(face).describe_group(
        p["ModelPackageGroupName"]), GROUP, read_only=True),
    op("ListModelPackageGroups", list_model_package_groups, read_only=True),
    op("DeleteModelPackageGroup", lambda face, p, r: _packages(face).delete_group(p["ModelPackageGroupName"]),
       GROUP),
    # A versioned package is created into its group; its version, hence its full ARN, comes after.
    op("CreateModelPackage", lambda face, p, r: {
        "ModelPackageArn": _packages(face).create(p, region=r.region)},
       "model-package/{ModelPackageName|ModelPackageGroupName}"),
    op("DescribeModelPackage", lambda face, p, r: _packages(face).describe(p["ModelPackageName"]), PACKAGE,
       read_only=True),
    op("ListModelPackages", list_model_packages, read_only=True),
    op("UpdateModelPackage", lambda face, p, r: {"ModelPackageArn": _packages(face).update(p)},
       "{ModelPackageArn}"),
    op("DeleteModelPackage", lambda face, p, r: _packages(face).delete(p["ModelPackageName"]), PACKAGE),
)
