"""The bridge's folder and what it records: partners, and every delivery and its outcome.

::

    DIR/gnupg/                   the bridge's GnuPG home (0700): its own key pair and the
                                 partners' public keys (hub.crypto.openpgp)
    DIR/keys/openpgp.passphrase  the passphrase of the bridge's OpenPGP key (0600)
    DIR/state/bridge.sqlite3     partners, deliveries (0600; nothing decrypted)
    DIR/partners/<node-id>/      one node folder per partner (node.toml, keys/node.key,
                                 state/): the partner's identity at the hub, held by the
                                 bridge, where its messages arrive as ciphertext

**The delivery queue.** A message that reached a partner's node is *queued* here
(``pending``) in the same run that acknowledged it at the hub, and leaves the queue as
``sent`` (the SMTP server accepted it: its reply is kept) or ``failed`` (with the reason:
the partner's key is revoked or expired, its domain may not carry the marking, the case
pack's access expired before it could go, the partner was disabled, or the SMTP server
refused it for good). A temporary SMTP failure (4xx, no connection) leaves it ``pending``
with the attempt counted and the error kept, and the next run tries again. Nothing is
ever dropped without a row saying why, and ``hub bridge deliveries`` shows them all. What
is queued is a reference to the ciphertext the partner's node store keeps, never the
plaintext: the mail is built, encrypted and sent in memory.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from agency_adapters.node.database import immediate_transaction

__all__ = [
    "BridgeFolder",
    "BridgeStore",
    "BridgeStoreError",
    "Delivery",
    "DeliveryState",
    "InboundRecord",
    "Partner",
    "PartnerStatus",
]

PartnerStatus = Literal["active", "disabled"]
DeliveryState = Literal["pending", "sent", "failed"]


class BridgeStoreError(ValueError):
    """A partner or delivery change the store refuses, with the reason."""


@dataclass(frozen=True, slots=True)
class BridgeFolder:
    root: Path

    @property
    def gnupg_home(self) -> Path:
        return self.root / "gnupg"

    @property
    def passphrase_file(self) -> Path:
        return self.root / "keys" / "openpgp.passphrase"

    @property
    def database(self) -> Path:
        return self.root / "state" / "bridge.sqlite3"

    def partner_dir(self, node_id: str) -> Path:
        return self.root / "partners" / node_id

    def read_passphrase(self) -> str:
        path = self.passphrase_file
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise BridgeStoreError(f"{path} does not exist; run hub bridge init") from None
        if mode & 0o077:
            raise BridgeStoreError(f"{path} must be readable by its owner only (chmod 600)")
        return path.read_text(encoding="utf-8").strip()

    def write_passphrase(self, passphrase: str) -> None:
        path = self.passphrase_file
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(passphrase + "\n")


@dataclass(frozen=True, slots=True)
class Partner:
    node_id: str
    email: str
    name: str
    organisation: str
    agency_type: str
    fingerprint: str
    status: PartnerStatus
    enrolled_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: str
    node_id: str
    kind: str
    marking: str
    state: DeliveryState
    attempts: int
    detail: str
    queued_at: datetime
    updated_at: datetime
    # A sent case pack: when the partner was reminded that its access is ending.
    reminded_at: datetime | None = None


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _from_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS partners (
    node_id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    organisation TEXT NOT NULL,
    agency_type TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    enrolled_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    message_id TEXT NOT NULL,
    node_id TEXT NOT NULL REFERENCES partners (node_id),
    kind TEXT NOT NULL,
    marking TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    queued_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    reminded_at TEXT,
    PRIMARY KEY (message_id, node_id)
);
CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (state, queued_at);
CREATE TABLE IF NOT EXISTS inbound (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    node_id TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'refused')),
    reason TEXT NOT NULL,
    rules TEXT NOT NULL,
    message_id TEXT
);
"""


