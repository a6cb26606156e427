"""Semantic Segmentation's training input: images paired with their masks, checked.

- Image channels (`train`, `validation`; image/jpeg, image/png or application/x-image): each image is paired
  with the same-named PNG in `train_annotation` / `validation_annotation` (`coffee.jpg` with `coffee.png`).
- Masks are single-channel 8-bit PNGs (grayscale or palette "P" mode: the palette indices are the values).
  255 is "ignore" (no loss, not counted in the metrics): the documentation names no ignore value, but
  num_classes stops at 254 and SageMaker's own example trains on PASCAL VOC masks, whose object borders are 255.
- The optional `label_map` channel holds `train_label_map.json` / `validation_label_map.json`:
  `{"scale": "3"}` maps a mask value v to floor(v / 3); `{"map": {"0": 5, "1": 0}}` maps encoded value 5 to
  class 0 and 0 to class 1 (a value the map does not list is an error). Without one, values are class ids.
- Augmented manifest (`application/x-recordio`, AttributeNames ["source-ref", "<x>-ref"], RecordWrapperType
  RecordIO): the channel is one stream whose records alternate image and mask.
Errors name the channel, the file (or record) and what was wrong.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from sagelab.algorithms.base import Channel, DataError, split_content_type
from sagelab.algorithms.first_party.io import manifest_pairs
from sagelab.algorithms.first_party.recordio import RecordIOError, iter_records
from sagelab.algorithms.vision.records import decode_image

IGNORE = 255
RECORDIO = "application/x-recordio"
IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
JSON = "application/json"


@dataclasses.dataclass
class Sample:
    name: str
    #: the encoded image (checked to decode when read): decoded per use, so a channel of large photos is held
    #: in memory at its compressed size
    encoded: bytes
    mask: np.ndarray  # uint8 (h, w): class ids, 255 ignored

    @property
    def image(self) -> np.ndarray:
        """uint8 (h, w, 3)."""
        return decode_image(self.encoded, where=self.name)


def _names(channel: Channel) -> list[tuple[str, Path]]:
    """(the object's key relative to the channel, its local file) for each non-empty file."""
    keys = channel.keys if len(channel.keys) == len(channel.files) else []
    out = []
    for index, path in enumerate(channel.files):
        if not path.is_file() or path.stat().st_size == 0:
            continue
        if keys:
            name = keys[index]
        else:
            head, _, rest = path.name.partition("-")
            name = rest if head.isdigit() and rest else path.name
        out.append((name, path))
    return out


def _stem(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


@dataclasses.dataclass(frozen=True)
class LabelMap:
    scale: float = 1.0
    mapping: dict[int, int] | None = None  # encoded value -> class id
    source: str = "the default label map (scale 1)"

    def apply(self, mask: np.ndarray, where: str) -> np.ndarray:
        ignore = mask == IGNORE
        if self.mapping is not None:
            lut = np.full(256, -1, dtype=np.int32)
            for encoded, label in self.mapping.items():
                lut[encoded] = label
            mapped = lut[mask]
            unknown = (mapped < 0) & ~ignore
            if unknown.any():
                row, col = (int(v[0]) for v in np.nonzero(unknown))
                raise DataError(f"{where}: pixel ({row}, {col}) has value {int(mask[row, col])}, which {self.source} "
                                "does not map to a class.")
        elif self.scale != 1:
            mapped = np.floor(mask / self.scale).astype(np.int32)
        else:
            mapped = mask.astype(np.int32)
        mapped[ignore] = IGNORE
        return mapped


def read_label_maps(channel: Channel | None) -> dict[str, LabelMap]:
    """{"train": LabelMap, "validation": LabelMap} for the label maps the channel holds."""
    if channel is None:
        return {}
    maps: dict[str, LabelMap] = {}
    for name, path in _names(channel):
        base = name.rsplit("/", 1)[-1]
        for prefix in ("train", "validation"):
            if base == f"{prefix}_label_map.json":
                maps[prefix] = _label_map(path.read_bytes(), f"Channel 'label_map', file {base}")
    return maps


def _label_map(data: bytes, where: str) -> LabelMap:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{where}: not valid JSON ({exc}).") from None
    if not isinstance(document, dict) or not ({"scale", "map"} & set(document)):
        raise DataError(f'{where}: expected {{"scale": "<number>"}} or {{"map": {{"<class id>": <encoded value>, '
                        "...}}}.")
    if "map" in document:
        raw = document["map"]
        if not isinstance(raw, dict) or not raw:
            raise DataError(f'{where}: "map" must be a non-empty object {{"<class id>": <encoded value>}}.')
        mapping: dict[int, int] = {}
        for label, encoded in raw.items():
            try:
                label_id, value = int(label), int(encoded)
            except (TypeError, ValueError):
                raise DataError(f'{where}: "map" entry {label!r}: {encoded!r} must map a class id to an encoded '
                                "pixel value (integers).") from None
            if not 0 <= value <= 254 or not 0 <= label_id <= 254:
                raise DataError(f'{where}: "map" entry {label!r}: {encoded!r}: class ids and encoded values are '
                                "0..254 (255 is ignored).")
            mapping[value] = label_id
        return LabelMap(mapping=mapping, source=where.split(", ", 1)[-1])
    try:
        scale = float(document["scale"])
    except (TypeError, ValueError):
        scale = math.nan
    if not math.isfinite(scale) or scale <= 0:
        raise DataError(f'{where}: "scale" must be a positive number, got {document["scale"]!r}.')
    return LabelMap(scale=scale, source=where.split(", ", 1)[-1])


def _checked_mask(mask: np.ndarray, image: np.ndarray, label_map: LabelMap, num_classes: int,
                  where: str) -> np.ndarray:
    if mask.ndim != 2:
        raise DataError(f"{where}: a mask must be a single-channel 8-bit PNG, got shape {mask.shape}.")
    if mask.shape != image.shape[:2]:
        raise DataError(f"{where}: the mask is {mask.shape[1]}x{mask.shape[0]} pixels but its image is "
                        f"{image.shape[1]}x{image.shape[0]}.")
    mapped = label_map.apply(mask, where)
    bad = (mapped >= num_classes) & (mapped != IGNORE)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise DataError(f"{where}: pixel ({row}, {col}) is class {int(mapped[row, col])} (mask value "
                        f"{int(mask[row, col])}); class ids are 0..{num_classes - 1} (num_classes={num_classes}) "
                        f"and 255 is ignored.")
    return mapped.astype(np.uint8)


def read_samples(images: Channel, annotations: Channel | None, label_map: LabelMap, num_classes: int) -> list[Sample]:
    """The (image, mask) samples of `images` (an image channel with its annotation channel, or an augmented
    manifest stream)."""
    kind, _ = split_content_type(images.content_type)
    if kind == RECORDIO:
        return _augmented(images, label_map, num_classes)
    if kind not in IMAGE_TYPES:
        raise DataError(f"Channel '{images.name}': content type {images.content_type!r} is not supported; expected "
                        f"{', '.join(IMAGE_TYPES)} (with an annotation channel) or {RECORDIO} (augmented manifest).")
    annotation_name = f"{images.name}_annotation"
    if annotations is None:
        raise DataError(f"Channel '{annotation_name}' is required with the image channel '{images.name}': it holds "
                        "one PNG mask per image, with the image's name.")
    masks: dict[str, tuple[str, Path]] = {}
    for name, path in _names(annotations):
        masks.setdefault(_stem(name), (name, path))
    files = _names(images)
    if not files:
        raise DataError(f"Channel '{images.name}' has no data: no non-empty files were found under its S3 location.")
    samples = []
    for name, path in files:
        where = f"Channel '{images.name}', file {name}"
        found = masks.get(_stem(name))
        if found is None:
            raise DataError(f"{where}: no mask for this image in channel '{annotation_name}' (expected "
                            f"{_stem(name)}.png there).")
        encoded = path.read_bytes()
        image = decode_image(encoded, where=where)
        mask_where = f"Channel '{annotation_name}', file {found[0]}"
        mask = decode_image(found[1].read_bytes(), where=mask_where, mode="L")
        samples.append(Sample(where, encoded, _checked_mask(mask, image, label_map, num_classes, mask_where)))
    return samples


def _augmented(channel: Channel, label_map: LabelMap, num_classes: int) -> list[Sample]:
    samples = []
    for name, path in _names(channel):
        where = f"Channel '{channel.name}', file {name}"
        try:
            items = list(iter_records(path.read_bytes()))
        except RecordIOError as exc:
            raise DataError(f"{where}: {exc}") from None
        pairs_of = 'image and mask (AttributeNames ["source-ref", "<label>-ref"])'
        for at, encoded_image, encoded_mask in manifest_pairs(items, where, pairs_of):
            image = decode_image(encoded_image, where=f"{at} (source-ref image)")
            mask = decode_image(encoded_mask, where=f"{at} (mask)", mode="L")
            samples.append(Sample(at, encoded_image, _checked_mask(mask, image, label_map, num_classes, f"{at} (mask)")))
    if not samples:
        raise DataError(f"Channel '{channel.name}' holds no images: the augmented manifest stream is empty.")
    return samples
