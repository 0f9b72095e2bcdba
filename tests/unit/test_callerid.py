"""Caller-number normalisation and keyed hashing (asterisk_recguard.callerid)."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_recguard.callerid import caller_hash, hash_caller, normalize_number

SECRET = b"k" * 32
OTHER_SECRET = b"s" * 32
E164 = re.compile(r"\+[1-9][0-9]{2,14}")
HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.mark.parametrize(
    "raw",
    [
        "+38640123456",
        "+386 40 123 456",
        "0038640123456",
        "00386 40 123 456",
        "040 123 456",
        "040123456",
        "(040) 123-456",
        "040/123-456",
        "040.123.456",
        "+386 (0)40 123 456",
        "00386 (0)40 123 456",
        "38640123456",
        "386 40 123 456",
        "40 123 456",
        "40123456",
        "tel:+38640123456",
        "tel:+386-40-123-456;phone-context=example.com",
        "TEL:040123456",
        "sip:+38640123456@host",
        "sip:040123456@10.0.0.1:5060;transport=udp",
        "sips:38640123456;user=phone@pbx.example.com",
        "  +386 40 123 456  ",
    ],
)
def test_spellings_of_one_slovenian_number(raw: str) -> None:
    assert normalize_number(raw) == "+38640123456"


def test_bare_digits_starting_with_the_country_code_but_short_are_national() -> None:
    # 03 861 2345 (Celje) without its trunk prefix: 8 digits, only 5 after "386".
    assert normalize_number("38612345") == "+38638612345"
    assert normalize_number("038612345") == "+38638612345"


def test_other_default_country_code() -> None:
    assert normalize_number("030 1234567", default_country_code="49") == "+49301234567"
    assert normalize_number("+386 40 123 456", default_country_code="49") == "+38640123456"
    assert normalize_number("30 1234567", default_country_code="49") == "+49301234567"


@pytest.mark.parametrize("code", ["", "0", "049", "1234", "+386", "38a", "٣٨٦", None])
def test_invalid_default_country_code_is_a_configuration_error(code: object) -> None:
    with pytest.raises(ValueError, match="country code"):
        normalize_number("040123456", default_country_code=code)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "anonymous",
        "Anonymous",
        "unknown",
        "restricted",
        "<unknown>",
        "abc",
        "+",
        "00",
        "0",
        "12",
        "+12",
        "040",
        "0040",
        "+0 40 123 456",
        "000386 40 123 456",
        "+3864012345678901",
        "003864012345678901",
        "0123456789012345",
        "1-800-FLOWERS",
        "040 123 456\r\nAction: Hangup",
        "040123456\n",
        "040123456\x00",
        "040\t123456",
        '"040123456"',
        "'040123456'",
        "040123456; rm -rf /",
        "040123456 && id",
        "040123456|id",
        "040`id`",
        "*31#040123456",
        "+386+40123456",
        "٠٤٠١٢٣٤٥٦",  # Arabic-Indic digits
        "０４０１２３４５６",  # full-width digits
        "040 123 ４56",
        "+386\u00a040123456",  # no-break space
        "sip:pbx.example.com",
        "sip:+38640123456",
        "sip:alice@example.com",
        "sip:+38640123456@$(id)",
        "http://+38640123456",
        "tel:",
        "tel:%2B38640123456",
        "tel:+386 40 123 456",
        "1" * 10_000,
        "+386" + " " * 300 + "40123456",
    ],
)
def test_unusable_input_gives_none(raw: str) -> None:
    assert normalize_number(raw) is None


def test_shell_payload_is_neither_run_nor_passed_through(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for raw in (f"$(touch {marker})", f"`touch {marker}`", f"040123456;touch {marker}"):
        assert normalize_number(raw) is None
        assert hash_caller(raw, SECRET) is None
    assert not marker.exists()


@pytest.mark.parametrize("raw", [None, b"040123456", 40123456, ["040123456"]])
def test_non_string_input_gives_none(raw: object) -> None:
    assert normalize_number(raw) is None  # type: ignore[arg-type]


def test_caller_hash_is_hmac_sha256_of_the_e164_string() -> None:
    # A fixed vector: changing the construction would orphan every stored hash.
    assert caller_hash("+38640123456", SECRET) == (
        "5b9d195f563d60223aaeef0b1867e0cd034515c5d1c13df92ea95f11c9504ae2"
    )


def test_str_secret_is_its_utf8_bytes() -> None:
    assert caller_hash("+38640123456", "k" * 32) == caller_hash("+38640123456", SECRET)


def test_secret_changes_the_hash() -> None:
    assert caller_hash("+38640123456", SECRET) != caller_hash("+38640123456", OTHER_SECRET)


@pytest.mark.parametrize("secret", [b"", b"x" * 31, "x" * 31, "č" * 15])
def test_short_secret_is_refused(secret: bytes | str) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        caller_hash("+38640123456", secret)
    # Also when the caller is anonymous: a bad secret must not hide behind None.
    with pytest.raises(ValueError, match="at least 32 bytes"):
        hash_caller("anonymous", secret)


def test_non_bytes_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="bytes or str"):
        caller_hash("+38640123456", 12345)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "number", ["040123456", "38640123456", "+386 40 123 456", "+0386", "+12", ""]
)
def test_caller_hash_wants_e164_and_does_not_echo_the_number(number: str) -> None:
    with pytest.raises(ValueError) as info:
        caller_hash(number, SECRET)
    assert "E.164" in str(info.value)
    if number:
        assert number not in str(info.value)


def test_hash_caller_combines_both() -> None:
    assert hash_caller("040 123 456", SECRET) == caller_hash("+38640123456", SECRET)
    assert hash_caller("030 1234567", SECRET, "49") == caller_hash("+49301234567", SECRET)
    assert hash_caller("anonymous", SECRET) is None


# --- properties ----------------------------------------------------------------

slovenian_nsn = st.from_regex(r"[1-9][0-9]{7}", fullmatch=True)
separators = st.sampled_from(["", " ", "-", ".", "/"])


@st.composite
def spelled(draw: st.DrawFn, digits: str) -> str:
    """``digits`` with a random separator (possibly none) after each digit."""
    return "".join(ch + draw(separators) for ch in digits).rstrip(" ")


@st.composite
def slovenian_spellings(draw: st.DrawFn) -> tuple[str, list[str]]:
    nsn = draw(slovenian_nsn)
    forms = [
        "+386" + nsn,
        "+386 " + draw(spelled(nsn)),
        "00386" + draw(spelled(nsn)),
        "0" + draw(spelled(nsn)),
        "(0" + nsn[:2] + ") " + draw(spelled(nsn[2:])),
        "+386 (0)" + draw(spelled(nsn)),
        "386" + draw(spelled(nsn)),
        draw(spelled(nsn)),
        "tel:+386" + nsn,
        "tel:0" + nsn + ";phone-context=+386",
        "sip:+386" + nsn + "@pbx.example.com",
        "sip:0" + nsn + "@192.0.2.1:5060;transport=tcp",
    ]
    return nsn, forms


@given(slovenian_spellings())
def test_property_all_spellings_of_a_slovenian_number_hash_the_same(
    case: tuple[str, list[str]],
) -> None:
    nsn, forms = case
    expected = "+386" + nsn
    for raw in forms:
        assert normalize_number(raw) == expected, raw
    assert {hash_caller(raw, SECRET) for raw in forms} == {caller_hash(expected, SECRET)}


@st.composite
def international(draw: st.DrawFn) -> tuple[str, str]:
    country = draw(st.from_regex(r"[1-9][0-9]{0,2}", fullmatch=True))
    national = draw(
        st.from_regex(r"[1-9][0-9]{2,13}", fullmatch=True).filter(lambda n: len(country + n) <= 15)
    )
    return country, national


@given(international())
def test_property_any_country_international_and_trunk_forms_agree(case: tuple[str, str]) -> None:
    country, national = case
    expected = "+" + country + national
    assert normalize_number("+" + country + " " + national, country) == expected
    assert normalize_number("00" + country + national, country) == expected
    assert normalize_number("0" + national, country) == expected
    assert normalize_number("+" + country + national, "386") == expected


@given(international(), international())
def test_property_different_numbers_hash_differently(
    a: tuple[str, str], b: tuple[str, str]
) -> None:
    number_a, number_b = "+" + "".join(a), "+" + "".join(b)
    if number_a == number_b:
        return
    assert normalize_number(number_a) != normalize_number(number_b)
    assert hash_caller(number_a, SECRET) != hash_caller(number_b, SECRET)


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_property_arbitrary_text_never_raises(raw: str) -> None:
    number = normalize_number(raw)
    assert number is None or E164.fullmatch(number)
    hashed = hash_caller(raw, SECRET)
    assert hashed is None or HEX64.fullmatch(hashed)
    assert (number is None) == (hashed is None)


@settings(max_examples=500)
@given(st.text(alphabet=string.digits + " -./()+" + "tel:sip@;=", max_size=40))
def test_property_number_like_text_never_raises(raw: str) -> None:
    # Text made of the characters the parser does accept reaches every branch.
    number = normalize_number(raw)
    assert number is None or E164.fullmatch(number)
    hashed = hash_caller(raw, SECRET)
    assert hashed is None or HEX64.fullmatch(hashed)


hostile = st.sampled_from(
    list("\r\n\x00\t$`'\"\\|&<>{}!*?#%^~") + ["\u2028", "\u0663", "\uff10", "\u00a0"]
)


@given(
    st.text(alphabet=string.digits + " +", max_size=20),
    hostile,
    st.text(alphabet=string.digits, max_size=20),
)
def test_property_any_hostile_character_makes_the_input_unusable(
    head: str, bad: str, tail: str
) -> None:
    assert normalize_number(head + bad + tail) is None
    assert normalize_number("tel:" + head.replace(" ", "") + bad + tail) is None
