"""Object Detection's training input, read into images resized to `image_shape` and their boxes.

Three forms, as SageMaker documents them (DG `object-detection`):
- RecordIO (`application/x-recordio`, `.rec` files written by MXNet's im2rec): each record's float labels are
  [header width A (2), object width B (5 or more), A - 2 further header values, then B values per object:
  class_id, xmin, ymin, xmax, ymax (corners normalised to [0, 1]), ...]; -1 values are padding (to a fixed label
  length, as MXNet's detection iterators pad to label_width) and are skipped.
- Images (`image/jpeg`, `image/png`, `application/x-image`) in `train`/`validation`, each described by a JSON
  file in `train_annotation`/`validation_annotation`: `{"file": "<image name>", "image_size": [{"width",
  "height", "depth"}], "annotations": [{"class_id", "left", "top", "width", "height"}], "categories": [...]}`,
  boxes in pixels of that image size.
- An augmented manifest (`application/x-recordio`, AttributeNames ["source-ref", "<label attribute>"],
  RecordWrapperType RecordIO): the records alternate the image's bytes and Ground Truth's bounding-box label,
  the same JSON as an annotation file without "file". It is told from a .rec file by its first record, which
  is an encoded image rather than an image record header.
Errors name the channel, the file, the record or annotation and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import Channel, DataError, split_content_type
from sagelab.algorithms.data import data_files
from sagelab.algorithms.first_party.io import manifest_pairs
from sagelab.algorithms.first_party.recordio import RecordIOError, iter_records
from sagelab.algorithms.vision import records

RECORDIO = records.RECORDIO
IMAGE_TYPES = records.IMAGE_TYPES
JSON = "application/json"


@dataclass
class Samples:
    """Images resized to a square (n, size, size, 3) uint8, and each image's boxes: a float32 (objects, 5) array
    of class_id, xmin, ymin, xmax, ymax (normalised)."""

    images: np.ndarray
    boxes: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.boxes)


def _name(path: Path, key: str | None = None) -> str:
    if key:
        return key
    head, _, rest = path.name.partition("-")
    return rest if head.isdigit() and rest else path.name


class _Reader:
    def __init__(self, size: int, num_classes: int, label_width: int):
        self.size, self.num_classes, self.label_width = size, num_classes, label_width
        self.images: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []

    def add(self, data: bytes, boxes: np.ndarray, where: str) -> None:
        pixels = records.decode_image(data, where=where)
        self.images.append(records.resize(pixels, self.size, self.size))
        self.boxes.append(boxes)

    def check(self, boxes: np.ndarray, where: str) -> np.ndarray:
        for number, (class_id, *corners) in enumerate(boxes.tolist(), start=1):
            at = f"{where}, object {number}"
            if not float(class_id).is_integer() or not 0 <= class_id < self.num_classes:
                raise DataError(f"{at}: class_id is {class_id:g}; with num_classes {self.num_classes} it must be "
                                f"an integer 0..{self.num_classes - 1}.")
            if not all(np.isfinite(corners)) or min(corners) < -0.01 or max(corners) > 1.01:
                raise DataError(f"{at}: the corners (xmin, ymin, xmax, ymax) {corners} must be normalised to "
                                "[0, 1].")
            if corners[2] <= corners[0] or corners[3] <= corners[1]:
                raise DataError(f"{at}: the box {corners} is empty: xmax must exceed xmin and ymax exceed ymin.")
        out = boxes.astype(np.float32).reshape(-1, 5)
        out[:, 1:] = out[:, 1:].clip(0.0, 1.0)
        return out

    def samples(self) -> Samples:
        return Samples(np.stack(self.images), self.boxes)

    # -- RecordIO .rec ---------------------------------------------------------------------------------------

    def record_labels(self, labels: np.ndarray, where: str) -> np.ndarray:
        if labels.size > self.label_width:
            raise DataError(f"{where}: the label holds {labels.size} values, more than label_width "
                            f"{self.label_width}; raise label_width.")
        if labels.size < 2:
            raise DataError(f"{where}: the label holds {labels.size} value(s); expected [header width, object "
                            "width, ..., then class_id, xmin, ymin, xmax, ymax per object].")
        header, width = labels[0], labels[1]
        if not (float(header).is_integer() and 2 <= header <= labels.size and float(width).is_integer()
                and width >= 5):
            raise DataError(f"{where}: the label starts with header width {header:g} and object width {width:g}; "
                            "expected a header width of at least 2 and an object width of at least 5.")
        body = labels[int(header):]
        spare = body.size % int(width)
        if spare and np.all(body[-spare:] == -1):  # padded with -1 to a fixed length, as MXNet's iterators pad
            body = body[:-spare]
        if body.size % int(width):
            raise DataError(f"{where}: {body.size} label values after the header are not whole objects of "
                            f"{int(width)} values (class_id, xmin, ymin, xmax, ymax, ...).")
        objects = body.reshape(-1, int(width))[:, :5]
        return self.check(objects[objects[:, 0] != -1], where)

    def read_rec(self, data: bytes, where: str) -> None:
        for index, record in enumerate(records.read_recordio(data, source=where), start=1):
            at = f"{where}, record {index}"
            self.add(record.image, self.record_labels(record.labels, at), at)

    # -- annotation JSON -------------------------------------------------------------------------------------

    def annotation_boxes(self, document: Any, where: str, pixels: tuple[int, int] | None) -> np.ndarray:
        if not isinstance(document, dict) or not isinstance(document.get("annotations"), list):
            raise DataError(f'{where}: expected an object with "annotations": [{{"class_id", "left", "top", '
                            '"width", "height"}, ...] and "image_size": [{"width", "height", "depth"}].')
        width, height = self.image_size(document, where, pixels)
        rows = []
        for number, item in enumerate(document["annotations"], start=1):
            at = f"{where}, annotation {number}"
            if not isinstance(item, dict):
                raise DataError(f"{at}: expected an object with class_id, left, top, width, height.")
            values = []
            for field in ("class_id", "left", "top", "width", "height"):
                value = item.get(field)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise DataError(f'{at}: "{field}" must be a number, got {json.dumps(value)}.')
                values.append(float(value))
            class_id, left, top, w, h = values
            rows.append([class_id, left / width, top / height, (left + w) / width, (top + h) / height])
        return self.check(np.array(rows, dtype=np.float64).reshape(-1, 5), where)

    @staticmethod
    def image_size(document: dict, where: str, pixels: tuple[int, int] | None) -> tuple[float, float]:
        sizes = document.get("image_size")
        if sizes is None and pixels is not None:
            return pixels
        size = sizes[0] if isinstance(sizes, list) and sizes else sizes
        try:
            width, height = float(size["width"]), float(size["height"])
            if width <= 0 or height <= 0:
                raise ValueError
        except (TypeError, KeyError, ValueError):
            raise DataError(f'{where}: "image_size" must be [{{"width": <pixels>, "height": <pixels>, "depth": 3}}],'
                            f" got {json.dumps(sizes)}.") from None
        return width, height

    def read_augmented(self, items: list[bytes], where: str) -> None:
        pairs_of = 'image and bounding-box label (AttributeNames ["source-ref", "<label>"])'
        for at, image, label in manifest_pairs(items, where, pairs_of):
            try:
                document = json.loads(label.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DataError(f"{at}: the label attribute is not JSON ({exc}); expected Ground Truth's "
                                'bounding-box label {"annotations": [...], "image_size": [...]}.') from None
            pixels = records.decode_image(image, where=at)
            boxes = self.annotation_boxes(document, at, (pixels.shape[1], pixels.shape[0]))
            self.images.append(records.resize(pixels, self.size, self.size))
            self.boxes.append(boxes)


def read_channel(channels: dict[str, Channel], name: str, *, size: int, num_classes: int,
                 label_width: int) -> Samples | None:
    """The images and boxes of channel `name` (train or validation); None when the job has no such channel."""
    channel = channels.get(name)
    if channel is None:
        return None
    reader = _Reader(size, num_classes, label_width)
    kind, _ = split_content_type(channel.content_type or RECORDIO)
    if kind not in (RECORDIO, *IMAGE_TYPES):
        raise DataError(f"Channel '{name}': content type {channel.content_type!r} is not supported. Supported: "
                        f"{', '.join((RECORDIO, *IMAGE_TYPES))}.")
    named = _named_files(channel)
    if not named:
        raise DataError(f"Channel '{name}' has no data: no non-empty files were found under its S3 location.")
    if kind == RECORDIO:
        for label, path in named:
            where = f"Channel '{name}', file {label}"
            data = path.read_bytes()
            try:
                first = next(iter_records(data), b"")
                augmented = records.is_encoded_image(first)
                if augmented:
                    reader.read_augmented(list(iter_records(data)), where)
            except RecordIOError as exc:
                raise DataError(f"{where}: {exc}") from None
            if not augmented:
                reader.read_rec(data, where)
    else:
        _read_images(reader, channels, name, named)
    if not reader.boxes:
        raise DataError(f"Channel '{name}' holds no images.")
    return reader.samples()


def _named_files(channel: Channel) -> list[tuple[str, Path]]:
    keys = dict(zip(channel.files, channel.keys, strict=False)) if channel.keys else {}
    return [(_name(path, keys.get(path)), path) for path in data_files(channel.files)]


def _read_images(reader: _Reader, channels: dict[str, Channel], name: str, images: list[tuple[str, Path]]) -> None:
    annotation_name = f"{name}_annotation"
    annotations = channels.get(annotation_name)
    if annotations is None:
        raise DataError(f"Channel '{name}' holds images, which need a '{annotation_name}' channel of annotation "
                        "JSON files (one per image).")
    by_name: dict[str, Path] = {}
    for label, path in images:
        by_name.setdefault(label, path)
        by_name.setdefault(label.rsplit("/", 1)[-1], path)
    for label, path in _named_files(annotations):
        where = f"Channel '{annotation_name}', file {label}"
        try:
            document = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{where}: not valid JSON ({exc}).") from None
        file = document.get("file") if isinstance(document, dict) else None
        if not isinstance(file, str) or not file:
            raise DataError(f'{where}: expected "file": the name of its image in channel \'{name}\'.')
        image = by_name.get(file) or by_name.get(file.rsplit("/", 1)[-1])
        if image is None:
            raise DataError(f"{where}: \"file\" names {file!r}, which channel '{name}' does not hold.")
        reader.add(image.read_bytes(), reader.annotation_boxes(document, where, None), f"Channel '{name}', file {file}")
