"""Enrolling partners: the fingerprint confirmed, the secure email list, nothing half-written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agency_adapters.email_pgp import (
    BridgeStore,
    EnrolmentError,
    add_partner,
    list_partners,
    open_keyring,
)
from hub.client import load_node_profile
from hub.policy.registry import load_registry
from tests.bridge.conftest import Bridge, GpgHomes, GpgUser, read_public_keys

EMAIL = "dsl@school.example.sch.uk"


def enrol(bridge: Bridge, user: GpgUser, **changes: Any) -> Any:
    arguments: dict[str, Any] = {
        "node_id": "education.example-school",
        "email": user.email,
        "name": "Sam Teacher (SYNTHETIC)",
        "organisation": "Example School (SYNTHETIC)",
        "agency_type": "education",
        "armored_key": user.export_public(),
        "fingerprint": user.fingerprint,
        "now": datetime.now(UTC),
    }
    arguments.update(changes)
    return add_partner(bridge.folder, bridge.config, load_registry(), **arguments)


def assert_nothing_enrolled(bridge: Bridge, fingerprint: str) -> None:
    with BridgeStore.open(bridge.folder) as store:
        assert store.partners() == []
    assert not (bridge.folder.root / "partners").exists() or not any(
        (bridge.folder.root / "partners").iterdir()
    )
    assert open_keyring(bridge.folder).partner_key(fingerprint) is None


def test_a_partner_is_enrolled_with_a_node_folder_and_its_confirmed_key(
    bridge: Bridge, gpg_homes: GpgHomes
) -> None:
    user = gpg_homes.user(EMAIL)
    # Confirmed out of band as gpg --fingerprint prints it: groups of four, any case.
    spaced = " ".join(user.fingerprint[i : i + 4] for i in range(0, 40, 4)).lower()
    partner, public_keys = enrol(bridge, user, fingerprint=spaced)
    assert partner.fingerprint == user.fingerprint
    assert partner.status == "active"
    # The partner's node folder: a node profile of its agency type on the bridge's hub.
    profile = load_node_profile(bridge.folder.partner_dir("education.example-school"))
    assert (profile.node_id, profile.agency_type) == ("education.example-school", "education")
    assert profile.hub_url == bridge.config.hub.url
    assert profile.key_file.stat().st_mode & 0o077 == 0
    assert read_public_keys(public_keys) == profile.load_keys().public
    (view,) = list_partners(bridge.folder, datetime.now(UTC))
    assert view.partner.email == EMAIL
    assert view.key_state.startswith("usable until ")


def test_a_fingerprint_that_does_not_match_the_key_is_refused_and_nothing_kept(
    bridge: Bridge, gpg_homes: GpgHomes
) -> None:
    user = gpg_homes.user(EMAIL)
    other = gpg_homes.user("someone@else.example.sch.uk")
    with pytest.raises(EnrolmentError, match=r"--key: the key's fingerprint is .* not the"):
        enrol(bridge, user, fingerprint=other.fingerprint)
    assert_nothing_enrolled(bridge, user.fingerprint)


def test_a_short_key_id_is_not_a_confirmation(bridge: Bridge, gpg_homes: GpgHomes) -> None:
    user = gpg_homes.user(EMAIL)
    with pytest.raises(EnrolmentError, match=r"--fingerprint: .*40 hexadecimal digits"):
        enrol(bridge, user, fingerprint=user.fingerprint[-16:])
    assert_nothing_enrolled(bridge, user.fingerprint)


def test_a_key_file_with_two_keys_is_refused(bridge: Bridge, gpg_homes: GpgHomes) -> None:
    user = gpg_homes.user(EMAIL)
    other = gpg_homes.user("someone@else.example.sch.uk")
    with pytest.raises(EnrolmentError, match="holds 2 keys"):
        enrol(bridge, user, armored_key=user.export_public() + other.export_public())
    assert_nothing_enrolled(bridge, user.fingerprint)


def test_an_already_expired_key_is_refused_at_enrolment(
    bridge: Bridge, gpg_homes: GpgHomes
) -> None:
    user = gpg_homes.user(EMAIL, expire="1d", faked_time="20200101T000000")
    with pytest.raises(EnrolmentError, match="expired at 2020-01-02"):
        enrol(bridge, user)
    assert_nothing_enrolled(bridge, user.fingerprint)


def test_a_revoked_key_is_refused_at_enrolment(bridge: Bridge, gpg_homes: GpgHomes) -> None:
    user = gpg_homes.user(EMAIL)
    with pytest.raises(EnrolmentError, match="has been revoked"):
        enrol(bridge, user, armored_key=user.revoke())
    assert_nothing_enrolled(bridge, user.fingerprint)


def test_a_personal_email_domain_is_refused_with_em_01(bridge: Bridge, gpg_homes: GpgHomes) -> None:
    user = gpg_homes.user("mentor@gmail.com")
    with pytest.raises(EnrolmentError, match=r"--email: EM-01 .*not on the secure email list"):
        enrol(bridge, user)
    assert_nothing_enrolled(bridge, user.fingerprint)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("node_id", "Education.School", "--node-id 'Education.School' must look like"),
        ("agency_type", "university", "--agency-type 'university' is not one of"),
        ("name", "  ", "--name must be one line"),
        ("organisation", "Two\nlines", "--organisation must be one line"),
    ],
)
def test_each_bad_field_is_named(
    bridge: Bridge, gpg_homes: GpgHomes, field: str, value: str, message: str
) -> None:
    user = gpg_homes.user(EMAIL)
    with pytest.raises(EnrolmentError, match=message):
        enrol(bridge, user, **{field: value})
    assert_nothing_enrolled(bridge, user.fingerprint)


def test_the_same_node_address_or_key_is_not_enrolled_twice(
    bridge: Bridge, gpg_homes: GpgHomes
) -> None:
    user = gpg_homes.user(EMAIL)
    enrol(bridge, user)
    second = gpg_homes.user("deputy@school.example.sch.uk")
    with pytest.raises(EnrolmentError, match=r"education.example-school is already enrolled"):
        enrol(bridge, second)
    with pytest.raises(EnrolmentError, match="is already enrolled as another partner"):
        enrol(bridge, second, node_id="education.other-school", email=EMAIL.upper())
    with pytest.raises(EnrolmentError, match=r"already enrolled for education.example-school"):
        enrol(
            bridge,
            user,
            node_id="education.other-school",
            email="deputy@school.example.sch.uk",
        )
    with BridgeStore.open(bridge.folder) as store:
        assert [p.node_id for p in store.partners()] == ["education.example-school"]
    assert open_keyring(bridge.folder).partner_key(second.fingerprint) is None


def test_a_failure_after_the_key_import_leaves_nothing_behind(
    bridge: Bridge, gpg_homes: GpgHomes, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = gpg_homes.user(EMAIL)

    def broken(*_: object, **__: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("agency_adapters.email_pgp.partners.write_key_file", broken)
    with pytest.raises(OSError, match="disk full"):
        enrol(bridge, user)
    assert_nothing_enrolled(bridge, user.fingerprint)


def test_bridge_init_refuses_to_overwrite_a_bridge(bridge: Bridge) -> None:
    from agency_adapters.email_pgp import init_bridge

    with pytest.raises(EnrolmentError, match="already holds a bridge"):
        init_bridge(bridge.folder, bridge.config)
    assert open_keyring(bridge.folder).own_fingerprint() == bridge.fingerprint


def test_the_passphrase_file_must_be_private(bridge: Bridge) -> None:
    bridge.folder.passphrase_file.chmod(0o644)
    with pytest.raises(EnrolmentError, match=r"openpgp.passphrase must be readable by its owner"):
        open_keyring(bridge.folder)


def test_keyring_home_is_under_the_bridge_folder(bridge: Bridge) -> None:
    assert open_keyring(bridge.folder).home == bridge.folder.root / "gnupg"
    assert Path(bridge.folder.database).parent == bridge.folder.root / "state"
