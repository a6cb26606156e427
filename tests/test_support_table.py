"""The support table is read from the code, and the README carries exactly what the code says."""

from __future__ import annotations

from pathlib import Path

import botocore.session

from sagelab import cli, support_table
from sagelab.support_table import FEATURES, RECORDIO, answered_operations

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_block_matches_the_code():
    readme = (ROOT / "README.md").read_text()
    expected = support_table.replace_block(readme, support_table.markdown())
    assert readme == expected, ("The support table in README.md is out of date: run "
                                "`sagelab support-table --write README.md`.")


def test_every_listed_operation_is_a_real_aws_operation():
    session = botocore.session.get_session()
    for service, operations in answered_operations().items():
        assert operations <= set(session.get_service_model(service).operation_names), service
    for feature in FEATURES:
        for need in feature.needs:
            kind, _, name = need.partition(":")
            if need != RECORDIO and kind not in ("algorithm", "framework"):
                assert name in session.get_service_model(kind).operation_names, (feature.call, need)


def test_the_table_names_what_is_answered_and_what_is_not():
    answered = answered_operations()
    assert {"GetLogEvents", "DescribeLogStreams", "FilterLogEvents"} <= answered["logs"]
    assert "GetCallerIdentity" in answered["sts"] and "InvokeEndpoint" in answered["sagemaker-runtime"]
    assert {"ListObjectsV2", "CopyObject", "UploadPartCopy"} <= answered["s3"]
    text = support_table.markdown()
    assert "| `estimator.deploy(...)` | yes |" in text
    assert support_table.missing(["sagemaker:CreateAutoMLJob", "algorithm:no-such-image"]) == [
        "sagemaker CreateAutoMLJob", "the no-such-image algorithm (image repository 'no-such-image')"]


def test_every_example_is_listed_in_the_support_table():
    listed = {f.example for f in FEATURES if f.example}
    assert listed == {p.name for p in (ROOT / "examples").glob("*.py")}


def test_the_cli_prints_the_table_and_rewrites_a_file(tmp_path, capsys):
    assert cli.main(["support-table"]) == 0
    assert capsys.readouterr().out == support_table.markdown()
    target = tmp_path / "doc.md"
    target.write_text(f"intro\n{support_table.BEGIN_MARKER}\nstale\n{support_table.END_MARKER}\nend\n")
    assert cli.main(["support-table", "--write", str(target)]) == 0
    assert target.read_text() == f"intro\n{support_table.BEGIN_MARKER}\n{support_table.markdown()}" \
                                 f"{support_table.END_MARKER}\nend\n"
    assert cli.main(["support-table", "--write", str(target)]) == 0
    assert "already up to date" in capsys.readouterr().out
