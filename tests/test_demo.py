"""The main job, end to end: `sagelab demo` catalogs, queries, profiles and prepares messy data, trains, tunes,
evaluates, registers, deploys, and scores through an endpoint and a batch transform."""

from __future__ import annotations

import io
import re

import pytest

from sagelab.demo import run_demo


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline(tmp_path):
    out = io.StringIO()
    assert run_demo(str(tmp_path / "home"), out=out) == 0, out.getvalue()
    text = out.getvalue()
    accuracies = [float(a) for a in re.findall(r"test accuracy (\d\.\d+)", text)]
    assert len(accuracies) == 2, text  # the endpoint and the batch transform
    assert min(accuracies) > 0.9
    assert accuracies[0] == accuracies[1]  # same model, same rows: both ways agree
    assert "2000 events counted in the lake for 2000 sent" in text  # the streaming stage
