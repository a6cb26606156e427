"""The image inputs of SageMaker's image algorithms (image classification, object detection, semantic
segmentation), read without MXNet.

- RecordIO (`application/x-recordio`, `.rec` files, as MXNet's im2rec writes them): the recordIO framing of
  `first_party.recordio`, each payload an image record: a 24-byte header (`flag` uint32, `label` float32,
  `id` and `id2` uint64), then `flag` float32 labels when `flag` > 0 (the header's own label is then unused),
  then the encoded image (JPEG or PNG).
- `.lst` files: one image per line, tab-separated: an integer index, one or more labels, the image's path
  relative to the image channel.
- Images are decoded with Pillow; an image that does not decode names its record or file.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from sagelab.algorithms.base import DataError
from sagelab.algorithms.first_party.recordio import RecordIOError, frame_records, iter_records

RECORDIO = "application/x-recordio"
IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
_IMAGE_HEADER = struct.Struct("<IfQQ")
#: How encoded images begin (JPEG, PNG, GIF, BMP, WebP, TIFF); an image record begins with its header instead.
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")


@dataclass(frozen=True)
class ImageRecord:
    labels: np.ndarray  # float32; one value for a class label, more for boxes or multi-label
    image: bytes  # the encoded image
    id: int = 0


def is_encoded_image(payload: bytes) -> bool:
    """Whether a recordIO payload is a bare encoded image (an augmented manifest's `source-ref` record) rather
    than an image record with its header (a `.rec` file)."""
    return payload.startswith(_IMAGE_SIGNATURES)


def pack_image_record(labels: float | Sequence[float], image: bytes, *, id: int = 0) -> bytes:
    """One image record's payload, as MXNet's `recordio.pack` writes it."""
    values = np.atleast_1d(np.asarray(labels, dtype=np.float32))
    if values.size == 1:
        return _IMAGE_HEADER.pack(0, float(values[0]), id, 0) + image
    return _IMAGE_HEADER.pack(values.size, 0.0, id, 0) + values.tobytes() + image


def unpack_image_record(payload: bytes, *, where: str) -> ImageRecord:
    if len(payload) < _IMAGE_HEADER.size:
        raise DataError(f"{where}: {len(payload)} bytes are too few for an image record header "
                        f"({_IMAGE_HEADER.size} bytes: flag, label, id, id2).")
    flag, label, record_id, _ = _IMAGE_HEADER.unpack_from(payload)
    start = _IMAGE_HEADER.size
    if flag == 0:
        return ImageRecord(np.array([label], dtype=np.float32), payload[start:], record_id)
    end = start + 4 * flag
    if end > len(payload):
        raise DataError(f"{where}: the header announces {flag} labels but the record holds only "
                        f"{len(payload) - start} bytes after it.")
    return ImageRecord(np.frombuffer(payload[start:end], dtype=np.float32).copy(), payload[end:], record_id)


def write_recordio(records: Iterable[tuple[float | Sequence[float], bytes]]) -> bytes:
    """A `.rec` file's bytes from (labels, encoded image) pairs."""
    return frame_records(pack_image_record(labels, image, id=i) for i, (labels, image) in enumerate(records))


def read_recordio(data: bytes, *, source: str) -> Iterator[ImageRecord]:
    """The image records of a `.rec` file; `source` names the file in errors."""
    index = 0
    try:
        for index, payload in enumerate(iter_records(data), start=1):
            yield unpack_image_record(payload, where=f"{source}, record {index}")
    except RecordIOError as exc:
        raise DataError(f"{source}: {exc}") from None


@dataclass(frozen=True)
class ListEntry:
    index: int
    labels: np.ndarray
    path: str


def read_lst(text: str, *, source: str) -> list[ListEntry]:
    """The entries of a `.lst` file: index, label(s), relative path, separated by tabs."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) < 3:
            raise DataError(f"{source}, line {number}: expected tab-separated index, label(s) and image path; "
                            f"got {len(fields)} field(s): {line[:100]!r}.")
        try:
            index = int(float(fields[0]))
            labels = np.array([float(v) for v in fields[1:-1]], dtype=np.float32)
        except ValueError:
            raise DataError(f"{source}, line {number}: the index and labels must be numbers; got "
                            f"{fields[:-1]!r}.") from None
        entries.append(ListEntry(index, labels, fields[-1]))
    return entries


def decode_image(data: bytes, *, where: str, mode: str = "RGB") -> np.ndarray:
    """An encoded image as a uint8 array (height, width, 3) for RGB or (height, width) for a mask ("L" or "P"
    keeps palette indices as they are)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if mode == "RGB" or image.mode not in ("L", "P"):
                image = image.convert(mode if mode == "RGB" else "L")
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{where}: the image does not decode ({type(exc).__name__}: {exc}).") from None


def encode_png(pixels: np.ndarray) -> bytes:
    """A uint8 array (h, w) or (h, w, 3) as PNG bytes (masks are written this way)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(pixels: np.ndarray, *, quality: int = 95) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def resize(pixels: np.ndarray, height: int, width: int, *, nearest: bool = False) -> np.ndarray:
    """Resized with Pillow: bilinear for images, nearest for masks (class ids must not blend)."""
    from PIL import Image

    if pixels.shape[:2] == (height, width):
        return pixels
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(pixels).resize((width, height), resample))
