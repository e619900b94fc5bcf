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
import multiprocessing.util
import os
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import CoreConfig, SchemaValidator

from hub.audit.log import stored_tree_head, verify_tree_head
from hub.audit.merkle import EMPTY_ROOT
from hub.model import AuditEntry
from hub.store import AuditRow, SqlStore, Store, StoredHead, UnitOfWork

__all__ = [
    "DEFAULT_PAGE",
    "EntryProblem",
    "HeadReport",
    "LogVerification",
    "LogVerifier",
    "PageReport",
    "check_entries",
    "default_workers",
    "page_report",
    "verify_log",
    "verify_store_log",
]

DEFAULT_PAGE = 8192
"""Rows per page read by :func:`verify_store_log` (a page of entries is a few MB).

A power of two, so that a page of the log is one perfect subtree of its Merkle tree."""

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
    computed = [sha256(b"\x00" + text.encode("utf-8")).digest() for text in entries]
    changed = None
    if computed != list(leaves):
        changed = next(i for i, (a, b) in enumerate(zip(computed, leaves, strict=True)) if a != b)
    checked = entries if changed is None else entries[:changed]
    validate = _ENTRY.validate_json
    try:
        for text in checked:
            validate(text)
    except ValidationError:
        for offset, text in enumerate(checked):
            try:
                validate(text)
            except ValidationError:
                return start + offset, f"entry {start + offset} is not a valid log entry"
    if changed is not None:
        return start + changed, f"entry {start + changed} was changed: its leaf hash does not match"
    return None


@dataclass(frozen=True, slots=True)
class HeadReport:
    """A stored head that ends inside a page, as checked where the page was read."""

    size: int
    root_hash: bytes
    signed: bool  # the hub's signature over its size, root and time verifies
    local: tuple[bytes, ...]  # the frontier of the page's leaves up to ``size``


@dataclass(frozen=True, slots=True)
class PageReport:
    """All there is to know about one aligned page of the log, for :meth:`LogVerifier.add_report`.

    The page holds the entries ``start <= idx < end`` (``end - start`` a power of two, and
    ``start`` a multiple of it): one perfect subtree of the log's tree, so its leaves'
    frontier combines with the frontier before it without knowing it.
    """

    start: int
    end: int
    found: int  # entries in sequence from ``start`` (``end - start`` when none is missing)
    problem: EntryProblem | None  # its first missing, changed or invalid entry
    heads: tuple[HeadReport, ...]  # the stored heads of sizes up to ``start + found``
    frontier: tuple[bytes, ...]  # of its leaves ``[start, start + found)``


def page_report(
    rows: Sequence[tuple[int, str, bytes]],
    heads: Sequence[StoredHead],
    start: int,
    end: int,
    *,
    next_idx: int | None,
    hub_signing_key: bytes,
) -> PageReport:
    """Check one aligned page: ``rows`` are those stored in ``[start, end)``, in order.

    ``heads`` are the stored heads with sizes in the page (from 0 for the first page);
    ``next_idx`` is the first stored index at or after ``end`` (None when there is none),
    named when the page's last entries are missing.
    """
    if end <= start or (end - start) & (end - start - 1) or start % (end - start):
        raise ValueError(f"[{start}, {end}) is not an aligned power-of-two page")
    found = _in_sequence(rows, start)
    problem = check_entries(start, [r[1] for r in rows[:found]], [r[2] for r in rows[:found]])
    if found < end - start:
        after = rows[found][0] if found < len(rows) else next_idx
        if after is not None and problem is None:
            position = start + found
            problem = position, f"entry {position} is missing (the next row is entry {after})"
    frontier: list[bytes] = []
    size = 0
    reports = []
    leaves = [row[2] for row in rows[:found]]
    for head in heads:
        if head.size > start + found:
            break
        size = _extend_leaves(frontier, size, leaves[size : head.size - start])
        signed = verify_tree_head(stored_tree_head(head), hub_signing_key)
        reports.append(HeadReport(head.size, head.root_hash, signed, tuple(frontier)))
    _extend_leaves(frontier, size, leaves[size:])
    return PageReport(start, end, found, problem, tuple(reports), tuple(frontier))


