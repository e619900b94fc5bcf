"""What a node keeps of the messages it received and sent: its own SQLite database.

**What is kept.** One row per message in ``node_messages``: the signed envelope document
exactly as received, the hub's signed receipt, the state this node gave it
(``delivered``/``acknowledged``/``rejected`` for incoming, ``sent`` for outgoing), the
rule ids of a rejection, and the columns a list or search needs (kind, parties, refs, the
information request it belongs to). Who looked at what, and when, goes in the
append-only ``node_access_log`` (never any payload content). The inbox cursor lives in
``node_store_meta`` beside the schema version, so the cursor and what was kept move in
the same database.

**Nothing decrypted is kept at rest.** An inline payload is already ciphertext inside its
envelope document. A blob payload is kept as the ciphertext the hub served, moved into
``DIR/state/ciphertext/<sha256>`` (0600) after its hash was checked against the signed
envelope. A sent message's payload is sealed to its sender too: an inline one is kept in its
envelope, a blob as the ciphertext the client's outbox kept (``hub.client.outbox``); when
that copy is not at hand (or a payload is sealed to the recipients only) the sender keeps
the plaintext re-sealed to its own encryption key (a fresh content key, the same cipher). A
payload is decrypted only when someone opens it (:meth:`NodeStore.open_payload` in
memory for JSON up to 16 MiB, :meth:`NodeStore.open_payload_to` streamed to a sink).

**Retention.** :meth:`NodeStore.purge` deletes the ciphertext of case packs whose access
has expired (DESIGN.md section 6) and of every message older than its kind's retention
period. The row stays, with ``purged_at`` and ``purge_reason``, so a page can say why a
payload is gone. The policy registry says nothing about retention (a data sharing
agreement agrees it, REFERENCE.md 5.2 DSA-06), so the period is LOCAL POLICY: a node
setting (``[retention]`` in ``node.toml``) whose default, :data:`DEFAULT_RETENTION_DAYS`,
is two years, the longest a Channel panel may extend its post-exit reviews.

**Why stdlib ``sqlite3``.** The database is node-local and used by one process (the CLI,
or the console with its background sync); every statement takes well under a millisecond
(``bench/node_store.py``), so a synchronous connection is simpler than a thread pool and
costs the event loop nothing that matters. The file is 0600 in a 0700 folder, in WAL mode
with ``synchronous=FULL``: a kept message survives a power cut once the call returns.
Other modules add their own tables to the same file (the console's users and sessions):
every table here is created ``IF NOT EXISTS`` and prefixed ``node_``, and this module's
schema version is its own row in ``node_store_meta``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal

from agency_adapters.node.database import immediate_transaction
from hub.client import NodeProfile, ReceivedMessage
from hub.crypto import (
    CHUNK_SIZE,
    ContentKey,
    CryptoError,
    NodeKeys,
    PayloadDecryptor,
    PayloadEncryptor,
    PublicKeys,
    open_content_key,
    seal_content_key,
)
from hub.model import Envelope, PayloadDescriptor, Receipt

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "IN_MEMORY_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "AccessEntry",
    "NodeStore",
    "NodeStoreError",
    "PayloadPurged",
    "PayloadTooLarge",
    "PayloadUnreadable",
    "PurgedPayload",
    "Retention",
    "StoredMessage",
    "UnknownMessage",
    "decrypt_payload",
    "node_database_path",
    "open_node_store",
]

SCHEMA_VERSION = 1
# JSON payloads up to this size are opened in memory; larger ones only to a sink.
IN_MEMORY_PAYLOAD_BYTES = 16 << 20
# LOCAL POLICY, not law or registry: how long a node keeps a payload's ciphertext. Two
# years: a Channel panel reviews a case 6 and 12 months after exit and may extend its
# reviews to 2 years (REFERENCE.md S22); the agreement's own retention (DSA-06) overrides
# it through node.toml.
DEFAULT_RETENTION_DAYS = 730

Direction = Literal["in", "out"]
_IO_CHUNK = 1 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS node_store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS node_messages (
    id TEXT PRIMARY KEY,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    kind TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    marking TEXT NOT NULL,
    purpose TEXT NOT NULL,
    subject_ref TEXT,
    case_ref TEXT,
    in_reply_to TEXT,
    request_id TEXT,
    created_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    state TEXT NOT NULL,
    rejection_rules TEXT NOT NULL DEFAULT '[]',
    access_expires_at TEXT,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    envelope_document TEXT NOT NULL,
    receipt_document TEXT NOT NULL,
    -- Where the ciphertext is: 'envelope' (inline), 'file' (ciphertext/<sha256>).
    payload_location TEXT NOT NULL CHECK (payload_location IN ('envelope', 'file')),
    payload_sha256 TEXT NOT NULL,
    -- A sent message's content key sealed to this node (base64); NULL when received.
    own_sealed_key TEXT,
    purged_at TEXT,
    purge_reason TEXT
);
CREATE INDEX IF NOT EXISTS node_messages_listing
    ON node_messages (direction, received_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS node_messages_by_kind
    ON node_messages (direction, kind, received_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS node_messages_by_case
    ON node_messages (direction, case_ref, received_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS node_messages_by_request
    ON node_messages (direction, request_id, received_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS node_messages_by_subject
    ON node_messages (direction, subject_ref, received_at DESC, id DESC);
-- A search reads the refs from the index and fetches only the rows that match (the
-- listing's order, then every column the search compares; bench/console.py).
CREATE INDEX IF NOT EXISTS node_messages_search
    ON node_messages (direction, received_at DESC, id DESC, case_ref, subject_ref, request_id,
    sender, recipients);
-- A message page lists the replies to the message (its thread).
CREATE INDEX IF NOT EXISTS node_messages_by_reply
    ON node_messages (direction, in_reply_to, received_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS node_messages_expiring
    ON node_messages (access_expires_at) WHERE purged_at IS NULL;
CREATE INDEX IF NOT EXISTS node_messages_retained
    ON node_messages (kind, received_at) WHERE purged_at IS NULL;
CREATE INDEX IF NOT EXISTS node_messages_by_ciphertext
    ON node_messages (payload_sha256) WHERE purged_at IS NULL;
CREATE TABLE IF NOT EXISTS node_access_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    user_ref TEXT NOT NULL,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS node_access_log_by_user ON node_access_log (user_ref, seq DESC);
CREATE INDEX IF NOT EXISTS node_access_log_by_object ON node_access_log (object_id, seq DESC);
CREATE TRIGGER IF NOT EXISTS node_access_log_no_update BEFORE UPDATE ON node_access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS node_access_log_no_delete BEFORE DELETE ON node_access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
"""

