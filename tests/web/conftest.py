"""A real ``deepinside serve`` in a subprocess, and Debian's Chromium driven
by Playwright. Without the browser tools the browser tests skip, except
under CI (CI=true), where they must run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Small caps, so that the tests can trip them with small files.
MAX_PIXELS = 1_000_000
MAX_UPLOAD_MB = 1


def missing_browser_tools() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for module, extra in (("gradio", "web"), ("playwright", "test")):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[{extra}]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def require_browser_tools() -> None:
    reason = missing_browser_tools()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run under CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen  # type: ignore[type-arg]
    seconds_to_answer: float
    log: Path
    external_requests: list[str] = field(default_factory=list)


def start_server(tmp: Path, *extra: str, timeout: float = 120.0) -> RunningServer:
    """``deepinside serve`` on a free loopback port; returns once the page answers."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "deepinside", "serve", "--port", str(port), *extra],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"deepinside serve exited with {process.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return RunningServer(url, process, time.perf_counter() - started, log)
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"deepinside serve did not answer in {timeout:.0f} s: {log.read_text()}")


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    require_browser_tools()
    server = start_server(
        tmp_path_factory.mktemp("serve"),
        "--max-pixels",
        str(MAX_PIXELS),
        "--max-upload-mb",
        str(MAX_UPLOAD_MB),
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def browser(web_server: RunningServer) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, web_server: RunningServer):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    watch_requests(page, web_server)
    page.goto(web_server.url)
    page.wait_for_selector("#explain-upload")
    yield page
    context.close()


def watch_requests(page, server: RunningServer) -> None:  # type: ignore[no-untyped-def]
    """Keep every request that leaves this machine (the page must make none)."""

    def seen(request) -> None:  # type: ignore[no-untyped-def]
        if not request.url.startswith((server.url, "data:", "blob:")):
            server.external_requests.append(request.url)

    page.on("request", seen)


@pytest.fixture(scope="session")
def cat_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real photo (scikit-image's cat, a tabby for the model) as a JPEG file to upload."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(path, quality=92)
    return path
