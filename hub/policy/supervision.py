"""The supervision rules among the policy files: colour rules and inspection limits.

``colours.csv`` says which condition of an enterprise's shared records makes which colour of
its three-colour code (三色码): each line a named rule, so that every colour can say which
rules made it and on which records. ``inspection-limits.csv`` says how many inspections of
one enterprise, by all departments together, a period bears before the hub warns
(综合查一次: "检查次数超过标准，检查系统会迅速发出预警"), by industry and colour.

They are policy: read, checked and versioned with the other files, refused with every
problem named (file and line) at start-up and on reload, and swapped in whole with them.
The conditions themselves are code (hub/supervision/colours.py): a rule names one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from hub.domain import Colour

__all__ = [
    "CONDITIONS",
    "ColourRule",
    "ColourRules",
    "Limit",
    "Limits",
    "read_colour_rules",
    "read_limits",
]


# The conditions a colour rule may name (computed in hub/supervision/colours.py), and
# whether a rule of it needs `days`: a window back from today in which a record counts.
CONDITIONS: dict[str, tuple[bool, str]] = {
    "rectification-overdue": (False, "an order past its deadline and not accepted"),
    "acceptance-failed": (True, "an order whose latest acceptance failed, within the window"),
    "bad-credit-serious": (False, "an active bad credit record of level serious"),
    "bad-credit": (False, "an active bad credit record"),
    "penalty": (True, "a penalty decided within the window (exempted or revoked ones aside)"),
    "rectification-open": (False, "an order being rectified before its deadline"),
    "rectification-accepted": (True, "an order rectified and accepted within the window"),
}
RULE_NAME = re.compile(r"[a-z][a-z0-9-]{1,63}")
ANY = "*"


@dataclass(frozen=True, slots=True)
class ColourRule:
    name: str
    colour: Colour
    condition: str
    days: int | None  # the window, for conditions that have one
    description: str
    line: int


@dataclass(frozen=True, slots=True)
class ColourRules:
    """The colour rules of one version of the policy files."""

    rules: tuple[ColourRule, ...]
    version: str


@dataclass(frozen=True, slots=True)
class Limit:
    """How many inspections of one enterprise ``days`` days bear: ``warn_at`` and more
    warn, more than ``limit`` is over."""

    industry: str  # or * for any
    colour: str  # a Colour's value, or * for any
    days: int
    warn_at: int
    limit: int
    basis: str
    line: int

    @property
    def cited(self) -> str:
        return f"inspection-limits.csv:{self.line}"


class Limits:
    """The limits by (industry, colour); the most specific line applies."""

    def __init__(self, lines: list[Limit]) -> None:
        self._lines = {(line.industry, line.colour): line for line in lines}

    def __bool__(self) -> bool:
        return bool(self._lines)

    @property
    def lines(self) -> tuple[Limit, ...]:
        """Every line, in the order ``of`` tries them: an enterprise's limit is the first
        line whose industry and colour (each unless ``*``) are the enterprise's. A line
        naming a colour never applies to an enterprise whose colour is not yet computed."""
        lines = self._lines.values()
        return tuple(sorted(lines, key=lambda line: (line.industry == ANY, line.colour == ANY)))

    def of(self, industry: str, colour: str | None) -> Limit:
        """The limit for an enterprise of ``industry`` with ``colour`` (None: not yet
        computed, so only lines for any colour apply)."""
        tone = colour or ANY
        for key in ((industry, tone), (industry, ANY), (ANY, tone), (ANY, ANY)):
            if key in self._lines:
                return self._lines[key]
        raise LookupError("inspection-limits.csv has no *,* line")  # lint refuses that


class Reporter(Protocol):
    def problem(self, name: str, line: int, message: str) -> None: ...


Rows = list[tuple[int, list[str]]]
COLOURS_FILE = "colours.csv"
LIMITS_FILE = "inspection-limits.csv"


def read_colour_rules(files: Reporter, rows: Rows) -> tuple[ColourRule, ...]:
    """colours.csv: rule,colour,condition,days,description."""
    rules: dict[str, ColourRule] = {}
    colours = ", ".join(c.value for c in Colour if c is not Colour.GREEN)
    for line, (name, colour, condition, days, description) in rows:

        def problem(message: str, line: int = line) -> None:
            files.problem(COLOURS_FILE, line, message)

        if not RULE_NAME.fullmatch(name):
            problem(f"{name!r} is not a rule name: lower-case letters, digits, -")
        elif name in rules:
            problem(f"rule {name!r} is listed twice")
        elif colour not in (Colour.BLACK, Colour.YELLOW):
            problem(f"colour {colour!r} is not one a rule makes: {colours} (green is "
                    "what no rule makes)")  # fmt: skip
        elif condition not in CONDITIONS:
            problem(f"unknown condition {condition!r}; one of {', '.join(CONDITIONS)}")
        elif not description:
            problem(f"say what rule {name} means: it is every colour's reason")
        else:
            windowed = CONDITIONS[condition][0]
            window = _days(days) if days else None
            if windowed and window is None:
                problem(f"{condition} counts records within a window: give days, 1 to 3660")
            elif not windowed and days:
                problem(f"{condition} has no window: leave days empty")
            else:
                rules[name] = ColourRule(name, Colour(colour), condition, window, description,
                                         line)  # fmt: skip
    return tuple(rules.values())


def read_limits(files: Reporter, rows: Rows) -> Limits:
    """inspection-limits.csv: industry,colour,days,warn_at,limit,basis; a *,* line is
    required (the limit where no other applies)."""
    lines: dict[tuple[str, str], Limit] = {}
    tones = {c.value for c in Colour} | {ANY}
    for line, (industry, colour, days, warn_at, limit, basis) in rows:

        def problem(message: str, line: int = line) -> None:
            files.problem(LIMITS_FILE, line, message)

        window, warn, most = _days(days), _count(warn_at), _count(limit)
        if not industry:
            problem("name the industry (as enterprises are registered, e.g. 化工) or *")
        elif colour not in tones:
            problem(f"colour {colour!r} is not one of {', '.join(sorted(tones))}")
        elif (industry, colour) in lines:
            problem(f"{industry},{colour} is listed twice")
        elif window is None:
            problem(f"days {days!r} is not a number of days from 1 to 3660")
        elif warn is None or most is None:
            problem("warn_at and limit are numbers of inspections from 1 to 1000")
        elif warn > most:
            problem(f"warn_at ({warn}) is above limit ({most}): warn at or before the limit")
        elif not basis:
            problem("cite the standard the limit comes from (basis)")
        else:
            lines[industry, colour] = Limit(industry, colour, window, warn, most, basis, line)
    if rows and not any(row[:2] == [ANY, ANY] for _, row in rows):
        files.problem(LIMITS_FILE, 1, "add a *,* line: the limit for every enterprise that no "
                                      "other line names")  # fmt: skip
    return Limits(list(lines.values()))


def _days(value: str) -> int | None:
    return int(value) if value.isdigit() and 1 <= int(value) <= 3660 else None


def _count(value: str) -> int | None:
    return int(value) if value.isdigit() and 1 <= int(value) <= 1000 else None
