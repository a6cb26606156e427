"""SplitType RecordIO: cutting an object into whole recordIO records and batching them (no server)."""

from __future__ import annotations

import numpy as np
import pytest

from sagelab.algorithms.first_party.recordio import frame_records, iter_records, read_matrix, write_matrix
from sagelab.transform.batching import BadRecord, recordio_batches


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


DATA = write_matrix(np.arange(600, dtype=np.float32).reshape(100, 6))  # 100 records of 48 bytes


@pytest.mark.parametrize("piece_size", [1, 13, 40, 1000, 100_000])
def test_multi_record_batches_are_whole_records_within_the_limit(piece_size):
    batches = list(recordio_batches(pieces(DATA, piece_size), 150, single=False))
    assert b"".join(b.body for b in batches) == DATA
    assert all(len(b.body) <= 150 for b in batches)
    assert [len(b.records) for b in batches] == [3] * 33 + [1]
    assert [b.first_line for b in batches] == list(range(1, 101, 3))
    assert [b.offset for b in batches] == [i * 144 for i in range(34)]
    x, _ = read_matrix([batches[5].body])  # each request is a valid recordIO-protobuf body
    np.testing.assert_array_equal(x[:, 0], [90, 96, 102])


def test_single_record_and_no_limit():
    single = list(recordio_batches([DATA], 6 * 1024 * 1024, single=True))
    assert len(single) == 100 and all(len(list(iter_records(b.body))) == 1 for b in single)
    assert [b.first_line for b in single] == list(range(1, 101))
    whole = list(recordio_batches(pieces(DATA, 7), None, single=False))
    assert len(whole) == 1 and whole[0].body == DATA


def test_a_record_larger_than_the_limit_is_named():
    data = frame_records([b"a" * 8, b"b" * 200, b"c"])
    with pytest.raises(BadRecord) as info:
        list(recordio_batches([data], 100, single=False))
    assert info.value.line == 2 and "larger than MaxPayloadInMB" in info.value.message


def test_malformed_objects_are_named_by_record():
    with pytest.raises(BadRecord) as info:
        list(recordio_batches(pieces(DATA[:-7], 50), 1000, single=False))
    assert info.value.line == 100 and "truncated" in info.value.message
    with pytest.raises(BadRecord) as info:
        list(recordio_batches([b"1,2,3\n4,5,6\n"], 1000, single=False))
    assert info.value.line == 1 and "bad magic number" in info.value.message


def test_a_last_record_without_padding_is_padded_so_batches_stay_valid():
    data = frame_records([b"abcd", b"xyz"])[:-1]
    (batch,) = recordio_batches([data], None, single=False)
    assert list(iter_records(batch.body)) == [b"abcd", b"xyz"]
    assert len(batch.body) % 4 == 0
