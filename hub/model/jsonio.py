"""Strict JSON parsing at the edge: no duplicate keys, no NaN or Infinity (STYLE.md rule 7)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["StrictJSONError", "loads_strict", "strip_comments", "without_comments"]


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


def strip_comments(text: str) -> str:
    """``text`` with every ``//`` comment outside a JSON string blanked out.

    Each comment character becomes a space, so a JSON error still points at the line
    and column of the file as written.
    """
    out: list[str] = []
    in_string = escaped = in_comment = False
    i = 0
    while i < len(text):
        char = text[i]
        if in_comment:
            if char == "\n":
                in_comment = False
                out.append(char)
            else:
                out.append(" ")
        elif in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char == "/" and text.startswith("//", i):
            in_comment = True
            out.append(" ")
        else:
            out.append(char)
        i += 1
    return "".join(out)


def without_comments(raw: bytes) -> bytes:
    """A draft file's bytes with its ``//`` comments blanked (UTF-8; others as they are)."""
    if b"//" not in raw:
        return raw
    try:
        return strip_comments(raw.decode("utf-8")).encode("utf-8")
    except UnicodeDecodeError:
        return raw
