"""[metrics] and [logging] in hub.toml: defaults, values, and refusals that name the key."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest

from hub.config import ConfigError, LogConfig, MetricsConfig, load_hub_config
from hub.server.metrics import _allowed
from tests.conftest import write_hub_toml

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, extra: str = "") -> Path:
    return write_hub_toml(tmp_path, extra)


def test_without_the_sections_metrics_are_on_for_loopback_and_logs_are_text(
    tmp_path: Path,
) -> None:
    config = load_hub_config(_config(tmp_path))
    assert config.metrics == MetricsConfig(
        enabled=True, allow=(ip_network("127.0.0.0/8"), ip_network("::1/128"))
    )
    assert config.logging == LogConfig(format="text", level="INFO")


def test_the_sections_are_read(tmp_path: Path) -> None:
    extra = (
        "\n[metrics]\nenabled = false\nallow = ['10.1.0.0/16', '2001:db8::/32', '192.0.2.7']\n"
        "\n[logging]\nformat = 'json'\nlevel = 'debug'\n"
    )
    config = load_hub_config(_config(tmp_path, extra))
    assert config.metrics.enabled is False
    assert config.metrics.allow == (
        ip_network("10.1.0.0/16"),
        ip_network("2001:db8::/32"),
        ip_network("192.0.2.7/32"),
    )
    assert config.logging == LogConfig(format="json", level="DEBUG")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[metrics]\nenable = true\n", r"unknown key\(s\) in \[metrics\]: enable \(known: allow"),
        ("[logging]\nformt = 'json'\n", r"unknown key\(s\) in \[logging\]: formt \(known: format"),
        ("[metrics]\nenabled = 'yes'\n", r"metrics\.enabled must be bool, got str"),
        ("[metrics]\nenabled = 1\n", r"metrics\.enabled must be bool, got int"),
        ("[metrics]\nallow = '127.0.0.1'\n", r"metrics\.allow must be list, got str"),
        ("[metrics]\nallow = []\n", r"metrics\.allow must name at least one network"),
        ("[metrics]\nallow = ['127.0.0.1/8', 7]\n", r"metrics\.allow\[1\] must be a string"),
        ("[metrics]\nallow = ['10.0.0.0/33']\n", r"metrics\.allow\[0\] is not an IP network"),
        ("[metrics]\nallow = ['localhost']\n", r"metrics\.allow\[0\] is not an IP network"),
        ("[logging]\nformat = 'xml'\n", r"logging\.format must be 'text' or 'json', got 'xml'"),
        ("[logging]\nformat = 1\n", r"logging\.format must be str, got int"),
        (
            "[logging]\nlevel = 'loud'\n",
            r"logging\.level must be one of DEBUG, INFO, WARNING, ERROR",
        ),
        ("metrics = true\n", r"\[metrics\] must be a table"),
    ],
)
def test_a_bad_value_is_refused_with_its_key(tmp_path: Path, extra: str, message: str) -> None:
    path = _config(tmp_path)
    if not extra.startswith("["):
        # A top-level key must come before the first table.
        path.write_text(extra + path.read_text())
    else:
        path.write_text(path.read_text() + "\n" + extra)
    with pytest.raises(ConfigError, match=message):
        load_hub_config(path)


def test_the_deploy_example_sets_metrics_and_json_logs() -> None:
    config = load_hub_config(ROOT / "deploy" / "hub.example.toml")
    assert config.metrics.enabled is True
    assert config.metrics.allow == (ip_network("127.0.0.1/32"), ip_network("::1/128"))
    assert config.logging.format == "json"


@pytest.mark.parametrize(
    ("remote", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4 on a dual-stack socket
        ("10.9.8.7", True),
        ("10.10.0.1", False),
        ("192.0.2.1", False),
        ("fe80::1%eth0", False),
        ("", False),
        (None, False),
        ("not-an-address", False),
    ],
)
def test_the_allow_list_matches_the_peer_address(remote: str | None, allowed: bool) -> None:
    config = MetricsConfig(
        allow=(ip_network("127.0.0.0/8"), ip_network("::1/128"), ip_network("10.9.0.0/16"))
    )
    assert _allowed(remote, config) is allowed
