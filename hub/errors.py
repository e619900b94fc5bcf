"""The hub's typed errors (STYLE.md rule 5).

Each error carries an HTTP status, a stable problem type, a public detail safe to show any
caller, and a private debug context that goes only to the log. One middleware in
``hub.server.problems`` turns them into RFC 9457 ``application/problem+json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.model import Violation

__all__ = [
    "PROBLEM_TYPE_BASE",
    "BadRequest",
    "Conflict",
    "Gone",
    "HubError",
    "NotFound",
    "PayloadTooLarge",
    "Purged",
    "RangeNotSatisfiable",
    "RequestTimeout",
    "TooManyRequests",
    "Unauthenticated",
    "Unprocessable",
    "UploadExpired",
]

PROBLEM_TYPE_BASE = "urn:seh:problem:"


class HubError(Exception):
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        violations: Sequence[Violation] = (),
        debug: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.violations = tuple(violations)
        self.debug = debug or {}
        # Extra response headers (Retry-After on 429).
        self.headers: dict[str, str] = {}

    @property
    def problem_type(self) -> str:
        return PROBLEM_TYPE_BASE + self.slug


class BadRequest(HubError):
    status, slug, title = 400, "bad-request", "The request is malformed"


class Unauthenticated(HubError):
    """Every authentication failure looks the same to the caller (STYLE.md rule 6)."""

    status, slug, title = 401, "unauthenticated", "The request could not be authenticated"

    def __init__(self, reason: str, **debug: Any) -> None:
        super().__init__(
            "Sign the request with RFC 9421 HTTP Message Signatures as an enrolled, active node.",
            debug={"reason": reason, **debug},
        )


class NotFound(HubError):
    """Used alike for 'does not exist' and 'not yours', so existence never leaks."""

    status, slug, title = 404, "not-found", "Not found"

    def __init__(self, **debug: Any) -> None:
        super().__init__("No such resource is visible to this node.", debug=debug)


class Conflict(HubError):
    status, slug, title = 409, "conflict", "Conflicts with what the hub already holds"


class Gone(HubError):
    status, slug, title = 410, "access-expired", "No longer available"


class Purged(HubError):
    """The hub purged this ciphertext under its retention policy (deploy/retention.md)."""

    status, slug, title = 410, "purged", "Purged under the hub's retention policy"


class UploadExpired(HubError):
    """An upload not finished within limits.blob_upload_expiry_seconds (BLOB-03)."""

    status, slug, title = 410, "upload-expired", "The upload has expired"


class PayloadTooLarge(HubError):
    status, slug, title = 413, "payload-too-large", "The request body is too large"


class RequestTimeout(HubError):
    status, slug, title = 408, "request-timeout", "The request body did not arrive in time"


class TooManyRequests(HubError):
    """The node already has as many requests in progress as it may (RFC 6585 section 4)."""

    status, slug, title = 429, "too-many-requests", "Too many requests in progress"

    def __init__(self, detail: str, *, retry_after_seconds: int, **debug: Any) -> None:
        super().__init__(detail, debug=debug)
        self.headers["Retry-After"] = str(retry_after_seconds)


class RangeNotSatisfiable(HubError):
    status, slug, title = 416, "range-not-satisfiable", "The requested range is not available"


class Unprocessable(HubError):
    """Well-formed but refused: schema, signature, routing or policy violations."""

    status, slug, title = 422, "unprocessable", "The message was refused"

    def __init__(
        self,
        detail: str,
        *,
        slug: str = "unprocessable",
        title: str | None = None,
        violations: Sequence[Violation] = (),
        debug: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, violations=violations, debug=debug)
        self.slug = slug
        if title is not None:
            self.title = title
