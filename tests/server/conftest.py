"""Fixtures for HTTP-level tests of the hub: a raw client session and a small-chunk hub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from hub.config import HubConfig
from tests.conftest import HubFixture, running_hub

# Small enough that a blob of a few hundred bytes spans several chunks.
SMALL_CHUNK = 100


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def small_hub(make_config: Callable[..., HubConfig]) -> AsyncIterator[HubFixture]:
    config = make_config(blob_chunk_bytes=SMALL_CHUNK)
    async with running_hub(config) as fixture:
        yield fixture
