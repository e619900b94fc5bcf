"""A hub and three node consoles as real processes, and headless Chromium to drive them.

The federation is the demo's, kept on disk (``hub demo --dir … --keep``), served by a real
``hub serve``; each node runs a real ``hub node console`` with users added by ``hub node
users add``. Chromium is Debian's package, driven by Playwright for Python; as CI runs as
root it needs ``--no-sandbox``. Every page visited can be checked with axe-core and
saved as a screenshot (``HUB_SCREENSHOTS``, default ``build/screenshots``).

The passwords below are for these tests only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium")
HUB = [sys.executable, "-m", "hub.cli.main"]
INSECURE_TEST_PASSWORD = "insecure-browser-test-password-0001"
SCREENSHOTS = Path(os.environ.get("HUB_SCREENSHOTS", "build/screenshots"))

# Who works at each node in the browser tests (synthetic people).
USERS: dict[str, list[tuple[str, str, list[str]]]] = {
    "police.ctp-sw": [
        ("officer", "PC Alex Example", ["PREVENT_POLICE_OFFICER"]),
        ("panel-police", "DS Jo Sample", ["PANEL_MEMBER"]),
        ("admin", "Police Node Admin", ["NODE_ADMIN"]),
    ],
    "health.bsw-icb": [
        ("lead", "Nurse Riley Synthetic", ["SAFEGUARDING_LEAD"]),
        ("caldicott", "Dr Morgan Fictional", ["CALDICOTT_GUARDIAN"]),
        ("panel-health", "Casey Placeholder", ["PANEL_MEMBER"]),
        ("auditor", "Avery Auditor", ["AUDITOR"]),
        ("admin", "Health Node Admin", ["NODE_ADMIN"]),
    ],
    "la.wiltshire": [
        ("chair", "Jordan Chair", ["CHANNEL_CHAIR"]),
        ("admin", "Council Node Admin", ["NODE_ADMIN"]),
    ],
}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def hub_cli(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*HUB, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        input=stdin,
    )
    if result.returncode != 0:
        raise AssertionError(f"hub {args} failed ({result.returncode}):\n{result.stderr}")
    return result


def wait_for(url: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback URL
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {deadline} s")


@dataclass
class Console:
    node_id: str
    node_dir: Path
    url: str
    log: Path


@dataclass
class Federation:
    root: Path
    consoles: dict[str, Console]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def console(self, node_id: str) -> Console:
        return self.consoles[node_id]


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    base = tmp_path_factory.mktemp("browser")
    root = base / "demo"
    hub_cli("demo", "--dir", root, "--keep")
    config = (root / "hub.toml").read_text()
    port = int(next(line.split("=")[1] for line in config.splitlines() if line.startswith("port")))
    processes: list[subprocess.Popen[bytes]] = []
    logs = base / "logs"
    logs.mkdir()
    password_file = base / "password"
    password_file.write_text(INSECURE_TEST_PASSWORD + "\n")
    password_file.chmod(0o600)
    try:
        hub_log = (logs / "hub.log").open("wb")
        processes.append(
            subprocess.Popen(
                [*HUB, "serve", "--config", str(root / "hub.toml")],
                stdout=hub_log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_for(f"http://127.0.0.1:{port}/v1/health")
        consoles = {}
        for node_id, people in USERS.items():
            node_dir = root / "nodes" / node_id
            for username, name, roles in people:
                role_args: list[str] = []
                for role in roles:
                    role_args += ["--role", role]
                hub_cli(
                    "node",
                    "users",
                    "add",
                    "--node",
                    node_dir,
                    "--username",
                    username,
                    "--name",
                    name,
                    *role_args,
                    "--vetting",
                    "SC",
                    "--password-file",
                    password_file,
                )
            console_port = free_port()
            log = logs / f"{node_id}.log"
            processes.append(
                subprocess.Popen(
                    [
                        *HUB,
                        "node",
                        "console",
                        "--node",
                        str(node_dir),
                        "--port",
                        str(console_port),
                        "--sync-wait",
                        "2",
                    ],
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
            url = f"http://127.0.0.1:{console_port}"
            consoles[node_id] = Console(node_id, node_dir, url, log)
        for console in consoles.values():
            wait_for(console.url + "/healthz")
        yield Federation(root=root, consoles=consoles, processes=processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


def sign_in(browser: Any, console: Console, username: str) -> Any:
    """A new browser context signed in to ``console`` as ``username``; its page."""
    context = browser.new_context(base_url=console.url, accept_downloads=True)
    page = context.new_page()
    page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(INSECURE_TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/inbox")
    return page


def check_accessibility(page: Any, name: str) -> None:
    """axe-core on the page as it stands: no serious or critical violation; a screenshot."""
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page)
    bad = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in result.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    screenshot(page, name)
    assert not bad, f"accessibility violations on {name} ({page.url}):\n" + "\n".join(bad)


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
