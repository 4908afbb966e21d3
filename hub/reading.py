"""Reading a department's import file: each line a record to publish, or why it is none.

NDJSON holds one JSON object a line; CSV a header of field names and one record a row. A
line that cannot be a record whatever its fields is set aside here with its number and the
reason, and reading goes on: invalid JSON, a value that is not an object, NUL or a lone
surrogate anywhere in it (JSON escapes put them in strings; PostgreSQL cannot store them),
nesting deeper than any record, a number out of range, a line over MAX_LINE characters.
Numbers are read as exact decimals, so an amount of 1e400 reaches the checks of its field
(records.py) instead of becoming float infinity. Lines are read in bounded pieces: a file
cannot make the importer hold more than a line's worth of it at a time.

A CSV row may run over several lines inside quotes; past a row longer than MAX_LINE the
next row cannot be found, so such a row stops the import (``Stop``) instead.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from hub.records import KINDS, Kind, record_source_id
from hub.values import named, shown

__all__ = [
    "EXTENSIONS",
    "MAX_LINE",
    "Format",
    "Line",
    "Stop",
    "batches",
    "count_lines",
    "listing",
    "read_csv",
    "read_ndjson",
    "unknown",
]

# The key naming the kind of record on an NDJSON line ("kind" is a field of inspections).
RECORD_KIND = "recordKind"
# A line holds one record: at most what one GraphQL request may carry (HUB_MAX_REQUEST_BYTES).
# Longer lines are read past, never held whole.
MAX_LINE = 1_000_000  # characters
# A record nests three deep (the record, its findings, a finding); anything deeper is not one.
MAX_DEPTH = 8
TOO_LONG = f"is longer than {MAX_LINE:,} characters; a line holds one record"
TOO_DEEP = (
    f"nests arrays and objects more than {MAX_DEPTH} levels deep; a line holds one object of fields"
)
# What JSON escapes can put in a string and no record may hold: PostgreSQL refuses NUL in
# text, and a lone surrogate is not text at all (UTF-8 cannot encode it).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
CHUNK = 1 << 20


class Format(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"


JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
EXTENSIONS = {".ndjson": Format.NDJSON, ".jsonl": Format.NDJSON, ".csv": Format.CSV}


class Stop(Exception):
    """The import cannot go on (file, policy, database): the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Line:
    """One record as read from the file."""

    number: int  # in the file, from 1
    kind: Kind | None
    record: dict[str, Any]
    problem: str | None = None  # why it cannot be published at all
    field: str | None = None  # the field the problem is with

    @property
    def source_id(self) -> str | None:
        return record_source_id(self.record)


def listing(names: Iterable[str]) -> str:
    return ", ".join(names)


def unknown(what: str, value: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, known, n=1)
    guess = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown {what} {value!r}{guess}; one of {listing(known)}"


