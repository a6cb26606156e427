"""What kind of statement a query is, and the parts sagelab handles itself.

SELECT / WITH / VALUES / EXPLAIN run on DuckDB as written. CTAS and INSERT INTO run their query on
DuckDB and write the result to the lake; catalog statements (SHOW, DESCRIBE, CREATE/DROP DATABASE, DROP
TABLE, MSCK REPAIR TABLE) are answered from the catalog. A parsed statement keeps the offset of its query
in the original text, so error positions refer to what the user wrote.
"""

from __future__ import annotations

import dataclasses
import re

from sagelab.errors import SagelabError

_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:[^']|'')*')|(?P<qid>"(?:[^"]|"")*")|(?P<bid>`[^`]*`)"""
                    r"""|(?P<num>\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<punct>[(),.=\[\];*<>:]))""")
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


class StatementError(SagelabError):
    """A statement sagelab parses itself is malformed; `category` is Athena's error name."""

    code = "InvalidRequestException"

    def __init__(self, message: str, category: str = "SYNTAX_ERROR"):
        super().__init__(message)
        self.category = category


@dataclasses.dataclass
class Token:
    kind: str
    text: str
    start: int

    @property
    def word(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def name(self) -> str:
        """An identifier's name: quoted ones as written, bare ones folded to lower case."""
        if self.kind in ("qid", "bid"):
            return self.text[1:-1].replace('""', '"')
        return self.text.lower()


@dataclasses.dataclass
class Statement:
    kind: str  # query | ctas | insert | create_table | show_tables | show_databases | show_columns | show_partitions
    #            | describe | create_database | drop_database | drop_table | repair_table
    statement_type: str  # DML | DDL | UTILITY (Athena's StatementType)
    substatement: str
    query_start: int = 0  # where the SELECT of a query / CTAS / INSERT begins in the text
    target: tuple[str | None, str] | None = None  # (database or None, name)
    properties: dict[str, object] = dataclasses.field(default_factory=dict)
    columns: list[str] | None = None
    if_exists: bool = False
    with_data: bool = True
    pattern: str | None = None
    cascade: bool = False


def blank_comments(text: str) -> str:
    """Comments replaced by spaces (keeping newlines), so offsets stay those of the original text."""
    return _COMMENTS.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def tokenize(text: str) -> list[Token]:
    tokens = []
    pos = 0
    clean = blank_comments(text)
    while pos < len(clean):
        if not clean[pos:].strip():
            break
        match = _TOKEN.match(clean, pos)
        if not match:
            tokens.append(Token("other", clean[pos:].lstrip()[:1], len(clean[:pos]) + len(clean[pos:]) - len(
                clean[pos:].lstrip())))
            pos = tokens[-1].start + 1
            continue
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


class _Reader:
    def __init__(self, text: str, tokens: list[Token]):
        self.text, self.tokens, self.i = text, tokens, 0

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, ahead: int = 0) -> str:
        token = self.peek(ahead)
        return token.word if token else ""

    def error(self, expected: str) -> StatementError:
        token = self.peek()
        offset = token.start if token else len(self.text.rstrip())
        line, column = position(self.text, offset)
        got = f"mismatched input '{token.text}'" if token else "mismatched input '<EOF>'"
        return StatementError(f"line {line}:{column}: {got}. Expecting: {expected}")

    def take_word(self, *words: str) -> str:
        if self.word() not in words:
            raise self.error(", ".join(f"'{w}'" for w in words))
        self.i += 1
        return words[0] if len(words) == 1 else self.tokens[self.i - 1].word

    def maybe(self, *words: str) -> bool:
        for ahead, word in enumerate(words):
            if self.word(ahead) != word:
                return False
        self.i += len(words)
        return True

    def punct(self, symbol: str) -> None:
        token = self.peek()
        if token is None or token.text != symbol:
            raise self.error(f"'{symbol}'")
        self.i += 1

    def is_punct(self, symbol: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "punct" and token.text == symbol

    def name(self) -> str:
        token = self.peek()
        if token is None or token.kind not in ("word", "qid", "bid"):
            raise self.error("<identifier>")
        self.i += 1
        return token.name

    def qualified(self) -> tuple[str | None, str]:
        parts = [self.name()]
        while self.is_punct("."):
            self.i += 1
            parts.append(self.name())
        if len(parts) == 3 and parts[0] == "awsdatacatalog":
            parts = parts[1:]
        if len(parts) > 2:
            raise StatementError(f"Table name {'.'.join(parts)} has too many parts.", "SYNTAX_ERROR")
        return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])

    def value(self) -> object:
        token = self.peek()
        if token is None:
            raise self.error("<value>")
        if token.kind == "str":
            self.i += 1
            return token.text[1:-1].replace("''", "'")
        if token.kind == "num":
            self.i += 1
            return token.text
        if token.word == "ARRAY":
            self.i += 1
            self.punct("[")
            items = []
            while not self.is_punct("]"):
                items.append(self.value())
                if self.is_punct(","):
                    self.i += 1
            self.punct("]")
            return items
        if token.word in ("TRUE", "FALSE"):
            self.i += 1
            return token.word.lower()
        raise self.error("<string>, <number> or ARRAY[...]")

    def rest_start(self) -> int:
        token = self.peek()
        if token is None:
            raise self.error("<query>")
        return token.start