def _perfect_root(leaves: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree (a power of two of leaf hashes), level by level."""
    sha256 = hashlib.sha256
    level = list(leaves)
    while len(level) > 1:
        level = [
            sha256(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=True)
        ]
    return level[0]


def _extend_leaves(frontier: list[bytes], size: int, leaves: Sequence[bytes]) -> int:
    """Add leaf hashes at leaf ``size``: as aligned perfect subtrees, each hashed in one go."""
    position = 0
    while position < len(leaves):
        chunk = 1 << ((len(leaves) - position).bit_length() - 1)
        if size:
            chunk = min(chunk, size & -size)  # a subtree starts on a multiple of its size
        size = _append_subtree(
            frontier,
            size,
            _perfect_root(leaves[position : position + chunk]),
            chunk.bit_length() - 1,
        )
        position += chunk
    return size


def _in_sequence(rows: Sequence[tuple[int, str, bytes]], start: int) -> int:
    """How many rows, from the first, have the indexes ``start``, ``start + 1``, ..."""
    # Rows come sorted by their unique idx: the first and last alone tell a full run.
    if not rows or (rows[0][0] == start and rows[-1][0] == start + len(rows) - 1):
        return len(rows)
    return next(offset for offset, row in enumerate(rows) if row[0] != start + offset)


def _append_subtree(frontier: list[bytes], size: int, node: bytes, level: int) -> int:
    """Add a perfect subtree of ``2**level`` leaves at leaf ``size`` (a multiple of it)."""
    bit = 1 << level
    while size & bit:
        node = hashlib.sha256(b"\x01" + frontier.pop() + node).digest()
        bit <<= 1
    frontier.append(node)
    return size + (1 << level)


def _extend(frontier: list[bytes], size: int, local: Sequence[bytes], count: int) -> int:
    """Add the frontier of ``count`` leaves that start at ``size``, aligned to a page."""
    levels = [level for level in range(count.bit_length() - 1, -1, -1) if count >> level & 1]
    for level, node in zip(levels, local, strict=True):
        size = _append_subtree(frontier, size, node, level)
    return size


def _fold(frontier: Sequence[bytes]) -> bytes:
    """The tree's root from its frontier (largest subtree first)."""
    if not frontier:
        return EMPTY_ROOT
    sha256 = hashlib.sha256
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = sha256(b"\x01" + left + root).digest()
    return root


class LogVerifier:
    """One pass over the log, in index order, keeping O(log n) state.

    Feed it the log in order: pages of rows (``(idx, entry_json, leaf_hash)``) with the
    stored heads whose sizes end inside them through :meth:`add`, or aligned pages checked
    elsewhere (another process) through :meth:`add_report`; then call :meth:`finish`.
    Once a page has a problem the verifier takes no more.
    """

    def __init__(self, hub_signing_key: bytes) -> None:
        self._key = hub_signing_key
        self._size = 0  # entries checked and added to the tree
        self._frontier: list[bytes] = []
        self._verified = 0  # size of the last head that checked out (0: the empty tree)
        self._heads = 0
        self.first_bad_index: int | None = None
        self.problem: str | None = None

    @property
    def size(self) -> int:
        """How many entries have been checked (and added to the tree)."""
        return self._size

    @property
    def heads(self) -> int:
        """How many heads have been checked."""
        return self._heads

    def add(self, rows: Sequence[tuple[int, str, bytes]], heads: Sequence[StoredHead]) -> bool:
        """Check the next rows, their entries and the heads that end among them; False if bad.

        ``heads`` are sorted by size, each greater than the last checked and at most
        :attr:`size` plus ``len(rows)``.
        """
        if self.problem is not None:
            return False
        start = self._size
        bad = None
        found = _in_sequence(rows, start)
        if found < len(rows):
            position, idx = start + found, rows[found][0]
            bad = position, f"entry {position} is missing (the next row is entry {idx})"
        entries = check_entries(start, [r[1] for r in rows[:found]], [r[2] for r in rows[:found]])
        if entries is not None and (bad is None or entries[0] < bad[0]):
            bad = entries
        leaves = [row[2] for row in rows[:found]]
        done = 0
        for head in heads:
            # The heads up to the first bad row come first: their entries are as stored.
            if head.size > start + found or (bad is not None and head.size > bad[0]):
                break
            self._size = _extend_leaves(
                self._frontier, self._size, leaves[done : head.size - start]
            )
            done = head.size - start
            signed = verify_tree_head(stored_tree_head(head), self._key)
            if not self._head_checks_out(head.size, signed, _fold(self._frontier), head.root_hash):
                return False
        if bad is not None:
            self._fail(*bad)
            return False
        self._size = _extend_leaves(self._frontier, self._size, leaves[done:])
        return True

    def add_report(self, report: PageReport) -> bool:
        """Take the next aligned page, checked elsewhere (:func:`page_report`); False if bad."""
        if self.problem is not None:
            return False
        if report.start != self._size:
            raise ValueError(f"the page at {report.start} is not the next one ({self._size})")
        bad = report.problem
        for head in report.heads:
            if bad is not None and head.size > bad[0]:
                break
            frontier = list(self._frontier)
            _extend(frontier, self._size, head.local, head.size - report.start)
            if not self._head_checks_out(head.size, head.signed, _fold(frontier), head.root_hash):
                return False
        if bad is not None:
            self._fail(*bad)
            return False
        self._size = _extend(self._frontier, self._size, report.frontier, report.found)
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
                self._heads += 1
                if not verify_tree_head(stored_tree_head(beyond), self._key):
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
        """What was found so far: entries checked, heads checked, any problem."""
        return LogVerification(self._size, self._heads, self.first_bad_index, self.problem)

    # -- private ------------------------------------------------------------------------

    def _fail(self, index: int | None, problem: str) -> None:
        self.first_bad_index = index
        self.problem = problem

    def _head_checks_out(self, size: int, signed: bool, root: bytes, stored_root: bytes) -> bool:
        """Record a head's check: signed by the hub, and its root the tree's at its size."""
        self._heads += 1
        if not signed:
            self._fail(None, f"the tree head of size {size} is not signed by the hub")
            return False
        if root != stored_root:
            first, last = self._verified, size - 1
            if first >= last:
                self._fail(
                    last,
                    f"entry {last} does not match the signed tree head of size {size} "
                    "(changed, reordered or replaced)",
                )
            else:
                self._fail(
                    first,
                    f"an entry from {first} to {last} does not match the signed tree head of "
                    f"size {size} (changed, reordered or replaced); the entries before {first} "
                    f"match the head of size {first}",
                )
            return False
        self._verified = size
        return True


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


_WINDOW = 16
"""How many pages ahead of the oldest not yet taken may be read at once, with workers."""

_PROCESSES_FROM_PAGES = 32
"""Worker processes are started for logs of this many complete pages or more."""


def default_workers() -> int:
    """Worker processes for ``hub audit verify``: one per core but this one's, up to 4.

    This process reads and checks pages too whenever no report is ready, so on two cores
    one worker keeps both busy. (When other work keeps the second core busy a worker
    gains nothing and costs about a tenth more; ``--workers 0`` says so. The load average
    is no guide: it counts this command's own previous run.)
    """
    return max(0, min(4, (os.cpu_count() or 1) - 1))


async def _read_page(view: UnitOfWork, start: int, end: int, key: bytes) -> PageReport:
    rows = await view.audit.leaves_between(start, end)
    # The heads that end in the page; the first page's include the empty tree's (size 0).
    heads = await view.audit.heads_between(start if start else -1, end, limit=end - start + 1)
    next_idx = None
    if len(rows) < end - start:
        following = await view.audit.leaves_from(end, 1)
        next_idx = following[0][0] if following else None
    return page_report(rows, heads, start, end, next_idx=next_idx, hub_signing_key=key)


def check_page(database_url: str, hub_signing_key: bytes, start: int, end: int) -> PageReport:
    """Read and check one aligned page with a store of its own (for any executor)."""

    async def read() -> PageReport:
        store = SqlStore.open(database_url)
        try:
            async with store.read() as view:
                return await _read_page(view, start, end, hub_signing_key)
        finally:
            await store.close()

    return asyncio.run(read())


# A worker process's own event loop and store, for all the pages it is given.
_worker: tuple[asyncio.AbstractEventLoop, SqlStore] | None = None


def _start_worker(database_url: str) -> None:
    global _worker
    loop = asyncio.new_event_loop()
    _worker = loop, SqlStore.open(database_url)
    # Close the store's connections (their driver threads would keep the process alive)
    # when the pool stops the worker.
    multiprocessing.util.Finalize(None, _stop_worker, exitpriority=10)


def _stop_worker() -> None:
    if _worker is not None:
        loop, store = _worker
        loop.run_until_complete(store.close())
        loop.close()


def _check_page_in_worker(hub_signing_key: bytes, start: int, end: int) -> PageReport:
    assert _worker is not None, "the worker was not started"
    loop, store = _worker

    async def read() -> PageReport:
        async with store.read() as view:
            return await _read_page(view, start, end, hub_signing_key)

    return loop.run_until_complete(read())


async def verify_store_log(
    store: Store,
    hub_signing_key: bytes,
    *,
    page: int = DEFAULT_PAGE,
    workers: int = 0,
    database_url: str | None = None,
    executor: Executor | None = None,
) -> LogVerification:
    """Verify the store's log in pages of ``page`` rows, in bounded memory.

    With ``workers`` above 0 and the store's ``database_url``, on a log of 32 pages or
    more, the complete pages are read and checked (:func:`check_page`) by that many other
    processes, each with its own connection, while this one takes their reports in order
    (:meth:`LogVerifier.add_report`); it reads and checks a page itself whenever the next
    report is not ready and a page has not been started, so it never waits idle. The
    workers are started with ``spawn`` (the store's driver runs threads, which ``fork``
    would copy mid-flight), so the caller's main module must be import-safe, as ``hub``'s
    is. At most ``2 * workers + 2`` pages are held at once. The rest of the log is then
    read here, as without workers. ``executor`` runs the workers' part instead of a pool
    of processes started here (threads, say, in tests).

    Safe while the hub appends. On SQLite the read view is one snapshot. On PostgreSQL
    pages and the state row are read by separate statements, each seeing the latest
    commits, and an append writes its rows, its head and the state row in one
    transaction, so what is seen can only have grown. When the rows run out the state
    row is read; if it counts more rows (appended meanwhile) reading goes on from there,
    and only when no further row exists is the difference a problem. A head past the
    rows is a problem unless the state row, read again after it, covers it (it was
    appended meanwhile).
    """
    if page < 1:
        raise ValueError(f"page must be at least 1, got {page}")
    parallel = workers > 0 and database_url is not None
    if parallel and page & (page - 1):
        raise ValueError(f"with workers, page must be a power of two, got {page}")
    verifier = LogVerifier(hub_signing_key)
    async with store.read() as view:
        if parallel:
            assert database_url is not None
            complete = await view.audit.size() // page
            # Starting a process costs about half a second: below a few hundred thousand
            # entries, one process is done as soon.
            enough = 4 if executor is not None else _PROCESSES_FROM_PAGES
            if complete >= enough and not await _pages_in_parallel(
                view, verifier, database_url, page, complete, workers, executor
            ):
                return verifier.result()
        # The rest (all of it without workers), page by page from where the tree stands.
        read_from = read_to = verifier.size
        while True:
            rows = await view.audit.leaves_from(read_from, page)
            if not rows:
                state_size = await view.audit.size()
                if state_size > verifier.size and await view.audit.leaves_from(verifier.size, 1):
                    read_from = verifier.size
                    continue  # appended meanwhile: go on
                break
            # A head of size 0 (the empty tree) is checked with the first page.
            after = read_to if read_to else -1
            read_from, read_to = rows[-1][0] + 1, read_to + len(rows)
            heads = await view.audit.heads_between(after, read_to, limit=len(rows) + 1)
            if not verifier.add(rows, heads):
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


async def _pages_in_parallel(
    view: UnitOfWork,
    verifier: LogVerifier,
    database_url: str,
    page: int,
    pages: int,
    workers: int,
    executor: Executor | None,
) -> bool:
    """Check the first ``pages`` aligned pages with worker processes; False at a problem.

    Each worker has at most one page at a time; this process takes the next page itself
    whenever none is ready to be taken in order, so it never waits idle (not even while
    the workers start), up to :data:`_WINDOW` pages ahead of the oldest not yet taken.
    A report is small (its heads and a frontier), so the pages ahead cost little memory.
    """
    key = verifier._key
    running: dict[int, Future[PageReport]] = {}  # page number: a worker's answer
    ready: dict[int, PageReport] = {}  # pages checked here, ahead of their turn
    assigned = taken = 0
    if executor is None:
        pool: Executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(database_url,),
        )

        def submit(start: int) -> Future[PageReport]:
            return pool.submit(_check_page_in_worker, key, start, start + page)
    else:
        pool = executor

        def submit(start: int) -> Future[PageReport]:
            return pool.submit(check_page, database_url, key, start, start + page)

    try:
        while taken < pages:
            if taken in running and running[taken].done():
                ready[taken] = running.pop(taken).result()
            if taken in ready:
                report = ready.pop(taken)
                taken += 1
                if not verifier.add_report(report) or report.found < page:
                    return verifier.problem is None
                continue
            ahead = assigned < pages and assigned - taken < _WINDOW
            while ahead and sum(not f.done() for f in running.values()) < workers:
                running[assigned] = submit(assigned * page)
                assigned += 1
                ahead = assigned < pages and assigned - taken < _WINDOW
            if ahead:
                ready[assigned] = await _read_page(
                    view, assigned * page, (assigned + 1) * page, key
                )
                assigned += 1
                continue
            await asyncio.wait([asyncio.wrap_future(running[taken])])
        return True
    finally:
        for future in running.values():
            future.cancel()
        if executor is None:
            pool.shutdown(wait=True, cancel_futures=True)
