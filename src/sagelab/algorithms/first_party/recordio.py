"""recordIO-protobuf: the data format of SageMaker's first-party algorithms (reference §0.3).

Two layers:
- framing (ours, as the wire format documents it): each record is the little-endian uint32 magic 0xCED7230A,
  a uint32 length, the payload, then zero padding to a multiple of 4 bytes. The length's top three bits are
  MXNet's continuation flag; the SageMaker SDK never sets it, but MXNet's writer splits a payload wherever the
  magic number appears on a 4-byte boundary, so the reader joins such parts back together.
- payload: a proto2 `aialgs.data.Record` (features and label maps of Float32/Float64/Int32 tensors or bytes),
  serialised deterministically (map keys sorted) so equal records give equal bytes in every process.
  The message classes are built from a descriptor declared here, and the `protobuf` package does the encoding.

`read_matrix` / `write_matrix` turn records into a feature matrix and label vector and back, the way the
SageMaker SDK's `write_numpy_to_dense_tensor` / `write_spmatrix_to_sparse_tensor` write them (features and
label under the key "values"); `write_results` writes inference results the way the SDK's RecordDeserializer
reads them (one Record per row, features empty, each result a float32 tensor in the label map).

Errors are `RecordIOError(index, why)`; `index` counts records from 1 across every chunk given.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from sagelab.algorithms.base import DataError

MAGIC = 0xCED7230A
CONTENT_TYPE = "application/x-recordio-protobuf"
_HEADER = struct.Struct("<II")
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_MASK = (1 << 29) - 1
# MXNet's continuation flag (length >> 29): 0 whole record, 1 first part, 2 middle part, 3 last part.
_WHOLE, _FIRST, _MIDDLE, _LAST = 0, 1, 2, 3

_TENSOR_FIELDS = {"float32": "float32_tensor", "float64": "float64_tensor", "int32": "int32_tensor"}
_NUMPY_TYPES = {"float32": np.float32, "float64": np.float64, "int32": np.int32}


class RecordIOError(DataError):
    """A record that cannot be read; `index` is its 1-based position (0 when no single record is at fault)."""

    def __init__(self, index: int, why: str):
        super().__init__(f"record {index}: {why}" if index else why)
        self.index = index
        self.why = why


# -- the protobuf schema ------------------------------------------------------------------------------------


@functools.cache
def _messages() -> dict[str, Any]:
    """Message classes for aialgs.data (proto2), built once from a descriptor declared in code."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="sagelab/aialgs_data_record.proto", package="aialgs.data",
                                              syntax="proto2")

    def field(message, name, number, kind, *, repeated=False, type_name=None, packed=False, oneof=None):
        f = message.field.add(name=name, number=number, type=kind,
                              label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
        if type_name:
            f.type_name = type_name
        if packed:
            f.options.packed = True
        if oneof is not None:
            f.oneof_index = oneof
        return f

    for name, kind in (("Float32Tensor", F.TYPE_FLOAT), ("Float64Tensor", F.TYPE_DOUBLE),
                       ("Int32Tensor", F.TYPE_INT32)):
        tensor = file.message_type.add(name=name)
        field(tensor, "values", 1, kind, repeated=True, packed=True)
        field(tensor, "keys", 2, F.TYPE_UINT64, repeated=True, packed=True)
        field(tensor, "shape", 3, F.TYPE_UINT64, repeated=True, packed=True)
    blob = file.message_type.add(name="Bytes")
    field(blob, "value", 1, F.TYPE_BYTES, repeated=True)
    field(blob, "content_type", 2, F.TYPE_STRING)

    value = file.message_type.add(name="Value")
    value.oneof_decl.add(name="value")
    for name, number, type_name in (("float32_tensor", 2, "Float32Tensor"), ("float64_tensor", 3, "Float64Tensor"),
                                    ("int32_tensor", 7, "Int32Tensor"), ("bytes", 9, "Bytes")):
        field(value, name, number, F.TYPE_MESSAGE, type_name=f".aialgs.data.{type_name}", oneof=0)

    record = file.message_type.add(name="Record")
    for name, number, entry_name in (("features", 1, "FeaturesEntry"), ("label", 2, "LabelEntry")):
        entry = record.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        field(entry, "key", 1, F.TYPE_STRING)
        field(entry, "value", 2, F.TYPE_MESSAGE, type_name=".aialgs.data.Value")
        field(record, name, number, F.TYPE_MESSAGE, repeated=True, type_name=f".aialgs.data.Record.{entry_name}")
    for name, number in (("uid", 3), ("metadata", 4), ("configuration", 5)):
        field(record, name, number, F.TYPE_STRING)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"aialgs.data.{name}"))
            for name in ("Record", "Value", "Float32Tensor", "Float64Tensor", "Int32Tensor", "Bytes")}


