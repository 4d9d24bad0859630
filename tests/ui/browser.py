"""Fixtures of the UI tests: one `engine server local` (its own embedded NATS) and one Chromium for
the whole session; every page is checked for console errors and saved as a screenshot.

The test module imports them (this is not a conftest, so that the other test folders'
``from conftest import ...`` keep finding their own). They live for the module: Playwright's sync API
keeps an event loop running until it stops, and the async tests collected after it need it gone.

Chromium is Debian's (`apt-get install chromium`); `playwright install` is never run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.testing.serve import local_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(os.environ.get("ENGINE_UI_SHOTS") or ROOT / "build" / "ui-screenshots")
FLOWS = Path(__file__).parent / "flows"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`engine server local` with the test flows deployed, on a free loopback port."""
    with local_server(tmp_path_factory.mktemp("ui-home"), "--flows", str(FLOWS)) as base:
        yield base


@pytest.fixture(scope="module")
def browser_context(pytestconfig: pytest.Config) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    profile = tempfile.mkdtemp(prefix="engine-ui-chromium-")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)
            capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
            with capture.global_and_fixture_disabled():  # the folder is shown, -q or not
                print(f"\nUI screenshots: {SHOTS}")


class Page:
    """A browser tab that records console errors and page errors; ``shot`` saves a screenshot."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on(
            "console",
            lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def goto(self, path: str) -> Any:
        self.page.goto(self.base + path)
        self.ready()
        return self.page

    def ready(self) -> None:
        self.page.wait_for_selector("body[data-ready]")
        assert self.page.get_attribute("body", "data-ready") == "true", self.page.inner_text("#status")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(name="ui")
def ui_fixture(server: str, browser_context: Any) -> Iterator[Page]:
    """A new tab on the server; the test fails on any console error the tab saw."""
    tab = Page(browser_context.new_page(), server)
    try:
        yield tab
        assert not tab.errors, tab.errors
    finally:
        tab.page.close()
