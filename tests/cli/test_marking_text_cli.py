"""A draft with its marking written as text, through ``hub policy check``.

REFERENCE.md 1.7 (input normalisation) and 1.9 (the original kept verbatim, nothing
auto-downgraded): what was normalised is told to the user on stderr; text the hub cannot
use is refused with the text named.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.cli.demo import DEMO_REFERRAL_DRAFT
from hub.cli.main import main


def _draft(tmp_path: Path, marking: object) -> Path:
    draft = json.loads(json.dumps(DEMO_REFERRAL_DRAFT))
    draft["envelope"]["marking"] = marking
    draft["envelope"]["sender"] = "health.bsw-icb"
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(draft))
    return path


def test_a_text_marking_is_read_and_what_was_normalised_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = _draft(tmp_path, "Official Sensitive Personal Data")
    assert main(["policy", "check", "--json", str(draft)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert "marking: " in captured.err
    assert "'OFFICIAL-SENSITIVE - PERSONAL DATA'" in captured.err


def test_legacy_restricted_is_reported_and_never_raised_or_lowered_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """markings.yaml: RESTRICTED routes as OFFICIAL and the original is kept; a referral
    needs OFFICIAL-SENSITIVE, which only its creator can give it (MK-10, HR-01)."""
    draft = _draft(tmp_path, "RESTRICTED")
    assert main(["policy", "check", "--json", str(draft)]) == 1
    captured = capsys.readouterr()
    assert "legacy RESTRICTED" in captured.err
    assert [v["rule"] for v in json.loads(captured.out)] == ["MK-10"]


def test_an_unreadable_marking_is_an_error_naming_the_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = _draft(tmp_path, "CONFIDENTIAL")
    assert main(["policy", "check", "--json", str(draft)]) == 1
    problem = json.loads(capsys.readouterr().out)
    assert problem["status"] == 422
    assert [v["rule"] for v in problem["violations"]] == ["MK-13"]
    assert "'CONFIDENTIAL'" in problem["violations"][0]["message"]
