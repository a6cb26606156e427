"""Seq2Seq's data: the vocabularies and the recordIO-protobuf sentence pairs.

Vocabularies (`vocab` channel): `vocab.src.json` and `vocab.trg.json`, JSON objects token -> id as the
example notebook's `create_vocab_proto.py` writes them, whose first four ids are the special symbols
`<pad>`=0, `<unk>`=1, `<s>`=2, `</s>`=3 and then the words.

Records (`train`, `validation`): one `aialgs.data.Record` per sentence pair with int32 tensors, either
`features["source"]` and `features["target"]` (what `create_vocab_proto.py` writes) or `features["values"]`
(source) and `label["values"]` (target). Longer sequences than max_seq_len_source/target are truncated, as the
hyperparameter documentation says.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from sagelab.algorithms.base import DataError
from sagelab.algorithms.first_party import recordio

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = {PAD: 0, UNK: 1, BOS: 2, EOS: 3}
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SOURCE_VOCAB, TARGET_VOCAB = "vocab.src.json", "vocab.trg.json"


@dataclasses.dataclass
class Vocab:
    tokens: dict[str, int]
    #: id -> token
    words: list[str]

    @property
    def size(self) -> int:
        return len(self.words)

    def ids(self, sentence: str) -> list[int]:
        return [self.tokens.get(token, UNK_ID) for token in sentence.split()]

    def sentence(self, ids: list[int]) -> str:
        return " ".join(self.words[i] for i in ids)


def parse_vocab(text: str, where: str) -> Vocab:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where} is not valid JSON: {exc}.") from None
    if not isinstance(document, dict) or not document:
        raise DataError(f"{where} must be a JSON object mapping each token to its integer id.")
    by_id: dict[int, str] = {}
    for token, index in document.items():
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise DataError(f"{where}: the id of token {token!r} is {index!r}; ids are integers >= 0.")
        if index in by_id:
            raise DataError(f"{where}: tokens {by_id[index]!r} and {token!r} have the same id {index}.")
        by_id[index] = token
    for token, index in SPECIALS.items():
        if document.get(token) != index:
            raise DataError(f"{where}: the special symbol {token!r} must have id {index} (<pad>=0, <unk>=1, <s>=2, "
                            f"</s>=3, as create_vocab_proto.py writes them), got {document.get(token)!r}.")
    size = max(by_id) + 1
    if len(by_id) != size:
        missing = next(i for i in range(size) if i not in by_id)
        raise DataError(f"{where}: ids must run from 0 to {size - 1} without gaps; no token has id {missing}.")
    return Vocab(dict(document), [by_id[i] for i in range(size)])


def file_name(path: Path) -> str:
    """The file's name in the channel's S3 location (a job's local copies are named `00003-<name>`)."""
    head, _, rest = path.name.partition("-")
    return rest if head.isdigit() and rest else path.name


def read_vocabs(files: list[Path]) -> tuple[Vocab, Vocab]:
    by_name = {file_name(path): path for path in files}
    vocabs = []
    for name in (SOURCE_VOCAB, TARGET_VOCAB):
        if name not in by_name:
            held = ", ".join(sorted(by_name)) or "no files"
            raise DataError(f"Channel 'vocab' has no {name} (it holds {held}); it needs {SOURCE_VOCAB} and "
                            f"{TARGET_VOCAB}.")
        try:
            text = by_name[name].read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"Channel 'vocab', file {name} is not UTF-8 text: {exc}.") from None
        vocabs.append(parse_vocab(text, f"Channel 'vocab', file {name}"))
    return vocabs[0], vocabs[1]


@dataclasses.dataclass
class Pairs:
    sources: list[list[int]]
    targets: list[list[int]]
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.sources)


