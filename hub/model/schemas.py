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
from pathlib import Path

from hub.model import SCHEMA_MODELS

__all__ = ["JSON_SCHEMA_DIALECT", "SCHEMA_DIR", "main", "render_schemas", "schema_filename"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# hub/model/schemas.py -> the repository root is three levels up.
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "json"
_SUFFIX = ".schema.json"


def schema_filename(name: str) -> str:
    return f"{name}{_SUFFIX}"


def render_schemas() -> dict[str, str]:
    """``{"<name>.schema.json": JSON text}`` for every model in ``SCHEMA_MODELS``."""
    rendered: dict[str, str] = {}
    for name, model in SCHEMA_MODELS.items():
        schema = model.model_json_schema()
        schema["$schema"] = JSON_SCHEMA_DIALECT
        schema["$id"] = f"urn:seh:schema:{name}"
        rendered[schema_filename(name)] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def main() -> int:
    """Write every schema into ``schemas/json/`` and remove schemas no model produces."""
    rendered = render_schemas()
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for stale in sorted(SCHEMA_DIR.glob(f"*{_SUFFIX}")):
        if stale.name not in rendered:
            stale.unlink()
            print(f"removed {stale}")
    for filename, text in sorted(rendered.items()):
        target = SCHEMA_DIR / filename
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
