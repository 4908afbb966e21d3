"""Importing a department's records from NDJSON or CSV files, a batch at a time.

Each batch of lines is published kind by kind in dependency order, so a line may refer to a
record on any line of the same batch. A publish call is all or nothing: a rejected record is
set aside with its line number and the rest published again, so one bad line never holds
back the others. Every batch that publishes or rejects anything is one access record, as a
GraphQL mutation would be. The command is in hub/cli/publish.py.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import json
import re
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from hub.audit import AccessEntry, AccessLog, Outcome, Trail
from hub.domain import DEPARTMENTS, Role
from hub.errors import Forbidden, InvalidRecords
from hub.policy import Policy
from hub.publishing import Change, Published, Publisher, publish
from hub.records import KINDS, Kind, Problem, record_source_id
from hub.values import named, shown

SHOWN = 50  # rejections printed; the report holds them all
DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
CHANGES = (Change.CREATED, Change.UPDATED, Change.UNCHANGED, Change.REPAIRED)
# The key naming the kind of record on an NDJSON line ("kind" is a field of inspections).
RECORD_KIND = "recordKind"


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


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    kind: str | None
    source_id: str | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "kind": self.kind,
            "sourceId": self.source_id,
            "field": self.field,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.source_id:
            where += f" (sourceId {self.source_id})"
        return f"{where} {self.field}: {self.message}" if self.field else f"{where} {self.message}"


@dataclass
class Tally:
    changes: Counter[str] = field(default_factory=Counter)
    lines: int = 0  # read, blank lines aside
    rejected: int = 0  # lines
    problems: int = 0
    deferred: int = 0  # dry run: lines that refer to records the file would create
    shown: list[Rejection] = field(default_factory=list)


def listing(names: Iterable[str]) -> str:
    return ", ".join(names)


def unknown(what: str, value: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, known, n=1)
    guess = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown {what} {value!r}{guess}; one of {listing(known)}"


# Reading --------------------------------------------------------------------------------

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
    one is read past in pieces and stands as None (NDJSON) or an empty line (CSV)."""

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
        while not line.endswith(("\n", "\r")) and (more := self._read()):
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


# Publishing -----------------------------------------------------------------------------


