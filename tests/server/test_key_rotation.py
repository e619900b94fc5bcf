"""Key rotation through the real HTTP server and the node SDK (issue 10).

A node rotates with ``POST /v1/keys/rotate`` signed by its current key, carrying the new
keys and the new signing key's proof of possession. Afterwards: what the old keys signed
before still verifies at the nodes, what was sealed to the old encryption key still opens
at the node, new messages use the new keys, and the old key authenticates nothing. A
refused rotation changes nothing. Marking a key compromised is a different act with a
different effect on old signatures (the last tests).
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.audit.log import AuditLog
from hub.audit.verify import verify_log
from hub.cli.node import receive_inbox
from hub.client import HubProblem, NodeClient, PayloadSource, VerificationFailed
from hub.client.keys import rotation_statement
from hub.crypto import (
    DecryptionFailed,
    NodeKeys,
    SignatureContext,
    public_key_sha256,
    sign_document,
)
from hub.errors import Unprocessable
from hub.model import AuditEntry, rfc3339
from hub.registry import RegistryError, mark_key_compromised
from hub.server.state import EXCHANGE
from tests.conftest import (
    INSECURE_TEST_HUB_KEYS,
    INSECURE_TEST_NODE_KEYS,
    SYNTHETIC_REFERRAL,
    HubFixture,
    referral_fields,
)
from tests.server.helpers import (
    HEALTH,
    LA,
    POLICE,
    Reply,
    SignedRequest,
    envelope_body,
    send,
    signed_envelope,
    signed_request,
    submit,
)
from tests.workflows.helpers import request_doc
from tests.workflows.helpers import send as send_doc


def insecure_keys(name: str) -> NodeKeys:
    """Fixed-seed INSECURE keys for tests, one set per name."""
    return NodeKeys.from_seed(f"insecure-rotated-{name}".encode().ljust(32, b"0")[:32])


NEW_HEALTH = insecure_keys("health")
NEW_LA = insecure_keys("la")
OLD_HEALTH = INSECURE_TEST_NODE_KEYS[HEALTH]
OLD_LA = INSECURE_TEST_NODE_KEYS[LA]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def rotate_raw(
    http: aiohttp.ClientSession,
    hub: HubFixture,
    statement: dict[str, Any],
    *,
    node: str = HEALTH,
    keys: NodeKeys | None = None,
) -> Reply:
    """POST ``statement`` to /v1/keys/rotate, signed as ``node`` (its current key)."""
    body = json.dumps(statement).encode()
    request = signed_request(hub, "POST", "/v1/keys/rotate", node=node, body=body, keys=keys)
    return await send(http, hub, request)


async def registry_state(hub: HubFixture) -> tuple[Any, ...]:
    """What a refused rotation must leave as it was: nodes, key history, the log."""
    async with hub.store.read() as view:
        nodes = await view.nodes.list_all()
        keys = await view.node_keys.all_nodes()
        size, _ = await view.audit.state_for_update()
    return tuple(nodes), tuple(keys), size


async def audit_entries(hub: HubFixture) -> list[AuditEntry]:
    async with hub.store.read() as view:
        rows = await view.audit.rows(0, 2**62)
    return [AuditEntry.model_validate_json(row.entry_json) for row in rows]


async def log_verifies(hub: HubFixture) -> bool:
    async with hub.store.read() as view:
        rows = await view.audit.rows(0, 2**62)
        heads = await view.audit.heads()
        size, _ = await view.audit.state_for_update()
    return verify_log(
        rows, heads, state_size=size, hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing
    ).ok


async def reference_401(http: aiohttp.ClientSession, hub: HubFixture, path: str) -> Reply:
    """A request with no authentication at all: every refused signature looks like it."""
    reply = await send(http, hub, SignedRequest("POST", path, "", b"{}", {}))
    reply.problem(401, "unauthenticated")
    return reply


# -- rotation keeps the past readable and moves the present to the new keys ---------------


async def test_old_messages_still_verify_and_open_after_both_ends_rotate(
    hub: HubFixture,
) -> None:
    health, la = hub.client(HEALTH), hub.client(LA)
    async with health, la:
        before = await health.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
        hub.clock.advance(60)
        await la.rotate_keys(NEW_LA)
        hub.clock.advance(60)
        await health.rotate_keys(NEW_HEALTH)
        hub.clock.advance(60)

        # Signed by health's old key and sealed to LA's old key: both rotated away since.
        old = await la.fetch(before.message_id)
        assert old.envelope.sender == HEALTH
        assert json.loads(await la.open_payload(old) or b"") == SYNTHETIC_REFERRAL
        assert (await la.acknowledge(old)).state == "acknowledged"

    # A node holding only its new keys could not open it: the archived key is what does.
    async with hub.client(LA, keys=NEW_LA) as only_new:
        message = await only_new.fetch(before.message_id)
        with pytest.raises(DecryptionFailed):
            await only_new.open_payload(message)
    async with hub.client(LA, keys=NEW_LA.with_previous((OLD_LA,))) as archived:
        message = await archived.fetch(before.message_id)
        assert json.loads(await archived.open_payload(message) or b"") == SYNTHETIC_REFERRAL


async def test_new_messages_use_the_new_keys(hub: HubFixture) -> None:
    async with hub.client(LA) as la:
        await la.rotate_keys(NEW_LA)
    async with hub.client(HEALTH) as health:
        entry = await health.rotate_keys(NEW_HEALTH)
        assert entry.signing_key == b64(NEW_HEALTH.public.signing)
        # Health's directory now has LA's new key: the payload is sealed to it.
        after = await health.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
    async with hub.client(LA, keys=NEW_LA) as la:
        message = await la.fetch(after.message_id)  # verified with health's new key
        assert json.loads(await la.open_payload(message) or b"") == SYNTHETIC_REFERRAL
        assert (await la.acknowledge(message)).state == "acknowledged"
    async with hub.client(POLICE) as police:
        assert (await police.fetch(after.message_id)).envelope.id == after.message_id
    async with hub.client(LA, keys=OLD_LA) as stale:
        # LA's old key is refused by the hub, and could not open the new payload anyway.
        with pytest.raises(HubProblem) as refused:
            await stale.inbox()
        assert refused.value.problem.status == 401
        with pytest.raises(DecryptionFailed):
            await stale.open_payload(message)


async def test_a_stale_directory_is_refreshed_to_verify_a_rotated_senders_message(
    hub: HubFixture,
) -> None:
    async with hub.client(LA) as la:
        await la.directory()  # cached with health's old key as current
        async with hub.client(HEALTH) as health:
            await health.rotate_keys(NEW_HEALTH)
            hub.clock.advance(5)
            after = await health.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
        message = await la.fetch(after.message_id)
        assert message.envelope.id == after.message_id


async def test_the_directory_lists_every_key_with_its_period(hub: HubFixture) -> None:
    enrolled_at = hub.clock()
    hub.clock.advance(30)
    rotated_at = hub.clock()
    async with hub.client(HEALTH) as health:
        await health.rotate_keys(NEW_HEALTH)
    async with hub.client(POLICE) as police:
        entry = (await police.directory(refresh=True))[HEALTH]
    assert entry.signing_key == b64(NEW_HEALTH.public.signing)
    assert entry.encryption_key == b64(NEW_HEALTH.public.encryption)
    assert [
        (k.signing_key, k.encryption_key, k.status, k.valid_from, k.valid_until) for k in entry.keys
    ] == [
        (
            b64(OLD_HEALTH.public.signing),
            b64(OLD_HEALTH.public.encryption),
            "rotated",
            enrolled_at,
            rotated_at,
        ),
        (
            b64(NEW_HEALTH.public.signing),
            b64(NEW_HEALTH.public.encryption),
            "current",
            rotated_at,
            None,
        ),
    ]


# -- the old key is refused for anything new ------------------------------------------


async def test_the_old_key_is_refused_like_any_bad_signature(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    reference = await reference_401(http, hub, "/v1/messages")
    async with hub.client(HEALTH) as health:
        await health.rotate_keys(NEW_HEALTH)
    envelope = signed_envelope(hub, keys=OLD_HEALTH)
    old_request = await send(
        http,
        hub,
        signed_request(hub, "POST", "/v1/messages", body=envelope_body(envelope), keys=OLD_HEALTH),
    )
    old_request.problem(401, "unauthenticated")
    assert old_request.body == reference.body
    inbox = await send(http, hub, signed_request(hub, "GET", "/v1/inbox", keys=OLD_HEALTH))
    assert inbox.status == 401
    # Rotating again needs the current key: the old one cannot undo the rotation.
    again = rotation_statement(HEALTH, OLD_HEALTH, insecure_keys("health-2"), at=hub.clock())
    assert (await rotate_raw(http, hub, again, keys=OLD_HEALTH)).status == 401

    # An envelope signed by the old key, in a request signed by the new one: refused too.
    refused = await submit_as(http, hub, envelope, keys=NEW_HEALTH)
    refused.problem(422, "envelope-signature-invalid")
    assert refused.rules() == [("SIG-01", "$.signature")]
    # Signed by the new key throughout: accepted.
    accepted = await submit_as(http, hub, signed_envelope(hub, keys=NEW_HEALTH), keys=NEW_HEALTH)
    assert accepted.status == 201, accepted.body[:300]


async def submit_as(
    http: aiohttp.ClientSession, hub: HubFixture, envelope: dict[str, Any], *, keys: NodeKeys
) -> Reply:
    request = signed_request(hub, "POST", "/v1/messages", body=envelope_body(envelope), keys=keys)
    return await send(http, hub, request)


async def test_a_message_accepted_before_the_rotation_is_resent_for_its_receipt(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    envelope = signed_envelope(hub, keys=OLD_HEALTH)
    first = await submit(http, hub, envelope)
    assert first.status == 201
    async with hub.client(HEALTH) as health:
        await health.rotate_keys(NEW_HEALTH)
    # A retry after a lost answer, now signed (as a request) with the new key.
    again = await submit_as(http, hub, envelope, keys=NEW_HEALTH)
    assert again.status == 200
    assert again.json() == first.json()


async def test_a_message_checked_with_the_old_key_is_refused_if_the_rotation_commits_first(
    hub: HubFixture,
) -> None:
    """The submit read the node (old key) before the rotation committed; its write sees
    the new key under the row lock and refuses, so no message signed by the old key is
    received after the old key's period ended."""
    async with hub.store.read() as view:
        before = await view.nodes.get(HEALTH)
    assert before is not None
    async with hub.client(HEALTH) as health:
        await health.rotate_keys(NEW_HEALTH)
    envelope = signed_envelope(hub, keys=OLD_HEALTH)
    with pytest.raises(Unprocessable) as refused:
        await hub.server.app[EXCHANGE].submit(before, envelope_body(envelope))
    assert [(v.rule, v.path) for v in refused.value.violations] == [("SIG-01", "$.signature")]
    assert "rotated while the message was in flight" in refused.value.violations[0].message
    async with hub.store.read() as view:
        assert await view.messages.get(envelope["id"]) is None


