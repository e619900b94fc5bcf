"""Raw, signed HTTP requests as a test node, through the hub's real verification path.

The node SDK always sends well-formed requests; these helpers let a test send anything
(a broken body, a stale signature, a replay) while still signing it exactly the way a
node would: RFC 9421 over the request with the node's fixed INSECURE test key, the hub's
injected clock and a fresh nonce (STYLE.md rule 12).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from hub.client.ids import uuid7
from hub.crypto import (
    ContentKey,
    NodeKeys,
    SignatureContext,
    canonical_sha256,
    seal_content_key,
    seal_payload_bytes,
    sign_document,
)
from hub.crypto.httpsig import content_digest_header, sign_request
from hub.model import PROBLEM_MEDIA_TYPE
from tests.conftest import (
    INSECURE_TEST_NODE_KEYS,
    REFERRAL_CONSENT,
    REFERRAL_LEGAL_BASIS,
    SYNTHETIC_REFERRAL,
    HubFixture,
)

__all__ = [
    "ENROLLED",
    "HEALTH",
    "LA",
    "POLICE",
    "STRANGER",
    "Reply",
    "SignedRequest",
    "ack_document",
    "all_deliveries",
    "assert_nothing_stored",
    "assert_still_serves",
    "envelope_body",
    "send",
    "sha256_hex",
    "sign_envelope",
    "signed_envelope",
    "signed_request",
    "submit",
    "unsigned_envelope",
]

HEALTH = "health.bsw-icb"
POLICE = "police.ctp-sw"
LA = "la.wiltshire"
STRANGER = "education.stranger"
ENROLLED = (HEALTH, POLICE, LA, STRANGER)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- requests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """One request exactly as it goes on the wire; send it twice to replay it."""

    method: str
    path: str
    query: str
    body: bytes
    headers: Mapping[str, str]

    def with_headers(self, **changes: str | None) -> SignedRequest:
        """A copy with headers replaced (``None`` removes one); names use ``_`` for ``-``."""
        headers = dict(self.headers)
        for name, value in changes.items():
            header = name.replace("_", "-")
            for existing in [k for k in headers if k.lower() == header.lower()]:
                del headers[existing]
            if value is not None:
                headers[header] = value
        return replace(self, headers=headers)


def signed_request(
    hub: HubFixture,
    method: str,
    path: str,
    *,
    node: str = HEALTH,
    body: bytes = b"",
    query: str = "",
    keys: NodeKeys | None = None,
    keyid: str | None = None,
    created: int | None = None,
    nonce: str | None = None,
    digest_of: bytes | None = None,
    content_type: str | None = "application/json",
) -> SignedRequest:
    """Sign ``method path?query`` with ``body`` as ``node`` would.

    Every part can be overridden to forge a bad request: ``keys`` (sign with another key),
    ``keyid`` (claim another node), ``created`` (seconds since the epoch), ``nonce``, and
    ``digest_of`` (the bytes the Content-Digest describes, instead of ``body``).
    """
    headers = sign_request(
        method=method,
        path=path,
        query=query,
        body_digest_header=content_digest_header(body if digest_of is None else digest_of),
        key=(keys or INSECURE_TEST_NODE_KEYS[node]).signing,
        keyid=keyid or node,
        created=int(hub.clock().timestamp()) if created is None else created,
        nonce=nonce or secrets.token_urlsafe(18),
    )
    if content_type is not None and body:
        headers["Content-Type"] = content_type
    return SignedRequest(method=method, path=path, query=query, body=body, headers=headers)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()

    def json(self) -> Any:
        assert self.content_type == "application/json", (self.status, self.body[:300])
        return json.loads(self.body)

    def problem(self, status: int, slug: str) -> dict[str, Any]:
        """Assert this is an RFC 9457 problem of ``status`` and ``urn:seh:problem:<slug>``."""
        assert self.status == status, (self.status, self.body[:500])
        assert self.content_type == PROBLEM_MEDIA_TYPE, self.headers.get("Content-Type")
        doc: dict[str, Any] = json.loads(self.body)
        assert doc["type"] == f"urn:seh:problem:{slug}", doc
        assert doc["status"] == status
        assert isinstance(doc["title"], str)
        assert doc["title"]
        return doc

    def rules(self) -> list[tuple[str, str]]:
        """``(rule, path)`` of every violation in a problem body."""
        doc = json.loads(self.body)
        return [(v["rule"], v["path"]) for v in doc.get("violations", [])]


async def send(
    session: aiohttp.ClientSession,
    hub: HubFixture,
    request: SignedRequest,
    *,
    chunked: bool = False,
    extra_headers: Mapping[str, str] | None = None,
) -> Reply:
    """Send ``request`` as is. ``chunked`` streams the body without a Content-Length."""
    url = URL(hub.url + request.path + (f"?{request.query}" if request.query else ""), encoded=True)
    data: bytes | AsyncIterator[bytes] | None = request.body if request.body else None
    if chunked:
        data = _pieces(request.body, 16 * 1024)
    headers = CIMultiDict(request.headers)
    headers.update(extra_headers or {})
    async with session.request(request.method, url, data=data, headers=headers) as response:
        body = await response.read()
        return Reply(status=response.status, headers=response.headers, body=body)


async def _pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


# -- envelopes ----------------------------------------------------------------------------


def _reader_keys(node_ids: list[str]) -> dict[str, bytes]:
    """Encryption keys to seal the content key to; unknown nodes get a throwaway key."""
    keys: dict[str, bytes] = {}
    for node_id in node_ids:
        known = INSECURE_TEST_NODE_KEYS.get(node_id)
        keys[node_id] = (known or NodeKeys.generate()).public.encryption
    return keys


def unsigned_envelope(
    hub: HubFixture,
    *,
    sender: str = HEALTH,
    recipients: list[str] | None = None,
    plaintext: bytes | None = None,
    blob: tuple[str, int] | None = None,
    message_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A referral envelope as :meth:`NodeClient.send` builds it, without its signature.

    The payload is inline ciphertext of ``plaintext`` (the synthetic referral by default),
    or with ``blob=(sha256, size)`` a reference to an uploaded blob.
    """
    recipients = recipients if recipients is not None else [LA, POLICE]
    envelope: dict[str, Any] = {
        "kind": "referral",
        "author": {"user_ref": "u-7f3a91", "role": "REFERRER", "vetting": "BPSS"},
        "recipients": recipients,
        "marking": {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]},
        "subject_ref": "subj-000123",
        # An adult safeguarding referral may go to one agency (a Prevent referral must
        # reach the LA and police together, WF-01), so tests can address any recipients.
        "purpose": "ADULT_SAFEGUARDING_S42",
        "urgency": "routine",
        "legal_basis": REFERRAL_LEGAL_BASIS,
        "consent": REFERRAL_CONSENT,
        **fields,
        "version": 1,
        "id": message_id or uuid7(hub.clock()),
        "sender": sender,
        "created_at": _rfc3339(hub.clock()),
    }
    readers = _reader_keys([*recipients, sender])
    if blob is None:
        data = plaintext if plaintext is not None else json.dumps(SYNTHETIC_REFERRAL).encode()
        sealed = seal_payload_bytes(data, readers)
        envelope["payload"] = {
            "media_type": "application/json",
            "cipher": "xchacha20poly1305-secretstream/64k",
            "sha256": sealed.sha256,
            "size": len(sealed.ciphertext),
            "transport": "inline",
            "inline": base64.b64encode(sealed.ciphertext).decode("ascii"),
            "sealed_keys": sealed.sealed_keys,
        }
    else:
        sha256, size = blob
        envelope["payload"] = {
            "media_type": "application/octet-stream",
            "cipher": "xchacha20poly1305-secretstream/64k",
            "sha256": sha256,
            "size": size,
            "transport": "blob",
            "sealed_keys": seal_content_key(ContentKey.generate(), readers),
        }
    return envelope


