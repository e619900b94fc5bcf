"""The stdlib fast path of canonical_json must equal the rfc8785 reference exactly."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest
import rfc8785

from hub.crypto import canonical_json
from hub.crypto.canonical import _is_simple

_ALPHABET = string.printable + '\x00\x01\x1f\x7f\u00e9\u2028\u2029\ud7ff\ue000\uffff\U0001f600"\\/'


def _random_string(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 12)))


def _random_document(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 6 if depth < 4 else 3)
    if kind == 0:
        return _random_string(rng)
    if kind == 1:
        return rng.choice([0, -1, 1, 2**53 - 1, -(2**53 - 1), rng.randint(-(10**12), 10**12)])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return _random_string(rng)
    if kind == 4:
        return [_random_document(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = [
        "".join(rng.choice(string.ascii_letters + "_-") for _ in range(rng.randint(0, 6)))
        for _ in range(rng.randint(0, 5))
    ]
    return {key: _random_document(rng, depth + 1) for key in keys}


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_matches_rfc8785_reference(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        document = _random_document(rng)
        assert _is_simple(document)
        assert canonical_json(document) == rfc8785.dumps(document)


@pytest.mark.parametrize(
    "document",
    [
        {"\u00e9": 1},  # non-ASCII key: JCS sorts by UTF-16 code units
        {"a": 1.5},  # floats follow ECMAScript number formatting
        [1e21],
    ],
)
def test_documents_outside_the_fast_path_use_the_reference(document: Any) -> None:
    assert not _is_simple(document)
    assert canonical_json(document) == rfc8785.dumps(document)


def test_integers_beyond_2_53_are_refused_not_rounded() -> None:
    from hub.crypto import CryptoError

    assert not _is_simple({"n": 2**53})
    with pytest.raises(CryptoError):
        canonical_json({"n": 2**53})


def test_non_bmp_sorting_matches_jcs_via_the_reference() -> None:
    # U+FFFF sorts after U+10000 by code point but before it by UTF-16 code unit.
    document = {"\uffff": 1, "\U00010000": 2}
    assert canonical_json(document) == rfc8785.dumps(document)
    assert canonical_json(document).index("\U00010000".encode()) < canonical_json(document).index(
        "\uffff".encode()
    )
