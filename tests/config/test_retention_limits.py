"""The blob quota, upload expiry and sweep interval in hub.toml's [limits]
(deploy/retention.md): defaults, the deploy example, and bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import ConfigError, Limits, load_hub_config
from tests.conftest import write_hub_toml

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "hub.example.toml"
NEW_KEYS = (
    "blob_quota_bytes",
    "max_pending_uploads",
    "blob_upload_expiry_seconds",
    "retention_sweep_seconds",
)


def _config(tmp_path: Path, limits: str) -> Path:
    return write_hub_toml(tmp_path, f"\n[limits]\n{limits}\n")


def test_the_defaults_are_a_64_gib_quota_32_uploads_a_day_and_ten_minutes() -> None:
    limits = Limits()
    assert limits.blob_quota_bytes == 64 * 1024**3
    assert limits.max_pending_uploads == 32
    assert limits.blob_upload_expiry_seconds == 86400.0
    assert limits.retention_sweep_seconds == 600.0
    # A quota holds at least one largest blob.
    assert limits.blob_quota_bytes >= limits.blob_max_bytes


def test_the_deploy_example_names_every_retention_limit_with_its_default() -> None:
    text = EXAMPLE.read_text()
    example = load_hub_config(EXAMPLE).limits
    for key in NEW_KEYS:
        assert f"\n{key} = " in text, key
        assert getattr(example, key) == getattr(Limits(), key), key


def test_the_limits_are_read_from_the_config(tmp_path: Path) -> None:
    limits = load_hub_config(
        _config(
            tmp_path,
            "blob_quota_bytes = 1000\nmax_pending_uploads = 3\n"
            "blob_upload_expiry_seconds = 60\nretention_sweep_seconds = 0.5",
        )
    ).limits
    assert (
        limits.blob_quota_bytes,
        limits.max_pending_uploads,
        limits.blob_upload_expiry_seconds,
        limits.retention_sweep_seconds,
    ) == (1000, 3, 60.0, 0.5)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("blob_quota_bytes = 0", "limits.blob_quota_bytes must be positive"),
        ("max_pending_uploads = -1", "limits.max_pending_uploads must be positive"),
        ("blob_upload_expiry_seconds = 0", "limits.blob_upload_expiry_seconds must be positive"),
        ("retention_sweep_seconds = 0.0", "limits.retention_sweep_seconds must be positive"),
        ("blob_quota_bytes = '64G'", "limits.blob_quota_bytes must be int, got str"),
        ("max_pending_uploads = 2.5", "limits.max_pending_uploads must be int, got float"),
        ("max_pending_uploads = true", "limits.max_pending_uploads must be an integer"),
        ("blob_quota_byte = 10", "unknown key(s) in [limits]: blob_quota_byte"),
    ],
)
def test_a_bad_value_is_refused_with_its_key(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_hub_config(_config(tmp_path, line))
    assert message in str(refused.value)
