"""Keys as paths: how a store that keeps each key as a folder (the folder lake, the external S3 lake)
spells a key's segments, so that "a" and "a/b" can both exist and no key collides with a reserved name.

Every name a store reserves begins with one "@" (`@data`, `@meta.json`, `@versions`). A segment that begins
with "@" is written with one more "@", and an empty segment (a key ending in "/", or "a//b") is written "@".
"""

from __future__ import annotations


def encode_segment(segment: str) -> str:
    if segment == "":
        return "@"
    return "@" + segment if segment.startswith("@") else segment


def decode_segment(segment: str) -> str:
    if segment == "@":
        return ""
    return segment[1:] if segment.startswith("@@") else segment
