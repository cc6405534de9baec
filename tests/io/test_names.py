"""One naming scheme for every output file."""

from __future__ import annotations

from deepinside.io.names import UniqueStems, class_part, key_stem, localize_tag, maps_file, photo_file, slug
from deepinside.visualization.output import file_stems


def test_slugs():
    assert slug("Egyptian cat") == "egyptian-cat"
    assert slug("  jack-o'-lantern ") == "jack-o-lantern"
    assert slug("Grad-CAM") == "grad-cam"
    assert slug("???") == "class"
    assert len(slug("a" * 100)) == 40


def test_photo_file_names():
    assert class_part(285, "Egyptian cat") == "0285-egyptian-cat"
    assert (
        photo_file("cat", "grad-cam", "overlay", "png", class_part(285, "Egyptian cat"))
        == "cat.grad-cam.0285-egyptian-cat.overlay.png"
    )
    assert photo_file("cat", localize_tag("default"), "mask", "png") == "cat.localize-default.mask.png"
    assert localize_tag("paper", "smoothgrad") == "localize-paper-smoothgrad"


def test_class_models_use_the_same_class_part():
    assert file_stems([812, 285, 285], ["space shuttle", "Egyptian cat", "Egyptian cat"]) == [
        "0812-space-shuttle",
        class_part(285, "Egyptian cat"),
        "0285-egyptian-cat-2",
    ]


def test_unique_stems_within_a_run():
    stems = UniqueStems()
    names = [stems.next(p) for p in ("a/cat.jpg", "b/cat.jpg", "c/cat-2.jpg", "d/Cat.png", "e/.jpg")]
    assert names == ["cat", "cat-2", "cat-2-2", "Cat-3", ".jpg"]


def test_batch_names_mirror_the_key_and_stay_inside_the_folder():
    assert maps_file("cats/tabby.jpg") == "cats/tabby.jpg.npz"
    assert maps_file("cats\\tabby.jpg") == "cats/tabby.jpg.npz"
    assert (
        photo_file(key_stem("cats/tabby.jpg"), "gradient", "overlay", "png", class_part(281, "tabby"))
        == "cats/tabby.jpg.gradient.0281-tabby.overlay.png"
    )
    outside = [key_stem(k) for k in ("../x/cat.jpg", "/data/cat.jpg", "../y/cat.jpg")]
    assert all(s.startswith("_outside/cat.jpg-") for s in outside) and len(set(outside)) == 3
    assert key_stem("../x/cat.jpg") == outside[0]  # the same in every run
