"""Answering a read from its plan: the statements of each level, then the answer in one pass.

Arguments are read and checked once per field of the document, not once per parent: a
request whose arguments strawberry would refuse (a page size out of bounds, a cursor or
USCC that is not one, since after until) is declined before anything is read or recorded,
and strawberry answers it with its error. Then, level by level (enterprises, their lists,
the children of those, the records a rectification links to), one loader call per field
and level reads every parent's rows, and ``Access.admit`` decides and records each record
exactly as the strawberry path does. Nothing is awaited per record. Finally the answer is
made synchronously from the rows: a withheld value is null with its error at its own path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.types.arguments import convert_arguments

from hub.compiled.assemble import Item, Path, assembler, unlinked
from hub.compiled.plan import Decline, Field, Memo, Place, Plan, Shape
from hub.errors import BadUserInput, Forbidden, InvalidUSCC
from hub.publishing import Change
from hub.records import snake_case
from hub.schema import SHARED
from hub.schema.context import Context
from hub.schema.limits import variables_key
from hub.schema.loaders import Children, batched
from hub.schema.query import count, encode_cursor, page_of, withheld_enterprise
from hub.schema.types import LOADERS, date_range, is_overdue
from hub.uscc import parse_uscc

__all__ = ["answer"]

Level = tuple[Place, list[Shape], list["Item"]]
T = TypeVar("T")


async def answer(
    plan: Plan, schema: strawberry.Schema, variables: Mapping[str, Any] | None, context: Context
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The data and errors of the answer; Decline (before anything is read or recorded)
    where strawberry should answer instead: for an enterprise's own credential too, whose
    few root fields (hub/schema/roots.py) are not the dossier's bulk reads."""
    if context.access.principal.enterprise is not None:
        raise Decline("an enterprise's own credential")
    run = _Run(plan, schema, variables, context)
    await run.load()
    return run.data(), run.errors