_COLUMNS = (
    "id, direction, kind, sender, recipients, marking, purpose, subject_ref, case_ref, "
    "in_reply_to, request_id, created_at, received_at, state, rejection_rules, "
    "access_expires_at, media_type, size, envelope_document, receipt_document, "
    "payload_location, payload_sha256, own_sealed_key, purged_at, purge_reason"
)


class NodeStoreError(Exception):
    """Something asked of the node's store cannot be done; the message says why."""


class UnknownMessage(NodeStoreError):
    def __init__(self, message_id: str) -> None:
        super().__init__(f"this node has kept no message {message_id}")
        self.message_id = message_id


class PayloadPurged(NodeStoreError):
    """The payload's ciphertext was deleted; ``reason`` says why (expiry or retention)."""

    def __init__(self, message_id: str, reason: str, purged_at: datetime) -> None:
        super().__init__(
            f"the payload of message {message_id} was purged on "
            f"{purged_at:%Y-%m-%d %H:%M}Z: {reason}"
        )
        self.message_id = message_id
        self.reason = reason
        self.purged_at = purged_at


class PayloadTooLarge(NodeStoreError):
    def __init__(self, message_id: str, size: int, media_type: str) -> None:
        super().__init__(
            f"the payload of message {message_id} ({media_type}, {size} bytes) is too large "
            f"to open in memory (at most {IN_MEMORY_PAYLOAD_BYTES} bytes of JSON); "
            "write it to a file instead"
        )
        self.message_id = message_id


class PayloadUnreadable(NodeStoreError):
    """The kept ciphertext is missing, does not match its envelope, or this key cannot
    open it."""


