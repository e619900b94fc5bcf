"""A node's keys after rotation: archived X25519 secrets open old payloads; fingerprints.

Known-answer values come from the fixed INSECURE test seeds (tests/conftest.py).
"""

from __future__ import annotations

import pytest

from hub.crypto import (
    ContentKey,
    DecryptionFailed,
    NodeKeys,
    key_fingerprint,
    open_content_key,
    public_key_sha256,
    seal_content_key,
)
from tests.conftest import INSECURE_TEST_NODE_KEYS

OLD = INSECURE_TEST_NODE_KEYS["health.bsw-icb"]
NEWER = NodeKeys.from_seed(b"insecure-rotated-health-1-000000")
NEWEST = NodeKeys.from_seed(b"insecure-rotated-health-2-000000")


def _sealed_to(keys: NodeKeys, content: ContentKey) -> str:
    return seal_content_key(content, {"n": keys.public.encryption})["n"]


def test_a_payload_key_sealed_to_any_archived_key_opens() -> None:
    content = ContentKey.generate()
    holder = NEWEST.with_previous((NEWER.with_previous((OLD,)),))
    for keys in (OLD, NEWER, NEWEST):
        assert open_content_key(holder, _sealed_to(keys, content)).raw() == content.raw()
    assert holder.previous_encryption_keys == (NEWER.public.encryption, OLD.public.encryption)


def test_without_the_archive_an_old_payload_key_does_not_open() -> None:
    content = ContentKey.generate()
    with pytest.raises(DecryptionFailed):
        open_content_key(NEWEST, _sealed_to(OLD, content))
    # Nor does a stranger's archive.
    stranger = NEWEST.with_previous((INSECURE_TEST_NODE_KEYS["police.ctp-sw"],))
    with pytest.raises(DecryptionFailed):
        open_content_key(stranger, _sealed_to(OLD, content))


def test_with_previous_keeps_each_secret_once_and_never_the_current_one() -> None:
    holder = NEWEST.with_previous((OLD, OLD, NEWEST, NEWER.with_previous((OLD,))))
    assert holder.previous_encryption_keys == (OLD.public.encryption, NEWER.public.encryption)
    assert holder.public == NEWEST.public  # signs with the current key only


@pytest.mark.parametrize("sealed", ["not base64!", "\u00e9t\u00e9", "QUJD"])
def test_a_malformed_sealed_key_is_a_decryption_failure(sealed: str) -> None:
    with pytest.raises(DecryptionFailed):
        open_content_key(NEWEST.with_previous((OLD,)), sealed)


def test_fingerprint_is_a_readable_prefix_of_the_keys_sha256() -> None:
    signing = OLD.public.signing
    assert public_key_sha256(signing) == (
        "fc021a388104e729e0b27c37159bc66dadcb2bf0acb6c61ab1e8ed1b6b383bd3"
    )
    assert key_fingerprint(signing) == "fc02 1a38 8104 e729 e0b2 7c37 159b c66d adcb 2bf0"
    assert key_fingerprint(signing).replace(" ", "") == public_key_sha256(signing)[:40]
