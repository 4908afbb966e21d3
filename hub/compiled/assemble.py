"""The answer's objects made from admitted records: each shape of a plan compiled, once, into
one Python function that builds its dict in a single expression.

Interpreting a shape field by field costs a call and a lookup per value (6,500 values in the
100-enterprise dossier); the generated function reads each column by its place in the row,
checks only fields a policy may withhold, and serializes only where the GraphQL type changes
the value (strings, IDs and booleans are served as read). What it generates is made from the
schema and the plan alone: response keys and field names enter it as ``repr`` literals,
never as code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from graphql import get_named_type

from hub.compiled.plan import Field, Shape
from hub.errors import Forbidden
from hub.policy import Relations
from hub.schema import SHARED
from hub.schema.supervision import colour_code
from hub.schema.types import is_overdue

__all__ = ["Item", "Path", "assembler", "unlinked"]

# A response path as linked pairs (parent path, key or index), made only into a list when an
# error needs it: a record costs one small tuple instead of a copy of its whole path.
Path = tuple[Any, ...]
# Types whose serializer returns the stored value unchanged.
UNCHANGED = {"String", "ID", "Boolean"}
Make = Callable[[Any, "Item", Path], dict[str, Any]]


class Item:
    """A record admitted into the answer, with the children loaded for it."""

    __slots__ = ("children", "enterprise", "id", "owner", "region", "relations", "row", "withheld")

    def __init__(
        self,
        row: Any,
        withheld: Mapping[str, Forbidden],
        owner: str,
        enterprise: str,
        region: str,
        id: str,
        relations: Relations,
    ) -> None:  # what Admitted holds (Access.admit makes these in its place)
        self.row, self.withheld, self.owner, self.enterprise = row, withheld, owner, enterprise
        self.region, self.id, self.relations = region, id, relations
        # By field name for children loaded with the level, else by the plan's Field.
        self.children: dict[Any, Any] = {}


def unlinked(path: Path) -> list[str | int]:
    """A linked path as the list an error carries."""
    keys: list[str | int] = []
    while path:
        path, key = path
        keys.append(key)
    return keys[::-1]


def _one(run: Any, field: Field, kid: Item | None, path: Path) -> Any:
    return None if kid is None else assembler(field.shape)(run, kid, (path, field.key))


def _transferred(run: Any, field: Field, item: Item, path: Path) -> Any:
    code = item.row.transferred_to_code
    return None if code is None else run.answers[field.shape][code]


def plain(shape: Shape, value: Any) -> Any:
    """A plain object's answer (a colour code, its reasons...) as ``shape`` selects it."""
    if value is None:
        return None
    answer: dict[str, Any] = {}
    for field in shape.fields:
        if field.kind == "typename":
            answer[field.key] = field.value
            continue
        found = getattr(value, field.python_name)
        if field.kind == "plain":
            answer[field.key] = (
                [plain(field.shape, each) for each in found]
                if isinstance(found, list)
                else plain(field.shape, found)
            )
        else:
            answer[field.key] = None if found is None else field.serialize(found)
    return answer


# Colour codes as answered, by what they are made of: the shape, what the caller may see of
# the records behind them (the policy version, subject, purpose and kind of caller decide
# it) and the stored colour. Most enterprises' colours stay for weeks and dossiers are read
# again and again: made once, answered many times (nothing changes an answer once made).
MAX_COLOURS = 20_000
_COLOURS: dict[tuple[Any, ...], Any] = {}


def _colour(run: Any, field: Field, item: Item, path: Path) -> Any:
    row, access = item.row, run.access
    if row.colour is None:
        return None
    key = (field.shape, access.policy.version, access.principal.subject,
           access.purpose is not None, access.caller is not None, row.colour,
           row.colour_since, row.colour_reasons)  # fmt: skip
    made = _COLOURS.get(key)
    if made is None:
        if len(_COLOURS) >= MAX_COLOURS:
            _COLOURS.clear()
        made = _COLOURS[key] = plain(field.shape, colour_code(access, row))
    return made


# How fields other than columns are made, by kind (see plan.py), once allowed.
VALUES: dict[str, Callable[[Any, Field, Item, Path], Any]] = {
    "prefetched_one": lambda run, field, item, path: _one(
        run, field, item.children.get(field.name), path
    ),
    "departments": lambda run, field, item, path: list(
        map(run.answers[field.shape].__getitem__, item.children[field.name])
    ),
    "link": lambda run, field, item, path: _one(run, field, item.children.get(field), path),
    "history": lambda run, field, item, path: [
        run.version(field.shape, row, item.withheld) for row in item.children[field]
    ],
    "amount": lambda run, field, item, path: field.serialize(
        Decimal(item.row.amount_fen).scaleb(-2)
    ),
    "transferred": _transferred,
    "colour": _colour,
    "codes": lambda run, field, item, path: [
        field.serialize(code) for code in item.row.codes.split()
    ],
    "overdue": lambda run, field, item, path: field.serialize(
        is_overdue(item.row.due, item.row.state)
    ),
}


def assembler(shape: Shape) -> Make:
    """The function that makes ``shape``'s dict of a record: generated on first use."""
    made: Make | None = shape.make
    if made is None:
        made = shape.make = _generate(shape)
    return made


def _generate(shape: Shape) -> Make:
    shared = SHARED[shape.type_name]
    names: dict[str, Any] = {}
    entries, unchecked = [], []
    for n, field in enumerate(shape.fields):
        names[f"F{n}"] = field
        value = _value(field, n, names)
        unchecked.append(f"{field.key!r}: {value}")
        known = shared.get(field.name)
        if known is not None and known.decided:  # a policy may withhold it
            hidden = repr(known.python_name)
            value = (
                f"(run.error(withheld[{hidden}], F{n}, path) if {hidden} in withheld else {value})"
            )
        entries.append(f"{field.key!r}: {value}")
    source = (  # most records have nothing withheld: those skip every check
        "def make(run, item, path):\n"
        "    row = item.row\n"
        "    withheld = item.withheld\n"
        "    if not withheld:\n"
        f"        return {{{', '.join(unchecked)}}}\n"
        f"    return {{{', '.join(entries)}}}\n"
    )
    exec(compile(source, f"<hub.compiled {shape.type_name}>", "exec"), names)  # noqa: S102
    make: Make = names["make"]
    return make


def _value(field: Field, n: int, names: dict[str, Any]) -> str:
    """The expression of one field's value, once allowed, in the generated function."""
    kind = field.kind
    if kind == "typename":
        return repr(field.value)
    if kind == "id":
        value = "item.id"
    elif kind == "column":
        read = f"row[{field.index}]"
        if get_named_type(field.definition.type).name in UNCHANGED:  # type: ignore[union-attr]
            value = read
        else:
            names[f"S{n}"] = field.serialize
            value = f"(None if (v := {read}) is None else S{n}(v))"
    elif kind in ("records", "prefetched"):
        names[f"R{n}"] = field.shape
        children = (
            f"item.children[{field.name!r}]" if kind == "prefetched" else f"item.children[F{n}]"
        )
        names[f"M{n}"] = assembler(field.shape)  # the records' own, made once here
        value = f"[M{n}(run, kid, ((path, {field.key!r}), i)) for i, kid in enumerate({children})]"
    elif kind == "owner":  # the department's answer, made once per request and selection
        names[f"H{n}"] = field.shape
        value = f"run.answers[H{n}][item.owner]"
    else:
        names[f"V{n}"] = VALUES[kind]
        value = f"V{n}(run, F{n}, item, path)"
    return value