# -- a rotation without a valid proof of possession changes nothing -----------------------


def _statement(hub: HubFixture, **changes: Any) -> dict[str, Any]:
    statement = rotation_statement(HEALTH, OLD_HEALTH, NEW_HEALTH, at=hub.clock())
    statement.update(changes)
    return statement


def _resigned(statement: dict[str, Any], keys: NodeKeys) -> dict[str, Any]:
    statement = {k: v for k, v in statement.items() if k != "signature"}
    statement["signature"] = sign_document(statement, keys.signing, SignatureContext.KEY_ROTATION)
    return statement


def _no_proof(hub: HubFixture) -> dict[str, Any]:
    return {k: v for k, v in _statement(hub).items() if k != "signature"}


def _proof_by_old_key(hub: HubFixture) -> dict[str, Any]:
    return _resigned(_statement(hub), OLD_HEALTH)


def _proof_by_a_stranger(hub: HubFixture) -> dict[str, Any]:
    return _resigned(_statement(hub), insecure_keys("stranger"))


def _proof_over_other_keys(hub: HubFixture) -> dict[str, Any]:
    # The new key signed a statement naming another encryption key than the one sent.
    signed = _statement(hub)
    signed["encryption_key"] = b64(insecure_keys("other").public.encryption)
    return signed


