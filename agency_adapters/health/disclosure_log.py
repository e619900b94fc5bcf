"""The health node's local disclosure log: what was shared, with whom, when and why.

REFERENCE.md 3.7 lists what a discloser must record (golden rule 7; DPA 2018 s62(3)):
what was shared and its hash, with whom, for what purpose, when, who decided, the
gateways relied on, the consent position, whether the subject was told and if not why,
and the marking. Each disclosure is one line of a JSON Lines file that is only ever
appended to (mode 0600, fsync after every entry, never rewritten).

Each line is the RFC 8785 canonical JSON of ``{"seq", "prev_sha256", "record",
"sha256"}``: ``sha256`` is the SHA-256 of the canonical form of the other three, and
``prev_sha256`` is the previous line's ``sha256`` (64 zeros for the first). An edited
line no longer matches its own hash, and a removed line breaks the sequence and the
chain, so :meth:`DisclosureLog.verify` names the first bad line. Lines cut from the
*end* leave a shorter valid chain: keep :meth:`DisclosureLog.head` somewhere else (the
hub's message log, a signed audit report) and pass it back as ``anchor``.

No clock is read here: the caller passes the time of disclosure.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import Field, StringConstraints, ValidationError, field_validator, model_validator

from hub.crypto import canonical_json, canonical_sha256
from hub.model import (
    Consent,
    NodeId,
    OpaqueRef,
    Sha256Hex,
    StrictJSONError,
    WireModel,
    loads_strict,
)

__all__ = [
    "GENESIS_SHA256",
    "DisclosureLog",
    "DisclosureLogError",
    "DisclosureLogTampered",
    "DisclosureRecord",
    "LogAnchor",
]

GENESIS_SHA256: Final = "0" * 64

_CodeUpper = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")]
_GatewayId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")]
_CategoryId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
_MessageId = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    ),
]
_LINE_KEYS: Final = frozenset({"seq", "prev_sha256", "record", "sha256"})
_READ_CHUNK: Final = 64 * 1024


class DisclosureRecord(WireModel):
    """One disclosure, as REFERENCE.md 3.7 requires it to be recorded. No names."""

    # When: the time of disclosure, UTC, from the caller's clock.
    disclosed_at: datetime
    # What: the categories, how many resources, and the hash of the exact bytes sent.
    categories: tuple[_CategoryId, ...]
    resource_count: Annotated[int, Field(ge=0)]
    release_sha256: Sha256Hex
    # To whom.
    recipients: Annotated[tuple[NodeId, ...], Field(min_length=1, max_length=64)]
    # About whom: the opaque subject reference, never the NHS number.
    subject_ref: OpaqueRef
    # For what purpose, and on what basis (gateway ids from the registry).
    purpose: _CodeUpper
    gateways: Annotated[tuple[_GatewayId, ...], Field(min_length=1)]
    # Who decided.
    decided_by_role: _CodeUpper
    decided_by_user_ref: OpaqueRef
    # The messages this disclosure answers and is.
    request_id: _MessageId
    decision_id: _MessageId
    release_id: _MessageId
    marking: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    consent: Consent
    subject_informed: bool
    # Why the subject was not told (e.g. TERRORISM_RISK); required when they were not.
    not_informed_reason: _CodeUpper | None = None

    @field_validator("disclosed_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() != timedelta(0):
            raise ValueError("must be a UTC time (ending in Z or +00:00)")
        return value

    @model_validator(mode="after")
    def _reason_when_not_informed(self) -> DisclosureRecord:
        if not self.subject_informed and self.not_informed_reason is None:
            raise ValueError("record why the subject was not informed (not_informed_reason)")
        if self.subject_informed and self.not_informed_reason is not None:
            raise ValueError("not_informed_reason is only for a subject who was not informed")
        return self


class DisclosureLogError(Exception):
    """The log cannot be used safely (loose permissions, a symlink, a torn last line)."""


class DisclosureLogTampered(DisclosureLogError):
    """A line of the log was edited, removed, reordered or cannot be read."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"disclosure log line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LogAnchor:
    """A point in the log: a line number and that line's ``sha256``."""

    line: int
    sha256: str


@dataclass(frozen=True, slots=True)
class _Line:
    seq: int
    prev_sha256: str
    sha256: str
    record: DisclosureRecord


