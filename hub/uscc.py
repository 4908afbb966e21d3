"""Unified social credit codes (统一社会信用代码, GB 32100-2015).

An 18-character code from a 31-character alphabet (digits and capital letters
without I, O, Z, S, V); the 18th character is a check character over the first 17.
"""

from __future__ import annotations

from hub.errors import InvalidUSCC

__all__ = ["ALPHABET", "LENGTH", "check_character", "parse_uscc"]

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
LENGTH = 18
_INDEX = {character: index for index, character in enumerate(ALPHABET)}
_WEIGHTS = [pow(3, i, 31) for i in range(LENGTH - 1)]  # 3^(i-1) mod 31 for positions 1..17


def check_character(first17: str) -> str:
    """The check character for the first 17 characters of a code (all from ALPHABET)."""
    total = sum(_INDEX[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def parse_uscc(value: str) -> str:
    """Return the canonical form of ``value`` or raise InvalidUSCC saying what is wrong.

    Surrounding whitespace is ignored and lower-case letters are accepted as upper case,
    since people copy codes from documents; anything else must be exact.
    """
    code = value.strip().upper()
    if len(code) != LENGTH:
        raise InvalidUSCC(value, f"it must be {LENGTH} characters long, not {len(code)}")
    for position, character in enumerate(code, start=1):
        if character not in _INDEX:
            raise InvalidUSCC(
                value,
                f"character {character!r} at position {position} is not allowed; "
                "use digits and capital letters except I, O, Z, S and V",
            )
    expected = check_character(code[:-1])
    if code[-1] != expected:
        raise InvalidUSCC(
            value,
            f"the check character (position 18) should be {expected!r}, not {code[-1]!r}; "
            "the code was probably mistyped",
        )
    return code
