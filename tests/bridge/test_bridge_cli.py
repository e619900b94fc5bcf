"""``hub bridge``: init, key, partners add|list|disable|key, deliveries; errors in one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hub.cli.main import main
from tests.bridge.conftest import GpgHomes, Mailbox, SmtpServer, write_bridge_toml

EMAIL = "ada.lead@safeguarding.example.ac.uk"


@pytest.fixture
def setup(tmp_path: Path, gpg_homes: GpgHomes) -> tuple[Path, Path]:
    """A bridge folder (short path, for gpg-agent) and its bridge.toml, initialised."""
    smtp = SmtpServer(host="127.0.0.1", port=2525, ca_file=tmp_path / "ca.pem", mailbox=Mailbox())
    config = write_bridge_toml(tmp_path / "bridge.toml", "http://127.0.0.1:9", smtp)
    folder = gpg_homes.new() / "bridge"
    assert main(["bridge", "init", "--node", str(folder), "--config", str(config)]) == 0
    yield folder, config
    subprocess.run(["gpgconf", "--homedir", str(folder / "gnupg"), "--kill", "all"], check=False)


def test_enrol_list_and_disable_a_partner(
    setup: tuple[Path, Path],
    gpg_homes: GpgHomes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, config = setup
    capsys.readouterr()
    assert main(["bridge", "key", "--node", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    out = tmp_path / "bridge-public-key.asc"
    assert main(["bridge", "key", "--node", str(folder), "--out", str(out)]) == 0
    assert out.read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert capsys.readouterr().out == f"wrote {out}\n"

    lead = gpg_homes.user(EMAIL)
    key_file = tmp_path / "lead.asc"
    key_file.write_text(lead.export_public())
    add = [
        "bridge", "partners", "add", "--node", str(folder), "--config", str(config),
        "--node-id", "education.uni-bath", "--email", EMAIL, "--name", "Dr Ada Lead",
        "--organisation", "University of Bath", "--agency-type", "education",
        "--key", str(key_file), "--json",
    ]  # fmt: skip
    assert main([*add, "--fingerprint", lead.fingerprint]) == 0
    enrolled = json.loads(capsys.readouterr().out)
    assert enrolled["fingerprint"] == lead.fingerprint
    assert "hub admin enrol" in enrolled["next"]
    assert Path(enrolled["public_keys"]).is_file()

    # The same again is refused in one line, exit 1, nothing changed.
    assert main([*add, "--fingerprint", lead.fingerprint]) == 1
    assert "already enrolled" in capsys.readouterr().err

    assert main(["bridge", "partners", "list", "--node", str(folder)]) == 0
    listing = capsys.readouterr().out
    assert "education.uni-bath" in listing
    assert "usable until" in listing

    assert main(["bridge", "partners", "disable", "--node", str(folder),
                 "--node-id", "education.uni-bath"]) == 0  # fmt: skip
    assert "hub admin suspend" in capsys.readouterr().out
    assert main(["bridge", "partners", "list", "--node", str(folder), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "disabled"

    update = ["bridge", "partners", "key", "--node", str(folder), "--node-id",
              "education.uni-bath", "--key", str(key_file), "--json"]  # fmt: skip
    assert main(update) == 0
    assert json.loads(capsys.readouterr().out)["key"].startswith("usable until")

    assert main(["bridge", "deliveries", "--node", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["bridge", "inbound", "--node", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_wrong_fingerprint_is_refused_by_the_command(
    setup: tuple[Path, Path],
    gpg_homes: GpgHomes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, config = setup
    lead = gpg_homes.user(EMAIL)
    key_file = tmp_path / "lead.asc"
    key_file.write_text(lead.export_public())
    wrong = "0" * 40
    code = main([
        "bridge", "partners", "add", "--node", str(folder), "--config", str(config),
        "--node-id", "education.uni-bath", "--email", EMAIL, "--name", "Dr Ada Lead",
        "--organisation", "University of Bath", "--agency-type", "education",
        "--key", str(key_file), "--fingerprint", wrong,
    ])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("hub: --key: the key's fingerprint is ")
    assert not (folder / "partners" / "education.uni-bath").exists()


def test_a_misspelt_config_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bridge.toml"
    smtp = SmtpServer(host="127.0.0.1", port=2525, ca_file=tmp_path / "ca.pem", mailbox=Mailbox())
    write_bridge_toml(config, "http://127.0.0.1:9", smtp, prot=25)
    assert main(["bridge", "init", "--node", str(tmp_path / "b"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "[smtp] has unknown key(s) prot" in err
    assert not (tmp_path / "b").exists()


def test_a_folder_that_is_not_a_bridge_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bridge", "partners", "list", "--node", str(tmp_path)]) == 2
    assert "is not a bridge folder; create it with: hub bridge init" in capsys.readouterr().err
