"""Metric math for GetMetricData and alarms: expressions over the ids of a request's other queries.

A time series is a dict of timestamp -> value. Arithmetic (+ - * /, unary minus, parentheses) between
series keeps the timestamps both have; a scalar applies to every point. As in CloudWatch, SUM, AVG, MIN
and MAX of one series give a scalar, of a list (`[m1, m2]` or `METRICS()`) a series point by point; RATE
gives the change per second between consecutive points; ABS applies point by point.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from sagelab.monitoring.metric_errors import InvalidParameterValue

Series = dict[float, float]
Value = float | Series | list[Series]
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


def _tokens(text: str) -> list[str]:
    out = []
    for number, name, other in _TOKEN.findall(text):
        token = number or name or other
        if token.strip():
            out.append(token)
    return out


def _binary(op: str, left: Value, right: Value) -> Value:
    fn: Callable[[float, float], float | None] = {
        "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
        "/": lambda a, b: a / b if b else None}[op]
    if isinstance(left, list) or isinstance(right, list):
        raise InvalidParameterValue(f"Metric math cannot apply {op} to a list of time series.")
    if isinstance(left, dict) and isinstance(right, dict):
        pairs = {t: fn(left[t], right[t]) for t in left.keys() & right.keys()}
    elif isinstance(left, dict):
        pairs = {t: fn(v, right) for t, v in left.items()}
    elif isinstance(right, dict):
        pairs = {t: fn(left, v) for t, v in right.items()}
    else:
        return fn(left, right) or 0.0
    return {t: v for t, v in sorted(pairs.items()) if v is not None}


def _aggregate(name: str, arg: Value) -> Value:
    reduce: Callable[[list[float]], float] = {"SUM": sum, "AVG": lambda v: sum(v) / len(v), "MIN": min,
                                              "MAX": max}[name]
    if isinstance(arg, list):  # point by point over the series
        stamps = sorted(set().union(*(s.keys() for s in arg))) if arg else []
        return {t: reduce([s[t] for s in arg if t in s]) for t in stamps}
    if isinstance(arg, dict):
        return reduce(list(arg.values())) if arg else {}
    return arg


def _rate(arg: Value) -> Value:
    if not isinstance(arg, dict):
        raise InvalidParameterValue("RATE expects a single time series.")
    stamps = sorted(arg)
    return {b: (arg[b] - arg[a]) / (b - a) for a, b in zip(stamps, stamps[1:], strict=False)}


class _Parser:
    def __init__(self, text: str, series: Mapping[str, Series], metrics: list[Series]):
        self.text, self.tokens, self.i = text, _tokens(text), 0
        self.series, self.metrics = series, metrics

    def fail(self, what: str) -> InvalidParameterValue:
        return InvalidParameterValue(f"The expression {self.text!r} is invalid: {what}.")

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise self.fail(f"expected {expected or 'more'} at token {self.i + 1}, found {token!r}")
        self.i += 1
        return token

    def parse(self) -> Value:
        value = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r}")
        return value

    def expr(self) -> Value:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = _binary(self.take(), value, self.term())
        return value

    def term(self) -> Value:
        value = self.factor()
        while self.peek() in ("*", "/"):
            value = _binary(self.take(), value, self.factor())
        return value

    def factor(self) -> Value:
        token = self.take()
        if token == "-":
            return _binary("*", -1.0, self.factor())
        if token == "(":
            value = self.expr()
            self.take(")")
            return value
        if token == "[":
            items = [self.expr()]
            while self.peek() == ",":
                self.take()
                items.append(self.expr())
            self.take("]")
            if not all(isinstance(item, dict) for item in items):
                raise self.fail("a list holds time series only")
            return items  # type: ignore[return-value]
        if token[0].isdigit():
            return float(token)
        if self.peek() == "(":
            self.take("(")
            name = token.upper()
            if name == "METRICS":
                self.take(")")
                return list(self.metrics)
            arg = self.expr()
            self.take(")")
            if name in ("SUM", "AVG", "MIN", "MAX"):
                return _aggregate(name, arg)
            if name == "RATE":
                return _rate(arg)
            if name == "ABS":
                return _binary("*", arg, 1.0) if not isinstance(arg, dict) else {t: abs(v) for t, v in arg.items()}
            raise self.fail(f"function {token} is not supported (SUM, AVG, MIN, MAX, RATE, ABS, METRICS are)")
        if token in self.series:
            return self.series[token]
        raise self.fail(f"{token!r} is not the id of another query in the request")


def evaluate(expression: str, series: Mapping[str, Series], metrics: list[Series] | None = None) -> Value:
    """The value of `expression`, where each id names one of `series`."""
    return _Parser(expression, series, list(series.values()) if metrics is None else metrics).parse()


def references(expression: str) -> list[str]:
    return [t for t in _tokens(expression) if re.fullmatch(r"[a-z][A-Za-z0-9_]*", t)]
