"""Before/after screenshots of the page's fixes (docs/web/before-*.png,
docs/web/after-*.png), in Debian's Chromium against a running server:

    deepinside serve --port 7860 &
    python docs/web/shots.py http://127.0.0.1:7860 after
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
HERE = Path(__file__).resolve().parent
SLOW_MS = 300_000


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


def classmodel(page: Page, prefix: str) -> None:
    page.get_by_role("tab", name="Visualise a class").click()
    pick(page, "cm-classes", "space shuttle")
    page.keyboard.press("Escape")
    page.locator("#cm-steps input").fill("48")
    page.click("#cm-run")
    page.wait_for_function("document.querySelector('#cm-status').innerText.includes('done')", timeout=SLOW_MS)
    page.wait_for_timeout(1500)
    save(page, HERE / f"{prefix}-classmodel.png")
    # A long run, stopped: what the downloads offer then.
    page.locator("#cm-steps input").fill("1000")
    page.click("#cm-run")
    page.wait_for_function(
        "/step (1[0-9]|[2-9][0-9])\\//.test(document.querySelector('#cm-status').innerText)", timeout=SLOW_MS
    )
    page.click("#cm-stop")
    page.wait_for_function("document.querySelectorAll('#cm-files a[href]').length >= 1", timeout=SLOW_MS)
    page.wait_for_timeout(1500)
    save(page, HERE / f"{prefix}-stopped.png")


def compare(page: Page, prefix: str) -> None:
    page.get_by_role("tab", name="Compare").click()
    pick(page, "compare-sample", "chelsea")
    page.keyboard.press("Escape")
    tick(page, "compare-methods", {"gradient", "guided-backprop", "grad-cam"})
    page.click("#compare-run")
    page.wait_for_selector("#compare-grid img", timeout=SLOW_MS)
    page.wait_for_timeout(1500)
    save(page, HERE / f"{prefix}-compare.png")


def bad_upload(page: Page, prefix: str) -> None:
    page.get_by_role("tab", name="Explain a photo").click()
    pick(page, "explain-sample", "chelsea")
    page.wait_for_selector("#explain-predictions .output-class", timeout=SLOW_MS)
    text = Path(tempfile.mkdtemp()) / "notes.jpg"
    text.write_text("not a photo at all\n" * 20)
    page.set_input_files("#explain-upload input[type=file]", str(text))
    page.wait_for_timeout(4000)
    save(page, HERE / f"{prefix}-bad-upload.png")


def main() -> None:
    url, prefix = sys.argv[1], sys.argv[2]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for shot in (bad_upload, compare, classmodel):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.wait_for_selector("#explain-upload")
            shot(page, prefix)
            print(f"drew {prefix} {shot.__name__}", flush=True)
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
