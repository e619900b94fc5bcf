"""The shape of the ``hub`` command: help on every option, and a fast start.

``hub --version`` and ``hub --help`` import no command module (hub/cli/main.py), so they
do not pay for aiohttp, SQLAlchemy and pydantic. Checked by what a fresh interpreter has
imported, not by timing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hub.cli.main import COMMANDS, build_parser

HEAVY = ("aiohttp", "sqlalchemy", "pydantic", "nacl", "hub.cli.node", "hub.cli.admin")


def _parsers(
    parser: argparse.ArgumentParser, path: str = "hub"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                missing += [f"{path} {name}" for name in action.choices if name not in helped]
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert missing == [], f"options and commands without help text: {missing}"


def test_the_lazy_listing_says_what_each_command_module_says() -> None:
    (full,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest: c.help for c in full._choices_actions} == {
        name: text for name, (_, _, text) in COMMANDS.items()
    }
    assert build_parser().format_help() == build_parser(lazy=True).format_help()


@pytest.mark.parametrize("argv", [["--version"], ["--help"], []])
def test_version_and_help_import_no_command_module(argv: list[str]) -> None:
    probe = (
        "import sys\n"
        "from hub.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


def test_a_command_imports_only_its_own_module() -> None:
    probe = (
        "import sys\n"
        "from hub.cli.main import main\n"
        "try:\n"
        "    main(['policy', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('hub.cli.policy' in sys.modules, 'hub.cli.demo' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "True False"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_builds_alone_as_in_the_full_tree(command: str) -> None:
    def help_of(parser: argparse.ArgumentParser) -> str:
        (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return sub.choices[command].format_help()

    assert help_of(build_parser(command, lazy=True)) == help_of(build_parser())
