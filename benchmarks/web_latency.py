"""Latency of ``deepinside serve`` as a user feels it, in Debian's Chromium.

Measures: seconds from starting ``deepinside serve`` to the page answering;
seconds from the Explain click to the first (gradient) map showing, idle;
and the same from a second browser while a class visualisation runs in the
first (the ratio to idle is what the per-kind queues are for). Writes JSON:

    python benchmarks/web_latency.py [--repeats 5] [--json benchmarks/results/web_latency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _results import write_results
from PIL import Image
from playwright.sync_api import Page, sync_playwright
from skimage import data

CHROMIUM = "/usr/bin/chromium"
# Tabby and Egyptian cat, alternated: the page shows a new picture only for a new map.
CLASSES = ("n02123045", "n02124075")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log: Path) -> tuple[subprocess.Popen, str, float]:  # type: ignore[type-arg]
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "deepinside", "serve", "--port", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return process, url, time.perf_counter() - started
        except OSError:
            if process.poll() is not None or time.perf_counter() - started > 180:
                raise RuntimeError(log.read_text()) from None
            time.sleep(0.1)


def open_page(browser, url: str) -> Page:  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    page.goto(url)
    page.wait_for_selector("#explain-upload")
    return page


def prepare_explain(page: Page, photo: Path) -> None:
    page.set_input_files("#explain-upload input[type=file]", str(photo))
    page.wait_for_selector("#explain-predictions .output-class")
    for label in page.locator("#explain-methods label").all():
        if label.locator("input").is_checked() != (label.inner_text().strip() == "gradient"):
            label.click()


def choose_class(page: Page, wnid: str) -> None:
    field = page.locator("#explain-class input")
    field.click()
    field.press("Control+a")
    field.press("Backspace")
    field.press_sequentially(wnid, delay=10)
    page.wait_for_function("document.querySelectorAll('[role=option]').length == 1")
    field.press("Enter")


def first_map_seconds(page: Page, wnid: str) -> float:
    """From the click to a new first map in the page; then waits for the rest of the job."""
    choose_class(page, wnid)
    srcs = "(sel) => { const i = document.querySelector(sel); return i ? i.src : ''; }"
    old_map = page.evaluate(srcs, "#explain-maps img")
    old_box = page.evaluate(srcs, "#explain-box img")
    changed = "([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old; }"
    clicked = time.perf_counter()
    page.click("#explain-run")
    page.wait_for_function(changed, arg=["#explain-maps img", old_map], timeout=120_000, polling=20)
    seconds = time.perf_counter() - clicked
    page.wait_for_function(changed, arg=["#explain-box img", old_box], timeout=120_000)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/web_latency.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="web-latency-"))
    photo = work / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(photo, quality=92)
    process, url, ready = start_server(work / "serve.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            user = open_page(browser, url)
            prepare_explain(user, photo)
            first_map_seconds(user, CLASSES[1])  # the page's own first use (its scripts, caches)
            idle = [first_map_seconds(user, CLASSES[i % 2]) for i in range(args.repeats)]
            last = (args.repeats - 1) % 2

            other = open_page(browser, url)
            other.get_by_role("tab", name="Visualise a class").click()
            other.get_by_label("paper").check()
            other.locator("#cm-steps input").fill("1000")
            other.click("#cm-run")
            other.wait_for_function("document.querySelector('#cm-status').innerText.includes('S_c')")
            busy = [first_map_seconds(user, CLASSES[(last + 1 + i) % 2]) for i in range(args.repeats)]
            still_running = "step" in other.locator("#cm-status").inner_text()
            other.click("#cm-stop")
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    results = {
        # This machine's cores are shared: the load says how much of them the run had.
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "serve_to_page_s": round(ready, 2),
        "first_map_idle_s": [round(t, 3) for t in idle],
        "first_map_during_class_visualisation_s": [round(t, 3) for t in busy],
        "class_visualisation_ran_throughout": still_running,
        "median_idle_s": round(statistics.median(idle), 3),
        "median_busy_s": round(statistics.median(busy), 3),
        "busy_over_idle": round(statistics.median(busy) / statistics.median(idle), 2),
    }
    print(json.dumps(write_results(args.json, "web_latency", results), indent=2))


if __name__ == "__main__":
    main()
