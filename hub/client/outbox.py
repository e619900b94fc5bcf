"""The node's outbox: the sealed, signed bytes of every message sent but not yet receipted.

**Why.** Sealing a payload draws a fresh content key, so sealing the same draft twice gives
a different envelope. When the hub's answer to a submission is lost (the connection drops
after the hub committed, a proxy times out, the node crashes), sending the draft again
would make new bytes: under the same id the hub refuses them (409, the first message
stands), under a new id the recipients get the message twice. So the client keeps exactly
the bytes it submitted until it holds the hub's verified receipt for them, and every retry
(:class:`hub.client.NodeClient`, in the same call or on a later run) sends those bytes
again; the hub answers an identical resubmission with 200 and the original receipt.

**What is kept**, in ``DIR/outbox/`` (0700), per message:

* ``<message id>.json`` (0600): the request body exactly as submitted, the digest of the
  draft it was sealed from (to recognise the same draft sent again) and when it was kept;
* ``<message id>.ct`` (0600): for a blob payload, its ciphertext as uploaded, so a resend
  can make sure the hub still holds it, and so the sender can keep its own copy.

Both are written to a temporary name, flushed to disk and renamed, the entry file last:
an entry exists only once it is complete, and survives a power cut once :meth:`keep`
returns. Nothing here is plaintext: the payload is ciphertext sealed to the recipients
and the sender. The entry is deleted once the receipt is verified, or once the hub has
refused the message (a refusal is about these bytes: resending them cannot change it).

A caller may rely on: an entry is pending until :meth:`remove`; two processes resending
the same entry at once is harmless (the hub answers both with the one receipt).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hub.model.envelope import UUID7_PATTERN

__all__ = ["Outbox", "OutboxError", "PendingMessage"]

_MESSAGE_ID = re.compile(UUID7_PATTERN)
_ENTRY_VERSION = 1


class OutboxError(Exception):
    """The outbox cannot be read or written safely; the message names the file."""


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """A message submitted (or about to be) whose receipt this node does not yet hold."""

    message_id: str
    body: bytes  # the POST /v1/messages body, byte for byte
    draft_digest: str  # sha256 of the draft it was sealed from (NodeClient.draft_digest)
    kept_at: datetime
    ciphertext: Path | None = None  # a blob payload's ciphertext, as uploaded

    def envelope(self) -> dict[str, object]:
        document: dict[str, object] = json.loads(self.body)
        return document


def _check_id(message_id: str) -> str:
    if not _MESSAGE_ID.match(message_id):
        raise OutboxError(f"{message_id!r} is not a message id (a UUIDv7)")
    return message_id


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: 0600, flushed, then renamed into place."""
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(staged, path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


class Outbox:
    """Pending messages in one folder (module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self) -> Path:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if stat.S_IMODE(self.root.stat().st_mode) & 0o077:
                # Only this node's own pending messages live here: tightened, not refused.
                self.root.chmod(0o700)
        except OSError as exc:
            raise OutboxError(f"cannot use the outbox {self.root}: {exc.strerror}") from exc
        return self.root

    def _sync_folder(self) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def keep(
        self,
        message_id: str,
        body: bytes,
        *,
        draft_digest: str,
        ciphertext: Path | None = None,
        kept_at: datetime | None = None,
    ) -> PendingMessage:
        """Keep a message before it is first submitted; a blob's ``ciphertext`` file is
        moved in (renamed: the node folder's spool is on the same file system)."""
        folder = self._folder()
        _check_id(message_id)
        kept_ciphertext = None
        if ciphertext is not None:
            kept_ciphertext = folder / f"{message_id}.ct"
            fd = os.open(ciphertext, os.O_RDONLY)
            try:
                os.fsync(fd)  # on disk before the entry that names it
            finally:
                os.close(fd)
            os.chmod(ciphertext, 0o600)
            # A rename when the spool is on the same file system (the node folder's is).
            shutil.move(ciphertext, kept_ciphertext)
        moment = kept_at or datetime.now(UTC)
        entry = {
            "version": _ENTRY_VERSION,
            "message_id": message_id,
            "draft_digest": draft_digest,
            "kept_at": moment.isoformat(),
            # base64: the bytes come back exactly, whatever JSON spelling they use.
            "body": base64.b64encode(body).decode("ascii"),
            "ciphertext": kept_ciphertext is not None,
        }
        _write_private(folder / f"{message_id}.json", json.dumps(entry).encode())
        self._sync_folder()
        return PendingMessage(
            message_id=message_id,
            body=body,
            draft_digest=draft_digest,
            kept_at=moment,
            ciphertext=kept_ciphertext,
        )

    def get(self, message_id: str) -> PendingMessage | None:
        path = self.root / f"{_check_id(message_id)}.json"
        if not path.exists():
            return None
        return self._read(path)

    def _read(self, path: Path) -> PendingMessage:
        try:
            entry = json.loads(path.read_bytes())
            if entry.get("version") != _ENTRY_VERSION:
                raise OutboxError(f"{path} has an unknown version {entry.get('version')!r}")
            message_id = _check_id(entry["message_id"])
            if path.name != f"{message_id}.json":
                raise OutboxError(f"{path} holds message {message_id}, not its own")
            ciphertext = self.root / f"{message_id}.ct" if entry["ciphertext"] else None
            return PendingMessage(
                message_id=message_id,
                body=base64.b64decode(entry["body"], validate=True),
                draft_digest=str(entry["draft_digest"]),
                kept_at=datetime.fromisoformat(entry["kept_at"]),
                ciphertext=ciphertext,
            )
        except OutboxError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OutboxError(f"the outbox entry {path} cannot be read: {exc}") from exc

    def pending(self) -> list[PendingMessage]:
        """Every pending message, oldest first."""
        if not self.root.exists():
            return []
        entries = [self._read(path) for path in self.root.glob("*.json")]
        return sorted(entries, key=lambda p: (p.kept_at, p.message_id))

    def find_draft(self, draft_digest: str) -> PendingMessage | None:
        """The pending message sealed from this very draft, if there is one."""
        for pending in self.pending():
            if pending.draft_digest == draft_digest:
                return pending
        return None

    def remove(self, message_id: str) -> None:
        """Forget a message: receipted, refused, or given up by the user."""
        _check_id(message_id)
        (self.root / f"{message_id}.json").unlink(missing_ok=True)
        (self.root / f"{message_id}.ct").unlink(missing_ok=True)