def sign_envelope(envelope: dict[str, Any], keys: NodeKeys) -> dict[str, Any]:
    """A copy of ``envelope`` with a fresh sender signature over its JCS form."""
    signed = copy.deepcopy(envelope)
    signed.pop("signature", None)
    signed["signature"] = sign_document(signed, keys.signing, SignatureContext.ENVELOPE)
    return signed


Mutation = Callable[[dict[str, Any]], None]


def signed_envelope(
    hub: HubFixture,
    *,
    sender: str = HEALTH,
    before: Mutation | None = None,
    after: Mutation | None = None,
    keys: NodeKeys | None = None,
    **options: Any,
) -> dict[str, Any]:
    """A correctly signed envelope, changed by ``before`` (then signed) and ``after``."""
    envelope = unsigned_envelope(hub, sender=sender, **options)
    if before is not None:
        before(envelope)
    signed = sign_envelope(envelope, keys or INSECURE_TEST_NODE_KEYS[sender])
    if after is not None:
        after(signed)
    return signed


def envelope_body(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":")).encode()


def ack_document(
    hub: HubFixture,
    envelope: Mapping[str, Any],
    *,
    node: str,
    keys: NodeKeys | None = None,
    envelope_sha256: str | None = None,
) -> dict[str, Any]:
    """A recipient's signed acknowledgement of ``envelope``."""
    ack: dict[str, Any] = {
        "message_id": envelope["id"],
        "node": node,
        "envelope_sha256": envelope_sha256 or canonical_sha256(dict(envelope)),
        "acknowledged_at": _rfc3339(hub.clock()),
    }
    ack["signature"] = sign_document(
        ack, (keys or INSECURE_TEST_NODE_KEYS[node]).signing, SignatureContext.ACK
    )
    return ack


