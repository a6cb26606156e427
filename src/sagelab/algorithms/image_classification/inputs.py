"""Image classification's training inputs, in the three forms SageMaker documents, as decoded images of one
size and their labels.

- RecordIO (`application/x-recordio`): `.rec` image records in `train` / `validation` (`vision.records`).
- Images (`application/x-image`, `image/jpeg`, `image/png`): the image files in `train` / `validation`, listed
  by the `.lst` files of `train_lst` / `validation_lst` with paths relative to the image channel.
- Augmented manifest (`application/x-recordio`, RecordWrapperType RecordIO, AttributeNames
  ["source-ref", "class"]): the stream alternates an image's bytes and its class attribute. Such a stream is told
  from a `.rec` file by its first record: raw image bytes (JPEG, PNG, ...) rather than an image record header.

Labels: a class id in 0..num_classes-1; with multi_label, a multi-hot vector of num_classes values, or a list
of class ids (the augmented manifest's `label-format=class-id` content-type parameter; `multi-hot` forces the
vector reading).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from sagelab.algorithms.base import Channel, DataError, split_content_type
from sagelab.algorithms.first_party.io import manifest_pairs
from sagelab.algorithms.first_party.recordio import RecordIOError, iter_records
from sagelab.algorithms.vision import records

RECORDIO = records.RECORDIO
IMAGE_TYPES = records.IMAGE_TYPES


@dataclass(frozen=True)
class Geometry:
    """How every image is brought to the network's input size."""

    height: int
    width: int
    resize: int | None = None

    @classmethod
    def of(cls, settings: dict) -> Geometry:
        """The geometry a model's settings (`model.json`) name."""
        return cls(settings["height"], settings["width"], settings["resize"])

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """Shortest side to `resize` (when set), scaled up if it is still smaller than the input, then the
        centre crop of height x width."""
        h, w = pixels.shape[:2]
        scale = self.resize / min(h, w) if self.resize else 1.0
        scale = max(scale, self.height / h, self.width / w)
        if scale != 1.0:
            pixels = records.resize(pixels, max(self.height, round(h * scale)), max(self.width, round(w * scale)))
        h, w = pixels.shape[:2]
        top, left = (h - self.height) // 2, (w - self.width) // 2
        return np.ascontiguousarray(pixels[top:top + self.height, left:left + self.width])


@dataclass
class Images:
    pixels: np.ndarray  # uint8 (n, height, width, 3)
    labels: np.ndarray  # int64 (n,) class ids, or float32 (n, num_classes) multi-hot

    def __len__(self) -> int:
        return len(self.pixels)


