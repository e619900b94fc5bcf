"""The node console's people: accounts, sign-in, lockout, sessions and CSRF tokens.

**What is stored** (tables prefixed ``console_`` in the node database,
``DIR/state/node.sqlite3``, 0600): per person an opaque ``user_ref`` (the ``author.user_ref``
of every envelope they sign; the hub never learns their name), a username, a display name,
roles, vetting level and an Argon2id password hash (:mod:`hub.crypto.passwords`). For a
session only the SHA-256 of its token is kept, never the token: whoever reads the file (a
backup, a stolen disk) cannot act as anyone signed in. The CSRF token is kept as is, since
pages must render it and it is worthless without the session cookie.

**Signing in.** :meth:`UserStore.authenticate` refuses an unknown username, a wrong password,
a disabled account and a locked one with the same :class:`SignInRefused` and the same public
message, in about the same time (an unknown name is checked against a dummy hash at the same
cost), so the page cannot tell anyone which names exist (STYLE rule 6). The exception's
private ``reason`` is for the node's log, never for the page.

**Lockout.** ``max_failures`` failed attempts on one username within ``failure_window`` lock
that username for ``lockout``; a success clears its count. Failures are counted per
username, known or not (so lockout does not reveal which names exist), rather than per
address: an attacker guessing one person's password from many addresses would never trip
a per-address limit. The cost is that anyone can lock a person out for ``lockout``; a node
administrator lifts it early with :meth:`UserStore.enable_user`. Per-address throttling,
if wanted, belongs in front of the console.

**Sessions.** :meth:`UserStore.start_session` makes a new random token on every sign-in
(and ends the one it replaces), so a token planted before sign-in never becomes a signed-in
one (session fixation, OWASP Session Management Cheat Sheet). :meth:`UserStore.session`
ends a session idle for ``idle_timeout`` or older than ``absolute_timeout``, or whose person
has since been disabled, and otherwise marks it seen. Disabling a person or changing their
password ends all their sessions.

**CSRF.** Each session has its own random CSRF token (the synchronizer token pattern);
every form posts it back and :func:`check_csrf` compares it in constant time.

All times come from the injected clock. The store is synchronous; password hashing takes
most of a second at the production cost, so a web handler calls :meth:`authenticate`,
:meth:`add_user` and :meth:`set_password` in an executor. One lock serialises use of the
connection across threads; hashing happens outside it.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, cast, get_args

from agency_adapters.node.database import immediate_transaction, open_node_database
from hub.crypto import (
    KdfStrength,
    hash_password,
    new_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)
from hub.model import Author, AuthorRole

__all__ = [
    "CONSOLE_ROLES",
    "NODE_ADMIN",
    "ROLE_LABELS",
    "SIGN_IN_REFUSED_MESSAGE",
    "VETTING_LEVELS",
    "Session",
    "SessionTicket",
    "SignInRefused",
    "SignInSettings",
    "SignInSettingsError",
    "User",
    "UserError",
    "UserStore",
    "check_csrf",
]

log = logging.getLogger("agency_adapters.node.users")

NODE_ADMIN: Final = "NODE_ADMIN"
AUTHOR_ROLES: Final[tuple[str, ...]] = get_args(AuthorRole)
# Every role a console account may hold: the envelope author roles the policy engine checks
# (schemas/registry/roles.yaml), plus NODE_ADMIN, which manages accounts and reads the
# access log and never authors an envelope.
CONSOLE_ROLES: Final[tuple[str, ...]] = (*AUTHOR_ROLES, NODE_ADMIN)
ROLE_LABELS: Final[dict[str, str]] = {
    "REFERRER": "Referrer (a practitioner raising a concern)",
    "SAFEGUARDING_LEAD": "Safeguarding lead",
    "CALDICOTT_GUARDIAN": "Caldicott Guardian",
    "IG_LEAD": "Information governance lead",
    "DPO": "Data protection officer",
    "PREVENT_POLICE_OFFICER": "Police Prevent officer",
    "CHANNEL_CHAIR": "Channel panel chair",
    "CHANNEL_COORDINATOR": "Channel coordinator",
    "PANEL_MEMBER": "Channel panel member",
    "INTERVENTION_PROVIDER": "Intervention provider",
    "AUDITOR": "Auditor",
    NODE_ADMIN: "Node administrator (manages console users; never a message author)",
}
Vetting = Literal["BPSS", "CTC", "SC", "ESC", "DV", "EDV", "AC"]
VETTING_LEVELS: Final[tuple[str, ...]] = get_args(Vetting)

# One public message for every refusal: it must not say which part was wrong.
SIGN_IN_REFUSED_MESSAGE: Final = (
    "The username or password is not right, or the account cannot sign in at the moment. "
    "Try again, or ask your node administrator."
)

_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH: Final = 12
# Long enough for any passphrase (NIST SP 800-63B asks for at least 64), short enough that
# nobody makes the server hash megabytes.
MAX_PASSWORD_LENGTH: Final = 1024
_MAX_DISPLAY_NAME = 100


class UserError(ValueError):
    """An account request is invalid; the message names the field and never holds a password."""


class SignInSettingsError(ValueError):
    """A sign-in setting is out of range; the message names the key."""


class SignInRefused(Exception):
    """Sign-in refused. ``str()`` is the one public message; ``reason`` is for the log only."""

    public_message: Final = SIGN_IN_REFUSED_MESSAGE

    def __init__(self, reason: str, *, remote: str) -> None:
        super().__init__(SIGN_IN_REFUSED_MESSAGE)
        self.reason = reason
        self.remote = remote


@dataclass(frozen=True, slots=True)
class SignInSettings:
    """Session and lockout limits, and the password hashing cost (production: MODERATE)."""

    idle_timeout: timedelta = timedelta(minutes=15)
    absolute_timeout: timedelta = timedelta(hours=8)
    max_failures: int = 5
    failure_window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)
    password_strength: KdfStrength = field(default_factory=KdfStrength.moderate)

    def __post_init__(self) -> None:
        for key in ("idle_timeout", "absolute_timeout", "failure_window", "lockout"):
            value = getattr(self, key)
            if not isinstance(value, timedelta):
                raise SignInSettingsError(f"{key}: must be a duration")
            if value <= timedelta(0):
                raise SignInSettingsError(f"{key}: must be positive, got {value}")
        if isinstance(self.max_failures, bool) or not isinstance(self.max_failures, int):
            raise SignInSettingsError("max_failures: must be a whole number")
        if self.max_failures < 1:
            raise SignInSettingsError(f"max_failures: must be at least 1, got {self.max_failures}")
        if self.idle_timeout > self.absolute_timeout:
            raise SignInSettingsError(
                f"idle_timeout: must not exceed absolute_timeout ({self.absolute_timeout}), "
                f"got {self.idle_timeout}"
            )


@dataclass(frozen=True, slots=True)
class User:
    """A console account. ``user_ref`` is what envelopes carry; the name stays at the node."""

    user_ref: str
    username: str
    display_name: str
    roles: frozenset[str]
    vetting: Vetting
    disabled: bool
    created_at: datetime

    def author(self, role: str) -> Author:
        """The envelope author this person is when acting in ``role``."""
        if role == NODE_ADMIN:
            raise UserError("role: NODE_ADMIN manages the console and never authors a message")
        if role not in self.roles:
            raise UserError(f"role: {self.username} does not hold the role {role}")
        return Author.model_validate(
            {"user_ref": self.user_ref, "role": role, "vetting": self.vetting}
        )

    @property
    def author_roles(self) -> tuple[str, ...]:
        """The roles this person may sign envelopes in, in registry order."""
        return tuple(role for role in AUTHOR_ROLES if role in self.roles)

    @property
    def is_admin(self) -> bool:
        return NODE_ADMIN in self.roles


@dataclass(frozen=True, slots=True)
class SessionTicket:
    """What the console sets as the cookie, once. ``expires_at`` is the absolute limit."""

    token: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    """A live session, as found by its token. ``expires_at`` is when it ends if left idle."""

    user: User
    csrf_token: str = field(repr=False)
    started_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def check_csrf(session: Session, submitted: str | None) -> bool:
    """Whether a form's CSRF token is this session's, compared in constant time."""
    if not submitted:
        return False
    return hmac.compare_digest(session.csrf_token.encode(), submitted.encode("utf-8"))


def _timestamp(moment: datetime) -> str:
    # One fixed-width UTC spelling, so the text columns compare in time order in SQL.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_users (
    user_ref TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    vetting TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sign_in_failures (
    username TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sign_in_failures_by_name
    ON console_sign_in_failures (username, failed_at);
CREATE TABLE IF NOT EXISTS console_lockouts (
    username TEXT PRIMARY KEY,
    locked_until TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_sha256 TEXT PRIMARY KEY,
    user_ref TEXT NOT NULL REFERENCES console_users (user_ref),
    csrf_token TEXT NOT NULL,
    started_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_by_user ON console_sessions (user_ref);
"""