# -- the store ----------------------------------------------------------------------------


async def all_deliveries(hub: HubFixture) -> dict[str, list[str]]:
    """Message ids in every enrolled node's inbox, read straight from the store."""
    found: dict[str, list[str]] = {}
    async with hub.store.read() as view:
        for node_id in ENROLLED:
            rows = await view.messages.inbox(node_id, after=0, limit=10_000)
            found[node_id] = [r.message_id for r in rows]
    return found


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def submit(
    session: aiohttp.ClientSession,
    hub: HubFixture,
    envelope: Mapping[str, Any] | bytes,
    *,
    node: str = HEALTH,
) -> Reply:
    """POST an envelope (a dict, or raw bytes sent as they are) signed as ``node``."""
    body = envelope if isinstance(envelope, bytes) else envelope_body(envelope)
    return await send(
        session, hub, signed_request(hub, "POST", "/v1/messages", node=node, body=body)
    )


async def assert_nothing_stored(hub: HubFixture, message_id: str | None) -> None:
    """No message under ``message_id`` and no delivery queued anywhere."""
    if message_id is not None:
        async with hub.store.read() as view:
            assert await view.messages.get(message_id) is None
    assert await all_deliveries(hub) == {node_id: [] for node_id in ENROLLED}


async def assert_still_serves(
    session: aiohttp.ClientSession, hub: HubFixture, *, sender: str = HEALTH
) -> None:
    """A good message is still accepted, stored and delivered after whatever came before."""
    recipients = [LA, POLICE] if sender == HEALTH else [LA]
    envelope = signed_envelope(hub, sender=sender, recipients=recipients)
    reply = await submit(session, hub, envelope, node=sender)
    assert reply.status == 201, reply.body[:500]
    assert reply.json()["message_id"] == envelope["id"]
    async with hub.store.read() as view:
        assert await view.messages.get(envelope["id"]) is not None
    deliveries = await all_deliveries(hub)
    for recipient in recipients:
        assert envelope["id"] in deliveries[recipient]
