"""Who may read which field of which department's records: Casbin over the field catalogue.

``policies/`` holds three files: ``model.conf`` (the Casbin model), ``policy.csv`` (the rules)
and ``catalog.csv`` (every field of every shared type with its sharing attribute). A
``Policy`` is one immutable version of them: it decides (subject, owner, Type.field) once
and keeps the decision for as long as it is the current version, so the number of Casbin
evaluations never grows with the rows of an answer. A reload builds a new ``Policy``.

The sharing attribute bounds what any rule can do: ``none`` fields never reach another
department, ``conditional`` ones only with a stated purpose.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import casbin
from casbin.model import Model

from hub.domain import DEPARTMENTS, Role

__all__ = [
    "ROLES",
    "CatalogEntry",
    "Decision",
    "Policy",
    "PolicyError",
    "PolicyStore",
    "Problem",
    "Sharing",
    "lint",
    "load_policy",
]

logger = logging.getLogger("hub.policy")

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
class Decision:
    allowed: bool
    reason: str
    # The policy line that decided, as "policy.csv:57: p, market, ecology, ..."; None when
    # no line matched (default deny) or the catalogue decided.
    rule: str | None
    sharing: Sharing
    # Allowed for another department only because (or only when) a purpose is stated.
    needs_purpose: bool = False
    # The version of the policy files that decided.
    version: str = ""


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    values: tuple[str, ...]

    @property
    def text(self) -> str:
        return ", ".join(self.values)


@dataclass
class _Files:
    directory: Path
    model: str = ""
    rules: list[_Line] = field(default_factory=list)
    catalog: dict[str, CatalogEntry] = field(default_factory=dict)
    purposes: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def problem(self, name: str, line: int, message: str) -> None:
        self.problems.append(Problem(self.directory / name, line, message))


class Policy:
    """One version of the policy files, with its decisions cached."""

    def __init__(self, files: _Files, fields: SharedFields, version: str) -> None:
        self.version = version
        self.directory = files.directory
        self.catalog = files.catalog
        # Purposes a request may state (code -> name), from purposes.csv: grants of
        # conditional fields are for one of them.
        self.purposes = files.purposes
        # Field groups (g2 lines): group -> the coordinates in it.
        self.field_groups: dict[str, set[str]] = {}
        for line in files.rules:
            if line.values[0] == "g2":
                self.field_groups.setdefault(line.values[2], set()).add(line.values[1])
        self.fields = fields
        self.evaluations = 0  # Casbin evaluations so far; tests count them
        self._decider = _enforcer(files.model, files.rules)
        # The same model with allow lines only: its match is the allow line that decided.
        allow_only = re.sub(r"(?m)^e\s*=.*$", "e = some(where (p.eft == allow))", files.model)
        self._explainer = _enforcer(allow_only, files.rules)
        self._lines = {line.values[1:]: line for line in files.rules if line.values[0] == "p"}
        self._decisions: dict[tuple[str, str, str, bool], Decision] = {}
        self._writes: dict[tuple[str, str, str], Decision] = {}
        self._readable: dict[tuple[str, str, str, bool], bool] = {}

    def decide(self, subject: str, owner: str, coordinate: str, *, purpose: bool) -> Decision:
        """May ``subject`` read ``coordinate`` of ``owner``'s records (with a stated purpose)?"""
        key = (subject, owner, coordinate, purpose)
        decision = self._decisions.get(key)
        if decision is None:
            decided = self._decide(subject, owner, coordinate, purpose)
            decision = self._decisions[key] = replace(decided, version=self.version)
        return decision

    def decide_write(self, subject: str, owner: str, type_name: str) -> Decision:
        """May ``subject`` publish (create, change or retract) ``owner``'s records of a type?"""
        key = (subject, owner, type_name)
        decision = self._writes.get(key)
        if decision is None:
            sharing = Sharing.UNCONDITIONAL  # not a field: the catalogue has no say
            self.evaluations += 1
            allowed, matched = self._decider.enforce_ex(subject, owner, type_name, WRITE)
            if allowed:
                rule = self._cite(self._explainer.enforce_ex(subject, owner, type_name, WRITE)[1])
                decided = Decision(True, f"allowed by {rule}", rule, sharing)
            elif matched:
                rule = self._cite(matched)
                decided = Decision(False, f"denied by {rule}", rule, sharing)
            else:
                decided = Decision(
                    False,
                    f"no policy line lets {subject} publish {owner}'s {type_name} records",
                    None,
                    sharing,
                )
            decision = self._writes[key] = replace(decided, version=self.version)
        return decision

    def readable(self, subject: str, owner: str, type_name: str, *, purpose: bool) -> bool:
        """Whether ``subject`` may read anything of ``owner``'s records of this type."""
        key = (subject, owner, type_name, purpose)
        readable = self._readable.get(key)
        if readable is None:
            readable = self._readable[key] = any(
                self.decide(subject, owner, f"{type_name}.{name}", purpose=purpose).allowed
                for name, decided in self.fields[type_name].items()
                if decided
            )
        return readable

    def _decide(self, subject: str, owner: str, coordinate: str, purpose: bool) -> Decision:
        entry = self.catalog[coordinate]
        other = subject != owner
        if other and entry.sharing is Sharing.NONE:
            return Decision(
                False,
                f"{coordinate} is not shared with other departments: {entry.basis}",
                None,
                entry.sharing,
            )
        self.evaluations += 1
        allowed, matched = self._decider.enforce_ex(subject, owner, coordinate, READ)
        if not allowed:
            if matched:
                rule = self._cite(matched)
                return Decision(False, f"denied by {rule}", rule, entry.sharing)
            return Decision(
                False,
                f"no policy line shares {coordinate} of {owner} with {subject}",
                None,
                entry.sharing,
            )
        self.evaluations += 1
        rule = self._cite(self._explainer.enforce_ex(subject, owner, coordinate, READ)[1])
        if other and entry.sharing is Sharing.CONDITIONAL:
            if not purpose:
                return Decision(
                    False,
                    f"{coordinate} is shared on condition: state the purpose of the request "
                    "in the X-Hub-Purpose header",
                    rule,
                    entry.sharing,
                    needs_purpose=True,
                )
            return Decision(
                True, f"allowed with a stated purpose by {rule}", rule, entry.sharing, True
            )
        return Decision(True, f"allowed by {rule}", rule, entry.sharing)

    def unshared_leaks(self) -> list[Problem]:
        """Allow lines that would serve a ``none`` field to another department."""
        problems: dict[tuple[int, str], Problem] = {}
        codes = [department.code for department in DEPARTMENTS]
        for entry in self.catalog.values():
            if entry.sharing is not Sharing.NONE:
                continue
            for subject, owner in ((s, o) for s in codes for o in codes if s != o):
                allowed, _ = self._decider.enforce_ex(subject, owner, entry.coordinate, READ)
                if not allowed:
                    continue
                matched = self._explainer.enforce_ex(subject, owner, entry.coordinate, READ)[1]
                line = self._lines[tuple(matched)]
                problems.setdefault(
                    (line.number, entry.coordinate),
                    Problem(
                        self.directory / "policy.csv",
                        line.number,
                        f"shares {entry.coordinate} with other departments (e.g. {subject} reading "
                        f"{owner}'s), but catalog.csv:{entry.line} says it is not shared: "
                        f"{entry.basis}",
                    ),
                )
        return list(problems.values())

    def _cite(self, values: Iterable[str]) -> str:
        line = self._lines[tuple(values)]
        return f"policy.csv:{line.number}: {line.text}"