class BridgeStore:
    """Partners and deliveries in ``DIR/state/bridge.sqlite3`` (stdlib sqlite3, WAL)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, folder: BridgeFolder) -> BridgeStore:
        path = folder.database
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.executescript(_SCHEMA)
        return cls(connection)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> BridgeStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with immediate_transaction(self._db) as db:
            yield db

    # --- Partners ------------------------------------------------------------------------

    def check_new_partner(self, node_id: str, email: str) -> None:
        """Refuse a node id or address already enrolled (before anything is written)."""
        if self.partner(node_id) is not None:
            raise BridgeStoreError(f"partner {node_id} is already enrolled")
        if self.partner_by_email(email) is not None:
            raise BridgeStoreError(f"{email} is already enrolled as another partner")

    def add_partner(self, partner: Partner) -> None:
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO partners VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        partner.node_id,
                        partner.email.lower(),
                        partner.name,
                        partner.organisation,
                        partner.agency_type,
                        partner.fingerprint,
                        partner.status,
                        _ts(partner.enrolled_at),
                        _ts(partner.updated_at),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise BridgeStoreError(
                f"partner {partner.node_id} or {partner.email} is already enrolled"
            ) from exc

    def partner(self, node_id: str) -> Partner | None:
        row = self._db.execute("SELECT * FROM partners WHERE node_id = ?", (node_id,)).fetchone()
        return None if row is None else _partner(row)

    def partner_by_email(self, email: str) -> Partner | None:
        row = self._db.execute(
            "SELECT * FROM partners WHERE email = ?", (email.lower(),)
        ).fetchone()
        return None if row is None else _partner(row)

    def partners(self) -> list[Partner]:
        rows = self._db.execute("SELECT * FROM partners ORDER BY node_id").fetchall()
        return [_partner(row) for row in rows]

    def set_partner_status(self, node_id: str, status: PartnerStatus, now: datetime) -> Partner:
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE partners SET status = ?, updated_at = ? WHERE node_id = ?",
                (status, _ts(now), node_id),
            ).rowcount
            if not changed:
                raise BridgeStoreError(f"no partner {node_id} is enrolled")
            if status == "disabled":
                # Queued mail to a disabled partner is never sent; say so on each row.
                db.execute(
                    "UPDATE deliveries SET state = 'failed', detail = ?, updated_at = ? "
                    "WHERE node_id = ? AND state = 'pending'",
                    ("the partner was disabled before it could be sent", _ts(now), node_id),
                )
        partner = self.partner(node_id)
        assert partner is not None
        return partner

    def set_partner_fingerprint(self, node_id: str, fingerprint: str, now: datetime) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE partners SET fingerprint = ?, updated_at = ? WHERE node_id = ?",
                (fingerprint, _ts(now), node_id),
            )

    # --- Deliveries ----------------------------------------------------------------------

    def queue(
        self, *, message_id: str, node_id: str, kind: str, marking: str, now: datetime
    ) -> bool:
        """Queue a received message for mailing; False if it was queued before."""
        with self._transaction() as db:
            inserted = db.execute(
                "INSERT OR IGNORE INTO deliveries "
                "(message_id, node_id, kind, marking, state, queued_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (message_id, node_id, kind, marking, _ts(now), _ts(now)),
            ).rowcount
        return bool(inserted)

    def pending(self) -> list[Delivery]:
        rows = self._db.execute(
            "SELECT * FROM deliveries WHERE state = 'pending' ORDER BY queued_at, message_id"
        ).fetchall()
        return [_delivery(row) for row in rows]

    def finish(self, delivery: Delivery, state: DeliveryState, detail: str, now: datetime) -> None:
        """Record an attempt: ``sent``, ``failed`` (for good) or ``pending`` (try again)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET state = ?, detail = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE message_id = ? AND node_id = ?",
                (state, detail, _ts(now), delivery.message_id, delivery.node_id),
            )

    def sent_case_packs_not_reminded(self) -> list[Delivery]:
        rows = self._db.execute(
            "SELECT * FROM deliveries WHERE state = 'sent' AND kind = 'case_pack' "
            "AND reminded_at IS NULL ORDER BY queued_at, message_id"
        ).fetchall()
        return [_delivery(row) for row in rows]

    def mark_reminded(self, delivery: Delivery, now: datetime) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET reminded_at = ? WHERE message_id = ? AND node_id = ?",
                (_ts(now), delivery.message_id, delivery.node_id),
            )

    def deliveries(self, *, state: DeliveryState | None = None) -> list[Delivery]:
        if state is None:
            rows = self._db.execute(
                "SELECT * FROM deliveries ORDER BY queued_at, message_id"
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM deliveries WHERE state = ? ORDER BY queued_at, message_id",
                (state,),
            ).fetchall()
        return [_delivery(row) for row in rows]

    # --- Inbound mail ----------------------------------------------------------------------

    def record_inbound(
        self,
        mail_from: str,
        outcome: str,
        reason: str,
        node_id: str | None,
        rules: str,
        message_id: str | None,
        now: datetime,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO inbound (received_at, mail_from, node_id, outcome, reason, rules, "
                "message_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_ts(now), mail_from[:320], node_id, outcome, reason, rules, message_id),
            )

    def inbound(self) -> list[InboundRecord]:
        rows = self._db.execute(
            "SELECT received_at, mail_from, node_id, outcome, reason, rules, message_id "
            "FROM inbound ORDER BY id"
        ).fetchall()
        return [
            InboundRecord(
                received_at=_from_ts(str(r[0])),
                mail_from=str(r[1]),
                node_id=None if r[2] is None else str(r[2]),
                outcome=str(r[3]),
                reason=str(r[4]),
                rules=str(r[5]),
                message_id=None if r[6] is None else str(r[6]),
            )
            for r in rows
        ]

    def delivery(self, message_id: str, node_id: str) -> Delivery | None:
        row = self._db.execute(
            "SELECT * FROM deliveries WHERE message_id = ? AND node_id = ?",
            (message_id, node_id),
        ).fetchone()
        return None if row is None else _delivery(row)


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One mail the listener received: who from, what became of it (never its content)."""

    received_at: datetime
    mail_from: str
    node_id: str | None
    outcome: str
    reason: str
    rules: str
    message_id: str | None


def _partner(row: tuple[object, ...]) -> Partner:
    node_id, email, name, organisation, agency, fingerprint, status, enrolled, updated = row
    return Partner(
        node_id=str(node_id),
        email=str(email),
        name=str(name),
        organisation=str(organisation),
        agency_type=str(agency),
        fingerprint=str(fingerprint),
        status="disabled" if status == "disabled" else "active",
        enrolled_at=_from_ts(str(enrolled)),
        updated_at=_from_ts(str(updated)),
    )


def _delivery(row: tuple[object, ...]) -> Delivery:
    message_id, node_id, kind, marking, state, attempts, detail, queued, updated, reminded = row
    return Delivery(
        message_id=str(message_id),
        node_id=str(node_id),
        kind=str(kind),
        marking=str(marking),
        state="sent" if state == "sent" else "failed" if state == "failed" else "pending",
        attempts=int(str(attempts)),
        detail=str(detail),
        queued_at=_from_ts(str(queued)),
        updated_at=_from_ts(str(updated)),
        reminded_at=None if reminded is None else _from_ts(str(reminded)),
    )
