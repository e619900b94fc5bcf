"""Strict JSON parsing at the edge: no duplicate keys, no NaN or Infinity (STYLE.md rule 7)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["StrictJSONError", "loads_strict"]


class StrictJSONError(ValueError):
    """The bytes are not JSON, or are JSON that the hub refuses to interpret."""


def _refuse_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not allowed in JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise StrictJSONError(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads_strict(raw: bytes | str) -> Any:
    """Parse JSON, refusing duplicate object keys and the non-standard NaN/Infinity.

    Duplicate keys matter because the signature is checked over the canonical form of
    what was parsed: two parsers that keep different duplicates would disagree on what
    was signed.
    """
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except StrictJSONError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise StrictJSONError(f"not valid JSON: {exc}") from exc
    except RecursionError:
        # The decoder recurses per level of nesting: hostile depth is bad input, not a crash.
        raise StrictJSONError("not valid JSON: nested too deeply") from None
