"""Object2Vec's records: JSON Lines, one pair per line, `{"label": 1, "in0": [6, 17, 606], "in1": [16, 21]}`.

Token ids are integers 0..vocab_size-1 of their encoder; the label is a class id 0..num_classes-1 (softmax) or
a number (mean_squared_error). Errors name the channel, file, line and field.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from sagelab.algorithms.base import DataError
from sagelab.algorithms.data import data_files


@dataclasses.dataclass
class Pairs:
    in0: list[list[int]]
    in1: list[list[int]]
    labels: list[float]

    def __len__(self) -> int:
        return len(self.labels)


def tokens(value: Any, where: str, field: str, vocab_size: int) -> list[int]:
    if not isinstance(value, list) or not value:
        raise DataError(f'{where}: "{field}" must be a non-empty list of token ids, got {json.dumps(value)[:80]}.')
    for i, token in enumerate(value):
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < vocab_size:
            raise DataError(f'{where}: "{field}"[{i}] is {json.dumps(token)}; token ids are integers 0..'
                            f"{vocab_size - 1} (the vocabulary size is {vocab_size}).")
    return value


def _file_name(path: Path) -> str:
    head, _, rest = path.name.partition("-")
    return rest if head.isdigit() and rest else path.name


def read_pairs(name: str, files: list[Path], vocab: tuple[int, int], classes: int | None) -> Pairs:
    """Every pair of a channel; `classes` None for regression."""
    found = data_files(files)
    if not found:
        raise DataError(f"Channel '{name}' has no data: no non-empty files were found under its S3 location.")
    pairs = Pairs([], [], [])
    for path in found:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"Channel '{name}', file {_file_name(path)}: not UTF-8 JSON Lines.") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"Channel '{name}', file {_file_name(path)}, line {number}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).") from None
            if not isinstance(entry, dict):
                raise DataError(f'{where}: expected {{"label": ..., "in0": [...], "in1": [...]}}.')
            for field in ("label", "in0", "in1"):
                if field not in entry:
                    raise DataError(f'{where}: the record has no "{field}" field.')
            label = entry["label"]
            if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
                raise DataError(f'{where}: "label" must be a number, got {json.dumps(label)}.')
            if classes is not None and (label != int(label) or not 0 <= label < classes):
                raise DataError(f'{where}: "label" is {json.dumps(label)}; with output_layer softmax it is a class id '
                                f"0..{classes - 1} (num_classes={classes}).")
            pairs.in0.append(tokens(entry["in0"], where, "in0", vocab[0]))
            pairs.in1.append(tokens(entry["in1"], where, "in1", vocab[1]))
            pairs.labels.append(float(label))
    if not len(pairs):
        raise DataError(f"Channel '{name}' holds no pairs.")
    return pairs
