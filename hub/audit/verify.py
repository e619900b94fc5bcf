"""Recompute the whole log from the store and name the first entry that does not match.

``hub audit verify`` runs this. It checks, in index order: every row's index is the next
one (a deleted or inserted row breaks the sequence); every row's leaf hash is the RFC 9162
hash of its entry (an edited entry does not match); every entry is a valid log entry;
every stored tree head is signed by the hub and its root is the root of the first
``size`` leaves (a reordered or rewritten entry changes it); the log's state row counts
the rows; no signed head covers more entries than are stored.

It streams. :class:`LogVerifier` takes the rows a page at a time with the heads that end
inside the page, keeps only the tree's frontier (O(log n) hashes) and checks each head
once, when the tree reaches its size. :func:`verify_store_log` feeds it from the store
page by page, so memory stays bounded whatever the log's size. The first problem in index
order is the one reported, and reading stops there.

The work splits in two halves that need nothing from each other: the *sequence* (indexes,
the tree over the stored leaf hashes, the heads) and the *entries* (each entry's leaf hash
against the stored one, each entry's validity: parsing and validating JSON is most of the
cost). :meth:`LogVerifier.check` does the first, :func:`check_entries` the second, and
:meth:`LogVerifier.settle` puts a page's two answers together, so the entries of one page
can be checked in another process while the next page is read.

A head signs the prefix of the log it covers. When a head's root does not match, every
entry up to the previous head that did match is as the hub signed it, and at least one
entry after it is not: with a head per entry (as the hub once signed) that names the
entry; with a head per group-commit batch it names the first entry of the batch, and the
problem gives the range.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import CoreConfig, SchemaValidator

from hub.audit.log import stored_tree_head, verify_tree_head
from hub.audit.merkle import EMPTY_ROOT
from hub.model import AuditEntry
from hub.store import AuditRow, Store, StoredHead

__all__ = [
    "DEFAULT_PAGE",
    "EntryProblem",
    "LogVerification",
    "LogVerifier",
    "PageCheck",
    "check_entries",
    "default_workers",
    "verify_log",
    "verify_store_log",
]

DEFAULT_PAGE = 8192
"""Rows per page read by :func:`verify_store_log` (a page of entries is a few MB)."""

EntryProblem = tuple[int, str]
"""The index of the first bad entry of a page and what is wrong with it."""

# AuditEntry's own validator, but without pydantic-core's cache of parsed strings: the
# cache is bounded, yet it keeps a megabyte or so of strings from entries long verified,
# and verifying keeps only the page at hand. As fast either way (about 3 us an entry).
_ENTRY = SchemaValidator(AuditEntry.__pydantic_core_schema__, CoreConfig(cache_strings="none"))


@dataclass(frozen=True, slots=True)
class LogVerification:
    entries: int
    heads: int
    first_bad_index: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_entries(
    start: int, entries: Sequence[str], leaves: Sequence[bytes]
) -> EntryProblem | None:
    """The first of these entries (index ``start`` on) that was changed or is not valid.

    Changed: its RFC 9162 leaf hash is not the stored one. Not valid: it is not an
    :class:`AuditEntry`. A changed entry is named before an invalid one at the same index.
    Pure and picklable, so that :func:`verify_store_log` can run it in another process.
    """
    sha256 = hashlib.sha256
    changed = None
    for offset, (entry_json, leaf) in enumerate(zip(entries, leaves, strict=True)):
        if sha256(b"\x00" + entry_json.encode("utf-8")).digest() != leaf:
            changed = offset
            break
    validate = _ENTRY.validate_json
    for offset in range(len(entries) if changed is None else changed):
        try:
            validate(entries[offset])
        except ValidationError:
            return start + offset, f"entry {start + offset} is not a valid log entry"
    if changed is not None:
        return start + changed, f"entry {start + changed} was changed: its leaf hash does not match"
    return None


@dataclass(frozen=True, slots=True)
class PageCheck:
    """What :meth:`LogVerifier.check` found in a page: all but its entries' own checks."""

    start: int
    count: int
    missing: EntryProblem | None  # the first index with no row (a row was deleted)
    failed_head: tuple[int, int | None, str] | None  # (size, first bad index, problem)