def _ts(moment: datetime) -> str:
    # Fixed width, UTC: the text sorts as the time does.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class StoredMessage:
    """A message this node received (``direction='in'``) or sent (``'out'``).

    ``envelope`` and ``receipt`` are parsed from the kept documents when first used, so
    a listing costs no model validation. After a purge, ``envelope_document`` lacks the
    inline ciphertext (``payload.inline``), so its signature no longer verifies over it;
    ``envelope`` then carries an empty ``inline``.
    """

    id: str
    direction: Direction
    kind: str
    sender: str
    recipients: tuple[str, ...]
    marking: str
    purpose: str
    subject_ref: str | None
    case_ref: str | None
    in_reply_to: str | None
    request_id: str | None
    created_at: datetime
    received_at: datetime
    state: str
    rejection_rules: tuple[str, ...]
    access_expires_at: datetime | None
    media_type: str
    size: int
    purged_at: datetime | None
    purge_reason: str | None
    _envelope_json: str = field(repr=False, compare=False)
    _receipt_json: str = field(repr=False, compare=False)

    @cached_property
    def envelope_document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self._envelope_json)
        return document

    @cached_property
    def envelope(self) -> Envelope:
        document = self.envelope_document
        if document["payload"]["transport"] == "inline" and "inline" not in document["payload"]:
            document = {**document, "payload": {**document["payload"], "inline": ""}}
        return Envelope.model_validate_json(json.dumps(document))

    @cached_property
    def receipt(self) -> Receipt:
        return Receipt.model_validate_json(self._receipt_json)

    @property
    def purged(self) -> bool:
        return self.purged_at is not None


@dataclass(frozen=True, slots=True)
class PurgedPayload:
    message_id: str
    direction: Direction
    kind: str
    reason: str
    purged_at: datetime


@dataclass(frozen=True, slots=True)
class AccessEntry:
    seq: int
    at: datetime
    user_ref: str
    username: str
    action: str
    object_kind: str
    object_id: str


@dataclass(frozen=True, slots=True)
class Retention:
    """How long payload ciphertext is kept, by kind (LOCAL POLICY; module docstring)."""

    default: timedelta = timedelta(days=DEFAULT_RETENTION_DAYS)
    by_kind: tuple[tuple[str, timedelta], ...] = ()

    @classmethod
    def from_days(cls, days: Mapping[str, int]) -> Retention:
        """From ``node.toml``'s ``[retention]``: ``default`` and per-kind day counts."""
        for key, value in days.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"retention.{key} must be a whole number of days, at least 1")
        default = timedelta(days=days.get("default", DEFAULT_RETENTION_DAYS))
        return cls(
            default=default,
            by_kind=tuple(
                sorted((k, timedelta(days=v)) for k, v in days.items() if k != "default")
            ),
        )

    def for_kind(self, kind: str) -> timedelta:
        return dict(self.by_kind).get(kind, self.default)


def node_database_path(profile: NodeProfile) -> Path:
    """The node's own database: ``DIR/state/node.sqlite3``."""
    return profile.root / "state" / "node.sqlite3"


def open_node_store(profile: NodeProfile) -> NodeStore:
    """The store of a node folder, with the folder's retention settings."""
    return NodeStore.open(
        node_database_path(profile), retention=Retention.from_days(dict(profile.retention_days))
    )


def decrypt_payload(
    payload: PayloadDescriptor,
    sealed_key: str,
    keys: NodeKeys,
    ciphertext: bytes | Path,
) -> Iterator[bytes]:
    """Plaintext chunks of a kept ciphertext, checked against ``payload.sha256``.

    Raises :class:`PayloadUnreadable` when the key does not open it or it was altered.
    """
    try:
        decryptor = PayloadDecryptor(
            open_content_key(keys, sealed_key), expected_sha256=payload.sha256
        )
        if isinstance(ciphertext, bytes):
            yield from decryptor.feed(ciphertext)
        else:
            with ciphertext.open("rb") as source:
                while piece := source.read(CHUNK_SIZE):
                    yield from decryptor.feed(piece)
        yield from decryptor.finish()
    except CryptoError as exc:
        raise PayloadUnreadable(f"the kept payload cannot be opened: {exc}") from exc
    except FileNotFoundError as exc:
        raise PayloadUnreadable(f"the kept ciphertext {exc.filename} is missing") from exc


