"""The audit benchmark's log is one ``hub audit verify`` accepts, and a wrong proof is caught."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench import auditlog
from bench.federation import NODES, create_federation
from bench.sealed import Sealer, referral_fields
from hub.audit.merkle import consistency_proof, inclusion_proof
from hub.crypto import NodeKeys

ENTRIES = 50


def _sample() -> bytes:
    """A sealed referral's body, sealed offline to throwaway keys (no hub needed)."""
    keys = NodeKeys.generate()
    fields = referral_fields()
    readers = {node: NodeKeys.generate().public.encryption for node in fields.recipients}
    readers["health.bsw-icb"] = keys.public.encryption
    return Sealer("health.bsw-icb", keys.signing, fields, readers).seal(1, 1024)[0].body


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, int]:
    federation = create_federation(tmp_path / "fed")
    size, _ = auditlog.fill_log(federation.config_path, federation.hub_keys, _sample(), ENTRIES)
    return federation.config_path, size


def test_the_filled_log_is_one_hub_audit_verify_accepts(filled: tuple[Path, int]) -> None:
    config, size = filled
    # The enrolments' entries first, then the ones filled in.
    assert size == len(NODES) + ENTRIES
    run = auditlog.time_verify(config)
    assert run.ok, run.output
    assert run.entries == size
    assert run.heads == size
    assert run.rate > 0
    assert run.peak_rss > 0


def test_proofs_are_checked_against_the_stored_leaves(filled: tuple[Path, int]) -> None:
    config, size = filled
    from bench.auditlog import _leaf_hashes
    from hub.config import load_hub_config

    leaves = asyncio.run(_leaf_hashes(load_hub_config(config).database_url, size))

    def body(proof: list[bytes]) -> bytes:
        return json.dumps({"proof": [node.hex() for node in proof]}).encode()

    inclusion = [(i, 200, body(inclusion_proof(leaves, i, size))) for i in (0, 7, size - 1)]
    consistency = [(f, 200, body(consistency_proof(leaves, f, size))) for f in (1, 9, size - 2)]
    assert auditlog.check_proofs(config, size, inclusion, consistency) == (6, [])

    wrong = [(7, 200, body(inclusion_proof(leaves, 8, size)))]
    good, bad = auditlog.check_proofs(config, size, wrong, [(3, 400, b'{"title": "no"}')])
    assert good == 0
    assert bad == ["inclusion proof at 7 does not verify", "consistency 3: HTTP 400, not a proof"]