def _enforcer(model_text: str, rules: list[_Line]) -> casbin.Enforcer:
    model = Model()
    model.load_model_from_text(model_text)
    enforcer = casbin.Enforcer(model)
    for line in rules:
        kind, *values = line.values
        if kind == "p":
            enforcer.add_policy(*values)
        else:
            enforcer.add_named_grouping_policy(kind, *values)
    return enforcer


def _read(directory: Path, fields: SharedFields) -> _Files:
    files = _Files(directory)
    try:
        files.model = (directory / "model.conf").read_text(encoding="utf-8")
        Model().load_model_from_text(files.model)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        files.problem("model.conf", 1, f"cannot read the Casbin model: {error}")
    _read_catalog(files, fields)
    _read_rules(files, fields)
    _read_purposes(files)
    return files


PURPOSE_CODE = re.compile(r"[a-z][a-z0-9-]{1,63}")


def _read_purposes(files: _Files) -> None:
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


def _read_catalog(files: _Files, fields: SharedFields) -> None:
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


def _read_rules(files: _Files, fields: SharedFields) -> None:
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
    field_groups: set[str] = set()
    groupings: list[_Line] = []
    permissions: list[_Line] = []
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
            permissions.append(_Line(number, values))
        elif kind == "g":
            member, group = values[1:]
            if member not in departments:
                problem = f"unknown department {member!r}: {_list(departments)}"
            elif group in departments or group in ROLES:
                problem = f"group {group!r} is named like a department or a role"
            department_groups.add(group)
            groupings.append(_Line(number, values))
        else:
            member, group = values[1:]
            if member not in coordinates:
                problem = f"unknown field {member!r}; catalog.csv lists the fields"
            elif "." in group:
                problem = f"field group {group!r} must not contain a dot"
            field_groups.add(group)
            groupings.append(_Line(number, values))
        if problem:
            files.problem(name, number, problem)
    subjects = departments | department_groups | set(ROLES) | {"*"}  # "department" is a role
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
    # `department` stands for every department, as the role of department clients.
    every_department = [
        _Line(0, ("g", code, Role.DEPARTMENT.value)) for code in sorted(departments)
    ]
    files.rules = every_department + groupings + permissions


