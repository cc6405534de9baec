"""The page in a real browser (Debian's Chromium driven by Playwright)
against a real ``deepinside serve``: what a user clicks, what they see."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deepinside
from deepinside.io.photos import load_photo

from .conftest import MAX_PIXELS, RunningServer

#: Slow (a real browser, a Ray instance, many threads, the whole matrix): `make test-fast` skips it.
pytestmark = pytest.mark.slow

TABBY = "n02123045"  # WordNet id of class 281, tabby cat
TIMEOUT_MS = 90_000


def choose_class(page, box: str, wnid: str) -> None:  # type: ignore[no-untyped-def]
    """Type a WordNet id into a class box and take the one option it leaves."""
    field = page.locator(f"#{box} input")
    field.click()
    field.press("Control+a")
    field.press("Backspace")
    field.press_sequentially(wnid, delay=20)
    page.wait_for_function("document.querySelectorAll('[role=option]').length == 1")
    field.press("Enter")
    from playwright.sync_api import expect  # here: the module must import without playwright (to skip)

    expect(field).to_have_value(re.compile(rf"^\d+ · .* · {wnid}$"))


def set_methods(page, group: str, wanted: set[str]) -> None:  # type: ignore[no-untyped-def]
    for label in page.locator(f"#{group} label").all():
        name = label.inner_text().strip()
        if label.locator("input").is_checked() != (name in wanted):
            label.click()


def upload_photo(page, path: Path) -> None:  # type: ignore[no-untyped-def]
    page.set_input_files("#explain-upload input[type=file]", str(path))
    page.wait_for_selector("#explain-predictions .output-class", timeout=TIMEOUT_MS)


def file_links(page, box: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The download links of a file box, by file name."""
    links = page.locator(f"#{box} a[href]").all()
    return {Path(a.get_attribute("href")).name: a.get_attribute("href") for a in links}


def error_about(page, name: str) -> str:  # type: ignore[no-untyped-def]
    """The text of the error notice that names ``name``."""
    notice = page.locator(".toast-body", has_text=name).first
    notice.wait_for(timeout=TIMEOUT_MS)
    return notice.inner_text()


def test_explain_photo_shows_maps_and_serves_the_library_s_map(
    page, web_server: RunningServer, cat_photo: Path, model: deepinside.Classifier
) -> None:
    upload_photo(page, cat_photo)
    assert "tabby" in page.locator("#explain-predictions").inner_text()
    choose_class(page, "explain-class", TABBY)
    set_methods(page, "explain-methods", {"gradient", "guided-backprop"})

    clicked = time.perf_counter()
    page.click("#explain-run")
    page.wait_for_selector("#explain-maps img", timeout=TIMEOUT_MS)
    first_map = time.perf_counter() - clicked
    page.wait_for_selector("#explain-box img", timeout=TIMEOUT_MS)
    page.wait_for_function(
        "document.querySelectorAll('#explain-files a[href]').length >= 5", timeout=TIMEOUT_MS
    )
    assert page.locator("#explain-overlays img").count() >= 2
    assert page.locator("#explain-mask img").count() == 1

    links = file_links(page, "explain-files")
    (npy,) = [h for n, h in links.items() if n.endswith(".npy") and ".gradient." in n]
    (record,) = [h for n, h in links.items() if n.endswith(".json")]
    downloaded = np.load(io.BytesIO(page.request.get(npy).body()))
    meta = json.loads(page.request.get(record).body())
    (gradient,) = [m for m in meta["maps"] if m["method"] == "gradient"]
    assert gradient["class_index"] == 281 and set(meta["methods"]) == {"gradient", "guided-backprop"}

    photo = load_photo(cat_photo)
    inputs, placements = model.prepare([photo])
    expected = placements[0].to_photo(deepinside.saliency(model, inputs, 281)[0]).numpy()
    assert downloaded.shape == (photo.height, photo.width)
    np.testing.assert_allclose(downloaded, expected, rtol=1e-4, atol=1e-6 * float(expected.max()))
    print(
        f"time to first map from the click: {first_map:.2f} s; "
        f"serve to page: {web_server.seconds_to_answer:.1f} s"
    )


def test_class_visualisation_streams_progress_and_stops(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Visualise a class").click()
    page.get_by_label("paper").check()
    page.locator("#cm-steps input").fill("6")
    page.locator("#cm-size input").fill("64")
    page.click("#cm-run")
    page.wait_for_function("document.querySelectorAll('#cm-files a[href]').length >= 4", timeout=TIMEOUT_MS)
    assert "done" in page.locator("#cm-status").inner_text()
    names = set(file_links(page, "cm-files"))
    assert {"contact_sheet.png", "summary.json"} <= names and any(n.endswith(".log.csv") for n in names)

    # A long run: watch the step counter advance, then stop it midway.
    page.locator("#cm-steps input").fill("1000")
    page.click("#cm-run")
    steps_seen = []
    deadline = time.monotonic() + 90
    while len(set(steps_seen)) < 3 and time.monotonic() < deadline:
        found = re.search(r"step (\d+)/1000", page.locator("#cm-status").inner_text())
        if found:
            steps_seen.append(int(found.group(1)))
        time.sleep(0.2)
    assert len(set(steps_seen)) >= 3 and steps_seen == sorted(steps_seen), steps_seen
    assert "S_c" in page.locator("#cm-status").inner_text()
    assert page.locator("#cm-pictures img").count() >= 1
    page.click("#cm-stop")
    page.wait_for_function(
        "document.querySelector('#cm-status').innerText.includes('stopped at step')", timeout=TIMEOUT_MS
    )
    stopped_at = int(re.search(r"stopped at step (\d+)", page.locator("#cm-status").inner_text()).group(1))
    assert steps_seen[-1] <= stopped_at < 1000


def test_bad_uploads_are_refused_with_a_line(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo at all\n" * 20)
    page.set_input_files("#explain-upload input[type=file]", str(text))
    assert "notes.jpg: not an image that can be read" in error_about(page, "notes.jpg")
    page.locator("#explain-upload button[aria-label=Clear]").click()

    big = tmp_path / "big.png"
    Image.new("RGB", (1200, 1000), "white").save(big)  # 1.2 MP, over the server's 1 MP
    page.set_input_files("#explain-upload input[type=file]", str(big))
    message = error_about(page, "big.png")
    assert f"over the limit of {MAX_PIXELS / 1e6:.0f}" in message


def test_two_users_at_once(browser, web_server: RunningServer, cat_photo: Path) -> None:  # type: ignore[no-untyped-def]
    from .conftest import watch_requests

    pages = []
    for _ in range(2):
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        p = context.new_page()
        watch_requests(p, web_server)
        p.goto(web_server.url)
        p.wait_for_selector("#explain-upload")
        upload_photo(p, cat_photo)
        set_methods(p, "explain-methods", {"gradient"})
        pages.append(p)
    for p in pages:
        p.click("#explain-run")
    for p in pages:
        p.wait_for_selector("#explain-box img", timeout=TIMEOUT_MS)
        assert p.locator("#explain-maps img").count() >= 1
    for p in pages:
        p.context.close()


def test_the_page_loads_nothing_from_outside(page, web_server: RunningServer) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Compare").click()
    page.wait_for_selector("#compare-run")
    assert web_server.external_requests == []
    html = page.content()
    assert "fonts.googleapis" not in html and "cdn." not in html
