"""Who may read which field of which department's records: Casbin over the field catalogue.

A ``Policy`` is one immutable version of the files under ``policies/`` (files.py reads and
checks them): it decides (subject, owner, Type.field) once and keeps the decision for as
long as it is the current version, so the number of Casbin evaluations never grows with the
rows of an answer. A reload builds a new ``Policy``.

The sharing attribute bounds what any rule can do: ``none`` fields never reach another
department, ``conditional`` ones only with a stated purpose.

A caller's part in a record (relations.py) opens what a line naming that relation allows,
where the caller's own lines do not: decided per (subject, owner, Type.field, relations)
and cached the same way. A deny line for the caller still wins, and so does the catalogue.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import casbin
from casbin.model import Model

from hub.domain import DEPARTMENTS, Role
from hub.policy.files import (
    READ,
    WRITE,
    CatalogEntry,
    Files,
    Line,
    PolicyError,
    Problem,
    SharedFields,
    Sharing,
    colours_version,
    read,
    version,
)
from hub.policy.relations import RELATED_TYPES, Relation, Relations
from hub.policy.supervision import ColourRules

__all__ = ["CatalogEntry", "Decision", "Policy", "PolicyStore", "Scope", "lint", "load_policy"]

logger = logging.getLogger("hub.policy")
DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)


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
    # The caller's part in the record that opened the field (see relations.py), if one did.
    relation: str | None = None
    # For a field the caller's own lines do not open: the relations that would, each with
    # the line that says so.
    openers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Scope:
    """Which records of one type a caller may read anything of."""

    owners: tuple[str, ...]  # every record of these departments
    # The relations that open some field of the type for the caller (by their lines), each
    # with the further departments whose records it makes readable at all.
    relations: dict[str, tuple[str, ...]]


class Policy:
    """One version of the policy files, with its decisions cached."""

    def __init__(self, files: Files, fields: SharedFields, version: str) -> None:
        self.version = version
        self.directory = files.directory
        self.catalog = files.catalog
        # Purposes a request may state (code -> name), from purposes.csv: grants of
        # conditional fields are for one of them.
        self.purposes = files.purposes
        # Codes of rectification requirements (code -> name), and the pairs that contradict.
        self.requirements = files.requirements
        self.requirement_departments = files.requirement_departments
        self.conflicts = files.conflicts
        # What makes an enterprise's three-colour code, and the inspections a period bears
        # (supervision.py); their version is this one.
        self.colours = ColourRules(files.colour_rules, colours_version(files.directory))
        self.limits = files.limits
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
        self._decisions: dict[tuple[str, str, str, bool, Relations], Decision] = {}
        self._writes: dict[tuple[str, str, str], Decision] = {}
        self._readable: dict[tuple[str, str, str, bool, Relations], bool] = {}
        self._openers: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        self._scopes: dict[tuple[str, str, bool, bool], Scope] = {}
        self._derived: dict[Hashable, dict[Any, Any]] = {}

    def derived(self, key: Hashable) -> dict[Any, Any]:
        """A dict kept with this version for what is derived from its decisions alone (an
        Access's views, per subject and purpose), filled by whoever derives it: derived once
        for every request, and gone with the version."""
        return self._derived.setdefault(key, {})

    def decide(
        self, subject: str, owner: str, coordinate: str, *, purpose: bool, relations: Relations = ()
    ) -> Decision:
        """May ``subject`` read ``coordinate`` of ``owner``'s records (with a stated purpose),
        of a record it has these ``relations`` to (sorted names; see relations.py)?"""
        key = (subject, owner, coordinate, purpose, relations)
        decision = self._decisions.get(key)
        if decision is None:
            if relations:
                decided = self._decide_related(subject, owner, coordinate, purpose, relations)
            else:
                decided = self._decide(subject, owner, coordinate, purpose)
            decision = self._decisions[key] = replace(decided, version=self.version)
        return decision

    def _decide_related(
        self, subject: str, owner: str, coordinate: str, purpose: bool, relations: Relations
    ) -> Decision:
        own = self.decide(subject, owner, coordinate, purpose=purpose)
        for relation, rule in own.openers:  # only where no line decided for the caller itself
            if relation in relations:
                return self._opened(subject, Relation(relation), rule, coordinate, purpose)
        return own

    def _opened(
        self, subject: str, relation: Relation, rule: str, coordinate: str, purpose: bool
    ) -> Decision:
        sharing = self.catalog[coordinate].sharing
        if sharing is Sharing.CONDITIONAL:
            if not purpose:
                return Decision(
                    False,
                    f"{coordinate} is shared on condition: state the purpose of the request "
                    "in the X-Hub-Purpose header",
                    rule, sharing, needs_purpose=True, relation=relation.value,
                )  # fmt: skip
            return Decision(
                True, f"allowed with a stated purpose to {relation.description} by {rule}",
                rule, sharing, True, relation=relation.value,
            )  # fmt: skip
        return Decision(
            True, f"allowed to {subject} as {relation.description} by {rule}", rule, sharing,
            relation=relation.value,
        )  # fmt: skip

    def openers(self, owner: str, coordinate: str) -> tuple[tuple[str, str], ...]:
        """The relations that open ``coordinate`` of ``owner``'s records, with their lines."""
        key = (owner, coordinate)
        found = self._openers.get(key)
        if found is None:
            type_name = coordinate.partition(".")[0]
            opening = []
            for relation in Relation:
                if type_name not in RELATED_TYPES[relation]:
                    continue
                self.evaluations += 1
                if self._decider.enforce_ex(relation.value, owner, coordinate, READ)[0]:
                    self.evaluations += 1
                    matched = self._explainer.enforce_ex(relation.value, owner, coordinate, READ)
                    opening.append((relation.value, self._cite(matched[1])))
            found = self._openers[key] = tuple(opening)
        return found

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

    def readable(
        self, subject: str, owner: str, type_name: str, *, purpose: bool, relations: Relations = ()
    ) -> bool:
        """Whether ``subject`` may read anything of ``owner``'s records of this type (of a
        record it has these ``relations`` to)."""
        key = (subject, owner, type_name, purpose, relations)
        readable = self._readable.get(key)
        if readable is None:
            readable = self._readable[key] = any(
                self.decide(
                    subject, owner, f"{type_name}.{name}", purpose=purpose, relations=relations
                ).allowed
                for name, decided in self.fields[type_name].items()
                if decided
            )
        return readable

    def scope(self, subject: str, type_name: str, *, purpose: bool, related: bool) -> Scope:
        """The records of ``type_name`` that ``subject`` reads anything of, with the
        relations that matter (only where ``related``: a department's own systems)."""
        key = (subject, type_name, purpose, related)
        scope = self._scopes.get(key)
        if scope is None:
            owners = tuple(
                owner
                for owner in DEPARTMENT_CODES
                if self.readable(subject, owner, type_name, purpose=purpose)
            )
            relations: dict[str, tuple[str, ...]] = {}
            for relation in Relation if related else ():
                if type_name not in RELATED_TYPES[relation] or not any(
                    self.decide(subject, owner, f"{type_name}.{name}", purpose=purpose,
                                relations=(relation.value,)).relation == relation.value
                    for owner in DEPARTMENT_CODES
                    for name, decided in self.fields[type_name].items()
                    if decided
                ):  # fmt: skip
                    continue  # opens nothing for this caller: no column for it in the SQL
                relations[relation.value] = tuple(
                    owner
                    for owner in DEPARTMENT_CODES
                    if owner not in owners
                    and self.readable(
                        subject, owner, type_name, purpose=purpose, relations=(relation.value,)
                    )
                )
            scope = self._scopes[key] = Scope(owners, relations)
        return scope

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
            reason = f"no policy line shares {coordinate} of {owner} with {subject}"
            openers = self.openers(owner, coordinate) if other else ()
            if openers:
                reason += "; open to " + " and to ".join(
                    f"{Relation(relation).description} by {rule}" for relation, rule in openers
                )
            return Decision(False, reason, None, entry.sharing, openers=openers)
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
        """Allow lines that would serve a ``none`` field to anyone but its owner: another
        department, a relation, or a role (auditors, admins, enterprises: never an owner)."""
        problems: dict[tuple[int, str], Problem] = {}
        codes = [department.code for department in DEPARTMENTS]
        roles = [role.value for role in Role if role is not Role.DEPARTMENT]
        for entry in self.catalog.values():
            if entry.sharing is not Sharing.NONE:
                continue
            type_name = entry.coordinate.partition(".")[0]
            subjects = codes + [r.value for r in Relation if type_name in RELATED_TYPES[r]] + roles
            for subject, owner in ((s, o) for s in subjects for o in codes if s != o):
                allowed, _ = self._decider.enforce_ex(subject, owner, entry.coordinate, READ)
                if not allowed:
                    continue
                matched = self._explainer.enforce_ex(subject, owner, entry.coordinate, READ)[1]
                line = self._lines[tuple(matched)]
                who = f"{subject} credentials" if subject in roles else "other departments"
                problems.setdefault(
                    (line.number, entry.coordinate),
                    Problem(
                        self.directory / "policy.csv",
                        line.number,
                        f"shares {entry.coordinate} with {who} (e.g. {subject} reading "
                        f"{owner}'s), but catalog.csv:{entry.line} says it is not shared: "
                        f"{entry.basis}",
                    ),
                )
        return list(problems.values())

    def _cite(self, values: Iterable[str]) -> str:
        line = self._lines[tuple(values)]
        return f"policy.csv:{line.number}: {line.text}"


def _enforcer(model_text: str, rules: list[Line]) -> casbin.Enforcer:
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


def lint(directory: Path, fields: SharedFields) -> list[Problem]:
    """Every problem with the policy files, each naming its file and line; [] when sound."""
    try:
        load_policy(directory, fields)
    except PolicyError as error:
        return error.problems
    return []


def load_policy(directory: Path, fields: SharedFields) -> Policy:
    """The current version of the policy files; PolicyError listing every problem."""
    files = read(directory, fields)
    if files.problems:
        raise PolicyError(files.problems)
    policy = Policy(files, fields, version(directory))
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
