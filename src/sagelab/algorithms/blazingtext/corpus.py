"""BlazingText's training input, checked and written as the one text file fastText reads.

Word2Vec modes: plain text, one (tokenized) sentence per line. Supervised mode, one document per line, in
fastText's format `__label__<class> [__label__<class> ...] <tokens>`, from any of:
- text/plain files;
- application/jsonlines: `{"source": "<text>", "label": 1}` or `"label": [1, 3]` per line;
- an augmented manifest with AttributeNames ["source", "label"] and RecordWrapperType RecordIO
  (application/x-recordio): the records alternate source, label.
Errors name the channel, the file and the line (or record) and say what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sagelab.algorithms.base import Channel, DataError, split_content_type
from sagelab.algorithms.data import data_files
from sagelab.algorithms.first_party.io import manifest_pairs
from sagelab.algorithms.first_party.recordio import RecordIOError, is_recordio, iter_records

LABEL = "__label__"
TEXT, JSONLINES, RECORDIO = "text/plain", "application/jsonlines", "application/x-recordio"
CONTENT_TYPES = (TEXT, JSONLINES, RECORDIO)


def _name(path: Path) -> str:
    head, _, rest = path.name.partition("-")
    return rest if head.isdigit() and rest else path.name


def _label_tokens(value: Any, where: str) -> str:
    labels = value if isinstance(value, list) else [value]
    if not labels or any(isinstance(v, (bool, dict, list)) or v is None or str(v).strip() == "" for v in labels):
        raise DataError(f"{where}: \"label\" must be a class (a number or a string) or a list of classes, got "
                        f"{json.dumps(value)}.")
    return " ".join(LABEL + str(v).strip().replace(" ", "_") for v in labels)


def _document(source: Any, label: Any, where: str) -> str:
    if not isinstance(source, str) or not source.strip():
        raise DataError(f"{where}: \"source\" must be a non-empty string of text, got {json.dumps(source)}.")
    return f"{_label_tokens(label, where)} {' '.join(source.split())}"


def _text_lines(data: bytes, where: str) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{where}, line {line}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    return text.splitlines()


def training_text(channel: Channel, supervised: bool) -> tuple[list[str], int]:
    """(the channel's lines in fastText's input format, the number of tokens)."""
    files = data_files(channel.files)
    if not files:
        raise DataError(f"Channel '{channel.name}' has no data: no non-empty files were found under its S3 "
                        "location.")
    kind, _ = split_content_type(channel.content_type or TEXT)
    if kind in ("application/x-jsonlines", "application/jsonl"):
        kind = JSONLINES
    if kind not in CONTENT_TYPES:
        raise DataError(f"Channel '{channel.name}': content type {channel.content_type!r} is not supported. "
                        f"Supported: {', '.join(CONTENT_TYPES)}.")
    if kind != TEXT and not supervised:
        raise DataError(f"Channel '{channel.name}': Word2Vec modes read text/plain (one sentence per line); "
                        f"{kind} input is for mode=supervised.")
    lines: list[str] = []
    for path in files:
        where = f"Channel '{channel.name}', file {_name(path)}"
        data = path.read_bytes()
        if kind == RECORDIO or (supervised and is_recordio(data)):
            lines += _augmented(data, where)
        elif kind == JSONLINES:
            lines += _json_lines(data, where)
        else:
            for number, line in enumerate(_text_lines(data, where), start=1):
                if not line.strip():
                    continue
                tokens = line.split()
                if supervised and not tokens[0].startswith(LABEL):
                    raise DataError(f"{where}, line {number}: expected '__label__<class> <text>' (fastText's "
                                    f"format), got {line[:60]!r}.")
                lines.append(" ".join(tokens))
    if not lines:
        raise DataError(f"Channel '{channel.name}' holds no text: every line is empty.")
    if supervised:
        empty = next((i for i, line in enumerate(lines, start=1)
                      if all(token.startswith(LABEL) for token in line.split())), None)
        if empty is not None:
            raise DataError(f"Channel '{channel.name}', document {empty}: it has labels but no text.")
    return lines, sum(len(line.split()) for line in lines)


def _json_lines(data: bytes, where: str) -> list[str]:
    documents = []
    for number, line in enumerate(_text_lines(data, where), start=1):
        if not line.strip():
            continue
        at = f"{where}, line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{at}: not valid JSON ({exc.msg}).") from None
        if not isinstance(entry, dict) or "source" not in entry or "label" not in entry:
            raise DataError(f'{at}: expected {{"source": "<text>", "label": <class or list>}}.')
        documents.append(_document(entry["source"], entry["label"], at))
    return documents


def _augmented(data: bytes, where: str) -> list[str]:
    try:
        items = list(iter_records(data))
    except RecordIOError as exc:
        raise DataError(f"{where}: {exc}") from None
    documents = []
    for at, source_bytes, label_bytes in manifest_pairs(items, where,
                                                         'source and label (AttributeNames ["source", "label"])'):
        try:
            source, label_text = source_bytes.decode("utf-8"), label_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{at}: source and label must be UTF-8 text.") from None
        try:
            label = json.loads(label_text)
        except json.JSONDecodeError:
            label = label_text
        documents.append(_document(source, label, at))
    return documents
