"""Seq2Seq training data as SageMaker's example notebook prepares it (its `create_vocab_proto.py`): vocabularies
token -> id with `<pad>`=0, `<unk>`=1, `<s>`=2, `</s>`=3 first and then the words by descending frequency
(ties in reverse lexical order), saved as `vocab.src.json` / `vocab.trg.json`; sentence pairs as recordIO
records of int32 tensors features["source"] and features["target"] in `train.rec` and `val.rec`.

A planted translation: source words `s0`..`s{n-1}`; each translates to one target word through a fixed shuffled
dictionary, and the target sentence is the source's translation in reverse order."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from sagelab.algorithms.seq2seq.data import write_pairs

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def build_vocab(sentences: list[str]) -> dict[str, int]:
    counts = Counter(token for sentence in sentences for token in sentence.split() if token not in SPECIALS)
    ranked = [word for _, word in sorted(((c, w) for w, c in counts.items()), reverse=True)]
    return {word: index for index, word in enumerate(SPECIALS + ranked)}


def planted(n: int, seed: int, words: int = 12, lengths: tuple[int, int] = (3, 7)) -> tuple[list[str], list[str]]:
    """`n` (source, target) sentence pairs of the planted translation."""
    dictionary = np.random.default_rng(1234).permutation(words)
    rng = np.random.default_rng(seed)
    sources, targets = [], []
    for _ in range(n):
        ids = rng.integers(words, size=int(rng.integers(*lengths)))
        sources.append(" ".join(f"s{i}" for i in ids))
        targets.append(" ".join(f"t{dictionary[i]}" for i in ids[::-1]))
    return sources, targets


def translate(source: str, words: int = 12) -> str:
    dictionary = np.random.default_rng(1234).permutation(words)
    return " ".join(f"t{dictionary[int(token[1:])]}" for token in source.split()[::-1])


def encode(sentences: list[str], vocab: dict[str, int]) -> list[list[int]]:
    return [[vocab.get(token, vocab["<unk>"]) for token in sentence.split()] for sentence in sentences]


def write_corpus(folder: Path, train: tuple[list[str], list[str]],
                 validation: tuple[list[str], list[str]]) -> dict[str, Path]:
    """Write train/train.rec, validation/val.rec and vocab/vocab.{src,trg}.json under `folder`; returns the
    channel folders."""
    source_vocab, target_vocab = build_vocab(train[0]), build_vocab(train[1])
    folders = {name: folder / name for name in ("train", "validation", "vocab")}
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)
    for name, file, (sources, targets) in (("train", "train.rec", train), ("validation", "val.rec", validation)):
        (folders[name] / file).write_bytes(write_pairs(encode(sources, source_vocab), encode(targets, target_vocab)))
    (folders["vocab"] / "vocab.src.json").write_text(json.dumps(source_vocab, indent=4, ensure_ascii=False))
    (folders["vocab"] / "vocab.trg.json").write_text(json.dumps(target_vocab, indent=4, ensure_ascii=False))
    return folders