def record_message_class() -> Any:
    """The generated `aialgs.data.Record` class, for code that wants the raw protobuf message."""
    return _messages()["Record"]


# -- framing ------------------------------------------------------------------------------------------------


def _pad(length: int) -> int:
    return (4 - length % 4) % 4


def iter_records(data: bytes | bytearray | memoryview, *, first_index: int = 1) -> Iterator[bytes]:
    """Payloads of the framed records in `data`, in order. Raises RecordIOError on a bad magic number or a
    truncated record. A last record without its trailing padding is accepted (no data is missing)."""
    view = memoryview(data)
    size = len(view)
    offset, index = 0, first_index
    parts: list[bytes] | None = None
    while offset < size:
        if size - offset >= 4 and view[offset:offset + 4] != _MAGIC_BYTES:
            (magic,) = struct.unpack_from("<I", view, offset)
            raise RecordIOError(index, f"bad magic number 0x{magic:08X} at byte offset {offset} (expected "
                                       f"0x{MAGIC:08X}); the data is not recordIO-protobuf or a previous record's "
                                       "length is wrong.")
        if size - offset < _HEADER.size:
            raise RecordIOError(index, f"truncated: {size - offset} byte(s) at offset {offset} are too few for a "
                                       "record header (8 bytes: magic number and length).")
        _, word = _HEADER.unpack_from(view, offset)
        length, flag = word & _LENGTH_MASK, word >> 29
        start = offset + _HEADER.size
        if start + length > size:
            raise RecordIOError(index, f"truncated: the header at byte offset {offset} announces {length} payload "
                                       f"bytes but only {size - start} remain.")
        payload = bytes(view[start:start + length])
        offset = start + length + _pad(length)
        if flag == _WHOLE and parts is None:
            yield payload
            index += 1
        elif flag == _FIRST and parts is None:
            parts = [payload]
        elif flag in (_MIDDLE, _LAST) and parts is not None:
            parts += [_MAGIC_BYTES, payload]
            if flag == _LAST:
                yield b"".join(parts)
                parts = None
                index += 1
        else:
            raise RecordIOError(index, f"inconsistent continuation flag {flag} at byte offset {start - 8}.")
    if parts is not None:
        raise RecordIOError(index, "truncated: a multi-part record has no last part.")


