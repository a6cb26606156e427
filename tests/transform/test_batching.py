"""Cutting objects into requests, and DataProcessing on records, without a server."""

from __future__ import annotations

import gzip

import pytest

from sagelab.lake.uris import S3Uri
from sagelab.transform.batching import (
    BadRecord,
    Record,
    group,
    line_at,
    line_chunks,
    line_span,
    lines,
    whole_object,
)
from sagelab.transform.data_processing import RecordProcessor
from sagelab.transform.inputs import InputError, _gunzip
from sagelab.transform.jsonpath import parse_jsonpath
from sagelab.transform.spec import DataProcessing


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("piece_size", [1, 7, 64, 100, 250, 10_000])
def test_line_chunks_cut_at_newlines_within_the_limit(piece_size):
    data = b"".join(f"{i},{i * 2}\n".encode() for i in range(500)) + b"last,1"
    batches = list(line_chunks(pieces(data, piece_size), 100))
    assert b"".join(b.body for b in batches) == data
    assert all(len(b.body) <= 100 for b in batches)
    assert all(b.body.endswith(b"\n") for b in batches[:-1])
    assert all(len(b.body) > 80 for b in batches[:-1])  # full: a 100-byte window always holds 8+ lines
    offsets = [0]
    for batch in batches[:-1]:
        offsets.append(offsets[-1] + len(batch.body))
    assert [b.offset for b in batches] == offsets
    assert [line_at(pieces(data, piece_size), b.offset) for b in batches] == [
        data[:b.offset].count(b"\n") + 1 for b in batches]


def test_a_record_larger_than_the_limit_is_named_by_line():
    data = b"1,2\n3,4\n" + b"9" * 200 + b"\n5,6\n"
    with pytest.raises(BadRecord) as info:
        list(line_chunks(pieces(data, 64), 100))
    assert info.value.line is None and "MaxPayloadInMB" in info.value.message
    assert line_at(pieces(data, 64), info.value.offset) == 3


def test_whole_object_and_no_limit():
    data = b"a\nb\nc\n"
    assert [b.body for b in whole_object(pieces(data, 2), None)] == [data]
    assert [b.body for b in line_chunks(pieces(data, 2), None)] == [data]
    with pytest.raises(BadRecord) as info:
        list(whole_object([data], 3))
    assert info.value.line == 1
    assert list(whole_object([], 10)) == []
    assert line_span(data) == 3 and line_span(b"a\nb") == 2 and line_span(b"") == 0


def test_lines_skip_blanks_and_keep_numbers():
    data = b"a,1\r\n\n  \nb,2\nc,3"
    assert list(lines(pieces(data, 3))) == [Record(1, b"a,1"), Record(4, b"b,2"), Record(5, b"c,3")]


def test_group_single_and_multi():
    records = [Record(i, b"x" * 10) for i in range(1, 8)]
    single = list(group(records, limit=100, single=True))
    assert [b.body for b in single] == [b"x" * 10] * 7
    multi = list(group(records, limit=35, single=False, keep_records=True))
    assert [len(b.records) for b in multi] == [3, 3, 1]
    assert multi[1].body == b"\n".join([b"x" * 10] * 3) + b"\n"
    assert multi[1].first_line == 4 and [r.line for r in multi[1].records] == [4, 5, 6]


def test_gzip_members_concatenated_and_truncated():
    data = gzip.compress(b"a\nb\n") + gzip.compress(b"c\n")
    assert b"".join(_gunzip(iter(pieces(data, 5)), S3Uri("b", "k"))) == b"a\nb\nc\n"
    with pytest.raises(InputError, match="truncated"):
        list(_gunzip(iter([data[:-5]]), S3Uri("b", "k")))
    with pytest.raises(InputError, match="not valid gzip"):
        list(_gunzip(iter([b"plain text"]), S3Uri("b", "k")))


def processing(input_filter=None, output_filter=None, join=False) -> DataProcessing:
    def path(text):
        return parse_jsonpath(text, field="f") if text else None
    return DataProcessing(path(input_filter), path(output_filter), join)


def test_csv_filter_join_and_output_filter():
    processor = RecordProcessor(processing("$[1:]", "$[0,-1]", join=True), "csv")
    records = [Record(3, b"1,0.5,0.25"), Record(4, b'0,"a,b",7')]
    assert [processor.request_payload(r) for r in records] == [b"0.5,0.25", b'"a,b",7']
    assert processor.output(records, b"0.9\n0.1\n", "text/csv") == b"1,0.9\n0,0.1\n"
    with pytest.raises(BadRecord) as info:
        processor.output(records, b"0.9\n", "text/csv")
    assert info.value.line == 3 and "1 output record(s)" in info.value.message


def test_json_join_wraps_non_objects_and_splits_json_predictions():
    processor = RecordProcessor(processing(join=True), "json")
    records = [Record(1, b'{"id": 1}'), Record(2, b"[1, 2]")]
    response = b'{"predictions": [{"score": 0.9}, {"score": 0.2}]}'
    assert processor.output(records, response, "application/json").splitlines() == [
        b'{"id":1,"SageMakerOutput":{"score":0.9}}',
        b'{"SageMakerInput":[1,2],"SageMakerOutput":{"score":0.2}}']
    assert processor.output(records, b"0.9\n0.2\n", "text/csv").splitlines()[0] == b'{"id":1,"SageMakerOutput":0.9}'


def test_input_filter_only_passes_the_answer_through():
    processor = RecordProcessor(processing("$.features"), "json")
    assert processor.passes_output_through
    assert processor.request_payload(Record(1, b'{"features": [1, 2]}')) == b"[1,2]"
    with pytest.raises(BadRecord) as info:
        processor.request_payload(Record(5, b'{"other": 1}'))
    assert info.value.line == 5 and "InputFilter '$.features'" in info.value.message
