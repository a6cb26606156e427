"""recordIO-protobuf framing, Record encoding/decoding and the matrix helpers (no server needed)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import scipy.sparse as sp

from sagelab.algorithms.first_party import recordio
from sagelab.algorithms.first_party.recordio import (
    Record,
    RecordIOError,
    Tensor,
    decode_record,
    encode_record,
    frame_records,
    iter_records,
    read_matrix,
    read_records,
    write_matrix,
    write_results,
)

# Record{features{"values": Float32Tensor{values: [1.0, 2.0]}}}, encoded by hand from the documented field
# numbers: it pins the wire format, so a descriptor mistake cannot go unnoticed by a round trip.
GOLDEN_PAYLOAD = bytes.fromhex("0a16" "0a06") + b"values" + bytes.fromhex("120c" "120a" "0a08"
                                                                          "0000803f" "00000040")


def test_golden_payload_matches_the_documented_wire_format():
    assert encode_record(Record(features={"values": Tensor(np.array([1.0, 2.0], dtype=np.float32))})) == \
        GOLDEN_PAYLOAD
    record = decode_record(GOLDEN_PAYLOAD)
    assert record.features["values"].values.tolist() == [1.0, 2.0]
    assert record.features["values"].kind == "float32" and record.label == {}


def test_framing_pads_to_four_bytes_with_magic_and_length():
    framed = frame_records([b"abcde", b"", b"wxyz"])
    assert framed[:8] == struct.pack("<II", 0xCED7230A, 5)
    assert framed[8:16] == b"abcde\0\0\0"
    assert len(framed) == 16 + 8 + 8 + 4
    assert list(iter_records(framed)) == [b"abcde", b"", b"wxyz"]


def test_last_record_without_padding_is_accepted():
    framed = frame_records([b"abc", b"defghi"])
    assert list(iter_records(framed[:-2])) == [b"abc", b"defghi"]


@pytest.mark.parametrize(("keep", "needle"), [(15, "3 byte(s) at offset 12 are too few for a record header"),
                                              (22, "announces 3 payload bytes but only 2 remain")])
def test_truncated_records_are_named(keep, needle):
    framed = frame_records([b"abc", b"def"])  # two records of 12 bytes each
    with pytest.raises(RecordIOError) as info:
        list(iter_records(framed[:keep]))
    assert info.value.index == 2
    assert needle in str(info.value)
    assert str(info.value).startswith("record 2:")


def test_bad_magic_is_named():
    framed = bytearray(frame_records([b"abcd", b"efgh"]))
    framed[12:16] = b"\x01\x02\x03\x04"
    with pytest.raises(RecordIOError, match=r"record 2: bad magic number 0x04030201 at byte offset 12"):
        list(iter_records(bytes(framed)))


def test_mxnet_multipart_records_are_joined():
    magic = struct.pack("<I", 0xCED7230A)
    part = [b"ab\0\0", b"cdef", b"gh"]
    framed = b"".join(struct.pack("<II", 0xCED7230A, len(p) | (flag << 29)) + p + b"\0" * ((4 - len(p) % 4) % 4)
                      for p, flag in zip(part, (1, 2, 3), strict=True))
    assert list(iter_records(framed)) == [b"ab\0\0" + magic + b"cdef" + magic + b"gh"]
    with pytest.raises(RecordIOError, match="no last part"):
        list(iter_records(framed[:24]))


def test_garbage_payload_is_rejected_with_the_record_index():
    framed = frame_records([GOLDEN_PAYLOAD, b"\xff\xff\xff"])
    with pytest.raises(RecordIOError, match=r"record 2: .*not a valid aialgs.data.Record"):
        read_matrix([framed])


def test_every_tensor_kind_round_trips():
    record = Record(
        features={"values": Tensor(np.array([1.5, -2.0]), kind="float64"),
                  "ids": Tensor(np.array([3, 4, 5], dtype=np.int32), kind="int32"),
                  "sparse": Tensor(np.array([7.0], dtype=np.float32), keys=np.array([9]), shape=(20,)),
                  "blob": Tensor(np.array([b"\x00jpeg", b"x"], dtype=object), kind="bytes",
                                 content_type="image/jpeg")},
        label={"values": Tensor(np.array([1.0], dtype=np.float32))}, uid="r-1", metadata="{}",
        configuration='{"k": 1}')
    back = read_records(frame_records([encode_record(record)]))[0]
    assert back.features["values"].kind == "float64" and back.features["values"].values.dtype == np.float64
    assert back.features["ids"].values.tolist() == [3, 4, 5] and back.features["ids"].kind == "int32"
    assert back.features["sparse"].keys.tolist() == [9] and back.features["sparse"].shape == (20,)
    assert back.features["sparse"].is_sparse and not back.features["values"].is_sparse
    assert back.features["blob"].values.tolist() == [b"\x00jpeg", b"x"]
    assert back.features["blob"].content_type == "image/jpeg"
    assert (back.uid, back.metadata, back.configuration) == ("r-1", "{}", '{"k": 1}')


def test_dense_matrix_round_trip_with_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 4)).astype(np.float32)
    y = np.arange(7) % 2
    data = write_matrix(x, y)
    got_x, got_y = read_matrix([data])
    assert isinstance(got_x, np.ndarray) and got_x.dtype == np.float32
    np.testing.assert_array_equal(got_x, x)
    assert got_y.tolist() == y.tolist()
    first = decode_record(next(iter_records(data)))
    assert first.features["values"].kind == "float32" and first.features["values"].keys is None
    assert first.label["values"].values.tolist() == [0.0]


@pytest.mark.parametrize("kind", ["float64", "int32"])
def test_other_tensor_types_are_read_as_matrices(kind):
    x = np.array([[1, 2, 3], [4, 5, 6]])
    got_x, got_y = read_matrix([write_matrix(x, [1, 0], kind=kind)])
    np.testing.assert_array_equal(got_x, x)
    assert got_y.tolist() == [1.0, 0.0]


def test_sparse_matrix_round_trip_and_mixed_records():
    x = sp.random(6, 50, density=0.1, format="csr", random_state=1, dtype=np.float32)
    data = write_matrix(x, np.ones(6))
    record = decode_record(next(iter_records(data)))
    assert record.features["values"].shape == (50,)
    got_x, got_y = read_matrix([data])
    assert sp.issparse(got_x) and got_x.shape == (6, 50)
    np.testing.assert_allclose(got_x.toarray(), x.toarray())
    dense = write_matrix(np.ones((2, 50), dtype=np.float32), np.zeros(2))
    mixed, labels = read_matrix([data, dense])
    assert sp.issparse(mixed) and mixed.shape == (8, 50)
    np.testing.assert_allclose(mixed.toarray()[6:], 1.0)
    assert labels.tolist() == [1.0] * 6 + [0.0] * 2


def test_unlabelled_records_give_no_y():
    _, y = read_matrix([write_matrix(np.ones((3, 2)))])
    assert y is None


def _payload(values, keys=None, shape=None, label=None) -> bytes:
    features = {"values": Tensor(np.asarray(values, dtype=np.float32),
                                 keys=None if keys is None else np.asarray(keys), shape=shape)}
    labels = {} if label is None else {"values": Tensor(np.asarray([label], dtype=np.float32))}
    return encode_record(Record(features=features, label=labels))


@pytest.mark.parametrize(("payloads", "kwargs", "message"), [
    ([_payload([1, 2, 3])], {"feature_dim": 4}, "record 1: the record has 3 features, but feature_dim is 4."),
    ([_payload([1, 2]), _payload([1, 2, 3])], {}, "record 2: the record has 3 features, but record 1 has 2."),
    ([_payload([1.0], keys=[3])], {}, "record 1: the sparse feature tensor has 1 keys but no shape"),
    ([_payload([1.0], keys=[10], shape=(10,))], {}, "record 1: sparse key 10 is out of range for shape [10]"),
    ([_payload([1.0, 2.0], keys=[1], shape=(10,))], {}, "has 1 keys but 2 values"),
    ([_payload([1.0], label=1), _payload([2.0])], {}, "record 2: the record has no label, but earlier records do."),
    ([encode_record(Record(features={"other": Tensor(np.ones(2, dtype=np.float32))}))], {},
     "record 1: the record has no features[\"values\"] tensor (feature keys: 'other')."),
    ([], {}, "the data holds no records."),
])
def test_read_matrix_errors_name_the_record_and_the_problem(payloads, kwargs, message):
    with pytest.raises(RecordIOError) as info:
        read_matrix([frame_records(payloads)], **kwargs)
    assert message in str(info.value)


def test_record_index_counts_across_chunks():
    with pytest.raises(RecordIOError, match="record 4: the record has 3 features, but record 1 has 2"):
        read_matrix([frame_records([_payload([1, 2])] * 3), frame_records([_payload([1, 2, 3])])])


def test_write_results_puts_everything_in_the_label_map():
    data = write_results([{"score": 0.25, "predicted_label": 1},
                          {"score": np.array([0.1, 0.9]), "predicted_label": np.int64(1)}])
    records = read_records(data)
    assert len(records) == 2 and all(r.features == {} for r in records)
    assert records[0].label["score"].kind == "float32"
    assert records[0].label["score"].values.tolist() == [0.25]
    assert records[1].label["score"].values.tolist() == pytest.approx([0.1, 0.9])
    assert records[1].label["predicted_label"].values.tolist() == [1.0]
    # The raw message reads like the SageMaker SDK's RecordDeserializer output does.
    message = recordio.record_message_class()()
    message.ParseFromString(next(iter_records(data)))
    assert message.label["score"].float32_tensor.values[0] == 0.25
