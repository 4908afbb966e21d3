"""Batched reads: one SQL statement per relation per request, never one per row.

Every loader is keyed by the parent's id (and, for dated lists, the requested date
range), so a request for 1 or for 100 enterprises issues the same statements. What each
type's rows are made of is in sources.py.

For an enterprise's own credential every statement, of the enterprise and of every record,
is also narrowed to that one enterprise (``Source.own``, its USCC bound when the statement
runs): besides the root fields it may ask (hub/schema/roots.py), what it reads of the
database is held to its own enterprise, so a way in that slipped through would find
nothing of another's.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import date
from functools import cached_property
from itertools import groupby
from operator import itemgetter
from typing import Any, Generic, NamedTuple, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, false, or_, select
from sqlalchemy.orm import InstrumentedAttribute
from strawberry.dataloader import DataLoader

from hub import models
from hub.db import one_of
from hub.domain import DEPARTMENTS
from hub.policy import Scope
from hub.schema.reader import Reader
from hub.schema.sources import (
    ACCEPTANCE,
    ACTION_CODE,
    ASSISTANT,
    CREDIT_RECORD,
    CREDIT_REPAIR,
    DEPARTMENT,
    ENTERPRISE,
    FINDING,
    INSPECTION,
    INSPECTION_PLAN,
    OWN_ENTERPRISE,
    PARTICIPANT,
    PENALTY,
    RECORDS,
    RECTIFICATION,
    VERSION,
    Source,
    own_enterprise_id,
    relations,
)

__all__ = ["Children", "Loaders", "Parent", "Reader", "batched"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Parameters per statement stay far below SQLite's and PostgreSQL's limits.
MAX_BATCH = 5000


class Parent(NamedTuple):
    """The key of a child list: its parent's id and an optional inclusive date range."""

    id: int
    since: date | None = None
    until: date | None = None


def _loader(
    load: Callable[[list[K]], Awaitable[Sequence[T]]],
) -> DataLoader[K, T]:
    return DataLoader(load_fn=load, max_batch_size=MAX_BATCH)


async def batched(load: Callable[[list[K]], Awaitable[Sequence[T]]], keys: list[K]) -> list[T]:
    """What ``load`` gives for each of ``keys``, in their order: each key loaded once, in
    batches of MAX_BATCH; no future per key (the compiled path loads whole levels this way)."""
    unique = list(dict.fromkeys(keys))
    found: dict[K, T] = {}
    for start in range(0, len(unique), MAX_BATCH):
        chunk = unique[start : start + MAX_BATCH]
        found.update(zip(chunk, await load(chunk), strict=True))
    return [found[key] for key in keys]


class LevelLoader(Generic[K, T]):
    """Batches the key lists of all callers in one event-loop turn into one load.

    For children loaded a whole level at a time (see types.prefetch): like a DataLoader,
    one statement for all parents, but one future per caller instead of one per key.
    """

    def __init__(self, load_fn: Callable[[list[K]], Awaitable[Sequence[T]]]) -> None:
        self.load_fn = load_fn  # named as DataLoader's
        self._waiting: list[tuple[list[K], asyncio.Future[list[T]]]] = []

    async def load_many(self, keys: list[K]) -> list[T]:
        if not keys:
            return []
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[T]] = loop.create_future()
        if not self._waiting:
            loop.call_soon(lambda: loop.create_task(self._dispatch()))
        self._waiting.append((keys, answer))
        return await answer

    async def _dispatch(self) -> None:
        waiting, self._waiting = self._waiting, []
        keys = [key for caller_keys, _ in waiting for key in caller_keys]
        try:
            values = await batched(self.load_fn, keys)
        except Exception as error:  # every caller gets the failure
            for _, answer in waiting:
                if not answer.done():
                    answer.set_exception(error)
            return
        start = 0
        for caller_keys, answer in waiting:
            if not answer.done():
                answer.set_result(values[start : start + len(caller_keys)])
            start += len(caller_keys)


# The caller's scope of a record type: whose records it reads, and through which relations.
Scoped = Callable[[str], Scope]


