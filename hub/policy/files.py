"""The policy files under ``policies/``, read and checked line by line.

``model.conf`` (the Casbin model), ``policy.csv`` (the rules), ``catalog.csv`` (every field
of every shared type with its sharing attribute), ``purposes.csv`` (the purposes a request
may state), ``requirements.csv`` (the codes of rectification requirements) and
``conflicts.csv`` (pairs of requirement codes that contradict each other). Every problem
names its file and line; decisions.py builds a ``Policy`` only from files without any.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from casbin.model import Model

from hub.domain import DEPARTMENTS, Role
from hub.policy.relations import RELATED_TYPES, Relation
from hub.policy.supervision import (
    COLOURS_FILE,
    LIMITS_FILE,
    ColourRule,
    ColourRules,
    Limits,
    read_colour_rules,
    read_limits,
)

__all__ = [
    "ACTIONS",
    "READ",
    "ROLES",
    "WRITE",
    "CatalogEntry",
    "Files",
    "Line",
    "PolicyError",
    "Problem",
    "SharedFields",
    "Sharing",
    "read",
    "read_conflicts",
    "read_inspection_limits",
    "version",
]

ROLES = tuple(Role)
READ = "read"
WRITE = "write"  # publish records of a type: the object is the type name, e.g. Acceptance
ACTIONS = (READ, WRITE)
EFFECTS = ("allow", "deny")
# type -> field -> whether the field is decided (nullable in the schema) rather than
# structural (identity and links, served with every record that is served).
SharedFields = Mapping[str, Mapping[str, bool]]


class Sharing(StrEnum):
    UNCONDITIONAL = "unconditional"  # 无条件共享
    CONDITIONAL = "conditional"  # 有条件共享: needs a stated purpose
    NONE = "none"  # 不予共享: never served to another department


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class PolicyError(Exception):
    """The policy files are inconsistent; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    coordinate: str
    sharing: Sharing
    basis: str
    description: str
    line: int


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    values: tuple[str, ...]

    @property
    def text(self) -> str:
        return ", ".join(self.values)


@dataclass
class Files:
    directory: Path
    model: str = ""
    rules: list[Line] = field(default_factory=list)
    catalog: dict[str, CatalogEntry] = field(default_factory=dict)
    purposes: dict[str, str] = field(default_factory=dict)
    requirements: dict[str, str] = field(default_factory=dict)  # code -> name
    # code -> the departments whose remit the requirement is in: only they order it.
    requirement_departments: dict[str, frozenset[str]] = field(default_factory=dict)
    # Pairs of requirement codes that contradict each other -> why.
    conflicts: dict[frozenset[str], str] = field(default_factory=dict)
    # What makes an enterprise's colour, and how many inspections a period bears.
    colour_rules: tuple[ColourRule, ...] = ()
    limits: Limits = field(default_factory=lambda: Limits([]))
    problems: list[Problem] = field(default_factory=list)

    def problem(self, name: str, line: int, message: str) -> None:
        self.problems.append(Problem(self.directory / name, line, message))


def read(directory: Path, fields: SharedFields) -> Files:
    files = Files(directory)
    try:
        files.model = (directory / "model.conf").read_text(encoding="utf-8")
        Model().load_model_from_text(files.model)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        files.problem("model.conf", 1, f"cannot read the Casbin model: {error}")
    _read_catalog(files, fields)
    _read_rules(files, fields)
    _read_purposes(files)
    _read_requirements(files)
    files.colour_rules = read_colour_rules(
        files,
        _csv_rows(files, COLOURS_FILE, ["rule", "colour", "condition", "days", "description"]),
    )
    files.limits = read_limits(files, _csv_rows(
        files, LIMITS_FILE, ["industry", "colour", "days", "warn_at", "limit", "basis"]
    ))  # fmt: skip
    return files


FILES = (
    "model.conf", "policy.csv", "catalog.csv", "purposes.csv", "requirements.csv",
    "conflicts.csv", COLOURS_FILE, LIMITS_FILE,
)  # fmt: skip
COLOUR_HEADER = ["rule", "colour", "condition", "days", "description"]
LIMIT_HEADER = ["industry", "colour", "days", "warn_at", "limit", "basis"]
PURPOSE_CODE = re.compile(r"[a-z][a-z0-9-]{1,63}")


