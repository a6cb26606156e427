"""Application Auto Scaling for SageMaker variants: scalable targets, scaling policies, scaling activities.

Targets, policies and activities are `resources` rows, so a restart loses none of them. A target tracking
policy owns two CloudWatch alarms (AlarmHigh, AlarmLow) in the alarm store, whose action is the policy's
ARN; step scaling policies are named as an action by alarms the user makes. When such an alarm is in
ALARM, the alarm evaluator hands the policy ARN to the scaling controller, which calls `act`: the new
instance count goes through the endpoint's UpdateEndpointWeightsAndCapacities path, and the activity stays
InProgress until the endpoint is InService again (`settle`).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sagelab.account import Account
from sagelab.autoscaling import policies
from sagelab.autoscaling.errors import InvalidNextToken, ObjectNotFound
from sagelab.errors import SagelabError, ValidationError
from sagelab.pagination import page
from sagelab.storage.resources import NotFound, Resource, ResourceStore, public

TARGET = "scalable-target"
POLICY = "scaling-policy"
ACTIVITY = "scaling-activity"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
#: Application Auto Scaling's default cooldown for SageMaker variants.
DEFAULT_COOLDOWN = 300
_RESOURCE_ID = re.compile(r"endpoint/([^/]+)/variant/([^/]+)")
_SERVICE_ROLE = ("role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                 "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")

#: (name, {"EndpointName", "DesiredWeightsAndCapacities"}) -> the endpoint's ARN, as UpdateEndpointWeightsAndCapacities.
UpdateCapacity = Callable[[dict[str, Any]], str]


def _key(namespace: str, resource_id: str, dimension: str) -> str:
    return f"{namespace}|{resource_id}|{dimension}"


def _scope(p: Mapping[str, Any]) -> str:
    return (f"service namespace: {p['ServiceNamespace']}, resource ID: {p['ResourceId']}, scalable dimension: "
            f"{p['ScalableDimension']}")


class ScalingService:
    def __init__(self, *, resources: ResourceStore, account: Account, endpoint_doc: Callable[[str], dict | None],
                 update_capacity: UpdateCapacity, put_alarm: Callable[[dict[str, Any], str], None],
                 delete_alarms: Callable[[list[str]], None], alarm_period: int):
        self.resources, self.account = resources, account
        self.endpoint_doc = endpoint_doc
        self.update_capacity = update_capacity
        self.put_alarm, self.delete_alarms = put_alarm, delete_alarms
        self.alarm_period = alarm_period

    # --- input ----------------------------------------------------------------------------------------
    def _check(self, p: Mapping[str, Any]) -> tuple[str, str]:
        """The endpoint and variant a request's target names; refuses what sagelab cannot scale."""
        if p["ServiceNamespace"] != "sagemaker":
            raise ValidationError(f"ServiceNamespace {p['ServiceNamespace']!r} is not supported by sagelab; "
                                  "expected sagemaker.")
        if p["ScalableDimension"] != DIMENSION:
            raise ValidationError(f"Unsupported scalable dimension {p['ScalableDimension']!r} for service namespace "
                                  f"sagemaker; expected {DIMENSION}.")
        match = _RESOURCE_ID.fullmatch(p["ResourceId"])
        if match is None:
            raise ValidationError(f"Unsupported resource ID {p['ResourceId']!r}: expected "
                                  "endpoint/<EndpointName>/variant/<VariantName>.")
        return match[1], match[2]

    def _target(self, p: Mapping[str, Any]) -> Resource | None:
        return self.resources.get(TARGET, _key(p["ServiceNamespace"], p["ResourceId"], p["ScalableDimension"]))

    def _variant_count(self, endpoint: str, variant: str) -> int | None:
        doc = self.endpoint_doc(endpoint)
        for summary in (doc or {}).get("ProductionVariants", []):
            if summary["VariantName"] == variant:
                return int(summary.get("DesiredInstanceCount", summary.get("CurrentInstanceCount", 1)))
        return None

    # --- scalable targets -------------------------------------------------------------------------------
    def register(self, p: Mapping[str, Any], region: str) -> dict[str, Any]:
        endpoint, variant = self._check(p)
        current = self._variant_count(endpoint, variant)
        if current is None:
            raise ValidationError(f"The endpoint {endpoint} with variant {variant} does not exist; ResourceId "
                                  f"{p['ResourceId']!r} must name a variant of an existing endpoint.")
        existing = self._target(p)
        low = p.get("MinCapacity", existing.doc["MinCapacity"] if existing else None)
        high = p.get("MaxCapacity", existing.doc["MaxCapacity"] if existing else None)
        if low is None or high is None:
            raise ValidationError("MinCapacity and MaxCapacity are required when registering a new scalable target.")
        if low < 0 or high < low:
            raise ValidationError(f"MinCapacity ({low}) must be at least 0 and at most MaxCapacity ({high}).")
        suspended = {**(existing.doc.get("SuspendedState", {}) if existing else {}), **(p.get("SuspendedState") or {})}
        suspended = {k: bool(suspended.get(k, False)) for k in
                     ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")}
        if existing is None:
            arn = self.account.arn("application-autoscaling", f"scalable-target/{uuid.uuid4().hex[:28]}", region)
            doc = {"ServiceNamespace": p["ServiceNamespace"], "ResourceId": p["ResourceId"],
                   "ScalableDimension": p["ScalableDimension"], "MinCapacity": low, "MaxCapacity": high,
                   "RoleARN": f"arn:aws:iam::{self.account.id}:{_SERVICE_ROLE}", "CreationTime": time.time(),
                   "SuspendedState": suspended, "ScalableTargetARN": arn}
            self.resources.insert(TARGET, _key(p["ServiceNamespace"], p["ResourceId"], p["ScalableDimension"]),
                                  arn, "Registered", doc)
            if p.get("Tags"):
                self.resources.put_tags(arn, dict(p["Tags"]))
        else:
            arn = existing.arn
            self.resources.update(TARGET, existing.name, lambda res: res.doc.update(
                MinCapacity=low, MaxCapacity=high, SuspendedState=suspended))
        # A count outside the new range is brought inside it at once, as AWS does.
        if not low <= current <= high:
            which, bound = ("minimum", low) if current < low else ("maximum", high)
            self._start(p, endpoint, variant, bound, f"{which} capacity was set to {bound}", out=current < low)
        return {"ScalableTargetARN": arn}

    def describe_targets(self, p: Mapping[str, Any]) -> dict[str, Any]:
        found = [r for r in self.resources.list(TARGET, descending=False)
                 if r.doc["ServiceNamespace"] == p["ServiceNamespace"]
                 and (not p.get("ResourceIds") or r.doc["ResourceId"] in p["ResourceIds"])
                 and (not p.get("ScalableDimension") or r.doc["ScalableDimension"] == p["ScalableDimension"])]
        chunk, more = self._page(found, p)
        return {"ScalableTargets": [public(r.doc) for r in chunk], **more}

    def deregister(self, p: Mapping[str, Any]) -> None:
        target = self._target(p)
        if target is None:
            raise ObjectNotFound(f"No scalable target found for {_scope(p)}")
        for policy in self._policies_of(target.name):
            self._drop_policy(policy)
        self.resources.delete(TARGET, target.name)

    # --- policies ---------------------------------------------------------------------------------------
    def put_policy(self, p: Mapping[str, Any], region: str) -> dict[str, Any]:
        self._check(p)
        kind = p.get("PolicyType") or "StepScaling"
        if kind == "PredictiveScaling":
            raise ValidationError("PolicyType PredictiveScaling is not supported for service namespace sagemaker; "
                                  "expected StepScaling or TargetTrackingScaling.")
        tracking = p.get("TargetTrackingScalingPolicyConfiguration")
        step = p.get("StepScalingPolicyConfiguration")
        if kind == "TargetTrackingScaling":
            if tracking is None:
                raise ValidationError("TargetTrackingScalingPolicyConfiguration is required for PolicyType "
                                      "TargetTrackingScaling.")
            if step is not None:
                raise ValidationError("StepScalingPolicyConfiguration is not valid for PolicyType "
                                      "TargetTrackingScaling.")
            policies.check_target_tracking(tracking)
        else:
            if tracking is not None:
                raise ValidationError("TargetTrackingScalingPolicyConfiguration is not valid for PolicyType "
                                      "StepScaling.")
            policies.check_step_scaling(step)
        target = self._target(p)
        if target is None:
            raise ObjectNotFound(f"No scalable target registered for {_scope(p)}")
        name = f"{target.name}|{p['PolicyName']}"
        existing = self.resources.get(POLICY, name)
        if existing is not None:
            self._drop_alarms(existing.doc)
        uid = existing.doc["_Uuid"] if existing else str(uuid.uuid4())
        arn = existing.arn if existing else (
            f"arn:aws:autoscaling:{region}:{self.account.id}:scalingPolicy:{uid}:resource/"
            f"{p['ServiceNamespace']}/{p['ResourceId']}:policyName/{p['PolicyName']}")
        doc: dict[str, Any] = {"PolicyARN": arn, "PolicyName": p["PolicyName"],
                               "ServiceNamespace": p["ServiceNamespace"], "ResourceId": p["ResourceId"],
                               "ScalableDimension": p["ScalableDimension"], "PolicyType": kind,
                               "CreationTime": existing.doc["CreationTime"] if existing else time.time(),
                               "Alarms": [], "_Uuid": uid}
        if kind == "TargetTrackingScaling":
            doc["TargetTrackingScalingPolicyConfiguration"] = dict(tracking)
        else:
            doc["StepScalingPolicyConfiguration"] = dict(step)
        if existing is None:
            self.resources.insert(POLICY, name, arn, kind, doc)
        else:
            self.resources.update(POLICY, name, lambda res: setattr(res, "doc", doc))
        if kind == "TargetTrackingScaling":
            for alarm in policies.tracking_alarms(doc, self.alarm_period):
                self.put_alarm(alarm, region)
                doc["Alarms"].append({"AlarmName": alarm["AlarmName"],
                                      "AlarmARN": self.account.arn("cloudwatch", f"alarm:{alarm['AlarmName']}",
                                                                   region)})
            self.resources.update(POLICY, name, lambda res: res.doc.update(Alarms=doc["Alarms"]))
        return {"PolicyARN": arn, "Alarms": doc["Alarms"]}

    def describe_policies(self, p: Mapping[str, Any]) -> dict[str, Any]:
        names = set(p.get("PolicyNames") or ())
        found = [r for r in self.resources.list(POLICY, descending=False)
                 if r.doc["ServiceNamespace"] == p["ServiceNamespace"]
                 and (not p.get("ResourceId") or r.doc["ResourceId"] == p["ResourceId"])
                 and (not p.get("ScalableDimension") or r.doc["ScalableDimension"] == p["ScalableDimension"])
                 and (not names or r.doc["PolicyName"] in names)]
        chunk, more = self._page(found, p)
        return {"ScalingPolicies": [public(r.doc) for r in chunk], **more}

    def delete_policy(self, p: Mapping[str, Any]) -> None:
        key = _key(p["ServiceNamespace"], p["ResourceId"], p["ScalableDimension"])
        policy = self.resources.get(POLICY, f"{key}|{p['PolicyName']}")
        if policy is None:
            raise ObjectNotFound(f"No scaling policy found for {_scope(p)}, policy name: {p['PolicyName']}")
        self._drop_policy(policy)

    def _policies_of(self, target_key: str) -> list[Resource]:
        return [r for r in self.resources.list(POLICY) if r.name.startswith(target_key + "|")]

    def _drop_policy(self, policy: Resource) -> None:
        self._drop_alarms(policy.doc)
        self.resources.delete(POLICY, policy.name)

    def _drop_alarms(self, doc: Mapping[str, Any]) -> None:
        # Only a target tracking policy's own alarms go with it; a step policy's alarms are the user's.
        names = [a["AlarmName"] for a in doc.get("Alarms") or [] if doc["PolicyType"] == "TargetTrackingScaling"]
        for one in names:
            # An alarm the user already deleted is no reason to keep the policy.
            with contextlib.suppress(SagelabError):
                self.delete_alarms([one])

    # --- activities -------------------------------------------------------------------------------------
    def describe_activities(self, p: Mapping[str, Any]) -> dict[str, Any]:
        found = [r for r in self.resources.list(ACTIVITY)  # newest first, as AWS lists them
                 if r.doc["ServiceNamespace"] == p["ServiceNamespace"]
                 and (not p.get("ResourceId") or r.doc["ResourceId"] == p["ResourceId"])
                 and (not p.get("ScalableDimension") or r.doc["ScalableDimension"] == p["ScalableDimension"])]
        chunk, more = self._page(found, p)
        return {"ScalingActivities": [public(r.doc) for r in chunk], **more}

    @staticmethod
    def _page(items: list[Resource], p: Mapping[str, Any]) -> tuple[list[Resource], dict[str, str]]:
        size = p.get("MaxResults")
        if size is not None and not 1 <= size <= 50:
            raise ValidationError(f"MaxResults must be between 1 and 50; got {size}.")
        try:
            return page(items, {"NextToken": p.get("NextToken"), "MaxResults": size or 50}, default_size=50,
                        max_size=50)
        except ValidationError as bad:
            raise InvalidNextToken(bad.message) from None

    def _start(self, target: Mapping[str, Any], endpoint: str, variant: str, desired: int, cause: str, *,
               out: bool) -> None:
        now = time.time()
        activity_id = str(uuid.uuid4())
        doc = {"ActivityId": activity_id, "ServiceNamespace": target["ServiceNamespace"],
               "ResourceId": target["ResourceId"], "ScalableDimension": target["ScalableDimension"],
               "Description": f"Setting desired instance count to {desired}.", "Cause": cause, "StartTime": now,
               "StatusCode": "InProgress", "StatusMessage": "", "_Desired": desired, "_Out": out}
        arn = self.account.arn("application-autoscaling", f"scaling-activity/{activity_id}")
        self.resources.insert(ACTIVITY, activity_id, arn, "InProgress", doc, created_at=now)
        try:
            self.update_capacity({"EndpointName": endpoint, "DesiredWeightsAndCapacities": [
                {"VariantName": variant, "DesiredInstanceCount": desired}]})
        except ValidationError as refused:
            self._finish(activity_id, "Failed", f"Failed to set desired instance count to {desired}. "
                         f"Reason: {refused.message}")

    def _finish(self, activity_id: str, status: str, message: str) -> None:
        def done(res: Resource) -> None:
            res.status = status
            res.doc.update(StatusCode=status, StatusMessage=message, EndTime=time.time())
        with contextlib.suppress(NotFound):  # deleted meanwhile
            self.resources.update(ACTIVITY, activity_id, done)

    def settle(self) -> None:
        """Close the activities whose endpoint has finished changing its instance count."""
        for activity in self.resources.in_status(ACTIVITY, ("InProgress",)):
            match = _RESOURCE_ID.fullmatch(activity.doc["ResourceId"])
            doc = self.endpoint_doc(match[1]) if match else None
            desired = activity.doc["_Desired"]
            if doc is None:
                self._finish(activity.name, "Failed", f"Failed to set desired instance count to {desired}. "
                             f"Reason: the endpoint {match[1] if match else '?'} no longer exists.")
            elif doc.get("EndpointStatus") == "InService":
                self._finish(activity.name, "Successful", f"Successfully set desired instance count to {desired}. "
                             "Change successfully fulfilled by sagemaker.")
                # Cooldowns count from the end of the activity, as Application Auto Scaling counts them.
                with contextlib.suppress(NotFound):
                    self.resources.update(TARGET, _key(activity.doc["ServiceNamespace"], activity.doc["ResourceId"],
                                                       activity.doc["ScalableDimension"]),
                                          lambda res, out=activity.doc["_Out"]: res.doc.update(
                                              {"_LastScaleOut" if out else "_LastScaleIn": time.time()}))

    # --- alarm actions ----------------------------------------------------------------------------------
    def act(self, policy_arn: str, alarm: Mapping[str, Any]) -> None:
        """An alarm in ALARM whose action is `policy_arn` asks the policy to scale."""
        policy = self.resources.get_by_arn(policy_arn)
        if policy is None or policy.kind != POLICY:
            return
        doc = policy.doc
        target = self._target(doc)
        if target is None:
            return
        endpoint, variant = self._check(doc)
        endpoint_doc = self.endpoint_doc(endpoint)
        if endpoint_doc is None or endpoint_doc.get("EndpointStatus") != "InService":
            return  # an activity (or an update) is still changing it
        if any(a.doc["ResourceId"] == doc["ResourceId"] for a in self.resources.in_status(ACTIVITY, ("InProgress",))):
            return
        current = self._variant_count(endpoint, variant)
        if current is None:
            return
        values = _recent_values(alarm)
        now = time.time()
        state = target.doc
        suspended = state.get("SuspendedState") or {}
        if doc["PolicyType"] == "TargetTrackingScaling":
            config = doc["TargetTrackingScalingPolicyConfiguration"]
            high = alarm["AlarmName"].startswith(f"TargetTracking-{doc['ResourceId']}-AlarmHigh-")
            value = policies.aggregate(values, "Average") if values else None
            desired = policies.tracking_capacity(current, high, value, config["TargetValue"])
            out_cooldown = config.get("ScaleOutCooldown", DEFAULT_COOLDOWN)
            in_cooldown = config.get("ScaleInCooldown", DEFAULT_COOLDOWN)
        else:
            config = doc["StepScalingPolicyConfiguration"]
            # An alarm put in ALARM by SetAlarmState has no datapoints: it counts as a breach at the threshold.
            value = policies.aggregate(values, config.get("MetricAggregationType")) if values else alarm["Threshold"]
            found = policies.step_capacity(current, config, value, alarm["Threshold"])
            if found is None:
                return
            desired = found
            out_cooldown = in_cooldown = config.get("Cooldown", DEFAULT_COOLDOWN)
        desired = max(state["MinCapacity"], min(state["MaxCapacity"], desired))
        if desired == current:
            return
        scaling_out = desired > current
        if suspended.get("DynamicScalingOutSuspended" if scaling_out else "DynamicScalingInSuspended"):
            return
        last_out, last_in = state.get("_LastScaleOut", -math.inf), state.get("_LastScaleIn", -math.inf)
        if scaling_out and now - last_out < out_cooldown:
            return
        # A scale-out ends a scale-in cooldown, and scale-in waits for the last scale-out's cooldown too.
        if not scaling_out and (now - last_in < in_cooldown or now - last_out < out_cooldown):
            return
        cause = f"monitor alarm {alarm['AlarmName']} in state ALARM triggered policy {doc['PolicyName']}"
        self._start(doc, endpoint, variant, desired, cause, out=scaling_out)


def _recent_values(alarm: Mapping[str, Any]) -> list[float]:
    """The alarm's evaluated datapoints, oldest first."""
    try:
        data = json.loads(alarm.get("StateReasonData") or "{}")
    except ValueError:
        return []
    return [float(v) for v in data.get("recentDatapoints") or [] if v is not None]