def parse_statement(text: str) -> Statement:
    all_tokens = tokenize(text)
    for i, token in enumerate(all_tokens):
        if token.text == ";" and any(t.text != ";" for t in all_tokens[i + 1:]):
            line, column = position(text, token.start)
            raise StatementError(f"line {line}:{column}: Only one sql statement is allowed. Got: {text.strip()}")
    tokens = [t for t in all_tokens if not (t.kind == "punct" and t.text == ";")]
    if not tokens:
        raise StatementError("line 1:1: mismatched input '<EOF>'. Expecting: <query>")
    r = _Reader(text, tokens)
    first = r.word()
    if first in ("SELECT", "WITH", "VALUES", "TABLE") or r.is_punct("("):
        return Statement("query", "DML", "SELECT")
    if first == "EXPLAIN":
        return Statement("query", "UTILITY", "EXPLAIN")
    if first in ("DESCRIBE", "DESC"):
        r.i += 1
        return Statement("describe", "UTILITY", "DESCRIBE", target=r.qualified())
    if first == "SHOW":
        return _parse_show(r)
    if first == "INSERT":
        r.i += 1
        r.take_word("INTO")
        target = r.qualified()
        columns = None
        if r.is_punct("(") and r.word(1) not in ("SELECT", "WITH", "VALUES"):
            r.i += 1
            columns = [r.name()]
            while r.is_punct(","):
                r.i += 1
                columns.append(r.name())
            r.punct(")")
        return Statement("insert", "DML", "INSERT", query_start=r.rest_start(), target=target, columns=columns)
    if first == "MSCK":
        r.i += 1
        r.take_word("REPAIR")
        r.take_word("TABLE")
        return Statement("repair_table", "DDL", "MSCK_REPAIR_TABLE", target=r.qualified())
    if first == "CREATE":
        r.i += 1
        if r.word() in ("DATABASE", "SCHEMA"):
            r.i += 1
            if_not_exists = r.maybe("IF", "NOT", "EXISTS")
            return Statement("create_database", "DDL", "CREATE_DATABASE", target=(None, r.name()),
                             if_exists=if_not_exists)
        if r.word() == "EXTERNAL":
            return _parse_external_table(r)
        if r.word() == "TABLE":
            if r.word(1) != "AS" and any(t.text == "(" for t in r.tokens[r.i + 2:r.i + 6]) and not _is_ctas(r):
                return _parse_external_table(r)
            return _parse_ctas(r)
        raise r.error("'TABLE', 'EXTERNAL', 'DATABASE', 'SCHEMA'")
    if first == "DROP":
        r.i += 1
        kind = r.take_word("TABLE", "DATABASE", "SCHEMA")
        if_exists = r.maybe("IF", "EXISTS")
        if kind == "TABLE":
            return Statement("drop_table", "DDL", "DROP_TABLE", target=r.qualified(), if_exists=if_exists)
        name = r.name()
        return Statement("drop_database", "DDL", "DROP_DATABASE", target=(None, name), if_exists=if_exists,
                         cascade=r.maybe("CASCADE"))
    raise r.error("'SELECT', 'WITH', 'VALUES', 'CREATE', 'INSERT', 'DROP', 'SHOW', 'DESCRIBE', 'MSCK'")