def iter_frames(pieces: Iterable[bytes], *, first_index: int = 1) -> Iterator[bytes]:
    """The framed bytes of each record (header, payload, padding; every part of a multi-part record) of a
    stream read in pieces of any size, without decoding payloads. Each frame ends padded, so frames can be
    concatenated into a valid recordIO stream. Raises RecordIOError like `iter_records`."""
    buffer = bytearray()
    start = 0  # where the next record starts in `buffer`
    consumed = 0  # stream offset of buffer[0]
    index = first_index
    record_start: int | None = None  # buffer offset of a multi-part record's first part
    stream = iter(pieces)
    exhausted = False
    while True:
        while len(buffer) - start < _HEADER.size and not exhausted:
            piece = next(stream, None)
            if piece is None:
                exhausted = True
            else:
                buffer += piece
        available = len(buffer) - start
        if available == 0:
            break
        offset = consumed + start
        if available >= 4 and buffer[start:start + 4] != _MAGIC_BYTES:
            (magic,) = struct.unpack_from("<I", buffer, start)
            raise RecordIOError(index, f"bad magic number 0x{magic:08X} at byte offset {offset} (expected "
                                       f"0x{MAGIC:08X}); the data is not recordIO or a previous record's length "
                                       "is wrong.")
        if available < _HEADER.size:
            raise RecordIOError(index, f"truncated: {available} byte(s) at offset {offset} are too few for a "
                                       "record header (8 bytes: magic number and length).")
        _, word = _HEADER.unpack_from(buffer, start)
        length, flag = word & _LENGTH_MASK, word >> 29
        end = start + _HEADER.size + length
        while len(buffer) < end + _pad(length) and not exhausted:
            piece = next(stream, None)
            if piece is None:
                exhausted = True
            else:
                buffer += piece
        if len(buffer) < end:
            raise RecordIOError(index, f"truncated: the header at byte offset {offset} announces {length} payload "
                                       f"bytes but only {len(buffer) - start - _HEADER.size} remain.")
        if len(buffer) < end + _pad(length):
            buffer += b"\0" * (end + _pad(length) - len(buffer))  # a last record without its padding
        end += _pad(length)
        if flag == _WHOLE and record_start is None:
            frame_from = start
        elif flag == _FIRST and record_start is None:
            record_start, start = start, end
            continue
        elif flag == _MIDDLE and record_start is not None:
            start = end
            continue
        elif flag == _LAST and record_start is not None:
            frame_from, record_start = record_start, None
        else:
            raise RecordIOError(index, f"inconsistent continuation flag {flag} at byte offset {offset}.")
        yield bytes(buffer[frame_from:end])
        index += 1
        start = end
        if start > len(buffer) // 2:  # drop what was yielded once it is most of the buffer
            consumed += start
            del buffer[:start]
            start = 0
    if record_start is not None:
        raise RecordIOError(index, "truncated: a multi-part record has no last part.")


def frame_records(payloads: Iterable[bytes]) -> bytes:
    """Frame each payload as one record (magic, length, payload, zero padding to 4 bytes)."""
    out = bytearray()
    for payload in payloads:
        length = len(payload)
        if length > _LENGTH_MASK:
            raise ValueError(f"a record payload of {length} bytes exceeds the format's limit of {_LENGTH_MASK}.")
        out += _HEADER.pack(MAGIC, length)
        out += payload
        out += b"\0" * _pad(length)
    return bytes(out)


# -- decoded view -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Tensor:
    """One Value of a Record. `values` is a NumPy array (object dtype of `bytes` for a Bytes value); `keys`
    are sparse indices (None when dense); `shape` is the declared shape (None when absent)."""

    values: np.ndarray
    keys: np.ndarray | None = None
    shape: tuple[int, ...] | None = None
    #: "float32", "float64", "int32" or "bytes".
    kind: str = "float32"
    #: A Bytes value's content type, when given.
    content_type: str | None = None

    @property
    def is_sparse(self) -> bool:
        return self.keys is not None


@dataclasses.dataclass
class Record:
    features: dict[str, Tensor] = dataclasses.field(default_factory=dict)
    label: dict[str, Tensor] = dataclasses.field(default_factory=dict)
    uid: str | None = None
    metadata: str | None = None
    configuration: str | None = None


def _parse(payload: bytes, index: int) -> Any:
    from google.protobuf.message import DecodeError

    message = _messages()["Record"]()
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise RecordIOError(index, f"the payload ({len(payload)} bytes) is not a valid aialgs.data.Record "
                                   f"protobuf message: {exc}.") from None
    return message