class NodeStore:
    """The node's messages, inbox cursor and access log (module docstring)."""

    def __init__(self, connection: sqlite3.Connection, path: Path, retention: Retention) -> None:
        self._db = connection
        self.path = path
        self.retention = retention
        self.ciphertext_dir = path.parent / "ciphertext"

    @classmethod
    def open(cls, path: Path, *, retention: Retention | None = None) -> NodeStore:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        if not path.exists():
            # Created 0600 before sqlite opens it, so it is never readable by others.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.chmod(path, 0o600)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=5000")
            store = cls(connection, path, retention or Retention())
            store._create_schema()
            store._migrate_legacy_cursor()
        except BaseException:
            connection.close()
            raise
        for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            with suppress(FileNotFoundError):
                os.chmod(sidecar, 0o600)
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> NodeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with immediate_transaction(self._db) as db:
            yield db

    def _create_schema(self) -> None:
        with self._transaction() as db:
            for statement in _SCHEMA.split(";\n"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute(
                "SELECT value FROM node_store_meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO node_store_meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise NodeStoreError(
                    f"{self.path} was written by a newer version (node store schema {row[0]})"
                )

    def _migrate_legacy_cursor(self) -> None:
        """An older node folder kept its cursor in ``state/inbox.json``: take it over."""
        legacy = self.path.parent / "inbox.json"
        if not legacy.exists():
            return
        try:
            after = json.loads(legacy.read_text()).get("after")
        except (ValueError, AttributeError) as exc:
            raise NodeStoreError(f"{legacy} is not a valid inbox cursor") from exc
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise NodeStoreError(f"{legacy} has no valid 'after' cursor")
        if self._meta("inbox_cursor") is None:
            self.set_cursor(after)
        legacy.unlink()

    # -- the inbox cursor ---------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM node_store_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def cursor(self) -> int:
        """The hub inbox cursor: everything at or before it has been dealt with."""
        value = self._meta("inbox_cursor")
        return 0 if value is None else int(value)

    def set_cursor(self, after: int) -> None:
        if after < 0:
            raise ValueError("the inbox cursor is never negative")
        self._db.execute(
            "INSERT INTO node_store_meta (key, value) VALUES ('inbox_cursor', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(after),),
        )

    # -- keeping ------------------------------------------------------------------------

    def keep_received(
        self,
        message: ReceivedMessage,
        *,
        state: str,
        rejection_rules: Iterable[str] = (),
        ciphertext: Path | None = None,
    ) -> StoredMessage:
        """Keep a verified received message with the answer this node gave it.

        A blob payload's ``ciphertext`` file (as the hub served it) is checked against the
        envelope's hash and moved into the store; an inline payload needs none. Keeping
        the same message again changes nothing and returns what was kept.
        """
        if state not in ("delivered", "acknowledged", "rejected"):
            raise ValueError(f"a received message is delivered, acknowledged or rejected: {state}")
        envelope = message.envelope
        existing = self.get(envelope.id)
        if existing is not None:
            if ciphertext is not None:
                ciphertext.unlink(missing_ok=True)
            return existing
        location = "envelope"
        if envelope.payload.transport == "blob":
            if ciphertext is None:
                raise NodeStoreError(f"message {envelope.id} has a blob payload: pass its file")
            self._take_ciphertext(ciphertext, envelope.payload.sha256, envelope.payload.size)
            location = "file"
        elif ciphertext is not None:
            raise NodeStoreError(f"message {envelope.id} is inline: it has no ciphertext file")
        self._insert(
            envelope,
            message.envelope_document,
            message.receipt,
            direction="in",
            state=state,
            rejection_rules=tuple(sorted(set(rejection_rules))),
            location=location,
            sha256=envelope.payload.sha256,
            own_sealed_key=None,
        )
        stored = self.get(envelope.id)
        assert stored is not None
        return stored

    def keep_sent(
        self,
        envelope_document: Mapping[str, Any],
        receipt: Receipt,
        plaintext: bytes | Path | None,
        own_keys: PublicKeys,
        *,
        ciphertext: Path | None = None,
    ) -> StoredMessage:
        """Keep a message this node sent; its payload only ever as ciphertext.

        An inline payload sealed to the sender too (``NodeClient.send`` does that) is kept
        as the envelope's own ciphertext. A blob payload sealed to the sender whose
        ``ciphertext`` file is given (the copy the client's outbox kept) is kept as a copy
        of it, checked against the envelope. Otherwise (a blob whose ciphertext the sender
        did not keep, or an envelope sealed to the recipients only) the ``plaintext`` is
        encrypted afresh under a new content key sealed to ``own_keys`` and kept as
        ``ciphertext/<sha256>``; without a plaintext that is refused.
        """
        document = dict(envelope_document)
        envelope = Envelope.model_validate_json(json.dumps(document))
        if receipt.message_id != envelope.id:
            raise NodeStoreError("the receipt is for another message")
        existing = self.get(envelope.id)
        if existing is not None:
            return existing
        if (
            envelope.payload.transport == "inline"
            and envelope.sender in envelope.payload.sealed_keys
        ):
            # This client seals every payload to its sender too: the envelope's own
            # ciphertext is the sender's copy, and nothing needs sealing again.
            return self._insert_sent(
                envelope,
                document,
                receipt,
                location="envelope",
                sha256=envelope.payload.sha256,
                own_sealed_key=None,
            )
        if (
            envelope.payload.transport == "blob"
            and envelope.sender in envelope.payload.sealed_keys
            and ciphertext is not None
        ):
            return self._keep_sent_ciphertext(envelope, document, receipt, ciphertext)
        if plaintext is None:
            raise NodeStoreError(
                f"message {envelope.id}: its payload is not sealed to this node here; "
                "keeping it needs the plaintext to seal again"
            )
        key = ContentKey.generate()
        encryptor = PayloadEncryptor(key)
        self.ciphertext_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix="sealing-", suffix=".part", dir=self.ciphertext_dir)
        staged = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(plaintext, bytes):
                    for piece in encryptor.encrypt_stream(io.BytesIO(plaintext)):
                        out.write(piece)
                else:
                    with plaintext.open("rb") as handle:
                        for piece in encryptor.encrypt_stream(handle):
                            out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            self._take_ciphertext(staged, encryptor.sha256, encryptor.size)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        sealed = seal_content_key(key, {envelope.sender: own_keys.encryption})[envelope.sender]
        return self._insert_sent(
            envelope,
            document,
            receipt,
            location="file",
            sha256=encryptor.sha256,
            own_sealed_key=sealed,
            size=encryptor.size,
        )

    def _keep_sent_ciphertext(
        self,
        envelope: Envelope,
        document: Mapping[str, Any],
        receipt: Receipt,
        ciphertext: Path,
    ) -> StoredMessage:
        """A sent blob kept as the ciphertext that was uploaded (sealed to its sender too):
        copied, so the caller's file stays until the caller is done with it."""
        self.ciphertext_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix="sent-", suffix=".part", dir=self.ciphertext_dir)
        staged = Path(name)
        try:
            with os.fdopen(fd, "wb") as out, ciphertext.open("rb") as source:
                while block := source.read(_IO_CHUNK):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            self._take_ciphertext(staged, envelope.payload.sha256, envelope.payload.size)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        return self._insert_sent(
            envelope,
            document,
            receipt,
            location="file",
            sha256=envelope.payload.sha256,
            own_sealed_key=None,  # the envelope's own key sealed to the sender opens it
        )

    def _insert_sent(
        self,
        envelope: Envelope,
        document: Mapping[str, Any],
        receipt: Receipt,
        *,
        location: str,
        sha256: str,
        own_sealed_key: str | None,
        size: int | None = None,
    ) -> StoredMessage:
        """Record a message this node sent (state ``sent``) and return it as stored."""
        self._insert(
            envelope,
            document,
            receipt,
            direction="out",
            state="sent",
            rejection_rules=(),
            location=location,
            sha256=sha256,
            own_sealed_key=own_sealed_key,
            size=size,
        )
        stored = self.get(envelope.id)
        assert stored is not None
        return stored

    def _take_ciphertext(self, staged: Path, sha256: str, size: int) -> Path:
        """Move a ciphertext file into the store once its hash and size are checked."""
        digest, length = hashlib.sha256(), 0
        with staged.open("rb") as handle:
            while block := handle.read(_IO_CHUNK):
                digest.update(block)
                length += len(block)
        if digest.hexdigest() != sha256 or length != size:
            staged.unlink(missing_ok=True)
            raise PayloadUnreadable(
                "the ciphertext does not match the envelope's sha256 and size; nothing kept"
            )
        self.ciphertext_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.ciphertext_dir / sha256
        os.chmod(staged, 0o600)
        os.replace(staged, target)
        return target

    def _insert(
        self,
        envelope: Envelope,
        document: Mapping[str, Any],
        receipt: Receipt,
        *,
        direction: Direction,
        state: str,
        rejection_rules: tuple[str, ...],
        location: str,
        sha256: str,
        own_sealed_key: str | None,
        size: int | None = None,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                f"INSERT OR IGNORE INTO node_messages ({_COLUMNS}) VALUES "  # noqa: S608 - fixed column list
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                (
                    envelope.id,
                    direction,
                    envelope.kind,
                    envelope.sender,
                    json.dumps(list(envelope.recipients)),
                    envelope.marking.render(),
                    envelope.purpose,
                    envelope.subject_ref,
                    envelope.case_ref,
                    envelope.in_reply_to,
                    self._request_of(db, envelope),
                    _ts(envelope.created_at),
                    _ts(receipt.received_at),
                    state,
                    json.dumps(list(rejection_rules)),
                    None if envelope.access_expires_at is None else _ts(envelope.access_expires_at),
                    envelope.payload.media_type,
                    envelope.payload.size if size is None else size,
                    json.dumps(dict(document), separators=(",", ":")),
                    receipt.model_dump_json(),
                    location,
                    sha256,
                    own_sealed_key,
                ),
            )

    @staticmethod
    def _request_of(db: sqlite3.Connection, envelope: Envelope) -> str | None:
        """The information request a message belongs to, as the hub's workflow tracks it.

        A request is its own; a decision answers a request (``in_reply_to``); a release
        answers a decision (or the request), and anything else replying into the chain
        belongs to the request its parent belongs to.
        """
        if envelope.kind == "information_request":
            return envelope.id
        if envelope.in_reply_to is None:
            return None
        row = db.execute(
            "SELECT request_id FROM node_messages WHERE id = ?", (envelope.in_reply_to,)
        ).fetchone()
        if row is not None:
            return None if row[0] is None else str(row[0])
        return envelope.in_reply_to if envelope.kind == "decision" else None

    # -- reading ------------------------------------------------------------------------

    def set_state(self, message_id: str, state: str, rejection_rules: Sequence[str] = ()) -> None:
        """Record a sent message's delivery state as the hub last reported it (the
        console's message page fetches it live and keeps it for the lists)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE node_messages SET state = ?, rejection_rules = ? WHERE id = ?",
                (state, json.dumps(sorted(set(rejection_rules))), message_id),
            )

    def get(self, message_id: str) -> StoredMessage | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM node_messages WHERE id = ?",  # noqa: S608 - fixed column list
            (message_id,),
        ).fetchone()
        return None if row is None else _stored(row)

    def list_messages(
        self,
        direction: Direction,
        *,
        kind: str | None = None,
        case_ref: str | None = None,
        request_id: str | None = None,
        subject_ref: str | None = None,
        search: str | None = None,
        states: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        in_reply_to: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[StoredMessage]:
        """Messages newest first (by the hub's receipt time), filtered and paged.

        ``states`` keeps messages in any of those states; ``ids`` only those messages;
        ``in_reply_to`` the replies to one message.
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset are never negative")
        where, params = _filters(
            direction, kind, case_ref, request_id, subject_ref, search, states, ids, in_reply_to
        )
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM node_messages WHERE {where} "  # noqa: S608 - placeholders only
            "ORDER BY received_at DESC, id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
        return [_stored(row) for row in rows]

    def count_messages(
        self,
        direction: Direction,
        *,
        kind: str | None = None,
        case_ref: str | None = None,
        request_id: str | None = None,
        subject_ref: str | None = None,
        search: str | None = None,
        states: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        in_reply_to: str | None = None,
    ) -> int:
        where, params = _filters(
            direction, kind, case_ref, request_id, subject_ref, search, states, ids, in_reply_to
        )
        (count,) = self._db.execute(
            f"SELECT count(*) FROM node_messages WHERE {where}",  # noqa: S608 - placeholders only
            params,
        ).fetchone()
        return int(count)

    # -- opening on view ----------------------------------------------------------------

    def _openable(
        self, message_id: str, node_id: str
    ) -> tuple[StoredMessage, PayloadDescriptor, str, bytes | Path]:
        stored = self.get(message_id)
        if stored is None:
            raise UnknownMessage(message_id)
        if stored.purged_at is not None:
            raise PayloadPurged(message_id, stored.purge_reason or "purged", stored.purged_at)
        location, sha256, own_sealed = self._db.execute(
            "SELECT payload_location, payload_sha256, own_sealed_key FROM node_messages "
            "WHERE id = ?",
            (message_id,),
        ).fetchone()
        payload = stored.envelope.payload
        if own_sealed is not None:
            # The sender's own re-sealed copy: its key and hash are its own.
            sealed: str | None = own_sealed
            payload = payload.model_copy(update={"sha256": sha256})
        else:
            sealed = payload.sealed_keys.get(node_id)
        if sealed is None:
            raise PayloadUnreadable(f"message {message_id} has no key sealed to {node_id}")
        source: bytes | Path = (
            payload.inline_bytes() if location == "envelope" else self.ciphertext_dir / sha256
        )
        return stored, payload, sealed, source

    def open_payload(self, message_id: str, keys: NodeKeys, node_id: str) -> bytes:
        """The plaintext of a JSON payload up to 16 MiB, decrypted in memory."""
        stored, payload, sealed, source = self._openable(message_id, node_id)
        if not stored.media_type.endswith("json") or stored.size > IN_MEMORY_PAYLOAD_BYTES:
            raise PayloadTooLarge(message_id, stored.size, stored.media_type)
        return b"".join(decrypt_payload(payload, sealed, keys, source))

    def open_payload_to(self, message_id: str, keys: NodeKeys, node_id: str, sink: BinaryIO) -> int:
        """Decrypt a payload of any size into ``sink``, chunk by chunk; the bytes written."""
        _, payload, sealed, source = self._openable(message_id, node_id)
        written = 0
        for chunk in decrypt_payload(payload, sealed, keys, source):
            sink.write(chunk)
            written += len(chunk)
        return written

    # -- purging ------------------------------------------------------------------------

    def purge(self, now: datetime) -> list[PurgedPayload]:
        """Delete the ciphertext of expired case packs and of messages past retention.

        The rows stay, marked with when and why, so a page can say what is gone.
        """
        stamp = _ts(now)
        due: list[tuple[str, str, str, str, str, str]] = []
        for row in self._db.execute(
            "SELECT id, direction, kind, payload_location, payload_sha256, access_expires_at "
            "FROM node_messages WHERE purged_at IS NULL AND access_expires_at IS NOT NULL "
            "AND access_expires_at <= ?",
            (stamp,),
        ):
            expired = _from_ts(row[5])
            due.append((*row[:5], f"case pack access expired at {expired:%Y-%m-%d %H:%M}Z"))
        seen = {item[0] for item in due}
        kinds = {k for k, _ in self.retention.by_kind}
        for kind, period in self.retention.by_kind:
            due += self._past_retention("kind = ?", (kind,), now - period, period, seen)
        placeholders = ", ".join("?" * len(kinds))
        others = f"kind NOT IN ({placeholders})" if kinds else "1 = 1"
        due += self._past_retention(
            others, tuple(sorted(kinds)), now - self.retention.default, self.retention.default, seen
        )
        purged: list[PurgedPayload] = []
        for message_id, direction, kind, location, sha256, reason in due:
            with self._transaction() as db:
                if location == "envelope":
                    (text,) = db.execute(
                        "SELECT envelope_document FROM node_messages WHERE id = ?", (message_id,)
                    ).fetchone()
                    document = json.loads(text)
                    document["payload"].pop("inline", None)
                    db.execute(
                        "UPDATE node_messages SET envelope_document = ? WHERE id = ?",
                        (json.dumps(document, separators=(",", ":")), message_id),
                    )
                db.execute(
                    "UPDATE node_messages SET purged_at = ?, purge_reason = ? WHERE id = ?",
                    (stamp, reason, message_id),
                )
                shared = db.execute(
                    "SELECT 1 FROM node_messages WHERE payload_sha256 = ? AND purged_at IS NULL "
                    "AND payload_location = 'file' LIMIT 1",
                    (sha256,),
                ).fetchone()
            if location == "file" and shared is None:
                (self.ciphertext_dir / sha256).unlink(missing_ok=True)
            purged.append(
                PurgedPayload(
                    message_id=message_id,
                    direction="in" if direction == "in" else "out",
                    kind=kind,
                    reason=reason,
                    purged_at=now,
                )
            )
        return purged

    def _past_retention(
        self,
        where: str,
        params: tuple[str, ...],
        cutoff: datetime,
        period: timedelta,
        seen: set[str],
    ) -> list[tuple[str, str, str, str, str, str]]:
        reason = f"past this node's retention period of {period.days} days for its kind"
        rows = self._db.execute(
            "SELECT id, direction, kind, payload_location, payload_sha256 FROM node_messages "  # noqa: S608 - placeholders only
            f"WHERE purged_at IS NULL AND {where} AND received_at <= ?",
            (*params, _ts(cutoff)),
        ).fetchall()
        out = [(*row, reason) for row in rows if row[0] not in seen]
        seen.update(row[0] for row in rows)
        return out

    # -- who looked at what -------------------------------------------------------------

    def log_access(
        self,
        user_ref: str,
        username: str,
        action: str,
        object_kind: str,
        object_id: str,
        at: datetime,
    ) -> None:
        """Record that a user looked at or acted on an object (never any content)."""
        for name, value in (
            ("user_ref", user_ref),
            ("username", username),
            ("action", action),
            ("object_kind", object_kind),
            ("object_id", object_id),
        ):
            if not value or len(value) > 200:
                raise ValueError(f"{name} must be 1 to 200 characters")
        self._db.execute(
            "INSERT INTO node_access_log (at, user_ref, username, action, object_kind, "
            "object_id) VALUES (?, ?, ?, ?, ?, ?)",
            (_ts(at), user_ref, username, action, object_kind, object_id),
        )

    def access_entries(
        self,
        limit: int = 50,
        offset: int = 0,
        *,
        user: str | None = None,
        object_id: str | None = None,
    ) -> list[AccessEntry]:
        """The access log, newest first; ``user`` matches a user ref or a username."""
        clauses, params = ["1 = 1"], []
        if user is not None:
            clauses.append("(user_ref = ? OR username = ?)")
            params += [user, user]
        if object_id is not None:
            clauses.append("object_id = ?")
            params.append(object_id)
        rows = self._db.execute(
            "SELECT seq, at, user_ref, username, action, object_kind, object_id "  # noqa: S608 - placeholders only
            f"FROM node_access_log WHERE {' AND '.join(clauses)} "
            "ORDER BY seq DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
        return [
            AccessEntry(
                seq=row[0],
                at=_from_ts(row[1]),
                user_ref=row[2],
                username=row[3],
                action=row[4],
                object_kind=row[5],
                object_id=row[6],
            )
            for row in rows
        ]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(
    direction: Direction,
    kind: str | None,
    case_ref: str | None,
    request_id: str | None,
    subject_ref: str | None,
    search: str | None,
    states: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    in_reply_to: str | None = None,
) -> tuple[str, tuple[str, ...]]:
    clauses: list[str] = ["direction = ?"]
    params: list[str] = [direction]
    for column, value in (
        ("kind", kind),
        ("case_ref", case_ref),
        ("request_id", request_id),
        ("subject_ref", subject_ref),
        ("in_reply_to", in_reply_to),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    for column, values in (("state", states), ("id", ids)):
        if values is not None:
            # An empty list matches nothing (``IN ()`` is not SQL).
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0 = 1")
            params.extend(values)
    if search is not None and search.strip():
        term = search.strip()
        prefix = _escape_like(term) + "%"
        clauses.append(
            "(id LIKE ? ESCAPE '\\' OR case_ref LIKE ? ESCAPE '\\' "
            "OR subject_ref LIKE ? ESCAPE '\\' OR request_id LIKE ? ESCAPE '\\' "
            "OR sender = ? OR recipients LIKE ? ESCAPE '\\')"
        )
        params += [prefix, prefix, prefix, prefix, term, '%"' + _escape_like(term) + '"%']
    return " AND ".join(clauses), tuple(params)


def _stored(row: tuple[Any, ...]) -> StoredMessage:
    (
        message_id,
        direction,
        kind,
        sender,
        recipients,
        marking,
        purpose,
        subject_ref,
        case_ref,
        in_reply_to,
        request_id,
        created_at,
        received_at,
        state,
        rejection_rules,
        access_expires_at,
        media_type,
        size,
        envelope_document,
        receipt_document,
        _location,
        _sha256,
        _own_sealed,
        purged_at,
        purge_reason,
    ) = row
    return StoredMessage(
        id=message_id,
        direction=direction,
        kind=kind,
        sender=sender,
        recipients=tuple(json.loads(recipients)),
        marking=marking,
        purpose=purpose,
        subject_ref=subject_ref,
        case_ref=case_ref,
        in_reply_to=in_reply_to,
        request_id=request_id,
        created_at=_from_ts(created_at),
        received_at=_from_ts(received_at),
        state=state,
        rejection_rules=tuple(json.loads(rejection_rules)),
        access_expires_at=None if access_expires_at is None else _from_ts(access_expires_at),
        media_type=media_type,
        size=size,
        purged_at=None if purged_at is None else _from_ts(purged_at),
        purge_reason=purge_reason,
        _envelope_json=envelope_document,
        _receipt_json=receipt_document,
    )
