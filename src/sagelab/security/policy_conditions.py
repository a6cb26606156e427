"""Condition operators: what `"StringLike": {"s3:prefix": ["home/${aws:username}/*"]}` means.

A statement's Condition block holds clauses (operator, key, policy values). All clauses must hold (AND); one
clause holds when the request's value for its key matches any of the policy values (OR), or, for a negated
operator (StringNotEquals, NotIpAddress, ArnNotLike, ...), matches none of them (NOR).

Keys are case-insensitive and may carry several values in the request (`sagemaker:InstanceTypes`):

- without a set qualifier, a positive operator needs one request value to match and a negated one needs no
  request value to match (AWS asks for a qualifier with multi-valued keys and does not document this case);
- `ForAllValues:` holds when every request value satisfies the operator, and also when the key is missing or
  empty; `ForAnyValue:` holds when at least one does, and never when the key is missing or empty.

A key missing from the request (or present with no values) makes a positive operator false and a negated one
true; `...IfExists` makes any operator true for a missing key; `Null` tests presence itself (`"true"`:
missing).

Policy values are parsed and checked when the policy is parsed (numbers, dates, CIDRs, booleans, base64), so a
bad value is a MalformedPolicyDocument and evaluation never meets one. Request values that cannot be read as
the operator's type (a non-numeric value for NumericLessThan) match no policy value. Policy variables are
expanded in the values of String and ARN operators only, as the policy-variables reference says; a variable
that does not resolve makes its clause false, the way AWS treats such a statement as not applying.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import ipaddress
import operator
import re
from collections.abc import Callable
from typing import Any, Protocol

from sagelab.security.policy_patterns import compiled_arn, compiled_glob
from sagelab.security.policy_variables import Chunk, Template

__all__ = ["BaseOperator", "ConditionClause", "ConditionContext", "ConditionOperator", "SetQualifier",
           "as_text", "parse_operator"]


class ConditionContext(Protocol):
    """What a clause needs from a request; RequestContext in policy_evaluation provides it."""

    def values_of(self, key: str) -> tuple[Any, ...]:
        """The request's values for a lower-case key; empty when the key is missing."""
        ...

    def variable(self, key: str) -> str | None:
        """A single-valued key's value as text, for a policy variable; None when it has none."""
        ...


class SetQualifier(enum.Enum):
    NONE = ""
    FOR_ANY_VALUE = "ForAnyValue:"
    FOR_ALL_VALUES = "ForAllValues:"


# --- request values, coerced to what each family compares ---------------------------------------------------