class _Run:
    def __init__(
        self,
        plan: Plan,
        schema: strawberry.Schema,
        variables: Mapping[str, Any] | None,
        context: Context,
    ) -> None:
        self.plan = plan
        self.access = context.access
        self.loaders = context.loaders
        self.departments = self.access.departments
        self.errors: list[dict[str, Any]] = []
        self.values: dict[Field, Any] = {}
        # Every department as a shape selects it, by code: made once per request and shape
        # (read for each record's owner, so a dict's own lookup rather than a call). Made
        # from the departments alone: a run that referred to itself would be a cycle, and
        # everything it loaded would wait for the cyclic collector instead of being freed.
        self.answers = Memo(partial(_departments, self.departments))
        self.arguments = {
            field: self.page(*argued) if field.kind == "enterprises" else argued
            for field, argued in _arguments(plan, schema, variables).items()
        }

    def page(self, filter: Any, first: int, after: str | None) -> Any:
        """The statement of a page of enterprises this caller may see."""
        try:
            statement, conditions = page_of(self.access, filter, first, after)
        except BadUserInput:
            raise Decline("arguments") from None
        return statement, conditions, first

    def admit(
        self, place: Place, rows: Sequence[Any], parents: list[Item] | None = None
    ) -> list[Item]:
        return self.access.admit(place.type_name, rows, place.selected, parents, Item)

    def spread(
        self, place: Place, parents: list[Item], lists: list[Any], slot: Any, inherit: bool = False
    ) -> list[Item]:
        """Admit the rows of each parent's list in one go, and give each parent its own
        records in ``slot``; ``inherit``: rows without an owner of their own take their
        parent's (findings). A list may be a row or None (one child at most)."""
        rows, owners, counts = [], [], []
        for parent, found in zip(parents, lists, strict=True):
            found = found if isinstance(found, list) else [] if found is None else [found]
            rows += found
            if inherit:
                owners += [parent] * len(found)
            counts.append(len(found))
        items = self.admit(place, rows, owners if inherit else None)
        start = 0
        for parent, counted, found in zip(parents, counts, lists, strict=True):
            mine = items[start : start + counted]
            start += counted
            parent.children[slot] = mine if isinstance(found, list) else mine[0] if mine else None
        return items

    # Loading: one loader call per field and level.

    async def load(self) -> None:
        levels: list[Level] = []
        for root in self.plan.roots:
            if root.kind == "enterprise":
                row = await self.loaders.enterprise.load(self.arguments[root])
                hidden = None if row is None else withheld_enterprise(self.access, row)
                if row is None or hidden is not None:
                    self.values[root] = hidden
                    continue
                items = self.admit(root.place, [row])
                self.values[root] = items[0]
                levels.append((root.place, [root.shape], items))
            elif root.kind == "enterprises":
                statement, conditions, first = self.arguments[root]
                rows = await self.loaders.reader.rows(statement)
                items = self.admit(root.place, rows[:first])
                total = None
                if any(field.kind == "total_count" for field in root.shape.fields):
                    (counted,) = await self.loaders.reader.rows(count(conditions))
                    total = int(counted[0])
                self.values[root] = (items, len(rows) > first, total)
                nodes = [
                    node.shape for edges in root.shape.fields if edges.kind == "edges"
                    for node in edges.shape.fields if node.kind == "node"
                ]  # fmt: skip
                levels.append((root.place, nodes, items))
        while levels:
            expanded = await _together([self.expand(*level) for level in levels if level[2]])
            levels = [level for following in expanded for level in following]

    async def expand(self, place: Place, shapes: list[Shape], items: list[Item]) -> list[Level]:
        """Load what the query selects below ``items``; the levels that follow."""
        loads: list[Coroutine[Any, Any, Level | None]] = [
            self.children(place, shapes, items, name, child) for name, child in place.children
        ]  # loaded with the level, as types.prefetch does; then per response key
        for shape in shapes:
            for field in shape.fields:
                if field.kind == "records":
                    loads.append(self.records(field, items))
                elif field.kind == "link":
                    loads.append(self.links(field, items))
                elif field.kind == "history":
                    loads.append(self.history(place, field, items))
        return [level for level in await _together(loads) if level is not None]

    async def children(
        self, place: Place, shapes: list[Shape], items: list[Item], name: str, child: Place | None
    ) -> Level | None:
        """A child list (or child) of each record of a level that may read it."""
        hidden = SHARED[place.type_name][name].python_name
        readable = [item for item in items if hidden not in item.withheld]
        ids = [item.row[0] for item in readable]
        load = getattr(self.loaders, LOADERS[name]).load_fn
        if isinstance(load, Children):
            lists = await load.of(ids)
            found: list[Any] = [lists.get(record_id, []) for record_id in ids]
        else:  # one acceptance per rectification
            found = await batched(load, ids)
        if child is None:  # participants, assisting departments
            for parent, rows in zip(readable, found, strict=True):
                parent.children[name] = [row.department for row in rows]  # codes
            return None
        kids = self.spread(child, readable, found, name, inherit=name == "findings")
        below = [f.shape for s in shapes for f in s.fields if f.name == name]
        return (child, below, kids) if kids else None

    async def history(self, place: Place, field: Field, items: list[Item]) -> None:
        """Every version of each record of a level."""
        ids = [item.row[0] for item in items]
        versions = await batched(self.loaders.history[place.type_name].load_fn, ids)
        for parent, rows in zip(items, versions, strict=True):
            parent.children[field] = rows

    async def records(self, field: Field, items: list[Item]) -> Level:
        """An enterprise list (creditRecords, inspections...) of every enterprise of a level."""
        # inspectionPlans takes no arguments: no date range, nothing left out.
        since, until, overdue = self.arguments.get(field, (None, None, None))
        load: Children = getattr(self.loaders, LOADERS[field.name]).load_fn
        found = await load.of([item.row[0] for item in items], since, until)
        lists = [found.get(item.row[0], []) for item in items]
        if overdue is not None:
            lists = [[r for r in rows if is_overdue(r.due, r.state) is overdue] for rows in lists]
        return field.place, [field.shape], self.spread(field.place, items, lists, field)

    async def links(self, field: Field, items: list[Item]) -> Level:
        """The inspection or penalty each rectification of a level was ordered after."""
        readable = [
            item for item in items
            if field.python_name not in item.withheld and item.row[field.index] is not None
        ]  # fmt: skip
        loader = getattr(self.loaders, LOADERS[field.name])
        found = await batched(loader.load_fn, [item.row[field.index] for item in readable])
        return field.place, [field.shape], self.spread(field.place, readable, found, field)

    # The answer, made synchronously from what was loaded.

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for root in self.plan.roots:
            value = self.values.get(root)
            path: Path = ((), root.key)
            if root.kind == "typename":
                data[root.key] = root.value
            elif root.kind == "departments":
                data[root.key] = list(self.answers[root.shape].values())
            elif root.kind == "enterprises":
                data[root.key] = self.connection(root.shape, value, path)
            elif isinstance(value, Forbidden):
                data[root.key] = self.error(value, root, ())
            else:
                data[root.key] = None if value is None else self.record(root.shape, value, path)
        return data

    def error(self, error: Forbidden, field: Field, path: Path) -> Any:
        """Null for a withheld value, and its error at its path (as format_error has it)."""
        formatted: dict[str, Any] = {"message": error.message}
        if field.locations:
            formatted["locations"] = field.locations
        formatted["path"] = [*unlinked(path), field.key]
        formatted["extensions"] = error.extensions()
        self.errors.append(formatted)
        return None

    def connection(self, shape: Shape, value: Any, path: Path) -> dict[str, Any]:
        items, has_next, total = value
        answer: dict[str, Any] = {}
        for field in shape.fields:
            if field.kind == "edges":
                answer[field.key] = [
                    self.edge(field.shape, item, ((path, field.key), n))
                    for n, item in enumerate(items)
                ]
            elif field.kind == "page_info":
                answer[field.key] = {
                    info.key: has_next if info.kind == "has_next_page"
                    else (encode_cursor(items[-1].id) if items else None)
                    if info.kind == "end_cursor" else info.value
                    for info in field.shape.fields
                }  # fmt: skip
            elif field.kind == "total_count":
                answer[field.key] = total
            else:
                answer[field.key] = field.value
        return answer

    def edge(self, shape: Shape, item: Item, path: Path) -> dict[str, Any]:
        return {
            field.key: encode_cursor(item.id) if field.kind == "cursor"
            else self.record(field.shape, item, (path, field.key))
            if field.kind == "node" else field.value
            for field in shape.fields
        }  # fmt: skip

    def record(self, shape: Shape, item: Item, path: Path) -> dict[str, Any]:
        return assembler(shape)(self, item, path)

    def version(self, shape: Shape, row: Any, hidden: Mapping[str, Any]) -> dict[str, Any]:
        """One version of a record (Record.history)."""
        answer: dict[str, Any] = {}
        for field in shape.fields:
            if field.kind == "attribute":
                value = getattr(row, field.python_name)
                answer[field.key] = None if value is None else field.serialize(value)
            elif field.kind == "change":
                answer[field.key] = field.serialize(Change(row.change))
            elif field.kind == "publisher":
                answer[field.key] = self.answers[field.shape][row.publisher]
            elif field.kind == "changed":
                answer[field.key] = [
                    name for name in row.changed.split()
                    if snake_case(name.removesuffix("SourceId")) not in hidden
                ]  # fmt: skip
            else:
                answer[field.key] = field.value
        return answer


