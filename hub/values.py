"""Parsers of the values departments publish: what was sent in, the canonical value out.

A parser takes whatever a publisher sent for one field (a GraphQL input value, a JSON value
from an import file, a CSV cell) and returns its canonical value, or raises ``ValueError``
whose message says what is wrong with it: never another exception, whatever the input
(tests/test_records.py fuzzes them), since records.parse turns exactly those into problems.

Text is where the database and the people reading it later are most easily hurt, so there
are three kinds of it. Identifiers (source ids, action codes) hold no whitespace, control or
invisible character at all: two ids that look alike must be alike. One-line text (case
numbers, levels, categories) holds no control character. Prose (violations, opinions...)
may hold tabs and line breaks, and no other control character. None may hold a lone
surrogate: it is not Unicode text, UTF-8 cannot encode it and PostgreSQL cannot store it
(nor NUL, which would fail a whole batch's INSERT there).

Amounts are exact decimals checked for size before any arithmetic: ``Decimal("1e400")``
exists, but rounding it to the fen raises ``InvalidOperation``, an ArithmeticError.
Messages quote what was sent through a bounded ``repr`` (escaped, at most a few dozen
characters), so a problem never carries a control character or a megabyte back.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from hub.domain import DEPARTMENTS
from hub.errors import InvalidUSCC
from hub.text import UNFIT, UNFIT_IN_PROSE
from hub.uscc import parse_uscc

__all__ = [
    "MAX_AMOUNT",
    "MAX_FINDINGS",
    "Parser",
    "amount",
    "choice",
    "day",
    "departments",
    "findings",
    "flag",
    "identifier",
    "month",
    "named",
    "shown",
    "text",
    "uscc",
    "whole",
]

DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
MAX_AMOUNT = Decimal("1e12")  # yuan; far beyond any fine, far within BIGINT fen
MAX_AMOUNT_TEXT = 40  # characters of an amount sent as text: "999999999999.99" has 15
# An inspection naming more problems than this is a list pasted into the wrong field; a
# record stays well within what one GraphQL request or import line may carry.
MAX_FINDINGS = 100

# A parser takes what a publisher sent and returns the canonical value, or raises ValueError
# whose message says what is wrong with it.
Parser = Callable[[Any], Any]

SHOWN = 60  # characters of a value quoted in a message
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = _repr.maxlong = 40
_repr.maxlevel, _repr.maxlist, _repr.maxdict = 2, 4, 4


def shown(value: Any) -> str:
    """``value`` as a message quotes it: a repr, escaped and cut to a few dozen characters."""
    if isinstance(value, Decimal):
        return _figure(value)
    quoted = _repr.repr(value)  # never a huge or deeply nested repr built to be cut
    return quoted if len(quoted) <= SHOWN else f"{quoted[: SHOWN - 3]}..."


def named(value: Any) -> str:
    """A name sent in (a field, a kind) as a message names it: as sent when it is a plain
    name, quoted by ``shown`` otherwise."""
    if isinstance(value, str) and value.isprintable() and 0 < len(value) <= 64:
        return value
    return shown(value)


def _figure(number: Decimal) -> str:
    written = str(number)
    return written if len(written) <= 24 else f"{number:.2E}"


def _json_type(value: Any) -> str:
    """What a value is, in the words of JSON and GraphQL rather than Python's."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


# Identifiers: no whitespace either; invisible characters are caught by isprintable().
_NOT_IN_IDENTIFIER = re.compile("[\\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _refuse(value: str, position: int) -> ValueError:
    character = value[position]
    code = ord(character)
    if 0xD800 <= code <= 0xDFFF:
        what = "lone surrogates"
    elif code < 0x20 or 0x7F <= code <= 0x9F:
        what = "control characters"
    else:
        what = "whitespace or invisible characters"
    return ValueError(f"must not contain {what} (U+{code:04X} at position {position + 1})")


def _start(value: str) -> int:
    """Where the stripped text starts: positions are counted in what was sent."""
    return len(value) - len(value.lstrip())


def _text(limit: int, forbidden: re.Pattern[str], identifier: bool) -> Parser:
    def parse_text(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be text, not {_json_type(value)}")
        stripped: str = value.strip()
        if not stripped:
            raise ValueError("must not be empty")
        if len(stripped) > limit:
            raise ValueError(f"must be at most {limit} characters, not {len(stripped)}")
        if found := forbidden.search(stripped):
            raise _refuse(value, _start(value) + found.start())
        if identifier and not stripped.isprintable():
            position = next(i for i, c in enumerate(stripped) if not c.isprintable())
            raise _refuse(value, _start(value) + position)
        return stripped

    return parse_text


def identifier(limit: int) -> Parser:
    """An id or code: no whitespace, control or invisible characters inside."""
    return _text(limit, _NOT_IN_IDENTIFIER, identifier=True)


def text(limit: int, *, lines: bool = False) -> Parser:
    """Text of one line (no control characters), or with ``lines`` prose that may also hold
    tabs and line breaks."""
    return _text(limit, UNFIT_IN_PROSE if lines else UNFIT, identifier=False)


def choice(vocabulary: type[StrEnum]) -> Parser:
    # GraphQL sends members; files send values (passed) or GraphQL names (PASSED).
    accepted = {member.value: member.value for member in vocabulary}
    accepted |= {member.name: member.value for member in vocabulary}

    def parse_choice(value: Any) -> str:
        if isinstance(value, vocabulary):
            return str(value.value)
        if isinstance(value, str) and value.strip() in accepted:
            return accepted[value.strip()]
        raise ValueError(
            f"{shown(value)} is not one of {', '.join(member.value for member in vocabulary)}"
        )

    return parse_choice


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def day(value: Any) -> str:
    """A day as YYYY-MM-DD. Whether it is plausible (not before 1990, not far ahead) depends
    on the day it is checked on: records.parse decides that."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and _DAY.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ValueError(f"{shown(value)} is not a day; write it as YYYY-MM-DD")


_MONTH = re.compile(r"\d{4}-\d{2}", re.ASCII)


def month(value: Any) -> str:
    """A month as YYYY-MM. Whether it is plausible depends on the day it is checked on:
    records.parse decides that."""
    if isinstance(value, str):
        stripped = value.strip()
        if _MONTH.fullmatch(stripped) and 1 <= int(stripped[5:]) <= 12 and stripped[:4] != "0000":
            return stripped
    raise ValueError(f"{shown(value)} is not a month; write it as YYYY-MM, e.g. 2026-12")


def amount(value: Any) -> str:
    """Yuan, to the fen: canonical as decimal text with two places."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{shown(value)} is not an amount in yuan")
    try:
        if isinstance(value, str):
            if len(value.strip()) > MAX_AMOUNT_TEXT:
                raise InvalidOperation
            yuan = Decimal(value.strip())
        else:  # ints and decimals exactly; a float as Python writes it, e.g. 99.5
            yuan = Decimal(str(value) if isinstance(value, float) else value)
    except (ArithmeticError, ValueError):
        raise ValueError(f"{shown(value)} is not an amount in yuan, e.g. 5000 or 1234.50") from None
    if not yuan.is_finite():
        raise ValueError(f"{shown(value)} is not an amount in yuan")
    if yuan < 0:
        raise ValueError(f"must not be negative, not {_figure(yuan)}")
    if yuan >= MAX_AMOUNT:  # before rounding: 1E+400 cannot be rounded to the fen
        raise ValueError(f"{_figure(yuan)} is larger than any fine the hub accepts")
    fen = yuan.quantize(Decimal("0.01"))
    if yuan != fen:
        raise ValueError(
            f"{_figure(yuan)} has more than two decimal places; amounts are to the fen"
        )
    return "0.00" if fen == 0 else str(fen)  # never -0.00


def flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):  # as SQLite stores them
        return bool(value)
    words = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise ValueError(f"{shown(value)} is not true or false")


