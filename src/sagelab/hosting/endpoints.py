"""Endpoints: Creating -> InService (or Failed), Updating, Deleting; their instances live in the Fleet.

Deployments run on background threads; the Describe document tracks what the fleet is doing.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from sagelab.account import Account
from sagelab.errors import ValidationError
from sagelab.hosting.capture import DataCapture
from sagelab.hosting.fleet import Fleet, ModelLoadFailed, variant_specs
from sagelab.hosting.models import EndpointConfigService
from sagelab.hosting.serverless import ServerlessSpec, is_serverless
from sagelab.storage.resources import AlreadyExists, NotFound, Resource, ResourceStore

ENDPOINT = "endpoint"


class EndpointService:
    def __init__(self, *, resources: ResourceStore, account: Account, endpoint_configs: EndpointConfigService,
                 fleet: Fleet, capture: DataCapture | None = None):
        self.resources = resources
        self.account = account
        self.endpoint_configs = endpoint_configs
        self.fleet = fleet
        self.capture = capture
        #: The endpoint configuration this server's instances of each endpoint serve.
        self._served: dict[str, str] = {}
        #: Endpoints another server made that this one is deploying (`sync_with_store`), and the (endpoint,
        #: configuration) pairs whose instances failed to start here, which are not tried again.
        self._adopting: set[str] = set()
        self._unadoptable: set[tuple[str, str]] = set()
        self._adopting_lock = threading.Lock()

    # --- create / describe / list -----------------------------------------------------------------------
    def create(self, params: dict[str, Any], *, region: str) -> str:
        name = params["EndpointName"]
        config = self.endpoint_configs.get(params["EndpointConfigName"])
        arn = self.account.sagemaker_arn("endpoint", name, region)
        now = time.time()
        doc = {"EndpointName": name, "EndpointArn": arn, "EndpointConfigName": config.name,
               "EndpointStatus": "Creating", "CreationTime": now, "LastModifiedTime": now,
               "ProductionVariants": self._variant_summaries(config.doc, current=False)}
        if config.doc.get("DataCaptureConfig"):
            doc["DataCaptureConfig"] = _capture_summary(config.doc["DataCaptureConfig"])
        if config.doc.get("AsyncInferenceConfig"):
            doc["AsyncInferenceConfig"] = config.doc["AsyncInferenceConfig"]
        try:
            self.resources.insert(ENDPOINT, name, arn, "Creating", doc, created_at=now)
        except AlreadyExists:
            raise ValidationError(f'Cannot create already existing endpoint "{arn}".') from None
        if params.get("Tags"):
            self.resources.put_tags(arn, {t["Key"]: t.get("Value", "") for t in params["Tags"]})
        self._in_background(self._deploy, name, config.doc)
        return arn

    def get(self, name: str) -> Resource:
        res = self.resources.get(ENDPOINT, name)
        if res is None:
            arn = self.account.sagemaker_arn("endpoint", name)
            raise ValidationError(f'Could not find endpoint "{arn}".')
        return res

    def describe(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).doc)

    def list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.resources.list_for_request(ENDPOINT, params)
        return [{"EndpointName": r.name, "EndpointArn": r.arn, "CreationTime": r.created_at,
                 "LastModifiedTime": r.modified_at, "EndpointStatus": r.status} for r in rows]

    # --- changes ------------------------------------------------------------------------------------------
    def delete(self, name: str) -> None:
        self.get(name)
        self._set_status(name, "Deleting")
        self._stop_serving(name)
        self.resources.delete(ENDPOINT, name)

    def _stop_serving(self, name: str) -> None:
        """Take the endpoint's traffic off this server and retire its instances here."""
        route = self.fleet.remove(name)
        self._served.pop(name, None)
        if self.capture is not None:
            self.capture.remove(name)
        if route is not None:
            self.fleet.retire([i for v in route.variants.values() for i in v.instances])

    def update(self, params: dict[str, Any]) -> str:
        name = params["EndpointName"]
        res = self.get(name)
        if res.status not in ("InService", "Failed"):
            raise ValidationError(f"Cannot update endpoint {name!r} while it is {res.status}; wait until it is "
                                  "InService.")
        config = self.endpoint_configs.get(params["EndpointConfigName"])
        self._set_status(name, "Updating")
        self._in_background(self._deploy, name, config.doc)
        return res.arn

    def update_weights(self, params: dict[str, Any]) -> str:
        name = params["EndpointName"]
        res = self.get(name)
        if res.status != "InService":
            raise ValidationError(f"Cannot update endpoint {name!r} while it is {res.status}.")
        known = {v["VariantName"] for v in res.doc["ProductionVariants"]}
        changes = params["DesiredWeightsAndCapacities"]
        for change in changes:
            if change["VariantName"] not in known:
                raise ValidationError(f"Variant {change['VariantName']!r} is not part of endpoint {name!r}. "
                                      f"Variants: {', '.join(sorted(known))}.")
        serverless = {v["VariantName"] for v in res.doc["ProductionVariants"] if "DesiredServerlessConfig" in v}
        for change in changes:
            if change["VariantName"] in serverless and "DesiredInstanceCount" in change:
                raise ValidationError(f"DesiredInstanceCount cannot be set for variant {change['VariantName']!r}: it "
                                      "is serverless and has no instances of its own (its ServerlessConfig scales it).")
        self._set_status(name, "Updating", _desired(changes))
        self._in_background(self._apply_weights, name, changes)
        return res.arn

    def recover(self) -> None:
        """Bring back the endpoints a previous server was serving."""
        for res in self.resources.in_status(ENDPOINT, ("InService", "Creating", "Updating", "Deleting")):
            if res.status == "Deleting":
                self.resources.delete(ENDPOINT, res.name)
                continue
            config = self.resources.get("endpoint-config", res.doc["EndpointConfigName"])
            if config is None:
                self._fail(res.name, "Its endpoint configuration no longer exists.")
                continue
            self._in_background(self._deploy, res.name, config.doc)

    # --- several servers on one database -------------------------------------------------------------
    def sync_with_store(self) -> None:
        """Serve what the shared database says, whichever server changed it: deploy here the InService
        endpoints this server does not serve, or serves under an older configuration, and retire those that
        were deleted. The endpoint's document stays the business of the server that made the change."""
        for res in self.resources.in_status(ENDPOINT, ("InService",)):
            config_name = res.doc["EndpointConfigName"]
            if self._served.get(res.name) == config_name and res.name in self.fleet.routes:
                continue
            config = self.resources.get("endpoint-config", config_name)
            with self._adopting_lock:
                if config is None or res.name in self._adopting or (res.name, config_name) in self._unadoptable:
                    continue
                self._adopting.add(res.name)
            self._in_background(self._adopt, res.name, config.doc)
        for name in list(self.fleet.routes):
            if name not in self._adopting and self.resources.get(ENDPOINT, name) is None:
                self._stop_serving(name)

    def _adopt(self, name: str, config_doc: dict[str, Any]) -> None:
        try:
            self._deploy(name, config_doc, record=False)
            if self._served.get(name) != config_doc["EndpointConfigName"]:
                self._unadoptable.add((name, config_doc["EndpointConfigName"]))
        finally:
            with self._adopting_lock:
                self._adopting.discard(name)

    # --- background work -------------------------------------------------------------------------------
    def _in_background(self, work, *args) -> None:
        threading.Thread(target=work, args=args, name=f"endpoint-{args[0]}", daemon=True).start()

    def _deploy(self, name: str, config_doc: dict[str, Any], *, record: bool = True) -> None:
        """Start the endpoint's instances and switch its traffic to them; with `record`, this server made the
        change and says so in the endpoint's document (InService, or Failed)."""
        try:
            route = self.fleet.deploy(name, variant_specs(config_doc))
        except ModelLoadFailed as exc:
            if record:
                self._fail(name, f"Failed to start the endpoint's serving instances: {exc}")
            return
        route.async_inference = config_doc.get("AsyncInferenceConfig")  # before traffic can reach it
        try:
            current = self.get(name)
        except ValidationError:  # deleted meanwhile
            self.fleet.retire([i for v in route.variants.values() for i in v.instances])
            return
        if self.capture is not None:
            self.capture.configure(name, config_doc.get("DataCaptureConfig"))
        previous = self.fleet.install(route)
        self._served[name] = config_doc["EndpointConfigName"]
        if previous is not None:
            self.fleet.retire([i for v in previous.variants.values() for i in v.instances], drain_seconds=30)
        if not record:
            return

        def in_service(res: Resource) -> None:
            res.status = "InService"
            if config_doc.get("AsyncInferenceConfig"):
                res.doc["AsyncInferenceConfig"] = config_doc["AsyncInferenceConfig"]
            else:
                res.doc.pop("AsyncInferenceConfig", None)
            res.doc.update({"EndpointStatus": "InService", "EndpointConfigName": config_doc["EndpointConfigName"],
                            "LastModifiedTime": time.time(),
                            "ProductionVariants": self._variant_summaries(config_doc, current=True)})
            res.doc.pop("FailureReason", None)
            if config_doc.get("DataCaptureConfig"):
                res.doc["DataCaptureConfig"] = _capture_summary(config_doc["DataCaptureConfig"])
            else:
                res.doc.pop("DataCaptureConfig", None)

        if current.status in ("Creating", "Updating", "InService"):
            self._update(name, in_service)

    def _apply_weights(self, name: str, changes: list[dict[str, Any]]) -> None:
        weights = {c["VariantName"]: float(c["DesiredWeight"]) for c in changes if "DesiredWeight" in c}
        self.fleet.set_weights(name, weights)
        failure = None
        for change in changes:
            if "DesiredInstanceCount" in change:
                try:
                    self.fleet.scale(name, change["VariantName"], int(change["DesiredInstanceCount"]))
                except ModelLoadFailed as exc:
                    failure = f"Could not add instances: {exc}"

        def done(res: Resource) -> None:
            res.status = "InService"
            res.doc["EndpointStatus"] = "InService"
            res.doc["LastModifiedTime"] = time.time()
            for summary in res.doc["ProductionVariants"]:
                for change in changes:
                    if change["VariantName"] == summary["VariantName"]:
                        if "DesiredWeight" in change:
                            summary["CurrentWeight"] = summary["DesiredWeight"] = float(change["DesiredWeight"])
                        if "DesiredInstanceCount" in change:
                            count = int(change["DesiredInstanceCount"])
                            summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"] = count
                            summary.pop("VariantStatus", None)
            if failure:
                res.doc["FailureReason"] = failure

        self._update(name, done)

    def _fail(self, name: str, reason: str) -> None:
        def failed(res: Resource) -> None:
            # A failed update leaves the endpoint serving its previous configuration, as on AWS.
            serving = self.fleet.routes.get(name) is not None and res.status == "Updating"
            res.status = "InService" if serving else "Failed"
            res.doc.update({"EndpointStatus": res.status, "FailureReason": reason, "LastModifiedTime": time.time()})

        self._update(name, failed)

    def _set_status(self, name: str, status: str, desired: dict[str, int] | None = None) -> None:
        def change(res: Resource) -> None:
            res.status = status
            res.doc["EndpointStatus"] = status
            res.doc["LastModifiedTime"] = time.time()
            # A capacity change shows its target at once, and the variant says it is updating until done.
            for summary in res.doc["ProductionVariants"]:
                if summary["VariantName"] in (desired or {}):
                    summary["DesiredInstanceCount"] = desired[summary["VariantName"]]
                    summary["VariantStatus"] = [{"Status": "Updating", "StartTime": time.time(),
                                                 "StatusMessage": "Changing the instance count to "
                                                                  f"{desired[summary['VariantName']]}."}]

        self._update(name, change)

    def _update(self, name: str, mutate) -> None:
        with contextlib.suppress(NotFound):
            self.resources.update(ENDPOINT, name, mutate)

    def _variant_summaries(self, config_doc: dict[str, Any], *, current: bool) -> list[dict[str, Any]]:
        summaries = []
        for variant in config_doc["ProductionVariants"]:
            model = self.resources.get("model", variant["ModelName"])
            images = []
            if model is not None:
                containers = model.doc.get("Containers") or [model.doc.get("PrimaryContainer") or {}]
                images = [{"SpecifiedImage": c.get("Image", ""), "ResolvedImage": c.get("Image", ""),
                           "ResolutionTime": time.time()} for c in containers]
            weight = float(variant.get("InitialVariantWeight", 1.0))
            if is_serverless(variant):
                serverless = ServerlessSpec.of(variant["ServerlessConfig"]).summary()
                summary = {"VariantName": variant["VariantName"], "DeployedImages": images, "DesiredWeight": weight,
                           "DesiredServerlessConfig": serverless}
                if current:
                    summary.update({"CurrentWeight": weight, "CurrentServerlessConfig": serverless})
                summaries.append(summary)
                continue
            count = int(variant.get("InitialInstanceCount") or 1)
            summary = {"VariantName": variant["VariantName"], "DeployedImages": images,
                       "DesiredWeight": weight, "DesiredInstanceCount": count}
            if current:
                summary.update({"CurrentWeight": weight, "CurrentInstanceCount": count})
            summaries.append(summary)
        return summaries


def _desired(changes: list[dict[str, Any]]) -> dict[str, int]:
    return {c["VariantName"]: int(c["DesiredInstanceCount"]) for c in changes if "DesiredInstanceCount" in c}


def _capture_summary(config: dict[str, Any]) -> dict[str, Any]:
    enabled = bool(config.get("EnableCapture", True))  # AWS captures unless EnableCapture says false
    return {"EnableCapture": enabled, "CaptureStatus": "Started" if enabled else "Stopped",
            "CurrentSamplingPercentage": int(config.get("InitialSamplingPercentage", 0)),
            "DestinationS3Uri": config.get("DestinationS3Uri", "")}

