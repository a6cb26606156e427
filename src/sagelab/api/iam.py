"""AWS IAM (query protocol, global): users, groups, roles, policies, access keys, and the policy simulator.

Handlers translate between the wire and `iam.directory.IamDirectory`. Policy documents go back URL-encoded,
as IAM sends them (boto3 decodes them into dicts). List* answers page with Marker / IsTruncated / MaxItems.
SimulatePrincipalPolicy asks the same `Authorizer.decide` that enforcement asks, so it answers what the
server would do.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sagelab.api.http import Request, Response
from sagelab.api.operations import IAM, Call, OperationTable
from sagelab.api.query_protocol import QueryService
from sagelab.errors import ValidationError
from sagelab.iam.directory import GROUP, ROLE, USER, IamDirectory
from sagelab.iam.errors import InvalidIamInput, NoSuchEntity
from sagelab.iam.principals import CallerKind
from sagelab.security.policy_evaluation import PolicySource

if TYPE_CHECKING:
    from sagelab.platform import Platform

op = IAM.op
USER_ARN, GROUP_ARN, ROLE_ARN = "user/{UserName}", "group/{GroupName}", "role/{RoleName}"
DEFAULT_MAX_ITEMS = 100


def encoded(document: str) -> str:
    return quote(document, safe="")


def page(items: list[Any], params: dict[str, Any], key: str) -> dict[str, Any]:
    """One page of `items` as IAM answers it: the items under `key`, IsTruncated and, if so, the next Marker."""
    start = 0
    if params.get("Marker"):
        try:
            start = int(base64.urlsafe_b64decode(params["Marker"]).decode())
        except ValueError:
            raise InvalidIamInput(f"Marker {params['Marker']!r} is not one this server gave out.") from None
    end = start + params.get("MaxItems", DEFAULT_MAX_ITEMS)
    out: dict[str, Any] = {key: items[start:end], "IsTruncated": end < len(items)}
    if end < len(items):
        out["Marker"] = base64.urlsafe_b64encode(str(end).encode()).decode()
    return out


def _role(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "AssumeRolePolicyDocument": encoded(doc["AssumeRolePolicyDocument"])}


# --- handlers shared by users, groups and roles: inline and attached policies ------------------------------
_OWNERS = {USER: "UserName", GROUP: "GroupName", ROLE: "RoleName"}
#: (face, validated parameters, request) -> the result document.
Handler = Callable[..., Any]


def _put_inline(kind: str) -> Handler:
    def put(face: IamFace, params: dict[str, Any], request: Request) -> None:
        face.directory.put_inline_policy(kind, params[_OWNERS[kind]], params["PolicyName"],
                                         params["PolicyDocument"])
    return put


def _get_inline(kind: str) -> Handler:
    def get(face: IamFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
        owner = params[_OWNERS[kind]]
        text = face.directory.inline_policy(kind, owner, params["PolicyName"])
        return {_OWNERS[kind]: owner, "PolicyName": params["PolicyName"], "PolicyDocument": encoded(text)}
    return get


def _delete_inline(kind: str) -> Handler:
    def delete(face: IamFace, params: dict[str, Any], request: Request) -> None:
        face.directory.delete_inline_policy(kind, params[_OWNERS[kind]], params["PolicyName"])
    return delete


def _list_inline(kind: str) -> Handler:
    def list_names(face: IamFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return page(face.directory.inline_policy_names(kind, params[_OWNERS[kind]]), params, "PolicyNames")
    return list_names


def _attach(kind: str) -> Handler:
    def attach(face: IamFace, params: dict[str, Any], request: Request) -> None:
        face.directory.attach_policy(kind, params[_OWNERS[kind]], params["PolicyArn"])
    return attach


def _detach(kind: str) -> Handler:
    def detach(face: IamFace, params: dict[str, Any], request: Request) -> None:
        face.directory.detach_policy(kind, params[_OWNERS[kind]], params["PolicyArn"])
    return detach


def _list_attached(kind: str) -> Handler:
    def list_attached(face: IamFace, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return page(face.directory.attached_policies(kind, params[_OWNERS[kind]]), params, "AttachedPolicies")
    return list_attached


def _policy_entries(kind: str, noun: str, arn: str) -> tuple[Any, ...]:
    return (
        op(f"Put{noun}Policy", _put_inline(kind), arn),
        op(f"Get{noun}Policy", _get_inline(kind), arn, read_only=True),
        op(f"Delete{noun}Policy", _delete_inline(kind), arn),
        op(f"List{noun}Policies", _list_inline(kind), arn, read_only=True),
        op(f"Attach{noun}Policy", _attach(kind), arn),
        op(f"Detach{noun}Policy", _detach(kind), arn),
        op(f"ListAttached{noun}Policies", _list_attached(kind), arn, read_only=True),
    )



class IamFace:
    protocol = "query"

    def __init__(self, platform: Platform):
        self.platform = platform

    @property
    def directory(self) -> IamDirectory:
        return self.platform.iam

    def resolve(self, request: Request) -> Call:
        return self.wire.resolve(request)

    def answer(self, call: Call, request: Request) -> Response:
        return self.wire.answer(self, call, request)

    @staticmethod
    def _refuse_unapplied(params: dict[str, Any], *names: str) -> None:
        """Inputs that would restrict what a principal may do, which sagelab does not enforce: refused, since
        accepting them would grant more than the caller asked for."""
        given = [name for name in names if params.get(name)]
        if given:
            raise InvalidIamInput(f"sagelab does not enforce {', '.join(given)} yet; leave "
                                  f"{'it' if len(given) == 1 else 'them'} out.")

    def _user_name(self, params: dict[str, Any], request: Request) -> str:
        """The UserName the request names, or else the signing user's own (IAM's default for key operations)."""
        if params.get("UserName"):
            return params["UserName"]
        if request.principal is not None:
            caller = self.platform.authorizer.caller(request.principal.access_key_id,
                                                     request.headers.get("x-amz-security-token"))
            if caller.kind is CallerKind.USER:
                return caller.name
        raise ValidationError("Must specify userName when calling with non-User credentials")

    # --- users -----------------------------------------------------------------------------------------
    def create_user(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        self._refuse_unapplied(params, "PermissionsBoundary")
        return {"User": self.directory.create_user(params["UserName"], params.get("Path"))}

    def get_user(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        if not params.get("UserName") and request.principal is not None:
            caller = self.platform.authorizer.caller(request.principal.access_key_id,
                                                     request.headers.get("x-amz-security-token"))
            if caller.is_root:  # AWS answers the root user itself: no name, no path (and sagelab knows no
                return {"User": {"UserId": caller.user_id, "Arn": caller.arn}}  # creation date of an account)
        return {"User": self.directory.get(USER, self._user_name(params, request))}

    def list_users(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return page(self.directory.list(USER, params.get("PathPrefix", "/")), params, "Users")

    def delete_user(self, params: dict[str, Any], request: Request) -> None:
        self.directory.delete_user(params["UserName"])

    # --- access keys ------------------------------------------------------------------------------------
    def create_access_key(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"AccessKey": self.directory.create_access_key(self._user_name(params, request))}

    def list_access_keys(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return page(self.directory.access_keys(self._user_name(params, request)), params, "AccessKeyMetadata")

    def delete_access_key(self, params: dict[str, Any], request: Request) -> None:
        self.directory.delete_access_key(self._user_name(params, request), params["AccessKeyId"])

    # --- groups -----------------------------------------------------------------------------------------
    def create_group(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"Group": self.directory.create_group(params["GroupName"], params.get("Path"))}

    def get_group(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        group = self.directory.get(GROUP, params["GroupName"])
        return {"Group": group, **page(self.directory.group_members(params["GroupName"]), params, "Users")}

    def list_groups(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return page(self.directory.list(GROUP, params.get("PathPrefix", "/")), params, "Groups")

    def list_groups_for_user(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return page(self.directory.groups_of(params["UserName"]), params, "Groups")

    def add_user_to_group(self, params: dict[str, Any], request: Request) -> None:
        self.directory.add_user_to_group(params["GroupName"], params["UserName"])

    def remove_user_from_group(self, params: dict[str, Any], request: Request) -> None:
        self.directory.remove_user_from_group(params["GroupName"], params["UserName"])

    def delete_group(self, params: dict[str, Any], request: Request) -> None:
        self.directory.delete_group(params["GroupName"])

    # --- roles ------------------------------------------------------------------------------------------
    def create_role(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        self._refuse_unapplied(params, "PermissionsBoundary")
        role = self.directory.create_role(params["RoleName"], params["AssumeRolePolicyDocument"],
                                          path=params.get("Path"), description=params.get("Description", ""),
                                          max_session_duration=params.get("MaxSessionDuration"))
        return {"Role": _role(role)}

    def get_role(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"Role": _role(self.directory.get(ROLE, params["RoleName"]))}

    def list_roles(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        roles = [_role(role) for role in self.directory.list(ROLE, params.get("PathPrefix", "/"))]
        return page(roles, params, "Roles")

    def delete_role(self, params: dict[str, Any], request: Request) -> None:
        self.directory.delete_role(params["RoleName"])

    # --- managed policies -------------------------------------------------------------------------------
    def create_policy(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"Policy": self.directory.create_policy(params["PolicyName"], params["PolicyDocument"],
                                                       path=params.get("Path"),
                                                       description=params.get("Description", ""))}

    def get_policy(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"Policy": self.directory.get_policy(params["PolicyArn"])}

    def get_policy_version(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        version = self.directory.policy_version(params["PolicyArn"], params["VersionId"])
        return {"PolicyVersion": {**version, "Document": encoded(version["Document"])}}

    def list_policies(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        # sagelab has no AWS-managed policies: Scope=AWS lists none.
        policies = [] if params.get("Scope") == "AWS" else self.directory.list_policies(
            path_prefix=params.get("PathPrefix", "/"), only_attached=params.get("OnlyAttached", False))
        return page(policies, params, "Policies")

    def delete_policy(self, params: dict[str, Any], request: Request) -> None:
        self.directory.delete_policy(params["PolicyArn"])

    # --- simulation -------------------------------------------------------------------------------------
    def simulate_principal_policy(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        self._refuse_unapplied(params, "PolicyInputList", "PermissionsBoundaryPolicyInputList", "ResourcePolicy",
                               "CallerArn", "ResourceOwner")
        source = params["PolicySourceArn"]
        authorizer = self.platform.authorizer
        caller = authorizer.caller_for_arn(source)
        if caller is None:
            raise NoSuchEntity(f"The entity {source} does not exist.")
        keys: dict[str, object] = {}
        for entry in params.get("ContextEntries", []):
            values = entry.get("ContextKeyValues", [])
            keys[entry["ContextKeyName"]] = values if entry.get("ContextKeyType", "").endswith("List") else (
                values[0] if len(values) == 1 else values)
        labels = authorizer.identity_policies(caller)
        results = []
        for action in params["ActionNames"]:
            for resource in params.get("ResourceArns") or ["*"]:
                _, decision = authorizer.decide(caller, action, resource, keys)
                matched = []
                for ref in decision.matched_statements:
                    named = labels.get(ref.policy)
                    if ref.source is PolicySource.RESOURCE or named is None:
                        matched.append({"SourcePolicyId": ref.policy, "SourcePolicyType": "resource"})
                    else:
                        matched.append({"SourcePolicyId": named.policy_id, "SourcePolicyType": named.source_type})
                results.append({"EvalActionName": action, "EvalResourceName": resource,
                                "EvalDecision": decision.decision.value, "MatchedStatements": matched,
                                "MissingContextValues": []})
        return page(results, params, "EvaluationResults")

    operations = OperationTable("iam", IAM, (
        op("CreateUser", create_user, USER_ARN),
        op("GetUser", get_user, USER_ARN, read_only=True),
        op("ListUsers", list_users, read_only=True),
        op("DeleteUser", delete_user, USER_ARN),
        op("CreateAccessKey", create_access_key, USER_ARN),
        op("ListAccessKeys", list_access_keys, USER_ARN, read_only=True),
        op("DeleteAccessKey", delete_access_key, USER_ARN),
        op("CreateGroup", create_group, GROUP_ARN),
        op("GetGroup", get_group, GROUP_ARN, read_only=True),
        op("ListGroups", list_groups, read_only=True),
        op("ListGroupsForUser", list_groups_for_user, USER_ARN, read_only=True),
        op("AddUserToGroup", add_user_to_group, GROUP_ARN),
        op("RemoveUserFromGroup", remove_user_from_group, GROUP_ARN),
        op("DeleteGroup", delete_group, GROUP_ARN),
        op("CreateRole", create_role, ROLE_ARN),
        op("GetRole", get_role, ROLE_ARN, read_only=True),
        op("ListRoles", list_roles, read_only=True),
        op("DeleteRole", delete_role, ROLE_ARN),
        op("CreatePolicy", create_policy, "policy/{PolicyName}"),
        op("GetPolicy", get_policy, "{PolicyArn}", read_only=True),
        op("GetPolicyVersion", get_policy_version, "{PolicyArn}", read_only=True),
        op("ListPolicies", list_policies, read_only=True),
        op("DeletePolicy", delete_policy, "{PolicyArn}"),
        *_policy_entries(USER, "User", USER_ARN),
        *_policy_entries(GROUP, "Group", GROUP_ARN),
        *_policy_entries(ROLE, "Role", ROLE_ARN),
        op("SimulatePrincipalPolicy", simulate_principal_policy, "{PolicySourceArn}", read_only=True),
    ))
    wire = QueryService(operations)
