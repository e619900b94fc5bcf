"""The package boundaries of STYLE.md, checked by reading every module's imports.

* Only ``hub/crypto/`` imports ``nacl`` or ``gnupg`` (rule 3): one place signs, one place
  verifies, and backend errors are translated at that boundary.
* ``hub/policy/`` is pure (rule 2): no aiohttp, SQLAlchemy, database drivers, asyncio,
  nacl or gnupg.
* ``hub/model/`` imports nothing of ours outside ``hub.model`` (DESIGN.md section 3), so
  the wire models can be shipped to agency nodes and turned into JSON Schemas alone.
* Nothing outside ``hub/cli/`` imports ``hub.cli``: the command line is the outermost
  layer, so a node adapter or the hub's server never depends on argument parsing.

The walker reads source with :mod:`ast` and never imports it, so an import hidden under
``if TYPE_CHECKING:`` or inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKED_PACKAGES = ("hub", "agency_adapters")

CRYPTO_BACKENDS = frozenset({"nacl", "gnupg"})
POLICY_FORBIDDEN = frozenset(
    {"aiohttp", "sqlalchemy", "aiosqlite", "asyncpg", "asyncio", "nacl", "gnupg"}
)


@dataclass(frozen=True, slots=True)
class Import:
    """One module a source file imports, fully qualified, and the line that does it."""

    module: str
    line: int

    @property
    def top_level(self) -> str:
        return self.module.partition(".")[0]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def _resolve_relative(module_name: str, is_package: bool, level: int, target: str | None) -> str:
    # PEP 328: level 1 is the current package, each further dot one package up.
    package_parts = module_name.split(".") if is_package else module_name.split(".")[:-1]
    if level - 1 > len(package_parts) - 1:
        raise ValueError(f"relative import beyond the top-level package in {module_name}")
    base = package_parts[: len(package_parts) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(source: str, module_name: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every module ``source`` imports, in any spelling.

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a submodule), and
    ``__import__("x")`` or ``importlib.import_module("x")`` with a literal name count too.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module_name, is_package, node.level, node.module)
                if node.level
                else node.module or ""
            )
            yield Import(base, node.lineno)
            for alias in node.names:
                if alias.name != "*":
                    yield Import(f"{base}.{alias.name}", node.lineno)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield Import(first.value, node.lineno)


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def boundary_violations(
    source: str, module_name: str, path: str, *, is_package: bool = False
) -> list[str]:
    """``path:line: reason`` for every import statement that crosses a boundary."""
    found: dict[tuple[int, str], str] = {}  # one report per statement and boundary
    for imported in imports_of(source, module_name, is_package=is_package):
        where = f"{path}:{imported.line}: imports {imported.module}"
        if imported.top_level in CRYPTO_BACKENDS and not _within(module_name, "hub.crypto"):
            found.setdefault(
                (imported.line, "crypto"),
                f"{where}; only hub/crypto/ may use {imported.top_level} (STYLE.md rule 3)",
            )
        if _within(module_name, "hub.policy") and imported.top_level in POLICY_FORBIDDEN:
            found.setdefault(
                (imported.line, "policy"), f"{where}; hub/policy/ must stay pure (STYLE.md rule 2)"
            )
        if (
            _within(module_name, "hub.model")
            and _within(imported.module, "hub")
            and imported.module != "hub"
            and not _within(imported.module, "hub.model")
        ):
            found.setdefault(
                (imported.line, "model"),
                f"{where}; hub/model/ imports nothing of ours outside hub.model",
            )
        if _within(imported.module, "hub.cli") and not _within(module_name, "hub.cli"):
            found.setdefault(
                (imported.line, "cli"),
                f"{where}; only hub/cli/ imports hub.cli (the outermost layer)",
            )
    return [found[key] for key in sorted(found)]


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _source_files() -> list[Path]:
    return sorted(
        path
        for package in CHECKED_PACKAGES
        for path in (REPO_ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    )


def _all_violations() -> list[str]:
    found: list[str] = []
    for path in _source_files():
        module_name, is_package = _module_name(path)
        found.extend(
            boundary_violations(
                path.read_text(encoding="utf-8"),
                module_name,
                str(path.relative_to(REPO_ROOT)),
                is_package=is_package,
            )
        )
    return found


# --------------------------------------------------------------------------------------
# The real tree
# --------------------------------------------------------------------------------------


def test_the_codebase_respects_its_import_boundaries() -> None:
    found = _all_violations()
    assert not found, "import boundaries crossed:\n" + "\n".join(found)


def test_the_walker_sees_the_real_tree() -> None:
    # Guards against a walk that finds nothing (a moved root, a wrong glob) and passes.
    files = {str(p.relative_to(REPO_ROOT)) for p in _source_files()}
    assert {"hub/crypto/keys.py", "hub/model/envelope.py", "hub/policy/facts.py"} <= files
    keys_source = (REPO_ROOT / "hub/crypto/keys.py").read_text(encoding="utf-8")
    assert "nacl" in {i.top_level for i in imports_of(keys_source, "hub.crypto.keys")}
    # The same file, were it anywhere else, would be reported.
    assert boundary_violations(keys_source, "hub.server.keys", "hub/server/keys.py")


# --------------------------------------------------------------------------------------
# The walker itself, on synthetic sources
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("import nacl", 1),
        ("import nacl.public", 1),
        ("import nacl.public as box", 1),
        ("import os, nacl.signing", 1),
        ("from nacl import public", 1),
        ("from nacl.public import SealedBox", 1),
        ("from nacl.public import *", 1),
        ("import gnupg", 1),
        ("from gnupg import GPG", 1),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import nacl", 3),
        ("def helper():\n    import gnupg\n    return gnupg", 2),
        ("try:\n    pass\nexcept ImportError:\n    import nacl.utils", 4),
        ("nacl = __import__('nacl')", 1),
        ("import importlib\ngnupg = importlib.import_module('gnupg')", 2),
        ("from importlib import import_module\nbox = import_module('nacl.public')", 2),
    ],
)
def test_walker_catches_backend_imports_outside_crypto(source: str, line: int) -> None:
    found = boundary_violations(source, "hub.server.handlers", "hub/server/handlers.py")
    assert len(found) == 1, f"expected one report for {source!r}, got {found}"
    assert found[0].startswith(f"hub/server/handlers.py:{line}: imports ")
    assert "STYLE.md rule 3" in found[0]


@pytest.mark.parametrize(
    "source",
    [
        "import naclx",
        "import gnupgish",
        "from hub.crypto import sign_document",
        "import hub.crypto.keys",
        "text = 'import nacl'",
        "# import nacl",
    ],
)
def test_walker_does_not_flag_lookalikes(source: str) -> None:
    assert boundary_violations(source, "hub.server.handlers", "hub/server/handlers.py") == []


def test_crypto_may_import_its_backends() -> None:
    source = "import nacl.public\nfrom gnupg import GPG\n"
    assert boundary_violations(source, "hub.crypto.payload", "hub/crypto/payload.py") == []
    assert (
        boundary_violations(source, "hub.crypto", "hub/crypto/__init__.py", is_package=True) == []
    )


def test_walker_reports_every_offending_line() -> None:
    source = "import os\nimport nacl\n\nfrom gnupg import GPG\n"
    found = boundary_violations(source, "agency_adapters.node.send", "agency_adapters/node/send.py")
    assert [line.split(": ")[0] for line in found] == [
        "agency_adapters/node/send.py:2",
        "agency_adapters/node/send.py:4",
    ]


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("import aiohttp", "aiohttp"),
        ("from aiohttp import web", "aiohttp"),
        ("import sqlalchemy.ext.asyncio", "sqlalchemy.ext.asyncio"),
        ("from sqlalchemy import select", "sqlalchemy"),
        ("import asyncio", "asyncio"),
        ("from asyncio import sleep", "asyncio"),
        ("import aiosqlite", "aiosqlite"),
        ("import nacl", "nacl"),
        ("import gnupg", "gnupg"),
    ],
)
def test_walker_catches_impure_imports_in_policy(source: str, module: str) -> None:
    found = boundary_violations(source, "hub.policy.gateways", "hub/policy/gateways.py")
    assert found
    assert found[0].startswith(f"hub/policy/gateways.py:1: imports {module}")


def test_policy_may_import_models_and_the_standard_library() -> None:
    source = (
        "from collections.abc import Mapping\nfrom datetime import date\n"
        "from hub.model import Marking, Violation\n"
    )
    assert boundary_violations(source, "hub.policy.facts", "hub/policy/facts.py") == []


def test_asyncio_is_allowed_outside_policy() -> None:
    assert boundary_violations("import asyncio", "hub.server.app", "hub/server/app.py") == []


@pytest.mark.parametrize(
    ("source", "is_package"),
    [
        ("from hub.crypto import canonical_json", False),
        ("import hub.crypto", False),
        ("from hub import crypto", False),
        ("from hub.errors import HubError", False),
        ("from .. import config", False),
        ("from ..crypto import canonical_json", False),
        ("from ..config import HubConfig", True),
        ("from .. import errors", True),
    ],
)
def test_walker_catches_model_imports_from_the_rest_of_hub(source: str, is_package: bool) -> None:
    module = "hub.model" if is_package else "hub.model.envelope"
    path = "hub/model/__init__.py" if is_package else "hub/model/envelope.py"
    found = boundary_violations(source, module, path, is_package=is_package)
    assert found
    assert found[0].startswith(f"{path}:1: imports hub.")
    assert "outside hub.model" in found[0]


@pytest.mark.parametrize(
    ("source", "module", "is_package"),
    [
        ("from hub.model.base import WireModel", "hub.model.envelope", False),
        ("import hub.model.base", "hub.model.envelope", False),
        ("from hub.model import Envelope", "hub.model.schemas", False),
        ("from . import base", "hub.model.envelope", False),
        ("from .base import WireModel", "hub.model.envelope", False),
        ("from hub.model.base import WireModel", "hub.model", True),
        ("from .base import WireModel", "hub.model", True),
        ("from pydantic import BaseModel", "hub.model.base", False),
    ],
)
def test_model_may_import_itself_and_third_parties(
    source: str, module: str, is_package: bool
) -> None:
    assert boundary_violations(source, module, "hub/model/x.py", is_package=is_package) == []


def test_relative_imports_resolve_like_python() -> None:
    assert _resolve_relative("hub.model.envelope", False, 1, "base") == "hub.model.base"
    assert _resolve_relative("hub.model.envelope", False, 2, "crypto") == "hub.crypto"
    assert _resolve_relative("hub.model", True, 1, "base") == "hub.model.base"
    assert _resolve_relative("hub.model", True, 2, None) == "hub"
    with pytest.raises(ValueError, match="beyond the top-level package"):
        _resolve_relative("hub.errors", False, 2, None)


@pytest.mark.parametrize(
    ("module_name", "path"),
    [
        ("agency_adapters.email_pgp.inbound", "agency_adapters/email_pgp/inbound.py"),
        ("hub.server.handlers", "hub/server/handlers.py"),
    ],
)
def test_walker_catches_the_command_line_imported_from_below(module_name: str, path: str) -> None:
    found = boundary_violations("from hub.cli.drafts import without_comments", module_name, path)
    assert len(found) == 1
    assert "only hub/cli/ imports hub.cli" in found[0]
    assert not boundary_violations("from hub.cli.common import EXIT_OK", "hub.cli.node", "x.py")
