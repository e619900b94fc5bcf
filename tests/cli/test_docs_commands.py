"""Every command in README.md, docs/ and bench/README.md runs as written.

A new user has only what the README's first command made: ``.venv/bin/hub``. So each
``hub`` command in a shell block is written with that path and parses with the real
parser (an option the command lacks fails here), the docs never send the reader to the
design notes outside the repository, and the README's examples on a kept demo give the
verdicts and figures they promise.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from hub.cli.main import build_parser
from tests.cli.test_cli import HUB

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SETUP = [
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/hub demo",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest",
]


def _shell_lines(path: Path) -> list[str]:
    """The commands of a document's sh blocks, continuation lines joined."""
    blocks = re.findall(r"```sh\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    return [
        line.strip()
        for block in blocks
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def _hub_commands(path: Path) -> list[list[str]]:
    words = [shlex.split(line, comments=True) for line in _shell_lines(path)]
    return [w for w in words if w and w[0].endswith("hub")]


def test_the_readme_opens_with_the_set_up_commands() -> None:
    assert _shell_lines(ROOT / "README.md")[:2] == SETUP


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_hub_command_is_runnable_as_written(path: Path) -> None:
    commands = _hub_commands(path)
    for words in commands:
        assert words[0] == ".venv/bin/hub", f"{path.name}: {shlex.join(words)}"
        try:
            build_parser().parse_args(words[1:])
        except SystemExit:
            pytest.fail(f"{path.name}: 'hub' does not accept: {shlex.join(words)}")
    text = path.read_text(encoding="utf-8")
    assert "../shared" not in text
    assert "shared/" not in text


def test_every_script_the_bench_readme_names_exists() -> None:
    readme = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    for script in re.findall(r"`(\w+\.py)`", readme):
        assert (ROOT / "bench" / script).is_file(), f"bench/README.md names {script}"


def test_the_readme_examples_on_a_kept_demo(tmp_path: Path) -> None:
    """The README's offline commands, run in a folder as a user would, from its text."""
    offline = [
        w
        for w in _hub_commands(ROOT / "README.md")
        if "./demo" in " ".join(w) and w[1] in ("demo", "policy", "report")
    ]
    assert [w[1] for w in offline] == ["demo", "policy", "report"]
    outputs = []
    for words in offline:
        result = subprocess.run(
            [*HUB, *words[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout)
    assert outputs[1] == "no rule broken\n"
    assert "\nreferrals: 2\n" in outputs[2]  # health's, and the university's by email
    assert "\nreleases: 1\n" in outputs[2]