class Statements:
    """What one caller's loaders read: statements narrowed to what the caller may see, made
    once per shape and scope (see shaped), run on the request's reader. Loaders refer to this,
    never to Loaders, so a request's loaders form no reference cycle: what a request loaded is
    freed when it ends, not when the cyclic collector next walks the heap."""

    def __init__(
        self, reader: Reader, scope: Scoped, caller: str | None, enterprise: str | None = None
    ) -> None:
        self.reader = reader
        self.scope = scope
        self.caller = caller  # the caller's department, where relations apply
        # The USCC of the enterprise whose own credential reads: every statement is held to it.
        self.enterprise = enterprise
        self.bound: dict[str, Any] = {} if enterprise is None else {OWN_ENTERPRISE: enterprise}

    async def rows(self, statement: Select[Any], values: Mapping[str, Any]) -> Sequence[Row[Any]]:
        """The rows of a statement made by ``shaped``, run with ``values`` and the caller's
        own enterprise, where it is held to one."""
        return await self.reader.rows(statement, {**values, **self.bound}, brief=True)

    @cached_property
    def relations(self) -> dict[str, dict[str, ColumnElement[Any]]]:
        return {} if self.caller is None else relations(self.caller)

    def visible(
        self, statement: Select[Any], model: Any, retracted: bool = False
    ) -> Select[Any] | None:
        """``statement`` narrowed to the records of ``model`` the caller may see (by owner, or
        by a relation to the record), with the caller's relations to each, and to records
        not retracted (unless asked); None when there are none."""
        scope = self.scope(model.__name__)
        related = self.relations.get(model.__name__, {})
        opening = [
            and_(related[name], one_of(model.owner, owners))
            for name, owners in scope.relations.items()
            if owners
        ]
        if not scope.owners and not opening:
            return None
        statement = statement.add_columns(
            *(related[name].label(f"as_{name}") for name in scope.relations)
        )
        if len(scope.owners) < len(DEPARTMENTS):
            statement = statement.where(or_(one_of(model.owner, scope.owners), *opening))
        if not retracted and hasattr(model, "retracted"):
            statement = statement.where(model.retracted == false())
        return statement

    def shaped(
        self,
        shape: Hashable,
        model: Any | None,
        build: Callable[[], Select[Any]],
        retracted: bool = False,
        *,
        own: ColumnElement[bool] | None = None,
    ) -> Select[Any] | None:
        """The statement ``build`` makes (its values bound by name, given when it runs: see
        ``rows``), narrowed to what the caller may see of ``model``'s owned records (see
        visible, and ``retracted``; None: no narrowing) and, for an enterprise's own
        credential, to that enterprise's rows by ``own`` (the source's ``Source.own``: a
        statement without one is refused to it); made once per ``shape`` and the caller's
        scope for every request: statements are immutable, and building one and SQLAlchemy's
        key for it cost about as much as running it."""
        held = self.enterprise is not None
        key: Hashable = (shape, held)
        if model is not None:
            scope = self.scope(model.__name__)
            key = (shape, held, self.caller, scope.owners, tuple(scope.relations.items()))
        if key not in _STATEMENTS:
            if len(_STATEMENTS) >= MAX_STATEMENTS:
                del _STATEMENTS[next(iter(_STATEMENTS))]
            statement = build()
            if held:
                if own is None:  # not known to be about one enterprise: read by none
                    raise ValueError(f"{shape} is not narrowed to one enterprise's rows")
                statement = statement.where(own)
            _STATEMENTS[key] = (
                statement if model is None else self.visible(statement, model, retracted)
            )
        return _STATEMENTS[key]