def _read_purposes(files: Files) -> None:
    """purposes.csv: code,name,description; optional (without it nothing can be granted)."""
    name = "purposes.csv"
    path = files.directory / name
    if not path.exists():
        return
    reader = csv.reader(path.read_text(encoding="utf-8").splitlines())
    if next(reader, []) != ["code", "name", "description"]:
        files.problem(name, 1, "the header must be code,name,description")
        return
    for row in reader:
        line = reader.line_num
        if len(row) != 3:
            files.problem(name, line, f"expected 3 columns, found {len(row)}")
            continue
        code, title, _ = (value.strip() for value in row)
        if not PURPOSE_CODE.fullmatch(code):
            files.problem(name, line, f"{code!r} is not a code: lower-case letters, digits, -")
        elif code in files.purposes:
            files.problem(name, line, f"purpose {code!r} is listed twice")
        elif not title:
            files.problem(name, line, f"purpose {code!r} needs a name")
        else:
            files.purposes[code] = title


REQUIREMENT_CODE = PURPOSE_CODE


def _read_requirements(files: Files) -> None:
    """requirements.csv (code,name,departments,description: the departments whose remit the
    requirement is in, space-separated, or *) and conflicts.csv (code,conflicts_with,reason):
    optional; without them rectifications carry no codes and nothing conflicts."""
    rows = _csv_rows(files, "requirements.csv", ["code", "name", "departments", "description"])
    codes = {department.code for department in DEPARTMENTS}
    for line, (code, title, remit, _) in rows:
        named = set(remit.split())
        if not REQUIREMENT_CODE.fullmatch(code):
            files.problem("requirements.csv", line,
                          f"{code!r} is not a code: lower-case letters, digits, -")  # fmt: skip
        elif code in files.requirements:
            files.problem("requirements.csv", line, f"requirement {code!r} is listed twice")
        elif not title:
            files.problem("requirements.csv", line, f"requirement {code!r} needs a name")
        elif not named or (named != {"*"} and not named <= codes):
            files.problem("requirements.csv", line,
                          f"the departments that order {code} must be department codes "
                          f"({_list(codes)}) or *, not {remit!r}")  # fmt: skip
        else:
            files.requirements[code] = title
            files.requirement_departments[code] = frozenset(codes if "*" in named else named)
    for line, (code, other, reason) in _csv_rows(
        files, "conflicts.csv", ["code", "conflicts_with", "reason"]
    ):
        pair = frozenset((code, other))
        unknown = [c for c in (code, other) if c not in files.requirements]
        if unknown:
            files.problem("conflicts.csv", line, f"unknown requirement code {unknown[0]!r}; "
                          "requirements.csv lists the codes")  # fmt: skip
        elif len(pair) == 1:
            files.problem("conflicts.csv", line, f"{code!r} cannot conflict with itself")
        elif pair in files.conflicts:
            files.problem("conflicts.csv", line, f"{code} and {other} are listed twice")
        elif not reason:
            files.problem("conflicts.csv", line, f"say why {code} and {other} contradict")
        else:
            files.conflicts[pair] = reason


def read_conflicts(directory: Path) -> dict[frozenset[str], str]:
    """The pairs of requirement codes that contradict, from ``directory`` alone (for demo
    data, which has no policy of its own); PolicyError when the two files have problems."""
    files = Files(directory)
    _read_requirements(files)
    if files.problems:
        raise PolicyError(files.problems)
    return files.conflicts


def read_colours(directory: Path) -> ColourRules:
    """The colour rules in ``directory`` alone (for demo data, which has no policy of its
    own); PolicyError when colours.csv has problems."""
    files = Files(directory)
    rules = read_colour_rules(files, _csv_rows(files, COLOURS_FILE, COLOUR_HEADER))
    if files.problems:
        raise PolicyError(files.problems)
    return ColourRules(rules, colours_version(directory))