class Importer:
    """Publishes batches of lines for one department and keeps the tally."""

    def __init__(
        self,
        engine: AsyncEngine,
        policy: Policy,
        department: str,
        client: str,
        *,
        dry_run: bool,
        report: TextIO | None,
    ) -> None:
        self.engine, self.policy, self.department = engine, policy, department
        self.client, self.dry_run, self.report = client, dry_run, report
        self.log = AccessLog(engine)
        self.tally = Tally()
        self.seen: dict[tuple[str, str], int] = {}  # (kind, sourceId) -> its line
        # Dry run: source ids of the records the file would create, by type.
        self.planned: defaultdict[str, set[str]] = defaultdict(set)

    async def batch(self, lines: list[Line]) -> None:
        started = time.perf_counter()
        trace_id = secrets.token_hex(16)
        publisher = Publisher(self.client, self.department, self.department, trace_id)
        rejections: list[Rejection] = []
        groups: dict[str, list[Line]] = defaultdict(list)
        for line in lines:
            problem = line.problem or self._repeats(line)
            if problem or line.kind is None:
                rejections.append(
                    Rejection(
                        line.number,
                        line.kind.name if line.kind else None,
                        line.source_id,
                        line.field,
                        problem or "",
                    )
                )
            else:
                groups[line.kind.name].append(line)
        for name in groups:  # before anything of the batch is published
            self._authorize(KINDS[name])
        published: list[Published] = []
        for kind in KINDS.values():  # dependency order: what is referred to comes first
            if kind.name in groups:
                done, rejected = await self._publish(kind, groups[kind.name], publisher)
                published += done
                rejections += rejected
        rejections.sort(key=lambda rejection: rejection.line)
        self._count(lines, published, rejections)
        if self.dry_run or not (published or rejections):
            return
        trail = Trail()
        for result in published:
            trail.write(result.uscc, result.kind, result.change.value, str(result.record_id))
        outcome = Outcome.OK if not rejections else Outcome.PARTIAL if published else Outcome.ERROR
        await self.log.append(
            AccessEntry(
                recorded_at=datetime.now(UTC),
                outcome=outcome,
                trace_id=trace_id,
                duration_us=int((time.perf_counter() - started) * 1_000_000),
                client=self.client,
                department=self.department,
                role=Role.DEPARTMENT.value,
                operation_name="import",
                operation_type="mutation",
                policy_version=self.policy.version,
                trail=trail,
            )
        )

    def _authorize(self, kind: Kind) -> None:
        owner = self.department
        decision = self.policy.decide_write(owner, owner, kind.type_name)
        if not decision.allowed:
            forbidden = Forbidden(owner, kind.type_name, decision.reason, writing=True).message
            hint = (
                ""
                if decision.rule
                else (
                    f"; a line `p, {owner}, self, {kind.type_name}, write, allow` in policy.csv "
                    "would allow it"
                )
            )
            raise Stop(forbidden + hint)

    def _repeats(self, line: Line) -> str | None:
        """A file holds each record once, whatever the batches: a later line is rejected."""
        if line.kind is None or line.source_id is None:
            return None
        first = self.seen.setdefault((line.kind.name, line.source_id), line.number)
        if first == line.number:
            return None
        return f"repeats the sourceId of line {first}; a file holds each record once"

    async def _publish(
        self, kind: Kind, lines: list[Line], publisher: Publisher
    ) -> tuple[list[Published], list[Rejection]]:
        """Publish, setting rejected records aside, until all the rest is published."""
        rejections: list[Rejection] = []
        while lines:
            try:
                results = await publish(
                    self.engine,
                    self.policy,
                    publisher,
                    kind,
                    self.department,
                    [line.record for line in lines],
                    dry_run=self.dry_run,
                )
            except InvalidRecords as error:
                lines, rejected = self._set_aside(kind, lines, error.problems)
                rejections += rejected
                continue
            if self.dry_run:
                created = (r.source_id for r in results if r.change is Change.CREATED)
                self.planned[kind.type_name].update(created)
            return results, rejections
        return [], rejections

    def _set_aside(
        self, kind: Kind, lines: list[Line], problems: list[Problem]
    ) -> tuple[list[Line], list[Rejection]]:
        by_index: defaultdict[int, list[Problem]] = defaultdict(list)
        for problem in problems:
            by_index[problem.index].append(problem)
        if not by_index or not set(by_index) <= set(range(len(lines))):
            raise RuntimeError(f"publishing rejected {kind.name} without naming a record of them")

        def where(match: re.Match[str]) -> str:
            return f"line {lines[int(match[1])].number}"

        kept, rejections = [], []
        for index, line in enumerate(lines):
            if index not in by_index:
                kept.append(line)
                continue
            real = [p for p in by_index[index] if not self._awaits_file(kind, line, p)]
            if not real:  # dry run: fine once the records it refers to are imported
                self.tally.deferred += 1
                if line.source_id:
                    self.planned[kind.type_name].add(line.source_id)
                continue
            rejections += [
                Rejection(
                    line.number,
                    kind.name,
                    p.source_id or line.source_id,
                    p.field,
                    re.sub(r"records\[(\d+)\]( of this batch)?", where, p.message),
                )
                for p in real
            ]
        return kept, rejections

    def _awaits_file(self, kind: Kind, line: Line, problem: Problem) -> bool:
        """In a dry run nothing is stored, so a reference to a record that a line before
        would create cannot resolve: that is not the line's fault."""
        if not self.dry_run:
            return False
        for reference in kind.references:
            value = line.record.get(reference.field)
            if problem.field == reference.field and isinstance(value, str):
                return value.strip() in self.planned[reference.kind]
        return False

    def _count(
        self, lines: list[Line], published: list[Published], rejections: list[Rejection]
    ) -> None:
        tally = self.tally
        tally.lines += len(lines)
        tally.changes.update(result.change.value for result in published)
        tally.rejected += len({rejection.line for rejection in rejections})
        tally.problems += len(rejections)
        tally.shown += rejections[: max(0, SHOWN - len(tally.shown))]
        if self.report is not None and rejections:
            try:
                self.report.writelines(
                    json.dumps(r.as_dict(), ensure_ascii=False) + "\n" for r in rejections
                )
                self.report.flush()
            except OSError as error:
                raise Stop(f"cannot write the report {self.report.name}: {error}") from None