def _tensor(value: Any) -> Tensor:
    kind = value.WhichOneof("value")
    if kind is None:
        return Tensor(values=np.empty(0, dtype=np.float32), kind="float32")
    if kind == "bytes":
        blob = value.bytes
        values = np.empty(len(blob.value), dtype=object)
        values[:] = list(blob.value)
        return Tensor(values=values, kind="bytes",
                      content_type=blob.content_type if blob.HasField("content_type") else None)
    name = kind.removesuffix("_tensor")
    tensor = getattr(value, kind)
    keys = np.array(tensor.keys, dtype=np.uint64) if len(tensor.keys) else None
    shape = tuple(int(s) for s in tensor.shape) if len(tensor.shape) else None
    return Tensor(values=np.array(tensor.values, dtype=_NUMPY_TYPES[name]), keys=keys, shape=shape, kind=name)


def decode_record(payload: bytes, *, index: int = 0) -> Record:
    """The Record in one payload (as yielded by `iter_records`)."""
    message = _parse(payload, index)
    return Record(features={k: _tensor(v) for k, v in message.features.items()},
                  label={k: _tensor(v) for k, v in message.label.items()},
                  uid=message.uid if message.HasField("uid") else None,
                  metadata=message.metadata if message.HasField("metadata") else None,
                  configuration=message.configuration if message.HasField("configuration") else None)


def _fill(value: Any, tensor: Tensor | np.ndarray | Iterable[float] | float, kind: str = "float32") -> None:
    if not isinstance(tensor, Tensor):
        tensor = Tensor(values=np.atleast_1d(np.asarray(tensor)), kind=kind)
    if tensor.kind == "bytes":
        value.bytes.value.extend(bytes(v) for v in tensor.values)
        if tensor.content_type is not None:
            value.bytes.content_type = tensor.content_type
        return
    target = getattr(value, _TENSOR_FIELDS[tensor.kind])
    target.values.extend(np.asarray(tensor.values, dtype=_NUMPY_TYPES[tensor.kind]).ravel().tolist())
    if tensor.keys is not None:
        target.keys.extend(np.asarray(tensor.keys, dtype=np.uint64).tolist())
    if tensor.shape is not None:
        target.shape.extend(int(s) for s in tensor.shape)
    if not len(target.values) and tensor.keys is None and tensor.shape is None:
        target.SetInParent()  # an empty tensor still says which kind it is


def encode_record(record: Record) -> bytes:
    """The payload of one Record (frame it with `frame_records`)."""
    message = _messages()["Record"]()
    for target, tensors in ((message.features, record.features), (message.label, record.label)):
        for key, tensor in tensors.items():
            _fill(target[key], tensor)
    for name in ("uid", "metadata", "configuration"):
        if getattr(record, name) is not None:
            setattr(message, name, getattr(record, name))
    return message.SerializeToString(deterministic=True)


# -- matrices -----------------------------------------------------------------------------------------------


def _numeric(value: Any, index: int, where: str) -> Any:
    kind = value.WhichOneof("value")
    if kind is None or kind == "bytes":
        raise RecordIOError(index, f"{where} holds {'no value' if kind is None else 'bytes'}; a Float32, Float64 "
                                   "or Int32 tensor is needed.")
    return getattr(value, kind)


