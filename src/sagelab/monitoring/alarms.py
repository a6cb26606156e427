"""CloudWatch metric alarms: stored as resources, evaluated on a schedule, their history kept.

An alarm watches one metric (Namespace, MetricName, Dimensions, Statistic or ExtendedStatistic, Period)
or a metric math expression (Metrics: the query whose ReturnData is true). Each evaluation reads the last
EvaluationPeriods periods, the current one included, so a point counts as soon as it is stored: the alarm
goes to ALARM when at least DatapointsToAlarm of them breach the threshold, to OK when enough periods have
data and fewer breach, and otherwise follows TreatMissingData (`missing`, the default: INSUFFICIENT_DATA
when every period is empty; `breaching`, `notBreaching`; `ignore` keeps the state). Actions
(AlarmActions, OKActions, InsufficientDataActions) are recorded, not performed, except those `perform`
takes (scaling policies): those are handed over on the transition and again on every evaluation the
alarm stays in that state, as CloudWatch repeats Auto Scaling actions while the state lasts.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from sagelab.account import Account
from sagelab.errors import ValidationError
from sagelab.monitoring.metric_data import QuerySet
from sagelab.monitoring.metric_errors import (
    AlarmNotFound,
    InvalidFormat,
    InvalidNextToken,
    InvalidParameterCombination,
    InvalidParameterValue,
    LimitExceeded,
    MissingParameter,
    TaggedResourceNotFound,
)
from sagelab.monitoring.metrics import MetricStore, check_statistic, dimensions_key, percentile_of
from sagelab.pagination import decode_token, encode_token
from sagelab.storage import tables
from sagelab.storage.db import Database
from sagelab.storage.resources import ResourceStore, public

KIND = "cloudwatch-alarm"
MAX_ALARMS = 10000
_COMPARE = {"GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
            "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
            "LessThanThreshold": (lambda v, t: v < t, "less than"),
            "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to")}
_CONFIG = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
           "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions",
           "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
           "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId")


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _short(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%d/%m/%y %H:%M:%S")


def _page(items: list[Any], params: Mapping[str, Any], size_field: str, default: int) -> tuple[list[Any], dict]:
    try:
        start = decode_token(params.get("NextToken"))
    except ValidationError as bad:
        raise InvalidNextToken(bad.message) from None
    size = params.get(size_field) or default
    more = {"NextToken": encode_token(start + size)} if start + size < len(items) else {}
    return items[start:start + size], more


class AlarmService:
    def __init__(self, *, resources: ResourceStore, db: Database, metrics: MetricStore, account: Account,
                 evaluation_seconds: float, perform: Callable[[str, Mapping[str, Any]], bool] | None = None):
        self.resources, self.db, self.metrics, self.account = resources, db, metrics, account
        #: (action ARN, the alarm's document) -> True when the action was taken (a scaling policy's).
        self.perform = perform
        self.evaluation_seconds = max(0.1, evaluation_seconds)  # 0 would spin
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alarm-evaluator", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        assert self._stop is not None
        while not self._stop.wait(self.evaluation_seconds):
            try:
                self.evaluate_all()
            except Exception:  # noqa: BLE001 - one failed round must not end the evaluator
                import traceback

                traceback.print_exc()

    def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._stop = None

    # --- configuration ----------------------------------------------------------------------------------
    def put(self, params: Mapping[str, Any], region: str, *, managed: bool = False) -> None:
        """PutMetricAlarm. `managed`: an alarm sagelab makes for a service (target tracking), whose period
        may be scaled below CloudWatch's 10 s floor for tests."""
        name = params["AlarmName"]
        single = params.get("MetricName") is not None or params.get("Namespace") is not None
        if single and params.get("Metrics"):
            raise InvalidParameterCombination("The parameters MetricName/Namespace and Metrics are mutually "
                                              "exclusive: an alarm watches one metric or one math expression.")
        if not single and not params.get("Metrics"):
            raise MissingParameter("The parameter MetricName (with Namespace) or Metrics is required.")
        if params.get("ThresholdMetricId"):
            raise InvalidParameterValue("The parameter ThresholdMetricId (anomaly detection bands) is not "
                                        "supported by sagelab; give a Threshold.")
        if params.get("Threshold") is None:
            raise MissingParameter("The parameter Threshold is required.")
        periods = params["EvaluationPeriods"]
        to_alarm = params.get("DatapointsToAlarm", periods)
        if not 1 <= to_alarm <= periods:
            raise InvalidParameterValue(f"The parameter DatapointsToAlarm must be between 1 and EvaluationPeriods "
                                        f"({periods}); got {to_alarm}.")
        if single:
            for required in ("MetricName", "Namespace", "Period"):
                if params.get(required) is None:
                    raise MissingParameter(f"The parameter {required} is required for an alarm on one metric.")
            stat, extended = params.get("Statistic"), params.get("ExtendedStatistic")
            if (stat is None) == (extended is None):
                raise InvalidParameterCombination("Exactly one of the parameters Statistic and ExtendedStatistic "
                                                  "must be given.")
            if extended is not None and percentile_of(extended) is None:
                raise InvalidParameterValue(f"The value {extended!r} for parameter ExtendedStatistic is invalid: "
                                            "expected a percentile such as p99.")
            if not managed:
                self._check_alarm_period(params["Period"], "Period")
            if params["Period"] * periods > 7 * 86400:
                raise InvalidParameterValue(f"The parameters Period ({params['Period']}) times EvaluationPeriods "
                                            f"({periods}) must not exceed 7 days (604800 seconds).")
        else:
            returned = [m for m in params["Metrics"] if m.get("ReturnData", True)]
            if len(returned) != 1:
                raise InvalidParameterValue(f"The parameter Metrics must have exactly one member with ReturnData "
                                            f"true (the one alarmed on); got {len(returned)}.")
            for i, query in enumerate(params["Metrics"]):
                if query.get("MetricStat") and not managed:
                    self._check_alarm_period(query["MetricStat"]["Period"], f"Metrics.member.{i + 1}.MetricStat.Period")
                    check_statistic(query["MetricStat"]["Stat"], f"Metrics.member.{i + 1}.MetricStat.Stat")
            QuerySet(self.metrics, list(params["Metrics"]), 0, 1, field="Metrics")  # checks ids and shapes
        now = time.time()
        doc = {k: params[k] for k in _CONFIG if params.get(k) is not None}
        doc.setdefault("ActionsEnabled", True)
        for actions in ("OKActions", "AlarmActions", "InsufficientDataActions"):
            doc.setdefault(actions, [])
        doc.setdefault("Dimensions", [] if single else None)
        doc = {k: v for k, v in doc.items() if v is not None}
        doc["AlarmArn"] = self.account.arn("cloudwatch", f"alarm:{name}", region)
        doc["AlarmConfigurationUpdatedTimestamp"] = now
        existing = self.resources.get(KIND, name)
        if existing is None:
            if len(self.resources.list(KIND)) >= MAX_ALARMS:
                raise LimitExceeded(f"The maximum number of alarms ({MAX_ALARMS}) has been reached.")
            doc.update(StateValue="INSUFFICIENT_DATA", StateReason="Unchecked: Initial alarm creation",
                       StateUpdatedTimestamp=now, StateTransitionedTimestamp=now)
            self.resources.insert(KIND, name, doc["AlarmArn"], "INSUFFICIENT_DATA", doc, created_at=now)
            if params.get("Tags"):  # tags are set when the alarm is created only, as CloudWatch does
                self.tag(doc["AlarmArn"], params["Tags"])
            self._history(name, "ConfigurationUpdate", f'Alarm "{name}" created',
                          {"version": "1.0", "type": "Create", "createdAlarm": self._history_view(doc)}, now)
        else:
            def mutate(res: Any) -> None:
                for key in ("StateValue", "StateReason", "StateReasonData", "StateUpdatedTimestamp",
                            "StateTransitionedTimestamp"):
                    if key in res.doc:
                        doc[key] = res.doc[key]
                res.doc = doc
            self.resources.update(KIND, name, mutate)
            self._history(name, "ConfigurationUpdate", f'Alarm "{name}" updated',
                          {"version": "1.0", "type": "Update", "updatedAlarm": self._history_view(doc)}, now)

    @staticmethod
    def _check_alarm_period(period: int, field: str) -> None:
        if period not in (10, 20, 30) and (period <= 0 or period % 60):
            raise InvalidParameterValue(f"The parameter {field} must be 10, 20, 30 or a multiple of 60 seconds; "
                                        f"got {period}.")

    @staticmethod
    def _history_view(doc: Mapping[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in doc.items() if k in _CONFIG or k == "AlarmArn"}
        view["alarmConfigurationUpdatedTimestamp"] = _iso(doc["AlarmConfigurationUpdatedTimestamp"])
        return {k[0].lower() + k[1:]: v for k, v in view.items()}

    def _get(self, name: str) -> Any:
        res = self.resources.get(KIND, name)
        if res is None:
            raise AlarmNotFound(f"Alarm {name} does not exist.")
        return res

    def delete(self, names: list[str]) -> None:
        missing = [n for n in names if self.resources.get(KIND, n) is None]
        if missing:
            raise AlarmNotFound(f"The following alarms could not be found: {', '.join(missing)}.")
        for name in names:
            self.resources.delete(KIND, name)

    def set_actions_enabled(self, names: list[str], enabled: bool) -> None:
        for name in names:
            if self.resources.get(KIND, name) is not None:
                self.resources.update(KIND, name, lambda res: res.doc.update(ActionsEnabled=enabled))

    # --- tags -----------------------------------------------------------------------------------------
    def _alarm_arn(self, arn: str) -> str:
        res = self.resources.get_by_arn(arn)
        if res is None or res.kind != KIND:
            raise TaggedResourceNotFound(f"The resource {arn} does not exist (sagelab tags alarms only).")
        return arn

    def tag(self, arn: str, tags: list[dict[str, str]]) -> None:
        arn = self._alarm_arn(arn)
        merged = {**self.resources.get_tags(arn), **{t["Key"]: t["Value"] for t in tags}}
        if len(merged) > 50:
            raise InvalidParameterValue(f"A resource may have at most 50 tags; {arn} would have {len(merged)}.")
        self.resources.put_tags(arn, {t["Key"]: t["Value"] for t in tags})

    def untag(self, arn: str, keys: list[str]) -> None:
        self.resources.delete_tags(self._alarm_arn(arn), keys)

    def tags(self, arn: str) -> dict[str, Any]:
        found = self.resources.get_tags(self._alarm_arn(arn))
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(found.items())]}

    # --- reading ----------------------------------------------------------------------------------------
    @staticmethod
    def _view(doc: Mapping[str, Any]) -> dict[str, Any]:
        return public(dict(doc))

    def describe(self, params: Mapping[str, Any]) -> dict[str, Any]:
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        if params.get("AlarmNames") and params.get("AlarmNamePrefix"):
            raise InvalidParameterCombination("The parameters AlarmNames and AlarmNamePrefix are mutually "
                                              "exclusive.")
        alarms = sorted(self.resources.list(KIND), key=lambda r: r.name)
        if params.get("AlarmNames"):
            wanted = set(params["AlarmNames"])
            alarms = [a for a in alarms if a.name in wanted]
        if params.get("AlarmNamePrefix"):
            alarms = [a for a in alarms if a.name.startswith(params["AlarmNamePrefix"])]
        if params.get("StateValue"):
            alarms = [a for a in alarms if a.doc["StateValue"] == params["StateValue"]]
        if params.get("ActionPrefix"):
            alarms = [a for a in alarms if any(x.startswith(params["ActionPrefix"]) for x in a.doc["AlarmActions"]
                                               + a.doc["OKActions"] + a.doc["InsufficientDataActions"])]
        if "MetricAlarm" not in types:
            alarms = []
        chunk, more = _page(alarms, params, "MaxRecords", 50)
        return {"MetricAlarms": [self._view(a.doc) for a in chunk], "CompositeAlarms": [], **more}

    def describe_for_metric(self, params: Mapping[str, Any]) -> dict[str, Any]:
        key = dimensions_key(params.get("Dimensions"))
        out = []
        for res in sorted(self.resources.list(KIND), key=lambda r: r.name):
            doc = res.doc
            if doc.get("MetricName") != params["MetricName"] or doc.get("Namespace") != params["Namespace"]:
                continue
            if params.get("Dimensions") is not None and dimensions_key(doc.get("Dimensions")) != key:
                continue
            if any(params.get(k) is not None and doc.get(k) != params[k]
                   for k in ("Statistic", "ExtendedStatistic", "Period", "Unit")):
                continue
            out.append(self._view(doc))
        return {"MetricAlarms": out}

    def history(self, params: Mapping[str, Any]) -> dict[str, Any]:
        t = tables.alarm_history
        query = sa.select(t)
        if params.get("AlarmName"):
            query = query.where(t.c.alarm_name == params["AlarmName"])
        if params.get("HistoryItemType"):
            query = query.where(t.c.item_type == params["HistoryItemType"])
        if params.get("StartDate") is not None:
            query = query.where(t.c.timestamp >= float(params["StartDate"]))
        if params.get("EndDate") is not None:
            query = query.where(t.c.timestamp <= float(params["EndDate"]))
        ascending = params.get("ScanBy") == "TimestampAscending"
        query = query.order_by(t.c.timestamp.asc() if ascending else t.c.timestamp.desc(),
                               t.c.id.asc() if ascending else t.c.id.desc())
        if "MetricAlarm" not in (params.get("AlarmTypes") or ["MetricAlarm"]):
            return {"AlarmHistoryItems": []}
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        items = [{"AlarmName": r.alarm_name, "AlarmType": "MetricAlarm", "Timestamp": r.timestamp,
                  "HistoryItemType": r.item_type, "HistorySummary": r.summary, "HistoryData": r.data} for r in rows]
        chunk, more = _page(items, params, "MaxRecords", 100)
        return {"AlarmHistoryItems": chunk, **more}

    def _history(self, name: str, kind: str, summary: str, data: Mapping[str, Any], when: float) -> None:
        with self.db.write() as conn:
            conn.execute(tables.alarm_history.insert().values(alarm_name=name, timestamp=when, item_type=kind,
                                                              summary=summary, data=json.dumps(data)))

    # --- state ------------------------------------------------------------------------------------------
    def set_state(self, name: str, state: str, reason: str, reason_data: str | None = None) -> None:
        self._get(name)
        if reason_data is not None:
            try:
                json.loads(reason_data)
            except ValueError:
                raise InvalidFormat(f"The parameter StateReasonData must be JSON; got {reason_data!r}.") from None
        self._transition(name, state, reason, json.loads(reason_data) if reason_data else None)

    def _transition(self, name: str, state: str, reason: str, reason_data: Any, *, force: bool = True) -> None:
        now = time.time()
        before: dict[str, Any] = {}

        def mutate(res: Any) -> None:
            before.update(res.doc)
            res.doc.update(StateValue=state, StateReason=reason, StateUpdatedTimestamp=now)
            if reason_data is not None:
                res.doc["StateReasonData"] = json.dumps(reason_data)
            else:
                res.doc.pop("StateReasonData", None)
            if before["StateValue"] != state:
                res.doc["StateTransitionedTimestamp"] = now
            res.status = state
        self.resources.update(KIND, name, mutate)
        if before["StateValue"] == state and not force:
            return
        old = {"stateValue": before["StateValue"], "stateReason": before["StateReason"]}
        if before.get("StateReasonData"):
            old["stateReasonData"] = json.loads(before["StateReasonData"])
        new = {"stateValue": state, "stateReason": reason}
        if reason_data is not None:
            new["stateReasonData"] = reason_data
        self._history(name, "StateUpdate", f"Alarm updated from {before['StateValue']} to {state}",
                      {"version": "1.0", "oldState": old, "newState": new}, now)
        actions = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}
        targets = before.get(actions[state]) or []
        if before["StateValue"] != state and targets and before.get("ActionsEnabled", True):
            after = {**before, "StateValue": state, "StateReason": reason,
                     "StateReasonData": json.dumps(reason_data) if reason_data is not None else None}
            for target in targets:
                if self.perform is not None and self.perform(target, after):
                    self._history(name, "Action", f"Successfully executed action {target}",
                                  {"actionState": "Succeeded", "notificationResource": target}, now)
                    continue
                self._history(name, "Action", f"Recorded action {target} (sagelab does not perform alarm "
                              "actions)", {"actionState": "Recorded", "notificationResource": target}, now)

    def _repeat(self, doc: Mapping[str, Any], state: str, reason_data: Any) -> None:
        """Hand the actions of a state that lasts to `perform` again (no history: CloudWatch records the
        transition's action only)."""
        actions = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}
        if self.perform is None or not doc.get("ActionsEnabled", True):
            return
        current = {**doc, "StateReasonData": json.dumps(reason_data)}
        for target in doc.get(actions[state]) or []:
            self.perform(target, current)

    def evaluate_all(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for res in self.resources.list(KIND):
            self.evaluate(res.name, res.doc, now)

    def _values(self, doc: Mapping[str, Any], now: float) -> tuple[int, list[tuple[float, float | None]]]:
        """The alarm's period and its last EvaluationPeriods values (None where a period has no data)."""
        periods = doc["EvaluationPeriods"]
        if doc.get("Metrics"):
            returned = next(m for m in doc["Metrics"] if m.get("ReturnData", True))
            period = returned.get("Period") or (returned.get("MetricStat") or {}).get("Period") or min(
                m["MetricStat"]["Period"] for m in doc["Metrics"] if m.get("MetricStat"))
        else:
            period = doc["Period"]
        end = (math.floor(now / period) + 1) * period
        start = end - periods * period
        if doc.get("Metrics"):
            series = QuerySet(self.metrics, list(doc["Metrics"]), start, end, field="Metrics").value(returned["Id"])
        else:
            metric = {"Namespace": doc["Namespace"], "MetricName": doc["MetricName"],
                      "Dimensions": doc.get("Dimensions") or []}
            series = self.metrics.series(metric, period, doc.get("Statistic") or doc["ExtendedStatistic"], start,
                                         end, doc.get("Unit"))
        stamps = [start + i * period for i in range(periods)]
        return period, [(t, series.get(float(t))) for t in stamps]

    def evaluate(self, name: str, doc: Mapping[str, Any], now: float) -> None:
        period, values = self._values(doc, now)
        compare, words = _COMPARE.get(doc["ComparisonOperator"], _COMPARE["GreaterThanThreshold"])
        threshold = doc["Threshold"]
        treat = doc.get("TreatMissingData", "missing")
        present = [(t, v) for t, v in values if v is not None]
        needed = doc.get("DatapointsToAlarm", doc["EvaluationPeriods"])
        breaching = [(t, v) for t, v in present if compare(v, threshold)]
        missing = len(values) - len(present)
        count_breaching = len(breaching) + (missing if treat == "breaching" else 0)
        if not present and treat in ("missing", "ignore"):
            if treat == "ignore":
                return
            state, reason = "INSUFFICIENT_DATA", (f"Insufficient Data: {len(values)} datapoints were unknown.")
        elif count_breaching >= needed:
            state = "ALARM"
            reason = self._reason(breaching or present, len(values), words, threshold, "Threshold Crossed")
        else:
            state = "OK"
            reason = self._reason(present or breaching, len(values), f"not {words}", threshold, "Threshold Crossed")
        data = {"version": "1.0", "queryDate": _iso(now), "startDate": _iso(values[0][0]),
                "period": period, "recentDatapoints": [v for _, v in present], "threshold": threshold,
                "evaluatedDatapoints": [{"timestamp": _iso(t), "value": v} for t, v in reversed(present)]}
        if doc.get("Statistic"):
            data["statistic"] = doc["Statistic"]
        if state == doc["StateValue"]:
            self._repeat(doc, state, data)
            return
        self._transition(name, state, reason, data)

    @staticmethod
    def _reason(points: list[tuple[float, float]], periods: int, words: str, threshold: float, head: str) -> str:
        shown = ", ".join(f"{v} ({_short(t)})" for t, v in points[-5:])
        noun = "datapoint" if len(points) == 1 else "datapoints"
        verb = "was" if len(points) == 1 else "were"
        return (f"{head}: {len(points)} out of the last {periods} {noun} [{shown}] {verb} {words} the "
                f"threshold ({threshold}) (minimum {len(points)} {noun} for transition).")