def count_lines(path: Path) -> int:
    """The file's lines, once it is known to be UTF-8 throughout: nothing is imported from
    a file in another encoding (exports from Chinese-language systems are often GBK)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, last = 0, b"\n"
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):  # a line may be any length: read in chunks
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                where = lines + (pending + chunk).count(b"\n", 0, error.start) + 1
                raise _not_utf8(path, where) from None
            lines, last = lines + chunk.count(b"\n"), chunk[-1:]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise _not_utf8(path, lines + 1) from None
    return lines + (last != b"\n")


def _not_utf8(path: Path, number: int) -> Stop:
    return Stop(
        f"{path} is not UTF-8 text (line {number} is not; GBK perhaps): save it as "
        "UTF-8 (in Excel: CSV UTF-8) and import it again"
    )


class _Lines:
    """The lines of a text file as they are read, each at most MAX_LINE characters: a longer
    one is read past in pieces, its number kept in ``cut``, and stands as an empty line."""

    def __init__(self, path: Path, stream: TextIO, *, csv_rows: bool = False) -> None:
        self.path, self.stream, self.csv_rows = path, stream, csv_rows
        self.number = 0
        self.cut: set[int] = set()  # lines read past
        self.row_start = True  # CSV: the next line starts a row (the reader sets it)
        self.row_first = self.row_length = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._read()
        if not line:
            raise StopIteration
        self.number += 1
        at_start = self.row_start or not self.csv_rows  # an NDJSON line is a record
        self.row_start = False
        if at_start:
            self.row_first, self.row_length = self.number, 0
        self.row_length += len(line)
        if len(line.rstrip("\r\n")) <= MAX_LINE and self.row_length <= MAX_LINE + 2:
            return line
        quoted = '"' in line
        ends = ("\n", "\r") if self.csv_rows else ("\n",)  # as the file was opened
        while not line.endswith(ends) and (more := self._read()):
            line, quoted = more, quoted or '"' in more
        if self.csv_rows and (quoted or not at_start):
            # A quote may carry a CSV row over several lines: where the next row starts
            # cannot be known without the text read past.
            raise Stop(
                f"the row from line {self.row_first} of {self.path} runs past {MAX_LINE:,} "
                "characters, and CSV cannot be read past it (a quote not closed?): fix it and "
                "import the file again"
            )
        self.cut.add(self.number)
        return "\n"

    def _read(self) -> str:
        try:
            return self.stream.readline(MAX_LINE + 2)  # the line and its \r\n
        except UnicodeDecodeError:  # changed since count_lines read it
            raise _not_utf8(self.path, self.number + 1) from None


def read_ndjson(path: Path, kind: Kind | None) -> Iterator[Line]:
    # Split on \n only: JSON text never holds a raw one, and U+2028 is no line break in it.
    with path.open(encoding="utf-8-sig", newline="\n") as stream:
        lines = _Lines(path, stream)
        for text in lines:
            if lines.number in lines.cut:
                yield Line(lines.number, kind, {}, TOO_LONG)
            elif text.strip():
                yield _ndjson_line(lines.number, text, kind)


class _Unreadable(ValueError):
    """A line that is JSON and still no record: the message says why."""


def _number(literal: str) -> Decimal:
    # Exact, as amounts must be; 1e400 would be float infinity and 1e-400 zero.
    try:
        return Decimal(literal)
    except ArithmeticError:
        cut = literal if len(literal) <= 40 else f"{literal[:37]}..."
        raise _Unreadable(f"holds the number {cut}, which is out of range") from None


def _integer(literal: str) -> int | Decimal:
    # Past 4,300 digits int() refuses; the checks of the field will refuse the value.
    return int(literal) if len(literal) <= 100 else _number(literal)


def _not_a_number(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _ndjson_line(number: int, text: str, kind: Kind | None) -> Line:
    try:
        record = json.loads(
            text.rstrip("\r\n"),
            parse_float=_number,
            parse_int=_integer,
            parse_constant=_not_a_number,
        )
    except _Unreadable as error:
        return Line(number, kind, {}, str(error))
    except RecursionError:
        return Line(number, kind, {}, TOO_DEEP)
    except ValueError as error:
        detail = (
            f"{error.msg} at column {error.colno}"
            if isinstance(error, json.JSONDecodeError)
            else str(error)
        )
        return Line(number, kind, {}, f"is not JSON ({detail}); a line holds one JSON object")
    if not isinstance(record, dict):
        what = JSON_TYPES.get(type(record), "value")
        return Line(number, kind, {}, f"holds a JSON {what}, not an object of fields")
    if problem := _unstorable(record):
        return Line(number, kind, {}, problem)
    kind_named = record.pop(RECORD_KIND, None)
    if kind is None:
        if kind_named is None:
            return Line(
                number,
                None,
                record,
                f'has no "{RECORD_KIND}": name the kind of record on each '
                f"line ({listing(KINDS)}), or pass --kind",
            )
        found = KINDS.get(kind_named) if isinstance(kind_named, str) else None
        if found is None:
            problem = unknown(RECORD_KIND, str(kind_named)[:64], tuple(KINDS))
            return Line(number, None, record, problem, RECORD_KIND)
        return Line(number, found, record)
    if kind_named is not None and kind_named != kind.name:
        return Line(
            number, kind, record, f"is a line of {named(kind_named)}, not of {kind.name} (--kind)"
        )
    return Line(number, kind, record)


def _unstorable(record: dict[str, Any]) -> str | None:
    """Why a record read from JSON cannot be one whatever its fields: too deep, or holding
    what no text may hold (checked here, anywhere in it, keys too)."""
    stack: list[tuple[Any, int, str | None]] = [(record, 1, None)]
    while stack:
        value, depth, field = stack.pop()
        if isinstance(value, str):
            if found := UNSTORABLE.search(value):
                return _unstorable_character(found[0], field)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return TOO_DEEP
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for key, item in items:
                if key is not None and (found := UNSTORABLE.search(key)):
                    return _unstorable_character(found[0], None)
                stack.append((item, depth + 1, field or key))
    return None


def _unstorable_character(character: str, field: str | None) -> str:
    what = "a NUL character" if character == "\x00" else "a lone surrogate"
    if field is None:
        where = "a field name"
    else:  # in quotes as a JSON key, or quoted by named() when it is not plain
        where = f'"{field}"' if named(field) == field else named(field)
    return f"holds {what} (U+{ord(character):04X}) in {where}, which no record may contain"


def read_csv(path: Path, kind: Kind) -> Iterator[Line]:
    """Rows under a header of field names; an empty cell is an absent field."""
    # A cell may be as long as a line; csv's own limit (131,072) would stop the import.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE))
    with path.open(encoding="utf-8-sig", newline="") as stream:
        lines = _Lines(path, stream, csv_rows=True)
        reader = csv.reader(lines)
        try:
            header = next(reader, None)
            if header is None:
                return
            names = [name.strip() for name in header]
            known = [f.name for f in kind.fields]
            unknown = [name for name in names if name not in known]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if lines.cut:
                raise Stop(f"the header of {path} is longer than {MAX_LINE:,} characters")
            if unknown or repeated:
                raise Stop(
                    f"the header of {path} names "
                    + (
                        f"{listing(map(shown, unknown))}, which {kind.name} have no field for"
                        if unknown
                        else f"{listing(map(shown, repeated))} twice"
                    )
                    + f"; the fields of {kind.name}: {listing(known)}"
                )
            previous = reader.line_num
            lines.row_start = True
            for cells in reader:
                lines.row_start = True
                number, previous = previous + 1, reader.line_num
                if number in lines.cut:
                    yield Line(number, kind, {}, TOO_LONG)
                    continue
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(names):
                    yield Line(
                        number,
                        kind,
                        {},
                        f"has {len(cells)} cells where the header has "
                        f"{len(names)}; quote cells that hold commas",
                    )
                    continue
                yield Line(
                    number, kind, {n: c for n, c in zip(names, cells, strict=True) if c.strip()}
                )
        except csv.Error as error:
            raise Stop(f"line {reader.line_num} of {path} is not CSV: {error}") from None


def batches(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    while batch := list(islice(lines, size)):
        yield batch