class LogVerifier:
    """One pass over the log, in index order, keeping O(log n) state.

    Feed each page of rows (``(idx, entry_json, leaf_hash)``, in order) with the stored
    heads whose sizes end inside it through :meth:`add`; or, when the entries are checked
    elsewhere meanwhile (other processes), through :meth:`check` as pages arrive and
    :meth:`settle` for each, in the same order, with what :func:`check_entries` said of
    it. Then call :meth:`finish`. Once a page has a problem the verifier takes no more.
    """

    def __init__(self, hub_signing_key: bytes) -> None:
        self._key = hub_signing_key
        self._size = 0  # rows checked and added to the tree
        self._settled = 0  # rows of the pages settled
        self._frontier: list[bytes] = []
        self._verified = 0  # size of the last head that checked out (0: the empty tree)
        self._heads = 0
        self._stopped = False  # a checked page had a problem: later pages mean nothing
        self.first_bad_index: int | None = None
        self.problem: str | None = None

    @property
    def size(self) -> int:
        """How many rows have been checked (and added to the tree)."""
        return self._size

    @property
    def heads(self) -> int:
        """How many heads have been checked."""
        return self._heads

    @property
    def stopped(self) -> bool:
        """A page checked had a problem in its sequence (reported once it is settled)."""
        return self._stopped

    def add(self, rows: Sequence[tuple[int, str, bytes]], heads: Sequence[StoredHead]) -> bool:
        """Check the next page, its heads and its entries, here; False once bad."""
        page = self.check(rows, heads)
        entries = check_entries(page.start, [r[1] for r in rows], [r[2] for r in rows])
        return self.settle(page, entries)

    def check(
        self, rows: Sequence[tuple[int, str, bytes]], heads: Sequence[StoredHead]
    ) -> PageCheck:
        """The next page's sequence: its indexes, the tree over its leaf hashes, its heads.

        ``heads`` are sorted by size, each greater than the last checked and at most
        :attr:`size` plus ``len(rows)``.
        """
        start = self._size
        if self._stopped:
            return PageCheck(start, len(rows), None, None)
        missing = None
        end = start + len(rows)
        for position, row in enumerate(rows, start):
            if row[0] != position:
                missing = position, f"entry {position} is missing (the next row is entry {row[0]})"
                end = position
                break
        # The rows before a missing one are in sequence; the heads they reach are checked.
        leaves = iter([row[2] for row in rows[: end - start]])
        failed_head = None
        for head in heads:
            if head.size > end:
                break
            self._append(leaves, head.size - self._size)
            failure = self._check_head(head)
            if failure is not None:
                failed_head = (head.size, *failure)
                break
        else:
            self._append(leaves, end - self._size)
        self._stopped = missing is not None or failed_head is not None
        return PageCheck(start, len(rows), missing, failed_head)

    def settle(self, page: PageCheck, entries: EntryProblem | None) -> bool:
        """Put a page's sequence and entry checks together; False when it has a problem.

        The problem reported is the first in index order: a failing head whose size does
        not pass the first bad row (every entry it covers is stored as read), else that
        row (a missing row before a changed or invalid entry at the same index).
        """
        if self.problem is not None:
            return False
        bad = page.missing
        if entries is not None and (bad is None or entries[0] < bad[0]):
            bad = entries
        if page.failed_head is not None and (bad is None or page.failed_head[0] <= bad[0]):
            _, index, problem = page.failed_head
            self._fail(index, problem)
            return False
        if bad is not None:
            self._fail(*bad)
            return False
        self._settled = page.start + page.count
        return True

    def finish(self, state_size: int, beyond: StoredHead | None = None) -> LogVerification:
        """The result, given the state row's size and the first stored head past the rows."""
        if self.problem is None:
            if state_size != self._size:
                self._fail(
                    min(state_size, self._size),
                    f"the log says it holds {state_size} entries but {self._size} are stored",
                )
            elif beyond is not None:
                if not self._head_signed(beyond):
                    self._fail(
                        None, f"the tree head of size {beyond.size} is not signed by the hub"
                    )
                else:
                    self._fail(
                        self._size,
                        f"a signed tree head covers {beyond.size} entries; {self._size} remain",
                    )
        return self.result()

    def result(self) -> LogVerification:
        """What was found so far: entries of the pages settled, heads checked, any problem."""
        return LogVerification(self._settled, self._heads, self.first_bad_index, self.problem)

    # -- private ------------------------------------------------------------------------

    def _fail(self, index: int | None, problem: str) -> None:
        self.first_bad_index = index
        self.problem = problem

    def _append(self, leaves: Iterator[bytes], count: int) -> None:
        """Add the next ``count`` leaves to the frontier (as :meth:`CompactTree.append`)."""
        sha256 = hashlib.sha256
        frontier = self._frontier
        size = self._size
        for _ in range(count):
            node = next(leaves)
            carry = size
            while carry & 1:
                node = sha256(b"\x01" + frontier.pop() + node).digest()
                carry >>= 1
            frontier.append(node)
            size += 1
        self._size = size

    def _root(self) -> bytes:
        if not self._frontier:
            return EMPTY_ROOT
        sha256 = hashlib.sha256
        subtrees = reversed(self._frontier)
        root = next(subtrees)
        for left in subtrees:
            root = sha256(b"\x01" + left + root).digest()
        return root

    def _head_signed(self, head: StoredHead) -> bool:
        self._heads += 1
        return verify_tree_head(stored_tree_head(head), self._key)

    def _check_head(self, head: StoredHead) -> tuple[int | None, str] | None:
        """None when the head is the hub's and its root is the tree's; else what is wrong."""
        if not self._head_signed(head):
            return None, f"the tree head of size {head.size} is not signed by the hub"
        if self._root() != head.root_hash:
            first, last = self._verified, head.size - 1
            if first >= last:
                return last, (
                    f"entry {last} does not match the signed tree head of size {head.size} "
                    "(changed, reordered or replaced)"
                )
            return first, (
                f"an entry from {first} to {last} does not match the signed tree head of size "
                f"{head.size} (changed, reordered or replaced); the entries before {first} "
                f"match the head of size {first}"
            )
        self._verified = head.size
        return None


