"""Parse untrusted JSON into wire models at the edge, with errors that say where and why."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from hub.errors import BadRequest, Unprocessable
from hub.model import StrictJSONError, Violation, WireModel, loads_strict

__all__ = ["json_path", "parse_wire", "violations_from"]

M = TypeVar("M", bound=WireModel)


def json_path(loc: tuple[int | str, ...]) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def violations_from(exc: ValidationError) -> list[Violation]:
    return [
        Violation(
            rule="SCHEMA",
            path=json_path(tuple(err["loc"])),
            message=str(err["msg"]).removeprefix("Value error, "),
        )
        for err in exc.errors(include_url=False)
    ]


def parse_wire(model: type[M], raw: bytes, *, what: str) -> tuple[dict[str, Any], M]:
    """Strictly parse ``raw`` as ``model``; also return the parsed JSON object as received.

    The parsed object is what signatures are checked over (its canonical form), so the
    model never has to be re-serialised to be verified.
    """
    try:
        document = loads_strict(raw)
    except StrictJSONError as exc:
        # Hostile nesting ("[[[[...") is a StrictJSONError too: a 400, not an internal error.
        raise BadRequest(f"The {what} is not acceptable JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BadRequest(f"The {what} must be a JSON object.")
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError as exc:
        raise Unprocessable(
            f"The {what} does not match its schema.",
            slug="invalid-" + what.replace(" ", "-"),
            title=f"Invalid {what}",
            violations=violations_from(exc),
        ) from exc
    return document, parsed