def _proof_with_another_context(hub: HubFixture) -> dict[str, Any]:
    statement = {k: v for k, v in _statement(hub).items() if k != "signature"}
    statement["signature"] = sign_document(statement, NEW_HEALTH.signing, SignatureContext.ENVELOPE)
    return statement


def _other_node(hub: HubFixture) -> dict[str, Any]:
    return _resigned(_statement(hub, node=POLICE), NEW_HEALTH)


def _wrong_previous(hub: HubFixture) -> dict[str, Any]:
    return _resigned(
        _statement(hub, previous_signing_key=b64(NEW_HEALTH.public.signing)), NEW_HEALTH
    )


def _stale(hub: HubFixture) -> dict[str, Any]:
    return _resigned(
        _statement(hub, requested_at=rfc3339(hub.clock() - timedelta(seconds=301))), NEW_HEALTH
    )


def _same_keys_again(hub: HubFixture) -> dict[str, Any]:
    return rotation_statement(HEALTH, OLD_HEALTH, OLD_HEALTH, at=hub.clock())


def _short_key(hub: HubFixture) -> dict[str, Any]:
    return _resigned(_statement(hub, encryption_key=b64(b"\x01" * 16)), NEW_HEALTH)


REFUSALS = {
    "proof-missing": (_no_proof, [("KEY-05", "$.signature")]),
    "proof-by-the-old-key": (_proof_by_old_key, [("KEY-05", "$.signature")]),
    "proof-by-a-stranger": (_proof_by_a_stranger, [("KEY-05", "$.signature")]),
    "proof-over-other-keys": (_proof_over_other_keys, [("KEY-05", "$.signature")]),
    "proof-with-another-context": (_proof_with_another_context, [("KEY-05", "$.signature")]),
    "another-node": (_other_node, [("KEY-01", "$.node")]),
    "wrong-previous-key": (_wrong_previous, [("KEY-02", "$.previous_signing_key")]),
    "stale-statement": (_stale, [("KEY-03", "$.requested_at")]),
    "keys-used-before": (
        _same_keys_again,
        [("KEY-04", "$.signing_key"), ("KEY-04", "$.encryption_key")],
    ),
    "short-key": (_short_key, [("KEY-04", "$.encryption_key")]),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_a_refused_rotation_says_why_and_changes_nothing(
    hub: HubFixture, http: aiohttp.ClientSession, case: str
) -> None:
    build, expected = REFUSALS[case]
    state = await registry_state(hub)
    reply = await rotate_raw(http, hub, build(hub))
    problem = reply.problem(422, "key-rotation-refused")
    assert reply.rules() == expected
    assert "unchanged" in problem["detail"]
    assert await registry_state(hub) == state
    # The node goes on with its old keys, and the new ones authenticate nothing.
    assert (await send(http, hub, signed_request(hub, "GET", "/v1/inbox"))).status == 200
    new_key = signed_request(hub, "GET", "/v1/inbox", keys=NEW_HEALTH)
    assert (await send(http, hub, new_key)).status == 401


async def test_a_missing_proof_is_named_in_words(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    reply = await rotate_raw(http, hub, _no_proof(hub))
    violation = reply.problem(422, "key-rotation-refused")["violations"][0]
    assert "proof of possession" in violation["message"]
    assert "missing" in violation["message"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"also": "this"}, "$.also"),
        ({"requested_at": "2026-01-01T00:00:00"}, "$.requested_at"),  # no time zone
        ({"requested_at": "2026-01-01T00:00:00+01:00"}, "$.requested_at"),
        ({"nonce": "short"}, "$.nonce"),
        ({"signing_key": "not base64"}, "$.signing_key"),
    ],
)
async def test_a_rotation_that_breaks_its_schema_is_refused_naming_the_field(
    hub: HubFixture, http: aiohttp.ClientSession, change: dict[str, str], path: str
) -> None:
    state = await registry_state(hub)
    reply = await rotate_raw(http, hub, {**_statement(hub), **change})
    reply.problem(422, "invalid-key-rotation")
    assert reply.rules() == [("SCHEMA", path)]
    assert await registry_state(hub) == state


