"""The health node's disclosure log: append-only, 0600, hash-chained, tamper-evident."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agency_adapters.health import (
    DisclosureLog,
    DisclosureLogError,
    DisclosureLogTampered,
    DisclosureRecord,
)
from hub.crypto import canonical_json, canonical_sha256
from hub.model import Consent

WHEN = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)


def disclosure(n: int = 1, **changes: Any) -> DisclosureRecord:
    fields: dict[str, Any] = {
        "disclosed_at": WHEN + timedelta(minutes=n),
        "categories": ("mental_health_diagnoses", "medication"),
        "resource_count": 4 + n,
        "release_sha256": hashlib.sha256(f"release {n}".encode()).hexdigest(),
        "recipients": ("police.ctp-sw",),
        "subject_ref": "subj-7f3a9c",
        "purpose": "PREVENT_TRIAGE",
        "gateways": ("CDA1998-s115", "UKGDPR-A6-1e", "UKGDPR-A9-2g", "DPA2018-S1P2p10"),
        "decided_by_role": "CALDICOTT_GUARDIAN",
        "decided_by_user_ref": "user-0001",
        "request_id": "01a1fca0-7fb0-756c-a2a0-f908835c17ed",
        "decision_id": "01a1fca0-7fb0-756c-a2a0-f908835c17ee",
        "release_id": f"01a1fca0-7fb0-756c-a2a0-f908835c17{n:02x}",
        "marking": "OFFICIAL-SENSITIVE - PERSONAL DATA",
        "consent": Consent(state="NOT_SOUGHT", reason_code="WOULD_PREJUDICE_OUTCOME"),
        "subject_informed": False,
        "not_informed_reason": "WOULD_PREJUDICE_OUTCOME",
    }
    return DisclosureRecord(**(fields | changes))


@pytest.fixture
def log(tmp_path: Path) -> DisclosureLog:
    log = DisclosureLog(tmp_path / "disclosures.jsonl")
    for n in (1, 2, 3):
        log.record(disclosure(n))
    return log


def lines(log: DisclosureLog) -> list[bytes]:
    return log.path.read_bytes().splitlines(keepends=True)


def rewrite(log: DisclosureLog, new_lines: list[bytes]) -> None:
    # Tampering, as an attacker with write access would: the log itself never rewrites.
    log.path.write_bytes(b"".join(new_lines))


def test_records_are_appended_and_read_back(tmp_path: Path) -> None:
    log = DisclosureLog(tmp_path / "disclosures.jsonl")

    assert log.entries() == []
    assert [log.record(disclosure(n)) for n in (1, 2, 3)] == [1, 2, 3]
    assert log.entries() == [disclosure(1), disclosure(2), disclosure(3)]


def test_the_time_is_the_one_passed_in(log: DisclosureLog) -> None:
    assert [e.disclosed_at for e in log.entries()] == [
        WHEN + timedelta(minutes=n) for n in (1, 2, 3)
    ]


def test_the_file_is_0600(log: DisclosureLog) -> None:
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_a_looser_file_is_refused(log: DisclosureLog) -> None:
    log.path.chmod(0o644)

    with pytest.raises(DisclosureLogError, match="must be 0600"):
        log.record(disclosure(4))
    with pytest.raises(DisclosureLogError, match="must be 0600"):
        log.entries()


def test_a_symlink_is_refused(log: DisclosureLog, tmp_path: Path) -> None:
    link = tmp_path / "link.jsonl"
    link.symlink_to(log.path)

    with pytest.raises(DisclosureLogError, match="cannot open"):
        DisclosureLog(link).record(disclosure(4))


def test_appending_never_rewrites_earlier_lines(log: DisclosureLog) -> None:
    before = log.path.read_bytes()

    log.record(disclosure(4))

    after = log.path.read_bytes()
    assert after.startswith(before)
    assert after.count(b"\n") == 4


def test_each_line_is_canonical_json_chained_to_the_last(log: DisclosureLog) -> None:
    previous = "0" * 64
    for number, raw in enumerate(lines(log), start=1):
        doc = json.loads(raw)
        assert raw == canonical_json(doc) + b"\n"
        assert doc["seq"] == number
        assert doc["prev_sha256"] == previous
        assert doc["sha256"] == canonical_sha256({k: v for k, v in doc.items() if k != "sha256"})
        previous = doc["sha256"]


def test_verify_accepts_an_untouched_log(log: DisclosureLog) -> None:
    head = log.verify()

    assert head.line == 3
    assert head.sha256 == json.loads(lines(log)[-1])["sha256"]
    assert log.head() == head


def test_an_edited_line_is_named(log: DisclosureLog) -> None:
    content = lines(log)
    content[1] = content[1].replace(b'"resource_count":6', b'"resource_count":60')

    rewrite(log, content)

    with pytest.raises(DisclosureLogTampered, match="own hash") as caught:
        log.verify()
    assert caught.value.line == 2


def test_an_edit_with_its_hash_recomputed_breaks_the_chain(log: DisclosureLog) -> None:
    content = lines(log)
    doc = json.loads(content[1])
    doc["record"]["recipients"] = ["la.wiltshire"]
    body = {k: v for k, v in doc.items() if k != "sha256"}
    content[1] = canonical_json({**body, "sha256": canonical_sha256(body)}) + b"\n"

    rewrite(log, content)

    with pytest.raises(DisclosureLogTampered, match="does not follow line 2") as caught:
        log.verify()
    assert caught.value.line == 3


def test_a_deleted_line_is_named(log: DisclosureLog) -> None:
    content = lines(log)

    rewrite(log, [content[0], content[2]])

    with pytest.raises(DisclosureLogTampered, match="holds entry 3 where entry 2") as caught:
        log.verify()
    assert caught.value.line == 2


def test_reordered_lines_are_named(log: DisclosureLog) -> None:
    content = lines(log)

    rewrite(log, [content[1], content[0], content[2]])

    with pytest.raises(DisclosureLogTampered) as caught:
        log.verify()
    assert caught.value.line == 1


def test_lines_cut_from_the_end_are_caught_by_an_anchor(log: DisclosureLog) -> None:
    anchor = log.head()
    log.record(disclosure(4))
    assert log.verify(anchor=anchor).line == 4  # growth after the anchor is fine

    rewrite(log, lines(log)[:2])

    assert log.verify().line == 2  # without an anchor, a shorter chain looks whole
    with pytest.raises(DisclosureLogTampered, match="removed from the end") as caught:
        log.verify(anchor=anchor)
    assert caught.value.line == 3


def test_a_torn_last_line_stops_appends_and_fails_verify(log: DisclosureLog) -> None:
    content = lines(log)
    rewrite(log, [*content[:2], content[2][:-10]])

    with pytest.raises(DisclosureLogError, match="incomplete line"):
        log.record(disclosure(4))
    with pytest.raises(DisclosureLogTampered) as caught:
        log.verify()
    assert caught.value.line == 3


def test_a_damaged_last_line_stops_appends(log: DisclosureLog) -> None:
    content = lines(log)
    content[2] = content[2].replace(b'"seq":3', b'"seq":9')
    rewrite(log, content)

    with pytest.raises(DisclosureLogError, match=r"last line .* is damaged"):
        log.record(disclosure(4))


def test_a_garbage_line_is_named(log: DisclosureLog) -> None:
    content = lines(log)
    rewrite(log, [content[0], b"{not json\n", content[2]])

    with pytest.raises(DisclosureLogTampered, match="not valid JSON") as caught:
        log.entries()
    assert caught.value.line == 2


def test_the_time_must_be_utc() -> None:
    with pytest.raises(ValidationError, match="UTC"):
        disclosure(disclosed_at=datetime(2025, 6, 1, 9, 30))  # naive: refused
    with pytest.raises(ValidationError, match="UTC"):
        disclosure(disclosed_at=datetime(2025, 6, 1, 9, 30, tzinfo=timezone(timedelta(hours=1))))


def test_a_subject_not_informed_needs_a_reason() -> None:
    with pytest.raises(ValidationError, match="why the subject was not informed"):
        disclosure(not_informed_reason=None)
    with pytest.raises(ValidationError, match="only for a subject who was not informed"):
        disclosure(subject_informed=True)
    assert disclosure(subject_informed=True, not_informed_reason=None).subject_informed


def test_records_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        disclosure(patient_name="Test Synthetic")


def test_the_file_is_synced_per_entry(log: DisclosureLog, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    log.record(disclosure(4))
    log.record(disclosure(5))

    assert len(synced) == 2