def _sequence(record: recordio.Record, side: str, where: str, vocab: Vocab, vocab_name: str,
              required: bool = True) -> list[int] | None:
    """The token ids of `side` ("source" or "target") in `record`, checked against `vocab`."""
    if side == "source":
        places = (("features", "source"), ("features", "values"))
    else:
        places = (("features", "target"), ("label", "values"))
    for group, key in places:
        tensor = getattr(record, group).get(key)
        if tensor is None:
            continue
        field = f'{group}["{key}"]'
        if tensor.kind != "int32":
            raise DataError(f"{where}: {field} is a {tensor.kind} tensor; seq2seq reads token ids from int32 tensors "
                            "(int32_tensor).")
        if tensor.is_sparse:
            raise DataError(f"{where}: {field} is a sparse tensor; token ids must be a dense int32 tensor.")
        ids = tensor.values.astype(np.int64)
        if required and not len(ids):
            raise DataError(f"{where}: {field} is empty; every sentence needs at least one token.")
        bad = np.flatnonzero((ids < 0) | (ids >= vocab.size))
        if len(bad):
            i = int(bad[0])
            raise DataError(f"{where}: {field}[{i}] is {int(ids[i])}; {vocab_name} has {vocab.size} ids "
                            f"(0..{vocab.size - 1}).")
        return ids.tolist()
    if not required:
        return None
    names = " or ".join(f'{g}["{k}"]' for g, k in places)
    raise DataError(f"{where}: the record has no {side} sequence: expected an int32 tensor in {names}.")


def read_pairs(name: str, files: list[Path], source_vocab: Vocab, target_vocab: Vocab, max_source: int,
               max_target: int) -> Pairs:
    pairs = Pairs([], [])
    for path in files:
        shown = file_name(path)
        if shown.startswith(".") or shown == "_SUCCESS":
            continue
        prefix = f"Channel '{name}', file {shown}"
        try:
            records = recordio.read_records(path.read_bytes())
        except recordio.RecordIOError as exc:
            raise DataError(f"{prefix}, {exc}") from None
        for index, record in enumerate(records, start=1):
            where = f"{prefix}, record {index}"
            source = _sequence(record, "source", where, source_vocab, SOURCE_VOCAB)
            target = _sequence(record, "target", where, target_vocab, TARGET_VOCAB)
            assert source is not None and target is not None
            if len(source) > max_source or len(target) > max_target:
                pairs.truncated += 1
            pairs.sources.append(source[:max_source])
            pairs.targets.append(target[:max_target])
    if not pairs:
        raise DataError(f"Channel '{name}' holds no records.")
    return pairs


def request_sources(payload: bytes, vocab: Vocab) -> list[list[int]]:
    """The source ids of each record of an inference request (features["source"] or features["values"]).
    Integer-valued float tensors are read too (the SageMaker SDK's RecordSerializer writes floats)."""
    sources = []
    for index, record in enumerate(recordio.read_records(payload), start=1):
        where = f"record {index}"
        tensor = record.features.get("source", record.features.get("values"))
        if tensor is None:
            raise DataError(f'{where}: no source sequence: expected token ids in features["source"] (or '
                            'features["values"]).')
        key = "source" if "source" in record.features else "values"
        values = np.asarray(tensor.values)
        if tensor.kind == "bytes" or tensor.is_sparse or (len(values) and not np.all(np.mod(values, 1) == 0)):
            raise DataError(f'{where}: features["{key}"] must be a dense tensor of integer token ids.')
        ids = values.astype(np.int64)
        bad = np.flatnonzero((ids < 0) | (ids >= vocab.size))
        if len(bad):
            i = int(bad[0])
            raise DataError(f'{where}: features["{key}"][{i}] is {int(ids[i])}; the source vocabulary has '
                            f"{vocab.size} ids (0..{vocab.size - 1}).")
        sources.append(ids.tolist())
    return sources


def write_request(sources: list[list[int]]) -> bytes:
    """recordIO-protobuf with one record per source sentence, as the example notebook sends them
    (features["source"] int32, an empty features["target"])."""
    return write_pairs(sources, [[] for _ in sources])


def write_pairs(sources: list[list[int]], targets: list[list[int]]) -> bytes:
    """recordIO-protobuf sentence pairs as `create_vocab_proto.py` writes them."""
    payloads = []
    for source, target in zip(sources, targets, strict=True):
        record = recordio.Record(features={
            "source": recordio.Tensor(np.asarray(source, dtype=np.int32), kind="int32"),
            "target": recordio.Tensor(np.asarray(target, dtype=np.int32), kind="int32")})
        payloads.append(recordio.encode_record(record))
    return recordio.frame_records(payloads)


def response_targets(targets: list[list[int]]) -> bytes:
    """Inference results: one record per sentence, its ids in features["target"] (int32), as the example
    notebook reads them."""
    payloads = [recordio.encode_record(recordio.Record(features={
        "target": recordio.Tensor(np.asarray(t, dtype=np.int32), kind="int32")})) for t in targets]
    return recordio.frame_records(payloads)
