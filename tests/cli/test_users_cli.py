"""``hub node users``: add, list, disable, enable and passwd, end to end."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
from pathlib import Path

import pytest

from agency_adapters.node.database import node_database_path
from agency_adapters.node.users import SignInRefused, UserStore
from hub.cli.common import EXIT_OK, EXIT_USAGE
from hub.cli.main import build_parser, main
from hub.client import write_node_profile
from tests.cli.test_cli import HUB

PASSWORD = "synthetic passphrase one"
NEW_PASSWORD = "synthetic passphrase two"


def hub(*args: str | Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HUB, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def node(tmp_path: Path) -> Path:
    root = tmp_path / "health.test"
    write_node_profile(
        root,
        node_id="health.test",
        agency_type="health",
        hub_url="http://127.0.0.1:1",
        hub_id="hub.test",
        hub_signing_key=bytes(32),
    )
    return root


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password.txt"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def add_alice(node: Path, *extra: str | Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return hub(
        "node", "users", "add", "--node", node, "--username", "alice",
        "--name", "Alice Example", "--role", "SAFEGUARDING_LEAD", "--role", "REFERRER",
        "--vetting", "SC", *extra, stdin=stdin,
    )  # fmt: skip


def listing(node: Path) -> list[dict[str, object]]:
    result = hub("node", "users", "list", "--node", node, "--json")
    assert result.returncode == EXIT_OK, result.stderr
    document: list[dict[str, object]] = json.loads(result.stdout)
    return document


def sign_in(node: Path, password: str) -> str:
    with UserStore.open(node_database_path(node)) as store:
        try:
            return store.authenticate("alice", password, remote="192.0.2.1").username
        except SignInRefused as refused:
            return refused.reason


def test_add_list_disable_enable_end_to_end(node: Path, password_file: Path) -> None:
    outputs = []
    added = add_alice(node, "--password-file", password_file)
    outputs.append(added)
    assert added.returncode == EXIT_OK, added.stderr
    assert added.stdout.startswith("added alice (usr-")
    assert "REFERRER, SAFEGUARDING_LEAD; vetting SC" in added.stdout

    (entry,) = listing(node)
    assert entry["username"] == "alice"
    assert entry["display_name"] == "Alice Example"
    assert entry["roles"] == ["REFERRER", "SAFEGUARDING_LEAD"]
    assert entry["vetting"] == "SC"
    assert entry["disabled"] is False
    assert entry["locked_until"] is None
    assert str(entry["user_ref"]).startswith("usr-")
    assert str(entry["user_ref"]) in added.stdout

    table = hub("node", "users", "list", "--node", node)
    outputs.append(table)
    header, row = table.stdout.splitlines()
    assert header.split() == ["USERNAME", "NAME", "ROLES", "VETTING", "STATUS", "USER", "REF"]
    assert row.startswith("alice")
    assert "Alice Example" in row
    assert "active" in row
    assert sign_in(node, PASSWORD) == "alice"

    disabled = hub("node", "users", "disable", "--node", node, "--username", "alice")
    outputs.append(disabled)
    assert disabled.returncode == EXIT_OK, disabled.stderr
    assert "disabled alice" in disabled.stdout
    assert listing(node)[0]["disabled"] is True
    assert "disabled" in hub("node", "users", "list", "--node", node).stdout
    assert sign_in(node, PASSWORD) == "disabled"

    enabled = hub("node", "users", "enable", "--node", node, "--username", "alice")
    outputs.append(enabled)
    assert enabled.returncode == EXIT_OK, enabled.stderr
    assert sign_in(node, PASSWORD) == "alice"

    for result in outputs:
        assert PASSWORD not in result.stdout + result.stderr


def test_password_from_stdin_and_passwd(node: Path) -> None:
    added = add_alice(node, "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == EXIT_OK, added.stderr
    changed = hub(
        "node", "users", "passwd", "--node", node, "--username", "alice", "--password-stdin",
        stdin=NEW_PASSWORD,
    )  # fmt: skip
    assert changed.returncode == EXIT_OK, changed.stderr
    assert "new password set for alice" in changed.stdout
    assert sign_in(node, PASSWORD) == "wrong password"
    assert sign_in(node, NEW_PASSWORD) == "alice"
    for result in (added, changed):
        assert PASSWORD not in result.stdout + result.stderr
        assert NEW_PASSWORD not in result.stdout + result.stderr


def test_a_password_file_others_can_read_is_refused(node: Path, password_file: Path) -> None:
    password_file.chmod(0o644)
    result = add_alice(node, "--password-file", password_file)
    assert result.returncode == EXIT_USAGE
    assert "readable by group or others (mode 0644)" in result.stderr
    assert "chmod 600" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert listing(node) == []


def test_a_multi_line_password_file_is_refused(node: Path, password_file: Path) -> None:
    password_file.write_text(PASSWORD + "\nsecond line\n")
    result = add_alice(node, "--password-file", password_file)
    assert result.returncode == EXIT_USAGE
    assert "must hold the password on one line" in result.stderr
    assert listing(node) == []


def test_without_a_terminal_the_password_source_must_be_given(node: Path) -> None:
    result = add_alice(node)
    assert result.returncode == EXIT_USAGE
    assert "no terminal to ask for the password on" in result.stderr
    assert listing(node) == []


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_password_prompt_asks_twice(
    node: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter([PASSWORD, PASSWORD + "x", PASSWORD, PASSWORD])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setattr("sys.stdin", FakeTerminal())
    argv = [
        "node", "users", "add", "--node", str(node), "--username", "alice",
        "--name", "Alice Example", "--role", "AUDITOR", "--vetting", "BPSS",
    ]  # fmt: skip
    assert main(argv) == EXIT_USAGE
    assert "the two passwords differ; nothing was changed" in capsys.readouterr().err
    assert main(argv) == EXIT_OK
    assert prompts == [
        "New password for alice: ",
        "The same password again: ",
        "New password for alice: ",
        "The same password again: ",
    ]
    out, err = capsys.readouterr()
    assert "added alice" in out
    assert PASSWORD not in out + err


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--username", "Al"], PASSWORD, "hub: username: 3 to 64 characters"),
        ([], "too short", "hub: password: must be at least 12 characters"),
        (["--name", " "], PASSWORD, "hub: display_name: must not be empty"),
    ],
)
def test_invalid_accounts_are_refused_with_the_field(
    node: Path, args: list[str], stdin: str, message: str
) -> None:
    result = add_alice(node, "--password-stdin", *args, stdin=stdin)
    assert result.returncode == EXIT_USAGE
    assert message in result.stderr
    assert stdin not in result.stdout + result.stderr
    assert listing(node) == []


def test_a_taken_username_is_refused_before_asking_for_a_password(
    node: Path, password_file: Path
) -> None:
    assert add_alice(node, "--password-file", password_file).returncode == EXIT_OK
    result = add_alice(node)  # no password source: it would fail on that if it got there
    assert result.returncode == EXIT_USAGE
    assert "hub: username: 'alice' is already taken" in result.stderr


def test_unknown_role_and_vetting_are_usage_errors(node: Path) -> None:
    result = hub(
        "node", "users", "add", "--node", node, "--username", "alice", "--name", "Alice",
        "--role", "WIZARD", "--vetting", "SC", "--password-stdin", stdin=PASSWORD,
    )  # fmt: skip
    assert result.returncode == EXIT_USAGE
    assert "invalid choice: 'WIZARD'" in result.stderr
    result = hub(
        "node", "users", "add", "--node", node, "--username", "alice", "--name", "Alice",
        "--role", "AUDITOR", "--vetting", "TOP", "--password-stdin", stdin=PASSWORD,
    )  # fmt: skip
    assert result.returncode == EXIT_USAGE
    assert "invalid choice: 'TOP'" in result.stderr


def test_unknown_accounts_and_folders(node: Path, tmp_path: Path) -> None:
    for action in ("disable", "enable"):
        result = hub("node", "users", action, "--node", node, "--username", "ghost")
        assert result.returncode == EXIT_USAGE
        assert "hub: username: no account 'ghost'" in result.stderr
    result = hub(
        "node", "users", "passwd", "--node", node, "--username", "ghost", "--password-stdin",
        stdin=PASSWORD,
    )  # fmt: skip
    assert result.returncode == EXIT_USAGE
    assert "hub: username: no account 'ghost'" in result.stderr
    result = hub("node", "users", "list", "--node", tmp_path / "nowhere")
    assert result.returncode == EXIT_USAGE
    assert "node.toml does not exist" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_an_empty_list_says_how_to_add(node: Path) -> None:
    result = hub("node", "users", "list", "--node", node)
    assert result.returncode == EXIT_OK
    assert "no console users yet" in result.stdout


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_option_has_help() -> None:
    users = _subparsers(_subparsers(build_parser())["node"])["users"]
    commands = _subparsers(users)
    assert set(commands) == {"add", "list", "disable", "enable", "passwd"}
    for name, command in commands.items():
        for action in command._actions:
            assert action.help, f"hub node users {name} {action.option_strings} has no help"
