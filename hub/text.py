"""Text from callers: what it may hold, and how it is kept when it holds something else.

Every value a caller controls (headers, operation names, variables, token claims, file
lines) reaches a database row sooner or later. PostgreSQL refuses NUL in text and cannot
encode a lone surrogate; terminals and spreadsheets act on control characters. So such
text is refused at the door (``problem`` says what is wrong, for the error message), and
where a refused value must still be recorded, it is kept escaped and cut (``kept``).
"""

from __future__ import annotations

import re

__all__ = ["escaped", "kept", "problem"]

# C0 and C1 controls, DEL, and the surrogate range (alone they are not characters at all).
_UNFIT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UNFIT_IN_PROSE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def problem(value: str, *, prose: bool = False) -> str | None:
    """What makes ``value`` unfit to keep, or None. ``prose`` allows tabs and line breaks."""
    found = (_UNFIT_IN_PROSE if prose else _UNFIT).search(value)
    if found is None:
        return None
    character = found.group()
    what = "a lone surrogate" if "\ud800" <= character <= "\udfff" else "a control character"
    return f"holds {what} (U+{ord(character):04X} at position {found.start() + 1})"


def escaped(value: str) -> str:
    """``value`` with every unfit character written as a visible escape (\\x00, \\ud800)."""
    return _UNFIT.sub(_escape, value)


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def kept(value: str | None, limit: int) -> str | None:
    """``value`` as a record keeps it: escaped, and cut to ``limit`` characters."""
    if value is None:
        return None
    value = escaped(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"
