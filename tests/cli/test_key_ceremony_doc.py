"""deploy/key-ceremony.md: every ``hub`` command in it runs as written (the parser takes it).

The same check tests/cli/test_docs_commands.py makes for README.md and docs/; the
operator guides in deploy/ are read by the people who run these commands at a ceremony.
"""

from __future__ import annotations

from pathlib import Path

from hub.cli.main import build_parser
from tests.cli.test_docs_commands import _hub_commands

DOC = Path(__file__).resolve().parents[2] / "deploy" / "key-ceremony.md"


def test_every_hub_command_in_the_key_ceremony_parses() -> None:
    commands = _hub_commands(DOC)
    named = {tuple(words[1:3]) for words in commands}
    # The ceremony's own commands are all there.
    assert {
        ("keys", "generate"),
        ("node", "init"),
        ("admin", "enrol"),
        ("node", "rotate-keys"),
        ("admin", "suspend"),
        ("node", "prepare-keys"),
        ("admin", "keys"),
        ("admin", "compromise-key"),
        ("admin", "reinstate"),
        ("node", "adopt-keys"),
    } <= named
    for words in commands:
        assert words[0] == ".venv/bin/hub", words
        build_parser().parse_args(words[1:])
    assert "../shared" not in DOC.read_text(encoding="utf-8")