_USER_COLUMNS = "user_ref, username, display_name, roles, vetting, disabled, created_at"
_SESSION_BY_DIGEST = (
    "SELECT s.csrf_token, s.started_at, s.last_seen_at, "  # noqa: S608  # constant columns, no input
    + ", ".join(f"u.{column}" for column in _USER_COLUMNS.split(", "))
    + " FROM console_sessions s JOIN console_users u ON u.user_ref = s.user_ref"
    " WHERE s.token_sha256 = ?"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise UserError(
            "username: 3 to 64 characters, lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter"
        )
    return username


def _check_display_name(display_name: str) -> str:
    name = display_name.strip() if isinstance(display_name, str) else ""
    if not name:
        raise UserError("display_name: must not be empty")
    if len(name) > _MAX_DISPLAY_NAME:
        raise UserError(f"display_name: at most {_MAX_DISPLAY_NAME} characters")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise UserError("display_name: must not contain control characters")
    return name


def _check_roles(roles: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(roles)
    if not chosen:
        raise UserError("roles: give at least one role")
    unknown = sorted(chosen - set(CONSOLE_ROLES))
    if unknown:
        raise UserError(
            f"roles: unknown role(s) {', '.join(unknown)}; known: {', '.join(CONSOLE_ROLES)}"
        )
    return chosen


def _check_vetting(vetting: str) -> Vetting:
    if vetting in VETTING_LEVELS:
        return cast(Vetting, vetting)
    raise UserError(f"vetting: must be one of {', '.join(VETTING_LEVELS)}, got {vetting!r}")


def _check_password(password: str, username: str) -> str:
    if not isinstance(password, str):
        raise UserError("password: must be text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password: must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"password: must be at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip().casefold() == username.casefold():
        raise UserError("password: must not be the username")
    return password


class UserStore:
    """Console accounts and sessions in the node database; see the module docstring."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        clock: Callable[[], datetime] = _utc_now,
        settings: SignInSettings | None = None,
    ) -> None:
        self._db = connection
        self._clock = clock
        self.settings = settings or SignInSettings()
        self._lock = threading.RLock()
        self._dummy_hash: str | None = None
        with self._lock:
            self._db.executescript(_SCHEMA)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], datetime] = _utc_now,
        settings: SignInSettings | None = None,
    ) -> UserStore:
        """Open the node database at ``path`` (see :func:`open_node_database`)."""
        return cls(open_node_database(path), clock=clock, settings=settings)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> UserStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing ---

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() != timedelta(0):
            raise ValueError("the clock must return an aware UTC datetime")
        return now

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, immediate_transaction(self._db) as db:
            yield db

    def _row_user(self, row: tuple[str, str, str, str, str, int, str]) -> User:
        user_ref, username, display_name, roles, vetting, disabled, created_at = row
        return User(
            user_ref=user_ref,
            username=username,
            display_name=display_name,
            roles=frozenset(json.loads(roles)),
            vetting=_check_vetting(vetting),
            disabled=bool(disabled),
            created_at=_moment(created_at),
        )

    def _find(self, username: str) -> tuple[User, str] | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_USER_COLUMNS}, password_hash FROM console_users WHERE username = ?",  # noqa: S608  # a constant column list, no input
                (username,),
            ).fetchone()
        if row is None:
            return None
        return self._row_user(row[:7]), row[7]

    def _require(self, username: str) -> User:
        found = self._find(username)
        if found is None:
            raise UserError(f"username: no account {username!r}")
        return found[0]

    def _hash(self, password: str) -> str:
        return hash_password(password, strength=self.settings.password_strength)

    # --- accounts ---

    def add_user(
        self,
        username: str,
        display_name: str,
        roles: Iterable[str],
        vetting: str,
        password: str,
    ) -> User:
        """Create an account; every field is checked before anything is written."""
        username = _check_username(username)
        user = User(
            user_ref=f"usr-{secrets.token_hex(6)}",
            username=username,
            display_name=_check_display_name(display_name),
            roles=_check_roles(roles),
            vetting=_check_vetting(vetting),
            disabled=False,
            created_at=self._now(),
        )
        password_hash = self._hash(_check_password(password, username))
        try:
            with self._write() as db:
                db.execute(
                    f"INSERT INTO console_users ({_USER_COLUMNS}, password_hash) "  # noqa: S608  # a constant column list, no input
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        user.user_ref,
                        user.username,
                        user.display_name,
                        json.dumps(sorted(user.roles)),
                        user.vetting,
                        0,
                        _timestamp(user.created_at),
                        password_hash,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise UserError(f"username: {username!r} is already taken") from exc
        log.info("console account %s created", user.user_ref)
        return user

    def list_users(self) -> list[User]:
        """Every account, by username."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_USER_COLUMNS} FROM console_users ORDER BY username"  # noqa: S608  # a constant column list, no input
            ).fetchall()
        return [self._row_user(row) for row in rows]

    def get_user(self, username: str) -> User | None:
        found = self._find(username)
        return None if found is None else found[0]

    def get_user_by_ref(self, user_ref: str) -> User | None:
        """The account an envelope's ``author.user_ref`` names (for the access log)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_USER_COLUMNS} FROM console_users WHERE user_ref = ?",  # noqa: S608  # a constant column list, no input
                (user_ref,),
            ).fetchone()
        return None if row is None else self._row_user(row)

    def disable_user(self, username: str) -> User:
        """Stop an account signing in and end its sessions. Its ``user_ref`` stays reserved."""
        user = self._require(username)
        with self._write() as db:
            db.execute("UPDATE console_users SET disabled = 1 WHERE user_ref = ?", (user.user_ref,))
            db.execute("DELETE FROM console_sessions WHERE user_ref = ?", (user.user_ref,))
        log.info("console account %s disabled; its sessions ended", user.user_ref)
        return self._require(username)

    def enable_user(self, username: str) -> User:
        """Let an account sign in again, lifting any lockout and clearing its failures."""
        user = self._require(username)
        with self._write() as db:
            db.execute("UPDATE console_users SET disabled = 0 WHERE user_ref = ?", (user.user_ref,))
            self._clear_failures(db, username)
        log.info("console account %s enabled", user.user_ref)
        return self._require(username)

    def set_password(self, username: str, password: str) -> None:
        """Replace a password; ends the account's sessions and lifts any lockout."""
        user = self._require(username)
        password_hash = self._hash(_check_password(password, username))
        with self._write() as db:
            db.execute(
                "UPDATE console_users SET password_hash = ? WHERE user_ref = ?",
                (password_hash, user.user_ref),
            )
            db.execute("DELETE FROM console_sessions WHERE user_ref = ?", (user.user_ref,))
            self._clear_failures(db, username)
        log.info("console account %s has a new password; its sessions ended", user.user_ref)

    def locked_until(self, username: str) -> datetime | None:
        """When a lockout on ``username`` ends, or None when it is not locked now."""
        with self._lock:
            row = self._db.execute(
                "SELECT locked_until FROM console_lockouts WHERE username = ?", (username,)
            ).fetchone()
        if row is None:
            return None
        until = _moment(row[0])
        return until if until > self._now() else None

    # --- signing in ---

    def _dummy(self) -> str:
        # Made once per store at the store's cost, from a password nobody knows.
        if self._dummy_hash is None:
            self._dummy_hash = self._hash(new_token())
        return self._dummy_hash

    @staticmethod
    def _clear_failures(db: sqlite3.Connection, username: str) -> None:
        db.execute("DELETE FROM console_sign_in_failures WHERE username = ?", (username,))
        db.execute("DELETE FROM console_lockouts WHERE username = ?", (username,))

    def _record_failure(self, username: str, now: datetime) -> None:
        window_start = _timestamp(now - self.settings.failure_window)
        with self._write() as db:
            # Failures older than the window no longer count for anyone: drop them.
            db.execute("DELETE FROM console_sign_in_failures WHERE failed_at <= ?", (window_start,))
            db.execute("DELETE FROM console_lockouts WHERE locked_until <= ?", (_timestamp(now),))
            db.execute(
                "INSERT INTO console_sign_in_failures (username, failed_at) VALUES (?, ?)",
                (username, _timestamp(now)),
            )
            (count,) = db.execute(
                "SELECT count(*) FROM console_sign_in_failures WHERE username = ?", (username,)
            ).fetchone()
            if count >= self.settings.max_failures:
                db.execute(
                    "INSERT OR REPLACE INTO console_lockouts (username, locked_until) "
                    "VALUES (?, ?)",
                    (username, _timestamp(now + self.settings.lockout)),
                )
                # The count starts again once the lockout ends.
                db.execute("DELETE FROM console_sign_in_failures WHERE username = ?", (username,))

    def authenticate(self, username: str, password: str, *, remote: str) -> User:
        """The account ``username`` and ``password`` sign in to, or :class:`SignInRefused`.

        ``remote`` (the client address) travels on the exception for the caller's log.
        """
        now = self._now()
        name = username.strip().lower() if isinstance(username, str) else ""
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            password = ""
        if not _USERNAME.match(name):
            verify_password(self._dummy(), password)
            raise SignInRefused("malformed username", remote=remote)
        if self.locked_until(name) is not None:
            verify_password(self._dummy(), password)
            raise SignInRefused("locked", remote=remote)
        found = self._find(name)
        if found is None:
            verify_password(self._dummy(), password)
            self._record_failure(name, now)
            raise SignInRefused("unknown username", remote=remote)
        user, stored = found
        if not verify_password(stored, password):
            self._record_failure(name, now)
            raise SignInRefused("wrong password", remote=remote)
        if user.disabled:
            raise SignInRefused("disabled", remote=remote)
        rehash = password_needs_rehash(stored, strength=self.settings.password_strength)
        new_hash = self._hash(password) if rehash else None
        with self._write() as db:
            self._clear_failures(db, name)
            if new_hash is not None:
                db.execute(
                    "UPDATE console_users SET password_hash = ? WHERE user_ref = ? "
                    "AND password_hash = ?",
                    (new_hash, user.user_ref, stored),
                )
        return user

    # --- sessions ---

    def start_session(self, user: User, *, replacing: str | None = None) -> SessionTicket:
        """A new session for ``user`` (just authenticated), ending ``replacing`` if given."""
        now = self._now()
        token, csrf_token = new_token(), new_token()
        with self._write() as db:
            row = db.execute(
                "SELECT disabled FROM console_users WHERE user_ref = ?", (user.user_ref,)
            ).fetchone()
            if row is None or row[0]:
                raise UserError(f"username: {user.username} cannot sign in (disabled or gone)")
            if replacing is not None:
                db.execute(
                    "DELETE FROM console_sessions WHERE token_sha256 = ?",
                    (token_digest(replacing),),
                )
            self._prune_sessions(db, now)
            db.execute(
                "INSERT INTO console_sessions "
                "(token_sha256, user_ref, csrf_token, started_at, last_seen_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (token_digest(token), user.user_ref, csrf_token, _timestamp(now), _timestamp(now)),
            )
        return SessionTicket(
            token=token,
            csrf_token=csrf_token,
            expires_at=now + self.settings.absolute_timeout,
        )

    def _prune_sessions(self, db: sqlite3.Connection, now: datetime) -> None:
        db.execute(
            "DELETE FROM console_sessions WHERE last_seen_at <= ? OR started_at <= ?",
            (
                _timestamp(now - self.settings.idle_timeout),
                _timestamp(now - self.settings.absolute_timeout),
            ),
        )

    def session(self, token: str | None) -> Session | None:
        """The live session ``token`` belongs to, marked seen now; None if none or expired."""
        if not token:
            return None
        now = self._now()
        digest = token_digest(token)
        with self._write() as db:
            row = db.execute(
                _SESSION_BY_DIGEST,
                (digest,),
            ).fetchone()
            if row is None:
                return None
            csrf_token, started_text, last_seen_text = row[:3]
            user = self._row_user(row[3:])
            started_at, last_seen_at = _moment(started_text), _moment(last_seen_text)
            if (
                user.disabled
                or now - last_seen_at >= self.settings.idle_timeout
                or now - started_at >= self.settings.absolute_timeout
            ):
                db.execute("DELETE FROM console_sessions WHERE token_sha256 = ?", (digest,))
                return None
            db.execute(
                "UPDATE console_sessions SET last_seen_at = ? WHERE token_sha256 = ?",
                (_timestamp(now), digest),
            )
        return Session(
            user=user,
            csrf_token=csrf_token,
            started_at=started_at,
            last_seen_at=now,
            expires_at=min(
                now + self.settings.idle_timeout, started_at + self.settings.absolute_timeout
            ),
        )

    def end_session(self, token: str) -> bool:
        """Sign out: end the session ``token`` names. False if there was none."""
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM console_sessions WHERE token_sha256 = ?", (token_digest(token),)
            )
        return cursor.rowcount > 0

    def end_sessions_for(self, username: str) -> int:
        """End every session of ``username``; how many there were."""
        user = self._require(username)
        with self._write() as db:
            cursor = db.execute("DELETE FROM console_sessions WHERE user_ref = ?", (user.user_ref,))
        return cursor.rowcount
