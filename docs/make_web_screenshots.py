"""Redraw docs/web-*.png: each tab of ``deepinside serve`` after a real run,
in Debian's Chromium. Run from the repository root:

    python docs/make_web_screenshots.py
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent
SLOW_MS = 300_000


def start_server(log: Path) -> tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "deepinside", "serve", "--port", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(1800):
        try:
            with urllib.request.urlopen(url, timeout=2):
                return process, url
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    raise RuntimeError(log.read_text())


def pick(page: Page, box: str, text: str) -> None:
    field = page.locator(f"#{box} input")
    field.click()
    field.press("Control+a")
    field.press("Backspace")
    field.press_sequentially(text, delay=10)
    page.wait_for_timeout(300)
    field.press("Enter")


def tick(page: Page, group: str, wanted: set[str]) -> None:
    for label in page.locator(f"#{group} label").all():
        if label.locator("input").is_checked() != (label.inner_text().strip() in wanted):
            label.click()


def explain_tab(page: Page) -> None:
    pick(page, "explain-sample", "chelsea")
    page.wait_for_selector("#explain-predictions .output-class", timeout=SLOW_MS)
    tick(page, "explain-methods", {"gradient", "guided-backprop", "grad-cam", "integrated-gradients"})
    page.click("#explain-run")
    page.wait_for_selector("#explain-box img", timeout=SLOW_MS)
    page.wait_for_timeout(1500)
    page.screenshot(path=DOCS / "web-explain.png", full_page=True)


def classmodel_tab(page: Page) -> None:
    page.get_by_role("tab", name="Visualise a class").click()
    pick(page, "cm-classes", "space shuttle")
    page.keyboard.press("Escape")
    page.locator("#cm-steps input").fill("96")
    page.click("#cm-run")
    page.wait_for_function("document.querySelector('#cm-status').innerText.includes('done')", timeout=SLOW_MS)
    page.wait_for_timeout(1500)
    page.screenshot(path=DOCS / "web-classmodel.png", full_page=True)


def compare_tab(page: Page) -> None:
    page.get_by_role("tab", name="Compare").click()
    pick(page, "compare-sample", "chelsea")
    page.keyboard.press("Escape")
    tick(page, "compare-methods", {"gradient", "guided-backprop", "grad-cam", "integrated-gradients"})
    page.locator("#compare-boxes textarea").fill("140 20 451 300")
    page.click("#compare-run")
    page.wait_for_selector("#compare-grid img", timeout=SLOW_MS)
    page.wait_for_timeout(1500)
    page.screenshot(path=DOCS / "web-compare.png", full_page=True)


def main() -> None:
    process, url = start_server(Path(tempfile.mkdtemp()) / "serve.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.wait_for_selector("#explain-upload")
            for tab in (explain_tab, classmodel_tab, compare_tab):
                tab(page)
                print(f"drew {tab.__name__}", flush=True)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
