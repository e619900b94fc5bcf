"""Console accounts, sign-in, lockout, sessions and CSRF (agency_adapters/node/users.py)."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agency_adapters.node.database import (
    NodeDatabaseError,
    immediate_transaction,
    node_database_path,
    open_node_database,
)
from agency_adapters.node.users import (
    CONSOLE_ROLES,
    NODE_ADMIN,
    ROLE_LABELS,
    SIGN_IN_REFUSED_MESSAGE,
    Session,
    SignInRefused,
    SignInSettings,
    SignInSettingsError,
    User,
    UserError,
    UserStore,
    check_csrf,
)
from hub.crypto import KdfStrength, token_digest, verify_password
from hub.model import Author, AuthorRole

PASSWORD = "a long synthetic passphrase"
OTHER_PASSWORD = "another long passphrase"
FAST = SignInSettings(password_strength=KdfStrength.insecure_minimum())


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return node_database_path(tmp_path / "node")


@pytest.fixture
def store(db_path: Path, clock: Clock) -> Iterator[UserStore]:
    with UserStore.open(db_path, clock=clock, settings=FAST) as opened:
        yield opened


def add_alice(store: UserStore, **overrides: object) -> User:
    fields: dict[str, object] = {
        "username": "alice",
        "display_name": "Alice Example",
        "roles": ["SAFEGUARDING_LEAD", "REFERRER"],
        "vetting": "SC",
        "password": PASSWORD,
    }
    fields.update(overrides)
    return store.add_user(**fields)  # type: ignore[arg-type]


def refusal(store: UserStore, username: str, password: str) -> SignInRefused:
    with pytest.raises(SignInRefused) as caught:
        store.authenticate(username, password, remote="192.0.2.10")
    assert str(caught.value) == SIGN_IN_REFUSED_MESSAGE
    assert caught.value.remote == "192.0.2.10"
    return caught.value


# --- roles and users ---


def test_console_roles_are_the_author_roles_plus_node_admin() -> None:
    from typing import get_args

    assert (*get_args(AuthorRole), NODE_ADMIN) == CONSOLE_ROLES
    assert set(ROLE_LABELS) == set(CONSOLE_ROLES)
    assert all(label and label[0].isupper() for label in ROLE_LABELS.values())


def test_add_and_read_back(store: UserStore, clock: Clock) -> None:
    alice = add_alice(store)
    assert alice.username == "alice"
    assert alice.display_name == "Alice Example"
    assert alice.roles == frozenset({"SAFEGUARDING_LEAD", "REFERRER"})
    assert alice.vetting == "SC"
    assert not alice.disabled
    assert alice.created_at == clock.now
    assert alice.user_ref.startswith("usr-")
    assert len(alice.user_ref) == 16
    assert "alice" not in alice.user_ref
    assert store.get_user("alice") == alice
    assert store.get_user_by_ref(alice.user_ref) == alice
    assert store.get_user("nobody") is None
    bob = store.add_user("bob", "Bob Example", [NODE_ADMIN], "BPSS", OTHER_PASSWORD)
    assert [user.username for user in store.list_users()] == ["alice", "bob"]
    assert bob.is_admin
    assert not alice.is_admin
    assert alice.user_ref != bob.user_ref


def test_author_is_the_envelope_author_without_a_name(store: UserStore) -> None:
    alice = add_alice(store)
    author = alice.author("SAFEGUARDING_LEAD")
    assert author == Author(user_ref=alice.user_ref, role="SAFEGUARDING_LEAD", vetting="SC")
    assert "Alice" not in author.model_dump_json()
    assert alice.author_roles == ("REFERRER", "SAFEGUARDING_LEAD")


def test_author_refuses_a_role_not_held_and_node_admin(store: UserStore) -> None:
    alice = add_alice(store, roles=["REFERRER", NODE_ADMIN])
    with pytest.raises(UserError, match="role: alice does not hold the role AUDITOR"):
        alice.author("AUDITOR")
    with pytest.raises(UserError, match=r"role: NODE_ADMIN .* never authors"):
        alice.author(NODE_ADMIN)
    assert alice.author_roles == ("REFERRER",)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"username": "Al"}, "^username: 3 to 64"),
        ({"username": "Alice"}, "^username:"),
        ({"username": "9lives"}, "^username:"),
        ({"username": "al ice"}, "^username:"),
        ({"display_name": "  "}, "^display_name: must not be empty"),
        ({"display_name": "x" * 101}, "^display_name: at most 100"),
        ({"display_name": "Alice\nExample"}, "^display_name: must not contain control"),
        ({"roles": []}, "^roles: give at least one role"),
        ({"roles": ["REFERRER", "WIZARD"]}, "^roles: unknown role\\(s\\) WIZARD"),
        ({"vetting": "TOP"}, "^vetting: must be one of BPSS"),
        ({"password": "short pass"}, "^password: must be at least 12 characters"),
        ({"password": "x" * 1025}, "^password: must be at most 1024"),
        ({"username": "alice.example", "password": "Alice.Example"}, "^password: must not be"),
    ],
)
def test_invalid_accounts_are_refused_naming_the_field(
    store: UserStore, db_path: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(UserError, match=message) as caught:
        add_alice(store, **overrides)
    password = overrides.get("password")
    if isinstance(password, str):
        assert password not in str(caught.value)
    assert store.list_users() == []


def test_a_username_is_taken_once(store: UserStore) -> None:
    add_alice(store)
    with pytest.raises(UserError, match=r"^username: 'alice' is already taken"):
        add_alice(store, display_name="Another Alice")
    assert len(store.list_users()) == 1


def test_unknown_account_operations_name_the_username(store: UserStore) -> None:
    for operation in (store.disable_user, store.enable_user, store.end_sessions_for):
        with pytest.raises(UserError, match=r"^username: no account 'ghost'"):
            operation("ghost")
    with pytest.raises(UserError, match=r"^username: no account 'ghost'"):
        store.set_password("ghost", PASSWORD)


# --- the database file ---


def test_database_file_and_folder_are_owner_only(store: UserStore, db_path: Path) -> None:
    add_alice(store)
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
    sidecars = sorted(path.name for path in db_path.parent.glob("node.sqlite3-*"))
    assert sidecars == ["node.sqlite3-shm", "node.sqlite3-wal"]  # WAL, while open
    for name in sidecars:
        assert stat.S_IMODE((db_path.parent / name).stat().st_mode) == 0o600
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_existing_loose_state_folder_is_tightened(tmp_path: Path) -> None:
    state = tmp_path / "node" / "state"
    state.mkdir(parents=True, mode=0o755)
    state.chmod(0o755)
    open_node_database(state / "node.sqlite3").close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_a_database_readable_by_others_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True, mode=0o700)
    db_path.touch()
    db_path.chmod(0o644)
    with pytest.raises(NodeDatabaseError, match=r"readable or writable by others.*chmod 600"):
        UserStore.open(db_path)


def test_only_console_tables_are_created_and_others_are_left_alone(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(db_path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    with sqlite3.connect(db_path) as raw:
        raw.execute("CREATE TABLE messages_inbox (id INTEGER PRIMARY KEY, body BLOB)")
        raw.execute("INSERT INTO messages_inbox (body) VALUES (x'00')")
    raw.close()
    with UserStore.open(db_path, settings=FAST) as store:
        add_alice(store)
    with UserStore.open(db_path, settings=FAST) as store:  # reopening is harmless
        assert store.get_user("alice") is not None
    with sqlite3.connect(db_path) as raw:
        tables = {
            row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert raw.execute("SELECT count(*) FROM messages_inbox").fetchone()[0] == 1
    raw.close()
    assert tables - {"messages_inbox"} == {
        "console_users",
        "console_sign_in_failures",
        "console_lockouts",
        "console_sessions",
    }


# --- signing in ---


def test_sign_in_with_the_right_password(store: UserStore) -> None:
    alice = add_alice(store)
    assert store.authenticate("alice", PASSWORD, remote="192.0.2.10") == alice
    assert store.authenticate(" Alice ", PASSWORD, remote="192.0.2.10") == alice


def test_every_refusal_looks_the_same(store: UserStore) -> None:
    add_alice(store)
    store.add_user("carol", "Carol Example", ["AUDITOR"], "BPSS", OTHER_PASSWORD)
    store.disable_user("carol")
    reasons = [
        refusal(store, "alice", "wrong password here").reason,
        refusal(store, "nobody", PASSWORD).reason,
        refusal(store, "carol", OTHER_PASSWORD).reason,
        refusal(store, "", PASSWORD).reason,
    ]
    assert reasons == ["wrong password", "unknown username", "disabled", "malformed username"]


def test_password_is_checked_as_stored_argon2id(store: UserStore, db_path: Path) -> None:
    add_alice(store)
    with sqlite3.connect(db_path) as raw:
        (stored,) = raw.execute("SELECT password_hash FROM console_users").fetchone()
    raw.close()
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, PASSWORD)
    assert PASSWORD.encode() not in db_path.read_bytes()


def test_lockout_after_max_failures_and_unlock_after_the_period(
    store: UserStore, clock: Clock
) -> None:
    add_alice(store)
    for _ in range(FAST.max_failures - 1):
        refusal(store, "alice", "wrong password here")
        clock.advance(seconds=30)
    # One below the limit: the right password still works and resets the count.
    store.authenticate("alice", PASSWORD, remote="192.0.2.10")
    for _ in range(FAST.max_failures):
        assert refusal(store, "alice", "wrong password here").reason == "wrong password"
    assert store.locked_until("alice") == clock.now + FAST.lockout
    assert refusal(store, "alice", PASSWORD).reason == "locked"
    clock.advance(minutes=14, seconds=59)
    assert refusal(store, "alice", PASSWORD).reason == "locked"
    clock.advance(seconds=1)
    assert store.locked_until("alice") is None
    assert store.authenticate("alice", PASSWORD, remote="192.0.2.10").username == "alice"


def test_failures_outside_the_window_do_not_count(store: UserStore, clock: Clock) -> None:
    add_alice(store)
    for _ in range(FAST.max_failures - 1):
        refusal(store, "alice", "wrong password here")
    clock.advance(minutes=15, seconds=1)
    refusal(store, "alice", "wrong password here")
    assert store.locked_until("alice") is None
    assert store.authenticate("alice", PASSWORD, remote="192.0.2.10").username == "alice"


def test_lockout_is_per_username_and_applies_to_unknown_names(store: UserStore) -> None:
    add_alice(store)
    store.add_user("bob", "Bob Example", ["AUDITOR"], "BPSS", OTHER_PASSWORD)
    for _ in range(FAST.max_failures):
        refusal(store, "alice", "wrong password here")
        refusal(store, "mallory", "wrong password here")
    assert store.locked_until("alice") is not None
    assert store.locked_until("mallory") is not None
    assert refusal(store, "mallory", "wrong password here").reason == "locked"
    assert store.authenticate("bob", OTHER_PASSWORD, remote="192.0.2.10").username == "bob"


def test_enable_and_a_new_password_lift_a_lockout(store: UserStore) -> None:
    add_alice(store)
    for _ in range(FAST.max_failures):
        refusal(store, "alice", "wrong password here")
    store.enable_user("alice")
    assert store.authenticate("alice", PASSWORD, remote="192.0.2.10").username == "alice"
    for _ in range(FAST.max_failures):
        refusal(store, "alice", "wrong password here")
    store.set_password("alice", OTHER_PASSWORD)
    refusal(store, "alice", PASSWORD)
    assert store.authenticate("alice", OTHER_PASSWORD, remote="192.0.2.10").username == "alice"


def test_disabled_then_enabled(store: UserStore) -> None:
    add_alice(store)
    assert store.disable_user("alice").disabled
    assert refusal(store, "alice", PASSWORD).reason == "disabled"
    assert not store.enable_user("alice").disabled
    store.authenticate("alice", PASSWORD, remote="192.0.2.10")


def test_a_hash_at_an_old_cost_is_replaced_on_sign_in(db_path: Path, clock: Clock) -> None:
    with UserStore.open(db_path, clock=clock, settings=FAST) as store:
        add_alice(store)
    stronger = replace(FAST, password_strength=KdfStrength.interactive())
    with UserStore.open(db_path, clock=clock, settings=stronger) as store:
        store.authenticate("alice", PASSWORD, remote="192.0.2.10")
    with sqlite3.connect(db_path) as raw:
        (stored,) = raw.execute("SELECT password_hash FROM console_users").fetchone()
    raw.close()
    assert stored.startswith("$argon2id$v=19$m=65536,t=2,")
    assert verify_password(stored, PASSWORD)


def test_unknown_user_takes_about_as_long_as_a_known_one(db_path: Path) -> None:
    # A real cost (64 MiB), so a missing dummy check would be a hundredfold gap; the
    # factor allowed is generous, and lockout is set high enough not to interfere.
    settings = SignInSettings(password_strength=KdfStrength.interactive(), max_failures=1000)
    with UserStore.open(db_path, settings=settings) as store:
        add_alice(store)
        refusal(store, "nobody", PASSWORD)  # makes the dummy hash outside the timing

        def median_seconds(username: str) -> float:
            times = []
            for _ in range(20):
                start = time.perf_counter()
                with pytest.raises(SignInRefused):
                    store.authenticate(username, "wrong password here", remote="192.0.2.10")
                times.append(time.perf_counter() - start)
            return statistics.median(times)

        known, unknown = median_seconds("alice"), median_seconds("nobody")
    assert 1 / 3 < unknown / known < 3, (known, unknown)


# --- sessions ---


def test_session_round_trip(store: UserStore, clock: Clock) -> None:
    alice = add_alice(store)
    ticket = store.start_session(alice)
    assert ticket.expires_at == clock.now + FAST.absolute_timeout
    assert ticket.token != ticket.csrf_token
    started = clock.now
    clock.advance(minutes=5)
    session = store.session(ticket.token)
    assert isinstance(session, Session)
    assert session.user == alice
    assert session.csrf_token == ticket.csrf_token
    assert session.started_at == started
    assert session.last_seen_at == clock.now
    assert session.expires_at == clock.now + FAST.idle_timeout
    assert store.session("not-a-token") is None
    assert store.session("") is None
    assert store.session(None) is None
    assert ticket.token not in repr(ticket)
    assert ticket.csrf_token not in repr(session)


def test_session_idle_timeout_is_reset_by_use(store: UserStore, clock: Clock) -> None:
    ticket = store.start_session(add_alice(store))
    for _ in range(5):
        clock.advance(minutes=14)
        assert store.session(ticket.token) is not None
    clock.advance(minutes=15)
    assert store.session(ticket.token) is None
    clock.advance(seconds=-1)  # gone for good, not just too late
    assert store.session(ticket.token) is None


def test_session_absolute_timeout(store: UserStore, clock: Clock) -> None:
    ticket = store.start_session(add_alice(store))
    for _ in range(8 * 6 - 1):
        clock.advance(minutes=10)
        session = store.session(ticket.token)
        assert session is not None
    assert session.expires_at == ticket.expires_at
    clock.advance(minutes=10)
    assert store.session(ticket.token) is None


def test_only_the_token_digest_is_stored(store: UserStore, db_path: Path) -> None:
    ticket = store.start_session(add_alice(store))
    with sqlite3.connect(db_path) as raw:
        rows = raw.execute("SELECT token_sha256 FROM console_sessions").fetchall()
    raw.close()
    assert rows == [(token_digest(ticket.token),)]
    for name in db_path.parent.iterdir():
        assert ticket.token.encode() not in name.read_bytes()


def test_every_sign_in_gets_a_new_session(store: UserStore) -> None:
    alice = add_alice(store)
    first = store.start_session(alice)
    second = store.start_session(alice, replacing=first.token)
    assert second.token != first.token
    assert second.csrf_token != first.csrf_token
    assert store.session(first.token) is None
    assert store.session(second.token) is not None
    # A token that was never issued cannot be carried into a session.
    planted = "planted-by-an-attacker-000000000000000000000"
    third = store.start_session(alice, replacing=planted)
    assert store.session(planted) is None
    assert store.session(third.token) is not None


def test_end_session_and_end_sessions_for(store: UserStore) -> None:
    alice = add_alice(store)
    bob = store.add_user("bob", "Bob Example", ["AUDITOR"], "BPSS", OTHER_PASSWORD)
    one, two, bobs = (
        store.start_session(alice),
        store.start_session(alice),
        store.start_session(bob),
    )
    assert store.end_session(one.token)
    assert not store.end_session(one.token)
    assert store.session(one.token) is None
    assert store.session(two.token) is not None
    assert store.end_sessions_for("alice") == 1
    assert store.session(two.token) is None
    assert store.session(bobs.token) is not None


def test_disabling_or_a_new_password_ends_sessions(store: UserStore) -> None:
    alice = add_alice(store)
    ticket = store.start_session(alice)
    store.disable_user("alice")
    assert store.session(ticket.token) is None
    with pytest.raises(UserError, match="cannot sign in"):
        store.start_session(alice)
    store.enable_user("alice")
    ticket = store.start_session(alice)
    store.set_password("alice", OTHER_PASSWORD)
    assert store.session(ticket.token) is None


def test_csrf_check(store: UserStore) -> None:
    alice = add_alice(store)
    ticket = store.start_session(alice)
    session = store.session(ticket.token)
    assert session is not None
    assert check_csrf(session, ticket.csrf_token)
    assert not check_csrf(session, ticket.csrf_token[:-1])
    assert not check_csrf(session, "")
    assert not check_csrf(session, None)
    assert not check_csrf(session, "caf\u00e9")
    other = store.session(store.start_session(alice).token)
    assert other is not None
    assert not check_csrf(session, other.csrf_token)


# --- settings and the clock ---


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"idle_timeout": timedelta(0)}, "^idle_timeout: must be positive"),
        ({"absolute_timeout": timedelta(minutes=-1)}, "^absolute_timeout: must be positive"),
        ({"failure_window": timedelta(0)}, "^failure_window: must be positive"),
        ({"lockout": timedelta(0)}, "^lockout: must be positive"),
        ({"lockout": 900}, "^lockout: must be a duration"),
        ({"max_failures": 0}, "^max_failures: must be at least 1"),
        ({"max_failures": True}, "^max_failures: must be a whole number"),
        (
            {"idle_timeout": timedelta(hours=9)},
            "^idle_timeout: must not exceed absolute_timeout",
        ),
    ],
)
def test_settings_are_validated_naming_the_key(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SignInSettingsError, match=message):
        SignInSettings(**overrides)  # type: ignore[arg-type]


def test_settings_defaults() -> None:
    settings = SignInSettings()
    assert settings.idle_timeout == timedelta(minutes=15)
    assert settings.absolute_timeout == timedelta(hours=8)
    assert settings.max_failures == 5
    assert settings.failure_window == timedelta(minutes=15)
    assert settings.lockout == timedelta(minutes=15)
    assert settings.password_strength == KdfStrength.moderate()


def test_a_naive_clock_is_refused(db_path: Path) -> None:
    naive = datetime(2025, 1, 1)  # no time zone: the point of the test
    with (
        UserStore.open(db_path, clock=lambda: naive, settings=FAST) as store,
        pytest.raises(ValueError, match="aware UTC"),
    ):
        add_alice(store)


def test_no_password_or_token_is_logged(store: UserStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    add_alice(store)
    refusal(store, "alice", "wrong password here")
    ticket = store.start_session(store.authenticate("alice", PASSWORD, remote="192.0.2.10"))
    store.set_password("alice", OTHER_PASSWORD)
    store.disable_user("alice")
    assert caplog.records  # account changes are logged, by user_ref
    for secret in (PASSWORD, OTHER_PASSWORD, "wrong password here", ticket.token, "Alice"):
        assert secret not in caplog.text


def test_immediate_transaction_commits_a_finished_block_and_rolls_back_one_that_raises(
    tmp_path: Path,
) -> None:
    db = open_node_database(tmp_path / "state" / "node.sqlite3")
    try:
        db.execute("CREATE TABLE t (n INTEGER)")
        with immediate_transaction(db) as tx:
            tx.execute("INSERT INTO t VALUES (1)")

        def half_way() -> None:
            with immediate_transaction(db) as tx:
                tx.execute("INSERT INTO t VALUES (2)")
                raise RuntimeError("half-way")

        with pytest.raises(RuntimeError, match="half-way"):
            half_way()
        assert [row[0] for row in db.execute("SELECT n FROM t")] == [1]
        assert not db.in_transaction
    finally:
        db.close()
