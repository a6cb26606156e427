"""The first-party algorithms' shared request/response/training-channel contract (no server needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from sagelab.algorithms.base import Channel, DataError, InferenceError
from sagelab.algorithms.first_party import io as onep_io
from sagelab.algorithms.first_party.recordio import frame_records, read_records, write_matrix

DENSE = np.array([[1.5, 16.0, 0.0], [2.0, 0.5, -1.0]], dtype=np.float32)


@pytest.mark.parametrize(("body", "content_type"), [
    (b"1.5,16,0\n2,0.5,-1\n", "text/csv"),
    (b"1.5,16,0\r\n\r\n2,0.5,-1", "text/csv; charset=utf-8"),
    (json.dumps({"instances": [{"features": [1.5, 16, 0]}, {"features": [2, 0.5, -1]}]}).encode(),
     "application/json"),
    (json.dumps({"instances": [{"data": {"features": {"values": [1.5, 16, 0]}}},
                               {"data": {"features": {"values": [2, 0.5, -1]}}}]}).encode(), "application/json"),
    (b'{"features": [1.5, 16, 0]}\n{"data": {"features": {"values": [2, 0.5, -1]}}}\n', "application/jsonlines"),
    (write_matrix(DENSE), "application/x-recordio-protobuf"),
])
def test_dense_requests_in_every_content_type(body, content_type):
    x = onep_io.parse_request(body, content_type, feature_dim=3)
    assert isinstance(x, np.ndarray) and x.dtype == np.float32
    np.testing.assert_array_equal(x, DENSE)


def test_sparse_json_and_protobuf_requests():
    body = json.dumps({"data": {"features": {"keys": [26, 182], "shape": [2000], "values": [1, 4]}}}).encode()
    x = onep_io.parse_request(body, "application/json", feature_dim=2000)
    assert sp.issparse(x) and x.shape == (1, 2000) and x[0, 182] == 4
    assert onep_io.parse_request(body, "application/json", feature_dim=None).shape == (1, 2000)
    assert isinstance(onep_io.parse_request(body, "application/json", feature_dim=2000, dense=True), np.ndarray)
    matrix = sp.csr_matrix(([1.0, 4.0], ([0, 1], [26, 182])), shape=(2, 2000))
    x = onep_io.parse_request(write_matrix(matrix), "application/x-recordio-protobuf", feature_dim=2000)
    assert sp.issparse(x) and x[1, 182] == 4


@pytest.mark.parametrize(("body", "content_type", "status", "message"), [
    (b"1,2,3", "text/plain", 415, "Content type 'text/plain' is not supported"),
    (b"", "text/csv", 400, "The request body is empty"),
    (b"  \n", "application/json", 400, "The request body is empty"),
    (b"", "application/x-recordio-protobuf", 400, "The request body is empty"),
    (b"1,2\n", "text/csv", 400, "CSV record 1 has 2 values; the model expects 3 features"),
    (b"1,2,3\n1,x,3\n", "text/csv", 400, "CSV record 2, feature 2: 'x' is not a number."),
    (b"1,nan,3\n", "text/csv", 400, "Record 1, feature 2: nan is not a finite number."),
    (b'{"instances": [{"features": [1, "two", 3]}]}', "application/json", 400,
     "Instance 1, feature 2: 'two' is not a number."),
    (b'{"instances": [{"features": [1, 2, 3]}, {"features": [1, 2]}]}', "application/json", 400,
     "Instance 2 has 2 features; the model expects 3 features."),
    (b'{"instances": []}', "application/json", 400, '"instances" is empty'),
    (b"{not json", "application/json", 400, "not valid JSON"),
    (b'{"data": {"features": {"keys": [5], "shape": [3], "values": [1]}}}', "application/json", 400,
     "Instance 1: sparse key 5 is out of range for 3 features (keys must be 0..2)."),
    (b'{"data": {"features": {"keys": [5], "values": [1]}}}', "application/json", 400,
     "sparse key 5 is out of range for 3 features"),
    (b'{"features": [1, 2, 3]}\n{"features": [1, 2]}\n', "application/jsonlines", 400,
     "JSON Lines record 2 has 2 features"),
    (b'{"features": [1, 2, 3]}\nnope\n', "application/jsonlines", 400, "JSON Lines line 2 is not valid JSON"),
    (write_matrix(np.ones((2, 4))), "application/x-recordio-protobuf", 400,
     "record 1: the record has 4 features, but feature_dim is 3."),
    (write_matrix(np.ones((2, 3)))[:-6], "application/x-recordio-protobuf", 400, "record 2: truncated"),
    (write_matrix(np.array([[1, np.inf, 3]])), "application/x-recordio-protobuf", 400,
     "Record 1, feature 2: inf is not a finite number."),
])
def test_bad_requests_say_which_record_and_why(body, content_type, status, message):
    with pytest.raises(InferenceError) as info:
        onep_io.parse_request(body, content_type, feature_dim=3)
    assert info.value.status == status
    assert message in str(info.value)


def test_sparse_shape_must_match_the_model():
    body = b'{"data": {"features": {"keys": [1], "shape": [5], "values": [1]}}}'
    with pytest.raises(InferenceError, match="Instance 1 has 5 features; the model expects 3 features"):
        onep_io.parse_request(body, "application/json", feature_dim=3)


ROWS = [{"score": 0.25, "predicted_label": 1}, {"score": np.float64(0.75), "predicted_label": np.int64(0)}]


def test_json_and_jsonlines_responses():
    body, kind = onep_io.encode_response(ROWS, "application/json")
    assert kind == "application/json"
    assert json.loads(body) == {"predictions": [{"score": 0.25, "predicted_label": 1},
                                                {"score": 0.75, "predicted_label": 0}]}
    body, _ = onep_io.encode_response([{"projection": np.array([1.0, 2.0])}], "*/*", json_key="projections")
    assert json.loads(body) == {"projections": [{"projection": [1.0, 2.0]}]}
    body, kind = onep_io.encode_response(ROWS, "application/jsonlines")
    assert kind == "application/jsonlines"
    assert [json.loads(line) for line in body.decode().splitlines()] == json.loads(
        onep_io.encode_response(ROWS, None)[0])["predictions"]
    body, _ = onep_io.encode_response(ROWS, "application/json", json_key=None)
    assert isinstance(json.loads(body), list)


def test_protobuf_response_puts_results_in_the_label_map():
    body, kind = onep_io.encode_response(ROWS, "application/x-recordio-protobuf")
    assert kind == "application/x-recordio-protobuf"
    records = read_records(body)
    assert [r.label["score"].values[0] for r in records] == [0.25, 0.75]
    assert [r.label["predicted_label"].values[0] for r in records] == [1.0, 0.0]


def test_accept_negotiation():
    assert onep_io.negotiate_accept("text/html, application/jsonlines") == "application/jsonlines"
    assert onep_io.negotiate_accept("application/x-recordio-protobuf;q=1") == "application/x-recordio-protobuf"
    with pytest.raises(InferenceError) as info:
        onep_io.encode_response(ROWS, "text/csv")
    assert info.value.status == 406 and "Accept 'text/csv' is not supported" in str(info.value)
    body, kind = onep_io.encode_response(ROWS, "text/csv", accept_types=onep_io.ACCEPT_TYPES + ("text/csv",))
    assert (body, kind) == (b"0.25,1\n0.75,0\n", "text/csv")


# -- training channels ------------------------------------------------------------------------------------


def _channel(tmp_path, name, files: dict[str, bytes], content_type: str) -> Channel:
    paths = []
    for i, (file_name, data) in enumerate(files.items()):
        path = tmp_path / f"{i:05d}-{file_name}"
        path.write_bytes(data)
        paths.append(path)
    return Channel(name=name, content_type=content_type, files=paths)


def test_csv_channel_with_and_without_label(tmp_path):
    channel = _channel(tmp_path, "train", {"a.csv": b"1,2,3\n0,4,5\n"}, "text/csv")
    x, y = onep_io.read_training_channel(channel)
    assert x.tolist() == [[2, 3], [4, 5]] and y.tolist() == [1, 0]
    channel.content_type = "text/csv;label_size=0"
    x, y = onep_io.read_training_channel(channel, label_size=1)
    assert x.shape == (2, 3) and y is None


def test_protobuf_channel_across_files(tmp_path):
    dense = write_matrix(np.ones((3, 4)), [1, 0, 1])
    sparse = write_matrix(sp.csr_matrix(np.eye(2, 4)), [0, 0])
    channel = _channel(tmp_path, "train", {"shard-0": dense, "shard-1": sparse}, "application/x-recordio-protobuf")
    x, y = onep_io.read_training_channel(channel, feature_dim=4)
    assert sp.issparse(x) and x.shape == (5, 4) and y.tolist() == [1, 0, 1, 0, 0]
    x, y = onep_io.read_training_channel(channel, label_size=0, dense=True)
    assert isinstance(x, np.ndarray) and y is None


@pytest.mark.parametrize(("files", "content_type", "kwargs", "message"), [
    ({"empty": b""}, "text/csv", {}, "Channel 'train' has no data"),
    ({"a": b"1,2\n"}, "application/x-parquet", {}, "content type 'application/x-parquet' is not supported"),
    ({"a": b"1,2\n"}, "text/csv;label_size=2", {}, "label_size=2 is not supported"),
    ({"a": b"1,2,3\n"}, "text/csv", {"feature_dim": 3},
     "Hyperparameter feature_dim is 3, but channel 'train' has records with 2 features."),
    ({"a": b"1,2,3\n0,,3\n"}, "text/csv", {}, "Channel 'train', row 2: feature 1 is missing."),
    ({"shard": write_matrix(np.ones((2, 3)))[:-5]}, "application/x-recordio-protobuf", {},
     "Channel 'train', file shard: record 2: truncated"),
    ({"shard": write_matrix(np.ones((2, 3)), [1, 1])}, "application/x-recordio-protobuf", {"feature_dim": 5},
     "Channel 'train', file shard: record 1: the record has 3 features, but feature_dim is 5."),
    ({"s0": write_matrix(np.ones((2, 3)), [1, 1]), "s1": write_matrix(np.ones((2, 2)), [1, 1])},
     "application/x-recordio-protobuf", {}, "Channel 'train', file s1: record 1: the record has 2 features"),
    ({"shard": write_matrix(np.ones((2, 3)))}, "application/x-recordio-protobuf", {},
     "Channel 'train': the records carry no label"),
    ({"shard": write_matrix(np.array([[1.0, np.nan]]), [1])}, "application/x-recordio-protobuf", {},
     "Channel 'train', record 1: feature 2 is nan, not a finite number."),
    ({"shard": frame_records([b"\x08"])}, "application/x-recordio-protobuf", {},
     "record 1: the payload (1 bytes) is not a valid aialgs.data.Record"),
])
def test_bad_training_channels(tmp_path, files, content_type, kwargs, message):
    with pytest.raises(DataError) as info:
        onep_io.read_training_channel(_channel(tmp_path, "train", files, content_type), **kwargs)
    assert message in str(info.value)


def test_unlabelled_channel_allowed_when_labels_are_optional(tmp_path):
    channel = _channel(tmp_path, "train", {"s": write_matrix(np.ones((2, 3)))}, "application/x-recordio-protobuf")
    x, y = onep_io.read_training_channel(channel, label_required=False)
    assert x.shape == (2, 3) and y is None
