"""``hub node users``: the people who may sign in to a node's console.

Accounts live in the node database (``DIR/state/node.sqlite3``); see
agency_adapters/node/users.py for what is stored and how sign-in works. A password is
never taken on the command line (it would sit in the shell history and the process
list): it is asked for twice at a terminal, or read from a file only its owner can read,
or from standard input.
"""

from __future__ import annotations

import argparse
import getpass
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agency_adapters.node.database import NodeDatabaseError, node_database_path
from agency_adapters.node.users import (
    CONSOLE_ROLES,
    ROLE_LABELS,
    VETTING_LEVELS,
    User,
    UserError,
    UserStore,
)
from hub.cli.common import EXIT_OK, CommandError, print_json
from hub.client import ProfileError, load_node_profile

__all__ = ["add_users_commands"]


@contextmanager
def _store(node: Path) -> Iterator[UserStore]:
    try:
        profile = load_node_profile(node)
    except ProfileError as exc:
        raise CommandError(str(exc)) from exc
    try:
        store = UserStore.open(node_database_path(profile.root))
    except NodeDatabaseError as exc:
        raise CommandError(str(exc)) from exc
    with store:
        try:
            yield store
        except UserError as exc:
            raise CommandError(str(exc)) from exc


def _one_line(text: str, where: str) -> str:
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if "\n" in text or "\r" in text:
        raise CommandError(f"{where} must hold the password on one line")
    return text


def _password_from_file(path: Path) -> str:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise CommandError(f"cannot read password file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise CommandError(
            f"password file {path} is readable by group or others (mode {mode:04o}); "
            f"a password must be private to its owner: chmod 600 {path}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read password file {path} as UTF-8 text") from exc
    return _one_line(text, f"password file {path}")


def _password(args: argparse.Namespace, username: str) -> str:
    if args.password_file is not None:
        return _password_from_file(args.password_file)
    if args.password_stdin:
        return _one_line(sys.stdin.read(), "standard input")
    if not sys.stdin.isatty():
        raise CommandError(
            "no terminal to ask for the password on; use --password-file or --password-stdin"
        )
    first = getpass.getpass(f"New password for {username}: ")
    second = getpass.getpass("The same password again: ")
    if first != second:
        raise CommandError("the two passwords differ; nothing was changed")
    return first


def _add(args: argparse.Namespace) -> int:
    with _store(args.node) as store:
        if store.get_user(args.username) is not None:
            raise CommandError(f"username: {args.username!r} is already taken")
        password = _password(args, args.username)
        user = store.add_user(args.username, args.name, args.role, args.vetting, password)
    print(f"added {user.username} ({user.user_ref}): {_roles_text(user)}; vetting {user.vetting}")
    return EXIT_OK


def _roles_text(user: User) -> str:
    return ", ".join(role for role in CONSOLE_ROLES if role in user.roles)


def _status(user: User, store: UserStore) -> tuple[str, str | None]:
    locked = store.locked_until(user.username)
    until = None if locked is None else locked.isoformat(timespec="seconds")
    if user.disabled:
        return "disabled", until
    if until is not None:
        return f"locked until {until}", until
    return "active", None


def _list(args: argparse.Namespace) -> int:
    with _store(args.node) as store:
        users = [(user, *_status(user, store)) for user in store.list_users()]
    if args.json:
        document: list[dict[str, Any]] = [
            {
                "user_ref": user.user_ref,
                "username": user.username,
                "display_name": user.display_name,
                "roles": [role for role in CONSOLE_ROLES if role in user.roles],
                "vetting": user.vetting,
                "disabled": user.disabled,
                "locked_until": until,
                "created_at": user.created_at.isoformat(),
            }
            for user, _, until in users
        ]
        print_json(document)
        return EXIT_OK
    if not users:
        print("no console users yet; add one with 'hub node users add'")
        return EXIT_OK
    header = ("USERNAME", "NAME", "ROLES", "VETTING", "STATUS", "USER REF")
    rows = [
        (user.username, user.display_name, _roles_text(user), user.vetting, status, user.user_ref)
        for user, status, _ in users
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return EXIT_OK


def _disable(args: argparse.Namespace) -> int:
    with _store(args.node) as store:
        user = store.disable_user(args.username)
    print(f"disabled {user.username} ({user.user_ref}); their console sessions have ended")
    return EXIT_OK


def _enable(args: argparse.Namespace) -> int:
    with _store(args.node) as store:
        user = store.enable_user(args.username)
    print(f"enabled {user.username} ({user.user_ref}); any lockout is lifted")
    return EXIT_OK


def _passwd(args: argparse.Namespace) -> int:
    with _store(args.node) as store:
        if store.get_user(args.username) is None:
            raise CommandError(f"username: no account {args.username!r}")
        store.set_password(args.username, _password(args, args.username))
    print(f"new password set for {args.username}; their console sessions have ended")
    return EXIT_OK


def _node_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", type=Path, required=True, metavar="DIR", help="the node folder")


def _username_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--username", required=True, help=help_text)


def _password_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password-file",
        type=Path,
        metavar="PATH",
        help="read the password, one line, from PATH, which must be mode 0600 "
        "(for scripts; default: ask twice at the terminal)",
    )
    source.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (for scripts)",
    )


def add_users_commands(node_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hub node users ...`` under ``hub node``."""
    users = node_sub.add_parser(
        "users",
        help="manage the people who may sign in to the node console",
        description=(
            "Console accounts in DIR/state/node.sqlite3. Passwords are stored only as "
            "Argon2id hashes and are never accepted as a command-line argument."
        ),
    )
    users_sub = users.add_subparsers(dest="users_action", required=True, metavar="ACTION")

    roles_help = "; ".join(f"{role}: {ROLE_LABELS[role]}" for role in CONSOLE_ROLES)
    add = users_sub.add_parser(
        "add",
        help="add a person who may sign in",
        description=(
            "Add a console account. Prints its user reference, the opaque id that envelopes "
            f"carry as author.user_ref instead of the person's name. Roles: {roles_help}."
        ),
    )
    _node_option(add)
    _username_option(
        add, "sign-in name: 3-64 lower-case letters, digits, '.', '_' or '-', from a letter"
    )
    add.add_argument("--name", required=True, help="the person's name as the console shows it")
    add.add_argument(
        "--role",
        action="append",
        required=True,
        choices=CONSOLE_ROLES,
        metavar="ROLE",
        help="a role they act in; repeat for several (see the list above)",
    )
    add.add_argument(
        "--vetting",
        required=True,
        choices=VETTING_LEVELS,
        help="their national security vetting level, as envelopes state it",
    )
    _password_options(add)
    add.set_defaults(func=_add)

    listing = users_sub.add_parser("list", help="list console accounts and their status")
    _node_option(listing)
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(func=_list)

    disable = users_sub.add_parser("disable", help="stop a person signing in; ends their sessions")
    _node_option(disable)
    _username_option(disable, "the account to disable")
    disable.set_defaults(func=_disable)

    enable = users_sub.add_parser("enable", help="let a disabled or locked-out person sign in")
    _node_option(enable)
    _username_option(enable, "the account to enable")
    enable.set_defaults(func=_enable)

    passwd = users_sub.add_parser("passwd", help="set a new password; ends their sessions")
    _node_option(passwd)
    _username_option(passwd, "the account whose password to set")
    _password_options(passwd)
    passwd.set_defaults(func=_passwd)
