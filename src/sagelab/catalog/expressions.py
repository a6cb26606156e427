"""GetPartitions' `Expression`: a SQL-like filter over partition keys, e.g. `year = '2024' AND month > '03'`.

Grammar (keywords case-insensitive):

    expr       := conj (OR conj)*
    conj       := neg (AND neg)*
    neg        := NOT neg | '(' expr ')' | comparison
    comparison := key op literal | key [NOT] IN '(' literal, ... ')' | key [NOT] BETWEEN literal AND literal
                | key [NOT] LIKE 'pattern' | key IS [NOT] NULL
    op         := = | <> | != | < | <= | > | >=

Values compare as numbers when the partition key's type is numeric, otherwise as strings.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping

from sagelab.errors import InvalidInput

Predicate = Callable[[Mapping[str, str]], bool]

_NUMERIC = {"tinyint", "smallint", "int", "integer", "bigint", "float", "double", "real"}
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op><>|!=|<=|>=|=|<|>)"
                    r"|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`|\"[^\"]+\"))")
_COMPARE = {"=": operator.eq, "<>": operator.ne, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}


_KIND_NAMES = {"word": "a partition key", "str": "a quoted string", "op": "a comparison operator",
               "punct": "a parenthesis"}


class _Parser:
    def __init__(self, text: str, key_types: Mapping[str, str]):
        self.text = text
        self.key_types = {k.lower(): t.lower() for k, t in key_types.items()}
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if not match:
                raise self._error(f"unexpected character {text[pos:].lstrip()[:1]!r}", pos)
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()
        self.i = 0

    def _error(self, what: str, pos: int | None = None) -> InvalidInput:
        if pos is None:
            pos = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        return InvalidInput(f"Expression {self.text!r} is not a valid partition filter: {what} at "
                            f"character {pos + 1}.")

    def peek_word(self) -> str:
        if self.i < len(self.tokens) and self.tokens[self.i][0] == "word":
            return self.tokens[self.i][1].upper()
        return ""

    def take(self, kind: str | None = None, value: str | None = None) -> tuple[str, str, int]:
        wanted = value or _KIND_NAMES.get(kind or "", "more")
        if self.i >= len(self.tokens):
            raise self._error(f"expected {wanted}, the expression ends")
        token = self.tokens[self.i]
        if (kind and token[0] != kind) or (value and token[1].upper() != value):
            raise self._error(f"expected {wanted}, got {token[1]!r}")
        self.i += 1
        return token

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda values: True
        predicate = self.expr()
        if self.i != len(self.tokens):
            raise self._error(f"unexpected {self.tokens[self.i][1]!r}")
        return predicate

    def expr(self) -> Predicate:
        parts = [self.conj()]
        while self.peek_word() == "OR":
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else (lambda v: any(p(v) for p in parts))

    def conj(self) -> Predicate:
        parts = [self.neg()]
        while self.peek_word() == "AND":
            self.take()
            parts.append(self.neg())
        return parts[0] if len(parts) == 1 else (lambda v: all(p(v) for p in parts))

    def neg(self) -> Predicate:
        if self.peek_word() == "NOT":
            self.take()
            inner = self.neg()
            return lambda v: not inner(v)
        if self.i < len(self.tokens) and self.tokens[self.i][1] == "(":
            self.take()
            inner = self.expr()
            self.take("punct", ")")
            return inner
        return self.comparison()

    def literal(self, key: str) -> object:
        kind, text, pos = self.take()
        if kind == "str":
            raw = text[1:-1].replace("''", "'")
        elif kind == "num":
            raw = text
        else:
            raise self._error(f"expected a literal value, got {text!r}", pos)
        return self.convert(key, raw, pos)

    def convert(self, key: str, raw: str | None, pos: int = 0) -> object:
        if raw is None:
            return None
        if self.key_types.get(key) in _NUMERIC:
            try:
                return float(raw)
            except ValueError:
                raise self._error(f"{raw!r} is not a number, but partition key {key!r} is numeric", pos) from None
        return raw

    def comparison(self) -> Predicate:
        _, name, pos = self.take("word")
        key = name.strip("`\"").lower()
        if key not in self.key_types:
            raise self._error(f"{name!r} is not a partition key (keys: {', '.join(self.key_types) or 'none'})",
                              pos)

        def value_of(values: Mapping[str, str]) -> object:
            try:
                return self.convert(key, values.get(key))
            except InvalidInput:
                return None

        negate = False
        if self.peek_word() == "IS":
            self.take()
            if self.peek_word() == "NOT":
                self.take()
                negate = True
            self.take("word", "NULL")
            return lambda v: (value_of(v) is None) != negate
        if self.peek_word() == "NOT":
            self.take()
            negate = True
        word = self.peek_word()
        if word == "IN":
            self.take()
            self.take("punct", "(")
            options = [self.literal(key)]
            while self.i < len(self.tokens) and self.tokens[self.i][1] == ",":
                self.take()
                options.append(self.literal(key))
            self.take("punct", ")")
            return lambda v: (value_of(v) in options) != negate
        if word == "BETWEEN":
            self.take()
            low = self.literal(key)
            self.take("word", "AND")
            high = self.literal(key)
            return lambda v: _safe(lambda x: low <= x <= high, value_of(v)) != negate
        if word == "LIKE":
            self.take()
            _, pattern, _ = self.take("str")
            regex = re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c)
                                       for c in pattern[1:-1].replace("''", "'")), re.DOTALL)
            return lambda v: (v.get(key) is not None and regex.fullmatch(v[key]) is not None) != negate
        if negate:
            raise self._error("expected IN, BETWEEN or LIKE after NOT")
        _, op, _ = self.take("op")
        right = self.literal(key)
        compare = _COMPARE[op]
        return lambda v: _safe(lambda x: compare(x, right), value_of(v))


def _safe(check: Callable[[object], bool], value: object) -> bool:
    if value is None:
        return False
    try:
        return bool(check(value))
    except TypeError:
        return False


def parse_partition_filter(expression: str | None, key_types: Mapping[str, str]) -> Predicate:
    """Compile `expression` over partition keys named in `key_types` (name -> Hive type)."""
    return _Parser(expression or "", key_types).parse()
