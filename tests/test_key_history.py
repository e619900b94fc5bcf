"""Which of a sender's keys a node trusts for a signature the hub received at a time.

Pure functions over a directory entry (``hub.client.keys``): no hub needed.
"""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.client import NodeProfile
from hub.client.keys import key_valid_at, signing_key_at
from hub.client.rotation import switch_keys
from hub.crypto import (
    ContentKey,
    KeyFileError,
    NodeKeys,
    open_content_key,
    seal_content_key,
    write_key_file,
)
from hub.model import DirectoryEntry, DirectoryKey

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROTATED = T0 + timedelta(days=100)
LEAK = T0 + timedelta(days=50)
OLD = NodeKeys.from_seed(b"insecure-history-old-00000000000")
NEW = NodeKeys.from_seed(b"insecure-history-new-00000000000")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key(keys: NodeKeys, **fields: object) -> DirectoryKey:
    return DirectoryKey.model_validate(
        {
            "signing_key": _b64(keys.public.signing),
            "encryption_key": _b64(keys.public.encryption),
            **fields,
        }
    )


def _entry(*keys: DirectoryKey) -> DirectoryEntry:
    return DirectoryEntry(
        id="health.bsw-icb",
        agency_type="health",
        display_name="Health",
        signing_key=_b64(NEW.public.signing),
        encryption_key=_b64(NEW.public.encryption),
        accreditation="OFFICIAL-SENSITIVE",
        status="active",
        keys=keys,
    )


ROTATED_ENTRY = _entry(
    _key(OLD, valid_from=T0, valid_until=ROTATED, status="rotated"),
    _key(NEW, valid_from=ROTATED, status="current"),
)
COMPROMISED_ENTRY = _entry(
    _key(OLD, valid_from=T0, valid_until=ROTATED, status="compromised", compromised_from=LEAK),
    _key(NEW, valid_from=ROTATED, status="current"),
)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (T0 - timedelta(microseconds=1), None),  # before the node had keys
        (T0, OLD),
        (ROTATED - timedelta(microseconds=1), OLD),  # a rotated key stays valid to its end
        (ROTATED, NEW),
        (ROTATED + timedelta(days=999), NEW),
    ],
)
def test_a_rotated_key_is_trusted_for_its_whole_period(
    at: datetime, expected: NodeKeys | None
) -> None:
    key = signing_key_at(ROTATED_ENTRY, at)
    assert key == (None if expected is None else expected.public.signing)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (T0, OLD),
        (LEAK - timedelta(microseconds=1), OLD),
        (LEAK, None),  # from the compromise on, nothing it signed is trusted
        (ROTATED - timedelta(microseconds=1), None),
        (ROTATED, NEW),
    ],
)
def test_a_compromised_key_is_trusted_only_before_the_compromise(
    at: datetime, expected: NodeKeys | None
) -> None:
    key = signing_key_at(COMPROMISED_ENTRY, at)
    assert key == (None if expected is None else expected.public.signing)
    found = key_valid_at(COMPROMISED_ENTRY, at)
    assert (found is None) == (expected is None)


def test_a_directory_without_key_history_means_the_current_key() -> None:
    assert signing_key_at(_entry(), T0) == NEW.public.signing


# -- the node folder keeps its archived keys and reads them back --------------------------


def _profile(root: Path) -> NodeProfile:
    return NodeProfile(
        root=root,
        node_id="health.bsw-icb",
        agency_type="health",
        hub_url="http://127.0.0.1:9",
        hub_id="hub.test",
        hub_signing_key=bytes(32),
        key_file=root / "keys" / "node.key",
    )


def test_a_node_folder_opens_payloads_sealed_to_its_archived_keys(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    write_key_file(profile.key_file, NEW)
    write_key_file(profile.key_archive_dir / "20260101T000000000000Z-old.key", OLD)
    keys = profile.load_keys()
    assert keys.public == NEW.public
    content = ContentKey.generate()
    sealed = seal_content_key(content, {"n": OLD.public.encryption})["n"]
    assert open_content_key(keys, sealed).raw() == content.raw()


def test_an_archived_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    write_key_file(profile.key_file, NEW)
    archived = profile.key_archive_dir / "20260101T000000000000Z-old.key"
    write_key_file(archived, OLD)
    archived.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        profile.load_keys()


def test_archived_keys_are_listed_newest_first(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    for stamp in ("20260101T000000000000Z", "20270101T000000000000Z", "20250101T000000000000Z"):
        write_key_file(
            profile.key_archive_dir / f"{stamp}-k.key",
            NodeKeys.from_seed(f"insecure-{stamp}".encode().ljust(32, b"0")),
        )
    assert [p.name[:4] for p in profile.archived_key_files()] == ["2027", "2026", "2025"]


def test_switching_archives_the_old_key_file_and_moves_the_new_one_in(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    write_key_file(profile.key_file, OLD)
    (tmp_path / "node.pub.json").write_text(json.dumps(OLD.public.to_json()))
    write_key_file(profile.rotating_key_file, NEW)
    archived = switch_keys(profile, profile.rotating_key_file, current=OLD, new=NEW, now=T0)
    assert archived.name.startswith("20260101T000000000000Z-")
    assert stat.S_IMODE(archived.stat().st_mode) == 0o600
    assert stat.S_IMODE(profile.key_archive_dir.stat().st_mode) == 0o700
    assert not profile.rotating_key_file.exists()
    assert profile.load_keys().public == NEW.public
    assert profile.load_keys().previous_encryption_keys == (OLD.public.encryption,)
    assert json.loads((tmp_path / "node.pub.json").read_text()) == NEW.public.to_json()
