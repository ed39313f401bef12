"""A real browser for the report page: headless Chromium from Debian's `chromium` package, driven by Playwright.

`make browser-deps` (a prerequisite of `make test`) installs Chromium; Playwright never downloads a browser here:
it launches /usr/bin/chromium with a fresh profile. In CI (`CI=true`) a missing Chromium or Playwright is a test
failure, never a skip; elsewhere these tests skip with the reason and the command that installs what is missing.

`open_report(path)` loads a page from its file and records everything the page does: console messages, page
errors, dialogs, every request (all of them aborted except the page's own file).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
# The flags the project runs Chromium with (README "Two commands"): headless, no sandbox (root in CI), nothing
# that phones home (background networking, component updates, sync, QUIC), a fresh profile (Playwright's
# persistent context is given a new --user-data-dir per module).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "out" / "test-screenshots"
VIEWPORT = {"width": 1100, "height": 900}


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason}; in CI the browser tests must run (`make browser-deps` installs Chromium)")
    pytest.skip(f"{reason}; `make browser-deps` installs Chromium (apt-get install -y chromium, as root)")


@dataclass
class PageLog:
    """What a loaded page did."""

    url: str
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Console errors and warnings, page errors, dialogs and requests for anything but the page itself."""
        out = [f"console {kind}: {text}" for kind, text in self.console if kind in ("error", "warning", "assert")]
        out += [f"page error: {e}" for e in self.errors]
        out += [f"dialog: {d}" for d in self.dialogs]
        out += [f"request: {r}" for r in self.requests if r != self.url]
        out += [f"blocked request: {r}" for r in self.blocked]
        return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium context with a fresh profile (one per test module)."""
    if not CHROMIUM.exists():
        _missing(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -r requirements-dev.txt)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,  # type: ignore[arg-type]
            java_script_enabled=True,  # the page has no script; an injected one would run and be caught
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def open_report(browser: Any) -> Iterator[Callable[[Path], tuple[Any, PageLog]]]:
    pages: list[Any] = []

    def load(path: Path) -> tuple[Any, PageLog]:
        page = browser.new_page()
        pages.append(page)
        log = PageLog(url=path.resolve().as_uri())

        def route(r: Any) -> None:
            if r.request.url == log.url:
                r.continue_()
            else:
                log.blocked.append(r.request.url)
                r.abort()

        page.on("console", lambda m: log.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: log.errors.append(str(e)))
        page.on("request", lambda r: log.requests.append(r.url))
        page.on("dialog", lambda d: (log.dialogs.append(f"{d.type}: {d.message}"), d.dismiss()))
        page.route("**/*", route)
        page.goto(log.url, wait_until="load")
        page.wait_for_timeout(300)  # anything deferred (a refresh, a timer, a lazy image) would show by now
        return page, log

    yield load
    for p in pages:
        p.close()
