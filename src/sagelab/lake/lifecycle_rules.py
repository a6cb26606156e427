"""S3 lifecycle configurations: the typed rules, checked as S3 checks them, and which objects each applies to.

A configuration is validated once, when it is put (`LifecycleConfiguration.validate`), and kept with the
bucket's facts as plain JSON (`to_doc` / `from_doc`); the scheduler (`lake.lifecycle`) only reads it.
Days are whole days; the scheduler decides how long a day is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sagelab.errors import S3Error

#: The classes a rule may move objects to, warmest first: a later transition goes to a later class.
TRANSITION_CLASSES = ("STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
#: Classes an object must be in for 30 days at least, and so not be moved to sooner, nor moved on from sooner.
THIRTY_DAY_CLASSES = frozenset({"STANDARD_IA", "ONEZONE_IA"})
MIN_SIZES = ("all_storage_classes_128K", "varies_by_storage_class")
#: S3's default since 2024: objects under 128 KiB are not transitioned unless a rule's size filter says so.
DEFAULT_MIN_SIZE = "all_storage_classes_128K"
MAX_RULES = 1000
#: How a rule's filter was written, so that it is given back as it came: no <Filter> (the rule's own
#: <Prefix>), an empty one, one condition, or <And>.
FILTER_FORMS = ("legacy", "empty", "prefix", "tag", "gt", "lt", "and")


def invalid(message: str) -> S3Error:
    return S3Error("InvalidArgument", message, 400, ArgumentName="LifecycleConfiguration")


@dataclasses.dataclass(frozen=True)
class Transition:
    storage_class: str
    days: int | None = None
    #: Epoch seconds of a midnight UTC.
    date: float | None = None


@dataclasses.dataclass(frozen=True)
class NoncurrentTransition:
    storage_class: str
    days: int
    newer_versions: int | None = None


@dataclasses.dataclass(frozen=True)
class LifecycleRule:
    status: str
    id: str = ""
    filter_form: str = "empty"
    prefix: str = ""
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    size_greater_than: int | None = None
    size_less_than: int | None = None
    transitions: tuple[Transition, ...] = ()
    expiration_days: int | None = None
    expiration_date: float | None = None
    expired_object_delete_marker: bool | None = None
    noncurrent_transitions: tuple[NoncurrentTransition, ...] = ()
    noncurrent_expiration_days: int | None = None
    noncurrent_newer_versions: int | None = None
    abort_days: int | None = None

    @property
    def enabled(self) -> bool:
        return self.status == "Enabled"

    def describe(self) -> str:
        """The rule's filter as S3's messages name it."""
        return f"(prefix={self.prefix})"

    def matches(self, key: str, tags: dict[str, str], size: int) -> bool:
        return (key.startswith(self.prefix) and all(tags.get(k) == v for k, v in self.tags.items())
                and (self.size_greater_than is None or size > self.size_greater_than)
                and (self.size_less_than is None or size < self.size_less_than))

    def validate(self) -> None:
        where = self.describe()
        if len(self.id) > 255:
            raise invalid("ID length should not exceed allowed limit of 255")
        if not (self.transitions or self.expiration_days is not None or self.expiration_date is not None
                or self.expired_object_delete_marker is not None or self.noncurrent_transitions
                or self.noncurrent_expiration_days is not None or self.abort_days is not None):
            raise invalid("At least one action needs to be specified in a rule")
        if (self.size_greater_than is not None and self.size_less_than is not None
                and self.size_less_than <= self.size_greater_than):
            raise invalid(f"ObjectSizeLessThan must be greater than ObjectSizeGreaterThan in the filter {where}: "
                          f"got {self.size_less_than} and {self.size_greater_than}")
        if self.tags and self.expired_object_delete_marker is not None:
            raise invalid("ExpiredObjectDeleteMarker cannot be specified with Tag.")
        if self.tags and self.abort_days is not None:
            raise invalid("AbortIncompleteMultipartUpload cannot be specified with Tags.")
        if self.expiration_days is not None and self.expiration_days <= 0:
            raise invalid("'Days' for Expiration action must be a positive integer")
        if self.abort_days is not None and self.abort_days <= 0:
            raise invalid("'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive "
                          "integer")
        if self.noncurrent_expiration_days is not None and self.noncurrent_expiration_days <= 0:
            raise invalid("'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer")
        self._validate_transitions(where)
        self._validate_noncurrent(where)

    def _validate_transitions(self, where: str) -> None:
        if not self.transitions:
            return
        dated = {t.date is not None for t in self.transitions}
        if len(dated) > 1:
            raise invalid(f"Found mixed 'Date' and 'Days' based Transition actions in lifecycle rule for filter "
                          f"{where}")
        if self.expiration_date is not None and dated == {False} or (
                self.expiration_days is not None and dated == {True}):
            raise invalid(f"Found mixed 'Date' and 'Days' based Expiration and Transition actions in lifecycle "
                          f"rule for filter {where}")
        classes = [t.storage_class for t in self.transitions]
        if len(set(classes)) != len(classes):
            raise invalid(f"'StorageClass' must be different for 'Transition' actions in same 'Rule' with filter "
                          f"{where}")
        for t in self.transitions:
            if t.days is not None and t.days < 0:
                raise invalid("'Days' in Transition action must be a non-negative integer")
            if t.days is not None and t.storage_class in THIRTY_DAY_CLASSES and t.days < 30:
                raise invalid(f"'Days' in Transition action must be greater than or equal to 30 for storageClass "
                              f"'{t.storage_class}'")
        ordered = sorted(self.transitions, key=lambda t: t.days if t.days is not None else t.date)  # type: ignore
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            if TRANSITION_CLASSES.index(later.storage_class) <= TRANSITION_CLASSES.index(earlier.storage_class):
                raise invalid(f"'StorageClass' '{later.storage_class}' in the Transition action for filter {where} "
                              f"cannot follow '{earlier.storage_class}': transitions go to colder classes "
                              f"({', '.join(TRANSITION_CLASSES)}) as time goes by")
            gap = (later.days - earlier.days if later.days is not None and earlier.days is not None
                   else (later.date - earlier.date) / 86400)  # type: ignore[operator]
            if earlier.storage_class in THIRTY_DAY_CLASSES and gap < 30:
                raise invalid(f"'Days' in the Transition action for StorageClass '{later.storage_class}' for filter "
                              f"{where} must be 30 days more than 'filter {where}' in the Transition action for "
                              f"StorageClass '{earlier.storage_class}'")
            if gap <= 0:
                raise invalid(f"'Days' in the Transition action for StorageClass '{later.storage_class}' for filter "
                              f"{where} must be greater than in the Transition action for StorageClass "
                              f"'{earlier.storage_class}'")
        last = ordered[-1]
        if self.expiration_days is not None and last.days is not None and self.expiration_days <= last.days:
            raise invalid(f"'Days' in the Expiration action for filter {where} must be greater than 'Days' in the "
                          "Transition action")
        if self.expiration_date is not None and last.date is not None and self.expiration_date <= last.date:
            raise invalid(f"'Date' in the Expiration action for filter {where} must be later than 'Date' in the "
                          "Transition action")

    def _validate_noncurrent(self, where: str) -> None:
        classes = [t.storage_class for t in self.noncurrent_transitions]
        if len(set(classes)) != len(classes):
            raise invalid(f"'StorageClass' must be different for 'NoncurrentVersionTransition' actions in same "
                          f"'Rule' with filter {where}")
        for t in self.noncurrent_transitions:
            if t.days < 0:
                raise invalid("'NoncurrentDays' in NoncurrentVersionTransition action must be a non-negative "
                              "integer")
            if t.storage_class in THIRTY_DAY_CLASSES and t.days < 30:
                raise invalid(f"'NoncurrentDays' in NoncurrentVersionTransition action must be greater than or "
                              f"equal to 30 for storageClass '{t.storage_class}'")
        ordered = sorted(self.noncurrent_transitions, key=lambda t: t.days)
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            if TRANSITION_CLASSES.index(later.storage_class) <= TRANSITION_CLASSES.index(earlier.storage_class):
                raise invalid(f"'StorageClass' '{later.storage_class}' in the NoncurrentVersionTransition action "
                              f"for filter {where} cannot follow '{earlier.storage_class}': transitions go to "
                              "colder classes as time goes by")
            if earlier.storage_class in THIRTY_DAY_CLASSES and later.days - earlier.days < 30:
                raise invalid(f"'NoncurrentDays' in the NoncurrentVersionTransition action for StorageClass "
                              f"'{later.storage_class}' for filter {where} must be 30 days more than in the "
                              f"NoncurrentVersionTransition action for StorageClass '{earlier.storage_class}'")
        if (ordered and self.noncurrent_expiration_days is not None
                and self.noncurrent_expiration_days <= ordered[-1].days):
            raise invalid(f"'NoncurrentDays' in the NoncurrentVersionExpiration action for filter {where} must be "
                          "greater than 'NoncurrentDays' in the NoncurrentVersionTransition action")


@dataclasses.dataclass(frozen=True)
class LifecycleConfiguration:
    rules: tuple[LifecycleRule, ...]
    minimum_size: str = DEFAULT_MIN_SIZE

    def validate(self) -> LifecycleConfiguration:
        if not self.rules:
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against "
                          "our published schema: a LifecycleConfiguration has at least one Rule.", 400)
        if len(self.rules) > MAX_RULES:
            raise invalid(f"The number of lifecycle rules must not exceed the allowed limit of {MAX_RULES} rules, "
                          f"got {len(self.rules)}")
        ids = [r.id for r in self.rules if r.id]
        if len(set(ids)) != len(ids):
            raise invalid("Rule ID must be unique. Found same ID for more than one rule")
        if self.minimum_size not in MIN_SIZES:
            raise invalid(f"Invalid x-amz-transition-default-minimum-object-size: expected one of "
                          f"{', '.join(MIN_SIZES)}, got {self.minimum_size!r}")
        for rule in self.rules:
            rule.validate()
        return self

    def to_doc(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> LifecycleConfiguration:
        rules = []
        for raw in doc["rules"]:
            raw = dict(raw)
            raw["transitions"] = tuple(Transition(**t) for t in raw["transitions"])
            raw["noncurrent_transitions"] = tuple(NoncurrentTransition(**t) for t in raw["noncurrent_transitions"])
            rules.append(LifecycleRule(**raw))
        return cls(tuple(rules), doc.get("minimum_size", DEFAULT_MIN_SIZE))

    def minimum_transition_size(self, rule: LifecycleRule) -> int:
        """Objects smaller than this are not transitioned by the rule (its own size filter overrides)."""
        if rule.size_greater_than is not None or self.minimum_size != DEFAULT_MIN_SIZE:
            return 0
        return 128 * 1024
