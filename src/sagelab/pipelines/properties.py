"""Step properties: what `{"Get": "Steps.<name>.<path>"}` may address, checked and read.

A step's properties are the Describe answer of what it ran (DescribeTrainingJob for a Training step, ...),
so a path is checked against that answer's botocore shape when the pipeline is created, and read from the
stored answer when the execution needs it. A list is indexed by position (`Outputs[0]`) or by the name its
elements carry (`Outputs['train']` is the output whose OutputName is 'train', as on SageMaker).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

from sagelab.errors import ValidationError

#: Step type -> the botocore output shape its properties follow; None: properties of sagelab's own.
SHAPES: dict[str, str | None] = {
    "Processing": "DescribeProcessingJobResponse",
    "Training": "DescribeTrainingJobResponse",
    "Tuning": "DescribeHyperParameterTuningJobResponse",
    "Model": "DescribeModelOutput",
    "CreateModel": "DescribeModelOutput",
    "RegisterModel": "DescribeModelPackageOutput",
    "Transform": "DescribeTransformJobResponse",
}
#: Properties that are not a Describe answer's members.
EXTRA_MEMBERS: dict[str, dict[str, str]] = {
    # A tuning step also lists its training jobs, best first (TuningStep.get_top_model_s3_uri reads them).
    "Tuning": {"TrainingJobSummaries": "HyperParameterTrainingJobSummaries"},
}
#: Step types whose properties are a few plain members.
SIMPLE_MEMBERS: dict[str, tuple[str, ...]] = {
    "Condition": ("Outcome",),
    "Fail": ("ErrorMessage",),
    "Lambda": ("OutputParameters",),
    "Callback": ("OutputParameters",),
}


@dataclasses.dataclass(frozen=True)
class Member:
    name: str


@dataclasses.dataclass(frozen=True)
class Index:
    #: A position, or the name an element carries (its OutputName, ChannelName, MetricName, ...).
    key: int | str


Segment = Member | Index
_SEGMENT = re.compile(r"""\.?([A-Za-z_][A-Za-z0-9_]*)|\[(?:(-?\d+)|'([^']*)'|"([^"]*)")\]""")


def parse_path(text: str, *, where: str) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    position = 0
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None or (position == 0 and text.startswith(".")):
            raise ValidationError(f"{where}: cannot read the property path {text!r} at {text[position:]!r}.")
        name, number, single, double = match.groups()
        if name is not None:
            segments.append(Member(name))
        elif number is not None:
            segments.append(Index(int(number)))
        else:
            segments.append(Index(single if single is not None else double))
        position = match.end()
    if not segments or not isinstance(segments[0], Member):
        raise ValidationError(f"{where}: the property path {text!r} must start with a property name.")
    return tuple(segments)


@functools.cache
def _service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def check_path(step_type: str, segments: tuple[Segment, ...], *, where: str) -> None:
    """Raise ValidationError unless a step of this type has the property the path names."""
    first = segments[0]
    assert isinstance(first, Member)
    if step_type in SIMPLE_MEMBERS:
        if first.name not in SIMPLE_MEMBERS[step_type]:
            raise ValidationError(f"{where}: a {step_type} step has no property {first.name!r}; it has "
                                  f"{', '.join(SIMPLE_MEMBERS[step_type])}.")
        return
    shape_name = SHAPES.get(step_type)
    if shape_name is None:
        return  # a step sagelab does not run: it fails when reached, and its properties are never read
    model = _service_model()
    extra = EXTRA_MEMBERS.get(step_type, {})
    if first.name in extra:
        shape = model.shape_for(extra[first.name])
    else:
        top = model.shape_for(shape_name)
        if first.name not in top.members:
            raise ValidationError(f"{where}: a {step_type} step has no property {first.name!r} (its properties "
                                  f"are {shape_name}'s members).")
        shape = top.members[first.name]
    walked = first.name
    for segment in segments[1:]:
        if isinstance(segment, Member):
            if shape.type_name != "structure" or segment.name not in shape.members:
                raise ValidationError(f"{where}: {walked} has no member {segment.name!r}.")
            shape = shape.members[segment.name]
            walked += f".{segment.name}"
        else:
            if shape.type_name == "list":
                shape = shape.member
            elif shape.type_name == "map" and isinstance(segment.key, str):
                shape = shape.value
            else:
                raise ValidationError(f"{where}: {walked} is not a list or map and cannot be indexed.")
            walked += f"[{segment.key!r}]"


def select(properties: dict[str, Any], segments: tuple[Segment, ...], *, where: str) -> Any:
    """The value a path names in a finished step's properties."""
    value: Any = properties
    walked = ""
    for segment in segments:
        if isinstance(segment, Member):
            if not isinstance(value, dict) or segment.name not in value:
                raise ValidationError(f"{where}: the step's properties have no {(walked + '.' + segment.name).lstrip('.')}.")
            value = value[segment.name]
            walked += f".{segment.name}"
            continue
        walked += f"[{segment.key!r}]"
        keyed = isinstance(value, dict) and isinstance(segment.key, str) and segment.key in value
        positioned = isinstance(value, list) and isinstance(segment.key, int) and -len(value) <= segment.key < len(value)
        if keyed or positioned:
            value = value[segment.key]
        elif isinstance(value, list) and isinstance(segment.key, str):
            named = [item for item in value if isinstance(item, dict) and segment.key in
                     [v for k, v in item.items() if k.endswith("Name")]]
            if not named:
                raise ValidationError(f"{where}: the step's properties have no {walked.lstrip('.')}.")
            value = named[0]
        else:
            raise ValidationError(f"{where}: the step's properties have no {walked.lstrip('.')}.")
    return value
