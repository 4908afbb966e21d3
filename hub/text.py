"""Text from callers: what it may hold, and how it is kept when it holds something else.

Every value a caller controls (headers, operation names, variables, token claims, file
lines) reaches a database row sooner or later. PostgreSQL refuses NUL in text and cannot
encode a lone surrogate; terminals and spreadsheets act on control characters. So such
text is refused at the door (``problem`` says what is wrong, for the error message), and
where a refused value must still be recorded, it is kept escaped and cut (``kept``).
"""

from __future__ import annotations

import re

__all__ = ["HIDDEN", "UNFIT", "UNFIT_IN_PROSE", "escaped", "kept", "problem"]

# C0 and C1 controls, DEL, and the surrogate range (alone they are not characters at all);
# prose keeps tab, line feed and carriage return.
UNFIT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
UNFIT_IN_PROSE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# What a terminal obeys or hides rather than shows: the unfit characters (ESC starts the
# sequences that move the cursor, clear the screen or set the window title; U+009B is CSI)
# and invisible format characters (zero-width, bidirectional overrides), line and paragraph
# separators. Escaped wherever stored text is shown or kept.
HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff]"
)


def problem(value: str, *, prose: bool = False) -> str | None:
    """What makes ``value`` unfit to keep, or None. ``prose`` allows tabs and line breaks."""
    found = (UNFIT_IN_PROSE if prose else UNFIT).search(value)
    if found is None:
        return None
    character = found.group()
    what = "a lone surrogate" if "\ud800" <= character <= "\udfff" else "a control character"
    return f"holds {what} (U+{ord(character):04X} at position {found.start() + 1})"


def escaped(value: str, *, keep: str = "") -> str:
    """``value`` with every hidden character written as a visible escape (\\x1b, \\u202e),
    so that stored text can neither move a terminal's cursor nor pass for something else.
    Characters in ``keep`` (a tab, a line feed) stay as they are."""
    return HIDDEN.sub(lambda found: found[0] if found[0] in keep else _escape(found[0]), value)


def _escape(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def kept(value: str | None, limit: int) -> str | None:
    """``value`` as a record keeps it: escaped, and cut to ``limit`` characters."""
    if value is None:
        return None
    value = escaped(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"
