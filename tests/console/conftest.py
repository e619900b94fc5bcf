"""The shared console fixture: three consoles on the real hub fixture (reading_world)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import HubFixture
from tests.console.reading_world import World, open_world


@pytest.fixture
async def world(hub: HubFixture, tmp_path: Path) -> AsyncIterator[World]:
    """Health, police and the local authority, each with one signed-in user of the
    default roles; a test file that needs other roles defines its own ``world``."""
    opened = await open_world(hub, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()
