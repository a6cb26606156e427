"""The inference toolkits' default decoders and encoders: JSON, CSV and NPY to and from NumPy arrays.

As in the SageMaker inference toolkit: JSON is `np.array(json.loads(body))`, CSV is read with
`np.genfromtxt(..., delimiter=",")` (so one row decodes to one dimension), NPY with `np.load` and no
pickles. Encoding takes arrays, lists, scalars (and tensors, through `tolist()`) to the Accept type.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from sagelab.algorithms.base import InferenceError

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
SUPPORTED = (JSON, CSV, NPY)
#: Types whose bodies are text: their arrays are decoded as numbers of the default float type.
UTF8_TYPES = (JSON, CSV)


def decode(body: bytes, content_type: str) -> np.ndarray:
    if content_type == JSON:
        try:
            return np.array(json.loads(body))
        except ValueError as exc:
            raise InferenceError(400, f"The request body is not valid JSON: {exc}.") from None
    if content_type == CSV:
        try:
            return np.genfromtxt(io.StringIO(body.decode("utf-8")), delimiter=",")
        except (ValueError, UnicodeDecodeError) as exc:
            raise InferenceError(400, f"The request body is not valid CSV: {exc}.") from None
    if content_type == NPY:
        try:
            return np.load(io.BytesIO(body), allow_pickle=False)
        except ValueError as exc:
            raise InferenceError(400, f"The request body is not a valid .npy array: {exc}.") from None
    raise InferenceError(415, f"Content type {content_type or '(none)'} is not supported by the default input_fn: "
                         f"expected one of {', '.join(SUPPORTED)}. Define input_fn to read other types.")


def _plain(value: Any) -> Any:
    """numpy arrays and torch tensors -> lists, recursively through lists, tuples and dicts."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def encode(prediction: Any, accept: str) -> bytes:
    if accept == JSON:
        return json.dumps(_plain(prediction)).encode("utf-8")
    if accept == CSV:
        stream = io.StringIO()
        array = np.array(_plain(prediction))
        np.savetxt(stream, array if array.ndim else array.reshape(1), delimiter=",", fmt="%s")
        return stream.getvalue().encode("utf-8")
    if accept == NPY:
        stream = io.BytesIO()
        np.save(stream, np.asarray(_plain(prediction)), allow_pickle=False)
        return stream.getvalue()
    raise InferenceError(406, f"Accept {accept} is not supported by the default output_fn: expected one of "
                         f"{', '.join(SUPPORTED)}. Define output_fn to write other types.")