class _MatrixBuilder:
    """Rows gathered record by record; the per-record work is kept to the minimum, as channels hold millions."""

    def __init__(self, feature_dim: int | None, dtype: Any):
        self.dtype = dtype
        self.width = feature_dim
        self.width_from = None if feature_dim is None else "feature_dim"
        self.values: list[np.ndarray] = []
        self.columns: list[np.ndarray | None] = []  # None: a dense row
        self.sparse = False
        self.labels: list[Any] = []
        self.label_sizes: set[int] = set()
        self.labelled: bool | None = None

    def _check_width(self, size: int, index: int) -> None:
        if self.width is None:
            self.width, self.width_from = size, f"record {index}"
        elif size != self.width:
            expected = (f"feature_dim is {self.width}" if self.width_from == "feature_dim"
                        else f"{self.width_from} has {self.width}")
            raise RecordIOError(index, f"the record has {size} features, but {expected}.")

    def add(self, message: Any, index: int) -> None:
        features = message.features
        if "values" not in features:
            found = ", ".join(repr(k) for k in features) or "none"
            raise RecordIOError(index, f'the record has no features["values"] tensor (feature keys: {found}).')
        tensor = _numeric(features["values"], index, 'features["values"]')
        count = len(tensor.values)
        values = np.fromiter(tensor.values, self.dtype, count)
        nkeys = len(tensor.keys)
        shape = tensor.shape
        if nkeys or (len(shape) and not count):
            if not len(shape):
                raise RecordIOError(index, f"the sparse feature tensor has {nkeys} keys but no shape; a sparse "
                                           "tensor must declare its shape.")
            if nkeys != count:
                raise RecordIOError(index, f"the sparse feature tensor has {nkeys} keys but {count} values.")
            size = math.prod(shape)
            if nkeys and max(tensor.keys) >= size:
                raise RecordIOError(index, f"sparse key {max(tensor.keys)} is out of range for shape {list(shape)} "
                                           f"(keys must be 0..{size - 1}).")
            self._check_width(size, index)
            self.columns.append(np.fromiter(tensor.keys, np.int64, nkeys))
            self.sparse = True
        else:
            if len(shape) and math.prod(shape) != count:
                raise RecordIOError(index, f"the dense feature tensor has {count} values but shape {list(shape)}.")
            self._check_width(count, index)
            self.columns.append(None)
        self.values.append(values)

        label_map = message.label
        has_label = "values" in label_map
        if self.labelled is None:
            self.labelled = has_label
        elif has_label != self.labelled:
            raise RecordIOError(index, "the record has no label, but earlier records do." if self.labelled else
                                "the record has a label, but earlier records do not.")
        if has_label:
            label = _numeric(label_map["values"], index, 'label["values"]')
            if len(label.keys):
                raise RecordIOError(index, 'label["values"] must be a dense tensor.')
            size = len(label.values)
            if size == 1:
                self.labels.append(label.values[0])
            elif not size:
                raise RecordIOError(index, 'label["values"] is empty.')
            else:
                self.labels.append(list(label.values))
            self.label_sizes.add(size)

    def matrix(self) -> np.ndarray | sp.csr_matrix:
        if not self.values:
            raise RecordIOError(0, "the data holds no records.")
        width = self.width or 0
        if not self.sparse:
            return np.vstack(self.values).astype(self.dtype, copy=False).reshape(len(self.values), width)
        columns = [c if c is not None else np.arange(len(v), dtype=np.int64)
                   for c, v in zip(self.columns, self.values, strict=True)]
        indptr = np.zeros(len(self.values) + 1, dtype=np.int64)
        np.cumsum([len(v) for v in self.values], out=indptr[1:])
        matrix = sp.csr_matrix((np.concatenate(self.values), np.concatenate(columns), indptr),
                               shape=(len(self.values), width))
        matrix.sum_duplicates()
        return matrix

    def label_vector(self, first_index: int) -> np.ndarray | None:
        if not self.labelled:
            return None
        if self.label_sizes == {1}:
            return np.array(self.labels, dtype=np.float32)
        first = len(self.labels[0]) if isinstance(self.labels[0], list) else 1
        for i, value in enumerate(self.labels):
            size = len(value) if isinstance(value, list) else 1
            if size != first:
                raise RecordIOError(first_index + i, f'label["values"] has {size} values, but the first '
                                                     f"record's has {first}.")
        return np.array(self.labels, dtype=np.float32)


