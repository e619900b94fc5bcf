"""schemas/registry/retention.yaml: loaded and checked like every registry file.

Every kind has one entry, each says where it comes from, and the sources set no period,
so every period is marked local policy (deploy/retention.md cites the passages).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from hub.config import HubConfig
from hub.model import MessageKind
from hub.policy.registry import DEFAULT_REGISTRY_DIR, RegistryError, load_registry
from hub.server import create_app
from tests.conftest import INSECURE_TEST_HUB_KEYS


@pytest.fixture
def registry_copy(tmp_path: Path) -> Path:
    target = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, target, ignore=shutil.ignore_patterns("schema"))
    return target


def _edit(path: Path, change: Callable[[Any], None]) -> None:
    document = yaml.safe_load(path.read_text("utf-8"))
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def test_every_kind_has_one_entry_with_its_source_and_is_local_policy() -> None:
    retention = load_registry().retention
    assert retention is not None
    assert sorted(e.kind for e in retention.kinds) == sorted(get_args(MessageKind))
    for entry in retention.kinds:
        assert entry.local_policy, entry.kind
        assert "Local policy" in entry.source, entry.kind
        assert entry.days >= 365, entry.kind
    assert retention.unsent_blobs.local_policy
    assert retention.unsent_blobs.days == 7


def test_requests_and_decisions_are_kept_after_acknowledgement() -> None:
    """Nodes read these back from the hub to build and check what answers them."""
    retention = load_registry().retention
    assert retention is not None
    kept = {e.kind for e in retention.kinds if not e.purge_when_acknowledged}
    assert kept == {"information_request", "decision"}
    assert retention.for_kind("decision").days == 730


def test_a_missing_retention_file_is_named(registry_copy: Path) -> None:
    (registry_copy / "retention.yaml").unlink()
    with pytest.raises(RegistryError, match=r"retention\.yaml is missing"):
        load_registry(registry_copy)


def test_a_kind_without_an_entry_is_named(registry_copy: Path) -> None:
    _edit(
        registry_copy / "retention.yaml",
        lambda d: d["retention"].update(
            kinds=[k for k in d["retention"]["kinds"] if k["kind"] not in ("note", "withdrawal")]
        ),
    )
    with pytest.raises(
        RegistryError, match=r"retention\.yaml: no entry for the kind\(s\) note, withdrawal"
    ):
        load_registry(registry_copy)


def test_a_kind_listed_twice_is_named(registry_copy: Path) -> None:
    _edit(
        registry_copy / "retention.yaml",
        lambda d: d["retention"]["kinds"].append(dict(d["retention"]["kinds"][0])),
    )
    with pytest.raises(
        RegistryError, match=r"retention\.yaml: retention kind 'referral' is defined twice"
    ):
        load_registry(registry_copy)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["retention"]["kinds"][2].update(kind="telegram"), r"kinds\.2\.kind"),
        (lambda d: d["retention"]["kinds"][1].update(days=0), r"kinds\.1\.days"),
        (lambda d: d["retention"]["kinds"][0].pop("source"), r"kinds\.0\.source"),
        (lambda d: d["retention"]["kinds"][0].update(forever=True), r"kinds\.0\.forever"),
        (lambda d: d["retention"]["unsent_blobs"].update(days=-1), r"unsent_blobs\.days"),
    ],
    ids=["unknown-kind", "zero-days", "no-source", "unknown-field", "negative-unsent"],
)
def test_a_bad_entry_is_named_with_its_file_and_field(
    registry_copy: Path, change: Callable[[Any], None], named: str
) -> None:
    _edit(registry_copy / "retention.yaml", change)
    with pytest.raises(RegistryError, match=rf"retention\.yaml: {named}"):
        load_registry(registry_copy)


def test_the_hub_does_not_start_without_retention_periods(
    make_config: Callable[..., HubConfig],
) -> None:
    registry = load_registry().model_copy(update={"retention": None})
    with pytest.raises(RegistryError, match=r"retention\.yaml"):
        create_app(make_config(), hub_keys=INSECURE_TEST_HUB_KEYS, registry=registry)