# -- the audit log ------------------------------------------------------------------------


async def test_a_rotation_is_logged_with_its_keys_and_the_log_verifies(
    hub: HubFixture,
) -> None:
    before = len(await audit_entries(hub))
    rotated_at = hub.clock()
    async with hub.client(HEALTH) as health:
        await health.rotate_keys(NEW_HEALTH)
    entries = await audit_entries(hub)
    assert len(entries) == before + 1
    entry = entries[-1]
    assert (entry.action, entry.actor, entry.outcome, entry.at) == (
        "key_change",
        HEALTH,
        "ROTATED",
        rotated_at,
    )
    assert entry.keys == (
        public_key_sha256(OLD_HEALTH.public.signing),
        public_key_sha256(NEW_HEALTH.public.signing),
        public_key_sha256(NEW_HEALTH.public.encryption),
    )
    assert await log_verifies(hub)


# -- compromise is not rotation -----------------------------------------------------------


async def _send_referral(client: NodeClient) -> str:
    receipt = await client.send(referral_fields(), PayloadSource.json(SYNTHETIC_REFERRAL))
    return receipt.message_id


async def test_rotation_keeps_every_old_signature_but_compromise_distrusts_those_after_since(
    hub: HubFixture,
) -> None:
    audit = AuditLog(hub_keys=INSECURE_TEST_HUB_KEYS)
    async with hub.client(HEALTH) as health:
        early = await _send_referral(health)
        hub.clock.advance(100)
        leak = hub.clock()
        hub.clock.advance(100)
        late = await _send_referral(health)
        hub.clock.advance(100)

        # Routine rotation: both messages signed by the old key still verify.
        await health.rotate_keys(NEW_HEALTH)
    async with hub.client(LA) as la:
        for message_id in (early, late):
            assert (await la.fetch(message_id)).envelope.id == message_id

    # The rotated-away key is found to have leaked at `leak`: only what it signed from then
    # on stops verifying; the node's current key is untouched.
    outcome = await mark_key_compromised(
        hub.store, HEALTH, OLD_HEALTH.public.signing, since=leak, now=hub.clock(), audit=audit
    )
    assert not outcome.replaced
    assert outcome.untrusted_messages == (late,)
    async with hub.client(LA) as la:
        assert (await la.fetch(early)).envelope.id == early
        with pytest.raises(VerificationFailed, match="marked compromised"):
            await la.fetch(late)
    async with hub.client(HEALTH, keys=NEW_HEALTH) as health:
        assert (await health.directory(refresh=True))[HEALTH].keys[0].status == "compromised"
    assert (await audit_entries(hub))[-1].outcome == "KEY_COMPROMISED"
    assert await log_verifies(hub)


