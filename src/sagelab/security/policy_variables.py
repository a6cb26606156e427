"""Policy variables: the `${aws:username}` placeholders of a Resource or a string condition value.

A policy text becomes a `Template` once, when the policy is parsed; each evaluation resolves it against the
request into `Chunk`s. A chunk says whether its `*` and `?` are wildcards: the policy's own text is a pattern,
while a value taken from the request (a user name) and the escapes `${*}`, `${?}`, `${$}` are literal text, so
a request value can never widen what a pattern matches.

Variables exist only in policies of language version 2012-10-17; in 2008-10-17 documents `${...}` is plain
text. A variable whose key is missing from the request, or has several values, does not resolve (unless it
carries a default, `${aws:userid, 'anonymous'}`): the caller then treats the pattern as matching nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

__all__ = ["Chunk", "Template", "Variable", "VariableLookup"]

#: (text, wildcards_active): the unit that pattern compilers consume.
Chunk = tuple[str, bool]
#: Looks a (lower-case) condition key up in the request: its single value as text, or None.
VariableLookup = Callable[[str], str | None]

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_VARIABLE = re.compile(r"^\s*([A-Za-z0-9_.:/@-]+)\s*(?:,\s*'([^']*)'\s*)?$")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


@dataclasses.dataclass(frozen=True)
class Variable:
    key: str  # lower-case: condition keys are case-insensitive
    default: str | None = None


@dataclasses.dataclass(frozen=True)
class _Literal:
    """Text that matches itself, wildcards included (an escape such as `${*}`)."""

    text: str


_Part = str | _Literal | Variable


@dataclasses.dataclass(frozen=True)
class Template:
    """A policy string with its placeholders found; plain `str` parts are pattern text."""

    text: str
    parts: tuple[_Part, ...]

    @classmethod
    def parse(cls, text: str, variables_enabled: bool) -> Template:
        if not variables_enabled or "${" not in text:
            return cls(text, (text,) if text else ())
        parts: list[_Part] = []
        last = 0
        for match in _PLACEHOLDER.finditer(text):
            inner = match[1]
            if inner.strip() in _ESCAPES:
                part: _Part = _Literal(_ESCAPES[inner.strip()])
            elif variable := _VARIABLE.match(inner):
                part = Variable(variable[1].lower(), variable[2])
            else:
                continue  # not a placeholder AWS knows: it stays plain text
            if match.start() > last:
                parts.append(text[last:match.start()])
            parts.append(part)
            last = match.end()
        if last < len(text):
            parts.append(text[last:])
        return cls(text, tuple(parts))

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(p for p in self.parts if isinstance(p, Variable))

    @property
    def is_static(self) -> bool:
        """True when resolving needs no request (escapes are fine: they do not depend on it)."""
        return not any(isinstance(p, Variable) for p in self.parts)

    def chunks(self, lookup: VariableLookup | None = None) -> tuple[Chunk, ...] | None:
        """The template resolved against a request; None when a variable has no value and no default."""
        out: list[Chunk] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append((part, True))
            elif isinstance(part, _Literal):
                out.append((part.text, False))
            else:
                value = lookup(part.key) if lookup is not None else None
                if value is None:
                    value = part.default
                if value is None:
                    return None
                out.append((value, False))
        return tuple(out)

    def render(self, lookup: VariableLookup | None = None) -> str | None:
        """The resolved text, for operators without wildcards (StringEquals, ...)."""
        chunks = self.chunks(lookup)
        return None if chunks is None else "".join(text for text, _ in chunks)