class Reader:
    def __init__(self, geometry: Geometry, num_classes: int, multi_label: bool):
        self.geometry, self.num_classes, self.multi_label = geometry, num_classes, multi_label

    def channel(self, channels: dict[str, Channel], name: str) -> Images | None:
        channel = channels.get(name)
        if channel is None:
            return None
        kind, params = split_content_type(channel.content_type or RECORDIO)
        pixels: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        if kind == RECORDIO:
            files = [p for p in channel.files if p.name.endswith(".rec")] or _data_files(channel.files)
            for path in files:
                where = f"Channel '{name}', file {_file_name(path)}"
                self._recordio(path.read_bytes(), where, params.get("label-format", ""), pixels, labels)
        elif kind in IMAGE_TYPES:
            self._listed(channels, channel, pixels, labels)
        else:
            raise DataError(f"Channel '{name}': content type {channel.content_type!r} is not supported. Supported: "
                            f"{RECORDIO}, {', '.join(IMAGE_TYPES)}.")
        if not pixels:
            raise DataError(f"Channel '{name}' holds no images.")
        return Images(np.stack(pixels), np.stack(labels) if self.multi_label else np.array(labels, dtype=np.int64))

    def _recordio(self, data: bytes, where: str, label_format: str, pixels: list, labels: list) -> None:
        try:
            items = list(iter_records(data))
        except RecordIOError as exc:
            raise DataError(f"{where}: {exc}") from None
        if items and records.is_encoded_image(items[0]):
            self._augmented(items, where, label_format, pixels, labels)
            return
        for index, payload in enumerate(items, start=1):
            at = f"{where}, record {index}"
            record = records.unpack_image_record(payload, where=at)
            pixels.append(self.geometry.prepare(records.decode_image(record.image, where=at)))
            labels.append(self.label(record.labels, at))

    def _augmented(self, items: list[bytes], where: str, label_format: str, pixels: list, labels: list) -> None:
        pairs_of = 'image and class (AttributeNames ["source-ref", "class"])'
        for at, image, label in manifest_pairs(items, where, pairs_of):
            try:
                value = json.loads(label.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise DataError(f"{at}: the class attribute must be a number or a JSON list of numbers, got "
                                f"{label[:60]!r}.") from None
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise DataError(f"{at}: the class attribute must be a number, got {value!r}.") from None
            try:
                values = np.atleast_1d(np.asarray(value, dtype=np.float32))
            except (TypeError, ValueError):
                raise DataError(f"{at}: the class attribute must be a number or a list of numbers, got "
                                f"{value!r}.") from None
            pixels.append(self.geometry.prepare(records.decode_image(image, where=at)))
            labels.append(self.label(values.ravel(), at, label_format))

    def _listed(self, channels: dict[str, Channel], channel: Channel, pixels: list, labels: list) -> None:
        lst_name = f"{channel.name}_lst"
        lst = channels.get(lst_name)
        if lst is None:
            raise DataError(f"Channel '{channel.name}' holds images ({channel.content_type}): the job needs a "
                            f"'{lst_name}' channel with .lst files (index, label(s), relative path per line).")
        by_key = _files_by_key(channel)
        lst_files = [p for p in lst.files if p.name.endswith(".lst")] or _data_files(lst.files)
        if not lst_files:
            raise DataError(f"Channel '{lst_name}' holds no .lst file.")
        for path in lst_files:
            source = f"Channel '{lst_name}', file {_file_name(path)}"
            try:
                text = path.read_text("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{source}: a .lst file must be UTF-8 text.") from None
            numbers = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
            for number, entry in zip(numbers, records.read_lst(text, source=source), strict=True):
                at = f"{source}, line {number}"
                relative = str(PurePosixPath(entry.path.strip().lstrip("/")))
                image = by_key.get(relative)
                if image is None:
                    raise DataError(f"{at}: image {entry.path!r} is not in channel '{channel.name}' (paths are "
                                    f"relative to the channel's S3 location).")
                where = f"Channel '{channel.name}', image {relative} ({at})"
                pixels.append(self.geometry.prepare(records.decode_image(image.read_bytes(), where=where)))
                labels.append(self.label(entry.labels, at))

    def label(self, values: np.ndarray, where: str, label_format: str = "") -> np.ndarray:
        """A class id (int64 scalar) or, with multi_label, a multi-hot float32 vector."""
        k = self.num_classes
        if values.size == 0:
            raise DataError(f"{where}: the record has no label.")
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)) or np.any(values < 0):
            raise DataError(f"{where}: labels must be non-negative integers, got {values.tolist()}.")
        if not self.multi_label:
            label = int(values[0])
            if label >= k:
                raise DataError(f"{where}: label {label} is out of range: num_classes is {k}, so class labels are "
                                f"0..{k - 1}.")
            return np.int64(label)
        multi_hot = label_format == "multi-hot" or (
            label_format != "class-id" and values.size == k and np.all(values <= 1) and k > 1)
        if multi_hot:
            if values.size != k or np.any(values > 1):
                raise DataError(f"{where}: a multi-hot label needs num_classes ({k}) values of 0 or 1, got "
                                f"{values.tolist()}.")
            return values.astype(np.float32)
        if np.any(values >= k):
            raise DataError(f"{where}: class id {int(values.max())} is out of range: num_classes is {k}, so class "
                            f"ids are 0..{k - 1}.")
        out = np.zeros(k, dtype=np.float32)
        out[values.astype(np.int64)] = 1.0
        return out


def _file_name(path: Path) -> str:
    # Downloaded objects are stored as <index>-<name>; the name alone is what the user uploaded.
    name = path.name
    head, sep, rest = name.partition("-")
    return rest if sep and head.isdigit() and len(head) == 5 else name


def _data_files(files: list[Path]) -> list[Path]:
    return [p for p in files if p.is_file() and p.stat().st_size > 0]


def _files_by_key(channel: Channel) -> dict[str, Path]:
    keys = channel.keys if len(channel.keys) == len(channel.files) else [_file_name(p) for p in channel.files]
    return {str(PurePosixPath(key.lstrip("/"))): path for key, path in zip(keys, channel.files, strict=True)}