class DisclosureLog:
    """An append-only, hash-chained JSON Lines file of :class:`DisclosureRecord`."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def path(self) -> Path:
        return self._path

    def record(self, entry: DisclosureRecord) -> int:
        """Append ``entry``, fsync it, and return its line number (from 1)."""
        created = not self._path.exists()
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self._path, flags, 0o600)
        except OSError as exc:
            raise DisclosureLogError(f"cannot open the disclosure log {self._path}: {exc}") from exc
        try:
            self._check_mode(os.fstat(fd).st_mode)
            # One writer at a time, across processes: the chain needs the true last line.
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._tail(fd)
            body: dict[str, Any] = {
                "seq": seq + 1,
                "prev_sha256": prev,
                "record": entry.model_dump(mode="json"),
            }
            line = canonical_json({**body, "sha256": canonical_sha256(body)}) + b"\n"
            written = os.write(fd, line)
            if written != len(line):
                raise DisclosureLogError(f"short write to {self._path}; run verify()")
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            # Make the new directory entry durable too.
            dir_fd = os.open(self._path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return seq + 1

    def entries(self) -> list[DisclosureRecord]:
        """Every record in order. Each line is parsed and validated; see :meth:`verify`."""
        return [self._parse(number, raw).record for number, raw in self._lines()]

    def head(self) -> LogAnchor:
        """The last line's number and ``sha256``, after verifying the whole log.

        Keep it somewhere the log's writer cannot change (the hub's message log, a
        signed audit report) and pass it back to :meth:`verify` later.
        """
        return self.verify()

    def verify(self, *, anchor: LogAnchor | None = None) -> LogAnchor:
        """Check every line and the chain; return the head.

        Raises :class:`DisclosureLogTampered` naming the first bad line. With an
        ``anchor`` taken earlier by :meth:`head`, the log must still hold that line with
        that hash, which also catches lines cut from the end.
        """
        prev = GENESIS_SHA256
        count = 0
        for number, raw in self._lines():
            line = self._parse(number, raw)
            if line.seq != number:
                raise DisclosureLogTampered(
                    number,
                    f"holds entry {line.seq} where entry {number} belongs "
                    "(a line was removed, inserted or reordered)",
                )
            if line.prev_sha256 != prev:
                raise DisclosureLogTampered(
                    number, f"does not follow line {number - 1} (the chain is broken)"
                )
            if anchor is not None and number == anchor.line and line.sha256 != anchor.sha256:
                raise DisclosureLogTampered(number, "differs from the anchored entry")
            prev = line.sha256
            count = number
        if anchor is not None and count < anchor.line:
            raise DisclosureLogTampered(
                count + 1,
                f"the log ends after line {count} but the anchor is at line {anchor.line} "
                "(lines were removed from the end)",
            )
        return LogAnchor(line=count, sha256=prev)

    # --- internals -------------------------------------------------------------------

    def _check_mode(self, mode: int) -> None:
        if not stat.S_ISREG(mode):
            raise DisclosureLogError(f"{self._path} is not a regular file")
        if mode & 0o077:
            raise DisclosureLogError(
                f"{self._path} is readable or writable by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); it must be 0600"
            )

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise DisclosureLogError(f"cannot open the disclosure log {self._path}: {exc}") from exc
        with os.fdopen(fd, "rb") as handle:
            self._check_mode(os.fstat(handle.fileno()).st_mode)
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    raise DisclosureLogTampered(number, "is incomplete (no end of line)")
                yield number, raw[:-1]

    @staticmethod
    def _parse(number: int, raw: bytes) -> _Line:
        """One line, checked against its own hash and validated."""
        try:
            doc = loads_strict(raw)
        except StrictJSONError as exc:
            raise DisclosureLogTampered(number, f"is not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or set(doc) != _LINE_KEYS:
            raise DisclosureLogTampered(number, "is not a disclosure log entry")
        body = {key: value for key, value in doc.items() if key != "sha256"}
        if doc["sha256"] != canonical_sha256(body):
            raise DisclosureLogTampered(number, "does not match its own hash (it was edited)")
        seq, prev = doc["seq"], doc["prev_sha256"]
        if type(seq) is not int or not isinstance(prev, str):
            raise DisclosureLogTampered(number, "has a malformed sequence or chain field")
        try:
            record = DisclosureRecord.model_validate_json(canonical_json(doc["record"]))
        except ValidationError as exc:
            raise DisclosureLogTampered(number, f"holds an invalid record: {exc}") from None
        return _Line(seq=seq, prev_sha256=prev, sha256=doc["sha256"], record=record)

    def _tail(self, fd: int) -> tuple[int, str]:
        """(seq, sha256) of the last line, or (0, genesis) for an empty file."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS_SHA256
        end = size - 1  # where the last line's end of line should be
        if os.pread(fd, 1, end) != b"\n":
            raise DisclosureLogError(
                f"{self._path} ends with an incomplete line; run verify() before appending"
            )
        start, searched_to = 0, end
        while searched_to > 0:
            step = min(_READ_CHUNK, searched_to)
            chunk = os.pread(fd, step, searched_to - step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                start = searched_to - step + newline + 1
                break
            searched_to -= step
        # The last line is checked like any other: appending after a damaged line would
        # hide the damage behind a valid-looking link.
        try:
            last = self._parse(0, os.pread(fd, end - start, start))
        except DisclosureLogTampered as exc:
            raise DisclosureLogError(
                f"the last line of {self._path} is damaged ({exc.reason}); run verify()"
            ) from None
        return last.seq, last.sha256
