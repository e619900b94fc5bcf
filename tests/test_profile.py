"""A node folder's config is written as valid TOML whatever its values, and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.cli.main import main
from hub.client import load_node_profile, write_node_profile


def test_profile_values_with_quotes_and_backslashes_round_trip(tmp_path: Path) -> None:
    odd_url = 'http://127.0.0.1:8443/a"b\\c'
    write_node_profile(
        tmp_path,
        node_id="la.wiltshire",
        agency_type="local_authority",
        hub_url=odd_url,
        hub_id='hub "demo"',
        hub_signing_key=bytes(32),
    )
    profile = load_node_profile(tmp_path)
    assert profile.hub_url == odd_url
    assert profile.hub_id == 'hub "demo"'


def test_node_init_refuses_a_bad_node_id_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "hub.pub.json"
    assert (
        main(["keys", "generate", "--out", str(tmp_path / "hub.key"), "--public-out", str(pub)])
        == 0
    )
    folder = tmp_path / "node"
    code = main(
        [
            "node",
            "init",
            "--node",
            str(folder),
            "--node-id",
            'la"x',
            "--agency-type",
            "local_authority",
            "--hub-url",
            "http://127.0.0.1:1",
            "--hub-id",
            "hub.x",
            "--hub-public-keys",
            str(pub),
        ]
    )
    assert code == 2
    assert "must look like '<agency>.<organisation>'" in capsys.readouterr().err
    assert not folder.exists()
