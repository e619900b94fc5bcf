"""The ``hub`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hub import __version__
from hub.cli.admin import add_admin_commands
from hub.cli.audit import add_audit_commands
from hub.cli.common import CommandError
from hub.cli.demo import add_demo_command
from hub.cli.node import add_node_commands
from hub.cli.policy import add_policy_commands

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub",
        description=(
            "Safeguarding Exchange Hub: signed, end-to-end encrypted Prevent and Channel "
            "information sharing between agencies."
        ),
    )
    parser.add_argument("--version", action="version", version=f"hub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo_command(sub)
    add_admin_commands(sub)
    add_node_commands(sub)
    add_policy_commands(sub)
    add_audit_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
