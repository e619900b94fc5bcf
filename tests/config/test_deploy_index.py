"""deploy/README.md is the operator's index: it names every file in deploy/, and only those."""

from __future__ import annotations

import re
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _named_in_the_table() -> set[str]:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def test_the_index_names_every_deploy_file_and_nothing_else() -> None:
    present = {p.name for p in DEPLOY.iterdir() if p.is_file() and p.name != "README.md"}
    named = _named_in_the_table()
    assert present - named == set(), f"in deploy/ but not in its README: {present - named}"
    assert named - present == set(), f"in the README but not in deploy/: {named - present}"


def test_the_reading_order_names_only_documents_that_exist() -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    order = text.split("| file |")[0]
    for name in re.findall(r"`([a-z-]+\.md)`", order):
        assert (DEPLOY / name).is_file(), name
