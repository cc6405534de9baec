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


def clear_upload(page) -> None:  # type: ignore[no-untyped-def]
    """Empty the upload box (it holds the last file) so that it takes another."""
    page.locator("#explain-upload button[aria-label=Clear]").click()
    page.locator("#explain-upload input[type=file]").wait_for(state="attached", timeout=TIMEOUT_MS)


def file_links(page, box: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The download links of a file box, by file name."""
    links = page.locator(f"#{box} a[href]").all()
    return {Path(a.get_attribute("href")).name: a.get_attribute("href") for a in links}


#: For each picture of a gallery: its natural aspect, the aspect it is drawn
#: with (after object-fit), and how much of the drawn picture is visible
#: through the boxes around it that clip or scroll.
SHOWN = """(selector) => [...document.querySelectorAll(selector + ' img')].map((img) => {
  const box = img.getBoundingClientRect();
  const fit = getComputedStyle(img).objectFit;
  const natural = img.naturalWidth / img.naturalHeight;
  let w = box.width, h = box.height;
  if (fit === 'contain' || fit === 'scale-down') {
    if (box.width / box.height > natural) { w = box.height * natural; } else { h = box.width / natural; }
  }
  let l = box.left + (box.width - w) / 2, t = box.top + (box.height - h) / 2, r = l + w, b = t + h;
  const drawn = w * h;
  for (let e = img.parentElement; e; e = e.parentElement) {
    const s = getComputedStyle(e);
    if (s.overflowX !== 'visible' || s.overflowY !== 'visible') {
      const c = e.getBoundingClientRect();
      l = Math.max(l, c.left); t = Math.max(t, c.top); r = Math.min(r, c.right); b = Math.min(b, c.bottom);
    }
  }
  return {fit, natural, drawn: w / h, visible: Math.max(0, r - l) * Math.max(0, b - t) / drawn};
})"""

#: Whether the gallery's pictures have arrived (a picture still loading has no natural size).
LOADED = """(selector) => {
  const pictures = [...document.querySelectorAll(selector + ' img')];
  return pictures.length > 0 && pictures.every((img) => img.complete && img.naturalWidth > 0);
}"""

#: Each caption of a gallery: its text, whether all of it shows (no ellipsis)
#: and whether it lies within the gallery's visible area.
CAPTIONS = """(selector) => {
  const wrap = document.querySelector(selector + ' .grid-wrap').getBoundingClientRect();
  return [...document.querySelectorAll(selector + ' .caption-label')].map((c) => {
    const r = c.getBoundingClientRect();
    const inside = r.top >= wrap.top && r.bottom <= wrap.bottom
      && r.left >= wrap.left && r.right <= wrap.right;
    return {text: c.innerText.trim(), whole: c.scrollWidth <= c.clientWidth, inside};
  });
}"""


def assert_shown_whole(page, gallery: str) -> None:  # type: ignore[no-untyped-def]
    """Every picture of the gallery is seen whole, with its own aspect ratio:
    neither cropped by object-fit nor cut off by the gallery's scroll box."""
    page.wait_for_function(LOADED, arg=f"#{gallery}", timeout=TIMEOUT_MS)
    shown = page.evaluate(SHOWN, f"#{gallery}")
    assert shown, f"no pictures in #{gallery}"
    for picture in shown:
        assert picture["fit"] not in ("cover", "fill", "none"), picture
        assert picture["drawn"] == pytest.approx(picture["natural"], rel=0.02), picture
        assert picture["visible"] > 0.98, picture


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
    finished = set(file_links(page, "cm-files"))
    assert {"contact_sheet.png", "summary.json"} <= finished and any(n.endswith(".log.csv") for n in finished)
    page.locator("#cm-pictures img").first.wait_for(timeout=TIMEOUT_MS)
    assert_shown_whole(page, "cm-pictures")  # the square class model, not a strip of it
    cell = page.locator("#cm-pictures img").first.bounding_box()
    assert min(cell["width"], cell["height"]) >= 280, cell  # one class: half the gallery, not a quarter

    # A long run: watch the step counter advance, then stop it midway.
    page.locator("#cm-steps input").fill("1000")
    page.click("#cm-run")
    steps_seen = []
    fetched = 0
    deadline = time.monotonic() + 90
    while len(set(steps_seen)) < 3 and time.monotonic() < deadline:
        found = re.search(r"step (\d+)/1000", page.locator("#cm-status").inner_text())
        if found:
            steps_seen.append(int(found.group(1)))
        # Each picture fetched while the run writes the next ones comes whole.
        for src in [i.get_attribute("src") for i in page.locator("#cm-pictures img").all()]:
            answer = page.request.get(src)
            assert answer.ok and len(answer.body()) == int(answer.headers["content-length"]), src
            fetched += 1
        time.sleep(0.2)
    assert len(set(steps_seen)) >= 3 and steps_seen == sorted(steps_seen), steps_seen
    assert fetched >= 1
    assert "S_c" in page.locator("#cm-status").inner_text()
    assert page.locator("#cm-pictures img").count() >= 1
    page.click("#cm-stop")
    page.wait_for_function(
        "document.querySelector('#cm-status').innerText.includes('stopped at step')", timeout=TIMEOUT_MS
    )
    stopped_at = int(re.search(r"stopped at step (\d+)", page.locator("#cm-status").inner_text()).group(1))
    assert steps_seen[-1] <= stopped_at < 1000

    # The downloads are the class's own files, named as a finished run's, the summary saying where it stopped.
    page.wait_for_function(
        f"document.querySelectorAll('#cm-files a[href]').length >= {len(finished)}", timeout=TIMEOUT_MS
    )
    links = file_links(page, "cm-files")
    assert set(links) == finished
    summary = json.loads(page.request.get(links["summary.json"]).body())
    assert summary["stopped_at_step"] == stopped_at
    assert_shown_whole(page, "cm-pictures")


def test_compare_shows_each_map_whole_with_its_caption(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Compare").click()
    samples = page.locator("#compare-sample input")
    samples.click()
    samples.press_sequentially("chelsea", delay=20)
    samples.press("Enter")
    page.keyboard.press("Escape")
    set_methods(page, "compare-methods", {"gradient", "grad-cam"})
    page.click("#compare-run")
    page.wait_for_function("document.querySelectorAll('#compare-grid img').length == 2", timeout=TIMEOUT_MS)
    assert_shown_whole(page, "compare-grid")  # a 451x300 photo, not a square cut of it
    captions = page.evaluate(CAPTIONS, "#compare-grid")
    assert [c["text"] for c in captions] == ["gradient", "grad-cam"]
    assert all(c["whole"] and c["inside"] for c in captions), captions

    # One method on several photos: each caption names its photo too.
    samples.click()
    samples.press_sequentially("coffee", delay=20)
    samples.press("Enter")
    page.keyboard.press("Escape")
    set_methods(page, "compare-methods", {"gradient"})
    page.click("#compare-run")
    page.wait_for_function(
        "[...document.querySelectorAll('#compare-grid .caption-label')]"
        ".some(c => c.innerText.includes('coffee'))",
        timeout=TIMEOUT_MS,
    )
    captions = page.evaluate(CAPTIONS, "#compare-grid")
    assert [c["text"] for c in captions] == ["gradient · chelsea", "gradient · coffee"]
    assert all(c["whole"] and c["inside"] for c in captions), captions
    assert_shown_whole(page, "compare-grid")


def test_bad_uploads_are_refused_with_a_line(page, tmp_path: Path, cat_photo: Path) -> None:  # type: ignore[no-untyped-def]
    upload_photo(page, cat_photo)
    choose_class(page, "explain-class", TABBY)
    chosen = page.locator("#explain-class input").input_value()

    text = tmp_path / "notes.jpg"
    text.write_text("not a photo at all\n" * 20)
    clear_upload(page)
    page.set_input_files("#explain-upload input[type=file]", str(text))
    note = page.locator("#explain-note")
    note.get_by_text("notes.jpg: not an image that can be read").wait_for(timeout=TIMEOUT_MS)
    # One message in one place; the photo, its predictions and the chosen class stay.
    assert page.get_by_text("notes.jpg: not an image").count() == 1
    assert page.locator("[data-testid=status-tracker] .error").count() == 0
    assert page.locator("#explain-class input").input_value() == chosen
    assert page.locator("#explain-photo img").count() == 1
    assert "tabby" in page.locator("#explain-predictions").inner_text()

    big = tmp_path / "big.png"
    Image.new("RGB", (1200, 1000), "white").save(big)  # 1.2 MP, over the server's 1 MP
    clear_upload(page)
    page.set_input_files("#explain-upload input[type=file]", str(big))
    note.get_by_text("big.png").wait_for(timeout=TIMEOUT_MS)
    assert f"over the limit of {MAX_PIXELS / 1e6:.0f}" in note.inner_text()
    assert page.locator("[data-testid=status-tracker] .error").count() == 0

    # A good photo after a bad one clears the message.
    clear_upload(page)
    upload_photo(page, cat_photo)
    page.wait_for_function(
        "document.querySelector('#explain-note').innerText.trim() === ''", timeout=TIMEOUT_MS
    )


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
