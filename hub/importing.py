"""Importing a department's records from NDJSON or CSV files, a batch at a time.

Each batch of lines is published kind by kind in dependency order, so a line may refer to a
record on any line of the same batch. A publish call is all or nothing: a rejected record is
set aside with its line number and the rest published again, so one bad line never holds
back the others. Every batch that publishes or rejects anything is one access record, as a
GraphQL mutation would be, committed in one transaction with what the batch published: the
records and their access record stand or fall together. Lines are read, or set aside as
unreadable, in hub/reading.py; the command is in hub/cli/publish.py.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.audit import AccessEntry, AccessLog, Outcome, Trail
from hub.db import transaction
from hub.domain import DEPARTMENTS, Role
from hub.errors import Forbidden, InvalidRecords
from hub.policy import Policy
from hub.publishing import Change, Published, Publisher, publish
from hub.reading import Line, Stop
from hub.records import ACTION_CODE, KINDS, Kind, Problem

SHOWN = 50  # rejections printed; the report holds them all
DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
CHANGES = (Change.CREATED, Change.UPDATED, Change.UNCHANGED, Change.REPAIRED)


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
        self.codes: dict[str, Line] = {}  # action code -> the line of the inspection having it
        # Dry run: source ids of the records the file would create, by type.
        self.planned: defaultdict[str, set[str]] = defaultdict(set)

    async def batch(self, lines: list[Line]) -> None:
        started = time.perf_counter()
        trace_id = secrets.token_hex(16)
        publisher = Publisher(self.client, self.department, self.department, trace_id)
        rejections: list[Rejection] = []
        groups: dict[str, list[Line]] = defaultdict(list)
        for line in lines:
            problem, field = line.problem or self._repeats(line), line.field
            if problem is None and (problem := self._repeats_code(line)):
                field = ACTION_CODE.name
            if problem or line.kind is None:
                rejections.append(
                    Rejection(
                        line.number,
                        line.kind.name if line.kind else None,
                        line.source_id,
                        field,
                        problem or "",
                    )
                )
            else:
                groups[line.kind.name].append(line)
        for name in groups:  # before anything of the batch is published
            self._authorize(KINDS[name])
        published: list[Published] = []
        async with transaction(self.engine) as connection:
            for kind in KINDS.values():  # dependency order: what is referred to comes first
                if kind.name in groups:
                    done, rejected = await self._publish(
                        connection, kind, groups[kind.name], publisher
                    )
                    published += done
                    rejections += rejected
            rejections.sort(key=lambda rejection: rejection.line)
            if not self.dry_run and (published or rejections):
                entry = self._entry(published, rejections, trace_id, started)
                await self.log.append_within(connection, entry)
        self._count(lines, published, rejections)

    def _entry(
        self,
        published: list[Published],
        rejections: list[Rejection],
        trace_id: str,
        started: float,
    ) -> AccessEntry:
        trail = Trail()
        for result in published:
            trail.write(result.uscc, result.kind, result.change.value, str(result.record_id))
        outcome = Outcome.OK if not rejections else Outcome.PARTIAL if published else Outcome.ERROR
        return AccessEntry(
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

    def _repeats_code(self, line: Line) -> str | None:
        """A file gives each action code to one inspection, whatever the batches (a dry run
        stores none of them to compare the next batch with): a later line is rejected."""
        if line.kind is None or line.kind.type_name != "Inspection" or line.source_id is None:
            return None
        try:
            code = ACTION_CODE.parse(line.record.get(ACTION_CODE.name))
        except ValueError:
            return None  # publishing says what is wrong with it
        first = self.codes.setdefault(code, line)
        if first is line or first.source_id == line.source_id:
            return None
        return (
            f"repeats the action code of line {first.number} (sourceId {first.source_id}); every "
            "inspection needs a code of its own: check the code shown at the inspection"
        )

    async def _publish(
        self, connection: AsyncConnection, kind: Kind, lines: list[Line], publisher: Publisher
    ) -> tuple[list[Published], list[Rejection]]:
        """Publish, setting rejected records aside, until all the rest is published."""
        rejections: list[Rejection] = []
        while lines:
            try:
                results = await publish(
                    connection,
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
