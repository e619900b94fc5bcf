"""Shared fixtures: fixed-seed INSECURE test keys, a hub on SQLite, clients per node.

The keys below are derived from public, fixed seeds. They are for tests only and must
never be used by a real node.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from hub.audit.log import AuditLog
from hub.client import NodeClient, NodeProfile
from hub.config import HubConfig, Limits, render_hub_config
from hub.crypto import NodeKeys
from hub.model import Author, Consent, EnvelopeFields, LegalBasis, Marking
from hub.registry import enrol_node
from hub.server import create_app
from hub.store import SqlStore, database_url_for_path

# tests/server/helpers.py asserts on replies; have pytest explain its failures as it does
# in tests. Registered here, the first conftest loaded, because tests in other folders
# (durability, store, workflows) import it before tests/server/ is collected.
pytest.register_assert_rewrite("tests.server.helpers")

INSECURE_TEST_HUB_KEYS = NodeKeys.from_seed(b"insecure-test-hub-key-000000000!")
INSECURE_TEST_NODE_KEYS = {
    "health.bsw-icb": NodeKeys.from_seed(b"insecure-test-health-key-0000000"),
    "police.ctp-sw": NodeKeys.from_seed(b"insecure-test-police-key-0000000"),
    "la.wiltshire": NodeKeys.from_seed(b"insecure-test-la-key-00000000000"),
    "education.stranger": NodeKeys.from_seed(b"insecure-test-stranger-key-00000"),
}
AGENCY = {
    "health.bsw-icb": "health",
    "police.ctp-sw": "police",
    "la.wiltshire": "local_authority",
    "education.stranger": "education",
}


class MutableClock:
    """An injected clock tests can move."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class HubFixture:
    config: HubConfig
    store: SqlStore
    server: TestServer
    clock: MutableClock
    clients: dict[str, NodeClient]

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def profile(self, root: Path, node_id: str) -> NodeProfile:
        """A node folder's profile under ``root`` for ``node_id`` (its keys come from the
        client; the profile holds the inbox cursor and what the node keeps)."""
        return NodeProfile(
            root=root / node_id,
            node_id=node_id,
            agency_type=AGENCY[node_id],
            hub_url=self.url,
            hub_id="hub.test",
            hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing,
            key_file=root / "unused.key",
        )

    def client(self, node_id: str, keys: NodeKeys | None = None) -> NodeClient:
        return NodeClient(
            hub_url=self.url,
            node_id=node_id,
            keys=keys or INSECURE_TEST_NODE_KEYS[node_id],
            hub_signing_key=INSECURE_TEST_HUB_KEYS.public.signing,
            spool_dir=self.config.blob_dir.parent / "spool" / node_id,
            clock=self.clock,
        )


def referral_fields(**overrides: Any) -> EnvelopeFields:
    values: dict[str, Any] = {
        "kind": "referral",
        "author": Author(user_ref="u-7f3a91", role="SAFEGUARDING_LEAD", vetting="BPSS"),
        "recipients": ("la.wiltshire", "police.ctp-sw"),
        "marking": Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_DATA",)),
        "subject_ref": "subj-000123",
        "purpose": "PREVENT_REFERRAL",
        "legal_basis": LegalBasis.model_validate_json(json.dumps(REFERRAL_LEGAL_BASIS)),
        "consent": Consent.model_validate_json(json.dumps(REFERRAL_CONSENT)),
    }
    values.update(overrides)
    if isinstance(values["recipients"], list):
        values["recipients"] = tuple(values["recipients"])
    return EnvelopeFields(**values)