def read_inspection_limits(directory: Path) -> Limits:
    """The inspection limits in ``directory`` alone (for demo data, which has no policy of
    its own); PolicyError when inspection-limits.csv has problems."""
    files = Files(directory)
    limits = read_limits(files, _csv_rows(files, LIMITS_FILE, LIMIT_HEADER))
    if files.problems:
        raise PolicyError(files.problems)
    return limits


def _csv_rows(files: Files, name: str, header: list[str]) -> list[tuple[int, list[str]]]:
    """The rows of an optional CSV file with this header, each with its line number."""
    path = files.directory / name
    if not path.exists():
        return []
    reader = csv.reader(path.read_text(encoding="utf-8").splitlines())
    if next(reader, []) != header:
        files.problem(name, 1, f"the header must be {','.join(header)}")
        return []
    rows = []
    for row in reader:
        if len(row) != len(header):
            files.problem(
                name, reader.line_num, f"expected {len(header)} columns, found {len(row)}"
            )
        else:
            rows.append((reader.line_num, [value.strip() for value in row]))
    return rows


def _read_catalog(files: Files, fields: SharedFields) -> None:
    name = "catalog.csv"
    try:
        text = (files.directory / name).read_text(encoding="utf-8")
    except OSError as error:
        files.problem(name, 1, f"cannot read the catalogue: {error}")
        return
    expected = ["type", "field", "sharing", "basis", "description"]
    reader = csv.reader(text.splitlines())
    header = next(reader, [])
    if header != expected:
        files.problem(name, 1, f"the header must be {','.join(expected)}")
        return
    for row in reader:
        line = reader.line_num
        if len(row) != len(expected):
            files.problem(name, line, f"expected {len(expected)} columns, found {len(row)}")
            continue
        type_name, field_name, sharing, basis, description = (value.strip() for value in row)
        coordinate = f"{type_name}.{field_name}"
        if type_name not in fields:
            files.problem(name, line, f"unknown type {type_name!r}; shared types: {_list(fields)}")
            continue
        if field_name not in fields[type_name]:
            files.problem(
                name, line, f"{type_name} has no field {field_name!r}: {_list(fields[type_name])}"
            )
            continue
        if sharing not in set(Sharing):
            files.problem(name, line, f"sharing must be one of {_list(Sharing)}, not {sharing!r}")
            continue
        if not basis:
            files.problem(name, line, f"{coordinate} needs a legal basis or reason")
        if coordinate in files.catalog:
            first = files.catalog[coordinate].line
            files.problem(name, line, f"{coordinate} is already catalogued on line {first}")
            continue
        if not fields[type_name][field_name] and sharing != Sharing.UNCONDITIONAL:
            files.problem(
                name,
                line,
                f"{coordinate} is served with every {type_name} (identity or link); "
                "it must be unconditional",
            )
        files.catalog[coordinate] = CatalogEntry(
            coordinate, Sharing(sharing), basis, description, line
        )
    for type_name, type_fields in fields.items():
        for field_name in type_fields:
            if f"{type_name}.{field_name}" not in files.catalog:
                files.problem(
                    name,
                    reader.line_num + 1,
                    f"{type_name}.{field_name} has no catalogue entry; add a line "
                    f"{type_name},{field_name},<sharing>,<basis>,<description>",
                )