def _parse_show(r: _Reader) -> Statement:
    r.i += 1
    kind = r.take_word("TABLES", "DATABASES", "SCHEMAS", "COLUMNS", "PARTITIONS")
    if kind == "TABLES":
        database = r.name() if r.maybe("IN") or r.maybe("FROM") else None
        pattern = r.value() if r.peek() else None
        return Statement("show_tables", "UTILITY", "SHOW_TABLES", target=(database, ""),
                         pattern=str(pattern) if pattern else None)
    if kind in ("DATABASES", "SCHEMAS"):
        r.maybe("LIKE")
        pattern = r.value() if r.peek() else None
        return Statement("show_databases", "UTILITY", "SHOW_DATABASES", pattern=str(pattern) if pattern else None)
    if kind == "COLUMNS":
        r.take_word("IN", "FROM")
        return Statement("show_columns", "UTILITY", "SHOW_COLUMNS", target=r.qualified())
    return Statement("show_partitions", "UTILITY", "SHOW_PARTITIONS", target=r.qualified())


def _parse_ctas(r: _Reader) -> Statement:
    r.take_word("TABLE")
    if_not_exists = r.maybe("IF", "NOT", "EXISTS")
    target = r.qualified()
    properties: dict[str, object] = {}
    if r.word() == "WITH":
        r.i += 1
        r.punct("(")
        while True:
            key = r.name().lower()
            r.punct("=")
            properties[key] = r.value()
            if r.is_punct(","):
                r.i += 1
                continue
            r.punct(")")
            break
    if r.word() != "AS":
        raise StatementError("sagelab runs CREATE TABLE ... AS SELECT only; create tables over existing data "
                             "with a crawler or Glue's CreateTable.", "NOT_SUPPORTED")
    r.i += 1
    start = r.rest_start()
    with_data = True
    tail = r.tokens[-3:]
    if len(tail) == 3 and [t.word for t in tail] == ["WITH", "NO", "DATA"]:
        with_data = False
    return Statement("ctas", "DDL", "CREATE_TABLE_AS_SELECT", query_start=start, target=target,
                     properties=properties, if_exists=if_not_exists, with_data=with_data)


def hive_unescape(text: str) -> str:
    r"""Hive DDL spells delimiters with escapes: '\t', '\001' (octal), '\u0001', '\\'."""
    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        if body[0] in "01234567":
            return chr(int(body, 8))
        if body[0] == "u":
            return chr(int(body[1:], 16))
        return {"t": "\t", "n": "\n", "r": "\r"}.get(body, body)

    return re.sub(r"\\([0-7]{1,3}|u[0-9a-fA-F]{4}|.)", one, text)


def _is_ctas(r: _Reader) -> bool:
    """CREATE TABLE t WITH (...) AS ...: the first parenthesis follows WITH."""
    for token in r.tokens[r.i + 1:]:
        if token.text == "(":
            return False
        if token.word in ("WITH", "AS"):
            return True
    return True


def _type_text(r: _Reader) -> str:
    """A column type as written (`array<struct<a:int>>`, `decimal(10,2)`): up to a `,` or `)` at depth 0."""
    start = r.rest_start()
    depth, end = 0, start
    while (token := r.peek()) is not None:
        if depth == 0 and token.text in (",", ")") or (depth == 0 and token.word == "COMMENT"):
            break
        depth += token.text in ("<", "(")
        depth -= token.text in (">", ")")
        end = token.start + len(token.text)
        r.i += 1
    return re.sub(r"\s+", "", r.text[start:end])


