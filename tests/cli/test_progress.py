"""Progress of a large file payload on stderr: asked for with --progress, never on stdout."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

from hub.cli.common import StderrProgress
from tests.cli.test_cli import run

PAYLOAD_BYTES = 3 << 20  # well over the 64 KiB inline limit: a blob, in several pieces


def test_submit_and_inbox_show_progress_of_a_large_payload(kept_demo: Path, tmp_path: Path) -> None:
    health = kept_demo / "nodes" / "health.bsw-icb"
    police = kept_demo / "nodes" / "police.ctp-sw"
    run("node", "inbox", "--json", "--node", police, check=True)  # what the demo left
    # Random bytes do not compress; fixed seed, synthetic content.
    (tmp_path / "scan.bin").write_bytes(random.Random(7).randbytes(PAYLOAD_BYTES))
    draft = json.loads((kept_demo / "drafts" / "referral.json").read_text())
    draft["envelope"].update(kind="note", purpose="PREVENT_TRIAGE", recipients=["police.ctp-sw"])
    for field in ("legal_basis", "consent", "urgency"):
        draft["envelope"].pop(field, None)
    draft["payload"] = {"media_type": "application/octet-stream", "file": "scan.bin"}
    path = tmp_path / "note.json"
    path.write_text(json.dumps(draft))

    quiet = run("node", "submit", "--json", "--node", health, path)  # stderr is not a TTY
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "upload:" not in quiet.stderr
    sent = run("node", "submit", "--json", "--progress", "--node", health, path)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    json.loads(sent.stdout)  # stdout is the receipt alone
    assert sent.stderr.rstrip().endswith("(100%)")
    assert "upload: " in sent.stderr

    inbox = run("node", "inbox", "--json", "--progress", "--node", police)
    assert inbox.returncode == 0, inbox.stderr
    assert len(json.loads(inbox.stdout)) == 2
    assert inbox.stderr.count("(100%)\n") == 2
    assert "download: " in inbox.stderr


def test_progress_redraws_one_line_and_ends_it() -> None:
    out = io.StringIO()
    progress = StderrProgress(out)
    progress("upload", 1 << 20, 4 << 20)
    progress("upload", 2 << 20, 4 << 20)  # within 0.2 s: not redrawn
    progress("upload", 4 << 20, 4 << 20)
    assert out.getvalue() == ("\rupload: 1.0 of 4.0 MiB (25%)\rupload: 4.0 of 4.0 MiB (100%)\n")