# A lawful Prevent referral without consent (REFERENCE.md 2.1-2.3, 3.2): CDA 1998 s115
# power, public task, Art 9(2)(g) with DPA 2018 Sch 1 para 18, consent not sought because
# seeking it would prejudice the outcome; health names its exception to the common law
# duty of confidentiality, the public interest (seed 004 Appendix 4a: "The CLDC is an
# additional legal requirement for health").
REFERRAL_LEGAL_BASIS: dict[str, Any] = {
    "powers": ["CDA1998-s115"],
    "art6": "UKGDPR-A6-1e",
    "art9": "UKGDPR-A9-2g",
    "sch1": "DPA2018-S1P2p18",
    "confidentiality": ["CLDC-PUBINT"],
}
REFERRAL_CONSENT: dict[str, Any] = {
    "state": "NOT_SOUGHT",
    "reason_code": "WOULD_PREJUDICE_OUTCOME",
    "subject_age": "ADULT",
}

SYNTHETIC_REFERRAL = {
    "form": "National Prevent Referral Form",
    "individual": {"forename": "Sam", "surname": "Testperson", "date_of_birth": "2001-04-01"},
    "concerns": "Synthetic test concern text. No real person.",
}


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Undo what a test's in-process ``hub serve``/``hub admin`` did to global logging.

    ``configure_logging`` adds a root handler on the stream of the moment (pytest's
    captured stderr, closed after the test) and sets logger levels; left in place, later
    tests log into a closed file and see other loggers' records.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))
    logging.captureWarnings(False)


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., HubConfig]:
    def build(**limits: Any) -> HubConfig:
        return HubConfig(
            hub_id="hub.test",
            database_url=database_url_for_path(tmp_path / "hub.sqlite3"),
            blob_dir=tmp_path / "blobs",
            signing_key_path=tmp_path / "unused-hub.key",
            # Read the registry on every request so tests that suspend a node see it at
            # once; the cache itself is tested in tests/server/test_node_cache.py.
            limits=Limits(**{"node_cache_seconds": 0.0, **limits}),
        )

    return build


@pytest.fixture
async def hub(make_config: Callable[..., HubConfig]) -> AsyncIterator[HubFixture]:
    async with running_hub(make_config()) as fixture:
        yield fixture


@pytest.fixture
async def nodes(hub: HubFixture) -> AsyncIterator[dict[str, NodeClient]]:
    """A client for every enrolled test node, closed afterwards."""
    opened = {node_id: hub.client(node_id) for node_id in INSECURE_TEST_NODE_KEYS}
    try:
        yield opened
    finally:
        for client in opened.values():
            await client.close()


def write_hub_toml(tmp_path: Path, extra: str = "", *, port: int = 8443) -> Path:
    """Write ``tmp_path/hub.toml`` as ``hub init`` renders it (SQLite, blobs and key in
    ``tmp_path``, loopback), with ``extra`` TOML appended; returns its path."""
    path = tmp_path / "hub.toml"
    path.write_text(
        render_hub_config(
            hub_id="hub.test",
            database="hub.sqlite3",
            blob_dir="blobs",
            signing_key="hub.key",
            host="127.0.0.1",
            port=port,
        )
        + extra
    )
    return path


def postgres_url() -> str | None:
    return os.environ.get("HUB_TEST_POSTGRES_URL")


async def enrol_test_nodes(
    store: SqlStore, *, now: datetime, audit: AuditLog | None = None
) -> None:
    """Enrol every INSECURE test node (police, LA, health) with its fixed keys."""
    for node_id, keys in INSECURE_TEST_NODE_KEYS.items():
        await enrol_node(
            store,
            node_id=node_id,
            agency_type=AGENCY[node_id],
            display_name=node_id,
            public_keys=keys.public,
            accreditation="OFFICIAL-SENSITIVE",
            now=now,
            audit=audit,
        )


@asynccontextmanager
async def running_hub(config: HubConfig) -> AsyncIterator[HubFixture]:
    clock = MutableClock()
    store = SqlStore.open(config.database_url)
    await store.create_schema()
    await enrol_test_nodes(store, now=clock())
    app = create_app(config, clock=clock, hub_keys=INSECURE_TEST_HUB_KEYS, store=store)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fixture = HubFixture(config=config, store=store, server=server, clock=clock, clients={})
    try:
        yield fixture
    finally:
        for client in fixture.clients.values():
            await client.close()
        await server.close()
        await store.close()