def _read_rules(files: Files, fields: SharedFields) -> None:
    name = "policy.csv"
    try:
        text = (files.directory / name).read_text(encoding="utf-8")
    except OSError as error:
        files.problem(name, 1, f"cannot read the policy: {error}")
        return
    departments = {department.code for department in DEPARTMENTS}
    coordinates = {f"{t}.{f}" for t, type_fields in fields.items() for f in type_fields}
    # Records a department publishes: the types with an owner's own id.
    publishable = {t for t, type_fields in fields.items() if "sourceId" in type_fields}
    department_groups: set[str] = set()
    field_groups: dict[str, set[str]] = {}
    groupings: list[Line] = []
    relations = {relation.value for relation in Relation}
    permissions: list[Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        values = tuple(value.strip() for value in next(csv.reader([raw])))
        kind = values[0]
        arity = {"p": 6, "g": 3, "g2": 3}.get(kind)
        problem = None
        if arity is None:
            problem = f"a line starts with p, g or g2, not {kind!r}"
        elif len(values) != arity:
            problem = f"a {kind} line has {arity - 1} values, not {len(values) - 1}"
        elif kind == "p":
            permissions.append(Line(number, values))
        elif kind == "g":
            member, group = values[1:]
            if member not in departments:
                problem = f"unknown department {member!r}: {_list(departments)}"
            elif group in departments or group in ROLES or group in relations:
                problem = f"group {group!r} is named like a department, a role or a relation"
            department_groups.add(group)
            groupings.append(Line(number, values))
        else:
            member, group = values[1:]
            if member not in coordinates:
                problem = f"unknown field {member!r}; catalog.csv lists the fields"
            elif "." in group:
                problem = f"field group {group!r} must not contain a dot"
            field_groups.setdefault(group, set()).add(member)
            groupings.append(Line(number, values))
        if problem:
            files.problem(name, number, problem)
    # "department" is a role; a relation stands for the caller's part in the record.
    subjects = departments | department_groups | set(ROLES) | relations | {"*"}
    owners = departments | department_groups | {"*", "self"}
    for line in permissions:
        subject, owner, obj, action, effect = line.values[1:]
        for complaint in (
            subject not in subjects
            and f"unknown subject {subject!r}: a department, a group, a role or *",
            owner not in owners and f"unknown owner {owner!r}: a department, a group, self or *",
            action == READ
            and not _known_object(obj, coordinates, field_groups, fields)
            and f"unknown object {obj!r}: Type.field, Type.*, a field group or *",
            action == WRITE
            and obj not in publishable | {"*"}
            and f"unknown object {obj!r} to write: one of {_list(publishable)} or *",
            action not in ACTIONS and f"the action must be one of {_list(ACTIONS)}, not {action!r}",
            effect not in EFFECTS and f"the effect must be allow or deny, not {effect!r}",
        ):
            if complaint:
                files.problem(name, line.number, complaint)
        if subject in relations:
            for complaint in _relation_problems(Relation(subject), owner, obj, action, fields,
                                                field_groups):  # fmt: skip
                files.problem(name, line.number, complaint)
    # `department` stands for every department, as the role of department clients.
    every_department = [Line(0, ("g", code, Role.DEPARTMENT.value)) for code in sorted(departments)]
    files.rules = every_department + groupings + permissions


def _relation_problems(
    relation: Relation,
    owner: str,
    obj: str,
    action: str,
    fields: SharedFields,
    field_groups: Mapping[str, set[str]],
) -> list[str]:
    """What is wrong with a line whose subject is a relation: it opens fields to read of
    another department's records of the types the relation is a part in."""
    related = RELATED_TYPES[relation]
    if action == WRITE:
        return [f"{relation} is a part in a record: it opens fields to read, never to publish"]
    if owner == "self":
        return [f"{relation} is a part in another department's record; self is the caller's own"]
    coordinates = {f"{t}.*" for t in fields} if obj == "*" else field_groups.get(obj, {obj})
    strangers = sorted(c for c in coordinates if c.partition(".")[0] not in related)
    if not strangers:
        return []
    return [
        f"{relation} is a part in {' and '.join(related)} records only; {obj} reaches "
        f"{', '.join(strangers)}"
    ]


def _known_object(
    obj: str, coordinates: set[str], field_groups: Mapping[str, set[str]], fields: SharedFields
) -> bool:
    if obj == "*" or obj in coordinates or obj in field_groups:
        return True
    return obj.endswith(".*") and obj.removesuffix(".*") in fields


def _list(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def colours_version(directory: Path) -> str:
    """The version of the colour rules alone: colours kept under another version are
    computed again (hub/publishing/colours.py), which a change to any other policy file must
    not cause."""
    path = directory / COLOURS_FILE
    return hashlib.sha256(path.read_bytes() if path.exists() else b"").hexdigest()[:16]


def version(directory: Path) -> str:
    digest = hashlib.sha256()
    for name in FILES:
        path = directory / name
        digest.update(name.encode() + b"\0")
        digest.update((path.read_bytes() if path.exists() else b"") + b"\0")
    return digest.hexdigest()[:16]
