"""The Lake Formation face (REST-JSON: `POST /<Operation>` with a JSON body). Translation only.

Every operation sagelab answers is a POST to a path that is its own name, so the path alone resolves it;
the body is validated against botocore's model like the JSON 1.1 faces' bodies. Lake Formation's IAM
actions are not scoped to resources (`*`); what a caller may grant is Lake Formation's own rule: an
administrator (or root) grants anything, anyone else only what it holds with the grant option.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import botocore.session

from sagelab.api.http import Request, Response, json_response
from sagelab.api.json_protocol import SerializationError
from sagelab.api.operations import LAKEFORMATION, Call, OperationTable
from sagelab.api.validation import validate
from sagelab.errors import SagelabError, UnknownOperation, ValidationError

if TYPE_CHECKING:
    from sagelab.platform import Platform

op = LAKEFORMATION.op


class LakeFormationFace:
    protocol = "rest-json"
    _model: Any = None

    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def lf(self):  # -> LakeFormationService, reached per call
        return self.platform.lakeformation

    @classmethod
    def service_model(cls) -> Any:
        if cls._model is None:
            cls._model = botocore.session.get_session().get_service_model("lakeformation")
        return cls._model

    def resolve(self, request: Request) -> Call:
        name = request.path.strip("/")
        operation = self.operations.get(name)
        if operation is None or request.method != "POST":
            raise UnknownOperation(f"{request.method} {request.path} is not a Lake Formation operation sagelab "
                                   "answers yet.")
        try:
            params = json.loads(request.body or b"{}")
        except ValueError:
            raise SerializationError("The request body is not valid JSON.") from None
        if not isinstance(params, dict):
            raise SerializationError("The request body must be a JSON object.")
        try:
            validate(params, self.service_model().operation_model(name).input_shape)
        except ValidationError as invalid:
            return Call(operation, params, invalid_input=invalid)
        return Call(operation, params)

    def answer(self, call: Call, request: Request) -> Response:
        return json_response(call.operation.handler(self, call.params, request) or {},
                             content_type="application/json")

    # --- who is asking ------------------------------------------------------------------------------
    def _grantor(self, request: Request) -> set[str] | None:
        """The caller's principals when Lake Formation holds it to the grant option; None for root/admins."""
        from sagelab.lakeformation.access import principals_of

        caller = request.caller
        if caller is None or caller.is_root:
            return None
        principals = set(principals_of(caller))
        return None if principals & self.lf.admins() else principals

    @staticmethod
    def _by(request: Request) -> str:
        caller = request.caller
        return caller.arn if caller is not None else f"arn:aws:iam::{request.account_id}:root"

    def grant_permissions(self, params: dict[str, Any], request: Request) -> None:
        self.lf.grant(params, by=self._by(request), grantor=self._grantor(request))

    def revoke_permissions(self, params: dict[str, Any], request: Request) -> None:
        self.lf.revoke(params, by=self._by(request), grantor=self._grantor(request))

    def _batch(self, params: dict[str, Any], request: Request, change: Any) -> dict[str, Any]:
        failures = []
        grantor, by = self._grantor(request), self._by(request)
        for entry in params.get("Entries") or []:
            try:
                change(entry, by=by, grantor=grantor)
            except SagelabError as error:  # reported entry by entry, as Lake Formation does
                failures.append({"RequestEntry": entry, "Error": {"ErrorCode": error.code_for("rest-json"),
                                                                  "ErrorMessage": error.message}})
        return {"Failures": failures}

    def batch_grant(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return self._batch(params, request, self.lf.grant)

    def batch_revoke(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return self._batch(params, request, self.lf.revoke)

    operations = OperationTable("lakeformation", LAKEFORMATION, (
        op("RegisterResource", lambda face, p, r: face.lf.register(p)),
        op("DeregisterResource", lambda face, p, r: face.lf.deregister(p["ResourceArn"])),
        op("DescribeResource", lambda face, p, r: {"ResourceInfo": face.lf.describe_location(p["ResourceArn"])},
           read_only=True),
        op("ListResources", lambda face, p, r: face.lf.list_locations(p), read_only=True),
        op("GrantPermissions", grant_permissions),
        op("RevokePermissions", revoke_permissions),
        op("BatchGrantPermissions", batch_grant),
        op("BatchRevokePermissions", batch_revoke),
        op("ListPermissions", lambda face, p, r: face.lf.list_permissions(p), read_only=True),
        op("CreateDataCellsFilter", lambda face, p, r: face.lf.create_filter(p["TableData"])),
        op("GetDataCellsFilter", lambda face, p, r: {"DataCellsFilter": face.lf.get_filter(p)}, read_only=True),
        op("ListDataCellsFilter", lambda face, p, r: face.lf.list_filters(p), read_only=True),
        op("DeleteDataCellsFilter", lambda face, p, r: face.lf.delete_filter(p)),
        op("GetDataLakeSettings", lambda face, p, r: {"DataLakeSettings": face.lf.settings()}, read_only=True),
        op("PutDataLakeSettings", lambda face, p, r: face.lf.put_settings(p["DataLakeSettings"])),
    ))