def as_text(value: object) -> str:
    """A request value as the text that string operators and policy variables see."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _as_lower_text(value: object) -> str:
    return as_text(value).lower()


def _as_number(value: object) -> decimal.Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        return None
    return number if number.is_finite() else None


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


#: The W3C profile of ISO 8601 that the date operators document: YYYY, YYYY-MM, YYYY-MM-DD, then optionally
#: Thh:mm, :ss and .fraction, then Z or +hh:mm / -hh:mm (no zone reads as UTC).
_W3C_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:[Tt](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>[Zz]|[+-]\d{2}:?\d{2})?)?)?)?$")


@functools.lru_cache(maxsize=1024)  # request times and policy dates repeat across requests
def _parse_date_text(text: str) -> float | None:
    """Seconds since the epoch for an ISO 8601 date or an epoch number; None when it is neither."""
    text = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text) and not re.fullmatch(r"\d{4}", text):
        return float(text)
    match = _W3C_DATE.match(text)
    if not match:
        return None
    fraction = match["f"] or "0"
    try:
        moment = dt.datetime(int(match["y"]), int(match["mo"] or 1), int(match["d"] or 1),
                             int(match["h"] or 0), int(match["mi"] or 0), int(match["s"] or 0),
                             int(fraction[:6].ljust(6, "0")))
    except ValueError:
        return None
    zone = match["tz"]
    if zone and zone not in "Zz":
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= dt.timedelta(hours=24):
            return None
        moment = moment.replace(tzinfo=dt.timezone(offset if zone[0] == "+" else -offset))
    return _utc(moment).timestamp()


def _as_epoch(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        return _utc(value).timestamp()
    if isinstance(value, int | float | decimal.Decimal):
        return float(value)
    return _parse_date_text(str(value))


def _as_bool_text(value: object) -> str | None:
    text = _as_lower_text(value)
    return text if text in ("true", "false") else None


def _as_ip(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    return _ip_from_text(str(value).strip())


@functools.lru_cache(maxsize=1024)  # a client's address repeats over its requests
def _ip_from_text(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return None


# --- policy values, prepared once (or per request when they hold variables) ---------------------------------


def _joined(chunks: tuple[Chunk, ...]) -> str:
    return "".join(text for text, _ in chunks)


def _number(chunks: tuple[Chunk, ...]) -> decimal.Decimal:
    number = _as_number(_joined(chunks))
    if number is None:
        raise ValueError(f"{_joined(chunks)!r} is not a number")
    return number


def _date(chunks: tuple[Chunk, ...]) -> float:
    moment = _parse_date_text(_joined(chunks))
    if moment is None:
        raise ValueError(f"{_joined(chunks)!r} is not an ISO 8601 date or a number of epoch seconds")
    return moment


def _bool(chunks: tuple[Chunk, ...]) -> str:
    text = _joined(chunks).lower()
    if text not in ("true", "false"):
        raise ValueError(f"{_joined(chunks)!r} is not \"true\" or \"false\"")
    return text


def _network(chunks: tuple[Chunk, ...]) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(_joined(chunks).strip(), strict=False)
    except ValueError:
        raise ValueError(f"{_joined(chunks)!r} is not an IP address or CIDR range") from None


def _base64(chunks: tuple[Chunk, ...]) -> bytes:
    decoded = _as_bytes(_joined(chunks))
    if decoded is None:
        raise ValueError(f"{_joined(chunks)!r} is not base64")
    return decoded


def _in_network(address: Any, network: Any) -> bool:
    return address.version == network.version and address in network


def _pattern_matches(value: str, pattern: re.Pattern[str]) -> bool:
    return pattern.fullmatch(value) is not None


# --- the operator table -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BaseOperator:
    """An operator without qualifier or IfExists: how its policy and request values are read and compared."""

    name: str
    negated: bool
    variables: bool  # policy variables are expanded in its values
    prepare: Callable[[tuple[Chunk, ...]], Any]  # policy value -> comparable; ValueError names the problem
    coerce: Callable[[object], Any]  # request value -> comparable, None when it is not of this type
    test: Callable[[Any, Any], bool]  # (request value, policy value) -> the positive match


def _family(names: dict[str, tuple[bool, Callable[[Any, Any], bool]]], variables: bool,
            prepare: Callable[[tuple[Chunk, ...]], Any], coerce: Callable[[object], Any]
            ) -> list[BaseOperator]:
    return [BaseOperator(name, negated, variables, prepare, coerce, test)
            for name, (negated, test) in names.items()]


_COMPARISONS = {
    "Equals": (False, operator.eq), "NotEquals": (True, operator.eq), "LessThan": (False, operator.lt),
    "LessThanEquals": (False, operator.le), "GreaterThan": (False, operator.gt),
    "GreaterThanEquals": (False, operator.ge),
}

_BASE_OPERATORS: dict[str, BaseOperator] = {op.name: op for op in [
    *_family({"StringEquals": (False, operator.eq), "StringNotEquals": (True, operator.eq)},
             True, _joined, as_text),
    *_family({"StringEqualsIgnoreCase": (False, operator.eq),
              "StringNotEqualsIgnoreCase": (True, operator.eq)},
             True, lambda chunks: _joined(chunks).lower(), _as_lower_text),
    *_family({"StringLike": (False, _pattern_matches), "StringNotLike": (True, _pattern_matches)},
             True, compiled_glob, as_text),
    *_family({f"Numeric{name}": spec for name, spec in _COMPARISONS.items()}, False, _number, _as_number),
    *_family({f"Date{name}": spec for name, spec in _COMPARISONS.items()}, False, _date, _as_epoch),
    *_family({"Bool": (False, operator.eq)}, False, _bool, _as_bool_text),
    *_family({"BinaryEquals": (False, operator.eq)}, False, _base64, _as_bytes),
    *_family({"IpAddress": (False, _in_network), "NotIpAddress": (True, _in_network)},
             False, _network, _as_ip),
    *_family({name: (name.startswith("ArnNot"), _pattern_matches)
              for name in ("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike")},
             True, compiled_arn, as_text),
]}

#: Null has no comparison: its policy value says whether the key must be missing ("true") or present
#: ("false").
NULL = BaseOperator("Null", False, False, lambda chunks: _bool(chunks) == "true", lambda value: value,
                    operator.eq)

_IF_EXISTS = "IfExists"


@dataclasses.dataclass(frozen=True)
class ConditionOperator:
    name: str  # as written in the policy, e.g. "ForAllValues:StringLikeIfExists"
    base: BaseOperator
    qualifier: SetQualifier = SetQualifier.NONE
    if_exists: bool = False


def parse_operator(name: str) -> ConditionOperator | None:
    """The operator a Condition block names, or None when AWS has no such operator."""
    rest, qualifier = name, SetQualifier.NONE
    for candidate in (SetQualifier.FOR_ANY_VALUE, SetQualifier.FOR_ALL_VALUES):
        if rest.startswith(candidate.value):
            rest, qualifier = rest[len(candidate.value):], candidate
            break
    if rest == NULL.name:
        return ConditionOperator(name, NULL, qualifier) if qualifier is SetQualifier.NONE else None
    if_exists = rest.endswith(_IF_EXISTS)
    if if_exists:
        rest = rest[:-len(_IF_EXISTS)]
    base = _BASE_OPERATORS.get(rest)
    return None if base is None else ConditionOperator(name, base, qualifier, if_exists)


@dataclasses.dataclass(frozen=True)
class PolicyValue:
    template: Template
    prepared: Any  # None when the template holds variables: prepared per request


@dataclasses.dataclass(frozen=True)
class ConditionClause:
    """One operator applied to one key: `"StringLike": {"s3:prefix": [...]}`."""

    operator: ConditionOperator
    key: str  # as written
    values: tuple[PolicyValue, ...]
    _lookup_key: str = dataclasses.field(init=False, repr=False, compare=False)
    _static: tuple[Any, ...] | None = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lookup_key", self.key.lower())
        static = (None if any(v.prepared is None for v in self.values)
                  else tuple(v.prepared for v in self.values))
        object.__setattr__(self, "_static", static)

    @classmethod
    def build(cls, op: ConditionOperator, key: str, raw_values: list[str], variables_enabled: bool
              ) -> ConditionClause:
        """Parses and checks the policy values; ValueError says which value is wrong and why."""
        values = []
        for raw in raw_values:
            template = Template.parse(raw, variables_enabled and op.base.variables)
            prepared = op.base.prepare(template.chunks()) if template.is_static else None
            values.append(PolicyValue(template, prepared))
        return cls(op, key, tuple(values))

    @property
    def referenced_keys(self) -> frozenset[str]:
        """Lower-case keys whose request values can change this clause's outcome."""
        keys = {self._lookup_key}
        for value in self.values:
            keys.update(variable.key for variable in value.template.variables)
        return frozenset(keys)

    def _policy_values(self, context: ConditionContext) -> tuple[Any, ...] | None:
        if self._static is not None:
            return self._static
        prepared = []
        for value in self.values:
            if value.prepared is not None:
                prepared.append(value.prepared)
                continue
            chunks = value.template.chunks(context.variable)
            if chunks is None:
                return None
            prepared.append(self.operator.base.prepare(chunks))
        return tuple(prepared)

    def holds(self, context: ConditionContext) -> bool:
        op = self.operator
        base = op.base
        request_values = context.values_of(self._lookup_key)
        if base is NULL:
            missing = not request_values
            return any(missing == must_be_missing for must_be_missing in self._static or ())
        if not request_values:
            if op.if_exists or op.qualifier is SetQualifier.FOR_ALL_VALUES:
                return True
            if op.qualifier is SetQualifier.FOR_ANY_VALUE:
                return False
            return base.negated
        policy_values = self._policy_values(context)
        if policy_values is None:
            return False
        test, coerce, negated = base.test, base.coerce, base.negated
        # satisfied[i]: does request value i satisfy the operator (its negation included)?
        satisfied = []
        for raw in request_values:
            value = coerce(raw)
            matched = value is not None and any(test(value, policy) for policy in policy_values)
            satisfied.append(matched != negated)
        if op.qualifier is SetQualifier.FOR_ANY_VALUE:
            return any(satisfied)
        if op.qualifier is SetQualifier.FOR_ALL_VALUES or negated:
            return all(satisfied)
        return any(satisfied)
