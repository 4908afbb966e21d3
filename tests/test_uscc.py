import pytest

from hub.errors import InvalidUSCC
from hub.uscc import ALPHABET, check_character, parse_uscc


@pytest.mark.parametrize(
    "code",
    [
        "91110000600037341L",  # the example of GB 32100-2015
        "91330100716105852F",  # published codes of well-known companies
        "91440300708461136T",
        "914403001922038216",
    ],
)
def test_published_codes_are_valid(code: str) -> None:
    assert parse_uscc(code) == code


def test_codes_are_normalized_from_copied_text() -> None:
    assert parse_uscc("  91110000600037341l \n") == "91110000600037341L"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("9111000060003734", "it must be 18 characters long, not 16"),
        ("91110000600037341LL", "it must be 18 characters long, not 19"),
        ("", "it must be 18 characters long, not 0"),
        (
            "9111000060003734IL",
            "character 'I' at position 17 is not allowed; use digits and capital letters "
            "except I, O, Z, S and V",
        ),
        (
            "91110000600O37341L",
            "character 'O' at position 12 is not allowed; use digits and capital letters "
            "except I, O, Z, S and V",
        ),
        (
            "91110000600037341X",
            "the check character (position 18) should be 'L', not 'X'; "
            "the code was probably mistyped",
        ),
        (
            "91110000600073341L",  # two digits swapped
            "the check character (position 18) should be 'N', not 'L'; "
            "the code was probably mistyped",
        ),
    ],
)
def test_invalid_codes_say_what_is_wrong(value: str, problem: str) -> None:
    with pytest.raises(InvalidUSCC) as raised:
        parse_uscc(value)
    assert raised.value.problem == problem
    assert raised.value.message == f"{value!r} is not a valid unified social credit code: {problem}"
    assert raised.value.extensions() == {"code": "BAD_USER_INPUT", "uscc": value}


@pytest.mark.parametrize("first17", ["Y1330106MA2KXXXX0", "93330110MA27R3PY0", "11100000000013127"])
def test_exactly_one_check_character_fits_each_code(first17: str) -> None:
    valid = [c for c in ALPHABET if _is_valid(first17 + c)]
    assert valid == [check_character(first17)]


def _is_valid(code: str) -> bool:
    try:
        parse_uscc(code)
    except InvalidUSCC:
        return False
    return True