def _departments(departments: Mapping[str, Any], shape: Shape) -> dict[str, dict[str, Any]]:
    """Every department as ``shape`` selects it, by code."""
    return {code: _department(shape, department) for code, department in departments.items()}


def _department(shape: Shape, department: Any) -> dict[str, Any]:
    return {
        field.key: field.value if field.kind == "typename"
        else field.serialize(getattr(department, field.python_name))
        for field in shape.fields
    }  # fmt: skip


MAX_REMEMBERED_ARGUMENTS = 16  # sets of variables per plan


def _arguments(
    plan: Plan, schema: strawberry.Schema, variables: Mapping[str, Any] | None
) -> dict[Field, Any]:
    """The arguments of each argued field as its resolver would take them, checked as it
    checks them; Decline where strawberry should answer. The same variables give the same
    arguments, so they are made once per plan and variables (small ones: see variables_key)."""
    key = variables_key(variables)
    made = plan.arguments.get(key) if key is not None else None
    if made is None:
        try:
            coerced = get_variable_values(
                schema._schema, plan.operation.variable_definitions or (), dict(variables or {})
            )
            if isinstance(coerced, list):
                raise Decline("variables")
            made = {field: _argument(schema, field, coerced) for field in plan.argued}
        except Decline as declined:
            made = declined
        if key is not None:
            if len(plan.arguments) >= MAX_REMEMBERED_ARGUMENTS:
                del plan.arguments[next(iter(plan.arguments))]
            plan.arguments[key] = made
    if isinstance(made, Decline):
        raise Decline(*made.args)
    return made


def _argument(schema: strawberry.Schema, field: Field, coerced: Any) -> Any:
    definition = field.definition
    if definition is None:
        raise Decline(field.name)
    try:
        raw = get_argument_values(definition, field.nodes[0], coerced)
    except GraphQLError:
        raise Decline("arguments") from None
    converted = convert_arguments(
        raw,
        definition.extensions["strawberry-definition"].arguments,
        scalar_registry=schema.schema_converter.scalar_registry,
        config=schema.config,
    )
    try:
        if field.kind == "enterprise":
            return parse_uscc(converted["uscc"])
        if field.kind == "enterprises":  # first: defaults applied by get_argument_values
            return converted.get("filter"), converted["first"], converted.get("after")
        if field.kind == "records":
            since, until = converted.get("since"), converted.get("until")
            date_range(0, since, until)
            return since, until, converted.get("overdue")
    except (BadUserInput, InvalidUSCC):
        raise Decline("arguments") from None
    raise Decline(field.name)


async def _together(loads: list[Coroutine[Any, Any, T]]) -> list[T]:
    """What each of ``loads`` gives, in their order, run as tasks of their own: their
    statements go one after another on the request's connection (the reader's turn is
    first come, first served), and the rows of each are admitted while the next is read."""
    if len(loads) == 1:
        return [await loads[0]]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(load) for load in loads]
    except BaseExceptionGroup as failed:  # the others cancelled: the first failure, as it is
        raise failed.exceptions[0]  # noqa: B904 - the group adds nothing to it
    return [task.result() for task in tasks]
