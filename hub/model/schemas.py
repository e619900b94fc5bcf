"""JSON Schemas of the wire models, generated into ``schemas/json/``.

The schemas are for partners who build nodes in other languages and for reviewers; the
models in ``hub.model`` stay the source of truth. ``tests/model/test_schemas.py`` fails
when the files in the repository drift from the models. Regenerate with::

    python -m hub.model.schemas

Each schema is JSON Schema draft 2020-12 (https://json-schema.org/draft/2020-12) with
``$id`` ``urn:seh:schema:<name>``, written with sorted keys so that a regeneration with no
model change leaves every file byte-for-byte the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from hub.model import SCHEMA_MODELS

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "SCHEMA_DIR",
    "main",
    "render_model_schemas",
    "render_schemas",
    "schema_filename",
    "write_schema_files",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# hub/model/schemas.py -> the repository root is three levels up.
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "json"
_SUFFIX = ".schema.json"


def schema_filename(name: str) -> str:
    return f"{name}{_SUFFIX}"


def render_model_schemas(models: Mapping[str, type[BaseModel]], id_prefix: str) -> dict[str, str]:
    """``{"<name>.schema.json": JSON text}`` for each model, with ``$id`` ``<prefix><name>``."""
    rendered: dict[str, str] = {}
    for name, model in models.items():
        schema = model.model_json_schema()
        schema["$schema"] = JSON_SCHEMA_DIALECT
        schema["$id"] = f"{id_prefix}{name}"
        rendered[schema_filename(name)] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def write_schema_files(rendered: Mapping[str, str], folder: Path) -> None:
    """Write the rendered schemas into ``folder``; remove schemas nothing renders any more."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in sorted(folder.glob(f"*{_SUFFIX}")):
        if stale.name not in rendered:
            stale.unlink()
            print(f"removed {stale}")
    for filename, text in sorted(rendered.items()):
        target = folder / filename
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}")


def render_schemas() -> dict[str, str]:
    """``{"<name>.schema.json": JSON text}`` for every model in ``SCHEMA_MODELS``."""
    return render_model_schemas(SCHEMA_MODELS, "urn:seh:schema:")


def main() -> int:
    """Write every schema into ``schemas/json/`` and remove schemas no model produces."""
    write_schema_files(render_schemas(), SCHEMA_DIR)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