def verify_log(
    rows: Sequence[AuditRow],
    heads: Sequence[StoredHead],
    *,
    state_size: int,
    hub_signing_key: bytes,
) -> LogVerification:
    """Verify a log held in memory (the rows and heads as the store returns them)."""
    verifier = LogVerifier(hub_signing_key)
    ordered = sorted(heads, key=lambda head: head.size)
    within = [head for head in ordered if head.size <= len(rows)]
    beyond = next((head for head in ordered if head.size > len(rows)), None)
    verifier.add([(row.idx, row.entry_json, row.leaf_hash) for row in rows], within)
    result = verifier.finish(state_size, beyond)
    # Rows and heads as given, whether or not every one was reached.
    return LogVerification(len(rows), len(heads), result.first_bad_index, result.problem)


def default_workers() -> int:
    """Processes to check entries beside the one reading the log: one per other core, up to 4.

    The reading process has as much to do as one worker (reading and hashing a page
    costs about what parsing and validating its entries does), so on two cores one
    worker keeps both busy; on one core there is nothing to gain.
    """
    return max(0, min(4, (os.cpu_count() or 1) - 1))


async def verify_store_log(
    store: Store,
    hub_signing_key: bytes,
    *,
    page: int = DEFAULT_PAGE,
    workers: int = 0,
) -> LogVerification:
    """Verify the store's log in pages of ``page`` rows, in bounded memory.

    With ``workers`` above 0, and a log of more than a few pages, each page's entries are
    checked (:func:`check_entries`) in one of that many other processes while this one
    reads the next pages and checks their sequence. They are started with ``spawn`` (the
    store's driver runs threads, which ``fork`` would copy mid-flight), so the caller's
    main module must be import-safe, as ``hub``'s is. At most ``2 * workers + 2`` pages
    are held at once.

    Safe while the hub appends: pages and the state row are read by separate statements,
    and an append writes its rows, its head and the state row in one transaction, so what
    is seen can only have grown. When the rows run out the state row is read; if it counts
    more rows (appended meanwhile) reading goes on from there, and only when no further
    row exists is the difference a problem. A head past the rows is a problem unless the
    state row, read again after it, covers it (it was appended meanwhile).
    """
    if page < 1:
        raise ValueError(f"page must be at least 1, got {page}")
    verifier = LogVerifier(hub_signing_key)
    pool: ProcessPoolExecutor | None = None
    loop = asyncio.get_running_loop()
    # Pages whose sequence is checked, waiting for their entries' check.
    pending: deque[tuple[PageCheck, asyncio.Future[EntryProblem | None]]] = deque()
    try:
        async with store.read() as view:
            if workers > 0 and await view.audit.size() > 4 * page:
                pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            depth = 2 * workers + 1
            read_from = 0  # the next idx to read
            read_to = 0  # log position after the pages read (heads up to it are read)
            while True:
                rows = await view.audit.leaves_from(read_from, page)
                if not rows:
                    # Settle what is pending before deciding the log has ended.
                    while pending:
                        checked, entries = pending.popleft()
                        if not verifier.settle(checked, await entries):
                            return verifier.result()
                    state_size = await view.audit.size()
                    if state_size > verifier.size and await view.audit.leaves_from(
                        verifier.size, 1
                    ):
                        continue  # appended meanwhile: go on
                    break
                # A head of size 0 (the empty tree) is checked with the first page.
                after = read_to if read_to else -1
                read_from, read_to = rows[-1][0] + 1, read_to + len(rows)
                heads = await view.audit.heads_between(after, read_to, limit=len(rows) + 1)
                checked = verifier.check(rows, heads)
                texts, leaves = [row[1] for row in rows], [row[2] for row in rows]
                if pool is None:
                    if not verifier.settle(checked, check_entries(checked.start, texts, leaves)):
                        return verifier.result()
                    continue
                pending.append(
                    (
                        checked,
                        loop.run_in_executor(pool, check_entries, checked.start, texts, leaves),
                    )
                )
                while pending and (
                    len(pending) > depth or pending[0][1].done() or verifier.stopped
                ):
                    checked, entries = pending.popleft()
                    if not verifier.settle(checked, await entries):
                        return verifier.result()
            after_rows = await view.audit.heads_between(verifier.size, 2**63 - 1, limit=1)
            beyond = after_rows[0] if after_rows else None
            if (
                beyond is not None
                and state_size == verifier.size
                and await view.audit.size() >= beyond.size
            ):
                beyond = None  # appended since the state was read: the log grew meanwhile
        return verifier.finish(state_size, beyond)
    finally:
        for _, entries in pending:
            entries.cancel()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