def departments(value: Any) -> list[str]:
    """Department codes, as a list or (from CSV) separated by semicolons."""
    if isinstance(value, str):
        value = [code for code in value.split(";") if code.strip()]
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ValueError("must be a list of department codes")
    codes = sorted({code.strip() for code in value})
    unknown = [code for code in codes if code not in DEPARTMENT_CODES]
    if unknown:
        named = ", ".join(map(shown, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
        raise ValueError(f"unknown department {named}; one of {', '.join(DEPARTMENT_CODES)}")
    return codes


# Positions (the feed's, the access log's) are BIGINTs, the ids of conflicts, share requests,
# grants and notifications INTEGERs: what is larger is nobody's (PostgreSQL would refuse to
# compare it with the column).
LARGEST_ID = 2**63 - 1
LARGEST_INTEGER = 2**31 - 1


def whole(value: Any, largest: int = LARGEST_ID) -> int | None:
    """An id or a position in ASCII digits (not ３, ³ or ٣, which str.isdigit takes), at
    most ``largest``; None for anything else."""
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if number <= largest else None


def department(value: Any) -> str:
    """One department code."""
    if not isinstance(value, str) or value.strip() not in DEPARTMENT_CODES:
        raise ValueError(
            f"{shown(value)} is not a department; one of {', '.join(DEPARTMENT_CODES)}"
        )
    return value.strip()


_CODE = re.compile(r"[a-z][a-z0-9-]{1,63}", re.ASCII)


def codes(value: Any) -> list[str]:
    """Codes from a catalogue (e.g. policies/requirements.csv), as a list or (from CSV)
    separated by semicolons; sorted, each once. Whether each is catalogued is checked where
    the catalogue is known (hub/publishing/write.py)."""
    if isinstance(value, str):
        value = [code for code in value.split(";") if code.strip()]
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ValueError("must be a list of codes")
    found = sorted({code.strip() for code in value})
    malformed = [code for code in found if not _CODE.fullmatch(code)]
    if malformed:
        raise ValueError(f"{shown(malformed[0])} is not a code: lower-case letters, digits, -")
    if len(found) > 20:
        raise ValueError(f"{len(found)} codes; at most 20")
    return found


_CATEGORY, _DESCRIPTION = text(64), text(2000, lines=True)


def findings(value: Any) -> list[dict[str, str]]:
    """Problems found, each {category, description}; from CSV as a JSON array."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except (ValueError, RecursionError):
            raise ValueError('must be a JSON array of {"category", "description"}') from None
    if not isinstance(value, list):
        raise ValueError('must be a list of {"category", "description"}')
    if len(value) > MAX_FINDINGS:
        raise ValueError(f"must list at most {MAX_FINDINGS} findings, not {len(value)}")
    parsed = []
    for position, finding in enumerate(value):
        if not isinstance(finding, Mapping) or set(finding) != {"category", "description"}:
            raise ValueError(f'finding {position} must have exactly "category" and "description"')
        parsed_finding = {}
        for name, parse_part in (("category", _CATEGORY), ("description", _DESCRIPTION)):
            try:
                parsed_finding[name] = parse_part(finding[name])
            except ValueError as error:
                raise ValueError(f"finding {position} {name}: {error}") from None
        parsed.append(parsed_finding)
    return parsed


def uscc(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be an 18-character unified social credit code")
    try:
        return parse_uscc(value)
    except InvalidUSCC as error:
        raise ValueError(
            f"{shown(value)} is not a valid unified social credit code: {error.problem}"
        ) from None