def _known_object(
    obj: str, coordinates: set[str], field_groups: set[str], fields: SharedFields
) -> bool:
    if obj == "*" or obj in coordinates or obj in field_groups:
        return True
    return obj.endswith(".*") and obj.removesuffix(".*") in fields


def _list(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def _version(directory: Path) -> str:
    digest = hashlib.sha256()
    for name in ("model.conf", "policy.csv", "catalog.csv", "purposes.csv"):
        path = directory / name
        digest.update(name.encode() + b"\0")
        digest.update((path.read_bytes() if path.exists() else b"") + b"\0")
    return digest.hexdigest()[:16]


def lint(directory: Path, fields: SharedFields) -> list[Problem]:
    """Every problem with the policy files, each naming its file and line; [] when sound."""
    try:
        load_policy(directory, fields)
    except PolicyError as error:
        return error.problems
    return []


def load_policy(directory: Path, fields: SharedFields) -> Policy:
    """The current version of the policy files; PolicyError listing every problem."""
    files = _read(directory, fields)
    if files.problems:
        raise PolicyError(files.problems)
    policy = Policy(files, fields, _version(directory))
    if problems := policy.unshared_leaks():
        raise PolicyError(problems)
    return policy


class PolicyStore:
    """The current policy. ``reload`` swaps a new version in whole, or keeps the old one.

    Requests take ``current`` once and use that version throughout, so a reload in the
    middle of a request never mixes two versions' decisions.
    """

    def __init__(self, directory: Path, fields: SharedFields) -> None:
        self.directory = directory
        self.fields = fields
        self.current = load_policy(directory, fields)

    def reload(self) -> list[Problem]:
        """Load the files again; on problems, log them and keep serving the old version."""
        try:
            policy = load_policy(self.directory, self.fields)
        except PolicyError as error:
            logger.error(
                "policy reload refused; still serving version %s:\n%s", self.current.version, error
            )
            return error.problems
        if policy.version != self.current.version:
            logger.info("policy version %s replaces %s", policy.version, self.current.version)
        else:
            logger.info("policy files reloaded: version %s, unchanged", policy.version)
        self.current = policy
        return []