async def test_a_compromised_current_key_is_replaced_at_once_and_refused(
    hub: HubFixture, http: aiohttp.ClientSession
) -> None:
    reference = await reference_401(http, hub, "/v1/messages")
    async with hub.client(HEALTH) as health:
        early = await _send_referral(health)
        hub.clock.advance(100)
        leak = hub.clock()
        hub.clock.advance(100)
        late = await _send_referral(health)  # the thief's, say: accepted before anyone knew
    hub.clock.advance(100)
    replacement = insecure_keys("replacement")
    outcome = await mark_key_compromised(
        hub.store,
        HEALTH,
        OLD_HEALTH.public.signing,
        since=leak,
        now=hub.clock(),
        replacement=replacement.public,
        audit=AuditLog(hub_keys=INSECURE_TEST_HUB_KEYS),
    )
    assert outcome.replaced
    assert outcome.untrusted_messages == (late,)
    stolen = signed_envelope(hub, keys=OLD_HEALTH)
    refused = await send(
        http,
        hub,
        signed_request(hub, "POST", "/v1/messages", body=envelope_body(stolen), keys=OLD_HEALTH),
    )
    assert refused.body == reference.body
    async with hub.client(LA) as la:
        assert (await la.fetch(early)).envelope.id == early
        with pytest.raises(VerificationFailed, match="marked compromised"):
            await la.fetch(late)
    async with hub.client(HEALTH, keys=replacement) as health:
        assert (await health.inbox()).entries == ()
        keys = (await health.directory(refresh=True))[HEALTH].keys
    assert [(k.status, k.compromised_from) for k in keys] == [
        ("compromised", leak),
        ("current", None),
    ]


