"""A 200 MiB payload end to end through blobs, in memory far below its size."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from hub.client import PayloadSource
from tests.conftest import HubFixture, referral_fields

MIB = 1024 * 1024
PAYLOAD_BYTES = 200 * MIB
# The bound is an order of magnitude below the payload: one network read, one secretstream
# chunk and one file block per side, plus aiohttp's buffers; 200 MiB would never fit.
PEAK_PYTHON_HEAP_LIMIT = 24 * MIB
PEAK_RSS_GROWTH_LIMIT = 64 * MIB


def _write_synthetic_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for _ in range(size // MIB):
            block = os.urandom(MIB)
            digest.update(block)
            handle.write(block)
    return digest.hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Linux resets VmHWM when 5 is written to clear_refs; False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.mark.slow
async def test_200_mib_payload_streams_end_to_end_in_bounded_memory(
    hub: HubFixture, tmp_path: Path
) -> None:
    source = tmp_path / "large-synthetic-document.bin"
    expected = _write_synthetic_file(source, PAYLOAD_BYTES)
    received = tmp_path / "received.bin"

    async with hub.client("health.bsw-icb") as health, hub.client("la.wiltshire") as la:
        await health.directory()
        await la.directory()
        rss_measured = _reset_peak_rss()
        rss_before = _rss_kib("VmRSS")
        tracemalloc.start()
        try:
            receipt = await health.send(
                referral_fields(recipients=["la.wiltshire"], kind="note"),
                PayloadSource.file(source),
            )
            message = await la.fetch(receipt.message_id)
            with received.open("wb") as sink:
                assert await la.open_payload(message, sink) is None
            _, peak_heap = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        peak_rss_growth = (_rss_kib("VmHWM") - rss_before) * 1024

    assert message.envelope.payload.transport == "blob"
    assert message.envelope.payload.size > PAYLOAD_BYTES
    assert received.stat().st_size == PAYLOAD_BYTES
    assert _sha256_file(received) == expected
    assert peak_heap < PEAK_PYTHON_HEAP_LIMIT, f"peak Python heap {peak_heap / MIB:.1f} MiB"
    if rss_measured:
        assert peak_rss_growth < PEAK_RSS_GROWTH_LIMIT, (
            f"peak RSS grew {peak_rss_growth / MIB:.1f} MiB"
        )
