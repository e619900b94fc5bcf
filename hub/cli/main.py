"""The ``hub`` command.

The command modules import aiohttp, SQLAlchemy, pydantic and the crypto backends, which
together take most of a second. ``hub --version`` and ``hub --help`` need none of them, so
each command's module is imported only when that command runs (or its own help is asked
for): the top-level parser lists the commands from :data:`COMMANDS` and gets the real
subparsers of the one command named on the command line. ``build_parser()`` with no
argument builds every command, for tests and tools that walk the whole tree.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TypeAlias

from hub import __version__
from hub.cli.common import CommandError

__all__ = ["COMMANDS", "build_parser", "main"]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

# Each command, the module and function that add its subparser, and its one-line help
# (the same text the module gives; a test keeps them equal).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("hub.cli.demo", "add_demo_command", "run a demo federation end to end"),
    "serve": ("hub.cli.admin", "add_admin_commands", "run the hub"),
    "keys": ("hub.cli.admin", "add_admin_commands", "generate and inspect key files"),
    "admin": ("hub.cli.admin", "add_admin_commands", "manage the hub's node registry"),
    "node": ("hub.cli.node", "add_node_commands", "act as an agency node"),
    "policy": (
        "hub.cli.policy",
        "add_policy_commands",
        "check drafts against the rules; explain the registry",
    ),
    "audit": (
        "hub.cli.audit",
        "add_audit_commands",
        "verify the transparency log; what was shared about whom",
    ),
    "report": (
        "hub.cli.audit",
        "add_audit_commands",
        "reports for information governance and boards",
    ),
    "bridge": (
        "hub.cli.bridge",
        "add_bridge_commands",
        "the secure-email bridge for partners without a node",
    ),
}


def build_parser(command: str | None = None, *, lazy: bool = False) -> argparse.ArgumentParser:
    """The ``hub`` parser: every command, or with ``lazy`` only ``command`` in full.

    With ``lazy`` the other commands are listed by name and help only, and their modules
    are not imported.
    """
    parser = argparse.ArgumentParser(
        prog="hub",
        description=(
            "Safeguarding Exchange Hub: signed, end-to-end encrypted Prevent and Channel "
            "information sharing between agencies."
        ),
    )
    parser.add_argument("--version", action="version", version=f"hub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if not lazy:
        modules = {module for module, _, _ in COMMANDS.values()}
    else:
        modules = {COMMANDS[command][0]} if command in COMMANDS else set()
    for name, (module, function, text) in COMMANDS.items():
        if module in modules:
            modules.discard(module)  # it adds every command it holds (admin: serve, keys)
            add: Callable[[Subparsers], None] = getattr(importlib.import_module(module), function)
            add(sub)
        elif name not in sub.choices:
            sub.add_parser(name, help=text)
    # Listed in the order of COMMANDS, whichever were built in full.
    order = list(COMMANDS)
    sub._choices_actions.sort(key=lambda action: order.index(action.dest))
    return parser


def _command_named(argv: Sequence[str]) -> str | None:
    """The command on the command line: the first word that is not an option."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command_named(words), lazy=True).parse_args(words)
    try:
        code: int = args.func(args)
    except CommandError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