async def test_a_compromised_current_key_needs_its_replacement(hub: HubFixture) -> None:
    state = await registry_state(hub)
    with pytest.raises(RegistryError, match=r"current signing key.*--new-public-keys"):
        await mark_key_compromised(
            hub.store, HEALTH, OLD_HEALTH.public.signing, since=hub.clock(), now=hub.clock()
        )
    assert await registry_state(hub) == state


@pytest.mark.parametrize(
    ("key", "since_offset", "error"),
    [
        (insecure_keys("never").public.signing, 0, "never had this signing key"),
        (OLD_HEALTH.public.signing, 60, "cannot start in the future"),
        (OLD_HEALTH.public.signing, -3600, "before this key was"),
    ],
)
async def test_compromise_is_refused_for_a_key_or_time_that_does_not_fit(
    hub: HubFixture, key: bytes, since_offset: int, error: str
) -> None:
    state = await registry_state(hub)
    now = hub.clock()
    with pytest.raises(RegistryError, match=error):
        await mark_key_compromised(
            hub.store,
            HEALTH,
            key,
            since=now + timedelta(seconds=since_offset),
            now=now,
            replacement=NEW_HEALTH.public,
        )
    assert await registry_state(hub) == state


async def test_a_key_is_marked_compromised_once(hub: HubFixture) -> None:
    async with hub.client(HEALTH) as health:
        await health.rotate_keys(NEW_HEALTH)
    now = hub.clock()
    await mark_key_compromised(hub.store, HEALTH, OLD_HEALTH.public.signing, since=now, now=now)
    with pytest.raises(RegistryError, match="already marked compromised"):
        await mark_key_compromised(hub.store, HEALTH, OLD_HEALTH.public.signing, since=now, now=now)


def _note() -> dict[str, Any]:
    return {**request_doc(), "kind": "note", "recipients": [HEALTH], "scope": []}


async def test_the_inbox_rejects_a_message_signed_after_the_compromise_and_moves_on(
    hub: HubFixture, tmp_path: Path
) -> None:
    async with hub.client(POLICE) as police:
        early = (await send_doc(police, _note(), {"note": "SYNTHETIC"})).message_id
        hub.clock.advance(100)
        leak = hub.clock()
        late = (await send_doc(police, _note(), {"note": "SYNTHETIC"})).message_id
    hub.clock.advance(100)
    await mark_key_compromised(
        hub.store,
        POLICE,
        INSECURE_TEST_NODE_KEYS[POLICE].public.signing,
        since=leak,
        now=hub.clock(),
        replacement=insecure_keys("police").public,
    )
    profile = hub.profile(tmp_path, HEALTH)
    async with hub.client(HEALTH) as health:
        received = {
            m["message_id"]: m for m in await receive_inbox(health, profile, wait=0, limit=50)
        }
        assert "rejected" not in received[early]
        assert received[early]["payload"] == {"note": "SYNTHETIC"}
        assert received[late]["rejected"][0].startswith("RECV-02 $.signature:")
        assert "payload" not in received[late]
        assert await receive_inbox(health, profile, wait=0, limit=50) == []  # it did not stick
    async with hub.client(POLICE, keys=insecure_keys("police")) as police:
        status = await police.status(late)
    assert [(r.node, r.state, r.rejection_rules) for r in status.recipients] == [
        (HEALTH, "rejected", ("RECV-02",))
    ]
