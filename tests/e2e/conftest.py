"""Browser tests: the real app served over HTTP on 127.0.0.1, driven by the system's headless Chromium.

Outside CI a machine without /usr/bin/chromium skips these tests; with CI=true they fail instead.
The network is closed, so Chromium starts with background networking and updates switched off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.conftest import require

CHROMIUM = Path("/usr/bin/chromium")
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
# Wide enough for the large-screen layout, where the sidebar menu is always on screen.
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 10_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chromium():
    """The system Chromium, launched once per session through Playwright."""
    require(CHROMIUM.exists(), "Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class QuietRequestHandler(WSGIRequestHandler):
    """No access log: a page and its assets would fill the report of a failure."""

    def log_request(self, *args, **kwargs) -> None:
        pass


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    """The session's app on a real HTTP server in a daemon thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def new_page(chromium, live_server, request, tmp_path) -> Iterator[Callable]:
    """Open a page in a fresh browser context (its own cookies), relative URLs on the live server.

    Every context is closed after the test; when the test failed, a screenshot and the HTML of
    each open page are kept in the test's tmp_path.
    """
    contexts = []

    def open_page():
        context = chromium.new_context(base_url=live_server, viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    report = getattr(request.node, "report_call", None)
    for number, context in enumerate(contexts):
        if report is not None and report.failed:
            for index, page in enumerate(context.pages):
                stem = tmp_path / f"failure-{number}-{index}"
                try:
                    page.screenshot(path=f"{stem}.png", full_page=True)
                    Path(f"{stem}.html").write_text(page.content(), encoding="utf-8")
                    print(f"browser page at failure: {page.url} -> {stem}.png / .html")
                except Exception as exc:  # the page may be gone; the test's own error matters more
                    print(f"could not keep the page at failure: {exc}")
        context.close()


@pytest.fixture
def browser_page(new_page):
    """A page in a fresh browser context."""
    return new_page()
