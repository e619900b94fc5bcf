"""The node store's pages are answered from indexes, never by reading every message.

A message page lists the message's replies and an inbox search compares refs: with
thousands of messages a full scan of ``node_messages`` (each row holds its envelope and
inline ciphertext) costs tens of milliseconds per page (bench/console.py). These check the
query plans, not the time.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agency_adapters.node.store import _COLUMNS, NodeStore, _filters


def _plan(path: Path, sql: str, params: tuple[str, ...]) -> str:
    with sqlite3.connect(path) as db:
        rows = db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(str(row[-1]) for row in rows)


def _listing_sql(where: str) -> str:
    return (
        f"SELECT {_COLUMNS} FROM node_messages WHERE {where} "  # noqa: S608 - test of fixed SQL
        "ORDER BY received_at DESC, id DESC LIMIT 25"
    )


def test_the_replies_to_a_message_come_from_an_index(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite3"
    NodeStore.open(path).close()
    where, params = _filters("in", None, None, None, None, None, in_reply_to="x")
    plan = _plan(path, _listing_sql(where), params)
    assert "node_messages_by_reply" in plan, plan
    assert "SCAN" not in plan


def test_a_search_reads_the_refs_from_an_index(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite3"
    NodeStore.open(path).close()
    where, params = _filters("in", None, None, None, None, "case-bench-0001")
    plan = _plan(path, _listing_sql(where), params)
    assert "node_messages_search" in plan, plan
    count_plan = _plan(path, f"SELECT count(*) FROM node_messages WHERE {where}", params)  # noqa: S608
    assert "COVERING INDEX" in count_plan, count_plan


def test_an_existing_store_gains_the_indexes_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite3"
    NodeStore.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX node_messages_by_reply")
        db.execute("DROP INDEX node_messages_search")
    NodeStore.open(path).close()
    with sqlite3.connect(path) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"node_messages_by_reply", "node_messages_search"} <= names