def _columns(r: _Reader) -> list[dict[str, str]]:
    r.punct("(")
    columns = []
    while True:
        column = {"Name": r.name().lower(), "Type": _type_text(r).lower()}
        if r.maybe("COMMENT"):
            column["Comment"] = str(r.value())
        columns.append(column)
        if r.is_punct(","):
            r.i += 1
            continue
        r.punct(")")
        return columns


def _string_map(r: _Reader) -> dict[str, str]:
    r.punct("(")
    out = {}
    while not r.is_punct(")"):
        key = str(r.value())
        r.punct("=")
        out[key] = str(r.value())
        if r.is_punct(","):
            r.i += 1
    r.punct(")")
    return out


_STORED_AS = {"PARQUET": "parquet", "TEXTFILE": "textfile", "JSON": "json"}


def _parse_external_table(r: _Reader) -> Statement:
    """CREATE [EXTERNAL] TABLE [IF NOT EXISTS] t (cols) [PARTITIONED BY (cols)] [ROW FORMAT ...]
    [STORED AS ...] LOCATION 's3://...' [TBLPROPERTIES (...)]: a catalog table over existing files."""
    r.maybe("EXTERNAL")
    r.take_word("TABLE")
    if_not_exists = r.maybe("IF", "NOT", "EXISTS")
    target = r.qualified()
    props: dict[str, object] = {"columns": _columns(r), "partition_keys": [], "serde_properties": {},
                                "table_properties": {}}
    while r.peek() is not None:
        if r.maybe("COMMENT"):
            props["comment"] = r.value()
        elif r.maybe("PARTITIONED", "BY"):
            props["partition_keys"] = _columns(r)
        elif r.maybe("ROW", "FORMAT", "DELIMITED"):
            while r.word() in ("FIELDS", "LINES", "ESCAPED", "COLLECTION", "MAP", "NULL"):
                clause = r.word()
                while r.peek() is not None and r.peek().kind != "str":
                    r.i += 1
                value = hive_unescape(str(r.value()))
                if clause == "FIELDS":
                    props["delimiter"] = value
                elif clause == "ESCAPED":
                    props["escape"] = value
        elif r.maybe("ROW", "FORMAT", "SERDE"):
            props["serde"] = r.value()
            if r.maybe("WITH", "SERDEPROPERTIES"):
                props["serde_properties"] = _string_map(r)
        elif r.maybe("STORED", "AS"):
            if r.maybe("INPUTFORMAT"):
                props["input_format"] = r.value()
                r.take_word("OUTPUTFORMAT")
                props["output_format"] = r.value()
            else:
                kind = r.name().upper()
                if kind not in _STORED_AS:
                    raise StatementError(f"STORED AS {kind}: sagelab reads PARQUET, TEXTFILE and JSON tables.",
                                         "NOT_SUPPORTED")
                props["stored_as"] = _STORED_AS[kind]
        elif r.maybe("LOCATION"):
            props["location"] = r.value()
        elif r.maybe("TBLPROPERTIES"):
            props["table_properties"] = _string_map(r)
        else:
            raise r.error("'PARTITIONED', 'ROW', 'STORED', 'LOCATION', 'TBLPROPERTIES'")
    if "location" not in props:
        raise StatementError("CREATE EXTERNAL TABLE needs a LOCATION 's3://bucket/prefix/'.", "SYNTAX_ERROR")
    return Statement("create_table", "DDL", "CREATE_TABLE", target=target, properties=props,
                     if_exists=if_not_exists)


def query_text(text: str, statement: Statement) -> str:
    """The query part of `text` with everything before it blanked (same offsets), minus WITH [NO] DATA."""
    body = text
    if statement.kind in ("ctas", "insert"):
        body = re.sub(r"[^\n]", " ", text[:statement.query_start]) + text[statement.query_start:]
        if statement.kind == "ctas":
            body = re.sub(r"\bWITH\s+(NO\s+)?DATA\s*;?\s*$", "", body, flags=re.IGNORECASE)
    return re.sub(r";\s*$", "", body.rstrip())


def referenced_names(text: str) -> set[str]:
    """Every identifier in the text (lower case unless quoted): candidates for catalog views."""
    return {t.name for t in tokenize(text) if t.kind in ("word", "qid")}