class Loaders:
    """The per-request DataLoaders; each caches within the request only.

    Loaders of owned records read only rows of the owners ``scope`` names for the record's
    type, or rows the caller has a relation to that opens them: what the caller may see
    nothing of is never read. Each row carries the caller's relations to it (``as_<name>``).
    """

    def __init__(
        self,
        reader: Reader,
        scope: Scoped,
        caller: str | None = None,
        enterprise: str | None = None,
    ) -> None:
        self.reader = reader
        self.statements = Statements(reader, scope, caller, enterprise)
        self._departments: asyncio.Future[dict[str, Row[Any]]] | None = None

    # Each loader is made when a resolver first asks for it: a small request builds few.
    @cached_property
    def enterprise(self) -> DataLoader[str, Row[Any] | None]:
        return _loader(_by_key(self.statements, ENTERPRISE, models.Enterprise.uscc, owned=False))

    @cached_property
    def inspection(self) -> DataLoader[int, Row[Any] | None]:
        return _loader(_by_key(self.statements, INSPECTION, models.Inspection.id))

    @cached_property
    def action_code(self) -> DataLoader[str, Row[Any] | None]:
        """The inspection an administrative-action code is registered to, retracted or not,
        whoever owns it: what the code stands for, before what the caller may read of it is
        decided (the statement is narrowed only by what narrows every statement)."""
        return _loader(
            _by_key(self.statements, ACTION_CODE, models.Inspection.action_code, owned=False)
        )

    @cached_property
    def penalty(self) -> DataLoader[int, Row[Any] | None]:
        return _loader(_by_key(self.statements, PENALTY, models.Penalty.id))

    @cached_property
    def acceptance(self) -> LevelLoader[int, Row[Any] | None]:
        return LevelLoader(_by_key(self.statements, ACCEPTANCE, models.Acceptance.rectification_id))

    @cached_property
    def credit_records(self) -> DataLoader[Parent, list[Row[Any]]]:
        return _loader(
            self._children(
                CREDIT_RECORD, models.CreditRecord.enterprise_id, models.CreditRecord.issued_on
            )
        )

    @cached_property
    def credit_repairs(self) -> LevelLoader[Parent, list[Row[Any]]]:
        return LevelLoader(
            self._children(
                CREDIT_REPAIR, models.CreditRepair.credit_record_id, models.CreditRepair.applied_on
            )
        )

    @cached_property
    def inspections(self) -> DataLoader[Parent, list[Row[Any]]]:
        return _loader(
            self._children(
                INSPECTION, models.Inspection.enterprise_id, models.Inspection.inspected_on
            )
        )

    @cached_property
    def findings(self) -> LevelLoader[Parent, list[Row[Any]]]:
        return LevelLoader(
            self._children(FINDING, models.InspectionFinding.inspection_id, None, owned=False)
        )

    @cached_property
    def participants(self) -> LevelLoader[Parent, list[Row[Any]]]:
        return LevelLoader(
            self._children(
                PARTICIPANT, models.InspectionParticipant.inspection_id, None, owned=False
            )
        )

    @cached_property
    def penalties(self) -> DataLoader[Parent, list[Row[Any]]]:
        return _loader(
            self._children(PENALTY, models.Penalty.enterprise_id, models.Penalty.decided_on)
        )

    @cached_property
    def rectifications(self) -> DataLoader[Parent, list[Row[Any]]]:
        return _loader(
            self._children(
                RECTIFICATION, models.Rectification.enterprise_id, models.Rectification.ordered_on
            )
        )

    @cached_property
    def assistants(self) -> LevelLoader[Parent, list[Row[Any]]]:
        return LevelLoader(
            self._children(
                ASSISTANT, models.RectificationAssistant.rectification_id, None, owned=False
            )
        )

    @cached_property
    def inspection_plans(self) -> DataLoader[Parent, list[Row[Any]]]:
        """An enterprise's plans, by month (text, YYYY-MM: never given a date range)."""
        return _loader(
            self._children(
                INSPECTION_PLAN, models.InspectionPlan.enterprise_id, models.InspectionPlan.month
            )
        )

    @cached_property
    def history(self) -> dict[str, DataLoader[int, list[Row[Any]]]]:
        """Every version of records of a type, oldest first; the versions of the records the
        caller reads, so no owner filter of their own."""
        return {type_name: _loader(_versions(self.statements, type_name)) for type_name in RECORDS}

    @cached_property
    def colours(self) -> DataLoader[int, list[Row[Any]]]:
        """The colours an enterprise took (its colour code's history), oldest first."""
        return _loader(_colours(self.statements))

    @cached_property
    def published(self) -> dict[str, DataLoader[int, Row[Any] | None]]:
        """Records as they are now, retracted ones too: what the change feed points at."""
        return {
            type_name: _loader(_by_key(self.statements, source, model.id, retracted=True))
            for type_name, (model, source) in RECORDS.items()
        }

    async def departments(self) -> dict[str, Row[Any]]:
        """All departments by code, read once per request however many records name one."""
        if self._departments is None:
            self._departments = asyncio.ensure_future(self._read_departments())
        return await self._departments

    async def _read_departments(self) -> dict[str, Row[Any]]:
        rows = await self.reader.rows(
            DEPARTMENT.select().order_by(models.Department.code), brief=True
        )
        return {row.code: row for row in rows}

    def _children(
        self,
        source: Source,
        parent: InstrumentedAttribute[int],
        dated: InstrumentedAttribute[date] | InstrumentedAttribute[str] | None,
        owned: bool = True,
    ) -> Children:
        return Children(self.statements, source, parent, dated, owned)


def _by_key(
    statements: Statements,
    source: Source,
    key: InstrumentedAttribute[Any],
    owned: bool = True,
    retracted: bool = False,
) -> Callable[[list[Any]], Awaitable[list[Row[Any] | None]]]:
    """Load one row per key (None where there is none, or none the caller may see)."""
    model = key.class_ if owned else None
    shape = ("by key", key.class_.__name__, key.key, owned, retracted)
    position = [column.key for column in source.columns].index(key.key)

    def build() -> Select[Any]:
        return source.select().where(one_of(key, name="keys"))

    async def load(keys: list[Any]) -> list[Row[Any] | None]:
        statement = statements.shaped(shape, model, build, retracted, own=source.own)
        rows = [] if statement is None else await statements.rows(statement, {"keys": keys})
        found = {row[position]: row for row in rows}
        return [found.get(k) for k in keys]

    return load


