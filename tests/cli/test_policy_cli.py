"""``hub policy check`` and ``hub policy explain``, and docs/policy.md kept current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.cli.demo import DEMO_REFERRAL_DRAFT
from hub.cli.main import main
from hub.policy.explain import explain_markdown
from hub.policy.registry import load_registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def _draft(tmp_path: Path, **envelope: object) -> Path:
    draft = json.loads(json.dumps(DEMO_REFERRAL_DRAFT))
    draft["envelope"].update(envelope)
    draft["envelope"]["sender"] = "health.bsw-icb"
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(draft))
    return path


def test_check_passes_the_demo_referral(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", "--json", str(_draft(tmp_path))]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_check_lists_every_violation_and_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = _draft(
        tmp_path, marking={"tier": "SECRET"}, legal_basis={"exemptions": ["DPA2018-S2P1p2"]}
    )
    assert main(["policy", "check", "--json", str(draft)]) == 1
    rules = {v["rule"] for v in json.loads(capsys.readouterr().out)}
    assert {"MK-09", "GW-01", "GW-02", "GW-EX"} <= rules


def test_check_needs_to_know_the_parties(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = _draft(tmp_path, recipients=["mystery.org"])
    assert main(["policy", "check", "--json", str(draft)]) == 2
    assert "--party mystery.org=AGENCY_TYPE" in capsys.readouterr().err
    # Named, the party is checked like any other: police alone miss the local authority.
    assert main(["policy", "check", "--json", str(draft), "--party", "mystery.org=police"]) == 1
    assert "WF-01" in {v["rule"] for v in json.loads(capsys.readouterr().out)}


def test_explain_prints_the_registry_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "explain"]) == 0
    out = capsys.readouterr().out
    for heading in ("## Rules", "## Lawful gateways", "## Data categories", "## Purposes"):
        assert heading in out
    assert "CDA1998-s115" in out
    assert "GW-EX" in out


def test_docs_policy_md_is_current() -> None:
    expected = explain_markdown(load_registry())
    assert DOCS.exists(), "run: .venv/bin/hub policy explain --out docs/policy.md"
    assert DOCS.read_text(encoding="utf-8") == expected, (
        "docs/policy.md is out of date; run: .venv/bin/hub policy explain --out docs/policy.md"
    )


def test_check_applies_referral_routing_like_the_hub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WF-01 is one of the engine's rules: the offline check refuses what the hub would. A
    # referral to the police alone misses the local authority (seed 004 Appendix 3).
    draft = _draft(tmp_path, recipients=["police.ctp-sw"])
    assert main(["policy", "check", "--json", str(draft)]) == 1
    assert [v["rule"] for v in json.loads(capsys.readouterr().out)] == ["WF-01"]