def read_matrix(chunks: Iterable[bytes], *, feature_dim: int | None = None, dtype: Any = np.float32,
                first_index: int = 1) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray | None]:
    """Every record of `chunks` (each a whole framed buffer: a file, a request body) as (X, y).

    X holds `features["values"]`: a dense array if every record is dense, else a CSR matrix. y holds
    `label["values"]` (one value per record: a vector; several: an (n, m) array), or None when no record has a
    label. Raises RecordIOError naming the record for an empty input, a wrong or inconsistent number of
    features, a sparse tensor without a shape, keys out of range, or labels on only some records."""
    from google.protobuf.message import DecodeError

    builder = _MatrixBuilder(feature_dim, dtype)
    parse = _messages()["Record"].FromString
    index = first_index
    for chunk in chunks:
        for payload in iter_records(chunk, first_index=index):
            try:
                message = parse(payload)
            except DecodeError as exc:
                raise RecordIOError(index, f"the payload ({len(payload)} bytes) is not a valid aialgs.data.Record "
                                           f"protobuf message: {exc}.") from None
            builder.add(message, index)
            index += 1
    return builder.matrix(), builder.label_vector(first_index)


def write_matrix(x: np.ndarray | sp.spmatrix | sp.sparray, y: np.ndarray | Iterable[float] | None = None, *,
                 kind: str = "float32") -> bytes:
    """Records for the rows of `x` (dense: values only; sparse: values, keys and shape [n_features]) with
    `y[i]` as `label["values"]`, like the SageMaker SDK's writers; tensors are Float32 unless `kind` says
    "float64" or "int32"."""
    if kind not in _TENSOR_FIELDS:
        raise ValueError(f"kind must be one of {', '.join(_TENSOR_FIELDS)}, got {kind!r}.")
    sparse = sp.issparse(x)
    x = sp.csr_matrix(x) if sparse else np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D matrix (one record per row), got {x.ndim} dimension(s).")
    labels = None if y is None else np.asarray(y)
    if labels is not None and labels.shape[0] != x.shape[0]:
        raise ValueError(f"y has {labels.shape[0]} labels for {x.shape[0]} rows of x.")
    numpy_type = _NUMPY_TYPES[kind]
    field = _TENSOR_FIELDS[kind]
    record_class = _messages()["Record"]
    payloads = []
    for i in range(x.shape[0]):
        message = record_class()
        tensor = getattr(message.features["values"], field)
        if sparse:
            start, end = x.indptr[i], x.indptr[i + 1]
            tensor.values.extend(x.data[start:end].astype(numpy_type).tolist())
            tensor.keys.extend(x.indices[start:end].astype(np.uint64).tolist())
            tensor.shape.append(x.shape[1])
        else:
            tensor.values.extend(x[i].astype(numpy_type).tolist())
        if labels is not None:
            getattr(message.label["values"], field).values.extend(
                np.atleast_1d(labels[i]).astype(numpy_type).tolist())
        payloads.append(message.SerializeToString(deterministic=True))
    return frame_records(payloads)


def write_results(rows: Iterable[Mapping[str, float | int | list[float] | np.ndarray]]) -> bytes:
    """Inference results, one Record per row: features empty, each key of the row a Float32 tensor in the
    label map (what the SageMaker SDK's RecordDeserializer reads, e.g. `label["score"].float32_tensor`)."""
    record_class = _messages()["Record"]
    payloads = []
    for row in rows:
        message = record_class()
        for key, value in row.items():
            tensor = message.label[key].float32_tensor
            tensor.values.extend(np.atleast_1d(np.asarray(value, dtype=np.float32)).ravel().tolist())
        payloads.append(message.SerializeToString(deterministic=True))
    return frame_records(payloads)


def read_records(data: bytes, *, first_index: int = 1) -> list[Record]:
    """Every Record in one framed buffer, decoded."""
    return [decode_record(payload, index=first_index + i)
            for i, payload in enumerate(iter_records(data, first_index=first_index))]


def is_recordio(data: bytes) -> bool:
    """True when `data` starts with the recordIO magic number."""
    return len(data) >= 4 and data[:4] == _MAGIC_BYTES
