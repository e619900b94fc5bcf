"""What a new user meets first on the command line, on a kept demo whose hub is stopped.

The README's offline check of the demo's own draft, the assurance report for the current
quarter, a hub that is down, a --node that is not a node folder, and output for people
(tables and key/value lines) unless --json is given.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.audit.report import quarter_of
from tests.cli.test_cli import run


@pytest.fixture(scope="module")
def stopped_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("new-user") / "demo"
    run("demo", "--dir", root, "--keep", check=True)  # its hub is stopped again
    return root


def test_the_kept_draft_checks_offline_as_the_readme_says(stopped_demo: Path) -> None:
    draft = stopped_demo / "drafts" / "referral.json"
    checked = run("policy", "check", draft)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout == "no rule broken\n"
    assert json.loads(run("policy", "check", "--json", draft).stdout) == []


def test_the_assurance_report_defaults_to_the_current_quarter(stopped_demo: Path) -> None:
    config = stopped_demo / "hub.toml"
    default = run("report", "assurance", "--json", "--config", config)
    assert default.returncode == 0, default.stderr
    report = json.loads(default.stdout)
    assert report["period"] == quarter_of(datetime.now(UTC))
    # Referrals: health's, and the university's by email through the bridge.
    assert (report["referrals"], report["releases"], report["requests_submitted"]) == (2, 1, 1)
    current = run("report", "assurance", "--config", config, "--period", "current", "--json")
    assert json.loads(current.stdout)["releases"] == 1
    text = run("report", "assurance", "--config", config).stdout
    assert f"period: {report['period']}\n" in text
    assert "releases: 1\n" in text


def test_a_check_against_a_hub_that_is_down_is_one_line_and_exit_3(stopped_demo: Path) -> None:
    node = stopped_demo / "nodes" / "health.bsw-icb"
    result = run("policy", "check", "--node", node, stopped_demo / "drafts" / "referral.json")
    assert result.returncode == 3
    assert result.stderr.startswith("hub: cannot reach the hub: ")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["policy", "check"], ["node", "submit"]])
def test_a_node_option_naming_a_file_says_it_is_not_a_node_folder(
    stopped_demo: Path, command: list[str]
) -> None:
    config = stopped_demo / "hub.toml"
    result = run(*command, "--node", config, stopped_demo / "drafts" / "referral.json")
    assert result.returncode == 2
    assert result.stderr == f"hub: {config} is not a node folder: it is a file, not a folder\n"


def test_output_is_for_people_unless_json_is_asked_for(stopped_demo: Path) -> None:
    config = stopped_demo / "hub.toml"
    verified = run("audit", "verify", "--config", config)
    assert verified.returncode == 0
    assert verified.stdout.startswith("ok: yes\nentries: ")
    with pytest.raises(json.JSONDecodeError):
        json.loads(verified.stdout)
    listing = run("admin", "list", "--config", config).stdout.splitlines()
    assert listing[0].split() == ["id", "agency_type", "accreditation", "status", "display_name"]
    health = next(line for line in listing[2:] if line.startswith("health.bsw-icb"))
    assert health.split()[:4] == ["health.bsw-icb", "health", "OFFICIAL-SENSITIVE", "active"]
    nodes = json.loads(run("admin", "list", "--json", "--config", config).stdout)
    # The three agencies' nodes and the two partners on email the bridge holds.
    assert [n["id"] for n in nodes] == [
        "education.uni-bath",
        "health.bsw-icb",
        "la.wiltshire",
        "police.ctp-sw",
        "voluntary.channel-mentors",
    ]
    key = stopped_demo / "keys" / "hub.key"
    public = json.loads(run("keys", "public", "--json", "--key", key).stdout)
    assert run("keys", "public", "--key", key).stdout == (
        f"signing_key: {public['signing_key']}\nencryption_key: {public['encryption_key']}\n"
    )
