"""Request authentication: RFC 9421 HTTP Message Signatures, Ed25519, replay-proof.

Every failure raises the same :class:`~hub.errors.Unauthenticated`; only the log learns
why (STYLE.md rule 6).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from hub.crypto.httpsig import (
    ParsedSignature,
    SignatureRejected,
    content_digest_matches,
    parse_signature,
    verify_request,
)
from hub.errors import Unauthenticated
from hub.server.access import note_authenticated
from hub.server.exchange import Clock
from hub.server.nodes import NodeCache
from hub.store import GroupCommitter, NodeRecord, UnitOfWork

__all__ = ["AuthenticatedRequest", "RequestAuthenticator"]

log = logging.getLogger("hub.auth")


@dataclass(frozen=True, slots=True)
class AuthenticatedRequest:
    node: NodeRecord
    signature: ParsedSignature
    content_digest: str


class RequestAuthenticator:
    def __init__(
        self,
        *,
        nodes: NodeCache,
        writes: GroupCommitter,
        clock: Clock,
        window_seconds: int,
    ) -> None:
        self._nodes = nodes
        self._writes = writes
        self._clock = clock
        self._window = window_seconds

    async def authenticate(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body_sha256: bytes | None,
    ) -> AuthenticatedRequest:
        """Check the signature, the node, the window and the nonce.

        ``body_sha256`` is the body's digest when the body is already read; pass None for
        a streamed body and call :meth:`check_body` once it has been read.
        """
        try:
            parsed = parse_signature(headers)
        except SignatureRejected as exc:
            raise self._fail(exc.reason, path=path) from exc
        node = await self._nodes.get(parsed.keyid)
        if node is None:
            raise self._fail("unknown keyid", keyid=parsed.keyid, path=path)
        if node.status != "active":
            raise self._fail(f"node is {node.status}", keyid=parsed.keyid, path=path)
        now = self._clock()
        try:
            verify_request(
                method=method,
                path=path,
                query=query,
                headers=headers,
                public_key=node.signing_key,
                now=int(now.timestamp()),
                max_skew=self._window,
                parsed=parsed,
            )
        except SignatureRejected as exc:
            raise self._fail(exc.reason, keyid=parsed.keyid, path=path) from exc
        digest_header = _header(headers, "content-digest")
        if body_sha256 is not None and not content_digest_matches(digest_header, body_sha256):
            raise self._fail("content-digest does not match body", keyid=node.id, path=path)
        # Remembered only after the signature verified, so nobody can burn a node's nonces.
        # Kept for twice the window: a request outside the window is refused anyway.
        expires = now + timedelta(seconds=2 * self._window)

        async def remember(tx: UnitOfWork) -> bool:
            return await tx.nonces.remember(node.id, parsed.nonce, expires)

        fresh = await self._writes.run(remember)
        if not fresh:
            raise self._fail("replayed nonce", keyid=node.id, path=path)
        note_authenticated(node.id)
        return AuthenticatedRequest(node=node, signature=parsed, content_digest=digest_header)

    def check_body(self, auth: AuthenticatedRequest, body_sha256: bytes, *, path: str) -> None:
        if not content_digest_matches(auth.content_digest, body_sha256):
            raise self._fail("content-digest does not match body", keyid=auth.node.id, path=path)

    @staticmethod
    def _fail(reason: str, **context: str) -> Unauthenticated:
        log.warning("authentication failed: %s %s", reason, context)
        return Unauthenticated(reason, **context)


def _header(headers: Mapping[str, str], name: str) -> str:
    """The header's one value; a header sent twice is refused (read one way only)."""
    values = [value for key, value in headers.items() if key.lower() == name]
    if len(values) > 1:
        raise RequestAuthenticator._fail(f"{name} header repeated")
    return values[0] if values else ""