def _versions(
    statements: Statements, type_name: str
) -> Callable[[list[int]], Awaitable[list[list[Row[Any]]]]]:
    version = models.RecordVersion

    def build() -> Select[Any]:
        return (
            VERSION.select()
            .where(version.kind == type_name, one_of(version.record_id, name="ids"))
            .order_by(version.record_id, version.version)
        )

    async def load(record_ids: list[int]) -> list[list[Row[Any]]]:
        found: defaultdict[int, list[Row[Any]]] = defaultdict(list)
        statement = statements.shaped(("versions", type_name), None, build, own=VERSION.own)
        assert statement is not None  # noqa: S101 - not narrowed by owner
        for row in await statements.rows(statement, {"ids": record_ids}):
            found[row.record_id].append(row)
        return [found[record_id] for record_id in record_ids]

    return load


def _colours(statements: Statements) -> Callable[[list[int]], Awaitable[list[list[Row[Any]]]]]:
    change = models.ColourChange.__table__.c

    def build() -> Select[Any]:
        return (
            select(change.enterprise_id, change.colour, change.previous, change.since,
                   change.changed_at, change.reasons)
            .where(one_of(change.enterprise_id, name="ids"))
            .order_by(change.enterprise_id, change.id)
        )  # fmt: skip

    async def load(enterprise_ids: list[int]) -> list[list[Row[Any]]]:
        found: defaultdict[int, list[Row[Any]]] = defaultdict(list)
        statement = statements.shaped(
            ("colours",), None, build, own=own_enterprise_id(change.enterprise_id)
        )
        assert statement is not None  # noqa: S101 - not narrowed
        for row in await statements.rows(statement, {"ids": enterprise_ids}):
            found[row.enterprise_id].append(row)
        return [found[enterprise_id] for enterprise_id in enterprise_ids]

    return load


# Statements made once per shape and caller scope (Statements.shaped): the loaders' dozen
# shapes, times the scopes of the departments, purposes and policy versions in use.
_STATEMENTS: dict[Hashable, Select[Any] | None] = {}
MAX_STATEMENTS = 1024


class Children:
    """Each parent's list of rows of a child type, oldest first (by ``dated``, else by
    insertion): one statement per distinct date range asked for."""

    def __init__(
        self,
        statements: Statements,
        source: Source,
        parent: InstrumentedAttribute[int],
        dated: InstrumentedAttribute[date] | InstrumentedAttribute[str] | None,
        owned: bool,
    ) -> None:
        self.statements, self.source, self.parent, self.dated = statements, source, parent, dated
        self.model = parent.class_ if owned else None
        self.shape = ("children", parent.class_.__name__, parent.key)
        self.order: list[Any] = [parent, *([dated] if dated is not None else []),
                                 source.columns[0]]  # fmt: skip
        # The parent's id by its place among the source's columns (the caller's relations
        # come after them): rows arrive ordered by it, each parent's together.
        self.parent_id = itemgetter([column.key for column in source.columns].index(parent.key))

    async def __call__(self, keys: list[Parent]) -> list[list[Row[Any]]]:
        """Each key's list: a DataLoader's load function."""
        by_range: defaultdict[tuple[date | None, date | None], list[int]] = defaultdict(list)
        for key in keys:
            by_range[key.since, key.until].append(key.id)
        found: dict[Parent, list[Row[Any]]] = {}
        for (since, until), ids in by_range.items():
            for of, its in (await self.of(ids, since, until)).items():
                found[Parent(of, since, until)] = its
        return [found.get(key, []) for key in keys]

    async def of(
        self, ids: list[int], since: date | None = None, until: date | None = None
    ) -> dict[int, list[Row[Any]]]:
        """The lists of the parents ``ids`` (those with any), by parent id."""
        if not ids:
            return {}
        bounded = self.dated is not None
        since_set, until_set = bounded and since is not None, bounded and until is not None

        def build() -> Select[Any]:
            statement = self.source.select().where(one_of(self.parent, name="ids"))
            if since_set:
                statement = statement.where(self.dated >= bindparam("since"))
            if until_set:
                statement = statement.where(self.dated <= bindparam("until"))
            return statement.order_by(*self.order)

        shape = (*self.shape, since_set, until_set)
        statement = self.statements.shaped(shape, self.model, build, own=self.source.own)
        if statement is None:
            return {}
        values = {"ids": ids, **({"since": since} if since_set else {}),
                  **({"until": until} if until_set else {})}  # fmt: skip
        rows = await self.statements.rows(statement, values)
        return {of: list(its) for of, its in groupby(rows, self.parent_id)}
