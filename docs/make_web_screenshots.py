"""Redraw the web page's pictures in docs/, in Debian's Chromium against a
``deepinside serve`` this script starts. Run from the repository root:

    python docs/make_web_screenshots.py                # docs/web-*.png: each tab after a real run
    python docs/make_web_screenshots.py --scenes after # docs/web/after-*.png: the scenes of issue 33

The ``before-*`` scenes were drawn with ``--scenes before`` from a checkout
of the page before those fixes.
"""

from __future__ import annotations

import argparse
import functools
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

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


def save(page: Page, path: Path) -> None:
    """A full-page screenshot, downscaled and palette-coded to stay small."""
    page.screenshot(path=path, full_page=True)
    picture = Image.open(path).convert("RGB")
    if picture.width > 1000:
        picture = picture.resize((1000, round(picture.height * 1000 / picture.width)), Image.LANCZOS)
    picture.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def explain_tab(page: Page) -> None:
    pick(page, "explain-sample", "chelsea")
    page.wait_for_selector("#explain-predictions .output-class", timeout=SLOW_MS)
    tick(page, "explain-methods", {"gradient", "guided-backprop", "grad-cam", "integrated-gradients"})
    page.click("#explain-run")
    page.wait_for_selector("#explain-box img", timeout=SLOW_MS)
    page.wait_for_timeout(1500)
    save(page, DOCS / "web-explain.png")


def visualise_space_shuttle(page: Page, steps: int) -> None:
    """A finished class-model run of ``steps`` steps."""
    page.get_by_role("tab", name="Visualise a class").click()
    pick(page, "cm-classes", "space shuttle")
    page.keyboard.press("Escape")
    page.locator("#cm-steps input").fill(str(steps))
    page.click("#cm-run")
    page.wait_for_function("document.querySelector('#cm-status').innerText.includes('done')", timeout=SLOW_MS)
    page.wait_for_timeout(1500)


def compare_on_chelsea(page: Page, methods: set[str], box: str | None = None) -> None:
    """Compare's maps of ``methods`` on the sample cat, scored against ``box`` if given."""
    page.get_by_role("tab", name="Compare").click()
    pick(page, "compare-sample", "chelsea")
    page.keyboard.press("Escape")
    tick(page, "compare-methods", methods)
    if box is not None:
        page.locator("#compare-boxes textarea").fill(box)
    page.click("#compare-run")
    page.wait_for_selector("#compare-grid img", timeout=SLOW_MS)
    page.wait_for_timeout(1500)


def classmodel_tab(page: Page) -> None:
    visualise_space_shuttle(page, steps=96)
    save(page, DOCS / "web-classmodel.png")


def compare_tab(page: Page) -> None:
    compare_on_chelsea(
        page, {"gradient", "guided-backprop", "grad-cam", "integrated-gradients"}, "140 20 451 300"
    )
    save(page, DOCS / "web-compare.png")


def classmodel_scene(page: Page, prefix: str) -> None:
    visualise_space_shuttle(page, steps=48)
    save(page, DOCS / "web" / f"{prefix}-classmodel.png")
    # A long run, stopped: what the downloads offer then.
    page.locator("#cm-steps input").fill("1000")
    page.click("#cm-run")
    page.wait_for_function(
        "/step (1[0-9]|[2-9][0-9])\\//.test(document.querySelector('#cm-status').innerText)", timeout=SLOW_MS
    )
    page.click("#cm-stop")
    page.wait_for_function("document.querySelectorAll('#cm-files a[href]').length >= 1", timeout=SLOW_MS)
    page.wait_for_timeout(1500)
    save(page, DOCS / "web" / f"{prefix}-stopped.png")


def compare_scene(page: Page, prefix: str) -> None:
    compare_on_chelsea(page, {"gradient", "guided-backprop", "grad-cam"})
    save(page, DOCS / "web" / f"{prefix}-compare.png")


def bad_upload_scene(page: Page, prefix: str) -> None:
    page.get_by_role("tab", name="Explain a photo").click()
    pick(page, "explain-sample", "chelsea")
    page.wait_for_selector("#explain-predictions .output-class", timeout=SLOW_MS)
    text = Path(tempfile.mkdtemp()) / "notes.jpg"
    text.write_text("not a photo at all\n" * 20)
    page.set_input_files("#explain-upload input[type=file]", str(text))
    page.wait_for_timeout(4000)
    save(page, DOCS / "web" / f"{prefix}-bad-upload.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", metavar="PREFIX", help="draw the scenes as docs/web/PREFIX-*.png")
    args = parser.parse_args()
    process, url = start_server(Path(tempfile.mkdtemp()) / "serve.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            if args.scenes:
                for scene in (bad_upload_scene, compare_scene, classmodel_scene):
                    draw(browser, url, functools.partial(scene, prefix=args.scenes))
            else:
                page = new_page(browser, url)
                for tab in (explain_tab, classmodel_tab, compare_tab):
                    tab(page)
                    print(f"drew {tab.__name__}", flush=True)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def new_page(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.wait_for_selector("#explain-upload")
    return page


def draw(browser: Browser, url: str, scene: functools.partial[None]) -> None:
    """One scene on a fresh page, so that no scene starts from another's state."""
    page = new_page(browser, url)
    scene(page)
    print(f"drew {scene.func.__name__}", flush=True)
    page.close()


if __name__ == "__main__":
    main()
