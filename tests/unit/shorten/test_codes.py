"""Generated codes: >= 7 base62 characters from the CSPRNG, not sequential, not guessable."""

import itertools
from collections import Counter

import pytest
from shorten.domain.codes import ALPHABET, DEFAULT_LENGTH, MIN_LENGTH, RESERVED, generate_code, is_reserved

pytestmark = pytest.mark.unit


def test_alphabet_is_base62() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 62
    assert ALPHABET.isalnum() and ALPHABET.isascii()


def test_default_code_shape() -> None:
    code = generate_code()
    assert len(code) == DEFAULT_LENGTH >= MIN_LENGTH
    assert set(code) <= set(ALPHABET)


@pytest.mark.parametrize("length", [7, 8, 12])
def test_requested_length(length: int) -> None:
    assert len(generate_code(length)) == length


@pytest.mark.parametrize("length", [0, 1, 6])
def test_too_short_codes_are_refused(length: int) -> None:
    with pytest.raises(ValueError):
        generate_code(length)


def test_codes_are_unique_and_not_sequential() -> None:
    codes = [generate_code() for _ in range(5000)]
    assert len(set(codes)) == len(codes)
    # Sequential generators produce sorted output or share long prefixes; random ones do not.
    assert codes != sorted(codes)
    assert sum(a[:4] == b[:4] for a, b in itertools.pairwise(codes)) < 5


def test_every_position_uses_the_whole_alphabet() -> None:
    """A uniform source spreads each position over all 62 symbols (a counter would not)."""
    codes = [generate_code() for _ in range(20000)]
    for position in range(DEFAULT_LENGTH):
        counts = Counter(code[position] for code in codes)
        assert set(counts) == set(ALPHABET)
        # Expected ~323 per symbol; a fair source stays well inside [200, 450].
        assert 200 < min(counts.values()) and max(counts.values()) < 450


def test_reserved_names_are_case_insensitive() -> None:
    assert "api" in RESERVED
    assert is_reserved("API") and is_reserved("Metrics") and not is_reserved("apis")


def test_generator_skips_reserved_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """If randomness ever produced a reserved word, the generator draws again."""
    letters = iter("dashboard" + "abcdefghi")
    monkeypatch.setattr("shorten.domain.codes.secrets.choice", lambda _: next(letters))
    assert generate_code(9) == "abcdefghi"
