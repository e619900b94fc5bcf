"""``hub node draft KIND``: templates that parse, carry the registry's choices, and once
filled with the demo's values are drafts the wire model and ``hub policy check`` accept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from agency_adapters.node.console.views.cases import NOT_SOUGHT_REASONS
from hub.cli.drafts import (
    example_values,
    fill_template,
    strip_comments,
    template_for,
    without_comments,
)
from hub.model import MESSAGE_KINDS, Consent, Draft
from hub.policy.registry import load_registry
from tests.cli.test_cli import run

REGISTRY = load_registry()
# Replies are judged against the message they answer, which an offline check cannot see
# (hub policy check says so); a release's payload is built by 'hub node release'.
OFFLINE_UNCHECKABLE = {"decision": ("DEC-",), "release": ("REL-", "MAN-")}


def _filled(kind: str) -> dict[str, object]:
    values = example_values(kind)
    filled = fill_template(template_for(kind), lambda placeholder: values[placeholder])
    assert isinstance(filled, dict)
    return filled


def test_strip_comments_keeps_slashes_inside_strings() -> None:
    text = '// head\n{"a": "http://x//y", // tail\n "b": "\\"//\\""}\n'
    stripped = strip_comments(text)
    assert json.loads(stripped) == {"a": "http://x//y", "b": '"//"'}
    # Positions are kept, so a JSON error points at the file as written.
    assert len(stripped) == len(text)
    assert [len(line) for line in stripped.splitlines()] == [
        len(line) for line in text.splitlines()
    ]
    assert without_comments(b'{"a": 1}') == b'{"a": 1}'


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_each_template_parses_and_fills_into_a_valid_draft(kind: str) -> None:
    template = template_for(kind)
    parsed = json.loads(strip_comments(template))
    assert parsed["envelope"]["kind"] == kind
    placeholders = set(re.findall(r'"(<envelope\.[^"]+>)"', strip_comments(template)))
    assert placeholders, "a template has values to choose"
    assert placeholders == set(example_values(kind))
    draft = Draft.model_validate_json(json.dumps(_filled(kind)))
    assert draft.envelope.kind == kind
    # Unfilled, the placeholders are refused by the wire model (nothing half-valid).
    with pytest.raises(ValidationError, match="envelope"):
        Draft.model_validate_json(json.dumps(parsed))


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_every_registry_choice_appears(kind: str) -> None:
    template = template_for(kind)
    purposes = [p for p in REGISTRY.purposes if kind in p.kinds]
    assert purposes
    for purpose in purposes:
        assert f"{purpose.id}: {purpose.name}" in template
    for purpose in REGISTRY.purposes:
        if kind not in purpose.kinds:
            assert f"  {purpose.id}: " not in template, purpose.id
    marks = REGISTRY.markings
    for entry in (*marks.tiers, *marks.descriptors, *marks.handling_instructions):
        assert f"  {entry.id}" in template, entry.id
    filled = _filled(kind)
    envelope = filled["envelope"]
    assert isinstance(envelope, dict)
    if "legal_basis" in envelope:
        for gateway in REGISTRY.gateways:
            if gateway.family not in ("constraint", "guidance"):
                assert f"  {gateway.id}: {gateway.title}" in template, gateway.id
        for agreement in REGISTRY.agreements:
            assert agreement.id in template
        # The plain-English text of a gateway, not only its id.
        assert "does not oblige an NHS body" in " ".join(template.replace("//", "").split())
    if "consent" in envelope:
        for state in Consent.model_fields["state"].annotation.__args__:  # type: ignore[union-attr]
            assert f"  {state}" in template
        for code, words in NOT_SOUGHT_REASONS.items():
            assert f"{code}: {words}" in template
    if "scope" in envelope or "decision" in envelope:
        for category in REGISTRY.data_categories:
            assert f"  {category.id}: {category.name}" in template, category.id


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_a_filled_template_passes_hub_policy_check(kind: str, tmp_path: Path) -> None:
    # The template file itself, comments kept, placeholders replaced as a person would.
    values = example_values(kind)
    text = template_for(kind)
    for placeholder, value in values.items():
        text = text.replace(json.dumps(placeholder), json.dumps(value))
    assert "<envelope." not in strip_comments(text)
    draft = tmp_path / f"{kind}.json"
    draft.write_text(text)
    (tmp_path / "release-bundle.json").write_text("{}")
    result = run("policy", "check", "--json", draft)
    rules = [v["rule"] for v in json.loads(result.stdout)]
    allowed = OFFLINE_UNCHECKABLE.get(kind)
    if allowed is None:
        assert result.returncode == 0, (rules, result.stderr)
        assert rules == []
    else:
        assert rules
        assert all(rule.startswith(allowed) for rule in rules), rules


def test_out_writes_the_file_and_an_unknown_kind_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "referral.jsonc"
    written = run("node", "draft", "REFERRAL", "--out", out)
    assert written.returncode == 0, written.stderr
    assert out.read_text() == template_for("referral")
    unknown = run("node", "draft", "bogus")
    assert unknown.returncode == 2
    assert "no message kind 'bogus'" in unknown.stderr
    for kind in MESSAGE_KINDS:
        assert kind in unknown.stderr
    printed = run("node", "draft", "note")
    assert printed.returncode == 0
    assert printed.stdout == template_for("note")
