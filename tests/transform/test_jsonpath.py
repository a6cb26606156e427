"""The JSONPath subset of DataProcessing filters: what it selects and what it refuses."""

from __future__ import annotations

import pytest

from sagelab.errors import ValidationError
from sagelab.transform.jsonpath import JsonPathError, parse_jsonpath

ROW = ["id7", "1", "2.5", "3", "0.93"]
DOC = {"id": 7, "features": [1.0, 2.0, 3.0], "meta": {"source": "web", "tags": ["a", "b"]}}


@pytest.mark.parametrize("expression, value, expected", [
    ("$", ROW, ROW),
    ("", ROW, ROW),
    ("$[0]", ROW, "id7"),
    ("$[-1]", ROW, "0.93"),
    ("$[1:]", ROW, ROW[1:]),
    ("$[:2]", ROW, ROW[:2]),
    ("$[1:-1]", ROW, ROW[1:-1]),
    ("$[0,-1]", ROW, ["id7", "0.93"]),
    ("$[0, 2:4]", ROW, ["id7", "2.5", "3"]),
    ("$[*]", ROW, ROW),
    ("$.features", DOC, [1.0, 2.0, 3.0]),
    ("$.features[1:]", DOC, [2.0, 3.0]),
    ("$.meta.source", DOC, "web"),
    ("$['meta']['tags'][0]", DOC, "a"),
    ("$['id','features']", DOC, {"id": 7, "features": [1.0, 2.0, 3.0]}),
    ("$.meta.['source','tags']", DOC, {"source": "web", "tags": ["a", "b"]}),
    ("$.meta.*", DOC, ["web", ["a", "b"]]),
])
def test_selects(expression, value, expected):
    assert parse_jsonpath(expression, field="InputFilter").select(value) == expected


@pytest.mark.parametrize("expression", [
    "features", "$..features", "$[?(@.score > 0.5)]", "$[(@.length-1)]", "$[1:].x", "$['a',1]",
    "$[*,1]", "$.", "$[1", "$[abc]", "$ .a",
])
def test_refuses_what_sagemaker_does_not_support(expression):
    with pytest.raises(ValidationError) as info:
        parse_jsonpath(expression, field="OutputFilter")
    assert "OutputFilter" in info.value.message and "not a supported JSONPath" in info.value.message


@pytest.mark.parametrize("expression, value, problem", [
    ("$[9]", ROW, "out of range"),
    ("$.missing", DOC, "no member 'missing'"),
    ("$.features", ROW, "not an object"),
    ("$[0]", DOC, "not an array"),
])
def test_records_without_the_selection_raise(expression, value, problem):
    with pytest.raises(JsonPathError) as info:
        parse_jsonpath(expression, field="InputFilter").select(value)
    assert problem in str(info.value)


def test_identity():
    assert parse_jsonpath("$", field="f").is_identity
    assert not parse_jsonpath("$[1:]", field="f").is_identity
